package shard

import (
	_ "embed"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The scripts of one shard, each prefixed with lua/prelude.lua, and the only
// code that builds their arguments (the argv methods below) or reads their
// replies. The namespace record's scripts are package namespace's.
var (
	//go:embed lua/prelude.lua
	preludeSrc string
	//go:embed lua/reserve.lua
	reserveSrc string
	//go:embed lua/ceiling.lua
	ceilingSrc string

	reserveScript = NewScript(reserveSrc)
	ceilingScript = NewScript(ceilingSrc)
)

// NewScript is a script of shardseq: body prefixed with lua/prelude.lua (the
// node's identity and promotable replicas, which every reply ends with; see
// ParseNodeState).
func NewScript(body string) *redis.Script { return redis.NewScript(preludeSrc + "\n" + body) }

// NewFlaggedScript is NewScript with Redis 7 script flags (the shebang
// `#!lua flags=...`, which must be the script's first line), e.g.
// allow-cross-slot-keys for a script that reaches keys of several slots of
// the master it runs on.
func NewFlaggedScript(flags, body string) *redis.Script {
	return redis.NewScript("#!lua flags=" + flags + "\n" + preludeSrc + "\n" + body)
}

// NodeState ends every script's reply: the identity of the master that ran
// the script and its replicas (see node() in lua/prelude.lua).
type NodeState struct {
	ReplID     string
	Connected  int // connected_slaves
	Promotable int // replicas the cluster lists for it, not flagged fail (>= Connected)
}

// ParseNodeState reads the last three values of a script reply.
func ParseNodeState(values []any) (NodeState, error) {
	if len(values) < 3 {
		return NodeState{}, fmt.Errorf("%w: script reply %v", ErrBadRecord, values)
	}
	tail := values[len(values)-3:]
	connected, err1 := ReplyInt(tail[1])
	promotable, err2 := ReplyInt(tail[2])
	id := ReplyString(tail[0])
	if err := errors.Join(err1, err2); err != nil {
		return NodeState{}, err
	}
	if id == "" || connected < 0 || promotable < connected {
		return NodeState{}, fmt.Errorf("%w: node state %v", ErrBadRecord, tail)
	}
	return NodeState{ReplID: id, Connected: int(connected), Promotable: int(promotable)}, nil
}

// reserveArgs are the arguments of lua/reserve.lua, in the order its header
// lists them.
type reserveArgs struct {
	Shards int
	Count  int64 // 0: only check the counter (and register Confirmed)
	Level  int64 // the block starts above this sequence number
	MaxSeq int64
	Create bool  // the namespace is being created: a missing counter starts at InitSeq
	Init   int64 // see Create
	// Floor >= 0 restores a counter whose history changed: it continues
	// above Floor, read from copies claimed with epoch FloorEpoch for the
	// identity FloorFor.
	Floor      int64
	FloorEpoch int64
	FloorFor   string
	// Confirmed is a ceiling confirmed on every copy, to register in the
	// counter (ARGV[10]; reserve.lua calls it mirrored).
	Confirmed int64
	LegacyGap int64 // >= 0: fence from the counter's own value (negative controls)
	// Trace is the namespace to add to the trace set of the counter's slot
	// (KEYS[2]) if this call creates the counter; "": none.
	Trace string
	// Deadline: with Create, the creation's deadline (unix ms; 0: none).
	Deadline int64
	// NoRetrace: an existing counter whose slot's trace set lacks Trace is
	// not traced again (negative controls only; see retrace in
	// lua/prelude.lua).
	NoRetrace bool
}

func (a reserveArgs) argv() []any {
	create := ""
	if a.Create {
		create = "1"
	}
	return []any{a.Shards, a.Count, a.Level, a.MaxSeq, create, a.Init,
		a.Floor, a.FloorEpoch, a.FloorFor, a.Confirmed, a.LegacyGap, a.Trace, a.Deadline, flag(!a.NoRetrace)}
}

// flag is a script's boolean argument: "1" or "".
func flag(on bool) string {
	if on {
		return "1"
	}
	return ""
}

// FenceKind says whether a reservation restored the counter of a shard.
type FenceKind int

const (
	// NotFenced: the counter's history was the serving node's own.
	NotFenced FenceKind = iota
	// FencedHistory: the node serving the counter had another history (a
	// promoted replica, a restart that loaded older files); the counter now
	// continues above its ceiling.
	FencedHistory
	// FencedRestored: the counter was missing (its master came back empty);
	// it was restored above its ceiling.
	FencedRestored
)

func (k FenceKind) String() string {
	switch k {
	case NotFenced:
		return "none"
	case FencedHistory:
		return "history changed"
	case FencedRestored:
		return "restored"
	}
	return "FenceKind(" + strconv.Itoa(int(k)) + ")"
}

// reserveReply is the checked reply of lua/reserve.lua.
type reserveReply struct {
	NeedsFence bool  // status "fence": nothing written, restore first
	Hi         int64 // the block ends here; the counter's value (fence: its untrusted value, or -1)
	Fence      FenceKind
	Epoch      int64
	Confirmed  int64 // the highest confirmed ceiling registered in the counter (reserve.lua: mirrored)
	NodeState
	Levelled bool // the block starts at the level asked for: the counter may have jumped to it
}

// parseReserveReply checks the reply of reserve.lua before anything in it is
// used: a block that is not exactly what was asked for is never handed out.
func parseReserveReply(values []any, count, maxSeq int64) (reserveReply, error) {
	if len(values) != 8 {
		return reserveReply{}, fmt.Errorf("%w: reserve reply has %d values, want 8", ErrBadRecord, len(values))
	}
	hi, err1 := ReplyInt(values[1])
	fence, err2 := ReplyInt(values[2])
	epoch, err3 := ReplyInt(values[3])
	confirmed, err4 := ReplyInt(values[4])
	st, err5 := ParseNodeState(values)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return reserveReply{}, err
	}
	rep := reserveReply{Hi: hi, Fence: FenceKind(fence), Epoch: epoch, Confirmed: confirmed, NodeState: st}
	switch status := ReplyString(values[0]); {
	case status == "fence":
		rep.NeedsFence = true
		if hi < -1 || epoch < 0 {
			return reserveReply{}, fmt.Errorf("%w: fence reply %v", ErrBadRecord, values)
		}
		return rep, nil
	case status != "ok":
		return reserveReply{}, fmt.Errorf("%w: reserve status %q", ErrBadRecord, status)
	case hi < count || hi > maxSeq:
		return reserveReply{}, fmt.Errorf("%w: counter at %d for a block of %d (largest sequence %d)", ErrBadRecord, hi, count, maxSeq)
	case rep.Fence < NotFenced || rep.Fence > FencedRestored:
		return reserveReply{}, fmt.Errorf("%w: fence flag %d", ErrBadRecord, fence)
	case epoch < 0 || confirmed < 0:
		return reserveReply{}, fmt.Errorf("%w: epoch %d, confirmed ceiling %d", ErrBadRecord, epoch, confirmed)
	}
	return rep, nil
}

