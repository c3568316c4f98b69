package shard_test

import (
	"context"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

const portStallRewind = 7980

// TestStalledRaiseAfterCopiesRewound: a process reserves a block that needs
// a ceiling raise and stalls before the raise. Meanwhile the counter's
// master restarts empty, a fresh process restores the counter (claiming
// both ceiling copies with a newer epoch) and hands out IDs, and then both
// copies' masters restart from dumps taken before that claim, so the copies
// are back at the old epoch. The stalled raise, with the old epoch, is now
// accepted by every copy: only the check that the counter still has the
// history that reserved the block refuses it. The negative control skips
// that check: the stalled block overlaps the fresh process's IDs.
func TestStalledRaiseAfterCopiesRewound(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portStallRewind})
	cl := lc.Dial(cluster.Config{})
	for _, tc := range []struct {
		name    string
		control bool
	}{{"defence", false}, {"control", true}} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.control {
				shard.SkipStillSame(t)
			}
			stalled, fresh := stallAcrossRewind(t, lc, cl, "stall-rewind-"+tc.name)
			overlap := fresh.Hi >= stalled.Lo && fresh.Lo <= stalled.Hi
			switch {
			case !tc.control && stalled != (shard.Block{}):
				t.Fatalf("the stalled block %d..%d stood (fresh process: %d..%d)", stalled.Lo, stalled.Hi, fresh.Lo, fresh.Hi)
			case tc.control && !overlap:
				t.Fatalf("control: the stalled block %d..%d does not overlap the fresh process's %d..%d; the scenario shows nothing", stalled.Lo, stalled.Hi, fresh.Lo, fresh.Hi)
			}
		})
	}
}

// stallAcrossRewind runs the scenario on a new namespace and returns the
// stalled process's block (zero if refused) and the fresh process's.
func stallAcrossRewind(t *testing.T, lc *clustertest.Cluster, cl *cluster.Cluster, name string) (stalled, fresh shard.Block) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	openShard := func() *shard.Shard {
		ns, err := namespace.Open(ctx, cl, name, namespace.Settings{Shards: 1}, shard.Options{})
		if err != nil {
			t.Fatalf("open %s: %v", name, err)
		}
		return ns.Shards[0]
	}
	s := openShard()
	if _, err := s.Reserve(ctx, 1000, 0); err != nil {
		t.Fatal(err)
	}
	// The dumps the copies' masters will come back from: before the claim.
	for _, k := range s.CeilingKeys {
		lc.Save(lc.MasterOf(k))
	}
	reached, release := shard.StallBeforeRaise(t)
	type result struct {
		b   shard.Block
		err error
	}
	res := make(chan result, 1)
	go func() {
		b, err := s.Reserve(ctx, 1<<24, 0) // the largest block a client reserves
		res <- result{b, err}
	}()
	select {
	case <-reached:
	case r := <-res:
		t.Fatalf("reserve returned without a raise: %+v %v", r.b, r.err)
	case <-ctx.Done():
		t.Fatal("no raise")
	}

	lc.RestartEmpty(lc.MasterOf(s.Key))
	lc.WaitHealthy(60 * time.Second)
	other := openShard() // another process: it restores the counter
	clustertest.Eventually(t, 30*time.Second, func() error {
		b, err := other.Reserve(ctx, 1000, 0)
		fresh = b
		return err
	})
	for _, k := range s.CeilingKeys {
		lc.RestartFromFiles(lc.MasterOf(k))
	}
	lc.WaitHealthy(60 * time.Second)

	close(release)
	r := <-res
	if r.err != nil {
		t.Logf("stalled block refused: %v", r.err)
		return shard.Block{}, fresh
	}
	t.Logf("stalled block %d..%d stood; fresh process %d..%d", r.b.Lo, r.b.Hi, fresh.Lo, fresh.Hi)
	return r.b, fresh
}
