package client_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bwmarrin/snowflake"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
	"github.com/rs/xid"
	"github.com/sony/sonyflake/v2"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/clustertest"
)

// Ports of this file's clusters: 7500-7519 (bus ports +10000). Each
// top-level benchmark starts its own 3-master, 3-replica cluster once and
// runs its cases as sub-benchmarks, so the cluster is not restarted for every
// b.N round.
const (
	portBench    = 7500
	portAdaptive = 7510
)

// redisParallelism is how many goroutines per GOMAXPROCS the benchmarks that
// wait on Redis use: 25 on 2 cores gives the 50 callers of `shardseq bench`.
const redisParallelism = 25

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// benchEnv is a local cluster and a cluster connection for one benchmark.
type benchEnv struct {
	lc *cluster.LocalCluster
	cl *cluster.Cluster
}

func startBench(b *testing.B, port int) benchEnv {
	b.Helper()
	lc := clustertest.Start(b, cluster.LocalConfig{Masters: 3, Replicas: 1, BasePort: port, Logf: func(string, ...any) {}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := cluster.Dial(ctx, cluster.Config{Addrs: lc.Addrs(), ReadTimeout: time.Second, Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cl.Close() })
	return benchEnv{lc: lc, cl: cl}
}

// newClient opens a client of namespace ns on the benchmark's cluster and
// warms it up, so the first reservation is not part of the measurement.
func (e benchEnv) newClient(tb testing.TB, ns string, mod func(*client.Config)) *client.Client {
	tb.Helper()
	cfg := client.Config{Cluster: e.cl, Namespace: ns, Logger: quiet()}
	if mod != nil {
		mod(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.New(ctx, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	if _, err := c.Next(ctx); err != nil {
		tb.Fatal(err)
	}
	return c
}

// reportRoundTrips adds the client's reservations per 1,000 IDs handed out
// during the benchmark (reservations only; mirror raises are counted by
// `shardseq bench`, which hooks the connections).
func reportRoundTrips(b *testing.B, c *client.Client, before uint64) {
	var after uint64
	for _, s := range c.Shards() {
		after += s.Reservations
	}
	if b.N > 0 {
		b.ReportMetric(float64(after-before)*1000/float64(b.N), "reservations/1kIDs")
	}
}

func reservations(c *client.Client) uint64 {
	var n uint64
	for _, s := range c.Shards() {
		n += s.Reservations
	}
	return n
}

var sink atomic.Int64

// BenchmarkNext is one caller in segment mode: one ID per call.
func BenchmarkNext(b *testing.B) {
	e := startBench(b, portBench)
	b.Run("segment", func(b *testing.B) {
		c := e.newClient(b, "bench-next-"+strconv.Itoa(b.N), nil)
		ctx := context.Background()
		r0 := reservations(c)
		b.ReportAllocs()
		b.ResetTimer()
		var last int64
		for range b.N {
			id, err := c.Next(ctx)
			if err != nil {
				b.Fatal(err)
			}
			last = id
		}
		b.StopTimer()
		sink.Store(last)
		reportRoundTrips(b, c, r0)
	})
}

// BenchmarkNextParallel is Next from GOMAXPROCS callers at once.
func BenchmarkNextParallel(b *testing.B) {
	e := startBench(b, portBench)
	b.Run("segment", func(b *testing.B) {
		c := e.newClient(b, "bench-par-"+strconv.Itoa(b.N), nil)
		r0 := reservations(c)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			var last int64
			for pb.Next() {
				id, err := c.Next(ctx)
				if err != nil {
					b.Error(err)
					return
				}
				last = id
			}
			sink.Store(last)
		})
		b.StopTimer()
		reportRoundTrips(b, c, r0)
	})
}

// BenchmarkNextN is NextN with batches of 100 and 1000; ns/op is per batch,
// IDs/s per ID.
func BenchmarkNextN(b *testing.B) {
	e := startBench(b, portBench)
	for _, n := range []int{100, 1000} {
		b.Run("batch="+strconv.Itoa(n), func(b *testing.B) {
			c := e.newClient(b, "bench-nextn-"+strconv.Itoa(n)+"-"+strconv.Itoa(b.N), nil)
			ctx := context.Background()
			r0 := reservations(c)
			b.ReportAllocs()
			b.ResetTimer()
			t0 := time.Now()
			for range b.N {
				ids, err := c.NextN(ctx, n)
				if err != nil {
					b.Fatal(err)
				}
				sink.Store(ids[len(ids)-1])
			}
			el := time.Since(t0)
			b.StopTimer()
			b.ReportMetric(float64(b.N*n)/el.Seconds(), "IDs/s")
			reportRoundTrips(b, c, r0)
		})
	}
}

// BenchmarkNextStrict is strict mode (B=1): one acknowledged reservation
// (script + WAIT for the replica) per ID, from 50 callers on 2 cores.
func BenchmarkNextStrict(b *testing.B) {
	e := startBench(b, portBench)
	b.Run("ack", func(b *testing.B) {
		c := e.newClient(b, "bench-strict-"+strconv.Itoa(b.N), func(cfg *client.Config) { cfg.Strict = true })
		b.ReportAllocs()
		b.SetParallelism(redisParallelism)
		b.ResetTimer()
		t0 := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if _, err := c.Next(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "IDs/s")
	})
}

// BenchmarkBaseline measures the peers in the same run: in-process
// generators from GOMAXPROCS callers, and naive Redis generators from 50.
func BenchmarkBaseline(b *testing.B) {
	b.Run("snowflake", func(b *testing.B) {
		node, err := snowflake.NewNode(1)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var last snowflake.ID
			for pb.Next() {
				last = node.Generate()
			}
			sink.Store(int64(last))
		})
	})
	b.Run("sonyflake", func(b *testing.B) {
		sf, err := sonyflake.New(sonyflake.Settings{MachineID: func() (int, error) { return 1, nil }})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var last int64
			for pb.Next() {
				id, err := sf.NextID()
				if err != nil {
					b.Error(err)
					return
				}
				last = id
			}
			sink.Store(last)
		})
	})
	b.Run("uuidv7", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var last uuid.UUID
			for pb.Next() {
				id, err := uuid.NewV7()
				if err != nil {
					b.Error(err)
					return
				}
				last = id
			}
			sink.Store(int64(last[15]))
		})
	})
	b.Run("xid", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			var last xid.ID
			for pb.Next() {
				last = xid.New()
			}
			sink.Store(int64(last[11]))
		})
	})

	e := startBench(b, portBench)
	b.Run("redis-incr", func(b *testing.B) {
		cc := e.cl.ClusterClient()
		key := "{bench}incr-" + strconv.Itoa(b.N)
		b.ReportAllocs()
		b.SetParallelism(redisParallelism)
		b.ResetTimer()
		t0 := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				if err := cc.Incr(ctx, key).Err(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "IDs/s")
	})
	b.Run("redis-incr-wait", func(b *testing.B) {
		key := "{bench}incrwait-" + strconv.Itoa(b.N)
		_, node, err := e.cl.MasterForKey(key)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.SetParallelism(redisParallelism)
		b.ResetTimer()
		t0 := time.Now()
		b.RunParallel(func(pb *testing.PB) {
			ctx := context.Background()
			for pb.Next() {
				var wait *redis.Cmd
				_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
					p.Incr(ctx, key)
					wait = p.Do(ctx, "WAIT", 1, 250)
					return nil
				})
				if err != nil {
					b.Error(err)
					return
				}
				if n, _ := wait.Int64(); n < 1 {
					b.Error("WAIT: no replica acknowledged")
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "IDs/s")
	})
}