// ceilingOp is an operation of lua/ceiling.lua.
type ceilingOp string

const (
	ceilRead        ceilingOp = "read"
	ceilClaim       ceilingOp = "claim"
	ceilRaise       ceilingOp = "raise"
	ceilRepair      ceilingOp = "repair"
	ceilCreate      ceilingOp = "create"
	ceilLegacyRaise ceilingOp = "legacy-raise"
)

// ceilingArgs are the arguments of lua/ceiling.lua.
type ceilingArgs struct {
	Op     ceilingOp
	Epoch  int64
	Value  int64
	Expect string // repair: the identity of the copy's master when it was read; claim: the identity claimed for
	// Trace is the namespace to add to the trace set of the copy's slot
	// (KEYS[2]) if this call creates the copy; "": none.
	Trace string
	// Deadline: create only, the creation's deadline (unix ms; 0: none).
	Deadline int64
	// NoTouch lets a raise or repair that changed nothing write nothing, so
	// its WAIT proves nothing: the negative control of the rewrite.
	NoTouch bool
	// NoRetrace: an existing copy whose slot's trace set lacks Trace is not
	// traced again (negative controls only).
	NoRetrace bool
}

func (a ceilingArgs) argv() []any {
	return []any{string(a.Op), a.Epoch, a.Value, a.Expect, a.Trace, a.Deadline, flag(!a.NoTouch), flag(!a.NoRetrace)}
}

// ceilingReply is the checked reply of lua/ceiling.lua.
type ceilingReply struct {
	Stale   bool   // a newer (for a claim: or equal) epoch owns the copy; nothing was written
	Changed bool   // repair: the copy's master changed identity since it was read; nothing was written
	V       int64  // -1: the copy holds no value
	Trusted bool   // its master still has the identity that last made it trusted
	Epoch   int64  // the newest counter history allowed to raise it
	Owner   string // the identity its last claim was for
	NodeState
}

func parseCeilingReply(values []any) (ceilingReply, error) {
	if len(values) != 8 {
		return ceilingReply{}, fmt.Errorf("%w: ceiling reply has %d values, want 8", ErrBadRecord, len(values))
	}
	v, err1 := ReplyInt(values[1])
	trusted, err2 := ReplyInt(values[2])
	epoch, err3 := ReplyInt(values[3])
	st, err4 := ParseNodeState(values)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return ceilingReply{}, err
	}
	status := ReplyString(values[0])
	if (status != "ok" && status != "stale" && status != "changed") || v < -1 || epoch < 0 || trusted < 0 || trusted > 1 || (trusted == 1 && v < 0) {
		return ceilingReply{}, fmt.Errorf("%w: ceiling reply %v", ErrBadRecord, values)
	}
	return ceilingReply{Stale: status == "stale", Changed: status == "changed", V: v, Trusted: trusted == 1, Epoch: epoch,
		Owner: ReplyString(values[4]), NodeState: st}, nil
}

// ReplyInt reads an integer of a script's reply (Redis returns Lua numbers
// as integers, and some fields as strings).
func ReplyInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %q is not an integer", ErrBadRecord, x)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%w: %v (%T) is not an integer", ErrBadRecord, v, v)
}

// ReplyString reads a string of a script's reply, "" for anything else.
func ReplyString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}
