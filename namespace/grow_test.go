package namespace_test

import (
	"context"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// Ports of TestCreateWithMasterWithoutSlots: 7210-7217 (3+3 nodes, then the
// added master and its replica), inside the package's 7200-7219.
const portGrow = 7210

// createWithin is how long creating a namespace may take with a master
// without slots in the cluster (issue 19, item 1: it never finished).
const createWithin = 2 * time.Second

// An operator grows a 3+3 cluster with `redis-cli --cluster add-node`: a
// master that serves no slot until a reshard, its replica added later.
// Creating a namespace meanwhile, by namespace.Put and by client.New, finishes
// within 2 s, every key of every shard distinct and the three keys of each
// shard on three distinct masters that serve slots; nothing is placed on the
// new master, with or without its replica. Before the fix, the plan chose the
// empty master and searched 2^30 hash tags for it: creation did not answer.
func TestCreateWithMasterWithoutSlots(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portGrow})
	empty := lc.AddNode("")
	cl := lc.Dial(cluster.Config{})
	waitTopology(t, cl, func(top *cluster.Topology) bool {
		m, ok := top.MasterByAddr(empty)
		return ok && len(m.Slots) == 0
	})

	t.Run("ReplicaMissing", func(t *testing.T) {
		var ns *namespace.Namespace
		within(t, "namespace.Put", func(ctx context.Context) (err error) {
			ns, err = namespace.Put(ctx, cl, "grow-put", namespace.Spec{Shards: ptr(12)}, 0, shard.Options{})
			return err
		})
		checkLayout(t, cl, ns.Layout, empty)
	})

	lc.AddNode(empty) // its replica, still before any reshard
	waitTopology(t, cl, func(top *cluster.Topology) bool {
		m, ok := top.MasterByAddr(empty)
		return ok && len(m.Replicas) == 1
	})

	t.Run("ReplicaAdded", func(t *testing.T) {
		var c *client.Client
		within(t, "client.New", func(ctx context.Context) (err error) {
			c, err = client.New(ctx, client.Config{Namespace: "grow-new", Shards: 12, Cluster: cl, Logger: quiet()})
			return err
		})
		defer c.Close()
		distinct(t, take(t, c, 2000))
		ns, err := namespace.Open(ctx10(t), cl, "grow-new", namespace.Settings{NoCreate: true}, shard.Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkLayout(t, cl, ns.Layout, empty)
	})
}

// within runs create with a createWithin deadline and fails the test when it
// errs or has not returned by then. A creation that ignores its context (the
// old tag search did) is left running: the test binary ends it.
func within(t *testing.T, what string, create func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), createWithin)
	defer cancel()
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- create(ctx) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s with a master without slots: %v (after %v)", what, err, time.Since(start))
		}
		t.Logf("%s: %v", what, time.Since(start))
	case <-time.After(createWithin + time.Second):
		t.Fatalf("%s with a master without slots: no answer after %v", what, time.Since(start))
	}
}

// checkLayout fails the test unless every key of l is distinct and each
// shard's counter and ceiling copies sit on three distinct masters serving
// slots, none of them empty.
func checkLayout(t *testing.T, cl *cluster.Cluster, l namespace.Layout, empty string) {
	t.Helper()
	top := cl.Topology()
	seen := map[string]int{}
	for i := range l.Shards {
		keys := []string{l.CounterKey(i)}
		for c := range namespace.CeilingCopies {
			keys = append(keys, l.CeilingKey(i, c))
		}
		masters := map[string]bool{}
		for _, k := range keys {
			if j, dup := seen[k]; dup {
				t.Errorf("shard %d: key %s also used by shard %d", i, k, j)
			}
			seen[k] = i
			m, ok := top.MasterForSlot(cluster.Slot(k))
			if !ok || len(m.Slots) == 0 || m.Addr == empty {
				t.Errorf("shard %d: key %s not on a master serving slots (%s)", i, k, m.Addr)
			}
			masters[m.Addr] = true
		}
		if len(masters) != 1+namespace.CeilingCopies {
			t.Errorf("shard %d: keys %v on %d masters, want %d", i, keys, len(masters), 1+namespace.CeilingCopies)
		}
	}
}

// waitTopology reloads cl's topology until ok holds, for at most 30 s.
func waitTopology(t *testing.T, cl *cluster.Cluster, ok func(*cluster.Topology) bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		top, err := cl.Reload(ctx)
		cancel()
		if err == nil && ok(top) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topology not as expected after 30s (last error %v)", err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}
