// Package bench measures shardseq side by side with its peers on one machine:
// naive Redis generators (INCR, INCR+WAIT), shardseq in strict and segment
// mode, and shardseq over HTTP. It is the engine of `shardseq bench`; the
// command only parses flags and prints. In-process generators (snowflake,
// uuid, ...) are measured by the same driver through RunGenerators, which the
// lab module (lab/) calls with its own baselines, so that this module links
// none of them.
package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/server"
)

// Mode names, in the order they run.
const (
	ModeRedisIncr     = "redis-incr"
	ModeRedisIncrWait = "redis-incr-wait"
	ModeStrict        = "shardseq-strict"
	ModeSegment       = "shardseq-segment"
	ModeHTTP1         = "shardseq-http-1"
	ModeHTTP1000      = "shardseq-http-1000"
)

// AllModes lists every mode in run order.
var AllModes = []string{ModeRedisIncr, ModeRedisIncrWait, ModeStrict, ModeSegment, ModeHTTP1, ModeHTTP1000}

// Segment mode and the Generators do no I/O per ID: they run GOMAXPROCS
// callers by default and time one call in sampleEvery (timing every call
// would cost more than the call).
const sampleEvery = 64

// Generator is an in-process ID generator measured beside shardseq.
type Generator struct {
	Name, Note string
	// New returns one caller's generator: each call makes one ID.
	New func() (func() error, error)
}

// HTTP server choices for Config.HTTP.
const (
	HTTPLocal = "local" // start an in-process server on the same cluster
	HTTPOff   = "off"
)

// Config configures Run. Zero values are the documented defaults.
type Config struct {
	// Redis is where the cluster is and how to log in (URL or Addrs,
	// Username, Password, TLSConfig); required unless Launch. Its timeouts
	// are the benchmark's; PoolSize defaults to 64.
	Redis cluster.Config
	// Launch starts a local 3-master, 3-replica cluster at Port.
	Launch bool
	// Port is the first data port of the launched cluster; default 7550.
	Port int
	// Dir keeps the launched cluster's files; default a temporary
	// directory, removed at the end.
	Dir string
	// Duration of each mode; default 5s.
	Duration time.Duration
	// Concurrency is the number of callers; 0 means 50 for modes that wait
	// on Redis or HTTP and GOMAXPROCS for segment mode and Generators.
	Concurrency int
	// HTTP is the base URL of a shardseq server for the HTTP modes, "local"
	// (default) for an in-process server on the same cluster, or "off".
	HTTP string
	// Modes to run; default AllModes.
	Modes []string
	// Shards is N of the namespaces used; default client.DefaultShards.
	Shards int
	// Fault "kill-master" runs a fault run instead of the modes (needs
	// Launch).
	Fault string
	// Rate paces the fault run's callers to this many IDs/s in all; 0 (the
	// default) runs them flat out, which on a small machine measures the
	// CPU run queue as much as shardseq.
	Rate float64
	// Progress receives one line per second while a mode runs; nil for none.
	Progress io.Writer
	// Logger for the client and server; default discards.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if c.Port == 0 {
		c.Port = 7550
	}
	if c.Duration == 0 {
		c.Duration = 5 * time.Second
	}
	if c.HTTP == "" {
		c.HTTP = HTTPLocal
	}
	if len(c.Modes) == 0 {
		c.Modes = AllModes
	}
	if c.Shards == 0 {
		c.Shards = client.DefaultShards
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case c.Duration < 100*time.Millisecond || c.Duration > time.Hour:
		return c, fmt.Errorf("bench: duration %v: want 100ms to 1h", c.Duration)
	case c.Concurrency < 0 || c.Concurrency > 10000:
		return c, fmt.Errorf("bench: concurrency %d: want 0 (default) to 10000", c.Concurrency)
	case c.Fault != "" && c.Fault != "kill-master":
		return c, fmt.Errorf("bench: fault %q: the only fault is kill-master", c.Fault)
	case c.Rate < 0:
		return c, fmt.Errorf("bench: rate %v: want 0 (flat out) or more", c.Rate)
	case c.Port < 1024 || c.Port > 22000:
		return c, fmt.Errorf("bench: port %d: want 1024 to 22000 (the cluster bus uses port+10000)", c.Port)
	}
	for _, m := range c.Modes {
		if !slices.Contains(AllModes, m) {
			return c, fmt.Errorf("bench: unknown mode %q; modes: %s", m, strings.Join(AllModes, ", "))
		}
	}
	return c, nil
}

