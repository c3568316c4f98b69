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

// Defences selects how much of the protection against repeated IDs is on.
// Anything but AllDefences is unsafe and exists for negative controls: tests
// that must find duplicates, or they prove nothing.
type Defences int

const (
	// AllDefences is the default and the only safe choice.
	AllDefences Defences = iota
	// LegacyDefences is the behaviour before ceilings had identities: a
	// counter whose history changed jumps by LegacyFenceGap from its own
	// (possibly rewound) value, a missing counter restarts from any ceiling
	// copy plus the gap, replicas are counted by connected_slaves only, and
	// namespace records are repaired only when a client opens them.
	LegacyDefences
	// NoDefences is a naive INCR generator: no acknowledgement, no fence,
	// no ceiling, no regression check.
	NoDefences
)

func (d Defences) String() string {
	switch d {
	case AllDefences:
		return "all"
	case LegacyDefences:
		return "legacy"
	case NoDefences:
		return "none"
	}
	return fmt.Sprintf("Defences(%d)", int(d))
}

// Bounds and defaults of Options.
const (
	// DefaultAckTimeout bounds the WAIT for replicas.
	DefaultAckTimeout = 250 * time.Millisecond
	// MaxFenceGap bounds FenceGap (and keeps the script's doubles exact).
	MaxFenceGap int64 = 1 << 40
	// MinLease and MaxLease bound how far ahead of a block its ceiling is
	// raised. Every client's lease is at most MaxLease, which is what lets a
	// copy be repaired from its counter alone (see Shard.repairCeilings).
	// MinLease keeps a quiet shard from raising its ceiling on every
	// request (at one request a second it lasts over an hour); a failover
	// skips at most about two leases per shard, so it also bounds what a
	// failover costs a quiet namespace (N x 2 x 4096: under 100,000 IDs
	// for 12 shards). A busy shard's lease follows its rate.
	MinLease int64 = 1 << 12
	MaxLease int64 = 1 << 30
	// FirstLease is how far ahead of a new namespace's counters their
	// ceilings start, before any rate is known: MinLease. A namespace that
	// is busy at once raises its ceilings within its first blocks (64
	// blocks ahead, then its rate's CeilingLease).
	FirstLease = MinLease
	// LegacyFenceGap is the jump of LegacyDefences.
	LegacyFenceGap int64 = 1 << 32
	// DefaultCeilingLease is how long a shard can serve without raising
	// its ceiling: while a ceiling copy's master fails over and its
	// replacement has no replica to confirm a raise yet. With Redis's
	// default cluster-node-timeout of 15 s such a master is out for about
	// 17 s (detection, election, the old master's resync as a replica), so
	// a minute is margin of more than three times; a failover of the
	// counter's own master skips up to a lease of this shard's traffic.
	DefaultCeilingLease = time.Minute
)

// Options are the defences of a namespace. The zero value is the safe default.
type Options struct {
	// AckReplicas is how many replicas must confirm a write before it is
	// relied on. 0 (default): every replica that could be promoted (the
	// connected ones and those the cluster lists as not failed), and at
	// least one; k > 0: at least k. -1 skips the acknowledgement (unsafe).
	AckReplicas int
	// AckTimeout bounds the WAIT for replicas. Default DefaultAckTimeout,
	// at most 10s.
	AckTimeout time.Duration
	// FenceGap is how far above its floor a counter whose history changed
	// restarts. The floor is a ceiling confirmed before any ID below it was
	// handed out, so nothing more is needed: default 0, at most MaxFenceGap.
	FenceGap int64
	// CeilingLease is how long a raise of a shard's ceiling should last at
	// the rate its counter grows: it is raised that far ahead of a block's
	// end, so ceilings are written rarely and a shard keeps serving while a
	// ceiling copy's master fails over (detection, promotion and the resync
	// of a replica, which WAIT needs). A restored counter skips up to a
	// lease. Default DefaultCeilingLease; the lease is at least MinLease
	// (and 64 blocks) and at most MaxLease sequence numbers.
	CeilingLease time.Duration
	// MaxID is the largest ID handed out. Default and upper bound
	// DefaultMaxID (2^53-1): IDs stay exact in JavaScript, and so does the
	// arithmetic of the reservation script (Lua numbers are doubles).
	MaxID int64
	// Defences: AllDefences unless a negative control says otherwise.
	Defences Defences
}

