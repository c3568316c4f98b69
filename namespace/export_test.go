package namespace

import (
	"context"
	"testing"

	"github.com/shardseq/shardseq/shard"
)

// Hooks for the tests of package namespace_test.

// TraceKey is traceKey: the key of slot s's trace set.
func TraceKey(slot int) string { return traceKey(slot) }

// SkipTraceCheck switches the trace check of a creation off until the test
// ends (only the index is looked at): the negative control of the check.
func SkipTraceCheck(t testing.TB) {
	noTraceCheck.Store(true)
	t.Cleanup(func() { noTraceCheck.Store(false) })
}

// SkipScriptTraces stops the scripts of package shard from tracing keys
// they create after the creation (restored counters, rebuilt ceiling
// copies) for shards opened until the test ends: a negative control.
func SkipScriptTraces(t testing.TB) {
	noScriptTraces.Store(true)
	t.Cleanup(func() { noScriptTraces.Store(false) })
}

// SkipClaimedCheck skips the check a creation repeats once it claimed the
// record, until the test ends: a negative control.
func SkipClaimedCheck(t testing.TB) {
	noClaimedCheck.Store(true)
	t.Cleanup(func() { noClaimedCheck.Store(false) })
}

// BeforeClaim calls h (with the namespace's name) in every creation right
// before it claims the record, until the test ends.
func BeforeClaim(t testing.TB, h func(name string)) {
	beforeClaim.Store(&h)
	t.Cleanup(func() { beforeClaim.Store(nil) })
}

// Keys are the counter and ceiling keys of the namespace's layout.
func (ns *Namespace) Keys() []string { return ns.Layout.keys() }

// FindTrace is the trace check alone, for name.
func FindTrace(ctx context.Context, r shard.Router, name string) (string, error) {
	ns := &Namespace{Name: name, r: r}
	return ns.findTrace(ctx)
}
