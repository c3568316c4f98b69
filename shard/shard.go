package shard

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// growth follows how fast a shard's counter grows (all processes' blocks and
// levelling together), to size its lease in sequence numbers. A jump (a
// fence, or the level pulled up by another shard's fence) is a step, not a
// rate: each observation may raise the smoothed rate at most 4x, so one jump
// no more than doubles it, while a real rise in traffic still shows within a
// few blocks. Without the bound one fence made every lease MaxLease, and the
// next fence skipped that much on every shard.
type growth struct {
	mu     sync.Mutex
	lastHi int64
	lastAt time.Time
	own    int64   // sequence numbers this process reserved since lastAt
	rate   float64 // sequence numbers per second, smoothed
}

// observe notes a block of count ending at hi. The rate is measured over
// windows of at least growthWindow (the first over at least growthFirst):
// one large block in a short window (a client stocking its spares) is not a
// rate. A block that jumped (levelled up to the namespace's level, or
// restored above a ceiling) starts a new window: the jump is a lease, and
// counting it as traffic would size the next lease from the last one,
// growing it with every fault.
func (g *growth) observe(hi, count int64, now time.Time, jumped bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lastAt.IsZero() || jumped {
		g.lastHi, g.lastAt, g.own = max(hi, g.lastHi), now, 0
		return
	}
	g.own += count
	dt := now.Sub(g.lastAt).Seconds()
	if dt < growthWindow || (g.rate == 0 && dt < growthFirst) {
		return
	}
	if hi > g.lastHi {
		inst, own := float64(hi-g.lastHi)/dt, float64(g.own)/dt
		if g.rate == 0 {
			// No history to compare with: trust this process's own blocks,
			// not what the counter jumped meanwhile.
			g.rate = min(inst, own)
		} else {
			// Faster than this process's own blocks, at most doubling per
			// second: jumps come in series (a fence levels every shard one
			// after another) and a bound per observation alone compounds
			// over them (1.9x each).
			g.rate = min(0.7*g.rate+0.3*min(inst, 4*g.rate), max(g.rate*math.Exp2(min(dt, 4)), own))
		}
	}
	g.lastHi, g.lastAt, g.own = max(hi, g.lastHi), now, 0
}

// The windows of growth.observe, in seconds.
const (
	growthWindow = 0.1
	growthFirst  = 1.0
)

// lease is how far ahead of a block of count its ceiling is raised: the
// CeilingLease at the counter's rate, within MinLease (and 64 blocks) and
// MaxLease.
func (s *Shard) lease(count int64) int64 {
	s.growth.mu.Lock()
	rate := s.growth.rate
	s.growth.mu.Unlock()
	want := int64(min(rate*s.opt.CeilingLease.Seconds(), float64(MaxLease)))
	return min(max(want, 64*count, MinLease), MaxLease)
}

// Block is a reserved, replicated run of sequence numbers Lo..Hi of one shard.
type Block struct {
	Shard, Shards int
	Lo, Hi        int64
	Sent          time.Time // when the reservation that made it was sent
	Node          string    // master that reserved it
	Fence         FenceKind // whether this reservation restored the counter
	Replicas      int       // replicas that could be promoted in the master's place
	Acked         int       // replicas that confirmed it
}

// Len is the number of IDs in the block.
func (b Block) Len() int64 { return b.Hi - b.Lo + 1 }

// ID returns the k-th ID of the block (k from 0).
func (b Block) ID(k int64) int64 { return ID(b.Lo+k, b.Shard, b.Shards) }

// Config is what a shard is made of: where its keys are, which of how many
// shards it is, and the options of its namespace. Package namespace builds it
// from the namespace record.
type Config struct {
	// Router finds the masters of the keys (a *cluster.Cluster).
	Router Router
	// Options of the namespace; New applies their defaults.
	Options Options
	// Namespace is the namespace's name, for messages.
	Namespace string
	// Index is i, Shards is N: the shard hands out the IDs congruent to i
	// mod N.
	Index, Shards int
	// Start is the smallest ID of the namespace: where a counter created by
	// Create starts.
	Start int64
	// Key is the counter's key, CeilingKeys its ceiling copies' (on other
	// masters), from the namespace's layout.
	Key         string
	CeilingKeys []string
	// NoTraces: the scripts do not write the namespace into the trace set
	// of a key they create (see traces.go). Only for the negative controls
	// of tests; the zero value writes them (with AllDefences).
	NoTraces bool
	// NoRetrace: the scripts do not trace again a key they find without its
	// trace (a key migrated apart from its slot's trace set, which was then
	// lost; see traces.go). Only for the negative controls of tests.
	NoRetrace bool
	// BeforeCreate, if set, is called by Create before it writes the
	// counter and before each ceiling copy, with the key. Only for tests (a
	// creator paused between its reads and a write).
	BeforeCreate func(key string)
}

