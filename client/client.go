package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// MaxBatch bounds NextN.
const MaxBatch = 1 << 20

// lanes splits a segment into sub-ranges with a counter each, on its own
// cache line. A caller starts at a lane picked from its goroutine's stack
// address, so callers on different cores mostly add to different lines. One
// shared counter measured 28 ns/op with b.RunParallel on 2 cores (every add
// moves the line between cores); 16 lanes 11-18 ns/op.
const (
	laneBits = 4
	lanes    = 1 << laneBits
)

type lane struct {
	pos  atomic.Int64 // IDs taken from this lane
	size int64        // IDs in this lane
	trig int64        // offset at which the refill starts
	_    [40]byte     // pad to a cache line of its own
}

// segment is a block being handed out, as lanes of per IDs (the last ones
// may be shorter or empty). Only the goroutine whose Add reaches a lane's
// trigger starts the refill, so the hot path is one atomic add. born is set
// when the segment becomes current, so that taken/age is the consumption
// rate. Every field but the lanes' pos is fixed before the segment is
// published.
type segment struct {
	lane   [lanes]lane
	lo, n  int64
	per    int64
	shard  int
	shards int64
	born   time.Time
	// retire is when the segment stops handing out IDs (ordering); zero
	// when it lives until used up. retireAt is the same moment on the
	// client's clock, for the cheap check of the hot path. retired is set,
	// under Client.mu, once it was closed and accounted for.
	retire   time.Time
	retireAt int64
	retired  bool
	// fallback: a spare handed out while no reservation succeeds; its IDs
	// may be below ones handed out before (counted as OutOfOrder).
	fallback bool
	// done has bit j set once lane j is used up: written once a lane,
	// read by every call, so callers skip used-up lanes without writing to
	// their cache lines.
	done atomic.Uint32
}

func newSegment(lo, n int64, shard int, shards int64, refillAt float64) *segment {
	s := &segment{lo: lo, n: n, per: (n + lanes - 1) / lanes, shard: shard, shards: shards}
	for j := range s.lane {
		l := &s.lane[j]
		l.size = min(max(n-int64(j)*s.per, 0), s.per)
		l.trig = int64(float64(l.size) * refillAt)
		if l.size == 0 {
			s.done.Or(1 << j)
		}
	}
	return s
}

// allDone is the done mask of a used-up segment.
const allDone = 1<<lanes - 1

// laneLen is the number of IDs of lane j.
func (s *segment) laneLen(j int) int64 { return s.lane[j].size }

// trigger is the offset in lane j at which the refill starts.
func (s *segment) trigger(j int) int64 { return s.lane[j].trig }

func (s *segment) id(j int, k int64) int64 {
	return (s.lo+int64(j)*s.per+k)*s.shards + int64(s.shard)
}

// taken is how many IDs of the segment were handed out.
func (s *segment) taken() int64 {
	var t int64
	for j := range s.lane {
		t += min(s.lane[j].pos.Load(), s.laneLen(j))
	}
	return t
}

// laneHint picks a caller's first lane from the address of its stack: stable
// for a goroutine between stack moves, different between goroutines.
func laneHint() int {
	var marker byte
	p := uint64(uintptr(unsafe.Pointer(&marker)))
	return int((p >> 10) * 0x9E3779B97F4A7C15 >> (64 - laneBits)) // top bits: 0..lanes-1
}

// closedPos is stored in every lane's pos by close: every later Add lands
// past the lane's end, so no ID is taken after close counted what was left.
const closedPos = 1 << 62

// close stops the segment handing out IDs and returns how many it handed out.
func (s *segment) close() (used int64) {
	for j := range s.lane {
		used += min(s.lane[j].pos.Swap(closedPos), s.laneLen(j))
	}
	s.done.Store(allDone)
	return used
}

