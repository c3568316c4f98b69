package server

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// cmdStats is INFO commandstats of one node: calls by command name.
type cmdStats map[string]int64

// readCommandStats reads INFO commandstats of the node at addr.
func readCommandStats(ctx context.Context, rc *redis.Client) (cmdStats, error) {
	info, err := rc.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := cmdStats{}
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		name, rest, ok := strings.Cut(line, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		for field := range strings.SplitSeq(rest, ",") {
			if v, ok := strings.CutPrefix(field, "calls="); ok {
				n, _ := strconv.ParseInt(v, 10, 64)
				out[strings.TrimPrefix(name, "cmdstat_")] = n
			}
		}
	}
	return out, nil
}

// idleWindow is what the nodes processed during one measuring window, less
// the measuring commands themselves.
type idleWindow struct {
	took      time.Duration
	byCommand map[string]int64 // over every node
	total     int64
	probes    map[string]int64 // INFO calls by master address
}

func (w idleWindow) perSec(n int64) float64 { return float64(n) / w.took.Seconds() }

// String is the commands by name, most first, per second.
func (w idleWindow) String() string {
	names := slices.Collect(maps.Keys(w.byCommand))
	slices.SortFunc(names, func(a, b string) int { return int(w.byCommand[b] - w.byCommand[a]) })
	var parts []string
	for _, n := range names {
		if w.byCommand[n] != 0 {
			parts = append(parts, fmt.Sprintf("%s %.1f/s", n, w.perSec(w.byCommand[n])))
		}
	}
	return strings.Join(parts, ", ")
}

// measureIdle reads INFO commandstats of every node, waits d, reads them
// again and returns the difference. Each node's first read is counted in
// its second (as one INFO), so one INFO per node is taken off.
func measureIdle(tb testing.TB, addrs, masters []string, d time.Duration) idleWindow {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+10*time.Second)
	defer cancel()
	clients := make([]*redis.Client, len(addrs))
	for k, a := range addrs {
		clients[k] = redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1, PoolSize: 1})
		defer clients[k].Close()
		if err := clients[k].Ping(ctx).Err(); err != nil { // connect now, outside the window
			tb.Fatalf("ping %s: %v", a, err)
		}
	}
	before := make([]cmdStats, len(addrs))
	var err error
	for k := range addrs {
		if before[k], err = readCommandStats(ctx, clients[k]); err != nil {
			tb.Fatalf("INFO commandstats %s: %v", addrs[k], err)
		}
	}
	start := time.Now()
	time.Sleep(d)
	w := idleWindow{byCommand: map[string]int64{}, probes: map[string]int64{}}
	for k, a := range addrs {
		after, err := readCommandStats(ctx, clients[k])
		if err != nil {
			tb.Fatalf("INFO commandstats %s: %v", a, err)
		}
		after["info"]-- // our first read
		for name, n := range after {
			if delta := n - before[k][name]; delta != 0 {
				w.byCommand[name] += delta
				w.total += delta
			}
		}
		if slices.Contains(masters, a) {
			w.probes[a] = after["info"] - before[k]["info"]
		}
	}
	w.took = time.Since(start)
	return w
}

// openIdle opens namespaces idle-0 .. idle-(n-2) (with the default one, n
// in all) and hands out one ID in each, as a first request does, from a few
// callers at once.
func openIdle(tb testing.TB, s *Server, n int) {
	tb.Helper()
	h := s.Handler()
	names := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failed []string
	for range 8 {
		wg.Go(func() {
			for name := range names {
				rec := doQuiet(h, http.MethodPost, "/v1/ids/"+name)
				if rec != http.StatusOK {
					mu.Lock()
					failed = append(failed, fmt.Sprintf("%s: %d", name, rec))
					mu.Unlock()
				}
			}
		})
	}
	for k := range n - 1 {
		names <- fmt.Sprintf("idle-%d", k)
	}
	close(names)
	wg.Wait()
	if len(failed) > 0 {
		tb.Fatalf("opening %d namespaces: %d failed, first %s", n, len(failed), failed[0])
	}
	if got := len(s.Namespaces()); got != n {
		tb.Fatalf("%d namespaces open, want %d", got, n)
	}
}

// idleSettle is how long the benchmark waits after the namespaces opened
// before it measures: every block retired (0.4 x the order window), no
// breaker trial or repair in flight.
const idleSettle = 3 * time.Second

