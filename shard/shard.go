package shard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// Options are the defences of a namespace. The zero value is the safe default.
type Options struct {
	// AckReplicas is how many replicas must confirm a write before its block
	// is used. 0 (default): every replica the master has, and at least one;
	// k > 0: at least k. -1 skips the acknowledgement: a failover can then
	// lose blocks that were handed out (unsafe; tests and benchmarks only).
	AckReplicas int
	// AckTimeout bounds the WAIT for replicas. Default DefaultAckTimeout.
	AckTimeout time.Duration
	// FenceGap is how far a counter jumps when the node serving it has
	// another replication history than the one that last advanced it, and
	// what a counter restored from its mirror is put ahead by. It must exceed
	// every sequence number that can have been acknowledged and lost.
	// Default 1<<32; -1 switches fencing off (unsafe; tests only).
	FenceGap int64
	// MirrorLease is how far ahead of the highest reserved sequence number
	// the high-water-mark mirror is raised (at least 64 blocks), so that it is
	// written about once per lease instead of once per block, and a shard
	// keeps serving while its mirror's master fails over: a shard can hand
	// out up to a lease while its mirror cannot be written. The lease costs
	// no IDs; only a counter restored from its mirror skips up to a lease
	// (plus the fence gap). Default 1<<30.
	MirrorLease int64
	// MaxID is the largest ID handed out. Default and upper bound
	// DefaultMaxID (2^53-1): IDs stay exact in JavaScript, and so does the
	// arithmetic of the reservation script (Lua numbers are doubles).
	MaxID int64
	// Unsafe switches off the mirror and the regression check as well as
	// the fence and acknowledgement: the naive generator, for negative
	// controls that must find duplicates.
	Unsafe bool
}

func (o Options) withDefaults() Options {
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.FenceGap == 0 {
		o.FenceGap = 1 << 32
	}
	if o.MirrorLease == 0 {
		o.MirrorLease = 1 << 30
	}
	if o.MaxID == 0 {
		o.MaxID = DefaultMaxID
	}
	if o.Unsafe {
		o.AckReplicas, o.FenceGap = -1, -1
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
	case o.FenceGap < -1:
		return fmt.Errorf("FenceGap %d: want -1, 0 (default 2^32) or a positive gap", o.FenceGap)
	case o.MirrorLease < 0:
		return fmt.Errorf("MirrorLease %d: want 0 (default 2^30) or positive", o.MirrorLease)
	case o.MaxID < 0 || o.MaxID > DefaultMaxID:
		return fmt.Errorf("MaxID %d: want 0 (default 2^53-1) or a positive value up to 2^53-1", o.MaxID)
	}
	return nil
}

// Block is a reserved, replicated run of sequence numbers Lo..Hi of one shard.
type Block struct {
	Shard, Shards int
	Lo, Hi        int64
	Node          string // master that reserved it
	Fenced        int    // 0 none, 1 node history changed, 2 restored from the mirror
	Replicas      int    // replicas the master had
	Acked         int    // replicas that confirmed it
	mirrored      int64  // highest confirmed mirror value the counter knew
}

// Len is the number of IDs in the block.
func (b Block) Len() int64 { return b.Hi - b.Lo + 1 }

// ID returns the k-th ID of the block (k from 0).
func (b Block) ID(k int64) int64 { return ID(b.Lo+k, b.Shard, b.Shards) }

// Shard is one shard of a namespace.
type Shard struct {
	Index      int
	Key        string // counter key
	MirrorKey  string
	maxSeq     int64
	ns         *Namespace
	highest    atomic.Int64 // highest sequence number this process reserved
	ceiling    atomic.Int64 // mirror value this process knows to be replicated
	raisedAt   atomic.Int64 // unix nanos of the last confirmed mirror write
	FenceCount atomic.Int64
}

