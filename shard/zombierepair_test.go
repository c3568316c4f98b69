package shard

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
)

const portZombieRepair = 7850

// pinned is a client whose slot map is stale for one key: it still sends it
// to the master it knew (a real client keeps its map until a MOVED).
type pinned struct {
	*cluster.Cluster
	key  string
	m    cluster.Master
	node *redis.Client
}

func (p *pinned) MasterForKey(key string) (cluster.Master, *redis.Client, error) {
	if key == p.key {
		return p.m, p.node, nil
	}
	return p.Cluster.MasterForKey(key)
}

// TestZombieCounterRepair: a repair whose counter look is not acknowledged
// trusts a superseded master's counter. Counter K on M1 (replicas R1, R1b),
// copies on M2 and M3. M1 is frozen, R1 promoted; the live history restores
// K and hands out IDs MaxLease above the old counter. M2 and M3 then restart
// empty (both copies lost, no copy trusted). M1 resumes cut off from the
// cluster bus (still serving clients for cluster-node-timeout), and a
// process with a stale slot map repairs the shard there: without an
// acknowledged look it makes both copies trusted at the zombie's counter
// plus MaxLease, below IDs the live history handed out; the live counter's
// master then restarts from a dump and restores above the copies: the same
// IDs again. With the look acknowledged the repair fails on the zombie and
// the restore fails closed (ErrCeilingLost).
func TestZombieCounterRepair(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 2, BasePort: portZombieRepair, Partitions: true})
	cl := lc.Dial(cluster.Config{})
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		return c
	}
	keys := keysOnMasters(t, cl, 1)[0]
	cfg := Config{Router: cl, Namespace: "zrep", Index: 0, Shards: 1, Start: 1, Key: keys[0], CeilingKeys: keys[1:]}
	q := New(cfg)
	if err := q.Create(ctx(), 2000, 0); err != nil {
		t.Fatalf("create: %v", err)
	}
	b, err := q.Reserve(ctx(), 100, 0)
	if err != nil {
		t.Fatalf("reserve: %v", err)
	}
	s0 := b.Hi
	m1, m1node, err := cl.MasterForKey(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	copyMasters := []string{lc.MasterOf(keys[1]), lc.MasterOf(keys[2])}

	// M1 cut off from every other node (clients still reach it) and frozen
	// at once, before its cron sees anyone missing: on resume it still
	// believes it serves the slot, and nothing tells it otherwise. R1 is
	// promoted; the live history restores and hands out a block straddling
	// s0+MaxLease.
	var others []string
	for _, a := range lc.Addrs() {
		if a != m1.Addr {
			others = append(others, a)
		}
	}
	lc.Partition(m1.Addr, others...)
	lc.Pause(m1.Addr)
	lc.WaitPromoted(m1.Addr, 30*time.Second)
	clustertest.Eventually(t, 10*time.Second, func() error { _, err := cl.Reload(ctx()); return err })
	clustertest.Eventually(t, 30*time.Second, func() error { _, err := q.Reserve(ctx(), 1, 0); return err })
	r1 := lc.MasterOf(keys[0])
	lc.Save(r1) // a dump of the live history before its big block
	level := s0 + MaxLease - 500
	var live Block
	clustertest.Eventually(t, 30*time.Second, func() error {
		live, err = q.Reserve(ctx(), 1000, level)
		return err
	})
	t.Logf("old counter %d; live history handed out %d..%d (epoch now >= 2)", s0, live.Lo, live.Hi)

	// Both copies' masters restart empty: no copy trusted, epochs gone.
	for _, m := range copyMasters {
		lc.RestartEmpty(m)
	}
	for _, m := range copyMasters {
		clustertest.Eventually(t, 30*time.Second, func() error {
			info, err := cl.Node(m).Info(ctx(), "replication").Result()
			if err != nil {
				return err
			}
			if !strings.Contains(info, "connected_slaves:2") || strings.Count(info, "state=online") < 2 {
				return errors.New("replicas not online yet: " + m)
			}
			ci, err := cl.Node(m).ClusterInfo(ctx()).Result()
			if err != nil {
				return err
			}
			if !strings.Contains(ci, "cluster_state:ok") {
				return errors.New("cluster state not ok on " + m)
			}
			return nil
		})
	}

	// M1 resumes, still cut off: a zombie of the old history.
	lc.Resume(m1.Addr)
	p := New(cfg)
	p.r = &pinned{Cluster: cl, key: keys[0], m: m1, node: m1node}

	// What the repair's counter look used to be: acknowledged. On the
	// zombie it fails (its replicas follow R1 now).
	a := p.args(0, 0)
	a.Confirmed = 0
	if _, _, _, err := p.run(ctx(), a); err == nil {
		t.Errorf("control: an acknowledged counter look on the zombie succeeded")
	} else {
		t.Logf("control: acknowledged look on the zombie: %v", err)
	}
	info, _ := m1node.ClusterInfo(ctx()).Result()
	role, _ := m1node.Info(ctx(), "replication").Result()
	t.Logf("zombie %s: %q; %q", m1.Addr, firstLine(info), firstLine(strings.TrimPrefix(role, "# Replication\r\n")))
	res, err := p.Repair(ctx())
	t.Logf("repair via the zombie: %+v, %v", res, err)
	lc.Heal()

	clustertest.Eventually(t, 30*time.Second, func() error { _, err := cl.Reload(ctx()); return err })
	reps, errs := q.onCopies(ctx(), ceilingArgs{Op: ceilRead})
	for c, r := range reps {
		if errs[c] != nil {
			t.Logf("copy %s: %v", keys[1+c], errs[c])
			continue
		}
		t.Logf("copy %s: v %d trusted %v epoch %d", keys[1+c], r.V, r.Trusted, r.Epoch)
		if r.Trusted && r.V < live.Hi {
			t.Errorf("copy %s trusted at %d, below ID %d handed out by the live history (Invariant I broken)", keys[1+c], r.V, live.Hi)
		}
	}

	// The live counter's master then restarts from its dump (a rewind the
	// ceilings exist for): the restore trusts the copies the zombie repaired.
	lc.WaitHealthy(60 * time.Second)
	lc.RestartFromFiles(r1)
	lc.WaitHealthy(60 * time.Second)
	clustertest.Eventually(t, 10*time.Second, func() error { _, err := cl.Reload(ctx()); return err })
	z := New(cfg) // another process
	var got Block
	clustertest.Eventually(t, 30*time.Second, func() error {
		got, err = z.Reserve(ctx(), 100, 0)
		if errors.Is(err, ErrCeilingLost) {
			return nil // fail closed: no copy was made trusted from the zombie
		}
		return err
	})
	if err != nil {
		t.Logf("after the rewind of %s: %v (fail closed)", r1, err)
		return
	}
	t.Logf("after the failover of %s: block %d..%d (fence %v)", r1, got.Lo, got.Hi, got.Fence)
	if got.Lo <= live.Hi && got.Hi >= live.Lo {
		t.Errorf("DUPLICATE: block %d..%d overlaps %d..%d handed out before", got.Lo, got.Hi, live.Lo, live.Hi)
	}

}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\r\n"); return l }