func (o Options) withDefaults() Options {
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.MaxID == 0 {
		o.MaxID = DefaultMaxID
	}
	if o.CeilingLease == 0 {
		o.CeilingLease = DefaultCeilingLease
	}
	if o.Defences == NoDefences {
		o.AckReplicas = -1
	}
	return o
}

// Validate reports the first option out of its bounds.
func (o Options) Validate() error {
	switch {
	case o.AckReplicas < -1:
		return fmt.Errorf("AckReplicas %d: want -1, 0 or a replica count", o.AckReplicas)
	case o.AckTimeout < 0 || o.AckTimeout > 10*time.Second:
		return fmt.Errorf("AckTimeout %v: want 0 (default %v) up to 10s", o.AckTimeout, DefaultAckTimeout)
	case o.FenceGap < 0 || o.FenceGap > MaxFenceGap:
		return fmt.Errorf("FenceGap %d: want 0 (default) up to 2^40", o.FenceGap)
	case o.CeilingLease < 0 || o.CeilingLease > 24*time.Hour:
		return fmt.Errorf("CeilingLease %v: want 0 (default %v) up to 24h", o.CeilingLease, DefaultCeilingLease)
	case o.MaxID < 0 || o.MaxID > DefaultMaxID:
		return fmt.Errorf("MaxID %d: want 0 (default 2^53-1) or a positive value up to 2^53-1", o.MaxID)
	case o.Defences < AllDefences || o.Defences > NoDefences:
		return fmt.Errorf("Defences %d: want AllDefences, LegacyDefences or NoDefences", o.Defences)
	}
	return nil
}

