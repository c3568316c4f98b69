package failover

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// RepairConfig tunes the repairs that follow history changes.
type RepairConfig struct {
	// Options are the shard options repairs run with (acknowledgement).
	Options shard.Options
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Parallel is how many namespaces are repaired at once. Default 4.
	Parallel int
	// Settle is how long changes are collected before a sweep starts, so
	// that a failover's several changes cost one sweep. Default 200ms.
	Settle time.Duration
	// Retry is how long a sweep that could not finish (a master still down,
	// another process's sweep not done) waits before it tries again.
	// Default 5s.
	Retry time.Duration
}

// Repairs are the repairs StartRepairs started for a cluster connection.
type Repairs struct {
	cl     *cluster.Cluster
	cfg    RepairConfig
	log    *slog.Logger
	ch     chan []cluster.Change
	stop   chan struct{}
	done   chan struct{}
	once   sync.Once
	sweeps atomic.Int64 // sweeps finished by this process
	last   atomic.Pointer[SweepReport]
}

// SweepReport says what one sweep did.
type SweepReport struct {
	Masters    []string // addresses whose history changed
	Namespaces int
	Shards     int // shards checked
	Restored   int // counters restored
	Copies     int // ceiling copies made trusted again
	Errors     int
	Took       time.Duration
	At         time.Time
}

// StartRepairs starts the repairs that follow the master probes of cl:
// whenever a master shows a history this process has not seen (a promotion,
// a restart, a rewind; and every master once when the repairs start, since
// nobody can tell what happened before), every namespace in the index, open
// or not, gets its lost record copies rewritten, its counters on that master
// restored and its ceiling copies on it made trusted again. Nothing runs
// while nothing changes. A claim in Redis lets one process sweep each change
// for all.
//
// Whoever owns the connection starts its repairs, once, and stops them
// before closing it: client.New for a connection it dials, server.New for
// the server's, a program that shares one connection between clients for
// that one. With Defences other than AllDefences (negative controls, which
// repair only when a namespace is opened) nothing is started; Stop and
// Report work all the same.
func StartRepairs(cl *cluster.Cluster, cfg RepairConfig) *Repairs {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Parallel <= 0 {
		cfg.Parallel = 4
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 200 * time.Millisecond
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 5 * time.Second
	}
	r := &Repairs{cl: cl, cfg: cfg, log: cfg.Logger, ch: make(chan []cluster.Change, 64),
		stop: make(chan struct{}), done: make(chan struct{})}
	if cfg.Options.WithDefaults().UnsafeDefences != shard.AllDefences {
		close(r.done)
		return r
	}
	unsub := cl.Subscribe(func(round cluster.ProbeRound) {
		if len(round.Changes) == 0 {
			return
		}
		select {
		case r.ch <- round.Changes:
		default: // a sweep is far behind; the pending ones cover every master anyway
		}
	})
	go func() {
		defer close(r.done)
		defer unsub()
		r.loop()
	}()
	return r
}

// Stop stops the repairs, cancelling a sweep under way, and waits for them
// to end. It may be called more than once, and on nil.
func (r *Repairs) Stop() {
	if r == nil {
		return
	}
	r.once.Do(func() { close(r.stop) })
	<-r.done
}

// Report returns how many sweeps this process finished and what the last one
// did (the zero SweepReport before the first).
func (r *Repairs) Report() (sweeps int64, last SweepReport) {
	if r == nil {
		return 0, SweepReport{}
	}
	if p := r.last.Load(); p != nil {
		last = *p
	}
	return r.sweeps.Load(), last
}

func (r *Repairs) loop() {
	pending := map[string]cluster.Change{}
	var retry <-chan time.Time
	for {
		select {
		case <-r.stop:
			return
		case cs := <-r.ch:
			for _, c := range cs {
				pending[c.Addr] = c
			}
			// Let the rest of a failover's changes arrive.
			t := time.NewTimer(r.cfg.Settle)
		settle:
			for {
				select {
				case <-r.stop:
					t.Stop()
					return
				case cs := <-r.ch:
					for _, c := range cs {
						pending[c.Addr] = c
					}
				case <-t.C:
					break settle
				}
			}
		case <-retry:
		}
		retry = nil
		if len(pending) == 0 {
			continue
		}
		left := r.sweep(pending)
		pending = left
		if len(pending) > 0 {
			retry = time.After(r.cfg.Retry)
		}
	}
}