// New returns shard cfg.Index of cfg.Shards. It does no I/O.
func New(cfg Config) *Shard {
	opt := cfg.Options.WithDefaults()
	return &Shard{Index: cfg.Index, Key: cfg.Key, CeilingKeys: cfg.CeilingKeys,
		r: cfg.Router, opt: opt, name: cfg.Namespace, n: cfg.Shards, noTraces: cfg.NoTraces, noRetrace: cfg.NoRetrace, beforeCreate: cfg.BeforeCreate,
		maxSeq:  MaxSeq(cfg.Index, cfg.Shards, opt.MaxID),
		initSeq: firstSeq(cfg.Start, cfg.Index, cfg.Shards) - 1}
}

// restoreHint is what an operator can do about a shard with no trusted
// ceiling left.
const restoreHint = "Restore the masters' data, or give the namespace a new name"

// Bounds are the counter's value when the namespace was created and the
// largest sequence number the shard may hand out: what Usage counts between.
func (s *Shard) Bounds() (initSeq, maxSeq int64) { return s.initSeq, s.maxSeq }

// Shard is one shard of a namespace.
type Shard struct {
	Index        int
	Key          string   // counter key
	CeilingKeys  []string // the ceiling copies, on other masters
	r            Router
	opt          Options // with defaults
	name         string  // the namespace's, for messages
	n            int     // N
	noTraces     bool    // see Config.NoTraces
	noRetrace    bool    // see Config.NoRetrace
	beforeCreate func(key string)
	maxSeq       int64
	initSeq      int64        // the counter's value when the namespace is created
	highest      atomic.Int64 // highest sequence number this process reserved
	confirmed    atomic.Int64 // highest ceiling this process confirmed on every copy
	raising      atomic.Bool  // a raise ahead of need is running
	repairing    sync.Mutex   // one ceiling repair of this shard at a time
	growth       growth
	FenceCount   atomic.Int64
}

// Reserve reserves the next count sequence numbers of the shard, none at or
// below level (the namespace's level, for ordering). A block is returned only
// once the counter write and, when the block passes the ceiling registered in
// the counter, the raise of every ceiling copy are confirmed by replicas;
// otherwise the write is discarded and the error says why. count 0 reserves
// nothing: it checks the shard (and restores a counter whose history
// changed).
func (s *Shard) Reserve(ctx context.Context, count, level int64) (Block, error) {
	return s.ReserveAbove(ctx, count, func() int64 { return level })
}

// ReserveAbove is Reserve with the level asked for right before each
// attempt is sent (a restore makes more than one), so that the level is as
// of the reservation that counts; the block's Sent is that moment.
func (s *Shard) ReserveAbove(ctx context.Context, count int64, level func() int64) (Block, error) {
	b, err := s.reserveAbove(ctx, count, level)
	if errors.Is(err, errReclaimed) {
		// The counter now continues above the other history's claim: the
		// discarded block's range may have been handed out by that history,
		// a new one starts above its floor.
		b, err = s.reserveAbove(ctx, count, level)
	}
	return b, err
}

