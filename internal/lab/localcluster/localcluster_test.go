package localcluster

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

	"github.com/shardseq/shardseq/cluster"
)

// Ports of this package's tests: 7100-7149 (bus ports 17100-17149); the
// tests of package cluster use 7160-7199, the harness's own 7150-7159.
const (
	portMain     = 7100 // 6 nodes
	portCLI      = 7110 // 3 nodes
	portBusy     = 7130
	portDetached = 7140 // 2 nodes
)

func requireRedis(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not in PATH; install it: apt-get install redis-server (Debian)")
	}
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func TestCluster(t *testing.T) {
	requireRedis(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	goroutines := runtime.NumGoroutine()

	start := time.Now()
	lc, err := Start(ctx, Config{BasePort: portMain, Dir: dir, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lc.Close() })
	t.Logf("Start 3x1: %v", time.Since(start).Round(time.Millisecond))

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

	c, err := cluster.Dial(ctx, cluster.Config{Addrs: lc.Addrs()[:1], RefreshInterval: -1, Logger: quiet()})
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
		const key = "b" // slot 3300: master 0 in the launcher's layout
		if m, ok := top.MasterForSlot(cluster.Slot(key)); !ok || m.Addr != master {
			t.Fatalf("%q is on %s, not %s", key, m.Addr, master)
		}
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

	t.Run("RestartFromFiles", func(t *testing.T) {
		replica := lc.Addrs()[5]
		before, _ := lc.NodeByAddr(replica)
		if err := lc.RestartFromFiles(replica); err != nil {
			t.Fatal(err)
		}
		after, _ := lc.NodeByAddr(replica)
		if after.ID != before.ID || after.PID == before.PID || after.Dir != before.Dir || processAlive(before.PID) {
			t.Fatalf("before %+v after %+v", before, after)
		}
		if err := lc.WaitHealthy(ctx); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("KillMasterFailover", func(t *testing.T) {
		victim := lc.Addrs()[1]
		replica := lc.Addrs()[4]
		const key = "c" // slot 7365: master 1 in the launcher's layout
		if m, err := lc.MasterOf(ctx, key); err != nil || m != victim {
			t.Fatalf("MasterOf(%q) = %s %v, want %s", key, m, err, victim)
		}
		t0 := time.Now()
		if err := lc.Kill(victim); err != nil {
			t.Fatal(err)
		}
		if err := lc.WaitPromoted(ctx, victim); err != nil {
			t.Fatal(err)
		}
		promoted := time.Since(t0)
		if ms, err := lc.Masters(ctx); err != nil || !slices.Contains(ms, replica) || slices.Contains(ms, victim) {
			t.Fatalf("Masters = %v %v", ms, err)
		}
		if m, err := lc.MasterOf(ctx, key); err != nil || m != replica {
			t.Fatalf("MasterOf(%q) = %s %v, want the promoted %s", key, m, err, replica)
		}
		// Writes go through on the promoted master.
		if err := c.Node(replica).Set(ctx, key, 1, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if err := lc.WaitHealthy(ctx); err != nil {
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
		if err := lc.WaitPromoted(ctx, victim); err != nil { // still true once it rejoined as a replica
			t.Fatal(err)
		}
		t.Logf("kill -9 master -> replica promoted: %v; restarted node rejoined as replica, healthy: %v",
			promoted.Round(time.Millisecond), rejoined.Round(time.Millisecond))
	})

	t.Run("Open", func(t *testing.T) {
		o, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(o.Nodes(), lc.Nodes()) {
			t.Fatalf("Open nodes %+v\n!= %+v", o.Nodes(), lc.Nodes())
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
		t.Fatalf("cluster.Cluster.Close: %v", err)
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
	for deadline := time.Now().Add(5 * time.Second); runtime.NumGoroutine() > goroutines; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after Close, %d before Start", runtime.NumGoroutine(), goroutines)
		}
	}
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
	lc, err := Start(ctx, Config{Masters: 3, Replicas: -1, BasePort: portCLI, Dir: t.TempDir(), useCLI: true})
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

func TestConfigErrors(t *testing.T) {
	requireRedis(t)
	ctx := context.Background()
	if _, err := Start(ctx, Config{BasePort: 7100}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "Dir") {
		t.Errorf("no Dir: %v", err)
	}
	eph := ephemeralPortStart()
	if _, err := Start(ctx, Config{BasePort: eph - 10002, Dir: t.TempDir()}); !errors.Is(err, ErrInvalidConfig) ||
		!strings.Contains(err.Error(), "ephemeral") {
		t.Errorf("bus port in ephemeral range: %v", err)
	}
	if _, err := Start(ctx, Config{BasePort: 80, Dir: t.TempDir()}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("privileged port: %v", err)
	}
	if _, err := Start(ctx, Config{Dir: t.TempDir(), ServerBin: "", BasePort: 7100, Masters: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Masters -1: %v", err)
	}
	if _, err := (Config{Dir: "x", BasePort: 7100}).withDefaults(); err != nil {
		t.Errorf("defaults: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	if _, err := Start(ctx, Config{Dir: t.TempDir(), BasePort: 7100}); !errors.Is(err, ErrRedisNotInstalled) ||
		!strings.Contains(err.Error(), "apt-get install redis-server") {
		t.Errorf("no redis-server: %v", err)
	}
}

func TestPortBusy(t *testing.T) {
	requireRedis(t)
	// Occupy the bus port of node 0: Start must name it and start nothing.
	ln, err := netListen(fmt.Sprintf("127.0.0.1:%d", portBusy+10000))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dir := t.TempDir()
	_, err = Start(context.Background(), Config{Masters: 1, Replicas: -1, BasePort: portBusy, Dir: dir})
	if err == nil || !strings.Contains(err.Error(), strconv.Itoa(portBusy+10000)) {
		t.Fatalf("Start with busy bus port: %v", err)
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
func TestDetachedPerNodeIP(t *testing.T) {
	requireRedis(t)
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := t.TempDir()
	lc, err := Start(ctx, Config{Masters: 1, Replicas: 1, BasePort: portDetached, Dir: dir,
		PerNodeIP: true, IPBase: 41, Persistence: PersistAOF, Detach: true})
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
	o, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if processAlive(pid) {
			t.Fatalf("pid %d alive after Open(dir).Close()", pid)
		}
	}
	if err := lc.Close(); err != nil {
		t.Fatalf("Close after the processes were stopped elsewhere: %v", err)
	}
	if _, err := Open(dir); err == nil {
		t.Fatal("Open found a state file after Close")
	}
}
