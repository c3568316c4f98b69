package client_test

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
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

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// benchEnv is a local cluster and a cluster connection for one benchmark.
type benchEnv struct {
	lc *clustertest.Cluster
	cl *cluster.Cluster
}

func startBench(b *testing.B, port int) benchEnv {
	b.Helper()
	lc := clustertest.Start(b, localcluster.Config{Masters: 3, Replicas: 1, BasePort: port, Logf: func(string, ...any) {}})
	return benchEnv{lc: lc, cl: lc.Dial(cluster.Config{ReadTimeout: time.Second})}
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
func reportRoundTrips(b *testing.B, c *client.Client, before uint64, ids int) {
	var after uint64
	for _, s := range c.Shards() {
		after += s.Reservations
	}
	if ids > 0 {
		b.ReportMetric(float64(after-before)*1000/float64(ids), "reservations/1kIDs")
	}
	b.ReportMetric(float64(c.BlockSize()), "B")
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
		reportRoundTrips(b, c, r0, b.N)
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
		reportRoundTrips(b, c, r0, b.N)
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
			reportRoundTrips(b, c, r0, b.N*n)
		})
	}
}

// BenchmarkNextStrict is strict mode (B=1): one acknowledged reservation
// (script + WAIT for the replica) per ID, from 50 callers on 2 cores.
func BenchmarkNextStrict(b *testing.B) {
	e := startBench(b, portBench)
	b.Run("ack", func(b *testing.B) {
		c := e.newClient(b, "bench-strict-"+strconv.Itoa(b.N), func(cfg *client.Config) { cfg.Strict = true })
		runRedisParallel(b, func(ctx context.Context) error {
			_, err := c.Next(ctx)
			return err
		})
	})
}

// BenchmarkBaseline measures the naive Redis generators in the same run,
// from 50 callers; the in-process ones (snowflake, ...) are benchmarked in
// the lab module (lab/baseline), so that this module needs none of them.
func BenchmarkBaseline(b *testing.B) {
	e := startBench(b, portBench)
	b.Run("redis-incr", func(b *testing.B) {
		cc := e.cl.ClusterClient()
		key := "{bench}incr-" + strconv.Itoa(b.N)
		runRedisParallel(b, func(ctx context.Context) error { return cc.Incr(ctx, key).Err() })
	})
	b.Run("redis-incr-wait", func(b *testing.B) {
		key := "{bench}incrwait-" + strconv.Itoa(b.N)
		_, node, err := e.cl.MasterForKey(key)
		if err != nil {
			b.Fatal(err)
		}
		runRedisParallel(b, func(ctx context.Context) error {
			var wait *redis.Cmd
			if _, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
				p.Incr(ctx, key)
				wait = p.Do(ctx, "WAIT", 1, 250)
				return nil
			}); err != nil {
				return err
			}
			if n, _ := wait.Int64(); n < 1 {
				return errors.New("WAIT: no replica acknowledged")
			}
			return nil
		})
	})
}

// runRedisParallel measures op, one ID per call, from redisParallelism
// callers per P, and reports IDs/s; the first error stops a caller.
func runRedisParallel(b *testing.B, op func(context.Context) error) {
	b.ReportAllocs()
	b.SetParallelism(redisParallelism)
	b.ResetTimer()
	t0 := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := op(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(t0).Seconds(), "IDs/s")
}

// TestSegments checks segment mode on a real cluster: the adaptive block
// size, and uniqueness under concurrent callers and Close.
func TestSegments(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: -1, BasePort: portAdaptive, Logf: t.Logf})
	t.Run("adaptive", func(t *testing.T) { testAdaptive(t, lc) })
	t.Run("unique", func(t *testing.T) { testUnique(t, lc) })
	t.Run("stalled block is not handed out", func(t *testing.T) { testStalledBlock(t, lc) })
	t.Run("quiet namespace is compact", func(t *testing.T) { testQuietCompact(t, lc) })
}

