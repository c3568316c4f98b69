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
// "HTTP API", api/openapi.yaml), and 503s carry Retry-After. With
// Config.Tokens, /v1/* (and optionally /metrics and the page) need
// "Authorization: Bearer <token>".
package server

import (
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
	"github.com/shardseq/shardseq/shard"
)

// Limits and defaults of the HTTP API.
const (
	// MaxCount is the largest count one ID request may ask for.
	MaxCount = 10000
	// DefaultNamespace is opened at start; /readyz reports on it.
	DefaultNamespace = client.DefaultNamespace
	// DefaultMaxNamespaces bounds the namespaces one server keeps open.
	DefaultMaxNamespaces = 1000
	// DefaultShards is N of new namespaces when Config.Shards is 0.
	DefaultShards = client.DefaultShards
)

// Errors of this package. Match them with errors.Is.
var (
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = errors.New("server: invalid config")
	// ErrTooManyNamespaces: the server keeps MaxNamespaces open already and
	// was asked for a new one.
	ErrTooManyNamespaces = errors.New("server: too many namespaces")
	// ErrClosed: the server was closed.
	ErrClosed = errors.New("server: closed")
)

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
	// sizes, acknowledgement, breakers...). Its Addrs, Cluster, Registry,
	// Namespace, Shards and Logger are set by the server.
	Client client.Config
	// MaxNamespaces bounds the namespaces kept open, so a flood of new names
	// cannot exhaust memory; requests for a new namespace beyond it get 503.
	// Default 1000.
	MaxNamespaces int
	// OpenTimeout bounds opening a namespace (a few round trips to Redis).
	// Default 10s.
	OpenTimeout time.Duration
	// RequestTimeout bounds one ID request. Default 5s.
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
	if c.Shards < 1 || c.Shards > shard.MaxShards {
		return c, bad("Shards", c.Shards, fmt.Sprintf("want 1 to %d", shard.MaxShards))
	}
	if c.MaxNamespaces == 0 {
		c.MaxNamespaces = DefaultMaxNamespaces
	}
	if c.MaxNamespaces < 1 {
		return c, bad("MaxNamespaces", c.MaxNamespaces, "must be at least 1")
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = 10 * time.Second
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 5 * time.Second
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

// nsEntry is one namespace being opened or open. done is closed once c or
// err is set; neither changes afterwards.
type nsEntry struct {
	done   chan struct{}
	c      *client.Client
	err    error
	issued atomic.Uint64 // IDs this server handed out in the namespace
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
	sampled  chan struct{} // closed when the sampler stopped

	mu     sync.RWMutex // guards ns and closed; never held across Redis I/O
	ns     map[string]*nsEntry
	closed bool
	opens  sync.WaitGroup // namespace openings in flight
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
		auth: newAuthenticator(cfg.Tokens), rates: newSampler(cfg.SampleEvery, cfg.SampleWindow), sampled: make(chan struct{})}
	s.metrics = newMetrics(s, cfg.Client.Observer)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.handler = s.routes()
	c, err := s.namespace(s.ctx, DefaultNamespace)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("server: opening namespace %q: %w", DefaultNamespace, err)
	}
	s.def = c
	go s.sampleLoop()
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

// Ready reports what /readyz reports: not draining, not closed, and at least
// one shard of the default namespace healthy.
func (s *Server) Ready() bool {
	return !s.isClosed() && !s.draining.Load() && s.def.Healthy() > 0
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
		if e.ready() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
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
	if s.def != nil {
		<-s.sampled
	}
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
// server is closed).
func (s *Server) lookup(name string) *client.Client {
	s.mu.RLock()
	e := s.ns[name]
	closed := s.closed
	s.mu.RUnlock()
	if e != nil && !closed && e.ready() {
		return e.c
	}
	return nil
}

// addIssued counts n IDs of namespace name handed to a caller.
func (s *Server) addIssued(name string, n int) {
	s.mu.RLock()
	e := s.ns[name]
	s.mu.RUnlock()
	if e != nil {
		e.issued.Add(uint64(n))
	}
}

// issued is the number of IDs of namespace name this server handed out.
// The shard rows count a block's IDs only once the block is used up or
// dropped; this counts them as they leave.
func (s *Server) issued(name string) uint64 {
	s.mu.RLock()
	e := s.ns[name]
	s.mu.RUnlock()
	if e == nil {
		return 0
	}
	return e.issued.Load()
}

// namespace returns the client of namespace name, opening it on first use.
// Concurrent first requests for one namespace open it once: the first caller
// opens it (outside the lock), the others wait for its result. A failed
// opening is forgotten, so the next request tries again.
func (s *Server) namespace(ctx context.Context, name string) (*client.Client, error) {
	s.mu.RLock()
	e := s.ns[name]
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if e == nil {
		s.mu.Lock()
		switch e = s.ns[name]; {
		case s.closed:
			s.mu.Unlock()
			return nil, ErrClosed
		case e != nil:
			// opened or being opened by someone else meanwhile
		case len(s.ns) >= s.cfg.MaxNamespaces:
			s.mu.Unlock()
			return nil, fmt.Errorf("%w: this server keeps at most %d namespaces open; raise --max-namespaces or use fewer names",
				ErrTooManyNamespaces, s.cfg.MaxNamespaces)
		default:
			e = &nsEntry{done: make(chan struct{})}
			s.ns[name] = e
			s.opens.Add(1)
			s.mu.Unlock()
			s.open(name, e)
			return e.c, e.err
		}
		s.mu.Unlock()
	}
	select {
	case <-e.done:
		return e.c, e.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// open opens namespace name into e. It uses the server's context, not the
// request's, so a caller giving up does not fail the others waiting.
func (s *Server) open(name string, e *nsEntry) {
	defer s.opens.Done()
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
	e.c, e.err = client.New(ctx, cc)
	if e.err != nil {
		s.mu.Lock()
		if s.ns[name] == e {
			delete(s.ns, name)
		}
		s.mu.Unlock()
		s.log.Warn("opening namespace failed", "namespace", name, "err", e.err)
	} else {
		s.log.Info("namespace open", "namespace", name, "shards", e.c.ShardCount(), "start", e.c.Start(), "strict", e.c.Strict(),
			"took", time.Since(start).Round(time.Microsecond))
	}
	close(e.done)
}

// forget closes this server's client of namespace name, if it has one (its
// buffered IDs become gaps), so that the next request opens the namespace
// again from its record: DELETE /v1/namespaces/{namespace} calls it. The
// default namespace stays open. An opening in flight is closed when it ends.
func (s *Server) forget(name string) {
	if name == DefaultNamespace {
		return
	}
	s.mu.Lock()
	e := s.ns[name]
	if e != nil {
		delete(s.ns, name)
	}
	s.mu.Unlock()
	if e == nil {
		return
	}
	closeIt := func() {
		if e.c != nil {
			_ = e.c.Close()
		}
	}
	select {
	case <-e.done:
		closeIt()
	default:
		go func() { <-e.done; closeIt() }()
	}
}