// claimKey is where processes agree on who sweeps the change of the master
// at addr to the history identity: "running:<owner>" while a sweep runs (it
// expires if that process dies), "done" after.
func claimKey(addr, identity string) string { return "shardseq:repair:{" + addr + "}:" + identity }

// claim decides who sweeps change c: mine when this process took the claim
// (or the claim cannot be read: better twice than never), done when another
// process finished it; neither while another process is on it.
func (r *Repairs) claim(ctx context.Context, c cluster.Change, owner string) (mine, done bool) {
	cc := r.cl.ClusterClient()
	key := claimKey(c.Addr, c.Identity)
	ok, err := cc.SetNX(ctx, key, "running:"+owner, 30*time.Second).Result()
	if err != nil || ok {
		return true, false
	}
	v, err := cc.Get(ctx, key).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return true, false
	}
	return false, v == "done"
}

func randomOwner() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// repairAll repairs the namespaces names for the masters changed says
// changed, cfg.Parallel at a time, adding what it did to rep. It reports
// whether a repair failed in a way worth trying again.
func (r *Repairs) repairAll(ctx context.Context, names []string, changed func(addr string) bool, rep *SweepReport) (failed bool) {
	var mu sync.Mutex
	work := make(chan string)
	var wg sync.WaitGroup
	for range r.cfg.Parallel {
		wg.Go(func() {
			for name := range work {
				res, err := namespace.RepairNamespace(ctx, r.cl, name, changed, r.cfg.Options)
				mu.Lock()
				rep.Namespaces++
				rep.Shards += res.Shards
				rep.Restored += res.Restored
				rep.Copies += res.Copies
				if err != nil && !errors.Is(err, namespace.ErrNamespaceNotFound) {
					rep.Errors++
					failed = failed || Retryable(err)
					r.log.Warn("repair: namespace not fully repaired", "namespace", name, "err", err)
				}
				mu.Unlock()
			}
		})
	}
	for _, n := range names {
		select {
		case work <- n:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	return failed
}

// sweep repairs every indexed namespace for the changed masters it claims,
// and returns the changes left for later: claimed elsewhere but not done yet,
// or not finished here.
func (r *Repairs) sweep(pending map[string]cluster.Change) map[string]cluster.Change {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		select {
		case <-r.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	owner := randomOwner()
	left := map[string]cluster.Change{}
	mine := map[string]cluster.Change{}
	for addr, c := range pending {
		switch ok, done := r.claim(ctx, c, owner); {
		case ok:
			mine[addr] = c
		case !done:
			left[addr] = c // someone else is on it; check again later
		}
	}
	if len(mine) == 0 {
		return left
	}
	start := time.Now()
	rep := SweepReport{At: start}
	for addr := range mine {
		rep.Masters = append(rep.Masters, addr)
	}
	slices.Sort(rep.Masters)
	names, err := namespace.ListNamespaces(ctx, r.cl)
	if err != nil {
		r.log.Warn("repair: cannot read the index of namespaces", "masters", rep.Masters, "err", err)
		for a, c := range mine {
			left[a] = c
		}
		return left
	}
	failed := r.repairAll(ctx, names, func(addr string) bool { _, ok := mine[addr]; return ok }, &rep)
	rep.Took = time.Since(start)
	r.last.Store(&rep)
	r.sweeps.Add(1)
	r.log.Info("repair sweep", "masters", rep.Masters, "namespaces", rep.Namespaces, "shards", rep.Shards,
		"restored", rep.Restored, "copies", rep.Copies, "errors", rep.Errors, "took", rep.Took.Round(time.Millisecond))
	cc := r.cl.ClusterClient()
	for addr, c := range mine {
		key := claimKey(addr, c.Identity)
		if failed || ctx.Err() != nil {
			left[addr] = c
			_ = cc.Del(context.Background(), key).Err() // let anyone retry
			continue
		}
		_ = cc.Set(context.Background(), key, "done", 24*time.Hour).Err()
	}
	return left
}
