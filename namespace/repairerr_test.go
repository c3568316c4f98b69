package namespace_test

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

const portRepairErr = 7290

// TestRepairReportsIndexCopies: a repair that could not rewrite a copy of
// the index (its master frozen) says so, so that the sweep that called it
// is retried; once the master is back the same repair succeeds. Before, a
// repair succeeded as soon as one copy took the name, and the sweep ended
// with a copy of the index still without it.
func TestRepairReportsIndexCopies(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portRepairErr})
	cl := lc.Dial(cluster.Config{})
	const name = "repair-errs"
	if _, err := namespace.Open(ctx10(t), cl, name, namespace.Settings{Shards: 3}, shard.Options{}); err != nil {
		t.Fatal(err)
	}
	none := func(string) bool { return false } // no shard to repair: the record and the index only
	repair := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := namespace.RepairNamespace(ctx, cl, name, none, shard.Options{})
		return err
	}

	frozen := lc.MasterOf(namespace.IndexKeys()[1])
	lc.Pause(frozen)
	err := repair()
	lc.Resume(frozen)
	if err == nil {
		t.Fatalf("repair reported success while the index copy on %s (frozen) could not take the name", frozen)
	}
	t.Logf("with %s frozen: %v", frozen, err)

	deadline := time.Now().Add(20 * time.Second)
	for err = repair(); err != nil && time.Now().Before(deadline); err = repair() {
	}
	if err != nil {
		t.Fatalf("repair after the master came back: %v", err)
	}
}