// withCluster is withDefaults for Run, which needs a cluster: given or
// launched, and launched for a fault.
func (c Config) withCluster() (Config, error) {
	c, err := c.withDefaults()
	switch {
	case err != nil:
		return c, err
	case !c.Launch && len(c.Redis.Addrs) == 0 && c.Redis.URL == "":
		return c, errors.New("bench: give the cluster's addresses (--redis) or --launch")
	case c.Fault != "" && !c.Launch:
		return c, errors.New("bench: --fault kill-master needs --launch (it kills a node of a cluster it owns)")
	}
	return c, nil
}

// Result is one mode's outcome.
type Result struct {
	Mode        string  `json:"mode"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	IDs         int64   `json:"ids"`
	Calls       int64   `json:"calls"`
	Errors      int64   `json:"errors"`
	IDsPerSec   float64 `json:"ids_per_sec"`
	// Latency of one call (one ID, or one request of the HTTP modes), in
	// microseconds; sampled 1 call in 64 for in-process modes.
	P50us  float64 `json:"p50_us"`
	P99us  float64 `json:"p99_us"`
	P999us float64 `json:"p999_us"`
	MaxUs  float64 `json:"max_us"`
	// RoundTrips to Redis during the mode, counted by a hook on every
	// connection the benchmark opened (-1 for modes that use none).
	RoundTrips      int64   `json:"round_trips"`
	RoundTripsPer1k float64 `json:"round_trips_per_1k_ids"`
	// VsSegment is IDsPerSec over shardseq segment mode's.
	VsSegment float64 `json:"vs_segment"`
	Note      string  `json:"note,omitempty"`
}

// Machine describes where the benchmark ran.
type Machine struct {
	CPUs       int    `json:"cpus"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	CPUModel   string `json:"cpu_model"`
	Go         string `json:"go"`
	Redis      string `json:"redis"`
	OS         string `json:"os"`
	LoadAvg    string `json:"loadavg_at_start"`
}

// Report is the outcome of Run.
type Report struct {
	Started  time.Time    `json:"started"`
	Machine  Machine      `json:"machine"`
	Cluster  string       `json:"cluster"`
	Duration float64      `json:"duration_seconds"`
	Results  []Result     `json:"results,omitempty"`
	Fault    *FaultReport `json:"fault,omitempty"`
}

// env is what every mode needs.
type env struct {
	cfg     Config
	lc      *localcluster.Cluster // nil unless launched
	cl      *cluster.Cluster
	rt      *roundTrips
	httpURL string
	closers []func()
}

func (e *env) close() {
	for i := len(e.closers) - 1; i >= 0; i-- {
		e.closers[i]()
	}
}

// Run runs the configured modes one after the other, or the fault run, and
// returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	cfg, err := cfg.withCluster()
	if err != nil {
		return nil, err
	}
	e := &env{cfg: cfg, rt: &roundTrips{}}
	defer e.close()
	if err := e.connect(ctx); err != nil {
		return nil, err
	}
	rep := &Report{Started: time.Now().UTC(), Machine: machine(ctx, e.cl), Cluster: strings.Join(e.cl.Topology().Addrs(), ","),
		Duration: cfg.Duration.Seconds()}
	if cfg.Fault != "" {
		fr, err := e.killMaster(ctx)
		rep.Fault = fr
		return rep, err
	}
	for _, mode := range cfg.Modes {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		res, err := e.run(ctx, mode)
		if err != nil {
			return rep, fmt.Errorf("bench: %s: %w", mode, err)
		}
		rep.Results = append(rep.Results, res)
	}
	rep.SetVsSegment()
	return rep, nil
}

func (e *env) progressf(format string, args ...any) { e.cfg.progressf(format, args...) }

func (c Config) progressf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, format, args...)
	}
}

