// Package clustertest is the test harness: Start gives a test a real Redis
// Cluster (internal/localcluster) that it owns, with its faults as verbs
// that fail the test instead of returning errors, in the manner of
// hashicorp/raft's MakeCluster. Everything it starts is stopped, and every
// iptables rule it adds removed, when the test ends.
//
// It lives apart from the launcher so that "testing" is never linked into a
// binary. The verbs call t.Fatal: call them from the test's goroutine.
package clustertest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// queryTimeout bounds one question to the cluster (who is master of what).
const queryTimeout = 10 * time.Second

// Cluster is a real Redis Cluster owned by one test.
type Cluster struct {
	tb testing.TB
	lc *localcluster.Cluster
}

// Start starts a local cluster for tb and stops it when the test ends.
//
// cfg.Dir defaults to tb.TempDir() and cfg.Logf to tb.Logf. Give every test
// package its own BasePort range: `go test ./...` runs packages in parallel
// (ARCHITECTURE.md, "Ports in tests"). The test is skipped, with the install
// hint, when redis-server is missing (cfg.ServerBin unset and not in PATH),
// or when cfg.Partitions is set and iptables cannot be used; it fails, with
// the tail of the failing node's log, when the cluster does not become
// healthy within a minute.
func Start(tb testing.TB, cfg localcluster.Config) *Cluster {
	tb.Helper()
	if cfg.ServerBin == "" {
		engine := cfg.Engine
		if engine == "" {
			engine = localcluster.EngineFromEnv()
		}
		if err := engine.Installed(); err != nil {
			if os.Getenv("CI") != "" {
				tb.Fatalf("%v: CI must install it (.ci/run)", err) // never skip what CI is meant to show
			}
			tb.Skipf("%v (or set Config.ServerBin)", err)
		}
	}
	if cfg.Partitions {
		if err := localcluster.PartitionsAvailable(); err != nil {
			tb.Skipf("partitions unavailable: %v", err)
		}
	}
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	if cfg.Logf == nil {
		cfg.Logf = tb.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lc, err := localcluster.Start(ctx, cfg)
	if err != nil {
		tb.Fatalf("clustertest: starting local cluster: %v", err)
	}
	tb.Cleanup(func() {
		if err := lc.Close(); err != nil {
			tb.Errorf("clustertest: closing local cluster: %v", err)
		}
	})
	return &Cluster{tb: tb, lc: lc}
}

// Local is the launcher behind the harness, for what takes one (the chaos
// engine) or needs its errors.
func (c *Cluster) Local() *localcluster.Cluster { return c.lc }

// Addrs returns every node address; any of them is a seed.
func (c *Cluster) Addrs() []string { return c.lc.Addrs() }

// Dial connects to the cluster with cfg (Addrs and a silent Logger filled in
// when unset) and closes the connection when the test ends.
func (c *Cluster) Dial(cfg cluster.Config) *cluster.Cluster {
	c.tb.Helper()
	if len(cfg.Addrs) == 0 {
		cfg.Addrs = c.Addrs()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	cl, err := cluster.Dial(ctx, cfg)
	if err != nil {
		c.tb.Fatalf("clustertest: cluster.Dial: %v", err)
	}
	c.tb.Cleanup(func() { _ = cl.Close() })
	return cl
}

// MasterOf returns the address of the master serving key, per the cluster.
func (c *Cluster) MasterOf(key string) string {
	c.tb.Helper()
	return ask(c, "MasterOf "+key, func(ctx context.Context) (string, error) { return c.lc.MasterOf(ctx, key) })
}

// Masters returns the masters serving slots and not flagged failed.
func (c *Cluster) Masters() []string {
	c.tb.Helper()
	return ask(c, "Masters", c.lc.Masters)
}

// ReplicasOf returns the replicas of master not flagged failed.
func (c *Cluster) ReplicasOf(master string) []string {
	c.tb.Helper()
	return ask(c, "ReplicasOf "+master, func(ctx context.Context) ([]string, error) { return c.lc.ReplicasOf(ctx, master) })
}

// ask runs one question to the cluster, bounded by queryTimeout.
func ask[T any](c *Cluster, what string, q func(context.Context) (T, error)) T {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	v, err := q(ctx)
	c.check(what, err)
	return v
}

// Kill kill -9s the node; it stays down until Start.
func (c *Cluster) Kill(addr string) { c.tb.Helper(); c.check("Kill "+addr, c.lc.Kill(addr)) }

// KillMaster kill -9s the master serving key and returns its address.
func (c *Cluster) KillMaster(key string) string {
	c.tb.Helper()
	addr := c.MasterOf(key)
	c.Kill(addr)
	return addr
}

// Start starts a stopped node again; it rejoins with its node ID.
func (c *Cluster) Start(addr string) { c.tb.Helper(); c.check("Start "+addr, c.lc.Start(addr)) }

// Pause freezes the node (SIGSTOP) until Resume.
func (c *Cluster) Pause(addr string) { c.tb.Helper(); c.check("Pause "+addr, c.lc.Pause(addr)) }

// Resume thaws a paused node (SIGCONT).
func (c *Cluster) Resume(addr string) { c.tb.Helper(); c.check("Resume "+addr, c.lc.Resume(addr)) }

// RestartEmpty kills the node and starts it without its data.
func (c *Cluster) RestartEmpty(addr string) {
	c.tb.Helper()
	c.check("RestartEmpty "+addr, c.lc.RestartEmpty(addr))
}

// RestartFromFiles kills the node and starts it again on its own files.
func (c *Cluster) RestartFromFiles(addr string) {
	c.tb.Helper()
	c.check("RestartFromFiles "+addr, c.lc.RestartFromFiles(addr))
}

// Save makes the node's files a snapshot of now (BGSAVE, or a copy of the
// AOF), so that a later RestartFromFiles rewinds it to this moment.
func (c *Cluster) Save(addr string) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	c.check("Save "+addr, c.lc.Save(ctx, addr))
}

// CutReplication drops the data link between replica and master while the
// cluster bus stays up (needs Config.Partitions); Heal restores it.
func (c *Cluster) CutReplication(replica, master string) {
	c.tb.Helper()
	c.check("CutReplication "+replica, c.lc.CutReplication(replica, master))
}

// FailoverForce promotes replica at once (CLUSTER FAILOVER FORCE).
func (c *Cluster) FailoverForce(replica string) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	c.check("FailoverForce "+replica, c.lc.FailoverForce(ctx, replica))
}

