package shard_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// portTouch: package shard's clusters (ARCHITECTURE.md, "Ports in tests").
const portTouch = 7960

// TestRaiseThatChangedNothingIsReplicated: a ceiling raise that finds the
// copy already higher (another connection raised it) writes nothing. On
// Valkey 8, WAIT then counts only the writes of the raise's own connection
// and is acknowledged at once, although the other connection's value may not
// have reached a replica: the copy's master could fail over to a replica
// without it, below the IDs handed out under it. (Redis 7.0 moves a
// connection's WAIT offset on every command and waits anyway.) With the
// copy's replica frozen, the raise must not be confirmed on either engine.
// The negative control lets the raise write nothing: Valkey confirms it.
func TestRaiseThatChangedNothingIsReplicated(t *testing.T) {
	for i, engine := range []localcluster.Engine{localcluster.EngineValkey, localcluster.EngineRedis} {
		t.Run(string(engine), func(t *testing.T) {
			raiseOnFrozenReplica(t, engine, portTouch+10*i)
		})
	}
}

func raiseOnFrozenReplica(t *testing.T, engine localcluster.Engine, port int) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: port, Engine: engine})
	cl := lc.Dial(cluster.Config{})
	opt := shard.Options{AckTimeout: 300 * time.Millisecond}

	reserve := func(t *testing.T, name string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		// The creation waits for replicas as long as the raise will: on a
		// loaded machine a replica can miss that, so it is tried again.
		var ns *namespace.Namespace
		clustertest.Eventually(t, 15*time.Second, func() (err error) {
			ns, err = namespace.Open(ctx, cl, name, namespace.Settings{Shards: 3}, opt)
			return err
		})
		s := ns.Shards[0]
		key := s.CeilingKeys[0]
		master := lc.MasterOf(key)
		replica := lc.ReplicasOf(master)[0]
		other := redis.NewClient(&redis.Options{Addr: master})
		defer other.Close()
		// Everything written so far reached the replica and was
		// acknowledged: the only write it lacks is the one below.
		synced(t, other, key)
		lc.Pause(replica)
		defer lc.Resume(replica)
		// Another connection's raise, far above what this test reserves,
		// on the master only.
		if err := other.HSet(ctx, key, "v", int64(1)<<50).Err(); err != nil {
			t.Fatal(err)
		}
		// A block past the ceiling the new counter registered (FirstLease
		// ahead) raises every copy; copy 0 is already higher.
		_, err := s.Reserve(ctx, 2*shard.FirstLease, 0)
		return err
	}

	t.Run("defence", func(t *testing.T) {
		err := reserve(t, "touch")
		if !errors.Is(err, shard.ErrNotReplicated) {
			t.Fatalf("a raise resting on a value the frozen replica never got was confirmed (err %v); want %v", err, shard.ErrNotReplicated)
		}
	})
	if engine != localcluster.EngineValkey {
		return
	}
	t.Run("control", func(t *testing.T) {
		shard.SkipCeilingTouch(t)
		if err := reserve(t, "touch-control"); err != nil {
			t.Fatalf("control: without the rewrite Valkey should confirm the raise at once (that is the hole), got %v", err)
		}
	})
}

// synced waits until every replica of master acknowledged its whole
// replication stream (WAIT on a connection that just wrote).
func synced(t *testing.T, master *redis.Client, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn := master.Conn()
	defer conn.Close()
	for ctx.Err() == nil {
		// A write on this connection puts its offset at the end of the stream.
		// (In key's slot, so that this master takes it.)
		tag := key[strings.Index(key, "{")+1 : strings.Index(key, "}")]
		if err := conn.Set(ctx, "{"+tag+"}:sync", "1", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := conn.Do(ctx, "WAIT", 1, 1000).Int(); err == nil && n >= 1 {
			return
		}
	}
	t.Fatal("the replica never acknowledged the master's stream")
}
