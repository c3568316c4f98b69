//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/internal/lab/checker"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/shard"
)

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func newClient(t testing.TB, c *clustertest.Cluster, cfg client.Config) *client.Client {
	t.Helper()
	cfg.Addrs = c.Addrs()
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := client.New(ctx, cfg)
	if err != nil {
		t.Fatalf("client.New: %v", err)
	}
	t.Cleanup(func() { _ = cl.Close() })
	return cl
}

// 8 concurrent clients x 50,000 IDs: all unique, and every ID is derived from
// its shard's counter: id mod N names the shard, id div N is a sequence number
// that shard's counter has reached.
func TestUniqueness_ConcurrentClients(t *testing.T) {
	c := startCluster(t, Opts{})
	const clients, each, shards = 8, 50_000, 6
	ck := checker.New()
	var wg sync.WaitGroup
	for g := 0; g < clients; g++ {
		cl := newClient(t, c, client.Config{Namespace: "orders", Shards: shards, BlockSize: 500, MinBlockSize: 100})
		rec := ck.Recorder()
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			for i := 0; i < each; i++ {
				id, err := cl.Next(ctx)
				if err != nil {
					rec.Fail(err)
					continue
				}
				rec.Ack(0, id)
			}
		}()
	}
	wg.Wait()
	rep := ck.Report()
	t.Logf("report: %s", rep)
	if !rep.OK() || rep.Acknowledged != clients*each || rep.Errors != 0 {
		t.Fatalf("want %d unique IDs and no errors: %s", clients*each, rep)
	}

	// Every sequence number must be at or below its shard's counter.
	cl := newClient(t, c, client.Config{Namespace: "orders", Shards: shards})
	rdb := rawRedis(t, c)
	counters := map[int]int64{}
	for _, st := range cl.Shards() {
		v, err := rdb.HGet(context.Background(), st.Key, "seq").Int64()
		if err != nil {
			t.Fatalf("reading counter %s: %v", st.Key, err)
		}
		counters[st.Index] = v
	}
	if len(counters) != shards {
		t.Fatalf("want %d shards in the registry, got %d", shards, len(counters))
	}
	for _, id := range []int64{rep.Min, rep.Max} {
		i, seq := shard.Decode(id, shards)
		if seq < 1 || seq > counters[i] {
			t.Fatalf("ID %d decodes to shard %d seq %d, beyond its counter %d", id, i, seq, counters[i])
		}
	}
}

// The N counters sit on distinct masters when there are at least N masters,
// and spread evenly otherwise, on the live slot map of a real cluster.
func TestPlacement_CountersOnDistinctMasters(t *testing.T) {
	c := startCluster(t, Opts{})
	for _, n := range []int{1, 2, 3, 6, 12} {
		t.Run(fmt.Sprint("N=", n), func(t *testing.T) {
			cl := newClient(t, c, client.Config{Namespace: fmt.Sprint("place", n), Shards: n})
			perMaster := map[string]int{}
			for _, st := range cl.Shards() {
				m := c.MasterOf(st.Key)
				perMaster[m]++
				if st.Node != m {
					t.Errorf("shard %d: registry says node %s, cluster says %s", st.Index, st.Node, m)
				}
			}
			want := (n + 2) / 3
			for m, k := range perMaster {
				if k > want {
					t.Errorf("master %s holds %d counters of %d, want at most %d: %v", m, k, n, want, perMaster)
				}
			}
			if n <= 3 && len(perMaster) != n {
				t.Errorf("want %d distinct masters, got %v", n, perMaster)
			}
		})
	}
}

// N is stored with the namespace: a client with another N is refused with a
// clear error, and the refused client changes nothing.
func TestShardCountGuard(t *testing.T) {
	c := startCluster(t, Opts{})
	first := newClient(t, c, client.Config{Namespace: "guarded", Shards: 4})
	if _, err := first.Next(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := client.New(ctx, client.Config{Addrs: c.Addrs(), Namespace: "guarded", Shards: 5, Logger: quiet()})
	if !errors.Is(err, client.ErrShardCountMismatch) {
		t.Fatalf("want ErrShardCountMismatch, got %v", err)
	}
	for _, want := range []string{"4", "5", "guarded"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q should mention %q", err, want)
		}
	}
	again := newClient(t, c, client.Config{Namespace: "guarded", Shards: 4})
	if _, err := again.Next(context.Background()); err != nil {
		t.Fatalf("the namespace must still work with its own N: %v", err)
	}
}
