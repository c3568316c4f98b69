// Package server is the HTTP face of shardseq: it hands out IDs of any number
// of namespaces over one shared Redis Cluster connection and reports the
// health of their shards.
//
// Routes:
//
//	POST /v1/ids/{namespace}?count=K  IDs (K from 1 to MaxCount, default 1)
//	PUT, GET, DELETE /v1/namespaces/{namespace}, GET /v1/namespaces
//	                                  namespaces as objects (namespaces.go)
//	GET  /v1/shards[?namespace=ns]    shard health and cluster topology
//	GET  /                            shard-health page for people (HTML)
//	GET  /metrics                     Prometheus metrics
//	GET  /healthz                     200 while the process is up
//	GET  /readyz                      200 while the default namespace can serve
//
// Every response but the page and /metrics is JSON; errors are
// {"error":"...","code":"..."} with a code from a small fixed set (README
// "HTTP API", api/openapi.yaml), and 503s and 429s carry Retry-After. With
// Config.Tokens, /v1/* (and optionally /metrics and the page) need
// "Authorization: Bearer <token>".
//
// Namespaces open on their first request and close again when unused for
// Config.NamespaceIdle, or, past Config.MaxNamespaces, least recently used
// first. Opening a namespace that exists costs a few reads; creating one
// (Config.CreateNamespaces "auto") is bounded by a token bucket
// (Config.CreateRate, Config.CreateBurst). A closed namespace's buffered IDs
// become gaps; when it opens again it continues above every ID it handed out.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
)

// Limits and defaults of the HTTP API.
const (
	// MaxCount is the largest count one ID request may ask for.
	MaxCount = 10000
	// DefaultNamespace is opened at start and never closed; /readyz reports
	// on it.
	DefaultNamespace = client.DefaultNamespace
	// DefaultMaxNamespaces bounds the namespaces one server keeps open.
	DefaultMaxNamespaces = 1000
	// DefaultShards is N of new namespaces when Config.Shards is 0.
	DefaultShards = client.DefaultShards
	// DefaultNamespaceIdle is how long an unused namespace stays open.
	DefaultNamespaceIdle = 5 * time.Minute
	// DefaultCreateRate and DefaultCreateBurst bound how fast namespaces are
	// created on first use: a token bucket of DefaultCreateBurst tokens,
	// refilled at DefaultCreateRate per second.
	DefaultCreateRate  = 10.0
	DefaultCreateBurst = 100
	// DefaultRequestTimeout bounds one ID request.
	DefaultRequestTimeout = time.Second
	// maxOpening bounds the namespaces being opened at once: past it a
	// request for one more gets 429.
	maxOpening = 64
)

// CreateMode says whether a request for a namespace that does not exist
// creates it.
type CreateMode string

// The values of Config.CreateNamespaces.
const (
	// CreateAuto creates a namespace on its first request (within
	// Config.CreateRate). The default.
	CreateAuto CreateMode = "auto"
	// CreateExplicit serves only namespaces that exist: a request for any
	// other gets 404 namespace_not_found. Create them with PUT
	// /v1/namespaces/{namespace} or `shardseq namespace create`. The
	// default namespace is created at start in both modes.
	CreateExplicit CreateMode = "explicit"
)

// Errors of this package. Match them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = errors.New("server: invalid config")
	// ErrTooManyNamespaces: a new namespace was asked for past the creation
	// bound (Config.CreateRate and CreateBurst), or while too many are being
	// opened at once. Answered 429 with Retry-After; namespaces that exist
	// keep working. It is a *RetryError.
	ErrTooManyNamespaces = errors.New("server: too many namespaces")
	// ErrNoMasterServing: every master's last probe failed, so a request
	// that needs Redis fails at once instead of waiting for it.
	ErrNoMasterServing = errors.New("server: no Redis master answered its last probe")
	// ErrClosed: the server was closed.
	ErrClosed = errors.New("server: closed")
)

// RetryError is a refusal that may be retried after RetryAfter: Err says
// which (errors.Is), Msg what the caller is told.
type RetryError struct {
	Err        error
	RetryAfter time.Duration
	Msg        string
}

