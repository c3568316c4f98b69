package namespace_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

const portRebuilt = 7240

// TestRebuiltKeysTraced: a key rebuilt after the creation (a counter
// restored by a reservation, a ceiling copy claimed, raised or repaired
// where its master lost it) carries its slot's trace, written by the script
// that rebuilt it. So after a cascade of empty restarts (the key and its
// trace lost, the key rebuilt by a live client, then the record, the index
// and every other key lost with their traces), a creation with another N is
// still refused. The negative controls stop the scripts from tracing: the
// creation then succeeds and repeats IDs.
func TestRebuiltKeysTraced(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portRebuilt})
	cl := lc.Dial(cluster.Config{})

	// Each rebuild uses a namespace opened before the loss, as a live
	// client would (an Open writes every trace of the namespace afresh).
	//
	// restoreCounter loses shard 1's counter with its trace and lets a
	// reservation restore it from the ceiling copies.
	restoreCounter := func(t *testing.T, ns usedNamespace) string {
		key := ns.Layout.CounterKey(1)
		live := open(t, cl, ns.Name)
		loseKey(t, cl, ns.Name, key)
		if _, err := live.Shards[1].Reserve(ctx10(t), 10, 0); err != nil {
			t.Fatalf("reserve on a lost counter: %v", err)
		}
		if !exists(t, cl, key) {
			t.Fatalf("%s not restored", key)
		}
		return key
	}
	// repairCopy loses a ceiling copy of shard 2 with its trace and repairs it.
	repairCopy := func(t *testing.T, ns usedNamespace) string {
		key := ns.Layout.CeilingKey(2, 1)
		live := open(t, cl, ns.Name)
		loseKey(t, cl, ns.Name, key)
		if res, err := live.Shards[2].Repair(ctx10(t)); err != nil || res.Copies != 1 {
			t.Fatalf("repair of a lost copy: %+v %v", res, err)
		}
		return key
	}
	// raiseCopy loses a ceiling copy of shard 0 with its trace and reserves
	// until a raise wrote it again.
	raiseCopy := func(t *testing.T, ns usedNamespace) string {
		key := ns.Layout.CeilingKey(0, 0)
		live := open(t, cl, ns.Name)
		loseKey(t, cl, ns.Name, key)
		for deadline := time.Now().Add(10 * time.Second); !exists(t, cl, key); {
			if time.Now().After(deadline) {
				t.Fatalf("%s not raised again", key)
			}
			if _, err := live.Shards[0].Reserve(ctx10(t), shard.MinLease, 0); err != nil {
				t.Fatalf("reserve: %v", err)
			}
		}
		return key
	}
	// claimCopy loses shard 1's counter and a ceiling copy, with their
	// traces: the restore claims the lost copy (writing its epoch and
	// owner) and restores the counter. Only the copy is kept afterwards.
	claimCopy := func(t *testing.T, ns usedNamespace) string {
		key, counter := ns.Layout.CeilingKey(1, 0), ns.Layout.CounterKey(1)
		live := open(t, cl, ns.Name)
		loseKey(t, cl, ns.Name, key)
		loseKey(t, cl, ns.Name, counter)
		if _, err := live.Shards[1].Reserve(ctx10(t), 10, 0); err != nil {
			t.Fatalf("reserve on a lost counter: %v", err)
		}
		if !exists(t, cl, key) || !exists(t, cl, counter) {
			t.Fatalf("%s not claimed", key)
		}
		return key
	}
	for _, tc := range []struct {
		name    string
		rebuild func(*testing.T, usedNamespace) string
	}{
		{"RestoredCounter", restoreCounter},
		{"RepairedCopy", repairCopy},
		{"RaisedCopy", raiseCopy},
		{"ClaimedCopy", claimCopy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "rebuilt-" + strings.ToLower(tc.name)
			ns := createAndUse(t, cl, name)
			key := tc.rebuild(t, ns)
			if !traced(t, cl, name, key) {
				t.Fatalf("%s rebuilt without its trace", key)
			}
			keepOnly(t, cl, ns, key)
			refused(t, cl, name)
		})
	}
	for _, tc := range []struct {
		name    string
		rebuild func(*testing.T, usedNamespace) string
	}{
		{"RestoredCounter", restoreCounter},
		{"RepairedCopy", repairCopy},
	} {
		t.Run("NegativeControl/"+tc.name, func(t *testing.T) {
			namespace.SkipScriptTraces(t)
			name := "rebuilt-control-" + strings.ToLower(tc.name)
			ns := createAndUse(t, cl, name)
			key := tc.rebuild(t, ns)
			if traced(t, cl, name, key) {
				t.Fatalf("%s traced with script traces switched off", key)
			}
			keepOnly(t, cl, ns, key)
			again, err := namespace.Put(ctx10(t), cl, name, namespace.Spec{Shards: ptr(2)}, 0, shard.Options{})
			if err != nil || !again.Created {
				t.Fatalf("without script traces the recreation must succeed: %v", err)
			}
			repeats(t, cl, name, ns.ids)
		})
	}
}

