package namespace_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// TestCrashedCreatorFinished: a creator that dies after it sent its first
// key write leaves the record claimed and unready. If it registered a
// deadline (this version), the next open waits until that deadline has
// passed, then finishes the creation; if it did not (a record claimed by an
// older version, or with the guard off), the next open finishes it at once.
// Either way the namespace then serves.
func TestCrashedCreatorFinished(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portFresh + 20})
	cl := lc.Dial(cluster.Config{})
	const ttl, margin = 3 * time.Second, 300 * time.Millisecond
	namespace.SetCreationTTL(t, ttl, margin)

	// crash runs a creation of name that dies at its first key write.
	crash := func(t *testing.T, name string) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var once atomic.Bool
		namespace.BeforeCreate(t, func(string) {
			if once.CompareAndSwap(false, true) {
				cancel()
			}
		})
		if _, err := namespace.Open(ctx, cl, name, namespace.Settings{Shards: 2}, shard.Options{}); err == nil {
			t.Fatal("the crashed creation succeeded")
		}
	}
	finish := func(t *testing.T, name string) time.Duration {
		start := time.Now()
		ns, err := namespace.Open(ctx10(t), cl, name, namespace.Settings{}, shard.Options{})
		if err != nil {
			t.Fatalf("open after a crashed creation: %v", err)
		}
		took := time.Since(start)
		if _, err := ns.Shards[1].Reserve(ctx10(t), 10, 0); err != nil {
			t.Fatalf("reserve after the creation was finished: %v", err)
		}
		return took
	}
	t.Run("Registered", func(t *testing.T) {
		crash(t, "crashed-new")
		if took := finish(t, "crashed-new"); took < ttl-time.Second {
			t.Fatalf("finished a registered creation after %v, before its deadline (%v)", took, ttl)
		} else {
			t.Logf("finished after %v (deadline %v + %v)", took, ttl, margin)
		}
	})
	t.Run("OlderVersion", func(t *testing.T) {
		// A creator without the guard (an older version) registers nothing.
		t.Run("Crash", func(t *testing.T) {
			namespace.SkipFreshness(t)
			crash(t, "crashed-old")
		})
		if took := finish(t, "crashed-old"); took > time.Second {
			t.Fatalf("a record claimed without registration finished after %v, want at once", took)
		} else {
			t.Logf("finished after %v", took)
		}
	})
}
