package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
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
	// when it lives until used up. retired is set, under Client.mu, once it
	// was closed and accounted for.
	retire  time.Time
	retired bool
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
	cfg       Config
	cl        *cluster.Cluster
	ownsCl    bool
	repairs   *failover.Repairs // nil unless ownsCl
	reg       *failover.Registry
	set       *failover.Set
	log       *slog.Logger
	ctx       context.Context // background refills; cancelled by Close
	cancel    context.CancelFunc
	cur       atomic.Pointer[segment]
	mu        sync.Mutex // guards the fields below; never held across I/O
	next      *segment
	refilling bool
	refilled  chan struct{} // closed when the running refill ends
	refillErr error
	blockSize int64
	rate      float64    // IDs per second handed out, smoothed over whole blocks
	order     orderState // guarded by mu
	retirer   *time.Timer
	wg        sync.WaitGroup
	closed    atomic.Bool
	discarded atomic.Int64
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
	c := &Client{cfg: cfg, cl: cfg.Cluster, reg: cfg.Registry, log: cfg.Logger, blockSize: cfg.BlockSize}
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
		c.mu.Lock()
		c.order.add(b.Sent, b.Hi, c.cfg)
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
// prefetched one, or waits for a refill. Only arithmetic happens under the
// lock.
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
		if c.next != nil && !c.next.retire.IsZero() && !time.Now().Before(c.next.retire) {
			// Reserved too long ago: handing it out now could put its IDs
			// after higher ones of other processes. Its IDs become gaps.
			c.discarded.Add(c.next.n)
			c.next = nil
		}
		if c.next != nil {
			if old != nil {
				c.retireLocked(old)
			}
			c.next.born = time.Now()
			c.cur.Store(c.next)
			c.scheduleRetireLocked(c.next)
			c.next = nil
			c.mu.Unlock()
			return nil
		}
		done := c.refillLocked()
		c.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
		err := c.refillErr
		ready := c.next != nil
		c.mu.Unlock()
		if !ready && err != nil {
			if c.closed.Load() {
				return ErrClosed // the refill was cancelled by Close
			}
			return err
		}
	}
}

// retireLocked stops old handing out IDs and accounts for it: what it
// handed out as issued, the rest as gaps. Caller holds mu.
func (c *Client) retireLocked(old *segment) {
	if old.retired {
		return
	}
	old.retired = true
	used := old.close()
	c.set.Issued(old.shard, uint64(used))
	c.discarded.Add(old.n - used)
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
			c.retireLocked(seg)
		}
	})
}

// startRefill reserves the next block in the background unless a refill is
// running or a block is already waiting.
func (c *Client) startRefill() {
	c.mu.Lock()
	if c.next == nil {
		c.refillLocked()
	}
	c.mu.Unlock()
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
		if c.closed.Load() {
			c.discarded.Add(b.Len())
		} else {
			n := b.Len()
			c.next = newSegment(b.Lo, n, b.Shard, int64(b.Shards), c.cfg.RefillAt)
			if c.cfg.ordered() {
				c.next.retire = sent.Add(c.cfg.retireAfter())
			}
		}
	} else if !errors.Is(err, context.Canceled) {
		c.log.Warn("refill failed", "namespace", c.cfg.Namespace, "err", err)
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
		used, age := cur.taken(), time.Since(cur.born).Seconds()
		if r := float64(used) / age; used > 0 && age > 0 && rate == 0 {
			rate = r // the first block
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
		c.retireLocked(seg)
	}
	if c.next != nil {
		c.discarded.Add(c.next.n)
		c.next = nil
	}
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

// Discarded is how many reserved IDs were dropped unused (gaps), so far.
func (c *Client) Discarded() int64 { return c.discarded.Load() }
