package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardseq/shardseq/client"
)

// nsEntry is one namespace being opened, open, or being closed. done is
// closed once c or err is set; neither changes afterwards. gone is set (under
// pool.mu) when closing starts and closed once the entry left the map.
type nsEntry struct {
	name   string
	done   chan struct{}
	c      *client.Client
	err    error
	issued atomic.Uint64 // IDs this server handed out in the namespace
	used   atomic.Int64  // unix nanos of the last ID request
	head   headroom
	gone   chan struct{} // guarded by pool.mu
}

func (e *nsEntry) ready() bool {
	select {
	case <-e.done:
		return e.err == nil
	default:
		return false
	}
}

// Why a namespace was closed: the values of the reason label of
// shardseq_namespace_evictions_total, and closeName's.
const (
	reasonIdle   = "idle"
	reasonLRU    = "lru"
	reasonClosed = "closed" // closeName (e.g. after a DELETE)
)

// pool holds the namespaces a server has open. It opens each once however
// many requests ask for it at once (single flight), keeps at most max open
// (the least recently used closed first, never DefaultNamespace), closes
// those unused for idleAfter, and closes them all on close. How a namespace
// is opened (and whether it may be created) is open's business; what a
// closing means to the rest of the server is closed's.
type pool struct {
	ctx         context.Context // ended when the server closes; bounds openings
	max         int             // Config.MaxNamespaces
	idleAfter   time.Duration   // Config.NamespaceIdle; -1: never
	openTimeout time.Duration
	maxID       int64 // the namespaces' MaxID, for their headroom
	serving     func() bool
	open        func(ctx context.Context, name string) (*client.Client, error)
	closed      func(name, reason string, gaps, reserved int64) // after a namespace closed; reserved: client.Client.Reserved
	log         *slog.Logger

	mu      sync.RWMutex // guards ns, opening and shut; never held across Redis I/O
	ns      map[string]*nsEntry
	opening int // entries whose done is not closed yet
	shut    bool
	opens   sync.WaitGroup // openings and closings in flight
	loops   sync.WaitGroup // the idle loop
}

// startIdle starts the loop that closes idle namespaces, unless idleAfter
// says never.
func (p *pool) startIdle() {
	if p.idleAfter <= 0 {
		return
	}
	p.loops.Add(1)
	go p.idleLoop()
}

// isClosed reports whether shutdown was called.
func (p *pool) isClosed() bool {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.shut
}

// shutdown makes every further get fail with ErrClosed. It reports false if
// it was called before.
func (p *pool) shutdown() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shut {
		return false
	}
	p.shut = true
	return true
}

// close closes every namespace's client, once shutdown was called and ctx
// ended: it waits for the idle loop and for openings and closings in flight
// (no opening can add a client after that).
func (p *pool) close() error {
	p.loops.Wait()
	p.opens.Wait()
	p.mu.Lock()
	entries := slices.Collect(maps.Values(p.ns))
	p.mu.Unlock()
	var errs []error
	for _, e := range entries {
		if e.c != nil {
			errs = append(errs, e.c.Close())
		}
	}
	return errors.Join(errs...)
}

