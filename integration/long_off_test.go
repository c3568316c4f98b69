//go:build integration && !chaos

package integration

// longRuns: the cases that only `make chaos-long` (the chaos tag) plays,
// kept out of make test's budget.
const longRuns = false
