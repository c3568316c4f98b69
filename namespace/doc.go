// Package namespace is the namespace as a whole, above package shard's one
// shard: its record (shard count, start, key layout, and the state that
// changes: strict mode, generation, tombstone), kept in three copies; the
// plan of its keys against the live slot map (PlanLayout); the index of
// namespaces; opening a namespace (Open: read the copies, decide, create or
// recreate, reconcile the copies) and the admin calls (Put, Describe, Delete,
// List, Read); and the repair of a namespace after masters changed history
// (RepairNamespace), which failover.StartRepairs runs over every indexed
// namespace when the probes of a cluster connection see such a change.
//
// The record and the index are written by lua/meta.lua and lua/index.lua,
// each prefixed with package shard's prelude (shard.NewScript) and sent
// through shard.RunScript, like the shards' own scripts.
package namespace