func (e *RetryError) Error() string { return e.Err.Error() + ": " + e.Msg }
func (e *RetryError) Unwrap() error { return e.Err }

// ConfigError names the field of a Config that New refuses, and why.
type ConfigError struct {
	Field string
	Value any
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("server: invalid config: %s=%v: %v", e.Field, e.Value, e.Err)
}

// Unwrap lets errors.Is match both ErrInvalidConfig and the cause.
func (e *ConfigError) Unwrap() []error { return []error{ErrInvalidConfig, e.Err} }

// Config configures a Server. Zero values mean the documented default.
type Config struct {
	// Cluster is the shared cluster connection; required. The Server does
	// not close it.
	Cluster *cluster.Cluster
	// Shards is N of the namespaces this server creates (on first use, or
	// PUT /v1/namespaces/{namespace} without "shards"). Default
	// DefaultShards (12). A namespace that exists is served with its stored
	// N.
	Shards int
	// Client is the template of every namespace's client.Config (block
	// sizes, strict mode, acknowledgement, breakers...). Its Addrs, Cluster,
	// Registry, Namespace, Shards, NoCreate and Logger are set by the
	// server. Its Strict is the mode of every namespace this server opens.
	Client client.Config
	// MaxNamespaces bounds the namespaces kept open, so a flood of names
	// cannot exhaust memory: opening one more closes the least recently
	// used (never the default namespace). Default 1000.
	MaxNamespaces int
	// NamespaceIdle closes a namespace no ID request used for that long
	// (its buffered IDs become gaps); it opens again on its next request.
	// Default DefaultNamespaceIdle (5m); -1 keeps namespaces open until
	// evicted.
	NamespaceIdle time.Duration
	// CreateNamespaces: CreateAuto (default) or CreateExplicit.
	CreateNamespaces CreateMode
	// CreateRate and CreateBurst bound the namespaces created on first use:
	// a token bucket of CreateBurst, refilled at CreateRate per second.
	// Past it a request for a new namespace gets 429 with Retry-After;
	// opening a namespace that exists takes no token. Defaults
	// DefaultCreateRate (10/s) and DefaultCreateBurst (100); CreateRate -1
	// lifts the bound.
	CreateRate  float64
	CreateBurst int
	// OpenTimeout bounds opening a namespace (a few round trips to Redis).
	// Default 10s. A request does not wait that long: see RequestTimeout;
	// the opening goes on, so a retry finds the namespace open.
	OpenTimeout time.Duration
	// RequestTimeout bounds one ID request, the wait for its namespace to
	// open included. Default DefaultRequestTimeout (1s).
	RequestTimeout time.Duration
	// Logger defaults to slog.Default(). Every namespace's client logs to
	// it (shard breaker, fenced, moved).
	Logger *slog.Logger

	// Tokens, when not empty, enable bearer-token authentication on /v1/*:
	// a request without one of them gets 401 (see LoadTokenFile).
	// /healthz and /readyz stay open.
	Tokens []string
	// AuthMetrics and AuthUI require a token on /metrics and on the health
	// page (/) too. Both default to false: a Prometheus scraper and a
	// browser are easier to point at them, and neither hands out IDs; the
	// page and /metrics do show namespace names and node addresses.
	AuthMetrics, AuthUI bool

	// SampleEvery is how often the health page's IDs-issued rates are
	// sampled (default 5s); SampleWindow how far back they go (default
	// 10m). Memory: MaxNamespaces * SampleWindow/SampleEvery samples.
	SampleEvery, SampleWindow time.Duration
	// PageRefresh is how often the health page reloads its data in the
	// browser. Default 5s.
	PageRefresh time.Duration
}

