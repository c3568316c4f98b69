// Package chaos runs the uniqueness scenario: concurrent callers take IDs
// through the library (segment and strict mode, with client restarts) and
// over HTTP while real faults hit a local Redis Cluster, and a checker
// records every acknowledged ID. It backs the integration tests and
// `shardseq verify`.
package chaos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/internal/lab/checker"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// Fault is a kind of real fault injected into the cluster.
type Fault string

// The faults. Each targets one master, chosen round robin.
const (
	// KillMaster: kill -9 a master; after its replica took over, start it
	// again (it rejoins as a replica).
	KillMaster Fault = "kill-master"
	// PauseMaster: SIGSTOP a master past cluster-node-timeout until its
	// replica is promoted, then SIGCONT: it wakes up still believing it is
	// master for a moment.
	PauseMaster Fault = "pause-master"
	// RestartEmpty: kill -9 a master and start it at once without its data,
	// before a failover: it comes back empty and its replica resyncs the
	// empty dataset.
	RestartEmpty Fault = "restart-empty"
	// PartitionReplica: cut a master from its replicas while clients still
	// reach it; no failover happens, but nothing it writes can replicate.
	PartitionReplica Fault = "partition-replica"
	// IsolateMaster: cut a master from every other node while clients still
	// reach it, until the majority promotes its replica; then heal.
	IsolateMaster Fault = "isolate-master"
	// LaggingReplicaKill: freeze a master's replica, push 40 MB through the
	// master so acknowledged writes stay in its memory, kill -9 it and let
	// the stale replica be promoted: the classic lost-write failover.
	LaggingReplicaKill Fault = "lagging-replica-kill"

	// The rewinds and double faults: a node comes back with older data than
	// it acknowledged, or two faults hit one shard.

	// PromotedStaleRestart: the replica saves its dump file; its master is
	// killed and the replica promoted (it serves); the old master rejoins as
	// its replica; then the promoted node crashes and restarts at once from
	// its older dump file, and its replica resyncs to that.
	PromotedStaleRestart Fault = "promoted-stale-restart"
	// RollingEmpty: every master in turn restarts without data, the cluster
	// recovering between (a rolling restart without persistence).
	RollingEmpty Fault = "rolling-empty"
	// StaleMasterAndReplica: master and replica both save; a failover moves
	// the shard to the replica, which serves past its save; then both crash
	// together and restart from their files, the promoted node from its save
	// of before it took over: the whole shard rewinds across a failover.
	StaleMasterAndReplica Fault = "stale-master-and-replica"
	// DroppedReplicaForce: one replica's data links are cut while the
	// cluster bus stays up, and its master drops it (as its output-buffer
	// limit would); with a second replica, a planned failover moves the
	// shard there and it serves; then the dropped replica, still promotable
	// and stale, is promoted by CLUSTER FAILOVER FORCE, and the node it took
	// over from crashes and restarts.
	DroppedReplicaForce Fault = "dropped-replica-force"
)

// The availability faults of issue 22: what a cluster at Redis's defaults
// goes through while callers must see no error. Each is a single fault.
const (
	// ClusterDown2s: no master for one shard for 2 s after its FAIL flag
	// (its replica runs cluster-replica-no-failover yes while its master is
	// killed -9, then is promoted by CLUSTER FAILOVER FORCE); the old master
	// rejoins as a replica. With cluster-require-full-coverage yes (Redis's
	// default, localcluster.Config.FullCoverage) every master answers
	// CLUSTERDOWN for those 2 s: a cluster-wide outage.
	ClusterDown2s Fault = "clusterdown-2s"
	// FrozenReplica: SIGSTOP a master's replica for 3 s, then SIGCONT; no
	// failover. WAIT on that master falls short meanwhile.
	FrozenReplica Fault = "frozen-replica"
	// LaggingReplica: freeze a master's replica, push 40 MB through the
	// master, thaw the replica: it lags while it catches up, and WAIT on that
	// master falls short until it has. No failover, no kill.
	LaggingReplica Fault = "lagging-replica"
)

// Availability are the single faults callers must get through without an
// error (issue 22), in the order the availability tests play them. The cut
// replica (PartitionReplica) needs a cluster started with Partitions.
var Availability = []Fault{KillMaster, ClusterDown2s, PauseMaster, FrozenReplica, LaggingReplica, PartitionReplica, RestartEmpty}