// Reserve reserves the next count sequence numbers of the shard. A block is
// returned only once the counter write and, when needed, the mirror raise are
// confirmed by the replicas; otherwise the write is discarded and the error
// says why (ErrNotReplicated, a network error, CLUSTERDOWN...).
func (s *Shard) Reserve(ctx context.Context, count int64) (Block, error) {
	o := s.ns.opt
	before := s.highest.Load()
	b, err := s.reserve(ctx, count, "")
	if errors.Is(err, errEmpty) {
		b, err = s.restore(ctx, count)
	}
	if err != nil {
		return Block{}, err
	}
	if !o.Unsafe && b.Lo <= before {
		return Block{}, fmt.Errorf("%w: %s returned %d..%d after this process already had %d; refusing the block", ErrCounterRegressed, s.Key, b.Lo, b.Hi, before)
	}
	for cur := s.highest.Load(); b.Hi > cur && !s.highest.CompareAndSwap(cur, b.Hi); cur = s.highest.Load() {
	}
	// Every ID handed out must be at or below the replicated mirror. The
	// counter tells every client the highest confirmed mirror value, so the
	// mirror is written about once per lease for all clients together, and
	// raised ahead of need (best effort) once half the lease is used, so that
	// a shard keeps serving while its mirror's master fails over.
	lease := max(o.MirrorLease, 64*count)
	s.learnCeiling(b.mirrored)
	if ceiling := s.ceiling.Load(); !o.Unsafe && b.Hi > ceiling {
		if err := s.raiseMirror(ctx, b.Hi+lease, o.AckTimeout.Milliseconds()); err != nil {
			return Block{}, fmt.Errorf("shard %d: mirror not raised past %d (known ceiling %d), block discarded: %w", s.Index, b.Hi, ceiling, err)
		}
	} else if last := s.raisedAt.Load(); !o.Unsafe && b.Hi > ceiling-lease/2 && s.raisedAt.CompareAndSwap(last, time.Now().UnixNano()) {
		_ = s.raiseMirror(ctx, b.Hi+lease, o.AckTimeout.Milliseconds())
	} else if last := s.raisedAt.Load(); !o.Unsafe && time.Since(time.Unix(0, last)) > mirrorRefresh &&
		s.raisedAt.CompareAndSwap(last, time.Now().UnixNano()) {
		// The mirror is also rewritten once per mirrorRefresh, so that a
		// mirror lost with its own master's data is back within a second.
		// The block is covered already; a failed refresh only means the
		// mirror's master is down right now, which must not stop this shard.
		// The CAS lets one caller a second try it.
		_ = s.raiseMirror(ctx, s.ceiling.Load(), o.AckTimeout.Milliseconds())
	}
	return b, nil
}

var errEmpty = errors.New("shard: counter missing")

// mirrorRefresh bounds how long a mirror lost with its master stays missing.
const mirrorRefresh = time.Second

func (s *Shard) reserve(ctx context.Context, count int64, floor string) (Block, error) {
	o := s.ns.opt
	rep, err := runAcked(ctx, s.ns.r, reserveScript, s.Key, o.AckReplicas, o.AckTimeout.Milliseconds(),
		s.ns.Layout.Shards, count, o.FenceGap, floor, s.maxSeq, "", s.ceiling.Load())
	if err != nil {
		return Block{}, s.classify(err)
	}
	hi, fenced, replicas, mirrored, err := parseReserveReply(rep.values, count, s.maxSeq)
	if err != nil {
		return Block{}, fmt.Errorf("counter %s: %w", s.Key, err)
	}
	b := Block{Shard: s.Index, Shards: s.ns.Layout.Shards, Lo: hi - count + 1, Hi: hi, Node: rep.node,
		Fenced: int(fenced), Replicas: int(replicas), Acked: rep.acked, mirrored: mirrored}
	if b.Fenced != 0 {
		// The jump happened in Redis whether or not this block survives.
		s.FenceCount.Add(1)
	}
	if err := s.ns.checkAck(rep.node, int(replicas), rep.acked); err != nil {
		return Block{}, fmt.Errorf("shard %d: block %d..%d discarded: %w", s.Index, b.Lo, b.Hi, err)
	}
	return b, nil
}

// parseReserveReply checks the reply of reserve.lua before anything in it is
// used: a block that is not exactly what was asked for is never handed out.
func parseReserveReply(values []any, count, maxSeq int64) (hi, fenced, replicas, mirrored int64, err error) {
	if len(values) != 5 {
		return 0, 0, 0, 0, fmt.Errorf("%w: reserve reply has %d values, want 5", ErrBadRecord, len(values))
	}
	hi, err1 := asInt(values[0])
	fenced, err2 := asInt(values[1])
	replicas, err3 := asInt(values[2])
	mirrored, err4 := asInt(values[4])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return 0, 0, 0, 0, err
	}
	switch {
	case hi < count || hi > maxSeq:
		return 0, 0, 0, 0, fmt.Errorf("%w: counter at %d for a block of %d (largest sequence %d)", ErrBadRecord, hi, count, maxSeq)
	case fenced < 0 || fenced > 2:
		return 0, 0, 0, 0, fmt.Errorf("%w: fence flag %d", ErrBadRecord, fenced)
	case replicas < 0 || mirrored < 0:
		return 0, 0, 0, 0, fmt.Errorf("%w: replicas %d, mirrored %d", ErrBadRecord, replicas, mirrored)
	}
	return hi, fenced, replicas, mirrored, nil
}

