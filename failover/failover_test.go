package failover

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shardseq/shardseq/shard"
)

func TestRetryable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{nil, false},
		{context.Canceled, false},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), false},
		{shard.ErrShardCountMismatch, false},
		{shard.ErrBadRecord, false},
		{shard.ErrNotReplicated, true},
		{shard.ErrCounterRegressed, true},
		{errors.New("dial tcp: connection refused"), true},
		{errors.New("CLUSTERDOWN The cluster is down"), true},
	} {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestRegistryUpdateListWatch(t *testing.T) {
	r := NewRegistry()
	r.Update("b", 1, func(s *ShardStatus) { s.State = "closed"; s.Healthy = true })
	r.Update("a", 0, func(s *ShardStatus) { s.State = "open" })
	r.Update("a", 1, func(s *ShardStatus) { s.State = "closed" })
	all, _ := r.List("")
	if len(all) != 3 || all[0].Namespace != "a" || all[0].Index != 0 || all[2].Namespace != "b" {
		t.Fatalf("List must order by namespace then index: %+v", all)
	}
	rows, ch := r.List("a")
	if len(rows) != 2 {
		t.Fatalf("want 2 rows of a, got %d", len(rows))
	}
	if got := r.ByState("open"); len(got) != 1 || got[0].Index != 0 {
		t.Fatalf("ByState(open) = %+v", got)
	}
	// Rows handed out are copies: changing one must not change the registry.
	rows[0].State = "mutated"
	if again, _ := r.List("a"); again[0].State != "open" {
		t.Fatal("a returned row aliases the stored one")
	}
	select {
	case <-ch:
		t.Fatal("watch fired without a change")
	default:
	}
	r.Update("a", 0, func(s *ShardStatus) { s.State = "half-open" })
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
		t.Fatal("watch did not fire on a change")
	}
	r.Remove("a")
	if rows, _ := r.List("a"); len(rows) != 0 {
		t.Fatalf("Remove left %d rows", len(rows))
	}
}

func TestWaitChangeReturnsOnContext(t *testing.T) {
	r := NewRegistry()
	r.Update("x", 0, func(s *ShardStatus) {})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if rows := r.WaitChange(ctx, "x"); len(rows) != 1 {
		t.Fatalf("want the rows back, got %+v", rows)
	}
}

// MasterFault charges what concerns a whole master to that master, and
// nothing that belongs to one shard or to the caller.
func TestMasterFault(t *testing.T) {
	on := func(err error) error { return &shard.NodeError{Addr: "m:1", Err: err} }
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"not replicated", on(fmt.Errorf("%w: 0 of 1", shard.ErrNotReplicated)), true},
		{"dial refused", on(errors.New("dial tcp m:1: connect: connection refused")), true},
		{"attempt timeout", on(fmt.Errorf("%w (750ms): i/o timeout", ErrShardTimeout)), true},
		{"clusterdown", fmt.Errorf("shard 3: %w", on(errors.New("CLUSTERDOWN The cluster is down"))), true},
		{"fenced", on(fmt.Errorf("%w: claimed", shard.ErrFenced)), false},
		{"ceiling lost", on(fmt.Errorf("%w: none trusted", shard.ErrCeilingLost)), false},
		{"regressed", on(fmt.Errorf("%w", shard.ErrCounterRegressed)), false},
		{"caller cancelled", on(context.Canceled), false},
		{"caller deadline", on(context.DeadlineExceeded), false},
		{"no node", errors.New("dial tcp: refused"), false},
		{"nil", nil, false},
	} {
		addr, got := MasterFault(tc.err)
		if got != tc.want || (got && addr != "m:1") {
			t.Errorf("%s: MasterFault = %q, %v; want %v", tc.name, addr, got, tc.want)
		}
	}
}
