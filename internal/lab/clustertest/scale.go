package clustertest

import (
	"os"
	"strconv"
	"testing"
)

// ScaleNamespaces is how many namespaces a scale test fills the cluster
// with, and whether it asserts the bounds: n and strict as the test
// was built (its size for make test, or for the chaos tag), unless
// SHARDSEQ_SCALE_NAMESPACES asks for a size, which is then measured
// strictly.
func ScaleNamespaces(tb testing.TB, n int, strict bool) (int, bool) {
	tb.Helper()
	v := os.Getenv("SHARDSEQ_SCALE_NAMESPACES")
	if v == "" {
		return n, strict
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("SHARDSEQ_SCALE_NAMESPACES=%q: want a positive number", v)
	}
	return n, true
}