// Faults is every fault kind, in the order a mixed scenario cycles them.
var Faults = []Fault{KillMaster, PartitionReplica, PromotedStaleRestart, PauseMaster, RestartEmpty,
	StaleMasterAndReplica, IsolateMaster, LaggingReplicaKill, RollingEmpty, DroppedReplicaForce}

// Rewinds are the faults in which a node comes back with older data than it
// acknowledged, or two faults hit one shard.
var Rewinds = []Fault{PromotedStaleRestart, RollingEmpty, StaleMasterAndReplica, DroppedReplicaForce}

// IsRewind reports whether f is one of Rewinds.
func IsRewind(f Fault) bool { return slices.Contains(Rewinds, f) }

// ParseFaults parses a comma-separated list of fault names.
func ParseFaults(s string) ([]Fault, error) {
	var out []Fault
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(Faults, Fault(f)) && !slices.Contains(Availability, Fault(f)) {
			return nil, fmt.Errorf("chaos: unknown fault %q; want one of %v or %v", f, Faults, Availability)
		}
		out = append(out, Fault(f))
	}
	return out, nil
}

// Config describes a scenario. Zero values are defaults.
type Config struct {
	// Seeds are the cluster's addresses. Without them only HTTP callers run.
	Seeds []string
	// Local is the cluster to inject faults into; nil runs load only. The
	// partition faults need it started with Partitions; otherwise they are
	// skipped with a note in the log.
	Local *localcluster.Cluster
	// Faults are injected one after another while the load runs.
	Faults []Fault
	// Warmup is how long the load runs before the first fault (default 0):
	// steady state first, so every caller's namespace is open and in use
	// when the fault hits.
	Warmup time.Duration
	// Namespace default "verify-<unix time>"; Shards default 6.
	Namespace string
	Shards    int
	// Callers is the number of library callers (default 8); StrictCallers of
	// them use strict mode (default 1, -1 for none).
	Callers, StrictCallers int
	// HTTP lists server base URLs; HTTPCallers callers (default 2 when HTTP
	// is set) take IDs over HTTP with count=HTTPBatch (default 100). HTTP
	// caller i asks server i%len(HTTP).
	HTTP                   []string
	HTTPCallers, HTTPBatch int
	// HTTPBatches, when set, replaces HTTPBatch: the callers of each server
	// cycle through these counts (e.g. {1, 50}: half ask for one ID, half
	// for 50).
	HTTPBatches []int
	// ServerOrder, when set, receives one order report per server of HTTP
	// (same index): the order measure of its answers alone at OrderWindow
	// (client.DefaultOrderWindow when OrderWindow is -1), as one process
	// promises it (docs/CORRECTNESS.md); its other figures cover that
	// server's answers too.
	ServerOrder *[]checker.Report
	// Errors, when set, receives the failed calls of the whole run by the
	// face they came through.
	Errors *CallerErrors
	// MinIDs: the load goes on after the faults until this many IDs were
	// acknowledged (default 1,000,000). MaxDuration caps the whole run
	// (default 5m); MinDuration keeps load-only runs going (default 0).
	MinIDs                   int64
	MaxDuration, MinDuration time.Duration
	// RestartEvery: each library caller closes its client and opens a new
	// one this often, as a restarted process would (default 2s; -1 never).
	RestartEvery time.Duration
	// CallRate caps each library caller's calls per second (0: no cap), so a
	// long run records a bounded number of IDs: the checker keeps them all.
	CallRate int
	// AfterFault runs after each fault, once the cluster is healthy again:
	// the scenario opens fresh client processes there (a long-lived
	// process's memory must not be what keeps IDs unique). An error ends
	// the run.
	AfterFault func(ctx context.Context, i int, f Fault) error
	// OrderWindow is the window of the order measure in the report (see
	// internal/checker): default client.DefaultOrderWindow, -1 off. Callers
	// of different processes (library callers, each server) are ordered
	// only within the window measured across servers (docs/CORRECTNESS.md).
	OrderWindow time.Duration
	// Settle, when set, ends each fault only once every library caller's
	// client and every server of HTTP hold spares that would carry their
	// callers through this long an outage again (client.SpareCover,
	// shardseq_spare_cover_seconds), at most settleTimeout after the
	// cluster is healthy: the next fault is then a single fault, not the
	// tail of this one (callers riding the rest of their spares). What it
	// took is in the fault's line.
	Settle time.Duration
	// Costs, when set, receives what each fault cost.
	Costs *[]FaultCost
	// Client is the template for every library client (block sizes, ack);
	// Seeds, Namespace and Shards are filled in.
	Client client.Config
	// Logf receives progress lines; nil discards them.
	Logf func(format string, args ...any)
}