func (s *Shard) reserveAbove(ctx context.Context, count int64, level func() int64) (Block, error) {
	o := s.opt
	before := s.highest.Load()
	b, rep, err := s.reserve(ctx, count, level)
	if err != nil {
		return Block{}, err
	}
	if o.UnsafeDefences == NoDefences || count == 0 {
		return b, nil
	}
	if b.Lo <= before {
		return Block{}, fmt.Errorf("%w: %s returned %d..%d after this process already had %d; refusing the block", ErrCounterRegressed, s.Key, b.Lo, b.Hi, before)
	}
	for cur := s.highest.Load(); b.Hi > cur && !s.highest.CompareAndSwap(cur, b.Hi); cur = s.highest.Load() {
	}
	s.growth.observe(b.Hi, count, time.Now(), rep.Levelled || b.Fence != NotFenced)
	// Every ID handed out is at or below a ceiling confirmed on every copy.
	// The counter registers the confirmed ceiling, so a block under it needs
	// no write; the ceiling is raised a lease ahead, and again ahead of need
	// once half the lease is used, so a shard keeps serving while a copy's
	// master fails over.
	lease := s.lease(count)
	switch {
	case b.Hi > rep.Confirmed:
		if h := beforeRaise.Load(); h != nil {
			(*h)()
		}
		epoch, err := s.raiseFor(ctx, ceilingFor(b.Hi, lease, s.maxSeq), rep)
		if err != nil {
			return Block{}, fmt.Errorf("shard %d: ceiling not raised past %d (registered %d), block discarded: %w", s.Index, b.Hi, rep.Confirmed, err)
		}
		rep.Epoch = epoch // a claim for this history may have been adopted
		// The raise carried the counter's epoch, but a copy's epoch can
		// rewind with the copy: if the counter was restored by another
		// history since this block was reserved (this process stalled), and
		// the copies then rewound to before that claim, the raise was
		// accepted all the same. The counter itself tells: the block stands
		// only if its history is still the one that reserved it.
		if err := s.stillSame(ctx, rep); err != nil && !noStillSame.Load() {
			return Block{}, fmt.Errorf("shard %d: block %d..%d discarded: %w", s.Index, b.Lo, b.Hi, err)
		}
	case b.Hi > rep.Confirmed-lease/2 && s.raising.CompareAndSwap(false, true):
		_, _ = s.raiseFor(ctx, ceilingFor(b.Hi, lease, s.maxSeq), rep) // best effort: the block is covered
		s.raising.Store(false)
	}
	return b, nil
}

// stillSame checks that the counter still has the history and epoch of rep:
// a read (reserve.lua with nothing to reserve or register).
func (s *Shard) stillSame(ctx context.Context, rep reserveReply) error {
	a := s.args(0, 0)
	a.Confirmed = 0
	now, _, _, err := s.run(ctx, a)
	switch {
	case err != nil:
		return err
	case now.NeedsFence || now.ReplID != rep.ReplID || now.Epoch != rep.Epoch:
		return fmt.Errorf("%w: the counter %s moved from history %s epoch %d to %s epoch %d while its ceiling was raised",
			ErrFenced, s.Key, rep.ReplID, rep.Epoch, now.ReplID, now.Epoch)
	}
	return nil
}

// raiseFor raises the ceiling for a block of the counter history in rep. A
// copy that refuses the raise because a claim made for this very history
// (by a restorer that died or timed out before it restored) gave it a newer
// epoch is not a newer history: the counter adopts that epoch and the raise
// is tried once more. A claim for any other history fences this one.
// It returns the epoch the raise succeeded with.
func (s *Shard) raiseFor(ctx context.Context, to int64, rep reserveReply) (int64, error) {
	err := s.raise(ctx, to, rep.Epoch, rep.ReplID)
	var own *ownClaimError
	var other *otherClaimError
	switch {
	case errors.As(err, &other):
		return rep.Epoch, s.reclaim(ctx, rep, other)
	case !errors.As(err, &own):
		return rep.Epoch, err
	}
	a := s.args(0, 0)
	a.Floor, a.FloorEpoch, a.FloorFor = 0, own.epoch, rep.ReplID
	now, _, _, aerr := s.run(ctx, a)
	switch {
	case aerr != nil:
		return rep.Epoch, aerr
	case now.NeedsFence || now.ReplID != rep.ReplID || now.Epoch < own.epoch:
		return rep.Epoch, err
	}
	return now.Epoch, s.raise(ctx, to, now.Epoch, rep.ReplID)
}