// Client hands out IDs of one namespace.
type Client struct {
	cfg        Config
	cl         *cluster.Cluster
	ownsCl     bool
	repairs    *failover.Repairs // nil unless ownsCl
	reg        *failover.Registry
	set        *failover.Set
	log        *slog.Logger
	ctx        context.Context // background refills; cancelled by Close
	cancel     context.CancelFunc
	cur        atomic.Pointer[segment]
	mu         sync.Mutex // guards the fields below; never held across I/O
	next       *segment
	refilling  bool
	refilled   chan struct{} // closed when the running refill ends
	refillErr  error
	blockSize  int64
	rate       float64    // IDs per second handed out, smoothed over whole blocks
	order      orderState // guarded by mu
	retirer    *time.Timer
	spares     []*segment // held for when no reservation succeeds (HoldFor)
	sparing    bool       // a reservation of spares is running
	recovering bool       // a fallback's recovery loop is running
	lastHi     []int64    // per shard: the end of the last block this client reserved there
	base       time.Time  // origin of clock()
	wg         sync.WaitGroup
	closed     atomic.Bool
	econ       economy
}

// staleCheck: Next reads the clock once per this many IDs of a lane (and
// NextN once per call) to stop handing out a block past its retire time,
// which a stalled process would otherwise do until its retire timer runs:
// a clock read costs several times a Next.
const staleCheck = 64

// fallbackPatience, plus the acknowledgement timeout, is how long a caller
// with nothing buffered waits for a refill before it is served from a
// spare: a reservation that takes longer is stuck on a master that fails
// (one whose replicas lag costs an AckTimeout, then the next master
// serves).
const fallbackPatience = 100 * time.Millisecond

// recoverEvery paces the reservations tried while callers are served from a
// spare; each fails fast while every master is known to be down.
const recoverEvery = 50 * time.Millisecond

// clock is the time since the client started, on the monotonic clock.
func (c *Client) clock() int64 { return int64(time.Since(c.base)) }

// stale reports whether seg is past its retire time.
func (c *Client) stale(seg *segment) bool { return seg.retireAt != 0 && c.clock() >= seg.retireAt }

// expire retires seg if it is still current (its rest becomes a gap).
func (c *Client) expire(seg *segment) {
	c.mu.Lock()
	if c.cur.Load() == seg {
		c.retireLocked(seg, gapRetired)
	}
	c.mu.Unlock()
}

// New validates cfg, connects to the cluster (unless cfg.Cluster is given),
// opens the namespace (creating it on first use, refusing a different shard
// count), learns the namespace's level from Redis (so that its first IDs
// follow the ones handed out before it started) and returns a ready Client.
func New(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	explicitTarget := cfg.BlockTarget != 0
	cfg = cfg.withDefaults()
	c := &Client{cfg: cfg, cl: cfg.Cluster, reg: cfg.Registry, log: cfg.Logger, blockSize: cfg.BlockSize, base: time.Now()}
	if c.cl == nil {
		cl, err := cluster.Dial(ctx, cfg.clusterConfig())
		if err != nil {
			return nil, err
		}
		c.cl, c.ownsCl = cl, true
	}
	if c.reg == nil {
		c.reg = failover.NewRegistry()
	}
	ns, err := openNamespace(ctx, c.cl, cfg)
	if err != nil {
		if c.ownsCl {
			_ = c.cl.Close()
		}
		return nil, err
	}
	if !explicitTarget {
		c.cfg.BlockTarget = cfg.blockTargetFor(len(ns.Shards)) // N is known now
	}
	c.cfg.Strict = c.cfg.Strict || ns.Strict // the namespace's stored mode

	if c.ownsCl {
		// The connection is this client's, and so are its repairs; a
		// shared connection's owner starts them (failover.StartRepairs).
		c.repairs = failover.StartRepairs(c.cl, failover.RepairConfig{Options: cfg.shardOptions(), Logger: c.log})
	}
	if cfg.ordered() {
		c.order.settled = ns.Level(ctx)
	}
	c.set = failover.NewSet(ns, c.reg, c.cl, cfg.Breaker, c.log, cfg.Observer)
	c.lastHi = make([]int64, len(ns.Shards))
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c, nil
}