func (c Config) withDefaults() Config {
	if c.Namespace == "" {
		c.Namespace = "verify-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	if c.Shards == 0 {
		c.Shards = 6
	}
	if c.Callers == 0 {
		c.Callers = 8
	}
	if c.StrictCallers == 0 {
		c.StrictCallers = 1
	}
	c.StrictCallers = max(c.StrictCallers, 0)
	if len(c.HTTP) > 0 && c.HTTPCallers == 0 {
		c.HTTPCallers = 2
	}
	if c.HTTPBatch == 0 {
		c.HTTPBatch = 100
	}
	if c.MinIDs == 0 {
		c.MinIDs = 1_000_000
	}
	if c.MaxDuration == 0 {
		c.MaxDuration = 5 * time.Minute
	}
	if c.RestartEvery == 0 {
		c.RestartEvery = 2 * time.Second
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.OrderWindow == 0 {
		c.OrderWindow = client.DefaultOrderWindow
	}
	return c
}

// Run plays the scenario and returns the checker's report. The error is about
// the scenario itself (a fault that could not be injected, a cluster that did
// not recover); duplicates are in the report.
func Run(ctx context.Context, cfg Config) (checker.Report, error) {
	cfg = cfg.withDefaults()
	if len(cfg.Seeds) == 0 {
		if len(cfg.HTTP) == 0 {
			return checker.Report{}, errors.New("chaos: no seed addresses and no HTTP servers to take IDs from")
		}
		cfg.Callers = 0
	}
	if cfg.Settle > 0 && (cfg.RestartEvery > 0 || cfg.Callers == 0) {
		// A client that lives RestartEvery never holds HoldFor's spares;
		// the ceilings are read through the library callers' shard keys.
		return checker.Report{}, errors.New("chaos: Settle needs library callers (Callers > 0) that keep their clients (RestartEvery -1)")
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.MaxDuration)
	defer cancel()

	var counters *counterReader
	if cfg.Callers > 0 {
		// Create the namespace before the faults start, so every caller agrees.
		first, err := client.New(ctx, cfg.clientConfig(false))
		if err != nil {
			return checker.Report{}, err
		}
		counters = newCounterReader(ctx, cfg.Seeds, first.Shards())
		_ = first.Close()
		defer counters.Close()
	}

	ck := checker.New().WithShards(cfg.Shards)
	if cfg.OrderWindow > 0 {
		ck = ck.WithOrder(cfg.OrderWindow)
	}
	var pr progress
	stop := make(chan struct{})
	var wg sync.WaitGroup
	libs := make([]atomic.Pointer[client.Client], cfg.Callers) // each caller's client now, for Settle
	for i := 0; i < cfg.Callers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg.libraryCaller(ctx, stop, ck.Recorder(), &pr, i < cfg.StrictCallers, i, &libs[i])
		}()
	}
	var perServer []*checker.Checker
	if cfg.ServerOrder != nil {
		w := cfg.OrderWindow
		if w <= 0 {
			w = client.DefaultOrderWindow // the whole run's measure is off; one server's still means something
		}
		for range cfg.HTTP {
			perServer = append(perServer, checker.New().WithShards(cfg.Shards).WithOrder(w))
		}
	}
	for i := 0; i < cfg.HTTPCallers; i++ {
		server := i % len(cfg.HTTP)
		batch := cfg.HTTPBatch
		if len(cfg.HTTPBatches) > 0 {
			batch = cfg.HTTPBatches[(i/len(cfg.HTTP))%len(cfg.HTTPBatches)]
		}
		var order *checker.Recorder
		if perServer != nil {
			order = perServer[server].Recorder()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg.httpCaller(ctx, stop, ck.Recorder(), order, &pr, cfg.HTTP[server], batch)
		}()
	}

	var log []string
	var costs []FaultCost
	var runErr error
	if cfg.Warmup > 0 && len(cfg.Faults) > 0 {
		_ = hold(ctx, cfg.Warmup) // steady load before the first fault
	}
	if cfg.Settle > 0 && len(cfg.Faults) > 0 {
		// The first fault too meets callers with their spares stocked.
		if what, err := cfg.settle(ctx, libs, counters); err != nil {
			runErr = fmt.Errorf("chaos: before the first fault: %w", err)
		} else {
			cfg.Logf("warm-up: %s", what)
		}
	}
	for i, f := range cfg.Faults {
		if ctx.Err() != nil || runErr != nil {
			break
		}
		t0 := time.Now()
		seq0, acked0, lib0, http0 := counters.sum(ctx), pr.acked.Load(), pr.libFailed.Load(), pr.httpFailed.Load()
		what, err := inject(ctx, cfg, f, i)
		if err != nil {
			runErr = fmt.Errorf("chaos: fault %d (%s): %w", i+1, f, err)
			break
		}
		if cfg.AfterFault != nil {
			err = cfg.AfterFault(ctx, i, f)
		}
		if err != nil {
			runErr = fmt.Errorf("chaos: after fault %d (%s): %w", i+1, f, err)
			break
		}
		if cfg.Settle > 0 {
			settled, err := cfg.settle(ctx, libs, counters)
			if err != nil {
				runErr = fmt.Errorf("chaos: after fault %d (%s): %w", i+1, f, err)
				break
			}
			what += "; " + settled
		}
		cost := FaultCost{Fault: f, Target: what, Seconds: time.Since(t0).Seconds(),
			IDs: pr.acked.Load() - acked0, LibraryErrors: pr.libFailed.Load() - lib0, HTTPErrors: pr.httpFailed.Load() - http0}
		cost.FailedCalls = cost.LibraryErrors + cost.HTTPErrors
		if seq1 := counters.sum(ctx); seq0 >= 0 && seq1 >= 0 {
			// What the counters advanced beyond what was handed out: the
			// fence's jump, blocks abandoned, the level pulled up.
			cost.Skipped = seq1 - seq0 - cost.IDs
		}
		costs = append(costs, cost)
		line := cost.String()
		log = append(log, line)
		cfg.Logf("fault %d/%d: %s; %d IDs so far", i+1, len(cfg.Faults), line, pr.acked.Load())
	}

	start := time.Now()
	tick := time.NewTicker(500 * time.Millisecond)
	for ctx.Err() == nil && runErr == nil && (pr.acked.Load() < cfg.MinIDs || time.Since(start) < cfg.MinDuration) {
		select {
		case <-ctx.Done():
		case <-tick.C:
			cfg.Logf("load: %d IDs acknowledged", pr.acked.Load())
		}
	}
	tick.Stop()
	close(stop)
	wg.Wait()
	rep := ck.Report()
	rep.Faults, rep.FaultLog = len(log), log
	if cfg.Costs != nil {
		*cfg.Costs = costs
	}
	if cfg.Errors != nil {
		*cfg.Errors = pr.errors()
	}
	if cfg.ServerOrder != nil {
		*cfg.ServerOrder = nil
		for _, c := range perServer {
			*cfg.ServerOrder = append(*cfg.ServerOrder, c.Report())
		}
	}
	if runErr == nil && pr.acked.Load() < cfg.MinIDs && cfg.MinDuration == 0 {
		runErr = fmt.Errorf("chaos: only %d of %d IDs acknowledged before the %v limit", pr.acked.Load(), cfg.MinIDs, cfg.MaxDuration)
	}
	return rep, runErr
}