// TestAdaptiveBlockSize checks on a real cluster that the block size grows
// under load and shrinks again when consumption drops.
func TestAdaptiveBlockSize(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	lc := clustertest.Start(t, cluster.LocalConfig{Masters: 3, Replicas: -1, BasePort: portAdaptive, Logf: t.Logf})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Config{Addrs: lc.Addrs(), Namespace: "adaptive", Shards: 6, AckReplicas: -1,
		BlockSize: 100, MinBlockSize: 100, MaxBlockSize: 1 << 16, BlockTarget: 100 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Under load: as fast as one caller goes, for at most 2s or until B
	// reaches the maximum.
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline) && c.BlockSize() < 1<<16; {
		if _, err := c.NextN(ctx, 1000); err != nil {
			t.Fatal(err)
		}
	}
	grown := c.BlockSize()
	t.Logf("block size under load: %d", grown)
	if grown < 1<<12 {
		t.Fatalf("block size %d did not grow under load (from 100 toward %d)", grown, 1<<16)
	}

	// Idle-ish: a trickle of IDs, 1 every ms, until B is back down or 6s pass.
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline) && c.BlockSize() > grown/16; {
		if _, err := c.Next(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	shrunk := c.BlockSize()
	t.Logf("block size at a trickle: %d", shrunk)
	if shrunk > grown/16 {
		t.Fatalf("block size %d did not shrink at a trickle (was %d)", shrunk, grown)
	}
}