// openNamespace opens the namespace, trying again while the cluster is in the
// middle of a failover (CLUSTERDOWN, a refused connection, a write not yet
// replicated), for up to 10s or until ctx ends. Configuration errors such as
// a shard-count mismatch return at once.
func openNamespace(ctx context.Context, cl *cluster.Cluster, cfg Config) (*namespace.Namespace, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ns, err := namespace.Open(ctx, cl, cfg.Namespace, cfg.settings(), cfg.shardOptions())
		if err == nil || !failover.Retryable(err) || time.Now().After(deadline) {
			return ns, err
		}
		cl.LazyReload()
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("client: opening namespace %q: %w (last error: %v)", cfg.Namespace, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Namespace is the client's namespace.
func (c *Client) Namespace() string { return c.cfg.Namespace }

// ShardCount is N, as stored with the namespace.
func (c *Client) ShardCount() int { return len(c.set.Namespace().Shards) }

// Start is the smallest ID the namespace hands out.
func (c *Client) Start() int64 { return c.set.Namespace().Start }

// Strict reports whether the client reserves every ID with its own round
// trip: Config.Strict, or the namespace's stored strict mode.
func (c *Client) Strict() bool { return c.cfg.Strict }

// Next returns a new ID. It fails only when no shard can serve (wrapping
// ErrNoHealthyShard), when ctx ends, or when the client is closed.
func (c *Client) Next(ctx context.Context) (int64, error) {
	if c.cfg.Strict {
		b, err := c.reserve(ctx, 1)
		if err != nil {
			return 0, err
		}
		return b.ID(0), nil
	}
	for {
		seg := c.cur.Load()
		if seg != nil {
			if done := seg.done.Load(); done != allDone {
				h := laneHint()
				for t := 0; t < lanes; t++ {
					j := (h + t) & (lanes - 1)
					if done&(1<<j) != 0 {
						continue
					}
					l := &seg.lane[j]
					k := l.pos.Add(1) - 1
					if k < l.size {
						if k&(staleCheck-1) == 0 && c.stale(seg) {
							c.expire(seg) // a stalled process: its block is too old to hand out
							break
						}
						if k == l.trig {
							c.startRefill()
						}
						return seg.id(j, k), nil
					}
					seg.done.Or(1 << j)
				}
			}
		}
		if err := c.advance(ctx, seg); err != nil {
			return 0, err
		}
	}
}

// NextN returns n new IDs (1 <= n <= MaxBatch), taken from buffered blocks
// without a round trip per ID. IDs within a batch increase within each block
// they came from.
func (c *Client) NextN(ctx context.Context, n int) ([]int64, error) {
	if n < 1 || n > MaxBatch {
		return nil, fmt.Errorf("client: NextN(%d): want 1 to %d", n, MaxBatch)
	}
	out := make([]int64, 0, n)
	if c.cfg.Strict {
		b, err := c.reserve(ctx, int64(n))
		if err != nil {
			return nil, err
		}
		for k := int64(0); k < b.Len(); k++ {
			out = append(out, b.ID(k))
		}
		return out, nil
	}
	for len(out) < n {
		seg := c.cur.Load()
		if seg != nil && c.stale(seg) {
			c.expire(seg)
		}
		if seg != nil {
			h := laneHint()
			for t := 0; t < lanes && len(out) < n; t++ {
				j := (h + t) & (lanes - 1)
				size := seg.laneLen(j)
				if seg.done.Load()&(1<<j) != 0 {
					continue
				}
				want := int64(n - len(out))
				end := seg.lane[j].pos.Add(want)
				k := end - want
				if end >= size {
					seg.done.Or(1 << j)
				}
				if k >= size {
					continue
				}
				end = min(end, size)
				if trig := seg.trigger(j); k <= trig && trig < end {
					c.startRefill()
				}
				for ; k < end; k++ {
					out = append(out, seg.id(j, k))
				}
			}
			if len(out) == n {
				break
			}
		}
		if err := c.advance(ctx, seg); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// reserve is strict mode's reservation: one block handed out at once.
func (c *Client) reserve(ctx context.Context, count int64) (shard.Block, error) {
	if c.closed.Load() {
		return shard.Block{}, ErrClosed
	}
	b, err := c.set.Reserve(ctx, count, -1, c.level)
	if err == nil {
		c.set.Issued(b.Shard, uint64(b.Len()))
		c.econ.issued.Add(b.Len())
		c.mu.Lock()
		c.order.add(b.Sent, b.Hi, c.cfg)
		c.noteBlockLocked(b)
		c.mu.Unlock()
	}
	return b, err
}

// level is the sequence number a reservation sent now must start above; the
// picker asks it right before each attempt, so a slow first attempt (a dead
// master) does not leave the block that succeeds with an old level or an old
// send time, which its retirement counts from.
func (c *Client) level() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.level(time.Now(), c.cfg)
}

// advance replaces the exhausted (or retired) segment old with the
// prefetched one, or waits for a refill; when no reservation can succeed
// (or one takes longer than fallbackPatience) it hands out a spare instead.
// Only arithmetic happens under the lock.
func (c *Client) advance(ctx context.Context, old *segment) error {
	for {
		if c.closed.Load() {
			return ErrClosed
		}
		c.mu.Lock()
		if cur := c.cur.Load(); cur != old {
			c.mu.Unlock()
			return nil // another goroutine advanced already
		}
		if c.next != nil && c.stale(c.next) {
			// Reserved too long ago: handing it out now could put its IDs
			// after higher ones of other processes. Its IDs become gaps.
			c.econ.gaps[gapRetired].Add(c.next.n)
			c.next = nil
		}
		if c.next != nil {
			c.installLocked(old)
			c.mu.Unlock()
			return nil
		}
		done := c.refillLocked()
		spare := len(c.spares) > 0
		c.mu.Unlock()
		if err := c.waitRefill(ctx, done, spare, old); err != nil || c.cur.Load() != old {
			return err
		}
		c.mu.Lock()
		err := c.refillErr
		ready := c.next != nil
		if !ready && err != nil {
			if c.closed.Load() {
				c.mu.Unlock()
				return ErrClosed // the refill was cancelled by Close
			}
			if errors.Is(err, failover.ErrNoHealthyShard) && c.fallbackLocked(old) {
				c.mu.Unlock()
				return nil
			}
			c.mu.Unlock()
			return err
		}
		c.mu.Unlock()
	}
}

// waitRefill waits for the refill done, or for ctx; with a spare at hand,
// a refill slower than fallbackPatience (plus the acknowledgement timeout:
// one whose replicas lag costs an AckTimeout, then the picker moves on) is
// stuck on a master that fails, and the spare is handed out meanwhile. A
// caller that cannot wait (the server hands out only what is buffered while
// no master answers its probes) gets the spare too.
func (c *Client) waitRefill(ctx context.Context, done <-chan struct{}, spare bool, old *segment) error {
	var patience <-chan time.Time
	if spare {
		t := time.NewTimer(fallbackPatience + cmp.Or(c.cfg.AckTimeout, DefaultAckTimeout))
		defer t.Stop()
		patience = t.C
	}
	for {
		select {
		case <-done:
			return nil
		case <-patience:
			patience = nil
			if c.tryFallback(old) {
				return nil
			}
		case <-ctx.Done():
			if c.tryFallback(old) {
				return nil
			}
			return ctx.Err()
		}
	}
}

// tryFallback hands out a spare in place of old if nothing else took its
// place meanwhile.
func (c *Client) tryFallback(old *segment) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur.Load() == old && c.next == nil && c.fallbackLocked(old)
}

// installLocked makes the prefetched segment current in place of old.
// Caller holds mu and has checked that c.next is set.
func (c *Client) installLocked(old *segment) {
	c.setAsideLocked(old)
	c.next.born = time.Now()
	c.cur.Store(c.next)
	c.scheduleRetireLocked(c.next)
	c.next = nil
}

// setAsideLocked stops old being current: a block is retired (its rest is a
// gap), a spare that still has IDs goes back to the spares for the next
// outage (a caller that loaded it just before may still take an ID from it:
// its lanes are atomic, so that is no repeat). Caller holds mu.
func (c *Client) setAsideLocked(old *segment) {
	switch {
	case old == nil:
	case old.fallback && old.done.Load() != allDone && !c.closed.Load():
		c.spares = append(c.spares, old)
	default:
		c.retireLocked(old, gapRetired)
	}
}

// fallbackLocked hands out a spare in place of old because no reservation
// succeeds, and keeps trying reservations in the background: the first that
// succeeds replaces the spare, which keeps what it has left for the next
// outage. It reports whether there was a spare.
func (c *Client) fallbackLocked(old *segment) bool {
	if len(c.spares) == 0 || c.closed.Load() {
		return false
	}
	// The largest first: spares stocked before the rate was known are
	// small, and each switch to a spare retires the last one.
	k := 0
	for i, sp := range c.spares {
		if sp.n > c.spares[k].n {
			k = i
		}
	}
	sp := c.spares[k]
	c.spares = slices.Delete(c.spares, k, k+1)
	c.setAsideLocked(old)
	sp.fallback, sp.born = true, time.Now()
	c.cur.Store(sp)
	if !c.recovering {
		c.recovering = true
		c.log.Warn("no reservation succeeds: handing out spare IDs, out of order until one does",
			"namespace", c.cfg.Namespace, "spare", sp.n, "spares_left", len(c.spares), "err", c.refillErr)
		c.wg.Add(1)
		go c.recover()
	}
	return true
}

// recover tries a reservation every recoverEvery while callers are served
// from a spare; the refill that succeeds replaces the spare (see refill).
func (c *Client) recover() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		cur := c.cur.Load()
		if c.closed.Load() || cur == nil || !cur.fallback {
			c.recovering = false
			c.mu.Unlock()
			return
		}
		done := c.refillLocked()
		c.mu.Unlock()
		select {
		case <-done:
		case <-c.ctx.Done():
		}
		t := time.NewTimer(recoverEvery)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
	}
}

