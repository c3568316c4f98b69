package cluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Ports of this package's tests: 7100-7199 (bus ports 17100-17199).
const (
	portMain       = 7100 // 6 nodes
	portCLI        = 7110 // 3 nodes
	portStandalone = 7120
	portBusy       = 7130
	portClosed     = 7199
)

func requireRedis(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not in PATH; install it: apt-get install redis-server (Debian)")
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// eventually polls f until it returns nil, failing the test at the deadline.
func eventually(t *testing.T, what string, timeout time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %v: %v", what, timeout, err)
		}
		time.Sleep(20 * time.Millisecond) // poll tick, not synchronisation
	}
}

func TestLocalCluster(t *testing.T) {
	requireRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	dir := t.TempDir()
	goroutines := runtime.NumGoroutine()

	start := time.Now()
	lc, err := StartLocal(ctx, LocalConfig{BasePort: portMain, Dir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lc.Close() })
	t.Logf("StartLocal 3x1: %v", time.Since(start).Round(time.Millisecond))

	if _, err := os.Stat(filepath.Join(dir, StateFile)); err != nil {
		t.Fatalf("state file: %v", err)
	}
	if len(lc.Addrs()) != 6 || lc.Addrs()[0] != "127.0.0.1:7100" {
		t.Fatalf("Addrs = %v", lc.Addrs())
	}
	if n, ok := lc.NodeByAddr("127.0.0.1:7104"); !ok || n.Index != 4 || n.PID == 0 || len(n.ID) != 40 ||
		n.Dir != filepath.Join(dir, "node-4") {
		t.Fatalf("NodeByAddr = %+v %v", n, ok)
	}

	c, err := Dial(ctx, Config{Addrs: lc.Addrs()[:1], RefreshInterval: -1, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	top := c.Topology()
	if !top.Covered() || len(top.Masters) != 3 || top.Generation != 1 {
		t.Fatalf("topology: covered %v masters %d gen %d", top.Covered(), len(top.Masters), top.Generation)
	}
	even := EvenSlotRanges(3)
	for i, m := range top.Masters {
		// Launcher layout: master i is node i, its replica node 3+i.
		if m.Addr != lc.Addrs()[i] || !m.Master || m.Failed || len(m.ID) != 40 {
			t.Errorf("master %d: %+v", i, m.Node)
		}
		if !slices.Equal(m.Slots, [][2]int{even[i]}) {
			t.Errorf("master %d slots %v, want %v", i, m.Slots, even[i])
		}
		if len(m.Replicas) != 1 || m.Replicas[0].Addr != lc.Addrs()[3+i] || m.Replicas[0].Failed {
			t.Errorf("master %d replicas %+v", i, m.Replicas)
		}
	}

	t.Run("KeySlotMatchesRedis", func(t *testing.T) {
		cl := c.Node(lc.Addrs()[0])
		for _, k := range []string{"", "123456789", "foo", "{}foo", "foo{bar}", "foo{}{bar}", "foo{{bar}}zap",
			"{user1000}.following", "{user1000}.followers", "shardseq:{orders:3}:ctr", "ü{ñ}"} {
			want, err := cl.ClusterKeySlot(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if got := Slot(k); int64(got) != want {
				t.Errorf("Slot(%q) = %d, CLUSTER KEYSLOT = %d", k, got, want)
			}
		}
	})

	t.Run("NodesFallbackAgrees", func(t *testing.T) {
		text, err := c.Node(lc.Addrs()[4]).ClusterNodes(ctx).Result()
		if err != nil {
			t.Fatal(err)
		}
		ms, err := mastersFromNodes(text)
		if err != nil {
			t.Fatal(err)
		}
		fromNodes, err := NewTopology(ms, 0)
		if err != nil {
			t.Fatal(err)
		}
		if !fromNodes.equalContent(top) {
			t.Fatalf("CLUSTER NODES view %+v\n!= CLUSTER SHARDS view %+v", fromNodes.Masters, top.Masters)
		}
	})

	t.Run("MasterForKeyAndRedirect", func(t *testing.T) {
		const key = "{orders:1}:ctr"
		m, cl, err := c.MasterForKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if want, err := lc.MasterOf(ctx, key); err != nil || want != m.Addr {
			t.Fatalf("MasterForKey %s, MasterOf %s %v", m.Addr, want, err)
		}
		if err := cl.Set(ctx, key, 1, 0).Err(); err != nil {
			t.Fatal(err)
		}
		wrong := lc.Addrs()[0]
		if wrong == m.Addr {
			wrong = lc.Addrs()[1]
		}
		err = c.Node(wrong).Set(ctx, key, 2, 0).Err()
		addr, ask, ok := IsRedirect(err)
		if !ok || ask || addr != m.Addr {
			t.Fatalf("IsRedirect(%v) = %q %v %v, want MOVED to %s", err, addr, ask, ok, m.Addr)
		}
		if IsClusterDown(err) {
			t.Fatal("MOVED classified as cluster down")
		}
		err = c.Node(lc.Addrs()[3]).Set(ctx, "x", 1, 0).Err() // a replica
		if _, _, ok := IsRedirect(err); !ok {
			t.Fatalf("write to replica: %v, want MOVED", err)
		}
		if err := c.ClusterClient().Incr(ctx, key).Err(); err != nil {
			t.Fatalf("ClusterClient: %v", err)
		}
	})

	t.Run("LazyReloadCoalesces", func(t *testing.T) {
		before := shardsCalls(ctx, t, c, lc.Addrs())
		for range 2000 {
			c.LazyReload()
		}
		eventually(t, "lazy reload to finish", 5*time.Second, func() error {
			if c.reloading.Load() || c.reloadPending.Load() {
				return errors.New("still reloading")
			}
			return nil
		})
		calls := shardsCalls(ctx, t, c, lc.Addrs()) - before
		t.Logf("2000 LazyReload calls cost %d CLUSTER SHARDS round trips", calls)
		if calls < 1 || calls > 2 {
			t.Fatalf("2000 LazyReload calls cost %d CLUSTER SHARDS calls, want 1 or 2", calls)
		}
		if g := c.Topology().Generation; g != 1 {
			t.Fatalf("unchanged topology bumped generation to %d", g)
		}
	})

	t.Run("PauseResume", func(t *testing.T) {
		replica := lc.Addrs()[5]
		if err := lc.Pause(replica); err != nil {
			t.Fatal(err)
		}
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := c.Node(replica).Ping(pctx).Err()
		pcancel()
		if err == nil {
			t.Fatal("paused node answered PING")
		}
		st := lc.Status(ctx)
		if !st[5].Alive || st[5].State != "paused" || st[5].Role != "" || st[0].Role != "master" || st[3].Role != "replica" ||
			st[3].MasterLink != "up" || st[3].MasterAddr != lc.Addrs()[0] || st[0].ClusterState != "ok" {
			t.Fatalf("Status = %+v", st)
		}
		if err := lc.WaitHealthy(ctx); err != nil { // skips the paused node
			t.Fatal(err)
		}
		if err := lc.Resume(replica); err != nil {
			t.Fatal(err)
		}
		if err := c.Node(replica).Ping(ctx).Err(); err != nil {
			t.Fatalf("resumed node: %v", err)
		}
	})

	t.Run("RestartEmpty", func(t *testing.T) {
		master := lc.Addrs()[0]
		before, _ := lc.NodeByAddr(master)
		cl := c.Node(master)
		key := keyOn(t, top, master)
		if err := cl.Set(ctx, key, "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		if n, err := cl.Wait(ctx, 1, 1000).Result(); err != nil || n != 1 {
			t.Fatalf("WAIT = %d %v", n, err)
		}
		if err := lc.RestartEmpty(master); err != nil {
			t.Fatal(err)
		}
		after, _ := lc.NodeByAddr(master)
		if after.ID != before.ID || after.PID == before.PID || processAlive(before.PID) {
			t.Fatalf("before %+v after %+v", before, after)
		}
		if n, err := cl.DBSize(ctx).Result(); err != nil || n != 0 {
			t.Fatalf("DBSIZE after RestartEmpty = %d %v", n, err)
		}
		if err := lc.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		// Documented Redis behaviour: the replica resyncs the empty dataset.
		if n, err := c.Node(lc.Addrs()[3]).DBSize(ctx).Result(); err != nil || n != 0 {
			t.Logf("replica DBSIZE after its master came back empty: %d %v", n, err)
		}
	})

	t.Run("KillMasterFailover", func(t *testing.T) {
		victim := lc.Addrs()[1]
		replica := lc.Addrs()[4]
		slot := even[1][0]
		gen := c.Topology().Generation
		t0 := time.Now()
		if err := lc.Kill(victim); err != nil {
			t.Fatal(err)
		}
		if err := lc.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		promoted := time.Since(t0)
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
		if ms, err := lc.Masters(ctx); err != nil || !slices.Contains(ms, replica) || slices.Contains(ms, victim) {
			t.Fatalf("Masters = %v %v", ms, err)
		}
		// Writes go through on the promoted master.
		if err := c.Node(replica).Set(ctx, keyOn(t, top2, replica), 1, 0).Err(); err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		if err := lc.Start(victim); err != nil {
			t.Fatal(err)
		}
		if err := lc.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
		rejoined := time.Since(t1)
		if rs, err := lc.ReplicasOf(ctx, replica); err != nil || !slices.Equal(rs, []string{victim}) {
			t.Fatalf("ReplicasOf(%s) = %v %v, want the old master", replica, rs, err)
		}
		top3, err := c.Reload(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if m, _ := top3.MasterByAddr(replica); len(m.Replicas) != 1 || m.Replicas[0].Addr != victim || top3.Generation <= top2.Generation {
			t.Fatalf("after rejoin: %+v gen %d", m, top3.Generation)
		}
		t.Logf("kill -9 master -> replica promoted and cluster healthy: %v; restarted node rejoined as replica, healthy: %v",
			promoted.Round(time.Millisecond), rejoined.Round(time.Millisecond))
	})

	t.Run("OpenLocal", func(t *testing.T) {
		o, err := OpenLocal(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(o.Nodes(), lc.Nodes()) {
			t.Fatalf("OpenLocal nodes %+v\n!= %+v", o.Nodes(), lc.Nodes())
		}
		for _, s := range o.Status(ctx) {
			if !s.Alive || s.ClusterState != "ok" {
				t.Fatalf("status %+v", s)
			}
		}
		if err := o.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
	})

	if err := c.Close(); err != nil {
		t.Fatalf("Cluster.Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := c.Reload(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("Reload after Close: %v", err)
	}
	var pids []int
	for _, n := range lc.Nodes() {
		pids = append(pids, n.PID)
	}
	if err := lc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lc.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if processAlive(pid) {
			t.Errorf("pid %d still alive after Close", pid)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); !os.IsNotExist(err) {
		t.Errorf("state file after Close: %v", err)
	}
	eventually(t, "goroutines to exit", 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > goroutines {
			return fmt.Errorf("%d goroutines, %d before", n, goroutines)
		}
		return nil
	})
}

// shardsCalls sums CLUSTER SHARDS calls over all nodes (INFO commandstats).
func shardsCalls(ctx context.Context, t *testing.T, c *Cluster, addrs []string) int {
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
func keyOn(t *testing.T, top *Topology, addr string) string {
	t.Helper()
	for i := range 10000 {
		k := fmt.Sprintf("k%d", i)
		if m, ok := top.MasterForSlot(Slot(k)); ok && m.Addr == addr {
			return k
		}
	}
	t.Fatalf("no key for %s", addr)
	return ""
}

// TestEvenSlotRangesMatchRedisCLI builds a 3-master cluster with
// `redis-cli --cluster create` and checks its slot map.
func TestEvenSlotRangesMatchRedisCLI(t *testing.T) {
	requireRedis(t)
	if _, err := exec.LookPath("redis-cli"); err != nil {
		t.Skip("redis-cli not in PATH")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lc, err := StartLocal(ctx, LocalConfig{Masters: 3, Replicas: -1, BasePort: portCLI, Dir: t.TempDir(), useCLI: true})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	cl := redis.NewClient(&redis.Options{Addr: lc.Addrs()[0]})
	defer cl.Close()
	shards, err := cl.ClusterShards(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var got [][2]int
	for _, s := range shards {
		for _, r := range s.Slots {
			got = append(got, [2]int{int(r.Start), int(r.End)})
		}
	}
	slices.SortFunc(got, func(a, b [2]int) int { return a[0] - b[0] })
	if want := EvenSlotRanges(3); !slices.Equal(got, want) {
		t.Fatalf("redis-cli assigned %v, EvenSlotRanges(3) = %v", got, want)
	}
}

func TestDialErrors(t *testing.T) {
	requireRedis(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	closed := fmt.Sprintf("127.0.0.1:%d", portClosed)
	if err := portFree("127.0.0.1", portClosed); err != nil {
		t.Fatal(err)
	}
	_, err := Dial(ctx, Config{Addrs: []string{closed}, Logger: quietLogger()})
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), closed) || !strings.Contains(err.Error(), "shardseq cluster up") {
		t.Fatalf("Dial(closed port) = %v, want ErrUnreachable naming %s with a hint", err, closed)
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
	eventually(t, "standalone redis to answer", 10*time.Second, func() error { return cl.Ping(ctx).Err() })
	_, err = Dial(ctx, Config{Addrs: []string{addr}, Logger: quietLogger()})
	if !errors.Is(err, ErrNotCluster) || !strings.Contains(err.Error(), addr) {
		t.Fatalf("Dial(standalone) = %v, want ErrNotCluster", err)
	}
	t.Logf("standalone: %v", err)

	// Both: the standalone answer wins over the unreachable seed.
	_, err = Dial(ctx, Config{Addrs: []string{closed, addr}, Logger: quietLogger()})
	if !errors.Is(err, ErrNotCluster) {
		t.Fatalf("Dial(closed, standalone) = %v, want ErrNotCluster", err)
	}
	if _, err := Dial(ctx, Config{}); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("Dial(empty config) = %v", err)
	}
}

func TestLocalConfigErrors(t *testing.T) {
	requireRedis(t)
	ctx := context.Background()
	if _, err := StartLocal(ctx, LocalConfig{BasePort: 7100}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "Dir") {
		t.Errorf("no Dir: %v", err)
	}
	eph := ephemeralPortStart()
	if _, err := StartLocal(ctx, LocalConfig{BasePort: eph - 10002, Dir: t.TempDir()}); !errors.Is(err, ErrInvalidConfig) ||
		!strings.Contains(err.Error(), "ephemeral") {
		t.Errorf("bus port in ephemeral range: %v", err)
	}
	if _, err := StartLocal(ctx, LocalConfig{BasePort: 80, Dir: t.TempDir()}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("privileged port: %v", err)
	}
	if _, err := StartLocal(ctx, LocalConfig{Dir: t.TempDir(), ServerBin: "", BasePort: 7100, Masters: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Masters -1: %v", err)
	}
	if _, err := (LocalConfig{Dir: "x", BasePort: 7100}).withDefaults(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := StartLocal(ctx, LocalConfig{Dir: t.TempDir(), BasePort: 7100}); !errors.Is(err, ErrRedisNotInstalled) ||
		!strings.Contains(err.Error(), "apt-get install redis-server") {
		t.Errorf("no redis-server: %v", err)
	}
}

func TestLocalPortBusy(t *testing.T) {
	requireRedis(t)
	// Occupy the bus port of node 0: StartLocal must name it and start nothing.
	ln, err := netListen(fmt.Sprintf("127.0.0.1:%d", portBusy+10000))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	_, err = StartLocal(context.Background(), LocalConfig{Masters: 1, Replicas: -1, BasePort: portBusy, Dir: dir})
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(portBusy+10000)) {
		t.Fatalf("StartLocal with busy bus port: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node-0")); !os.IsNotExist(err) {
		t.Fatalf("node dir created despite busy port: %v", err)
	}
}

func netListen(addr string) (io.Closer, error) {
	return (&net.ListenConfig{}).Listen(context.Background(), "tcp", addr)
}

// TestLocalDetachedPerNodeIP covers the options `shardseq cluster up` and the
// partition tests use: one loopback address per node, persistence, detached
// processes re-attached and stopped through the state file.
func TestLocalDetachedPerNodeIP(t *testing.T) {
	requireRedis(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	lc, err := StartLocal(ctx, LocalConfig{Masters: 1, Replicas: 1, BasePort: 7140, Dir: dir,
		PerNodeIP: true, IPBase: 41, Persistence: true, Detach: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lc.Close() })
	if got := lc.Addrs(); !slices.Equal(got, []string{"127.0.0.41:7140", "127.0.0.42:7141"}) {
		t.Fatalf("Addrs = %v", got)
	}
	cl := redis.NewClient(&redis.Options{Addr: lc.Addrs()[0]})
	defer cl.Close()
	// The replica connects from its own address: that is what lets iptables
	// rules on source addresses cut replication.
	clients, err := cl.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(clients, "addr=127.0.0.42:") {
		t.Fatalf("replica does not connect from 127.0.0.42:\n%s", clients)
	}
	if aof, err := cl.ConfigGet(ctx, "appendonly").Result(); err != nil || aof["appendonly"] != "yes" {
		t.Fatalf("appendonly = %v %v", aof, err)
	}
	var pids []int
	for _, n := range lc.Nodes() {
		pids = append(pids, n.PID)
		if sid, err := getsid(n.PID); err != nil || sid != n.PID {
			t.Fatalf("detached node %s: session %d %v, want its own", n.Addr, sid, err)
		}
	}
	o, err := OpenLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if processAlive(pid) {
			t.Fatalf("pid %d alive after OpenLocal(dir).Close()", pid)
		}
	}
	if err := lc.Close(); err != nil {
		t.Fatalf("Close after the processes were stopped elsewhere: %v", err)
	}
	if _, err := OpenLocal(dir); err == nil {
		t.Fatal("OpenLocal found a state file after Close")
	}
}