func (cfg Config) clientConfig(strict bool) client.Config {
	c := cfg.Client
	c.Addrs, c.Namespace, c.Shards, c.Strict = cfg.Seeds, cfg.Namespace, cfg.Shards, strict
	if c.Logger == nil {
		c.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c
}

// libraryCaller takes IDs until stop, opening a new client every
// RestartEvery as a restarted process would; a client is closed without
// handing out what it still holds.
func (cfg Config) libraryCaller(ctx context.Context, stop <-chan struct{}, rec *checker.Recorder, pr *progress, strict bool, seed int, shown *atomic.Pointer[client.Client]) {
	var c *client.Client
	defer func() {
		shown.Store(nil)
		if c != nil {
			_ = c.Close()
		}
	}()
	var opened time.Time
	started := time.Now()
	for n := 0; ; n++ {
		if cfg.CallRate > 0 && n%100 == 0 {
			// Pacing, not synchronisation: stay at or below CallRate.
			if ahead := time.Duration(float64(n)/float64(cfg.CallRate)*float64(time.Second)) - time.Since(started); ahead > 0 {
				waitOrStop(stop, ahead)
			}
		}
		if stopped(ctx, stop) {
			return
		}
		if c == nil || (cfg.RestartEvery > 0 && time.Since(opened) > cfg.RestartEvery) {
			if c != nil {
				shown.Store(nil)
				_ = c.Close()
				c = nil
			}
			nc, err := client.New(ctx, cfg.clientConfig(strict))
			if err != nil {
				pr.failLibrary(rec, err)
				waitOrStop(stop, 100*time.Millisecond)
				continue
			}
			c, opened = nc, time.Now()
			if !strict { // strict mode holds no spares
				shown.Store(c)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		t0 := time.Now()
		if (n+seed)%8 == 0 {
			ids, err := c.NextN(cctx, 16)
			cancel()
			if err != nil {
				pr.failLibrary(rec, err)
				waitOrStop(stop, 20*time.Millisecond) // as the HTTP callers do: errors are counted, not spun on
				continue
			}
			rec.Ack(time.Since(t0), ids...)
			pr.acked.Add(int64(len(ids)))
			continue
		}
		id, err := c.Next(cctx)
		cancel()
		if err != nil {
			pr.failLibrary(rec, err)
			waitOrStop(stop, 20*time.Millisecond)
			continue
		}
		rec.Ack(time.Since(t0), id)
		pr.acked.Add(1)
	}
}

// settleTimeout bounds Config.Settle's wait after a fault.
const settleTimeout = 30 * time.Second

// settle waits until the callers have recovered from the last fault: every
// library caller's client (strict ones hold no spares) and every server
// hold spares covering cfg.Settle of an outage, and every shard's confirmed
// ceiling (the counter's mirrored field) is above every counter of the
// namespace, so that no shard's next block, levelled above the highest
// counter after a restore's jump, needs a raise (which fails while any
// copy's master does). It polls, at most settleTimeout, and says what it
// took; past that the next fault would be a double fault: an error.
func (cfg Config) settle(ctx context.Context, libs []atomic.Pointer[client.Client], counters *counterReader) (string, error) {
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	hc := &http.Client{Timeout: 2 * time.Second}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		why := ""
		for i := range libs {
			if c := libs[i].Load(); c != nil && why == "" {
				if cover := c.SpareCover(); cover < cfg.Settle {
					why = fmt.Sprintf("library caller %d: spares cover %v", i, cover.Round(time.Millisecond))
				}
			}
		}
		for _, base := range cfg.HTTP {
			if why != "" {
				break
			}
			if cover, err := spareCover(ctx, hc, base, cfg.Namespace); err != nil {
				why = err.Error()
			} else if cover < cfg.Settle {
				why = fmt.Sprintf("%s: spares cover %v", base, cover.Round(time.Millisecond))
			}
		}
		if why == "" {
			why = counters.ceilingsAhead(ctx)
		}
		if why == "" {
			return fmt.Sprintf("callers recovered (spares cover %v, every ceiling above every counter) after %v",
				cfg.Settle, time.Since(t0).Round(time.Millisecond)), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("callers did not recover within %v: %s", settleTimeout, why)
		case <-tick.C:
		}
	}
}

// spareCover reads shardseq_spare_cover_seconds of namespace ns from a
// server's /metrics.
func spareCover(ctx context.Context, hc *http.Client, base, ns string) (time.Duration, error) {
	body, err := call(ctx, hc, http.MethodGet, strings.TrimRight(base, "/")+"/metrics")
	if err != nil {
		return 0, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("%s/metrics: %w", base, err)
	}
	for _, m := range families["shardseq_spare_cover_seconds"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "namespace" && l.GetValue() == ns {
				return time.Duration(m.GetGauge().GetValue() * float64(time.Second)), nil
			}
		}
	}
	return 0, fmt.Errorf("%s/metrics: no shardseq_spare_cover_seconds for %q", base, ns)
}

// call sends a request without a body and returns the body of a 200 answer
// (at most 4 MiB); any other status is an error carrying the body.
func call(ctx context.Context, hc *http.Client, method, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<22))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return body, nil
}

