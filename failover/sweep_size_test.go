//go:build !chaos

package failover_test

// sweepNamespaces is how many namespaces TestSweepResumes sweeps: few enough
// for make test (the chaos tag makes it 10,000; SHARDSEQ_SCALE_NAMESPACES
// overrides both).
const sweepNamespaces = 200

// sweepStrict: whether the bounds (a sweep within 60 s, p99 of an
// open namespace within 2x) are asserted.
const sweepStrict = false
