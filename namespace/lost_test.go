package namespace_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

const portLost = 7220

// TestLostRecordRefused: a namespace whose record copies are lost (deleted
// with a raw client, as a restart empty or from an old dump would lose
// them) while keys of it survive is never created anew: not when its name
// is still in the index, and not when only one counter or one ceiling copy
// is left (the trace check, which replaced a SCAN of every master). The
// negative control switches the trace check off: the recreation succeeds,
// with another N, and repeats IDs.
func TestLostRecordRefused(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portLost})
	cl := lc.Dial(cluster.Config{})

	t.Run("InIndex", func(t *testing.T) {
		createAndUse(t, cl, "lost-index")
		loseRecord(t, cl, "lost-index", false)
		_, err := namespace.Put(ctx10(t), cl, "lost-index", namespace.Spec{}, 0, shard.Options{})
		if !errors.Is(err, namespace.ErrNamespaceLost) || !strings.Contains(err.Error(), "index") {
			t.Fatalf("recreate with the name in the index: %v, want ErrNamespaceLost naming the index", err)
		}
	})
	t.Run("OnlyACounterLeft", func(t *testing.T) {
		ns := createAndUse(t, cl, "lost-counter")
		keepOnly(t, cl, ns, ns.Layout.CounterKey(1))
		refused(t, cl, "lost-counter")
	})
	t.Run("OnlyACeilingCopyLeft", func(t *testing.T) {
		ns := createAndUse(t, cl, "lost-ceiling")
		keepOnly(t, cl, ns, ns.Layout.CeilingKey(2, 1))
		refused(t, cl, "lost-ceiling")
	})
	t.Run("NothingLeft", func(t *testing.T) {
		// Everything gone, traces included: the name looks new (documented),
		// which shows the cases above were refused for the key they kept.
		ns := createAndUse(t, cl, "lost-all")
		keepOnly(t, cl, ns, "")
		if _, err := namespace.Put(ctx10(t), cl, "lost-all", namespace.Spec{}, 0, shard.Options{}); err != nil {
			t.Fatalf("no trace left: %v, want a new namespace", err)
		}
	})
	t.Run("UpgradedFromSetIndex", func(t *testing.T) { testUpgradedIndex(t, cl) })
	t.Run("NegativeControl", func(t *testing.T) {
		ns := createAndUse(t, cl, "lost-control")
		before := ns.ids
		keepOnly(t, cl, ns, ns.Layout.CounterKey(0))
		namespace.SkipTraceCheck(t)
		again, err := namespace.Put(ctx10(t), cl, "lost-control", namespace.Spec{Shards: ptr(2)}, 0, shard.Options{})
		if err != nil {
			t.Fatalf("without the trace check the recreation must succeed: %v", err)
		}
		if !again.Created {
			t.Fatal("recreation did not create the namespace")
		}
		c, err := openClient(cl, client.Config{Namespace: "lost-control"})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		after := take(t, c, len(before))
		dups := countRepeats(before, after)
		if dups == 0 {
			t.Fatalf("negative control: no ID repeated without the trace check (before %d..%d, after %d..%d)",
				slices.Min(before), slices.Max(before), slices.Min(after), slices.Max(after))
		}
		t.Logf("negative control: %d of %d IDs repeated by the recreated namespace", dups, len(after))
	})
}

type usedNamespace struct {
	*namespace.Namespace
	ids []int64
}

// createAndUse creates name with 3 shards and hands out IDs from it.
func createAndUse(t *testing.T, cl *cluster.Cluster, name string) usedNamespace {
	t.Helper()
	ns, err := namespace.Put(ctx10(t), cl, name, namespace.Spec{Shards: ptr(3)}, 0, shard.Options{})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	c, err := openClient(cl, client.Config{Namespace: name})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return usedNamespace{ns, take(t, c, 3000)}
}

// loseRecord deletes every copy of name's record and, if unindex, its name
// from every copy of the index.
func loseRecord(t *testing.T, cl *cluster.Cluster, name string, unindex bool) {
	t.Helper()
	for _, k := range namespace.MetaKeys(name) {
		del(t, cl, k)
	}
	if unindex {
		for _, k := range namespace.IndexKeys() {
			raw(t, cl, k, "ZREM", k, name)
		}
	}
}

// keepOnly loses the record and the index entry of ns, and every counter
// and ceiling copy of it but key ("": none), with their traces: what
// masters restarting empty would leave if only key's master kept its data.
func keepOnly(t *testing.T, cl *cluster.Cluster, ns usedNamespace, key string) {
	t.Helper()
	loseRecord(t, cl, ns.Name, true)
	for _, k := range ns.Keys() {
		if k == key {
			continue
		}
		del(t, cl, k)
		if key == "" || cluster.Slot(k) != cluster.Slot(key) {
			tk := namespace.TraceKey(cluster.Slot(k))
			raw(t, cl, tk, "SREM", tk, ns.Name)
		}
	}
}