// httpCaller takes IDs from one server until stop; order, when set, also
// records every answer with its send and arrival time for the server's own
// order measure.
func (cfg Config) httpCaller(ctx context.Context, stop <-chan struct{}, rec, order *checker.Recorder, pr *progress, base string, batch int) {
	hc := &http.Client{Timeout: 5 * time.Second}
	url := strings.TrimRight(base, "/") + "/v1/ids/" + cfg.Namespace + "?count=" + strconv.Itoa(batch)
	for {
		if stopped(ctx, stop) {
			return
		}
		t0 := time.Now()
		ids, err := postIDs(ctx, hc, url)
		if err != nil {
			if stopped(ctx, stop) && ctx.Err() != nil {
				return // the run's own deadline cut the request: not the server's error
			}
			pr.failHTTP(rec, err)
			waitOrStop(stop, 20*time.Millisecond)
			continue
		}
		t1 := time.Now()
		rec.AckAt(t0, t1, ids...)
		if order != nil {
			order.AckAt(t0, t1, ids...)
		}
		pr.acked.Add(int64(len(ids)))
	}
}

// postIDs asks a server for IDs and parses {"namespace":..,"ids":[...]}
// without trusting it: anything else is an error, never an ID.
func postIDs(ctx context.Context, hc *http.Client, url string) ([]int64, error) {
	body, err := call(ctx, hc, http.MethodPost, url)
	if err != nil {
		return nil, err
	}
	return ParseIDs(body)
}