// TestPausedCreator: a creator that checked for traces, then paused before
// it claimed the record while another process created the namespace (with
// another N), handed out IDs and lost the record and the index, is refused
// on waking: it checks again once the record is claimed. The negative
// control skips that second check: the creation succeeds and repeats IDs.
func TestPausedCreator(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portRebuilt + 10})
	cl := lc.Dial(cluster.Config{})

	// pause makes name's next creation, once it passed the first check,
	// wait while another creates it, uses it and loses its record.
	pause := func(t *testing.T, name string) *usedNamespace {
		var armed atomic.Bool
		armed.Store(true)
		other := new(usedNamespace)
		namespace.BeforeClaim(t, func(n string) {
			if n != name || !armed.CompareAndSwap(true, false) {
				return
			}
			*other = createAndUse(t, cl, name)
			loseRecord(t, cl, name, true)
		})
		return other
	}
	t.Run("Refused", func(t *testing.T) {
		other := pause(t, "paused")
		_, err := namespace.Put(ctx10(t), cl, "paused", namespace.Spec{Shards: ptr(2)}, 0, shard.Options{})
		if len(other.ids) == 0 {
			t.Fatal("the pause did not happen")
		}
		if !errors.Is(err, namespace.ErrNamespaceLost) {
			t.Fatalf("a creator that paused before its claim: %v, want ErrNamespaceLost", err)
		}
	})
	t.Run("NegativeControl", func(t *testing.T) {
		namespace.SkipClaimedCheck(t)
		other := pause(t, "paused-control")
		again, err := namespace.Put(ctx10(t), cl, "paused-control", namespace.Spec{Shards: ptr(2)}, 0, shard.Options{})
		if len(other.ids) == 0 {
			t.Fatal("the pause did not happen")
		}
		if err != nil || !again.Created {
			t.Fatalf("without the second check the paused creation must succeed: %v", err)
		}
		repeats(t, cl, "paused-control", other.ids)
	})
	t.Run("ConcurrentCreatorsAccepted", func(t *testing.T) {
		// Creators that adopt a record claimed by another write traces
		// that the first creator's second check may see: still accepted.
		const n = 6
		errs := make(chan error, n)
		for range n {
			go func() {
				_, err := namespace.Put(ctx10(t), cl, "paused-concurrent", namespace.Spec{Shards: ptr(4)}, 0, shard.Options{})
				errs <- err
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Errorf("concurrent creation: %v", err)
			}
		}
	})
}

// TestTraceCheckRefusesEviction: the trace check refuses a master whose
// eviction policy could have deleted a trace, as every script does.
func TestTraceCheckRefusesEviction(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portRebuilt + 20})
	cl := lc.Dial(cluster.Config{})
	if _, err := namespace.FindTrace(ctx10(t), cl, "evicted"); err != nil {
		t.Fatalf("trace check with noeviction: %v", err)
	}
	key := namespace.TraceKey(0)
	raw(t, cl, key, "CONFIG", "SET", "maxmemory-policy", "allkeys-lru")
	t.Cleanup(func() {
		_, node, err := cl.MasterForKey(key)
		if err == nil {
			_ = node.Do(context.Background(), "CONFIG", "SET", "maxmemory-policy", "noeviction").Err()
		}
	})
	if _, err := namespace.FindTrace(ctx10(t), cl, "evicted"); !errors.Is(err, shard.ErrUnsafeRedis) {
		t.Fatalf("trace check on an allkeys-lru master: %v, want ErrUnsafeRedis", err)
	}
}

// loseKey deletes key and the namespace's trace in its slot: what its
// master restarting empty would lose.
func loseKey(t *testing.T, cl *cluster.Cluster, name, key string) {
	t.Helper()
	del(t, cl, key)
	tk := namespace.TraceKey(cluster.Slot(key))
	raw(t, cl, tk, "SREM", tk, name)
}

func open(t *testing.T, cl *cluster.Cluster, name string) *namespace.Namespace {
	t.Helper()
	ns, err := namespace.Open(ctx10(t), cl, name, namespace.Settings{NoCreate: true}, shard.Options{})
	if err != nil {
		t.Fatalf("open %s: %v", name, err)
	}
	return ns
}

func exists(t *testing.T, cl *cluster.Cluster, key string) bool {
	t.Helper()
	_, node, err := cl.MasterForKey(key)
	if err != nil {
		t.Fatal(err)
	}
	n, err := node.Exists(context.Background(), key).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// traced reports whether name is in the trace set of key's slot.
func traced(t *testing.T, cl *cluster.Cluster, name, key string) bool {
	t.Helper()
	tk := namespace.TraceKey(cluster.Slot(key))
	_, node, err := cl.MasterForKey(tk)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := node.SIsMember(context.Background(), tk, name).Result()
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// repeats fails unless name, as it is now, hands out an ID of before.
func repeats(t *testing.T, cl *cluster.Cluster, name string, before []int64) {
	t.Helper()
	c, err := openClient(cl, client.Config{Namespace: name})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	after := take(t, c, len(before))
	dups := countRepeats(before, after)
	if dups == 0 {
		t.Fatalf("negative control: no ID repeated (before %d..%d, after %d..%d)",
			slices.Min(before), slices.Max(before), slices.Min(after), slices.Max(after))
	}
	t.Logf("negative control: %d of %d IDs repeated by the recreated namespace", dups, len(after))
}