// reclaim is the way out for a history whose raise was refused by a claim
// made for another identity (other): it restores its own counter as if its
// history had changed. The claim may be a zombie's (an old master restarted
// behind a blocked bus port, or the loser of two concurrent TAKEOVERs),
// whose own restore never completed: the live counter still has its
// history and would never fence again, and every raise would stay refused
// until its master's identity changed. A claim says nothing about whether
// its restore completed, and needs not: this is the restore of Invariant I
// (claimFloor claims every copy above every copy's epoch for this history,
// the floor is the highest trusted copy, the counter continues at or above
// it, written only while its node still has this identity and confirmed by
// its replicas), so whatever the other history handed out is below the
// floor. The block that met the refusal was reserved below the floor, maybe
// in a range the other history handed out: it is discarded (errReclaimed),
// never raised for. A genuinely older history (a stale master that still
// gets its writes confirmed) may also come this way; it too restarts above
// everything confirmed, and only costs the live one a restore.
func (s *Shard) reclaim(ctx context.Context, rep reserveReply, other *otherClaimError) error {
	if s.opt.UnsafeDefences != AllDefences || noReclaim.Load() {
		return other
	}
	floor, epoch, err := s.claimFloor(ctx, rep)
	if err != nil {
		return fmt.Errorf("%w (restoring above it: %w)", other, err)
	}
	a := s.args(0, 0)
	a.Floor, a.FloorEpoch, a.FloorFor = floor, epoch, rep.ReplID
	now, _, _, err := s.run(ctx, a)
	switch {
	case err != nil:
		return fmt.Errorf("%w (restoring above it: %w)", other, err)
	case now.NeedsFence || now.ReplID != rep.ReplID || now.Epoch < epoch:
		return fmt.Errorf("%w (its counter %s moved to history %s epoch %d while it was restored)", other, s.Key, now.ReplID, now.Epoch)
	}
	s.FenceCount.Add(1)
	return fmt.Errorf("%w: shard %d restored its counter %s at epoch %d above the claim of epoch %d for %s",
		errReclaimed, s.Index, s.Key, epoch, other.epoch, other.owner)
}

// errReclaimed: the block was discarded because its counter was just
// restored above another history's claim; a new reservation succeeds.
var errReclaimed = fmt.Errorf("%w; block discarded after its counter was restored above the claim", ErrFenced)

// noReclaim switches reclaim off: the negative control of its test.
var noReclaim atomic.Bool

// otherClaimError: a copy refused a raise because a claim for another
// history gave it a newer epoch.
type otherClaimError struct {
	epoch int64
	owner string
	err   error
}

func (e *otherClaimError) Error() string { return e.err.Error() }
func (e *otherClaimError) Unwrap() error { return e.err }

// ownClaimError: every copy that refused a raise was claimed for the
// raising history itself, with a newer epoch.
type ownClaimError struct {
	epoch int64
	err   error
}

func (e *ownClaimError) Error() string { return e.err.Error() }
func (e *ownClaimError) Unwrap() error { return e.err }

// ceilingFor is the ceiling a raise for a block ending at hi aims at: a lease
// ahead, rounded up to a multiple of the lease's power of two. The shards of
// a namespace advance together (ordering), so their ceilings land on the
// same multiple: when several counters restore above their ceilings in one
// failover, they restore to one value, and the namespace skips one lease,
// not one per shard.
func ceilingFor(hi, lease, maxSeq int64) int64 {
	grid := int64(1) << bits.Len64(uint64(lease-1))
	// Never more than MaxLease ahead: repairs rely on that bound.
	return min((hi+lease+grid-1)/grid*grid, hi+MaxLease, maxSeq)
}

// reserve runs reserve.lua, restoring the counter first when its history
// changed.
func (s *Shard) reserve(ctx context.Context, count int64, level func() int64) (Block, reserveReply, error) {
	args := s.args(count, 0)
	for attempt := 0; ; attempt++ {
		args.Level = min(max(level(), 0), s.maxSeq)
		sent := time.Now()
		rep, node, acked, err := s.run(ctx, args)
		if err != nil {
			return Block{}, rep, err
		}
		if !rep.NeedsFence {
			rep.Levelled = count > 0 && rep.Hi-count <= args.Level
			b := Block{Shard: s.Index, Shards: s.n, Lo: rep.Hi - count + 1, Hi: rep.Hi, Sent: sent, Node: node,
				Fence: rep.Fence, Replicas: rep.Promotable, Acked: acked}
			if count == 0 {
				b.Lo = rep.Hi
			}
			if rep.Fence != NotFenced {
				s.FenceCount.Add(1) // the counter moved in Redis whether or not this block survives
			}
			return b, rep, nil
		}
		if attempt >= 3 {
			return Block{}, rep, fmt.Errorf("shard %d: %s keeps changing history (now %s); try again", s.Index, s.Key, rep.ReplID)
		}
		floor, epoch, err := s.claimFloor(ctx, rep)
		if err != nil {
			return Block{}, rep, err
		}
		args.Floor, args.FloorEpoch, args.FloorFor = floor, epoch, rep.ReplID
	}
}