// retireLocked stops old handing out IDs and accounts for it: what it
// handed out as issued, the rest as gaps of the reason given. Caller holds
// mu.
func (c *Client) retireLocked(old *segment, reason gapReason) {
	if old.retired {
		return
	}
	old.retired = true
	used := old.close()
	c.set.Issued(old.shard, uint64(used))
	c.econ.issued.Add(used)
	c.econ.gaps[reason].Add(old.n - used)
	if old.fallback {
		c.econ.outOfOrder.Add(used)
		return // a spare's rate is an outage's, not the callers'
	}
	if life := time.Since(old.born).Seconds(); !old.born.IsZero() && life > 0 && used > 0 {
		if r := float64(used) / life; c.rate == 0 {
			c.rate = r
		} else {
			c.rate = 0.7*c.rate + 0.3*r
		}
	}
}

// scheduleRetireLocked arranges for seg, now current, to stop handing out
// IDs at its retire time, even if nobody asks for IDs meanwhile (an idle
// client must not hand out an old block's IDs later). Caller holds mu.
func (c *Client) scheduleRetireLocked(seg *segment) {
	if seg.retire.IsZero() {
		return
	}
	if c.retirer != nil {
		c.retirer.Stop()
	}
	c.retirer = time.AfterFunc(time.Until(seg.retire), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.cur.Load() == seg && !c.closed.Load() {
			c.retireLocked(seg, gapRetired)
		}
	})
}

