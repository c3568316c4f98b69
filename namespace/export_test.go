package namespace

import (
	"context"
	"testing"
	"time"

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

// SkipRetrace stops the scripts of package shard from tracing again a key
// they find without its trace, for shards opened until the test ends: the
// negative control of the re-trace.
func SkipRetrace(t testing.TB) {
	noRetrace.Store(true)
	t.Cleanup(func() { noRetrace.Store(false) })
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

// SkipFreshness switches the creation-freshness guard off until the test
// ends: a negative control.
func SkipFreshness(t testing.TB) {
	noFreshness.Store(true)
	t.Cleanup(func() { noFreshness.Store(false) })
}

// SetCreationTTL sets how long a creator may write keys and the clock skew
// allowed between masters, until the test ends.
func SetCreationTTL(t testing.TB, ttl, margin time.Duration) {
	oldTTL, oldMargin := creationTTL.Swap(int64(ttl)), creationMargin.Swap(int64(margin))
	t.Cleanup(func() { creationTTL.Store(oldTTL); creationMargin.Store(oldMargin) })
}

// BeforeCreate calls h (with the key) before a creation writes a shard's
// counter and each ceiling copy, in shards opened until the test ends.
func BeforeCreate(t testing.TB, h func(key string)) {
	beforeCreate.Store(&h)
	t.Cleanup(func() { beforeCreate.Store(nil) })
}