func refused(t *testing.T, cl *cluster.Cluster, name string) {
	t.Helper()
	for _, spec := range []namespace.Spec{{}, {Shards: ptr(2)}} {
		_, err := namespace.Put(ctx10(t), cl, name, spec, 0, shard.Options{})
		if !errors.Is(err, namespace.ErrNamespaceLost) || !strings.Contains(err.Error(), "trace") {
			t.Fatalf("recreate %s (%+v) with one key left: %v, want ErrNamespaceLost naming the trace", name, spec, err)
		}
	}
}

func del(t *testing.T, cl *cluster.Cluster, key string) { t.Helper(); raw(t, cl, key, "DEL", key) }

// raw sends a command to the master of key with a plain Redis client.
func raw(t *testing.T, cl *cluster.Cluster, key string, args ...any) {
	t.Helper()
	_, node, err := cl.MasterForKey(key)
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Do(context.Background(), args...).Err(); err != nil {
		t.Fatalf("%v: %v", args, err)
	}
}

// testUpgradedIndex: a cluster written by a version that kept the index in
// sets (no sorted set yet) loses no name on upgrade: List pages through
// every name the sets held, a name only in a set still refuses the
// recreation of a namespace with neither record nor traces (one created
// before traces existed), and a name an older process adds to a set after
// the merge is merged too. The control: with that name gone from the set as
// well, the recreation goes through, so it was the set's entry that refused.
func testUpgradedIndex(t *testing.T, cl *cluster.Cluster) {
	ctx := context.Background()
	for _, n := range []string{"legacy-a", "legacy-b"} {
		if _, err := namespace.Put(ctx10(t), cl, n, namespace.Spec{Shards: ptr(2)}, 0, shard.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	old := createAndUse(t, cl, "legacy-untraced")
	// What the older version left: the names in sets, no sorted set, and
	// legacy-untraced's record lost with no trace (created before traces).
	want, err := namespace.ListNamespaces(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(want)
	legacy := namespace.LegacyIndexKeys()
	for c, k := range namespace.IndexKeys() {
		_, node, err := cl.MasterForKey(k)
		if err != nil {
			t.Fatal(err)
		}
		names, err := node.ZRange(ctx, k, 0, -1).Result()
		if err == nil && len(names) > 0 {
			err = node.SAdd(ctx, legacy[c], names).Err()
		}
		if err == nil {
			err = node.Del(ctx, k, k[:len(k)-len(":sorted")]+":merged").Err()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	loseRecord(t, cl, old.Name, false)
	for _, k := range old.Keys() {
		tk := namespace.TraceKey(cluster.Slot(k))
		raw(t, cl, tk, "SREM", tk, old.Name)
	}

	var got []string
	for cursor := ""; ; {
		page, err := namespace.List(ctx10(t), cl, cursor, 2)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range page.Namespaces {
			got = append(got, in.Name)
		}
		if cursor = page.Next; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("List after the upgrade: %v, want %v", got, want)
	}
	_, err = namespace.Put(ctx10(t), cl, old.Name, namespace.Spec{}, 0, shard.Options{})
	if !errors.Is(err, namespace.ErrNamespaceLost) || !strings.Contains(err.Error(), "index") {
		t.Fatalf("recreate a lost untraced namespace indexed by the old set: %v, want ErrNamespaceLost naming the index", err)
	}

	// An older process still running adds a name to one set after the merge.
	raw(t, cl, legacy[1], "SADD", legacy[1], "legacy-late")
	page, err := namespace.List(ctx10(t), cl, "legacy-b", 1)
	if err != nil || len(page.Namespaces) != 1 || page.Namespaces[0].Name != "legacy-late" {
		t.Fatalf("List after legacy-b: %+v %v, want legacy-late (added to a set after the merge)", page, err)
	}

	// Control: the name gone from the sets and the sorted sets too.
	for c, k := range namespace.IndexKeys() {
		raw(t, cl, legacy[c], "SREM", legacy[c], old.Name)
		raw(t, cl, k, "ZREM", k, old.Name)
	}
	if _, err := namespace.Put(ctx10(t), cl, old.Name, namespace.Spec{}, 0, shard.Options{}); err != nil {
		t.Fatalf("control: with no index entry and no trace the name looks new, got %v", err)
	}
}
