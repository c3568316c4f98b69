//go:build integration

// Package integration tests shardseq against real Redis Clusters with real
// faults: kill -9, SIGSTOP, restarts without data and iptables partitions.
package integration

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/chaos"
)

// nextBase hands every cluster of this package its own ports and loopback
// addresses, so a cluster that lingers cannot collide with the next.
var nextBase atomic.Int32

// Opts shapes a test cluster. Zero values: 3 masters, 1 replica each.
type Opts struct {
	Masters, Replicas int
	// Partitions gives every node its own 127.0.0.x address and an iptables
	// chain for Partition/Heal. It needs root and iptables.
	Partitions bool
}

// Cluster is a real Redis Cluster owned by one test, with fault verbs.
type Cluster struct {
	*cluster.LocalCluster
	t   testing.TB
	Net *chaos.Netfilter
}

// MakeCluster starts a cluster of real redis-server processes and stops it
// (and removes every iptables rule it added) when the test ends.
func MakeCluster(t testing.TB, o Opts) *Cluster {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed: apt-get install redis-server (make test does it via .ci/run)")
	}
	k := int(nextBase.Add(1)) - 1
	// SHARDSEQ_IT_SLOT (0-9) moves a second concurrent run of this package
	// to other ports and addresses, so it cannot touch the first one's nodes.
	slot, _ := strconv.Atoi(os.Getenv("SHARDSEQ_IT_SLOT"))
	cfg := cluster.LocalConfig{
		Masters: o.Masters, Replicas: o.Replicas,
		BasePort: 7300 + 100*(slot%10) + 10*(k%10),
		Dir:      t.TempDir(),
	}
	c := &Cluster{t: t}
	if o.Partitions {
		if err := chaos.Available(); err != nil {
			t.Skipf("partitions unavailable: %v", err)
		}
		cfg.PerNodeIP, cfg.IPBase = true, 11+120*(slot%2)+10*(k%12)
		c.Net = chaos.NewNetfilter()
		t.Cleanup(func() {
			if err := c.Net.Close(); err != nil {
				t.Errorf("removing iptables rules: %v", err)
			}
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lc, err := cluster.StartLocal(ctx, cfg)
	if err != nil {
		t.Fatalf("starting cluster: %v", err)
	}
	t.Cleanup(func() { _ = lc.Close() })
	c.LocalCluster = lc
	return c
}

// Partition cuts node from each of from (both ways).
func (c *Cluster) Partition(node string, from ...string) {
	c.t.Helper()
	hosts := make([]string, len(from))
	for i, f := range from {
		hosts[i] = hostOf(f)
	}
	if err := c.Net.Cut(hostOf(node), hosts...); err != nil {
		c.t.Fatal(err)
	}
}

// Heal removes every partition.
func (c *Cluster) Heal() {
	c.t.Helper()
	if err := c.Net.Heal(); err != nil {
		c.t.Fatal(err)
	}
}

// KillMaster kill -9s the master serving key and returns its address.
func (c *Cluster) KillMaster(key string) string {
	c.t.Helper()
	addr := c.MasterOfKey(key)
	if err := c.Kill(addr); err != nil {
		c.t.Fatal(err)
	}
	return addr
}

// MustWaitHealthy fails the test unless the cluster is healthy within d.
func (c *Cluster) MustWaitHealthy(d time.Duration) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	if err := c.WaitHealthy(ctx); err != nil {
		c.t.Fatalf("cluster not healthy within %v: %v", d, err)
	}
}

// MasterOfKey is the address of the master serving key, per the cluster.
func (c *Cluster) MasterOfKey(key string) string {
	c.t.Helper()
	addr, err := c.MasterOf(context.Background(), key)
	if err != nil {
		c.t.Fatal(err)
	}
	return addr
}

func hostOf(addr string) string {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			return addr[:i]
		}
	}
	return addr
}

// callUntil calls f again and again until stop is closed: a load loop that
// ends by itself when the test says so.
func callUntil(stop <-chan struct{}, f func()) {
	for {
		select {
		case <-stop:
			return
		default:
			f()
		}
	}
}

// eventually polls f until it returns nil or d passes.
func eventually(t testing.TB, d time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", d, err)
		}
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}
}