// startRefill reserves the next block in the background unless a refill is
// running or a block is already waiting.
func (c *Client) startRefill() {
	c.mu.Lock()
	if c.next == nil && c.prefetchUsefulLocked() {
		c.refillLocked()
	}
	c.mu.Unlock()
}

// prefetchUsefulLocked reports whether a block reserved now would still be
// usable when the current one runs out. At a low rate it would not: it
// would retire unused (a gap of a block, and a level it pulls every shard
// up to), so a quiet client reserves when it needs a block instead, one
// round trip per request.
func (c *Client) prefetchUsefulLocked() bool {
	cur := c.cur.Load()
	if !c.cfg.ordered() || c.rate <= 0 || cur == nil || cur.fallback {
		return true
	}
	left := max(cur.n-cur.taken(), 0)
	return float64(left+1)/c.rate < 0.8*c.cfg.retireAfter().Seconds()
}

func (c *Client) refillLocked() <-chan struct{} {
	if c.refilling {
		return c.refilled
	}
	if c.closed.Load() {
		// Close may be in wg.Wait: no wg.Add from here on.
		done := make(chan struct{})
		close(done)
		return done
	}
	c.refilling = true
	c.refilled = make(chan struct{})
	c.adaptLocked()
	size := c.blockSize
	c.wg.Add(1)
	go c.refill(size, c.refilled)
	return c.refilled
}

