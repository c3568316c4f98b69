package namespace_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// Ports of the tests of holes found on paper: 7280-7289.
const portHoles = 7280

// TestUnfinishedCreationCopyLost: a creation that stopped after it wrote
// the traces and keys and before the index entry (its creator killed, or a
// master failing under it: create returns at the first error) is finished
// by the next creator, also after copy 0's master restarted empty. The next
// claim recreates copy 0 "unchecked" and the second check (checkClaimed)
// finds the unfinished creation's own traces; what tells them from another
// namespace's is that the creator marked every copy checked, and copies 1
// and 2 remain. The negative control leaves copies 1 and 2 unchecked (as
// when only copy 0 was marked, found in the attack of 2026-12-07): the name
// is refused for good with ErrNamespaceLost. Liveness, not uniqueness:
// refusing never repeats an ID.
func TestUnfinishedCreationCopyLost(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portHoles})
	cl := lc.Dial(cluster.Config{})
	for _, tc := range []struct {
		name   string
		others string // what copies 1 and 2 say
	}{{"defence", "c"}, {"control", "u"}} {
		t.Run(tc.name, func(t *testing.T) {
			name := "unfinished-" + tc.name
			if _, err := namespace.Put(ctx10(t), cl, name, namespace.Spec{Shards: ptr(3)}, 0, shard.Options{}); err != nil {
				t.Fatal(err)
			}
			// What a creator that stopped before the index leaves: every
			// copy checked, traces and keys, no index entry, nothing
			// handed out.
			keys := namespace.MetaKeys(name)
			raw(t, cl, keys[0], "HSET", keys[0], "ready", "c")
			for _, k := range keys[1:] {
				raw(t, cl, k, "HSET", k, "ready", tc.others)
			}
			for _, k := range namespace.IndexKeys() {
				raw(t, cl, k, "ZREM", k, name)
			}
			m0 := lc.MasterOf(keys[0])
			lc.RestartEmpty(m0)
			lc.WaitHealthy(30 * time.Second)
			clustertest.Eventually(t, 10*time.Second, func() error {
				_, err := cl.Reload(context.Background())
				return err
			})
			if exists(t, cl, keys[0]) {
				t.Fatalf("setup: copy 0 %s survived the empty restart of %s", keys[0], m0)
			}

			ns, err := namespace.Put(ctx10(t), cl, name, namespace.Spec{Shards: ptr(3)}, 0, shard.Options{})
			if tc.others == "u" {
				if !errors.Is(err, namespace.ErrNamespaceLost) {
					t.Fatalf("control: want ErrNamespaceLost with copies 1 and 2 unchecked, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("finishing the creation of %s after record copy 0 was lost: %v", name, err)
			}
			if ns.Layout.Shards != 3 {
				t.Fatalf("finished with %d shards, want the 3 of copies 1 and 2", ns.Layout.Shards)
			}
			c, err := openClient(cl, client.Config{Namespace: name})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			distinct(t, take(t, c, 3000))
		})
	}
}