// ParseIDs extracts the "ids" array of a server reply.
func ParseIDs(body []byte) ([]int64, error) {
	s := string(body)
	i := strings.Index(s, `"ids":[`)
	if i < 0 {
		return nil, fmt.Errorf("chaos: reply has no ids: %.200s", s)
	}
	s = s[i+len(`"ids":[`):]
	j := strings.IndexByte(s, ']')
	if j < 0 {
		return nil, fmt.Errorf("chaos: unterminated ids: %.200s", s)
	}
	var ids []int64
	for _, f := range strings.Split(s[:j], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("chaos: bad id %q", f)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// progress counts what the callers saw.
type progress struct {
	acked, libFailed, httpFailed atomic.Int64
	mu                           sync.Mutex
	lastLib, lastHTTP            string
}

func (p *progress) failLibrary(rec *checker.Recorder, err error) {
	p.libFailed.Add(1)
	rec.Fail(err)
	p.mu.Lock()
	p.lastLib = err.Error()
	p.mu.Unlock()
}

func (p *progress) failHTTP(rec *checker.Recorder, err error) {
	p.httpFailed.Add(1)
	rec.Fail(err)
	p.mu.Lock()
	p.lastHTTP = err.Error()
	p.mu.Unlock()
}

func (p *progress) errors() CallerErrors {
	p.mu.Lock()
	defer p.mu.Unlock()
	return CallerErrors{Library: p.libFailed.Load(), HTTP: p.httpFailed.Load(), LastLibrary: p.lastLib, LastHTTP: p.lastHTTP}
}

// CallerErrors counts failed calls by the face they came through: the
// library (Next, NextN, or New when a caller opens a client) and HTTP
// (transport errors and answers other than 200), with the last of each.
type CallerErrors struct {
	Library     int64  `json:"library"`
	HTTP        int64  `json:"http"`
	LastLibrary string `json:"last_library,omitempty"`
	LastHTTP    string `json:"last_http,omitempty"`
}

func (e CallerErrors) String() string {
	s := fmt.Sprintf("library errors %d, HTTP errors %d", e.Library, e.HTTP)
	if e.LastLibrary != "" {
		s += "; last library error: " + e.LastLibrary
	}
	if e.LastHTTP != "" {
		s += "; last HTTP error: " + e.LastHTTP
	}
	return s
}

// FaultCost is what one fault cost: its duration (until the cluster was
// healthy again, and AfterFault returned), the IDs handed out and the calls
// that failed meanwhile (library and HTTP apart, and their sum), and the
// sequence numbers the counters advanced beyond the IDs handed out (fences,
// abandoned blocks: ID space skipped; -1 when unknown).
type FaultCost struct {
	Fault         Fault   `json:"fault"`
	Target        string  `json:"target"`
	Seconds       float64 `json:"seconds"`
	IDs           int64   `json:"ids"`
	FailedCalls   int64   `json:"failed_calls"`
	LibraryErrors int64   `json:"library_errors"`
	HTTPErrors    int64   `json:"http_errors"`
	Skipped       int64   `json:"skipped"`
}

func (c FaultCost) String() string {
	return fmt.Sprintf("%s %s (%.1fs, %d IDs, %d failed calls: %d library, %d HTTP; %d skipped)",
		c.Fault, c.Target, c.Seconds, c.IDs, c.FailedCalls, c.LibraryErrors, c.HTTPErrors, c.Skipped)
}

// stopped reports whether the run is over: stop closed or ctx done.
func stopped(ctx context.Context, stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return ctx.Err() != nil
	}
}

func waitOrStop(stop <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stop:
	case <-t.C:
	}
}
