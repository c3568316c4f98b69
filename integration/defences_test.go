//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/shard"
)

// reserveFrom takes IDs in strict mode until one comes from shard i.
func idFromShard(t *testing.T, c *client.Client, i, n int) int64 {
	t.Helper()
	for k := 0; k < 200; k++ {
		id, err := c.Next(context.Background())
		if err != nil {
			continue
		}
		if s, _ := shard.Decode(id, n); s == i {
			return id
		}
	}
	t.Fatalf("no ID from shard %d in 200 tries: %+v", i, c.Shards()[i])
	return 0
}

// Failover fencing: after the master of a shard is killed and its replica
// promoted (a new history), the counter continues above its ceiling, read
// from the ceiling copies on the other masters: above every ID handed out,
// skipping at most a lease, also for a client started after the failover
// that never saw the old master.
func TestFence_JumpsAfterPromotion(t *testing.T) {
	c := startCluster(t, Opts{})
	const n = 3
	before := newClient(t, c, client.Config{Namespace: "fenced", Shards: n, Strict: true})
	victim := before.Shards()[0]
	last := idFromShard(t, before, 0, n)
	old := c.MasterOf(victim.Key)
	c.Kill(old)
	c.WaitPromoted(old, 30*time.Second)
	// The promoted master has no replica until the old node rejoins, and a
	// shard without a replica hands out nothing: bring the old node back.
	c.Start(old)
	c.WaitHealthy(60 * time.Second)
	after := newClient(t, c, client.Config{Namespace: "fenced", Shards: n, Strict: true,
		Breaker: failover.BreakerConfig{OpenFor: 100 * time.Millisecond}})
	var first int64
	clustertest.Eventually(t, 30*time.Second, func() error {
		id, err := after.Next(context.Background())
		if err != nil {
			return err
		}
		if s, _ := shard.Decode(id, n); s != 0 {
			return fmt.Errorf("got shard %d", s)
		}
		first = id
		return nil
	})
	_, lastSeq := shard.Decode(last, n)
	_, firstSeq := shard.Decode(first, n)
	if firstSeq <= lastSeq || firstSeq-lastSeq > 2*shard.FirstLease {
		t.Fatalf("counter moved from seq %d to %d after promotion; want it above, by at most the first lease %d", lastSeq, firstSeq, shard.FirstLease)
	}
	t.Logf("promotion skipped %d sequence numbers", firstSeq-lastSeq-1)
	// Whoever reached the promoted master first (a client, or the repairs
	// that follow the master probes) restored the counter: its epoch moved.
	epoch, err := rawRedis(t, c).HGet(context.Background(), victim.Key, "epoch").Int64()
	if err != nil || epoch < 2 {
		t.Fatalf("the counter's epoch is %d (%v); a restore must give it a new one", epoch, err)
	}
}

// A master that comes back empty (no persistence) before any failover loses
// the counter on both nodes; the counter is restored from its ceiling copies
// on the other masters, ahead of every ID handed out.
func TestRestartEmpty_RestoresFromCeiling(t *testing.T) {
	c := startCluster(t, Opts{})
	const n = 3
	cl := newClient(t, c, client.Config{Namespace: "wiped", Shards: n, Strict: true,
		Breaker: failover.BreakerConfig{OpenFor: 100 * time.Millisecond}})
	var last int64
	for k := 0; k < 50; k++ {
		last = max(last, idFromShard(t, cl, 1, n))
	}
	key := cl.Shards()[1].Key
	m := c.MasterOf(key)
	c.RestartEmpty(m)
	c.WaitHealthy(60 * time.Second)
	rdb := rawRedis(t, c)
	fresh := newClient(t, c, client.Config{Namespace: "wiped", Shards: n, Strict: true})
	var got int64
	clustertest.Eventually(t, 30*time.Second, func() error {
		got = idFromShard(t, fresh, 1, n)
		return nil
	})
	if got <= last {
		t.Fatalf("restored counter handed out %d, at or below the last ID %d before the wipe", got, last)
	}
	// The restore (by a client, or by the repairs after the master's new
	// identity was probed) gave the counter a new epoch.
	if epoch, err := rdb.HGet(context.Background(), key, "epoch").Int64(); err != nil || epoch < 2 {
		t.Fatalf("the counter's epoch is %d (%v); a restore must give it a new one", epoch, err)
	}
}

// A master cut off from its replica (clients still reach it) hands out
// nothing: WAIT cannot succeed, so its blocks are discarded and its shard
// steps aside while the others serve. After healing it serves again.
func TestPartition_CutMasterHandsOutNothing(t *testing.T) {
	c := startCluster(t, Opts{Partitions: true})
	const n = 3
	cl := newClient(t, c, client.Config{Namespace: "cut", Shards: n, Strict: true,
		Breaker: failover.BreakerConfig{OpenFor: 200 * time.Millisecond}, ProbeInterval: 100 * time.Millisecond})
	key := cl.Shards()[2].Key
	m := c.MasterOf(key)
	replicas := c.ReplicasOf(m)
	if len(replicas) == 0 {
		t.Fatalf("%s has no replica", m)
	}
	c.Partition(m, replicas...)
	healed := false
	defer func() {
		if !healed {
			c.Heal()
		}
	}()
	// Every ID acknowledged during the cut must come from the other shards.
	deadline := time.Now().Add(3 * time.Second)
	served := 0
	for time.Now().Before(deadline) {
		id, err := cl.Next(context.Background())
		if err != nil {
			t.Fatalf("other shards should serve during the cut: %v", err)
		}
		if s, _ := shard.Decode(id, n); s == 2 {
			t.Fatalf("ID %d came from the cut master's shard", id)
		}
		served++
	}
	st := cl.Shards()[2]
	if st.Healthy || !errors.Is(errFromText(st.LastError), shard.ErrNotReplicated) {
		t.Fatalf("cut shard should be unhealthy for lack of replication: %+v", st)
	}
	c.Heal()
	healed = true
	clustertest.Eventually(t, 30*time.Second, func() error {
		if !cl.Shards()[2].Healthy {
			return errors.New("shard 2 not healthy again")
		}
		return nil
	})
	idFromShard(t, cl, 2, n)
	t.Logf("served %d IDs from the other shards during the cut", served)
}

func errFromText(s string) error {
	if len(s) > 0 && contains(s, "not replicated") {
		return shard.ErrNotReplicated
	}
	return errors.New(s)
}

// A counter that moves backwards (someone reset it, or a stale copy was
// promoted with fencing off) is detected and its block refused.
func TestCounterRegression_Refused(t *testing.T) {
	c := startCluster(t, Opts{})
	const n = 1
	cl := newClient(t, c, client.Config{Namespace: "rewound", Shards: n, Strict: true})
	for k := 0; k < 10; k++ {
		if _, err := cl.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	key := cl.Shards()[0].Key
	if err := rawRedis(t, c).HSet(context.Background(), key, "seq", 3).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := cl.Next(context.Background())
	if !errors.Is(err, shard.ErrCounterRegressed) {
		t.Fatalf("want ErrCounterRegressed, got %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}
