//go:build integration

package integration

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/internal/lab/checker"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// A process that stalls between its reservation and the raise of the
// ceiling covering it, while the counter's master restarts empty and another
// process restores the counter: the restore's claim must fence the stalled
// raise (a newer epoch on every copy), or the stalled block is handed out
// above the floor the restore continued from. Deterministic: the stall is a
// gate in front of the raise, standing for a GC pause or SIGSTOP of a real
// process. It fails on core c8d69df (the claim keeps epoch 1; 1000 IDs
// repeat) and must pass once a claim's epoch is above every copy's.
func TestStall_RaiseAcrossRestore(t *testing.T) {
	c := startCluster(t, Opts{})
	const ns = "stall"
	first := newClient(t, c, client.Config{Namespace: ns, Shards: 1, Strict: true})
	for k := 0; k < 1000; k++ {
		if _, err := first.Next(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// The stall is a gate in front of the raise (see gatedRouter).
	raise := newGate(hasArg("raise"), false)
	r := newGatedRouter(t, c, raise)
	conn := r.Cluster
	sns, err := namespace.Open(context.Background(), r, ns, namespace.Settings{}, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := sns.Shards[0]
	type result struct {
		b   shard.Block
		err error
	}
	res := make(chan result, 1)
	go func() {
		b, err := s.Reserve(context.Background(), 1<<24, 0) // the largest block a client reserves
		res <- result{b, err}
	}()
	select {
	case <-raise.reached:
	case rr := <-res:
		t.Fatalf("reserve returned without a raise: %+v %v", rr.b, rr.err)
	case <-time.After(10 * time.Second):
		t.Fatal("no raise")
	}
	state := func(when string) {
		cc := conn.ClusterClient()
		ctx := context.Background()
		t.Logf("%s: counter %s = %v", when, s.Key, cc.HGetAll(ctx, s.Key).Val())
		for _, k := range s.CeilingKeys {
			t.Logf("%s: ceiling %s on %s = %v", when, k, c.MasterOf(k), cc.HGetAll(ctx, k).Val())
		}
	}
	state("T1 stalled process holds its reservation, its raise waits")
	m := c.MasterOf(s.Key)
	c.RestartEmpty(m)
	t.Logf("T2 counter master %s restarted empty", m)
	c.WaitHealthy(60 * time.Second)
	after := newClient(t, c, client.Config{Namespace: ns, Shards: 1, Strict: true,
		Breaker: failover.BreakerConfig{OpenFor: 100 * time.Millisecond}})
	ck := checker.New().WithShards(1)
	rec := ck.Recorder()
	clustertest.Eventually(t, 30*time.Second, func() error {
		id, err := after.Next(context.Background())
		if err != nil {
			return err
		}
		rec.Ack(0, id)
		return nil
	})
	for k := 0; k < 999; k++ {
		id, err := after.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		rec.Ack(0, id)
	}
	state("T3 a fresh client restored the counter and took 1000 IDs")
	close(raise.release)
	rr := <-res
	if rr.err != nil {
		t.Logf("stalled reservation refused: %v", rr.err)
		return
	}
	state("T4 the stalled process resumed; its raise was accepted")
	t.Logf("stalled reservation returned block %d..%d (epoch of its reply: the old history's)", rr.b.Lo, rr.b.Hi)
	for q := rr.b.Lo; q <= rr.b.Hi; q++ {
		rec.Ack(0, rr.b.ID(q-rr.b.Lo))
	}
	rep := ck.Report()
	if !rep.OK() {
		t.Fatalf("duplicates: %s", fmt.Sprint(rep))
	}
}
