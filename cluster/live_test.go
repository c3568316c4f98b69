package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// Ports of this package's tests: 7160-7199 (bus ports 17160-17199); the
// launcher's tests use 7100-7149.
const (
	portMain       = 7160 // 6 nodes
	portStandalone = 7170
	portClosed     = 7199
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestLive runs the connection against one real cluster (3 masters, 1
// replica each).
func TestLive(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lc := clustertest.Start(t, localcluster.Config{BasePort: portMain})
	goroutines := runtime.NumGoroutine() // the launcher's own stay until the test ends
	addrs := lc.Addrs()
	c, err := cluster.Dial(ctx, cluster.Config{Addrs: addrs[:1], RefreshInterval: -1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	top := c.Topology()
	if !top.Covered() || len(top.Masters) != 3 || top.Generation != 1 {
		t.Fatalf("topology: covered %v masters %d gen %d", top.Covered(), len(top.Masters), top.Generation)
	}

	t.Run("KeySlotMatchesRedis", func(t *testing.T) {
		cl := c.Node(addrs[0])
		for _, k := range []string{"", "123456789", "foo", "{}foo", "foo{bar}", "foo{}{bar}", "foo{{bar}}zap",
			"{user1000}.following", "{user1000}.followers", "shardseq:{orders:3}:ctr", "ü{ñ}"} {
			want, err := cl.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := cluster.Slot(k); int64(got) != want {
				t.Errorf("Slot(%q) = %d, CLUSTER KEYSLOT = %d", k, got, want)
			}
		}
	})

	t.Run("NodesFallbackAgrees", func(t *testing.T) {
		text, err := c.Node(addrs[4]).ClusterNodes(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		ms, err := cluster.MastersFromNodes(text)
		if err != nil {
			t.Fatal(err)
		}
		fromNodes, err := cluster.NewTopology(ms, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !cluster.EqualContent(fromNodes, top) {
			t.Fatalf("CLUSTER NODES view %+v\n!= CLUSTER SHARDS view %+v", fromNodes.Masters, top.Masters)
		}
	})

	t.Run("MasterForKeyAndRedirect", func(t *testing.T) {
		const key = "{orders:1}:ctr"
		m, cl, err := c.MasterForKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if want := lc.MasterOf(key); want != m.Addr {
			t.Fatalf("MasterForKey %s, the cluster says %s", m.Addr, want)
		}
		if err := cl.Set(ctx, key, 1, 0).Err(); err != nil {
			t.Fatal(err)
		}
		wrong := addrs[0]
		if wrong == m.Addr {
			wrong = addrs[1]
		}
		err = c.Node(wrong).Set(ctx, key, 2, 0).Err()
		addr, ask, ok := cluster.IsRedirect(err)
		if !ok || ask || addr != m.Addr {
			t.Fatalf("IsRedirect(%v) = %q %v %v, want MOVED to %s", err, addr, ask, ok, m.Addr)
		}
		if cluster.IsClusterDown(err) {
			t.Fatal("MOVED classified as cluster down")
		}
		err = c.Node(addrs[3]).Set(ctx, "x", 1, 0).Err() // a replica
		if _, _, ok := cluster.IsRedirect(err); !ok {
			t.Fatalf("write to replica: %v, want MOVED", err)
		}
		if err := c.ClusterClient().Incr(ctx, key).Err(); err != nil {
			t.Fatalf("ClusterClient: %v", err)
		}
	})

	t.Run("LazyReloadCoalesces", func(t *testing.T) {
		before := shardsCalls(ctx, t, c, addrs)
		readBefore := c.ReadAt()
		for range 2000 {
			c.LazyReload()
		}
		clustertest.Eventually(t, 5*time.Second, func() error {
			if c.Reloading() {
				return errors.New("still reloading")
			}
			return nil
		})
		calls := shardsCalls(ctx, t, c, addrs) - before
		t.Logf("2000 LazyReload calls cost %d CLUSTER SHARDS round trips", calls)
		if calls < 1 || calls > 2 {
			t.Fatalf("2000 LazyReload calls cost %d CLUSTER SHARDS calls, want 1 or 2", calls)
		}
		if g := c.Topology().Generation; g != 1 {
			t.Fatalf("unchanged topology bumped generation to %d", g)
		}
		// The read is recorded although the snapshot (and its CreatedAt) is kept.
		if !c.ReadAt().After(readBefore) || !c.ReadAt().After(c.Topology().CreatedAt) {
			t.Fatalf("ReadAt %v after a reload (before %v, snapshot created %v)", c.ReadAt(), readBefore, c.Topology().CreatedAt)
		}
	})

	// A URL with addr parameters names the seeds, and NewClient makes every
	// go-redis client: the cluster client's node clients and Node's, so a
	// hook added there sees every command.
	t.Run("URLAndNewClient", func(t *testing.T) {
		var made, seen atomic.Int64
		hook := countHook{&seen}
		c2, err := cluster.Dial(ctx, cluster.Config{URL: "redis://" + addrs[0] + "?addr=" + addrs[1], RefreshInterval: -1, ProbeInterval: -1,
			Logger: quiet(), NewClient: func(opt *redis.Options) *redis.Client {
				made.Add(1)
				rc := redis.NewClient(opt)
				rc.AddHook(hook)
				return rc
			}})
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		if !cluster.EqualContent(c2.Topology(), top) {
			t.Fatalf("topology through the URL: %+v", c2.Topology().Masters)
		}
		if err := c2.ClusterClient().Set(ctx, "url-test", "1", time.Minute).Err(); err != nil {
			t.Fatal(err)
		}
		if err := c2.Node(addrs[2]).Ping(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if made.Load() < 2 || seen.Load() < 3 { // CLUSTER SHARDS, SET, PING at least
			t.Fatalf("NewClient made %d clients whose hooks saw %d commands", made.Load(), seen.Load())
		}
	})

	t.Run("ReloadAfterFailover", func(t *testing.T) {
		victim, replica := addrs[1], addrs[4] // the launcher's layout: replica of master i is node 3+i
		slot := top.Masters[1].Slots[0][0]
		gen := c.Topology().Generation
		lc.Kill(victim)
		lc.WaitPromoted(victim, 30*time.Second)
		lc.WaitHealthy(30 * time.Second)
		top2, err := c.Reload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m, ok := top2.MasterForSlot(slot)
		if !ok || m.Addr != replica || top2.Generation <= gen {
			t.Fatalf("after failover slot %d -> %+v (gen %d, was %d), want %s", slot, m.Node, top2.Generation, gen, replica)
		}
		if _, ok := top2.MasterByAddr(victim); ok {
			t.Fatalf("dead ex-master still listed as master: %+v", top2.Masters)
		}
		if len(top2.Down) != 1 || top2.Down[0].Addr != victim || !top2.Down[0].Failed {
			t.Fatalf("dead ex-master not in Down: %+v", top2.Down)
		}
		// Writes go through on the promoted master.
		if err := c.Node(replica).Set(ctx, keyOn(t, top2, replica), 1, 0).Err(); err != nil {
			t.Fatal(err)
		}
		lc.Start(victim)
		lc.WaitHealthy(30 * time.Second)
		top3, err := c.Reload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := top3.MasterByAddr(replica); len(m.Replicas) != 1 || m.Replicas[0].Addr != victim || top3.Generation <= top2.Generation {
			t.Fatalf("after rejoin: %+v gen %d", m, top3.Generation)
		}
		if len(top3.Down) != 0 {
			t.Fatalf("rejoined node still down: %+v", top3.Down)
		}
	})

	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Reload(ctx); !errors.Is(err, cluster.ErrClosed) {
		t.Fatalf("Reload after Close: %v", err)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > goroutines {
			return fmt.Errorf("%d goroutines, %d before", n, goroutines)
		}
		return nil
	})
}

// shardsCalls sums CLUSTER SHARDS calls over all nodes (INFO commandstats).
func shardsCalls(ctx context.Context, t *testing.T, c *cluster.Cluster, addrs []string) int {
	t.Helper()
	total := 0
	for _, a := range addrs {
		info, err := c.Node(a).Info(ctx, "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(info) {
			if rest, ok := strings.CutPrefix(line, "cmdstat_cluster|shards:calls="); ok {
				n, _ := strconv.Atoi(rest[:strings.IndexByte(rest, ',')])
				total += n
			}
		}
	}
	return total
}

// keyOn returns a key whose slot is served by addr.
func keyOn(t *testing.T, top *cluster.Topology, addr string) string {
	t.Helper()
	for i := range 10000 {
		k := fmt.Sprintf("k%d", i)
		if m, ok := top.MasterForSlot(cluster.Slot(k)); ok && m.Addr == addr {
			return k
		}
	}
	t.Fatalf("no key for %s", addr)
	return ""
}

func TestDialErrors(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not in PATH; install it: apt-get install redis-server (Debian)")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	closed := fmt.Sprintf("127.0.0.1:%d", portClosed)
	ln, err := net.Listen("tcp", closed)
	if err != nil {
		t.Fatalf("port %d must be free: %v", portClosed, err)
	}
	_ = ln.Close()
	_, err = cluster.Dial(ctx, cluster.Config{Addrs: []string{closed}, Logger: quiet()})
	// The advice (which command to run) is cmd's to give: a library error
	// names no command.
	if !errors.Is(err, cluster.ErrUnreachable) || !strings.Contains(err.Error(), closed) || strings.Contains(err.Error(), "shardseq") {
		t.Fatalf("Dial(closed port) = %v, want ErrUnreachable naming %s and no command", err, closed)
	}

	// A standalone redis-server, stopped by PID.
	dir := t.TempDir()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(portStandalone), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", "redis.log")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", portStandalone)
	cl := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer cl.Close()
	clustertest.Eventually(t, 10*time.Second, func() error { return cl.Ping(ctx).Err() })
	_, err = cluster.Dial(ctx, cluster.Config{Addrs: []string{addr}, Logger: quiet()})
	if !errors.Is(err, cluster.ErrNotCluster) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Dial(standalone) = %v, want ErrNotCluster", err)
	}
	t.Logf("standalone: %v", err)

	// Both: the standalone answer wins over the unreachable seed.
	_, err = cluster.Dial(ctx, cluster.Config{Addrs: []string{closed, addr}, Logger: quiet()})
	if !errors.Is(err, cluster.ErrNotCluster) {
		t.Fatalf("Dial(closed, standalone) = %v, want ErrNotCluster", err)
	}
	if _, err := cluster.Dial(ctx, cluster.Config{}); !errors.Is(err, cluster.ErrInvalidConfig) {
		t.Fatalf("Dial(empty config) = %v", err)
	}
}

// countHook counts the commands sent through the clients it is added to.
type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(int64(len(cmds)))
		return next(ctx, cmds)
	}
}