func (c *Client) refill(size int64, done chan struct{}) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	b, err := c.set.Reserve(ctx, size, -1, c.level)
	cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refilling = false
	c.refillErr = err
	if err == nil {
		sent := b.Sent
		c.order.add(sent, b.Hi, c.cfg)
		c.noteBlockLocked(b)
		if c.closed.Load() {
			c.econ.gaps[gapClosed].Add(b.Len())
		} else {
			n := b.Len()
			c.next = newSegment(b.Lo, n, b.Shard, int64(b.Shards), c.cfg.RefillAt)
			if c.cfg.ordered() {
				c.next.retire = sent.Add(c.cfg.retireAfter())
				c.next.retireAt = int64(c.next.retire.Sub(c.base))
			}
			if cur := c.cur.Load(); cur != nil && cur.fallback {
				// Reservations work again: back to fresh blocks, in order;
				// the rest of the spare waits for the next outage.
				c.log.Info("reservations succeed again: back from spare IDs", "namespace", c.cfg.Namespace,
					"out_of_order", c.econ.outOfOrder.Load())
				c.installLocked(cur)
			}
			c.stockSparesLocked()
		}
	} else if !errors.Is(err, context.Canceled) {
		// Once per spell: while no reservation succeeds (callers on a
		// spare), every retry would log the same.
		if cur := c.cur.Load(); cur == nil || !cur.fallback {
			c.log.Warn("refill failed", "namespace", c.cfg.Namespace, "err", err)
		}
	}
	close(done)
}

// adaptLocked sizes the next reservation so that a block lasts about
// BlockTarget at the rate IDs are handed out: the rate of whole blocks
// (smoothed: a block's first fifth alone is too noisy, since callers ask for
// batches, and with ordering every spike in size is a skip on the other
// shards), or, before the first block was used up, the current block's rate
// so far. It runs as each
// refill starts. The size grows at most 8-fold per refill (a short burst
// must not reserve a huge block) and follows a drop at once; both within
// Min/MaxBlockSize.
func (c *Client) adaptLocked() {
	rate := c.rate
	if cur := c.cur.Load(); cur != nil && !cur.born.IsZero() {
		used, age := cur.taken(), time.Since(cur.born)
		// The first block's rate so far, once it is old enough to mean
		// something: one request a moment after the block arrived is not a
		// rate of thousands a second.
		if r := float64(used) / age.Seconds(); used > 0 && age >= c.cfg.BlockTarget && rate == 0 {
			rate = r
		}
	}
	if rate <= 0 {
		return
	}
	want := int64(rate * c.cfg.BlockTarget.Seconds())
	c.blockSize = min(max(want, c.cfg.MinBlockSize), c.blockSize*8, c.cfg.MaxBlockSize)
}

// BlockSize is the size of the next reservation in segment mode.
func (c *Client) BlockSize() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blockSize
}

// Shards returns the health of every shard of the namespace, by index.
// IDsIssued counts what was handed out, including the block in use.
func (c *Client) Shards() []ShardStatus {
	rows := c.set.Status()
	c.mu.Lock()
	seg := c.cur.Load()
	live := seg != nil && !seg.retired
	c.mu.Unlock()
	if live {
		taken := seg.taken()
		for k := range rows {
			if rows[k].Index == seg.shard {
				rows[k].IDsIssued += uint64(taken)
			}
		}
	}
	return rows
}

// Healthy is the number of shards currently serving.
func (c *Client) Healthy() int { return c.set.Healthy() }

// Registry is the shard registry this client reports to: Config.Registry,
// or the client's own.
func (c *Client) Registry() *Registry { return c.reg }

