package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/shardseq/shardseq/client"
)

// openClient opens the client of namespace name for the pool: it opens a
// namespace that exists, and creates one that does not only if mayCreate
// allows it.
func (s *Server) openClient(ctx context.Context, name string) (*client.Client, error) {
	start := time.Now()
	cc := s.clientConfig(name)
	// Opening a namespace that exists is not a creation: try that first.
	cc.NoCreate = name != DefaultNamespace
	c, err := client.New(ctx, cc)
	created := false
	if errors.Is(err, client.ErrNamespaceNotFound) {
		if err = s.mayCreate(name, err); err == nil {
			cc.NoCreate = false
			c, err = client.New(ctx, cc)
			created = err == nil
		}
	}
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
	return c, err
}

// clientConfig is the client.Config of namespace name on the server's
// registry, logger and metrics.
func (s *Server) clientConfig(name string) client.Config {
	cc := s.cfg.namespaceConfig(name)
	cc.Registry = s.reg
	// Above every ID a closed client of it reserved (reopen.go).
	cc.After = max(cc.After, s.highs.above(name))
	cc.Logger = s.log
	cc.Observer = s.metrics // it passes every event on to the template's Observer
	return cc
}

// mayCreate is the creation policy: nil if namespace name, which does not
// exist (notFound), may be created now; otherwise why not.
func (s *Server) mayCreate(name string, notFound error) error {
	if s.cfg.CreateNamespaces == CreateExplicit {
		return public(notFound, "namespace %q does not exist and this server creates none (--create-namespaces explicit): "+
			"create it with PUT /v1/namespaces/%s or `shardseq namespace create %s`", name, name, name)
	}
	if ok, wait := s.creates.take(); !ok {
		s.metrics.createsLimited.Inc()
		return &RetryError{Err: ErrTooManyNamespaces, RetryAfter: wait,
			Msg: fmt.Sprintf("namespace %q is new, and this server creates at most %g new namespaces per second (bursts of %d): "+
				"retry later, or use a namespace that exists", name, s.cfg.CreateRate, s.cfg.CreateBurst)}
	}
	return nil
}

// tokenBucket bounds how fast namespaces are created: burst tokens, refilled
// at rate per second; each creation takes one. rate <= 0: unbounded.
type tokenBucket struct {
	lim *rate.Limiter
	now func() time.Time
	// mu makes a refusal's reserve and cancel one step: a reservation
	// made between them would keep the cancel from giving its token back.
	mu sync.Mutex
}

func newTokenBucket(perSec float64, burst int, now func() time.Time) *tokenBucket {
	limit := rate.Limit(perSec)
	if perSec <= 0 {
		limit = rate.Inf
	}
	return &tokenBucket{lim: rate.NewLimiter(limit, burst), now: now}
}

// take takes a token if there is one; otherwise it says how long until
// there is, and takes none.
func (b *tokenBucket) take() (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	r := b.lim.ReserveN(now, 1)
	if !r.OK() { // a burst below 1, which Config.Validate refuses
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