// connect launches the cluster when asked, dials it and hooks every
// connection with the round-trip counter.
func (e *env) connect(ctx context.Context) error {
	cc := e.cfg.Redis
	if e.cfg.Launch {
		dir := e.cfg.Dir
		if dir == "" {
			d, err := os.MkdirTemp("", "shardseq-bench-")
			if err != nil {
				return err
			}
			dir = d
			e.closers = append(e.closers, func() { _ = os.RemoveAll(d) })
		}
		e.progressf("launching a 3-master, 3-replica cluster on ports %d-%d...\n", e.cfg.Port, e.cfg.Port+5)
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		lc, err := localcluster.Start(sctx, localcluster.Config{Masters: 3, Replicas: 1, BasePort: e.cfg.Port, Dir: dir})
		cancel()
		if err != nil {
			return err
		}
		e.lc = lc
		e.closers = append(e.closers, func() { _ = lc.Close() })
		cc = cluster.Config{Addrs: lc.Addrs()}
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Generous timeouts: the bench measures throughput, not how soon a
	// slow answer is given up on.
	cc.ReadTimeout, cc.WriteTimeout, cc.Logger = 3*time.Second, 3*time.Second, e.cfg.Logger
	if cc.PoolSize == 0 {
		cc.PoolSize = 64
	}
	cl, err := cluster.Dial(dctx, cc)
	if err != nil {
		return err
	}
	e.closers = append(e.closers, func() { _ = cl.Close() })
	e.cl = cl
	// The bench's clients share this connection, so its repairs are ours.
	repairs := failover.StartRepairs(cl, failover.RepairConfig{Logger: e.cfg.Logger})
	e.closers = append(e.closers, repairs.Stop)
	cl.ClusterClient().AddHook(e.rt)
	for _, a := range cl.Topology().Addrs() {
		cl.Node(a).AddHook(e.rt)
	}
	return nil
}

// newClient opens a fresh namespace and warms it up, so its creation is not
// measured.
func (e *env) newClient(ctx context.Context, mod func(*client.Config)) (*client.Client, error) {
	cfg := client.Config{Cluster: e.cl, Namespace: fmt.Sprintf("bench-%d", time.Now().UnixNano()),
		Shards: e.cfg.Shards, Logger: e.cfg.Logger}
	if mod != nil {
		mod(&cfg)
	}
	c, err := client.New(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := c.NextN(ctx, 10); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// gen is one caller's generator: it returns how many IDs one call produced.
type gen func(ctx context.Context) (int, error)

// run runs one mode for Duration.
func (e *env) run(ctx context.Context, mode string) (Result, error) {
	conc := e.cfg.Concurrency
	if conc == 0 {
		conc = 50
		if mode == ModeSegment {
			conc = runtime.GOMAXPROCS(0)
		}
	}
	mk, note, cleanup, err := e.generator(ctx, mode, conc)
	if err != nil {
		return Result{Mode: mode, Concurrency: conc, RoundTrips: -1}, err
	}
	defer cleanup()
	if mk == nil {
		return Result{Mode: mode, Concurrency: conc, RoundTrips: -1, Note: note}, nil
	}
	every := 1
	if mode == ModeSegment {
		every = sampleEvery
	}
	return measure(ctx, e.cfg, mode, note, conc, mk, every, e.rt), nil
}

// measure drives conc callers of mk for cfg.Duration, timing one call in
// every, and returns the result; rt, when not nil, counts the Redis round
// trips meanwhile.
func measure(ctx context.Context, cfg Config, mode, note string, conc int, mk func() gen, every int, rt *roundTrips) Result {
	res := Result{Mode: mode, Concurrency: conc, RoundTrips: -1, Note: note}
	var rt0 int64
	if rt != nil {
		rt0 = rt.n.Load()
	}
	out := drive(ctx, mk, conc, cfg.Duration, every, func(ids, errs int64, el time.Duration) {
		cfg.progressf("  %-20s %6.1fs  %14.0f IDs/s  %d errors\n", mode, el.Seconds(), float64(ids)/el.Seconds(), errs)
	})
	res.Seconds, res.IDs, res.Calls, res.Errors = out.el.Seconds(), out.ids, out.calls, out.errs
	res.IDsPerSec = float64(out.ids) / out.el.Seconds()
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	res.P50us, res.P99us, res.P999us, res.MaxUs = us(out.h.quantile(0.5)), us(out.h.quantile(0.99)), us(out.h.quantile(0.999)), us(time.Duration(out.h.max))
	if rt != nil {
		res.RoundTrips = rt.n.Load() - rt0
		if out.ids > 0 {
			res.RoundTripsPer1k = float64(res.RoundTrips) * 1000 / float64(out.ids)
		}
	}
	if out.firstErr != nil {
		res.Note = strings.TrimSpace(res.Note + " first error: " + out.firstErr.Error())
	}
	return res
}

// RunGenerators measures gens one after the other, each for cfg.Duration
// with cfg.Concurrency callers (default GOMAXPROCS), timing one call in 64,
// exactly as segment mode is measured by Run. It needs no cluster: only
// Duration, Concurrency, Progress and Logger of cfg are used.
func RunGenerators(ctx context.Context, cfg Config, gens []Generator) (*Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	rep := &Report{Started: time.Now().UTC(), Machine: machine(ctx, nil), Duration: cfg.Duration.Seconds()}
	conc := cfg.Concurrency
	if conc == 0 {
		conc = runtime.GOMAXPROCS(0)
	}
	for _, g := range gens {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		var mkErr error
		mk := func() gen {
			next, err := g.New()
			if err != nil {
				mkErr = err
				return func(context.Context) (int, error) { return 0, err }
			}
			return func(context.Context) (int, error) { return 1, next() }
		}
		res := measure(ctx, cfg, g.Name, g.Note, conc, mk, sampleEvery, nil)
		if mkErr != nil {
			return rep, fmt.Errorf("bench: %s: %w", g.Name, mkErr)
		}
		rep.Results = append(rep.Results, res)
	}
	rep.SetVsSegment()
	return rep, nil
}

// generator returns, for mode, a constructor of one caller's generator, a
// note for the table and a cleanup.
func (e *env) generator(ctx context.Context, mode string, conc int) (func() gen, string, func(), error) {
	nop := func() {}
	key := fmt.Sprintf("{bench}%s-%d", mode, time.Now().UnixNano())
	switch mode {
	case ModeRedisIncr:
		cc := e.cl.ClusterClient()
		return func() gen {
			return func(ctx context.Context) (int, error) { return 1, cc.Incr(ctx, key).Err() }
		}, "INCR per ID through go-redis ClusterClient, one key", nop, nil
	case ModeRedisIncrWait:
		_, node, err := e.cl.MasterForKey(key)
		if err != nil {
			return nil, "", nop, err
		}
		return func() gen {
			return func(ctx context.Context) (int, error) {
				var wait *redis.Cmd
				_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
					p.Incr(ctx, key)
					wait = p.Do(ctx, "WAIT", 1, 250)
					return nil
				})
				if err != nil {
					return 0, err
				}
				if n, _ := wait.Int64(); n < 1 {
					return 0, errors.New("WAIT: no replica acknowledged")
				}
				return 1, nil
			}
		}, "pipelined [INCR, WAIT 1 250] on the key's master", nop, nil
	case ModeStrict, ModeSegment:
		c, err := e.newClient(ctx, func(cfg *client.Config) { cfg.Strict = mode == ModeStrict })
		if err != nil {
			return nil, "", nop, err
		}
		note := "B=1: one acknowledged reservation (script+WAIT) per ID"
		if mode == ModeSegment {
			note = "adaptive blocks, double-buffered"
		}
		return func() gen {
			return func(ctx context.Context) (int, error) {
				_, err := c.Next(ctx)
				return 1, err
			}
		}, note, func() { _ = c.Close() }, nil
	case ModeHTTP1, ModeHTTP1000:
		if e.cfg.HTTP == HTTPOff {
			return nil, "skipped (--http off)", nop, nil
		}
		base, note, err := e.httpServer(ctx)
		if err != nil {
			return nil, "", nop, err
		}
		count := 1
		if mode == ModeHTTP1000 {
			count = 1000
		}
		url := base + "/v1/ids/bench"
		if count > 1 {
			url += "?count=" + strconv.Itoa(count)
		}
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			MaxIdleConns: conc, MaxIdleConnsPerHost: conc, DisableCompression: true, IdleConnTimeout: time.Minute}}
		return func() gen {
				buf := make([]byte, 0, 64<<10)
				return func(ctx context.Context) (int, error) {
					req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
					if err != nil {
						return 0, err
					}
					resp, err := hc.Do(req)
					if err != nil {
						return 0, err
					}
					b := bytes.NewBuffer(buf[:0])
					_, err = b.ReadFrom(resp.Body)
					_ = resp.Body.Close()
					if err != nil {
						return 0, err
					}
					if resp.StatusCode != http.StatusOK || !bytes.Contains(b.Bytes(), []byte(`"ids":[`)) {
						return 0, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, b.Bytes())
					}
					return count, nil
				}
			}, note + fmt.Sprintf("; count=%d per request", count), func() {
				hc.CloseIdleConnections()
			}, nil
	}
	return nil, "", nop, fmt.Errorf("unknown mode %q", mode)
}