// Close stops background work and, when the client opened it (Config.URL
// or Addrs, not Config.Cluster), the cluster connection with every go-redis
// client of it. IDs still buffered are dropped: they become gaps and are never
// handed out by anyone. Close is idempotent.
func (c *Client) Close() error {
	if !c.closed.CompareAndSwap(false, true) {
		return nil
	}
	// Refills start (wg.Add) under mu and not once closed is set: after this
	// lock no new one can start, so wg.Wait does not race with wg.Add.
	c.mu.Lock()
	if c.retirer != nil {
		c.retirer.Stop()
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.set.Close()
	c.mu.Lock()
	if seg := c.cur.Load(); seg != nil {
		c.retireLocked(seg, gapClosed)
	}
	if c.next != nil {
		c.econ.gaps[gapClosed].Add(c.next.n)
		c.next = nil
	}
	for _, sp := range c.spares {
		c.econ.gaps[gapClosed].Add(sp.n)
	}
	c.spares = nil
	c.mu.Unlock()
	if c.ownsCl {
		c.repairs.Stop()
		if sweeps, last := c.repairs.Report(); sweeps > 0 {
			c.log.Debug("repairs stopped", "sweeps", sweeps, "last_masters", last.Masters, "last_at", last.At)
		}
		return c.cl.Close()
	}
	return nil
}

// Discarded is how many reserved IDs were dropped unused (gaps), so far:
// Economy().Gaps().
func (c *Client) Discarded() int64 { return c.econ.snapshot().Gaps() }

// Economy reports what became of the ID space this client reserved; Issued
// includes what the current block handed out so far.
func (c *Client) Economy() Economy {
	c.mu.Lock()
	e := c.econ.snapshot()
	if seg := c.cur.Load(); seg != nil && !seg.retired {
		taken := seg.taken()
		e.Issued += taken
		if seg.fallback {
			e.OutOfOrder += taken
		}
	}
	c.mu.Unlock()
	return e
}

// noteBlockLocked counts what a shard's counter skipped before block b,
// against this client's previous block there. Caller holds mu.
func (c *Client) noteBlockLocked(b shard.Block) {
	if b.Shard < 0 || b.Shard >= len(c.lastHi) {
		return
	}
	prev := c.lastHi[b.Shard]
	if skip := b.Lo - 1 - prev; prev > 0 && skip > 0 {
		if b.Fence != shard.NotFenced {
			c.econ.fenced.Add(skip)
		} else {
			c.econ.levelled.Add(skip)
		}
	}
	c.lastHi[b.Shard] = max(prev, b.Hi)
}

// stockSparesLocked reserves spares in the background when what is held
// covers less than a quarter of HoldFor at the current rate: one block per
// shard, so that the counters, and with them the namespace's level, move by
// a share each rather than one shard by all of it. Caller holds mu.
func (c *Client) stockSparesLocked() {
	if c.cfg.HoldFor < 0 || c.sparing || c.closed.Load() || c.cfg.Strict {
		return
	}
	var held int64
	for _, sp := range c.spares {
		held += sp.n
	}
	want := int64(c.rate * c.cfg.HoldFor.Seconds())
	if held > 0 && 4*held >= want {
		return
	}
	n := len(c.lastHi)
	per := max((want-held+int64(n)-1)/int64(n), 1)
	per = min(per, c.cfg.MaxBlockSize)
	c.sparing = true
	c.wg.Add(1)
	go c.reserveSpares(per)
}

// reserveSpares reserves one spare block of per IDs on every shard it can.
// Spares stay out of the ordering state: they are handed out only when
// ordering is given up anyway.
func (c *Client) reserveSpares(per int64) {
	defer c.wg.Done()
	for i := range c.lastHi {
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		b, err := c.set.Reserve(ctx, per, i, nil)
		cancel()
		c.mu.Lock()
		if err == nil {
			c.noteBlockLocked(b)
			if c.closed.Load() {
				c.econ.gaps[gapClosed].Add(b.Len())
			} else {
				c.spares = append(c.spares, newSegment(b.Lo, b.Len(), b.Shard, int64(b.Shards), c.cfg.RefillAt))
			}
		}
		stop := err != nil || c.closed.Load()
		if stop {
			c.sparing = false
		}
		c.mu.Unlock()
		if stop {
			return // the next successful refill tries again
		}
	}
	c.mu.Lock()
	c.sparing = false
	c.mu.Unlock()
}
