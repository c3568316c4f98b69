package client

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// MaxBatch bounds NextN.
const MaxBatch = 1 << 20

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
	floor      int64      // sequence number every block starts above (Config.After)
	base       time.Time  // origin of clock()
	wg         sync.WaitGroup
	closed     atomic.Bool
	econ       economy
	coloc      colocationWatch
	unwatch    func() // stops the topology watch of coloc
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
	// A block of sequence numbers above After/N holds only IDs above After
	// (ID = seq*N + shard, shard < N).
	c.floor = cfg.After / int64(len(ns.Shards))
	c.order.settled = max(c.order.settled, c.floor)
	c.set = failover.NewSet(ns, c.reg, c.cl, cfg.Breaker, c.log, cfg.Observer)
	c.lastHi = make([]int64, len(ns.Shards))
	c.checkColocation(c.cl.Topology())
	c.unwatch = c.cl.WatchTopology(c.checkColocation)
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
		c.mu.Lock()
		c.order.add(b.Sent, b.Hi, c.cfg)
		c.noteBlockLocked(b)
		closed := c.closed.Load()
		if closed {
			// Closed while the reservation was out: Reserved, read after
			// Close, may have missed this block, so it is a gap.
			c.econ.gaps[gapClosed].Add(b.Len())
		}
		c.mu.Unlock()
		if closed {
			return shard.Block{}, ErrClosed
		}
		c.set.Issued(b.Shard, uint64(b.Len()))
		c.econ.issued.Add(b.Len())
	}
	return b, err
}

// Reserved is the highest ID of any block this client reserved (0: none):
// every ID it handed out, or will, is at or below it. Read after Close, it
// is what Config.After of the next client of the namespace in this process
// should be.
func (c *Client) Reserved() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var hi int64
	n := len(c.lastHi)
	for i, seq := range c.lastHi {
		if seq > 0 {
			hi = max(hi, shard.ID(seq, i, n))
		}
	}
	return hi
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
	c.unwatch()
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
		// A spare put back after an outage handed out part of it: that
		// part is issued (and out of order), only the rest is a gap.
		c.retireLocked(sp, gapClosed)
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
			e.OutOfOrder += taken - seg.counted // a spare used before counted that much already
		}
	}
	for _, sp := range c.spares {
		e.Issued += sp.taken() // what spares put back after an outage handed out
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