// httpServer returns the base URL of the server for the HTTP modes,
// starting an in-process one on the cluster the first time when asked.
func (e *env) httpServer(ctx context.Context) (string, string, error) {
	if e.cfg.HTTP != HTTPLocal {
		return strings.TrimRight(e.cfg.HTTP, "/"), "server " + e.cfg.HTTP, nil
	}
	if e.httpURL != "" {
		return e.httpURL, "in-process server", nil
	}
	s, err := server.New(server.Config{Cluster: e.cl, Shards: e.cfg.Shards, Logger: e.cfg.Logger})
	if err != nil {
		return "", "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = s.Close()
		return "", "", err
	}
	hs := server.NewHTTPServer(ln.Addr().String(), s.Handler(), e.cfg.Logger)
	go func() { _ = hs.Serve(ln) }()
	e.closers = append(e.closers, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = hs.Shutdown(sctx)
		cancel()
		_ = s.Close()
	})
	e.httpURL = "http://" + ln.Addr().String()
	// Warm the namespace up so its opening is not measured.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, e.httpURL+"/v1/ids/bench", nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	return e.httpURL, "in-process server", nil
}

// SetVsSegment sets every result's VsSegment from shardseq segment mode's
// IDs/s, when the report has that mode (a report merged from several runs
// calls it again).
func (r *Report) SetVsSegment() {
	var base float64
	for _, x := range r.Results {
		if x.Mode == ModeSegment {
			base = x.IDsPerSec
		}
	}
	for i := range r.Results {
		r.Results[i].VsSegment = 0
		if base > 0 {
			r.Results[i].VsSegment = r.Results[i].IDsPerSec / base
		}
	}
}