func (c Config) withDefaults() (Config, error) {
	bad := func(field string, v any, why string) error {
		return &ConfigError{Field: field, Value: v, Err: errors.New(why)}
	}
	if c.Cluster == nil {
		return c, bad("Cluster", nil, "required")
	}
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.Shards < 1 || c.Shards > client.MaxShards {
		return c, bad("Shards", c.Shards, fmt.Sprintf("want 1 to %d", client.MaxShards))
	}
	if c.MaxNamespaces == 0 {
		c.MaxNamespaces = DefaultMaxNamespaces
	}
	if c.MaxNamespaces < 1 {
		return c, bad("MaxNamespaces", c.MaxNamespaces, "must be at least 1")
	}
	if c.NamespaceIdle == 0 {
		c.NamespaceIdle = DefaultNamespaceIdle
	}
	if c.NamespaceIdle < 0 && c.NamespaceIdle != -1 || c.NamespaceIdle > 0 && c.NamespaceIdle < 10*time.Millisecond {
		return c, bad("NamespaceIdle", c.NamespaceIdle, "want at least 10ms, 0 (default 5m) or -1 (never)")
	}
	switch c.CreateNamespaces {
	case "":
		c.CreateNamespaces = CreateAuto
	case CreateAuto, CreateExplicit:
	default:
		return c, bad("CreateNamespaces", c.CreateNamespaces, "want auto or explicit")
	}
	if c.CreateRate == 0 {
		c.CreateRate = DefaultCreateRate
	}
	if c.CreateBurst == 0 {
		c.CreateBurst = DefaultCreateBurst
	}
	if c.CreateRate < 0 && c.CreateRate != -1 || c.CreateRate > 1e6 {
		return c, bad("CreateRate", c.CreateRate, "want a rate per second up to 1e6, 0 (default 10) or -1 (unbounded)")
	}
	if c.CreateBurst < 1 || c.CreateBurst > 1e6 {
		return c, bad("CreateBurst", c.CreateBurst, "want 1 to 1000000 (0: default 100)")
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = 10 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.OpenTimeout < 0 || c.RequestTimeout < 0 {
		return c, bad("OpenTimeout/RequestTimeout", c.OpenTimeout, "must not be negative")
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SampleEvery == 0 {
		c.SampleEvery = DefaultSampleEvery
	}
	if c.SampleWindow == 0 {
		c.SampleWindow = DefaultSampleWindow
	}
	if c.PageRefresh == 0 {
		c.PageRefresh = 5 * time.Second
	}
	if c.PageRefresh < 100*time.Millisecond {
		return c, bad("PageRefresh", c.PageRefresh, "want at least 100ms")
	}
	if c.SampleEvery < 10*time.Millisecond || c.SampleWindow < c.SampleEvery || c.SampleWindow/c.SampleEvery > 10000 {
		return c, bad("SampleEvery/SampleWindow", c.SampleEvery, "want SampleEvery >= 10ms and SampleWindow from 1 to 10000 times it")
	}
	for i, t := range c.Tokens {
		if len(t) < MinTokenLength || len(t) > MaxTokenLength || !printableToken(t) {
			return c, bad(fmt.Sprintf("Tokens[%d]", i), "<secret>", fmt.Sprintf("want %d to %d printable ASCII characters without spaces", MinTokenLength, MaxTokenLength))
		}
	}
	if len(c.Tokens) == 0 && (c.AuthMetrics || c.AuthUI) {
		return c, bad("AuthMetrics/AuthUI", true, "need Tokens")
	}
	return c, nil
}

// nsEntry is one namespace being opened, open, or being closed. done is
// closed once c or err is set; neither changes afterwards. gone is set (under
// Server.mu) when closing starts and closed once the entry left the map.
type nsEntry struct {
	name   string
	done   chan struct{}
	c      *client.Client
	err    error
	issued atomic.Uint64 // IDs this server handed out in the namespace
	used   atomic.Int64  // unix nanos of the last ID request
	head   headroom
	gone   chan struct{} // guarded by Server.mu
}

// Server serves IDs of lazily opened namespaces. It is safe for concurrent
// use.
type Server struct {
	cfg      Config
	reg      *failover.Registry
	log      *slog.Logger
	def      *client.Client
	handler  http.Handler
	ctx      context.Context // cancelled by Close; bounds namespace opening
	cancel   context.CancelFunc
	draining atomic.Bool
	auth     *authenticator // nil: no authentication
	metrics  *metrics
	rates    *sampler
	creates  *tokenBucket
	warned   *headroomWarnings
	bg       sync.WaitGroup  // sampler and idle loops
	downCtx  context.Context // ended: what ID requests use while no master serves

	mu      sync.RWMutex // guards ns, opening and closed; never held across Redis I/O
	ns      map[string]*nsEntry
	opening int // entries whose done is not closed yet
	closed  bool
	opens   sync.WaitGroup // namespace openings and closings in flight
	repairs *failover.Repairs
}

// New validates cfg, opens the default namespace (so /readyz means
// something from the start) and returns a Server. It fails when the default
// namespace cannot be opened, e.g. with client.ErrShardCountMismatch.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, reg: failover.NewRegistry(), log: cfg.Logger, ns: map[string]*nsEntry{},
		auth: newAuthenticator(cfg.Tokens), rates: newSampler(cfg.SampleEvery, cfg.SampleWindow),
		creates: newTokenBucket(cfg.CreateRate, cfg.CreateBurst, time.Now), warned: newHeadroomWarnings(cfg.Logger)}
	s.metrics = newMetrics(s, cfg.Client.Observer)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	down, cancelDown := context.WithCancel(context.Background())
	cancelDown()
	s.downCtx = down
	s.handler = s.routes()
	e, err := s.namespace(s.ctx, DefaultNamespace)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("server: opening namespace %q: %w", DefaultNamespace, err)
	}
	s.def = e.c
	s.startRepairs()
	s.bg.Add(1)
	go s.sampleLoop()
	if cfg.NamespaceIdle > 0 {
		s.bg.Add(1)
		go s.idleLoop()
	}
	return s, nil
}

