//go:build integration

// Package integration tests shardseq against real Redis Clusters with real
// faults: kill -9, SIGSTOP, restarts without data and iptables partitions.
package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// nextBase hands every cluster of this package its own ports and loopback
// addresses, so a cluster that lingers cannot collide with the next.
var nextBase atomic.Int32

// Opts shapes a test cluster: always 3 masters.
type Opts struct {
	// Partitions gives every node its own 127.0.0.x address, so Partition
	// and Heal can cut links with iptables. It needs root and iptables (the
	// test is skipped otherwise).
	Partitions bool
	// Replicas per master; default 1.
	Replicas int
	// Persistence is the nodes' persistence mode; default none (replicas
	// still write the dump.rdb of each full sync, and restarts load it).
	Persistence localcluster.Persistence
	// ExtraArgs are added to every redis-server; a test that sets one says
	// why.
	ExtraArgs []string
	// Engine: redis (default, or SHARDSEQ_ENGINE) or valkey.
	Engine localcluster.Engine
	// FullCoverage runs cluster-require-full-coverage yes, Redis's default
	// (localcluster.Config.FullCoverage); default no, or
	// SHARDSEQ_FULL_COVERAGE.
	FullCoverage bool
	// NodeTimeout is cluster-node-timeout; default 2s (Redis's is 15s).
	NodeTimeout time.Duration
}

// startCluster starts a cluster of real redis-server processes on this
// package's ports (7300-7399) through the one test harness, and stops it
// (removing every iptables rule it added) when the test ends.
func startCluster(t testing.TB, o Opts) *clustertest.Cluster {
	t.Helper()
	k := int(nextBase.Add(1)) - 1
	// SHARDSEQ_IT_SLOT (0-9) moves a second concurrent run of this package
	// to other ports and addresses, so it cannot touch the first one's nodes.
	slot, _ := strconv.Atoi(os.Getenv("SHARDSEQ_IT_SLOT"))
	cfg := localcluster.Config{BasePort: 7300 + 100*(slot%10) + 10*(k%10), Partitions: o.Partitions,
		Replicas: o.Replicas, Persistence: o.Persistence, ExtraArgs: o.ExtraArgs, Engine: o.Engine,
		FullCoverage: o.FullCoverage, NodeTimeout: o.NodeTimeout}
	if o.Partitions {
		cfg.IPBase = 11 + 120*(slot%2) + 10*(k%12)
	}
	return clustertest.Start(t, cfg)
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

// rawRedis returns a go-redis client of c's cluster, to read and change
// shardseq's keys behind its back; it is closed when the test ends.
func rawRedis(t testing.TB, c *clustertest.Cluster) *redis.ClusterClient {
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: c.Addrs()})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// waitCeilingsAhead waits for the steady state a failover test starts
// from: every shard's registered ceiling ahead of its counter (keys, by shard
// index) by more than a failover takes at the load's rate (10 s of it,
// measured over a second). A namespace younger than that rides on its first
// lease (shard.FirstLease, 4096) and a young process has few spares (capped
// by what it handed out), which a fast load uses up within a failover (the
// shards then step aside until the master is back; nothing repeats).
func waitCeilingsAhead(t *testing.T, c *clustertest.Cluster, keys map[int]string) {
	t.Helper()
	rdb := rawRedis(t, c)
	seqs := func() (map[int][2]int64, error) {
		out := map[int][2]int64{}
		for i, key := range keys {
			v, err := rdb.HMGet(context.Background(), key, "seq", "mirrored").Result()
			if err != nil {
				return nil, err
			}
			var pair [2]int64
			for j, x := range v {
				s, _ := x.(string)
				pair[j], _ = strconv.ParseInt(s, 10, 64)
			}
			out[i] = pair
		}
		return out, nil
	}
	clustertest.Eventually(t, 30*time.Second, func() error {
		before, err := seqs()
		if err != nil {
			return err
		}
		time.Sleep(time.Second) // the interval the rate is measured over, not a synchronisation
		after, err := seqs()
		if err != nil {
			return err
		}
		for i, a := range after {
			rate := a[0] - before[i][0]
			if rate <= 0 || a[1]-a[0] < 10*rate {
				return fmt.Errorf("shard %d: ceiling %d, counter %d, %d a second: less than 10 s ahead", i, a[1], a[0], rate)
			}
		}
		return nil
	})
}