func (s *Shard) args(count, level int64) reserveArgs {
	a := reserveArgs{Shards: s.n, Count: count, Level: min(max(level, 0), s.maxSeq),
		MaxSeq: s.maxSeq, Floor: -1, Confirmed: s.confirmed.Load(), LegacyGap: -1, Trace: s.traceName(), NoRetrace: s.noRetrace}
	switch s.opt.UnsafeDefences {
	case LegacyDefences:
		a.LegacyGap = LegacyFenceGap
	case NoDefences:
		a.LegacyGap, a.Confirmed = 0, 0 // a changed history just carries on
	}
	return a
}

// run runs reserve.lua once and checks its reply and acknowledgement.
func (s *Shard) run(ctx context.Context, a reserveArgs) (reserveReply, string, int, error) {
	o := s.opt
	ack, err := runScript(ctx, s.r, reserveScript, withTrace(s.Key), o.waitFor(), o.AckTimeout.Milliseconds(), a.argv())
	if err != nil {
		return reserveReply{}, "", 0, s.classify(err)
	}
	rep, err := parseReserveReply(ack.Values, a.Count, s.maxSeq)
	if err != nil {
		return reserveReply{}, ack.Node, 0, fmt.Errorf("counter %s: %w", s.Key, err)
	}
	if rep.NeedsFence {
		return rep, ack.Node, ack.Acked, nil // nothing was written
	}
	if err := CheckAck(s.r, s.opt, ack); err != nil {
		return rep, ack.Node, ack.Acked, fmt.Errorf("shard %d: counter %s at %d discarded: %w", s.Index, s.Key, rep.Hi, err)
	}
	return rep, ack.Node, ack.Acked, nil
}

// classify turns the scripts' error replies into this package's errors.
func (s *Shard) classify(err error) error {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "SHARDSEQ_SHARDS"):
		f := strings.Fields(msg)
		stored := "?"
		if len(f) > 1 {
			stored = f[1]
		}
		return fmt.Errorf("%w: namespace %q has %s shards in Redis (counter %s) but this client is configured with %d; use %s shards, or a new namespace",
			ErrShardCountMismatch, s.name, stored, s.Key, s.n, stored)
	case strings.HasPrefix(msg, "SHARDSEQ_LATE"):
		return fmt.Errorf("%w: %s of namespace %q not written (this process stalled past the creation's deadline); open the namespace again",
			ErrCreationLate, strings.TrimSpace(strings.TrimPrefix(msg, "SHARDSEQ_LATE")), s.name)
	case strings.HasPrefix(msg, "SHARDSEQ_EXHAUSTED"):
		return fmt.Errorf("%w: shard %d of %q reached MaxID %d", ErrExhausted, s.Index, s.name, s.opt.MaxID)
	case strings.HasPrefix(msg, "WRONGTYPE"):
		return fmt.Errorf("%w: %s: %v", ErrBadRecord, s.Key, err)
	}
	return ClassifyNode(err)
}

// ClassifyNode turns the prelude's error replies (what every script checks
// about the node it runs on) into this package's errors.
func ClassifyNode(err error) error {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "SHARDSEQ_EVICTION"):
		return fmt.Errorf("%w: a master uses maxmemory-policy %s, which can delete shardseq's keys without a trace (and so repeat IDs); set it to noeviction or a volatile-* policy",
			ErrUnsafeRedis, strings.TrimSpace(strings.TrimPrefix(msg, "SHARDSEQ_EVICTION")))
	case strings.HasPrefix(msg, "SHARDSEQ_REPLICAS"):
		return fmt.Errorf("%w: a master refused CLUSTER REPLICAS (%s); grant the user +cluster|replicas: without the list, a promotable replica could be left out of the acknowledgement",
			ErrUnsafeRedis, strings.TrimSpace(strings.TrimPrefix(msg, "SHARDSEQ_REPLICAS")))
	case strings.HasPrefix(msg, "SHARDSEQ_REPLY"):
		return fmt.Errorf("%w: %v", ErrBadRecord, err)
	}
	return err
}