// Handler returns the HTTP handler of every route.
func (s *Server) Handler() http.Handler { return s.handler }

// Metrics is the server's own Prometheus registry, served on /metrics. An
// embedding program may register its own collectors in it.
func (s *Server) Metrics() *prometheus.Registry { return s.metrics.reg }

// Registry is the shard registry every namespace reports to.
func (s *Server) Registry() *failover.Registry { return s.reg }

// Drain makes /readyz answer 503 so load balancers stop sending traffic,
// while every other route keeps serving. Call it before http.Server.Shutdown.
func (s *Server) Drain() { s.draining.Store(true) }

// Ready reports what /readyz reports: not draining, not closed, at least
// one master answering its probes, and at least one shard of the default
// namespace healthy.
func (s *Server) Ready() bool {
	return s.notReady() == ""
}

// notReady says why the server is not ready, or "".
func (s *Server) notReady() string {
	switch {
	case s.draining.Load():
		return "draining: the server is shutting down"
	case s.isClosed():
		return "closed"
	case !s.cfg.Cluster.Serving():
		return "no Redis master answered its last probe"
	case s.def.Healthy() == 0:
		return "no healthy shard in namespace " + DefaultNamespace
	}
	return ""
}

func (s *Server) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// Namespaces returns the names of the open namespaces, sorted.
func (s *Server) Namespaces() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.ns))
	for name, e := range s.ns {
		if e.gone == nil && e.ready() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// openCount is the number of open namespaces (what shardseq_namespaces_open
// reports).
func (s *Server) openCount() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := 0
	for _, e := range s.ns {
		if e.gone == nil && e.ready() {
			n++
		}
	}
	return n
}

// Close closes every namespace's client (their buffered IDs become gaps)
// and makes further requests fail with 503. It does not close the Cluster.
// It is idempotent.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.bg.Wait()
	s.opens.Wait() // no opening can add a client after this
	s.mu.Lock()
	entries := slices.Collect(maps.Values(s.ns))
	s.mu.Unlock()
	var errs []error
	for _, e := range entries {
		if e.c != nil {
			errs = append(errs, e.c.Close())
		}
	}
	s.stopRepairs()
	return errors.Join(errs...)
}