// waitFor is the replica count sent with WAIT: 0 means every live replica
// of the topology, -1 none.
func (o Options) waitFor() int {
	if o.Defences == NoDefences {
		return -1
	}
	return o.AckReplicas
}

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
// rate.
func (g *growth) observe(hi, count int64, now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.lastAt.IsZero() {
		g.lastHi, g.lastAt = hi, now
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
	want := int64(min(rate*s.ns.opt.CeilingLease.Seconds(), float64(MaxLease)))
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

// Shard is one shard of a namespace.
type Shard struct {
	Index       int
	Key         string   // counter key
	CeilingKeys []string // the ceiling copies, on other masters
	maxSeq      int64
	initSeq     int64 // the counter's value when the namespace is created
	ns          *Namespace
	highest     atomic.Int64 // highest sequence number this process reserved
	confirmed   atomic.Int64 // highest ceiling this process confirmed on every copy
	raising     atomic.Bool  // a raise ahead of need is running
	repairing   sync.Mutex   // one ceiling repair of this shard at a time
	growth      growth
	FenceCount  atomic.Int64
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
	o := s.ns.opt
	before := s.highest.Load()
	b, rep, err := s.reserve(ctx, count, level)
	if err != nil {
		return Block{}, err
	}
	if o.Defences == NoDefences || count == 0 {
		return b, nil
	}
	if b.Lo <= before {
		return Block{}, fmt.Errorf("%w: %s returned %d..%d after this process already had %d; refusing the block", ErrCounterRegressed, s.Key, b.Lo, b.Hi, before)
	}
	for cur := s.highest.Load(); b.Hi > cur && !s.highest.CompareAndSwap(cur, b.Hi); cur = s.highest.Load() {
	}
	s.growth.observe(b.Hi, count, time.Now())
	// Every ID handed out is at or below a ceiling confirmed on every copy.
	// The counter registers the confirmed ceiling, so a block under it needs
	// no write; the ceiling is raised a lease ahead, and again ahead of need
	// once half the lease is used, so a shard keeps serving while a copy's
	// master fails over.
	lease := s.lease(count)
	switch {
	case b.Hi > rep.Mirrored:
		epoch, err := s.raiseFor(ctx, ceilingFor(b.Hi, lease, s.maxSeq), rep)
		if err != nil {
			return Block{}, fmt.Errorf("shard %d: ceiling not raised past %d (registered %d), block discarded: %w", s.Index, b.Hi, rep.Mirrored, err)
		}
		rep.Epoch = epoch // a claim for this history may have been adopted
		// The raise carried the counter's epoch, but a copy's epoch can
		// rewind with the copy: if the counter was restored by another
		// history since this block was reserved (this process stalled), and
		// the copies then rewound to before that claim, the raise was
		// accepted all the same. The counter itself tells: the block stands
		// only if its history is still the one that reserved it.
		if err := s.stillSame(ctx, rep); err != nil {
			return Block{}, fmt.Errorf("shard %d: block %d..%d discarded: %w", s.Index, b.Lo, b.Hi, err)
		}
	case b.Hi > rep.Mirrored-lease/2 && s.raising.CompareAndSwap(false, true):
		_, _ = s.raiseFor(ctx, ceilingFor(b.Hi, lease, s.maxSeq), rep) // best effort: the block is covered
		s.raising.Store(false)
	}
	return b, nil
}

// stillSame checks that the counter still has the history and epoch of rep:
// a read (reserve.lua with nothing to reserve or register).
func (s *Shard) stillSame(ctx context.Context, rep reserveReply) error {
	a := s.args(0, 0)
	a.Ceiling = 0
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
	if !errors.As(err, &own) {
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
			b := Block{Shard: s.Index, Shards: s.ns.Layout.Shards, Lo: rep.Hi - count + 1, Hi: rep.Hi, Sent: sent, Node: node,
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
	a := reserveArgs{Shards: s.ns.Layout.Shards, Count: count, Level: min(max(level, 0), s.maxSeq),
		MaxSeq: s.maxSeq, Floor: -1, Ceiling: s.confirmed.Load(), LegacyGap: -1}
	switch s.ns.opt.Defences {
	case LegacyDefences:
		a.LegacyGap = LegacyFenceGap
	case NoDefences:
		a.LegacyGap, a.Ceiling = 0, 0 // a changed history just carries on
	}
	return a
}

// run runs reserve.lua once and checks its reply and acknowledgement.
func (s *Shard) run(ctx context.Context, a reserveArgs) (reserveReply, string, int, error) {
	o := s.ns.opt
	ack, err := runAcked(ctx, s.ns.r, reserveScript, s.Key, o.waitFor(), o.AckTimeout.Milliseconds(), a.argv())
	if err != nil {
		return reserveReply{}, "", 0, s.classify(err)
	}
	rep, err := parseReserveReply(ack.values, a.Count, s.maxSeq)
	if err != nil {
		return reserveReply{}, ack.node, 0, fmt.Errorf("counter %s: %w", s.Key, err)
	}
	if rep.NeedsFence {
		return rep, ack.node, ack.acked, nil // nothing was written
	}
	if err := s.ns.checkAck(ack); err != nil {
		return rep, ack.node, ack.acked, fmt.Errorf("shard %d: counter %s at %d discarded: %w", s.Index, s.Key, rep.Hi, err)
	}
	return rep, ack.node, ack.acked, nil
}

// claimFloor is the restore of a counter whose history changed (stale is the
// reserve reply that said so): it claims every ceiling copy for the counter's
// new identity with an epoch above every copy's, after which no older
// history can raise them (a raise carries its counter's epoch, and a copy
// refuses any below its own), and returns the highest value a trusted copy
// held when claimed. Every ID any history handed out is at or below a
// ceiling that was confirmed on every copy first, so it is at or below that
// value. The claim starts one above the counter's (possibly rewound) epoch
// and moves above any copy that refuses it.
func (s *Shard) claimFloor(ctx context.Context, stale reserveReply) (floor, epoch int64, err error) {
	if s.ns.opt.Defences == LegacyDefences {
		return s.legacyFloor(ctx)
	}
	epoch = stale.Epoch + 1
	for attempt := 0; attempt < 3; attempt++ {
		reps, errs := s.onCopies(ctx, ceilingArgs{Op: ceilClaim, Epoch: epoch, Expect: stale.ReplID})
		floor, newer, claimed := int64(-1), int64(0), 0
		for c, r := range reps {
			switch {
			case errs[c] != nil:
			case r.Stale:
				newer = max(newer, r.Epoch)
			default:
				claimed++
				if r.Trusted {
					floor = max(floor, r.V)
				}
			}
		}
		if newer > 0 {
			// Someone claimed with a newer epoch meanwhile: claim above it.
			epoch = newer + 1
			continue
		}
		if floor < 0 {
			return 0, 0, fmt.Errorf("%w: shard %d of %q: the counter %s lost its history (now %s) and none of its ceiling copies %v is both reachable and trusted (claimed %d): %w. %s",
				ErrCeilingLost, s.Index, s.ns.Name, s.Key, stale.ReplID, s.CeilingKeys, claimed, errors.Join(errs...), s.ns.repairHint())
		}
		return min(floor+s.ns.opt.FenceGap, s.maxSeq), epoch, nil
	}
	return 0, 0, fmt.Errorf("shard %d: ceiling copies of %s keep being claimed by newer epochs; try again", s.Index, s.Key)
}

// legacyFloor is LegacyDefences' restore: any copy's value, trusted or not,
// plus the old gap.
func (s *Shard) legacyFloor(ctx context.Context) (int64, int64, error) {
	reps, errs := s.onCopies(ctx, ceilingArgs{Op: ceilRead})
	for c, r := range reps {
		if errs[c] == nil && r.V >= 0 {
			return min(r.V+LegacyFenceGap, s.maxSeq), 0, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: %s and its ceilings %v are all missing", ErrCounterMissing, s.Key, s.CeilingKeys)
}

// raise raises every ceiling copy to at least to for the counter's epoch
// (of the history counter). It succeeds only if every copy confirmed it.
func (s *Shard) raise(ctx context.Context, to, epoch int64, counter string) error {
	op := ceilRaise
	if s.ns.opt.Defences == LegacyDefences {
		op = ceilLegacyRaise
	}
	reps, errs := s.onCopies(ctx, ceilingArgs{Op: op, Epoch: epoch, Value: to})
	var suspect bool
	var stale []ceilingReply
	for c, r := range reps {
		switch {
		case errs[c] != nil:
			return fmt.Errorf("ceiling %s: %w", s.CeilingKeys[c], errs[c])
		case r.Stale:
			stale = append(stale, r)
		case r.V < to:
			return fmt.Errorf("%w: ceiling %s at %d after a raise to %d", ErrBadRecord, s.CeilingKeys[c], r.V, to)
		}
		suspect = suspect || !r.Trusted
	}
	if len(stale) > 0 {
		err := fmt.Errorf("%w: ceiling copies of %s belong to epoch %d, this counter has %d: another history claimed them",
			ErrFenced, s.Key, stale[0].Epoch, epoch)
		newest, own := int64(0), counter != ""
		for _, r := range stale {
			newest = max(newest, r.Epoch)
			own = own && r.Owner == counter
		}
		if own {
			return &ownClaimError{epoch: newest, err: err}
		}
		return err
	}
	for cur := s.confirmed.Load(); to > cur && !s.confirmed.CompareAndSwap(cur, to); cur = s.confirmed.Load() {
	}
	if suspect && s.ns.opt.Defences == AllDefences {
		// A copy's master changed history since the copy was last trusted:
		// make it trusted again now rather than at the next sweep.
		go s.repairSoon()
	}
	return nil
}

func (s *Shard) repairSoon() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = s.repairCeilings(ctx)
}

// onCopies runs ceiling.lua on every copy at once (they sit on different
// masters) and returns each copy's reply or error.
func (s *Shard) onCopies(ctx context.Context, a ceilingArgs) ([]ceilingReply, []error) {
	reps := make([]ceilingReply, len(s.CeilingKeys))
	errs := make([]error, len(s.CeilingKeys))
	wait := s.ns.opt.AckTimeout.Milliseconds()
	var wg sync.WaitGroup
	for c, key := range s.CeilingKeys {
		wg.Go(func() {
			ack, err := runAcked(ctx, s.ns.r, ceilingScript, key, s.ns.opt.waitFor(), wait, a.argv())
			if err != nil {
				errs[c] = s.classify(err)
				return
			}
			r, err := parseCeilingReply(ack.values)
			if err != nil {
				errs[c] = fmt.Errorf("ceiling %s: %w", key, err)
				return
			}
			reps[c] = r
			if a.Op != ceilRead && !r.Stale {
				errs[c] = s.ns.checkAck(ack)
			}
		})
	}
	wg.Wait()
	return reps, errs
}

// RepairResult says what a repair of one shard did.
type RepairResult struct {
	Restored bool // the counter's history had changed; it was restored
	Copies   int  // ceiling copies made trusted again
}

// Repair checks one shard after a master changed history: it restores the
// counter if its history changed, and rewrites ceiling copies that are
// missing or no longer trusted. It writes nothing when nothing changed.
func (s *Shard) Repair(ctx context.Context) (RepairResult, error) {
	return s.repairCeilings(ctx)
}

// repairCeilings makes every ceiling copy trusted again. A copy may be made
// trusted only with a value at or above every ceiling ever confirmed: a
// trusted copy holds that already; with no copy trusted, the counter's value
// plus MaxLease does, since every ceiling was raised from a block at or below
// the counter and no lease exceeds MaxLease.
func (s *Shard) repairCeilings(ctx context.Context) (RepairResult, error) {
	var res RepairResult
	if s.ns.opt.Defences != AllDefences {
		return res, nil
	}
	s.repairing.Lock()
	defer s.repairing.Unlock()
	b, rep, err := s.reserve(ctx, 0, func() int64 { return 0 })
	if err != nil {
		return res, err
	}
	res.Restored = b.Fence != NotFenced
	reps, errs := s.onCopies(ctx, ceilingArgs{Op: ceilRead})
	value, trusted := rep.Mirrored, false
	for c, r := range reps {
		if errs[c] == nil && r.Trusted {
			value, trusted = max(value, r.V), true
		}
	}
	if !trusted {
		value = max(value, min(rep.Hi+MaxLease, s.maxSeq))
	}
	var failed []error
	for c, r := range reps {
		if errs[c] != nil || r.Trusted {
			failed = append(failed, errs[c])
			continue
		}
		ack, err := s.ns.acked(ctx, ceilingScript, s.CeilingKeys[c], s.ns.opt.AckTimeout.Milliseconds(),
			ceilingArgs{Op: ceilRepair, Epoch: rep.Epoch, Value: value, Expect: r.ReplID}.argv())
		if err == nil {
			var got ceilingReply
			switch got, err = parseCeilingReply(ack.values); {
			case err != nil:
			case got.Stale:
				err = fmt.Errorf("%w: ceiling %s belongs to epoch %d, the counter has %d", ErrFenced, s.CeilingKeys[c], got.Epoch, rep.Epoch)
			case got.Changed:
				err = fmt.Errorf("ceiling %s: its master changed history again while it was repaired; try again", s.CeilingKeys[c])
			}
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("ceiling %s: %w", s.CeilingKeys[c], err))
			continue
		}
		res.Copies++
	}
	return res, errors.Join(failed...)
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
			ErrShardCountMismatch, s.ns.Name, stored, s.Key, s.ns.Layout.Shards, stored)
	case strings.HasPrefix(msg, "SHARDSEQ_EXHAUSTED"):
		return fmt.Errorf("%w: shard %d of %q reached MaxID %d", ErrExhausted, s.Index, s.ns.Name, s.ns.opt.MaxID)
	case strings.HasPrefix(msg, "WRONGTYPE"):
		return fmt.Errorf("%w: %s: %v", ErrBadRecord, s.Key, err)
	}
	return classifyNode(err)
}

// classifyNode turns the prelude's error replies (what every script checks
// about the node it runs on) into this package's errors.
func classifyNode(err error) error {
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
