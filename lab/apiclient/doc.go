// Package apiclient is a typed Go client of the HTTP API, generated from
// api/openapi.yaml by oapi-codegen (a generator nobody here wrote), so that
// its test can show that a generated client drives every route of a real
// server. It lives in the lab module: the product carries neither the
// generator nor its runtime. client.gen.go is generated; do not edit it.
// TestGeneratedCodeIsFresh fails when it is stale.
package apiclient

// The generator is pinned by the tool directive of lab/go.mod.
//go:generate go tool oapi-codegen -config oapi-codegen.yaml ../../api/openapi.yaml