// ClusterDown kills master, keeps its shard without a master for hold after
// the cluster flags it failed (its replicas set not to fail over), then
// promotes a replica by hand and restarts the old master as a replica, until
// the cluster is healthy; see localcluster.Cluster.ClusterDown. With
// Config.FullCoverage every master answers CLUSTERDOWN meanwhile.
func (c *Cluster) ClusterDown(master string, hold time.Duration) localcluster.DownSpell {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d, err := c.lc.ClusterDown(ctx, master, hold)
	c.check("ClusterDown "+master, err)
	return d
}

// Partition cuts node off from each of from, both ways; the cluster must be
// started with Config.Partitions.
func (c *Cluster) Partition(node string, from ...string) {
	c.tb.Helper()
	c.check("Partition "+node, c.lc.Partition(node, from...))
}

// PartitionBus cuts node's cluster bus off from each of from, both ways,
// data ports left open; the cluster must be started with Config.Partitions.
func (c *Cluster) PartitionBus(node string, from ...string) {
	c.tb.Helper()
	c.check("PartitionBus "+node, c.lc.PartitionBus(node, from...))
}

// Heal removes every partition.
func (c *Cluster) Heal() { c.tb.Helper(); c.check("Heal", c.lc.Heal()) }

// WaitHealthy fails the test unless the cluster is healthy within d (see
// localcluster.Cluster.WaitHealthy).
func (c *Cluster) WaitHealthy(d time.Duration) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := c.lc.WaitHealthy(ctx); err != nil {
		c.tb.Fatalf("clustertest: cluster not healthy within %v: %v", d, err)
	}
}

// WaitPromoted fails the test unless a replica has taken over from
// oldMaster within d (see localcluster.Promoted).
func (c *Cluster) WaitPromoted(oldMaster string, d time.Duration) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := c.lc.WaitPromoted(ctx, oldMaster); err != nil {
		c.tb.Fatalf("clustertest: no replica of %s promoted within %v: %v", oldMaster, d, err)
	}
}

// Eventually polls f until it returns nil, and fails tb with f's last
// error when d has passed.
func Eventually(tb testing.TB, d time.Duration, f func() error) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("not within %v: %v", d, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}

func (c *Cluster) check(what string, err error) {
	c.tb.Helper()
	if err != nil {
		c.tb.Fatalf("clustertest: %s: %v", what, err)
	}
}

// AddNode starts one more node and joins it as `redis-cli --cluster
// add-node` does: a master serving no slot when asReplicaOf is empty, else a
// replica of that master. It returns the node's address; the cluster stops
// it with the others.
func (c *Cluster) AddNode(asReplicaOf string) string {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr, err := c.lc.AddNode(ctx, asReplicaOf)
	c.check("AddNode", err)
	return addr
}

// MigrateSlot moves slot and its keys to the master at to, as an operator's
// reshard does (localcluster.Cluster.MigrateSlot), and returns once every
// node agrees.
func (c *Cluster) MigrateSlot(slot int, to string) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.check("MigrateSlot", c.lc.MigrateSlot(ctx, slot, to))
}
