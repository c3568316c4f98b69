package failover_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

const portSweepIndex = 7880

// TestSweepRefillsIndexCopy: a master restarted empty loses its copy of the
// index of namespaces with the rest of its data; the sweep, which re-adds a
// page of names to every copy in one script per copy, puts every name back
// in that copy (and restores every counter that was on it). Right after the
// restart, before any sweep, the copy is empty: the check sees the loss.
func TestSweepRefillsIndexCopy(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a master")
	}
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portSweepIndex})
	cl := lc.Dial(cluster.Config{})
	ctx := context.Background()
	names := make([]string, 20)
	counters := make([][]string, len(names))
	for k := range names {
		names[k] = fmt.Sprintf("idx-%02d", k)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		ns, err := namespace.Put(cctx, cl, names[k], namespace.Spec{}, 0, shard.Options{})
		cancel()
		if err != nil {
			t.Fatalf("create %s: %v", names[k], err)
		}
		for _, s := range ns.Shards {
			counters[k] = append(counters[k], s.Key)
		}
	}
	copyKey := namespace.IndexKeys()[0]
	victim := lc.MasterOf(copyKey)
	members := func() []string {
		t.Helper()
		m, _, err := cl.MasterForKey(copyKey)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cl.Node(m.Addr).ZRange(ctx, copyKey, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		return got
	}

	lc.RestartEmpty(victim)
	lc.WaitHealthy(30 * time.Second)
	clustertest.Eventually(t, 10*time.Second, func() error { _, err := cl.Reload(ctx); return err })
	if got := members(); len(got) != 0 {
		t.Fatalf("after an empty restart of %s its index copy holds %d names, want 0", victim, len(got))
	}

	// A fresh process's repairs sweep every master once.
	rep := failover.StartRepairs(lc.Dial(cluster.Config{}), failover.RepairConfig{Batch: 8, Retry: 200 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(rep.Stop)
	clustertest.Eventually(t, 2*time.Minute, func() error {
		if st := claimState(t, cl, victim); st != "done" {
			return fmt.Errorf("claim %q", st)
		}
		return nil
	})
	if _, last := rep.Report(); last.Errors > 0 {
		t.Fatalf("the sweep reported %d errors: %+v", last.Errors, last)
	}
	for c, key := range namespace.IndexKeys() {
		m, _, err := cl.MasterForKey(key)
		if err != nil {
			t.Fatal(err)
		}
		got, err := cl.Node(m.Addr).ZRange(ctx, key, 0, -1).Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if !slices.Contains(got, n) {
				t.Errorf("index copy %d (%s on %s) lacks %s after the sweep", c, key, m.Addr, n)
			}
		}
	}
	if st := stale(t, cl, victim, counters); st != 0 {
		t.Errorf("after the sweep %d namespaces have stale counters on %s", st, victim)
	}
}