func (e *nsEntry) ready() bool {
	select {
	case <-e.done:
		return e.err == nil
	default:
		return false
	}
}

// lookup returns the client of an open namespace, or nil (also once the
// server is closed). It does not count as a use of the namespace.
func (s *Server) lookup(name string) *client.Client {
	if e := s.openEntry(name); e != nil {
		return e.c
	}
	return nil
}

// openEntry returns the entry of an open namespace that is not closing, or
// nil.
func (s *Server) openEntry(name string) *nsEntry {
	s.mu.RLock()
	e := s.ns[name]
	ok := e != nil && !s.closed && e.gone == nil
	s.mu.RUnlock()
	if ok && e.ready() {
		return e
	}
	return nil
}

// issued is the number of IDs of namespace name this server handed out
// since it last opened it. The shard rows count a block's IDs only once the
// block is used up or dropped; this counts them as they leave.
func (s *Server) issued(name string) uint64 {
	s.mu.RLock()
	e := s.ns[name]
	s.mu.RUnlock()
	if e == nil {
		return 0
	}
	return e.issued.Load()
}

// maxReopens bounds how often one request opens its namespace again after
// it was closed under it.
const maxReopens = 3

// take hands out count IDs of namespace name, opening it first if needed,
// into buf (which it may return grown). A namespace closed under the request
// (idle, evicted or deleted) is opened again, up to maxReopens times.
func (s *Server) take(ctx context.Context, name string, count int, buf []int64) ([]int64, error) {
	for attempt := 0; ; attempt++ {
		e := s.openEntry(name)
		if e == nil {
			var err error
			if e, err = s.namespace(ctx, name); err != nil {
				return nil, err
			}
		}
		e.used.Store(time.Now().UnixNano())
		// With every master's last probe failed, only IDs already buffered
		// can be handed out: an ended context lets the client hand those
		// out and fail at once where it would wait for Redis (for a
		// reservation started before the probes saw the failure, say).
		rctx := ctx
		down := !s.cfg.Cluster.Serving()
		if down {
			rctx = s.downCtx
		}
		var err error
		if count == 1 {
			if cap(buf) == 0 {
				buf = make([]int64, 1)
			}
			buf = buf[:1]
			buf[0], err = e.c.Next(rctx)
		} else {
			buf, err = e.c.NextN(rctx, count)
		}
		if errors.Is(err, client.ErrClosed) && attempt < maxReopens && ctx.Err() == nil && !s.isClosed() {
			continue // closed under the request: it waits for the close, then opens it again
		}
		if err != nil {
			if down && errors.Is(err, context.Canceled) && ctx.Err() == nil {
				err = ErrNoMasterServing
			}
			return nil, err
		}
		e.issued.Add(uint64(len(buf)))
		hi := buf[0]
		for _, id := range buf[1:] {
			hi = max(hi, id)
		}
		e.head.observe(hi, s.warned, name)
		return buf, nil
	}
}