// testStalledBlock: a process that stalls past its block's retire time
// (here: its retire timer stopped, and a wait) must not hand out that
// block's IDs afterwards, with Next or NextN: the hot path checks the clock
// itself and retires the block (its rest counted as a gap).
func testStalledBlock(t *testing.T, lc *clustertest.Cluster) {
	for _, tc := range []struct {
		name string
		take func(context.Context, *client.Client) (int64, error)
	}{
		{"Next", func(ctx context.Context, c *client.Client) (int64, error) { return c.Next(ctx) }},
		{"NextN", func(ctx context.Context, c *client.Client) (int64, error) {
			ids, err := c.NextN(ctx, 1)
			if err != nil {
				return 0, err
			}
			return ids[0], nil
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			const window = 200 * time.Millisecond // blocks retire 80ms after they were sent
			c, err := client.New(ctx, client.Config{Addrs: lc.Addrs(), Namespace: "stall-" + tc.name, Shards: 6, AckReplicas: -1,
				BlockSize: 16, MinBlockSize: 16, MaxBlockSize: 16, OrderWindow: window, HoldFor: -1, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := tc.take(ctx, c); err != nil {
				t.Fatal(err)
			}
			c.StopRetirer()
			before := c.Economy()
			time.Sleep(window) // the stall: well past the block's retire time
			if _, err := tc.take(ctx, c); err != nil {
				t.Fatal(err)
			}
			after := c.Economy()
			if after.Retired-before.Retired < 14 {
				t.Fatalf("after a stall the old block was not retired (retired %d -> %d): its IDs would be handed out late",
					before.Retired, after.Retired)
			}
		})
	}
}

// testQuietCompact: a namespace asked for one ID at a time, slower than
// blocks retire, spends about one sequence number (N IDs of space) per
// request, not a block: no prefetch that would retire unused, blocks of one.
func testQuietCompact(t *testing.T, lc *clustertest.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n, window = 6, 200 * time.Millisecond
	c, err := client.New(ctx, client.Config{Addrs: lc.Addrs(), Namespace: "quiet", Shards: n, AckReplicas: -1,
		OrderWindow: window, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ids []int64
	for k := 0; k < 20; k++ {
		id, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		time.Sleep(window * 3 / 4) // quiet: every block retires before the next request
	}
	if ids[0] > 100 {
		t.Errorf("first ID %d, want a new namespace to start near its start (<= 100)", ids[0])
	}
	// After the first few requests (the first block and the spares).
	steady := ids[5:]
	per := float64(steady[len(steady)-1]-steady[0]) / float64(len(steady)-1)
	t.Logf("ids %v; %.1f of ID space per request; %+v", ids, per, c.Economy())
	if per > 2*n {
		t.Fatalf("a quiet namespace spends %.1f IDs of space per request, want at most 2N = %d", per, 2*n)
	}
}

// testAdaptive: the block size grows under load and shrinks again when
// consumption drops. Blocks should last BlockTarget (100ms here): as fast as
// one caller goes (millions of IDs/s) that is beyond MaxBlockSize; at ~10 IDs
// per ms it is ~1,000.
func testAdaptive(t *testing.T, lc *clustertest.Cluster) {
	const maxB = 1 << 14
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Config{Addrs: lc.Addrs(), Namespace: "adaptive", Shards: 6, AckReplicas: -1,
		BlockSize: 100, MinBlockSize: 100, MaxBlockSize: maxB, BlockTarget: 100 * time.Millisecond, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	// Under load: as fast as one caller goes, for at most 3s or until B
	// reaches the maximum.
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline) && c.BlockSize() < maxB; {
		if _, err := c.NextN(ctx, 1000); err != nil {
			t.Fatal(err)
		}
	}
	grown := c.BlockSize()
	t.Logf("block size under load: %d", grown)
	if grown < maxB/4 {
		t.Fatalf("block size %d did not grow under load (from 100 toward %d)", grown, maxB)
	}

	// Idle-ish: 10 IDs per millisecond (at most), until B is back down or
	// 10s pass. The two big blocks reserved under load are used up first.
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && c.BlockSize() > grown/8; {
		if _, err := c.NextN(ctx, 10); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	shrunk := c.BlockSize()
	t.Logf("block size at a trickle: %d", shrunk)
	if shrunk > grown/8 {
		t.Fatalf("block size %d did not shrink at a trickle (was %d)", shrunk, grown)
	}
}

// testUnique takes IDs with Next and NextN from many goroutines through many
// small blocks and refills, then closes the client under them: no ID twice,
// and ErrClosed after Close.
func testUnique(t *testing.T, lc *clustertest.Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Config{Addrs: lc.Addrs(), Namespace: "unique", Shards: 6, AckReplicas: -1,
		BlockSize: 100, MinBlockSize: 100, MaxBlockSize: 400, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	const workers, calls = 8, 3000
	got := make([][]int64, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				if i%10 == 0 {
					ids, err := c.NextN(ctx, 1+i%97)
					if err != nil {
						t.Error(err)
						return
					}
					got[w] = append(got[w], ids...)
					continue
				}
				id, err := c.Next(ctx)
				if err != nil {
					t.Error(err)
					return
				}
				got[w] = append(got[w], id)
			}
		}()
	}
	wg.Wait()
	// Close while callers keep asking: each call either succeeds or fails
	// with ErrClosed, and every call after Close returned fails.
	stop := make(chan struct{})
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				after := false
				select {
				case <-stop:
					after = true
				default:
				}
				id, err := c.Next(ctx)
				if errors.Is(err, client.ErrClosed) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				if after {
					t.Error("a Next called after Close returned succeeded")
					return
				}
				got[w] = append(got[w], id)
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	close(stop)
	wg.Wait()
	seen := map[int64]bool{}
	for _, ids := range got {
		for _, id := range ids {
			if id <= 0 || seen[id] {
				t.Fatalf("ID %d handed out twice (or not positive)", id)
			}
			seen[id] = true
		}
	}
	if _, err := c.Next(ctx); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Next after Close: %v, want ErrClosed", err)
	}
	t.Logf("%d unique IDs, %d discarded at Close", len(seen), c.Discarded())
}