// restore handles a counter that is missing although the namespace exists:
// its master came back without its data. The counter restarts from its mirror,
// read fresh from the other master, plus the fence gap.
func (s *Shard) restore(ctx context.Context, count int64) (Block, error) {
	_, node, err := s.ns.r.MasterForKey(s.MirrorKey)
	if err != nil {
		return Block{}, err
	}
	v, err := node.Get(ctx, s.MirrorKey).Result()
	if err != nil {
		if err.Error() == "redis: nil" {
			return Block{}, fmt.Errorf("%w: %s and its mirror %s are both missing; two masters lost their data. Set the counter (HSET %s seq <past the last issued sequence>) or use a new namespace", ErrCounterMissing, s.Key, s.MirrorKey, s.Key)
		}
		return Block{}, err
	}
	if _, err := strconv.ParseInt(v, 10, 64); err != nil {
		return Block{}, fmt.Errorf("%w: mirror %s holds %q", ErrBadRecord, s.MirrorKey, v)
	}
	return s.reserve(ctx, count, v)
}

func (s *Shard) raiseMirror(ctx context.Context, to, waitMillis int64) error {
	rep, err := runAcked(ctx, s.ns.r, raiseScript, s.MirrorKey, s.ns.opt.AckReplicas, waitMillis, to)
	if err != nil {
		return err
	}
	if len(rep.values) != 2 {
		return fmt.Errorf("%w: raise reply %v", ErrBadRecord, rep.values)
	}
	got, err := asInt(rep.values[0])
	if err != nil {
		return err
	}
	replicas, err := asInt(rep.values[1])
	if err != nil {
		return err
	}
	if err := s.ns.checkAck(rep.node, int(replicas), rep.acked); err != nil {
		return err
	}
	s.learnCeiling(got)
	s.raisedAt.Store(time.Now().UnixNano())
	return nil
}

// learnCeiling records a mirror value known to be confirmed by replicas.
func (s *Shard) learnCeiling(v int64) {
	for cur := s.ceiling.Load(); v > cur && !s.ceiling.CompareAndSwap(cur, v); cur = s.ceiling.Load() {
	}
}

// classify turns the script's error replies into this package's errors.
func (s *Shard) classify(err error) error {
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "SHARDSEQ_EMPTY"):
		return errEmpty
	case strings.HasPrefix(msg, "SHARDSEQ_SHARDS"):
		f := strings.Fields(msg)
		stored := "?"
		if len(f) > 1 {
			stored = f[1]
		}
		return fmt.Errorf("%w: namespace %q has %s shards in Redis (counter %s) but this client is configured with %d; use --shards %s, or a new namespace",
			ErrShardCountMismatch, s.ns.Name, stored, s.Key, s.ns.Layout.Shards, stored)
	case strings.HasPrefix(msg, "SHARDSEQ_EXHAUSTED"):
		return fmt.Errorf("%w: shard %d of %q reached MaxID %d", ErrExhausted, s.Index, s.ns.Name, s.ns.opt.MaxID)
	case strings.HasPrefix(msg, "SHARDSEQ_REPLY"), strings.HasPrefix(msg, "WRONGTYPE"):
		return fmt.Errorf("%w: %s: %v", ErrBadRecord, s.Key, err)
	}
	return err
}

// checkAck decides whether a write is durable enough to hand out what it
// reserved: by default every replica the master had when the write ran, and
// at least one.
func (ns *Namespace) checkAck(node string, replicas, acked int) error {
	want := ns.opt.AckReplicas
	switch {
	case want < 0:
		return nil
	case want == 0:
		want = max(replicas, 1)
	}
	if acked >= want {
		return nil
	}
	ns.r.LazyReload() // the replica count we waited for may be stale
	return fmt.Errorf("%w: %d of %d replicas of %s confirmed within %v", ErrNotReplicated, acked, want, node, ns.opt.AckTimeout)
}