// namespace returns the entry of namespace name, opening it on first use.
// Concurrent first requests for one namespace open it once: the first caller
// opens it (outside the lock), the others wait for its result. A failed
// opening is forgotten, so the next request tries again. A request for a
// namespace being closed waits until it is closed, then opens it again.
func (s *Server) namespace(ctx context.Context, name string) (*nsEntry, error) {
	for {
		s.mu.RLock()
		e := s.ns[name]
		closed := s.closed
		var gone chan struct{}
		if e != nil {
			gone = e.gone
		}
		s.mu.RUnlock()
		switch {
		case closed:
			return nil, ErrClosed
		case gone != nil:
			select {
			case <-gone:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case e != nil:
			if !e.ready() && !s.cfg.Cluster.Serving() {
				return nil, ErrNoMasterServing
			}
			select {
			case <-e.done:
				return e, e.err
			case <-ctx.Done():
				return nil, stillOpening(ctx, name)
			}
		}
		// Opening needs Redis: fail at once when no master answers.
		if !s.cfg.Cluster.Serving() {
			return nil, ErrNoMasterServing
		}
		s.mu.Lock()
		switch e = s.ns[name]; {
		case s.closed:
			s.mu.Unlock()
			return nil, ErrClosed
		case e != nil:
			s.mu.Unlock()
			continue // opened, being opened or closed by someone else meanwhile
		case s.opening >= maxOpening:
			s.mu.Unlock()
			return nil, &RetryError{Err: ErrTooManyNamespaces, RetryAfter: time.Second,
				Msg: fmt.Sprintf("%d namespaces are being opened at once already; retry in a second", maxOpening)}
		}
		e = &nsEntry{name: name, done: make(chan struct{})}
		s.ns[name] = e
		s.opening++
		s.opens.Add(1)
		s.mu.Unlock()
		go s.open(e)
		select {
		case <-e.done:
			return e, e.err
		case <-ctx.Done():
			return nil, stillOpening(ctx, name)
		}
	}
}

// stillOpening is the error of a request whose time ran out while its
// namespace was being opened: the opening goes on, so a retry finds it open.
func stillOpening(ctx context.Context, name string) error {
	return public(ctx.Err(), "namespace %q is still being opened (creating one takes a few round trips to Redis per shard); retry in a second", name)
}

// open opens namespace e.name into e, creating it if it does not exist and
// the server may create it now. It uses the server's context, not the
// request's, so a caller giving up does not fail the others waiting, and a
// retry finds the namespace open.
func (s *Server) open(e *nsEntry) {
	defer s.opens.Done()
	name := e.name
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.OpenTimeout)
	defer cancel()
	cc := s.cfg.Client
	cc.Addrs = nil
	cc.Cluster = s.cfg.Cluster
	cc.Registry = s.reg
	cc.Namespace = name
	cc.Shards, cc.CreateShards = 0, s.cfg.Shards // an existing namespace keeps its N
	cc.Logger = s.log
	cc.Observer = s.metrics // it passes every event on to the template's Observer
	start := time.Now()
	// Opening a namespace that exists is not a creation: try that first.
	cc.NoCreate = name != DefaultNamespace
	c, err := client.New(ctx, cc)
	created := false
	if errors.Is(err, client.ErrNamespaceNotFound) {
		if s.cfg.CreateNamespaces == CreateExplicit {
			err = public(err, "namespace %q does not exist and this server creates none (--create-namespaces explicit): "+
				"create it with PUT /v1/namespaces/%s or `shardseq namespace create %s`", name, name, name)
		} else if ok, wait := s.creates.take(); !ok {
			s.metrics.createsLimited.Inc()
			err = &RetryError{Err: ErrTooManyNamespaces, RetryAfter: wait,
				Msg: fmt.Sprintf("namespace %q is new, and this server creates at most %g new namespaces per second (bursts of %d): "+
					"retry later, or use a namespace that exists", name, s.cfg.CreateRate, s.cfg.CreateBurst)}
		} else {
			cc.NoCreate = false
			c, err = client.New(ctx, cc)
			created = err == nil
		}
	}
	if err == nil {
		e.head.init(c.Start(), cmp.Or(s.cfg.Client.MaxID, client.DefaultMaxID))
	}
	var victims []*nsEntry
	s.mu.Lock()
	e.c, e.err = c, err
	e.used.Store(time.Now().UnixNano())
	s.opening--
	if err != nil {
		if s.ns[name] == e {
			delete(s.ns, name)
		}
	} else {
		victims = s.lruVictimsLocked(e)
	}
	close(e.done)
	s.mu.Unlock()
	switch {
	case err == nil:
		if created {
			s.metrics.created.Inc()
		}
		s.log.Info("namespace open", "namespace", name, "shards", c.ShardCount(), "start", c.Start(), "strict", c.Strict(),
			"created", created, "took", time.Since(start).Round(time.Microsecond))
	case errors.Is(err, ErrTooManyNamespaces), errors.Is(err, client.ErrNamespaceNotFound):
		s.log.Debug("namespace not opened", "namespace", name, "err", err)
	default:
		s.log.Warn("opening namespace failed", "namespace", name, "err", err)
	}
	for _, v := range victims {
		s.closeEntry(v, reasonLRU)
	}
}

