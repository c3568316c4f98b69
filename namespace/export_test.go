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

// Keys are the counter and ceiling keys of the namespace's layout.
func (ns *Namespace) Keys() []string { return ns.Layout.keys() }

// FindTrace is the trace check alone, for name.
func FindTrace(ctx context.Context, r shard.Router, name string) (string, error) {
	ns := &Namespace{Name: name, r: r}
	return ns.findTrace(ctx)
}