// BenchmarkIdleCommands measures the Redis commands per second that one
// server with 1, 100 and 1,000 idle namespaces of 12 shards sends to a
// 3 + 3 cluster (summed over every node, replicas included: they apply what
// their masters replicate), and the probes per master per second. Each
// namespace handed out one ID, then nothing is asked for while it measures.
//
//	go test ./server -run '^$' -bench BenchmarkIdleCommands -benchtime 1x -timeout 30m
//
// SHARDSEQ_IDLE_WINDOW sets the measuring window (default 5s). It reports
// too the server's CPU time per second while idle (the test binary's, with
// the measuring) and its goroutines.
func BenchmarkIdleCommands(b *testing.B) {
	window := 5 * time.Second
	if v := os.Getenv("SHARDSEQ_IDLE_WINDOW"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("SHARDSEQ_IDLE_WINDOW=%q: %v", v, err)
		}
		window = d
	}
	lc := clustertest.Start(b, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portIdleBench, Logf: func(string, ...any) {}})
	cl := lc.Dial(cluster.Config{})
	// Opening 1,000 namespaces at once takes seconds each at the end (every
	// creation reads the whole index of namespaces): the benchmark is about
	// what they cost once open, so its requests may wait for them.
	s := newServer(b, Config{Cluster: cl, Shards: 12, MaxNamespaces: 2000, CreateRate: -1, RequestTimeout: time.Minute})
	masters := lc.Masters()
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("namespaces=%d", n), func(b *testing.B) {
			if len(s.Namespaces()) < n {
				t0 := time.Now()
				openIdle(b, s, n)
				b.Logf("%d namespaces open in %v", n, time.Since(t0).Round(time.Millisecond))
			}
			time.Sleep(idleSettle)
			b.ResetTimer()
			var w idleWindow
			cpu0 := cpuTime()
			for range b.N {
				w = measureIdle(b, lc.Addrs(), masters, window)
			}
			cpu := (cpuTime() - cpu0) / time.Duration(b.N)
			b.StopTimer()
			maxProbes := 0.0
			for _, p := range w.probes {
				maxProbes = max(maxProbes, w.perSec(p))
			}
			b.ReportMetric(w.perSec(w.total), "cmds/s")
			b.ReportMetric(maxProbes, "probes/s/master")
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(cpu.Milliseconds())/w.took.Seconds(), "cpu-ms/s")
			b.ReportMetric(float64(runtime.NumGoroutine()), "goroutines")
			b.Logf("%d namespaces: %.1f commands/s on 6 nodes; by command: %s; server CPU %v in %v",
				n, w.perSec(w.total), w, cpu.Round(time.Millisecond), w.took.Round(time.Millisecond))
		})
	}
}

// cpuTime is the CPU time this process used so far (user and system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// doQuiet sends one request to h and returns its status.
func doQuiet(h http.Handler, method, target string) int {
	rec := newRecorder()
	h.ServeHTTP(rec, mustRequest(method, target))
	return rec.Code
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func mustRequest(method, target string) *http.Request {
	return httptest.NewRequest(method, target, nil)
}

// TestIdleCostFlat: the Redis commands per second of an idle server do not
// grow with its namespaces (1, then 150 of 12 shards), and every master is
// probed at most about once a second. BenchmarkIdleCommands measures 1, 100
// and 1,000 (BENCHMARKS.md, "Idle cost").
func TestIdleCostFlat(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portIdleTest})
	cl := lc.Dial(cluster.Config{})
	s := newServer(t, Config{Cluster: cl, Shards: 12, CreateRate: -1, RequestTimeout: time.Minute})
	masters := lc.Masters()
	const window = 3 * time.Second
	time.Sleep(idleSettle)
	one := measureIdle(t, lc.Addrs(), masters, window)
	openIdle(t, s, 150)
	time.Sleep(idleSettle)
	many := measureIdle(t, lc.Addrs(), masters, window)
	t.Logf("1 namespace: %.1f commands/s (%s)", one.perSec(one.total), one)
	t.Logf("150 namespaces: %.1f commands/s (%s)", many.perSec(many.total), many)
	// Idle commands are the probes (1 INFO per master per second), the
	// replicas' REPLCONF ACKs (1 per second each), a topology read every 5s
	// and the odd connection check: about 7 per second, whatever the
	// namespaces. A per-namespace or per-shard timer would add hundreds.
	if got, base := many.perSec(many.total), one.perSec(one.total); got > 1.5*base+3 {
		t.Errorf("idle with 150 namespaces: %.1f commands/s, with 1: %.1f; want flat", got, base)
	}
	for _, w := range []idleWindow{one, many} {
		for addr, n := range w.probes {
			if p := w.perSec(n); p > 1.3 {
				t.Errorf("master %s probed %.2f times per second, want at most 1", addr, p)
			}
		}
	}
}
