package failover

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"maps"
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
	// Parallel is how many namespaces are repaired at once. Default 8.
	Parallel int
	// Settle is how long changes are collected before a sweep starts, so
	// that a failover's several changes cost one sweep. Default 200ms.
	Settle time.Duration
	// Retry is how long a sweep that could not finish (a master still down,
	// another process's sweep not done) waits before it tries again.
	// Default 5s.
	Retry time.Duration
	// Batch is how many names of the index a sweep reads at once (one page,
	// sorted by name); after each batch it records how far it got, so a
	// sweep whose process died is continued from there, not from the first
	// name. Default 256.
	Batch int
	// ClaimTTL is how long a sweep's claim lives unless renewed (after each
	// batch): how long the sweep of a process that died holds the others
	// back. Default 30s.
	ClaimTTL time.Duration
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
	Resumed    string   // the name a sweep continued after ("": from the first)
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
		cfg.Parallel = 8
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 200 * time.Millisecond
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 5 * time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 256
	}
	if cfg.ClaimTTL <= 0 {
		cfg.ClaimTTL = 30 * time.Second
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

// progressKey holds the last name of the index (in sorted order) up to
// which every namespace was repaired for the change of the master at addr
// to identity: where a sweep continues when the process that ran it died.
func progressKey(addr, identity string) string { return claimKey(addr, identity) + ":after" }

// claim decides who sweeps change c: mine when this process took the claim
// (or the claim cannot be read: better twice than never), done when another
// process finished it; neither while another process is on it.
func (r *Repairs) claim(ctx context.Context, c cluster.Change, owner string) (mine, done bool) {
	cc := r.cl.ClusterClient()
	key := claimKey(c.Addr, c.Identity)
	ok, err := cc.SetNX(ctx, key, "running:"+owner, r.cfg.ClaimTTL).Result()
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

// repairAll repairs the namespaces names for the masters changed(name) says
// changed (nil: none, skipped), cfg.Parallel at a time, adding what it did
// to rep and the names whose records it found to found (for the index). It
// returns the names whose repair failed in a way worth trying again, with
// their errors; other failures are counted and logged.
func (r *Repairs) repairAll(ctx context.Context, names []string, changed func(name string) func(addr string) bool, rep *SweepReport, found map[string]bool) map[string]error {
	var mu sync.Mutex
	retry := map[string]error{}
	work := make(chan string)
	var wg sync.WaitGroup
	for range r.cfg.Parallel {
		wg.Go(func() {
			for name := range work {
				res, err := namespace.RepairNamespaceUnindexed(ctx, r.cl, name, changed(name), r.cfg.Options)
				mu.Lock()
				if res.Found {
					found[name] = true
				}
				rep.Shards += res.Shards
				rep.Restored += res.Restored
				rep.Copies += res.Copies
				switch {
				case err == nil || errors.Is(err, namespace.ErrNamespaceNotFound):
					rep.Namespaces++
				case Retryable(err) || ctx.Err() != nil:
					retry[name] = err
				default:
					rep.Namespaces++
					rep.Errors++
					r.log.Warn("repair: namespace not fully repaired", "namespace", name, "err", err)
				}
				mu.Unlock()
			}
		})
	}
	for _, n := range names {
		if changed(n) == nil {
			continue // every change covering it was swept past it already
		}
		select {
		case work <- n:
		case <-ctx.Done():
		}
	}
	close(work)
	wg.Wait()
	return retry
}

// repairBatch repairs one batch of names, trying again (after 0.5, 1, 2 s)
// those whose repair failed in a way worth trying again: right after a
// restart a master's replica may still be resyncing and refuse the
// acknowledgement, and a batch retried in place spares the sweep from
// starting over. The names whose records were found are then re-added to
// every copy of the index, one script per copy for the whole batch (tried
// again the same way). It reports whether the batch is repaired.
func (r *Repairs) repairBatch(ctx context.Context, names []string, changed func(name string) func(addr string) bool, rep *SweepReport) bool {
	found := map[string]bool{}
	retry := r.repairAll(ctx, names, changed, rep, found)
	// The names found are re-added whatever happens to the others: one
	// namespace that keeps failing (a lost ceiling waits for an operator)
	// must not keep its whole batch out of an index copy lost in a restart.
	added := map[string]bool{}
	var indexErr error
	addFound := func() {
		var todo []string
		for name := range found {
			if !added[name] {
				todo = append(todo, name)
			}
		}
		if indexErr = nil; len(todo) == 0 {
			return
		}
		slices.Sort(todo)
		if indexErr = namespace.AddToIndex(ctx, r.cl, todo, r.cfg.Options); indexErr == nil {
			for _, name := range todo {
				added[name] = true
			}
		}
	}
	for wait := 500 * time.Millisecond; ; wait *= 2 {
		addFound()
		indexDone := indexErr == nil || !(Retryable(indexErr) || ctx.Err() != nil)
		if len(retry) == 0 && indexDone {
			break
		}
		if wait > 2*time.Second {
			break
		}
		r.log.Debug("repair: batch tried again", "namespaces", len(retry), "index_err", indexErr, "after", wait)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return false
		}
		if len(retry) > 0 {
			retry = r.repairAll(ctx, slices.Sorted(maps.Keys(retry)), changed, rep, found)
		}
	}
	for name, err := range retry {
		rep.Namespaces++
		rep.Errors++
		r.log.Warn("repair: namespace not fully repaired", "namespace", name, "err", err)
	}
	if indexErr != nil {
		// Counted like a namespace's error: one worth trying again fails
		// the batch (its progress is not recorded), another does not.
		rep.Errors++
		r.log.Warn("repair: names not re-added to the index", "namespaces", len(found), "err", indexErr)
		if Retryable(indexErr) || ctx.Err() != nil {
			return false
		}
	}
	return len(retry) == 0 && ctx.Err() == nil
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
	// Where an earlier sweep of each change got to (its process may have
	// died): names up to there need nothing more for that change.
	cc := r.cl.ClusterClient()
	after := map[string]string{}
	cursor := ""
	first := true
	for addr, c := range mine {
		v, err := cc.Get(ctx, progressKey(addr, c.Identity)).Result()
		if err != nil {
			v = "" // none, or unreadable: from the first name
		}
		after[addr] = v
		if first || v < cursor {
			cursor = v
		}
		first = false
	}
	rep.Resumed = cursor
	changed := func(name string) func(addr string) bool {
		need := false
		for addr := range mine {
			need = need || name > after[addr]
		}
		if !need {
			return nil
		}
		return func(addr string) bool { _, ok := mine[addr]; return ok && name > after[addr] }
	}
	failed := false
	for {
		// One page of the index at a time: a sweep holds a batch of names,
		// not the whole index, and records its progress after each.
		names, err := namespace.PageNames(ctx, r.cl, cursor, r.cfg.Batch)
		if err != nil {
			r.log.Warn("repair: cannot read the index of namespaces", "masters", rep.Masters, "err", err)
			failed = true
			break
		}
		if len(names) == 0 {
			break
		}
		if !r.repairBatch(ctx, names, changed, &rep) {
			failed = true // progress stays where the last complete batch left it
		}
		cursor = names[len(names)-1]
		if !failed {
			for addr, c := range mine {
				if cursor > after[addr] {
					_ = cc.Set(ctx, progressKey(addr, c.Identity), cursor, 24*time.Hour).Err()
					after[addr] = cursor
				}
			}
		}
		r.renew(ctx, mine, owner)
		if ctx.Err() != nil || len(names) < r.cfg.Batch {
			break
		}
	}
	rep.Took = time.Since(start)
	r.last.Store(&rep)
	r.sweeps.Add(1)
	r.log.Info("repair sweep", "masters", rep.Masters, "resumed_after", rep.Resumed, "namespaces", rep.Namespaces, "shards", rep.Shards,
		"restored", rep.Restored, "copies", rep.Copies, "errors", rep.Errors, "took", rep.Took.Round(time.Millisecond))
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

// renew extends the claims of a sweep under way that are still its own: a
// sweep may outlast ClaimTTL, and another process must not take over a live
// one (it would redo the work, not break it). A claim lost meanwhile is left
// to its new owner.
func (r *Repairs) renew(ctx context.Context, mine map[string]cluster.Change, owner string) {
	cc := r.cl.ClusterClient()
	for addr, c := range mine {
		key := claimKey(addr, c.Identity)
		if v, err := cc.Get(ctx, key).Result(); err == nil && v == "running:"+owner {
			_ = cc.SetXX(ctx, key, v, r.cfg.ClaimTTL).Err()
		}
	}
}