// Why a namespace was closed: the values of the reason label of
// shardseq_namespace_evictions_total, and closeNamespace's.
const (
	reasonIdle   = "idle"
	reasonLRU    = "lru"
	reasonClosed = "closed" // closeNamespace (e.g. after a DELETE)
)

// lruVictimsLocked picks the open namespaces to close so that at most
// MaxNamespaces stay open: the least recently used first, never the
// default namespace nor keep (just opened). Caller holds mu.
func (s *Server) lruVictimsLocked(keep *nsEntry) []*nsEntry {
	var open []*nsEntry
	n := 1 // keep, whose done is not closed yet
	for _, e := range s.ns {
		if e != keep && e.gone == nil && e.ready() {
			n++
			if e.name != DefaultNamespace {
				open = append(open, e)
			}
		}
	}
	over := n - s.cfg.MaxNamespaces
	if over <= 0 {
		return nil
	}
	slices.SortFunc(open, func(a, b *nsEntry) int { return int(a.used.Load() - b.used.Load()) })
	return open[:min(over, len(open))]
}

// closeEntry closes the open namespace of e and forgets it: its buffered IDs
// become gaps, its shard rows leave the registry. Requests for it meanwhile
// wait, then open it again. It reports whether it closed it (false: not
// open, closing already, or the server is closing).
func (s *Server) closeEntry(e *nsEntry, reason string) bool {
	s.mu.Lock()
	if s.closed || s.ns[e.name] != e || e.gone != nil || !e.ready() {
		s.mu.Unlock()
		return false
	}
	e.gone = make(chan struct{})
	s.opens.Add(1)
	s.mu.Unlock()
	defer s.opens.Done()
	before := e.c.Discarded()
	if err := e.c.Close(); err != nil {
		s.log.Warn("closing namespace", "namespace", e.name, "err", err)
	}
	gaps := e.c.Discarded() - before
	s.reg.Remove(e.name)
	s.metrics.closedNamespace(reason, gaps)
	s.mu.Lock()
	delete(s.ns, e.name)
	close(e.gone)
	s.mu.Unlock()
	s.log.Info("namespace closed", "namespace", e.name, "reason", reason, "gaps", gaps,
		"unused_for", time.Since(time.Unix(0, e.used.Load())).Round(time.Millisecond))
	return true
}

// closeNamespace closes namespace name if this server has it open (e.g.
// after it was deleted): its buffered IDs become gaps and its rows leave
// the registry; a request for it after this opens it again from Redis. An
// opening in flight is waited for (up to OpenTimeout) and then closed. The
// default namespace is never closed. It reports whether it closed one.
func (s *Server) closeNamespace(name string) bool {
	if name == DefaultNamespace {
		return false
	}
	s.mu.RLock()
	e := s.ns[name]
	s.mu.RUnlock()
	if e == nil {
		return false
	}
	select {
	case <-e.done:
	case <-s.ctx.Done():
		return false
	}
	return s.closeEntry(e, reasonClosed)
}

// idleLoop closes namespaces unused for NamespaceIdle, until the server
// closes. It wakes a few times per NamespaceIdle (at most every 30s).
func (s *Server) idleLoop() {
	defer s.bg.Done()
	every := min(max(s.cfg.NamespaceIdle/4, 5*time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			for _, e := range s.idle(time.Now().Add(-s.cfg.NamespaceIdle)) {
				s.closeEntry(e, reasonIdle)
			}
		}
	}
}

// idle returns the open namespaces, but the default one, last used before
// cutoff.
func (s *Server) idle(cutoff time.Time) []*nsEntry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []*nsEntry
	for name, e := range s.ns {
		if name != DefaultNamespace && e.gone == nil && e.ready() && e.used.Load() < cutoff.UnixNano() {
			out = append(out, e)
		}
	}
	return out
}