// names returns the names of the open namespaces, sorted.
func (p *pool) names() []string {
	p.mu.RLock()
	defer p.mu.RUnlock()
	out := make([]string, 0, len(p.ns))
	for name, e := range p.ns {
		if e.gone == nil && e.ready() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// count is the number of open namespaces.
func (p *pool) count() int {
	p.mu.RLock()
	defer p.mu.RUnlock()
	n := 0
	for _, e := range p.ns {
		if e.gone == nil && e.ready() {
			n++
		}
	}
	return n
}

// entry returns the entry of an open namespace that is not closing, or nil
// (also once the pool is shut). It does not count as a use.
func (p *pool) entry(name string) *nsEntry {
	p.mu.RLock()
	e := p.ns[name]
	ok := e != nil && !p.shut && e.gone == nil
	p.mu.RUnlock()
	if ok && e.ready() {
		return e
	}
	return nil
}

// issued is the number of IDs of namespace name handed out since it was
// last opened.
func (p *pool) issued(name string) uint64 {
	p.mu.RLock()
	e := p.ns[name]
	p.mu.RUnlock()
	if e == nil {
		return 0
	}
	return e.issued.Load()
}

// get returns the entry of namespace name, opening it on first use.
// Concurrent first requests for one namespace open it once: the first caller
// starts the opening (outside the lock), the others wait for its result. A
// failed opening is forgotten, so the next request tries again. A request
// for a namespace being closed waits until it is closed, then opens it
// again.
func (p *pool) get(ctx context.Context, name string) (*nsEntry, error) {
	for {
		p.mu.RLock()
		e := p.ns[name]
		shut := p.shut
		var gone chan struct{}
		if e != nil {
			gone = e.gone
		}
		p.mu.RUnlock()
		switch {
		case shut:
			return nil, ErrClosed
		case gone != nil:
			select {
			case <-gone:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		case e != nil:
			if !e.ready() && !p.serving() {
				return nil, ErrNoMasterServing
			}
			return p.wait(ctx, e)
		}
		// Opening needs Redis: fail at once when no master answers.
		if !p.serving() {
			return nil, ErrNoMasterServing
		}
		e, err := p.start(name)
		if err != nil {
			return nil, err
		}
		if e == nil {
			continue // opened, being opened or closed by someone else meanwhile
		}
		return p.wait(ctx, e)
	}
}

// wait waits for the opening of e, or for the end of ctx.
func (p *pool) wait(ctx context.Context, e *nsEntry) (*nsEntry, error) {
	select {
	case <-e.done:
		return e, e.err
	case <-ctx.Done():
		return nil, stillOpening(ctx, e.name)
	}
}

// start adds an entry for namespace name and starts opening it, unless
// another caller added one meanwhile (nil, nil) or too many are being
// opened at once.
func (p *pool) start(name string) (*nsEntry, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case p.shut:
		return nil, ErrClosed
	case p.ns[name] != nil:
		return nil, nil
	case p.opening >= maxOpening:
		return nil, &RetryError{Err: ErrTooManyNamespaces, RetryAfter: time.Second,
			Msg: fmt.Sprintf("%d namespaces are being opened at once already; retry in a second", maxOpening)}
	}
	e := &nsEntry{name: name, done: make(chan struct{})}
	p.ns[name] = e
	p.opening++
	p.opens.Add(1)
	go p.run(e)
	return e, nil
}

// stillOpening is the error of a request whose time ran out while its
// namespace was being opened: the opening goes on, so a retry finds it open.
func stillOpening(ctx context.Context, name string) error {
	return public(ctx.Err(), "namespace %q is still being opened (creating one takes a few round trips to Redis per shard); retry in a second", name)
}

// run opens namespace e.name into e, then closes the namespaces past max.
// It uses the pool's context, not a request's, so a caller giving up does
// not fail the others waiting, and a retry finds the namespace open.
func (p *pool) run(e *nsEntry) {
	defer p.opens.Done()
	ctx, cancel := context.WithTimeout(p.ctx, p.openTimeout)
	defer cancel()
	c, err := p.open(ctx, e.name)
	if err == nil {
		e.head.init(c.Start(), p.maxID)
	}
	var victims []*nsEntry
	p.mu.Lock()
	e.c, e.err = c, err
	e.used.Store(time.Now().UnixNano())
	p.opening--
	if err != nil {
		if p.ns[e.name] == e {
			delete(p.ns, e.name)
		}
	} else {
		victims = p.lruVictimsLocked(e)
	}
	close(e.done)
	p.mu.Unlock()
	for _, v := range victims {
		p.evict(v, reasonLRU)
	}
}

// lruVictimsLocked picks the open namespaces to close so that at most max
// stay open: the least recently used first, never the default namespace
// nor keep (just opened). Caller holds mu.
func (p *pool) lruVictimsLocked(keep *nsEntry) []*nsEntry {
	var open []*nsEntry
	n := 1 // keep, whose done is not closed yet
	for _, e := range p.ns {
		if e != keep && e.gone == nil && e.ready() {
			n++
			if e.name != DefaultNamespace {
				open = append(open, e)
			}
		}
	}
	over := n - p.max
	if over <= 0 {
		return nil
	}
	slices.SortFunc(open, func(a, b *nsEntry) int { return int(a.used.Load() - b.used.Load()) })
	return open[:min(over, len(open))]
}

// evict closes the open namespace of e and forgets it: its buffered IDs
// become gaps, and closed learns of it. Requests for it meanwhile wait,
// then open it again. It reports whether it closed it (false: not open,
// closing already, or the pool is shut).
func (p *pool) evict(e *nsEntry, reason string) bool {
	p.mu.Lock()
	if p.shut || p.ns[e.name] != e || e.gone != nil || !e.ready() {
		p.mu.Unlock()
		return false
	}
	e.gone = make(chan struct{})
	p.opens.Add(1)
	p.mu.Unlock()
	defer p.opens.Done()
	before := e.c.Discarded()
	if err := e.c.Close(); err != nil {
		p.log.Warn("closing namespace", "namespace", e.name, "err", err)
	}
	gaps := e.c.Discarded() - before
	p.closed(e.name, reason, gaps, e.c.Reserved()) // before a reopen can start: it waits for gone
	p.mu.Lock()
	delete(p.ns, e.name)
	close(e.gone)
	p.mu.Unlock()
	p.log.Info("namespace closed", "namespace", e.name, "reason", reason, "gaps", gaps,
		"unused_for", time.Since(time.Unix(0, e.used.Load())).Round(time.Millisecond))
	return true
}

// closeName closes namespace name if it is open (e.g. after it was
// deleted). An opening in flight is waited for (up to OpenTimeout) and then
// closed. The default namespace is never closed. It reports whether it
// closed one.
func (p *pool) closeName(name string) bool {
	if name == DefaultNamespace {
		return false
	}
	p.mu.RLock()
	e := p.ns[name]
	p.mu.RUnlock()
	if e == nil {
		return false
	}
	select {
	case <-e.done:
	case <-p.ctx.Done():
		return false
	}
	return p.evict(e, reasonClosed)
}

// idleLoop closes namespaces unused for idleAfter, until ctx ends. It wakes
// a few times per idleAfter (at most every 30s).
func (p *pool) idleLoop() {
	defer p.loops.Done()
	every := min(max(p.idleAfter/4, 5*time.Millisecond), 30*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-t.C:
			for _, e := range p.idle(time.Now().Add(-p.idleAfter)) {
				p.evict(e, reasonIdle)
			}
		}
	}
}

// idle returns the open namespaces, but the default one, last used before
// cutoff.
func (p *pool) idle(cutoff time.Time) []*nsEntry {
	p.mu.RLock()
	defer p.mu.RUnlock()
	var out []*nsEntry
	for name, e := range p.ns {
		if name != DefaultNamespace && e.gone == nil && e.ready() && e.used.Load() < cutoff.UnixNano() {
			out = append(out, e)
		}
	}
	return out
}
