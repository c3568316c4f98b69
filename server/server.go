// Package server is the HTTP (and gRPC) face of shardseq: it hands out IDs of any number
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
//	/shardseq.v1.ShardseqService/*    the same calls over gRPC, gRPC-Web and Connect
//	/grpc.health.v1.Health/*          readiness for gRPC load balancers (rpc.go)
//
// Every response but the page and /metrics is JSON; errors are
// {"error":"...","code":"..."} with a code from a small fixed set (README
// "HTTP API", api/openapi.yaml), and 503s and 429s carry Retry-After. With
// Config.Tokens or ScopedTokens, /v1/* (and optionally /metrics and the
// page) need "Authorization: Bearer <token>" of a token with the route's
// scope (ids, read or admin; see Token).
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
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/failover"
)

// Errors of this package. Match them with errors.Is.
var (
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
	highs    *closedHighs    // the highest ID reserved by each namespace's closed clients
	bg       sync.WaitGroup  // the sampler loop
	downCtx  context.Context // ended: what ID requests use while no master serves
	pool     *pool
	repairs  *failover.Repairs // owned: the server owns its use of the connection
	started  time.Time         // for the health page's uptime
}

// New validates cfg, opens the default namespace (so /readyz means
// something from the start) and returns a Server. It fails when the default
// namespace cannot be opened, e.g. with client.ErrShardCountMismatch.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, reg: failover.NewRegistry(), log: cfg.Logger, started: time.Now(),
		auth: newAuthenticator(cfg.Tokens, cfg.ScopedTokens), rates: newSampler(cfg.SampleEvery, cfg.SampleWindow),
		creates: newTokenBucket(cfg.CreateRate, cfg.CreateBurst, time.Now), warned: newHeadroomWarnings(cfg.Logger),
		highs: newClosedHighs(maxRemembered)}
	s.metrics = newMetrics(s, cfg.Client.Observer)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	down, cancelDown := context.WithCancel(context.Background())
	cancelDown()
	s.downCtx = down
	s.pool = &pool{ctx: s.ctx, max: cfg.MaxNamespaces, idleAfter: cfg.NamespaceIdle, openTimeout: cfg.OpenTimeout,
		maxID: cmp.Or(s.cfg.Client.MaxID, client.DefaultMaxID), serving: cfg.Cluster.Serving, open: s.openClient,
		closed: s.namespaceClosed, log: cfg.Logger, ns: map[string]*nsEntry{}}
	if all := s.auth.everything(); len(all) > 0 {
		s.log.Warn("tokens with every scope (IDs of every namespace, read, admin: they can delete namespaces); "+
			"give each only what its user needs, e.g. \"ids:orders\" or \"read\" after the token in the token file",
			"tokens", all)
	}
	s.handler = s.routes()
	e, err := s.pool.get(s.ctx, DefaultNamespace)
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("server: opening namespace %q: %w", DefaultNamespace, err)
	}
	s.def = e.c
	s.startRepairs()
	s.bg.Add(1)
	go s.sampleLoop()
	s.pool.startIdle()
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
	case s.pool.isClosed():
		return "closed"
	case !s.cfg.Cluster.Serving():
		return "no Redis master answered its last probe"
	case s.def.Healthy() == 0:
		return "no healthy shard in namespace " + DefaultNamespace
	}
	return ""
}

// Namespaces returns the names of the open namespaces, sorted.
func (s *Server) Namespaces() []string { return s.pool.names() }

// Close closes every namespace's client (their buffered IDs become gaps)
// and makes further requests fail with 503. It does not close the Cluster.
// It is idempotent.
func (s *Server) Close() error {
	if !s.pool.shutdown() {
		return nil
	}
	s.cancel()
	s.bg.Wait()
	err := s.pool.close()
	s.stopRepairs()
	return err
}

// lookup returns the client of an open namespace, or nil (also once the
// server is closed). It does not count as a use of the namespace.
func (s *Server) lookup(name string) *client.Client {
	if e := s.pool.entry(name); e != nil {
		return e.c
	}
	return nil
}

// closeNamespace closes namespace name if this server has it open (e.g.
// after it was deleted): its buffered IDs become gaps and its rows leave
// the registry; a request for it after this opens it again from Redis. It
// reports whether it closed one.
func (s *Server) closeNamespace(name string) bool { return s.pool.closeName(name) }

// namespaceClosed is told by the pool of every namespace it closed.
func (s *Server) namespaceClosed(name, reason string, gaps, reserved int64) {
	s.highs.closed(name, reserved)
	s.reg.Remove(name)
	s.metrics.closedNamespace(reason, gaps)
}

// maxReopens bounds how often one request opens its namespace again after
// it was closed under it.
const maxReopens = 3

// use runs fn with the entry of namespace name, opening it first if needed
// and marking it used. A namespace closed under the request (idle, evicted
// or deleted: fn fails with client.ErrClosed) is opened again, up to
// maxReopens times. It is the one path from a request to a namespace's
// client, for IDs and for leases.
func (s *Server) use(ctx context.Context, name string, fn func(*nsEntry) error) error {
	for attempt := 0; ; attempt++ {
		e := s.pool.entry(name)
		if e == nil {
			var err error
			if e, err = s.pool.get(ctx, name); err != nil {
				return err
			}
		}
		e.used.Store(time.Now().UnixNano())
		err := fn(e)
		if errors.Is(err, client.ErrClosed) && attempt < maxReopens && ctx.Err() == nil && !s.pool.isClosed() {
			continue // closed under the request: it waits for the close, then opens it again
		}
		return err
	}
}

// take hands out count IDs of namespace name into buf (which it may return
// grown).
func (s *Server) take(ctx context.Context, name string, count int, buf []int64) ([]int64, error) {
	err := s.use(ctx, name, func(e *nsEntry) error {
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
		if down && errors.Is(err, context.Canceled) && ctx.Err() == nil {
			err = ErrNoMasterServing
		}
		if err != nil {
			return err
		}
		e.issued.Add(uint64(len(buf)))
		hi := buf[0]
		for _, id := range buf[1:] {
			hi = max(hi, id)
		}
		e.head.observe(hi, s.warned, name)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return buf, nil
}