// driven is the merged outcome of the callers.
type driven struct {
	el                time.Duration
	ids, calls, errs  int64
	h                 *hist
	firstErr          error
	errMu             sync.Mutex
	progressIDs, errN atomic.Int64
}

// drive runs conc callers of mk for d (or until ctx ends), timing one call
// in every, and reports progress once a second.
func drive(ctx context.Context, mk func() gen, conc int, d time.Duration, every int, progress func(ids, errs int64, el time.Duration)) *driven {
	out := &driven{h: newHist(7)}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var stop atomic.Bool
	var wg sync.WaitGroup
	hists := make([]*hist, conc)
	start := time.Now()
	for w := range conc {
		g := mk()
		h := newHist(7)
		hists[w] = h
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ids, calls, errs int64
			flushEvery := int64(1024)
			if every == 1 {
				flushEvery = 16
			}
			flush := func() {
				out.progressIDs.Add(ids)
				out.errN.Add(errs)
				ids, errs = 0, 0
			}
			defer flush()
			for !stop.Load() {
				timed := int(calls)%every == 0
				var t0 time.Time
				if timed {
					t0 = time.Now()
				}
				n, err := g(ctx)
				if timed {
					h.record(time.Since(t0))
				}
				calls++
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					errs++
					out.errMu.Lock()
					if out.firstErr == nil {
						out.firstErr = err
					}
					out.errMu.Unlock()
					continue
				}
				ids += int64(n)
				if calls%flushEvery == 0 {
					flush()
				}
			}
			atomic.AddInt64(&out.calls, calls)
		}()
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-tick.C:
			if progress != nil {
				progress(out.progressIDs.Load(), out.errN.Load(), time.Since(start))
			}
		}
	}
	stop.Store(true)
	out.el = time.Since(start)
	wg.Wait()
	out.ids, out.errs = out.progressIDs.Load(), out.errN.Load()
	for _, h := range hists {
		out.h.merge(h)
	}
	return out
}

// machine describes the host and, when cl is not nil, the cluster's Redis
// version.
func machine(ctx context.Context, cl *cluster.Cluster) Machine {
	m := Machine{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), Go: runtime.Version(),
		OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPUModel = strings.TrimSpace(v)
				break
			}
		}
		_ = f.Close()
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	if cl == nil {
		return m
	}
	if addrs := cl.Topology().Addrs(); len(addrs) > 0 {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := cl.Node(addrs[0]).Info(ictx, "server").Result()
		cancel()
		if err == nil {
			for _, line := range strings.Split(info, "\n") {
				if v, ok := strings.CutPrefix(strings.TrimSpace(line), "redis_version:"); ok {
					m.Redis = v
				}
			}
		}
	}
	return m
}
