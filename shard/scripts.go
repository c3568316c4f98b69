package shard

import (
	_ "embed"
	"errors"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// The scripts, each prefixed with lua/prelude.lua, and the only code that
// builds their arguments (the argv methods below) or reads their replies.
var (
	//go:embed lua/prelude.lua
	preludeSrc string
	//go:embed lua/reserve.lua
	reserveSrc string
	//go:embed lua/ceiling.lua
	ceilingSrc string
	//go:embed lua/meta.lua
	metaSrc string
	//go:embed lua/index.lua
	indexSrc string

	reserveScript = newScript(reserveSrc)
	ceilingScript = newScript(ceilingSrc)
	metaScript    = newScript(metaSrc)
	indexScript   = newScript(indexSrc)
)

func newScript(body string) *redis.Script { return redis.NewScript(preludeSrc + "\n" + body) }

// nodeState ends every script's reply: the identity of the master that ran
// the script and its replicas (see node() in lua/prelude.lua).
type nodeState struct {
	ReplID     string
	Connected  int // connected_slaves
	Promotable int // replicas the cluster lists for it, not flagged fail (>= Connected)
}

// parseNodeState reads the last three values of a script reply.
func parseNodeState(values []any) (nodeState, error) {
	if len(values) < 3 {
		return nodeState{}, fmt.Errorf("%w: script reply %v", ErrBadRecord, values)
	}
	tail := values[len(values)-3:]
	connected, err1 := asInt(tail[1])
	promotable, err2 := asInt(tail[2])
	id := asString(tail[0])
	if err := errors.Join(err1, err2); err != nil {
		return nodeState{}, err
	}
	if id == "" || connected < 0 || promotable < connected {
		return nodeState{}, fmt.Errorf("%w: node state %v", ErrBadRecord, tail)
	}
	return nodeState{ReplID: id, Connected: int(connected), Promotable: int(promotable)}, nil
}

// reserveArgs are the arguments of lua/reserve.lua, in the order its header
// lists them.
type reserveArgs struct {
	Shards int
	Count  int64 // 0: only check the counter (and register Ceiling)
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
	Ceiling    int64 // a ceiling confirmed on every copy, to register
	LegacyGap  int64 // >= 0: fence from the counter's own value (negative controls)
}

func (a reserveArgs) argv() []any {
	create := ""
	if a.Create {
		create = "1"
	}
	return []any{a.Shards, a.Count, a.Level, a.MaxSeq, create, a.Init,
		a.Floor, a.FloorEpoch, a.FloorFor, a.Ceiling, a.LegacyGap}
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
	Mirrored   int64 // the highest ceiling registered as confirmed
	nodeState
}

// parseReserveReply checks the reply of reserve.lua before anything in it is
// used: a block that is not exactly what was asked for is never handed out.
func parseReserveReply(values []any, count, maxSeq int64) (reserveReply, error) {
	if len(values) != 8 {
		return reserveReply{}, fmt.Errorf("%w: reserve reply has %d values, want 8", ErrBadRecord, len(values))
	}
	hi, err1 := asInt(values[1])
	fence, err2 := asInt(values[2])
	epoch, err3 := asInt(values[3])
	mirrored, err4 := asInt(values[4])
	st, err5 := parseNodeState(values)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return reserveReply{}, err
	}
	rep := reserveReply{Hi: hi, Fence: FenceKind(fence), Epoch: epoch, Mirrored: mirrored, nodeState: st}
	switch status := asString(values[0]); {
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
	case epoch < 0 || mirrored < 0:
		return reserveReply{}, fmt.Errorf("%w: epoch %d, mirrored %d", ErrBadRecord, epoch, mirrored)
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
}

func (a ceilingArgs) argv() []any { return []any{string(a.Op), a.Epoch, a.Value, a.Expect} }

// ceilingReply is the checked reply of lua/ceiling.lua.
type ceilingReply struct {
	Stale   bool   // a newer (for a claim: or equal) epoch owns the copy; nothing was written
	Changed bool   // repair: the copy's master changed identity since it was read; nothing was written
	V       int64  // -1: the copy holds no value
	Trusted bool   // its master still has the identity that last made it trusted
	Epoch   int64  // the newest counter history allowed to raise it
	Owner   string // the identity its last claim was for
	nodeState
}

func parseCeilingReply(values []any) (ceilingReply, error) {
	if len(values) != 8 {
		return ceilingReply{}, fmt.Errorf("%w: ceiling reply has %d values, want 8", ErrBadRecord, len(values))
	}
	v, err1 := asInt(values[1])
	trusted, err2 := asInt(values[2])
	epoch, err3 := asInt(values[3])
	st, err4 := parseNodeState(values)
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return ceilingReply{}, err
	}
	status := asString(values[0])
	if (status != "ok" && status != "stale" && status != "changed") || v < -1 || epoch < 0 || trusted < 0 || trusted > 1 || (trusted == 1 && v < 0) {
		return ceilingReply{}, fmt.Errorf("%w: ceiling reply %v", ErrBadRecord, values)
	}
	return ceilingReply{Stale: status == "stale", Changed: status == "changed", V: v, Trusted: trusted == 1, Epoch: epoch,
		Owner: asString(values[4]), nodeState: st}, nil
}

// metaOp is an operation of lua/meta.lua.
type metaOp string

const (
	metaRead  metaOp = "read"
	metaClaim metaOp = "claim"
	metaReady metaOp = "ready"
	metaState metaOp = "state"
)

// metaArgs are the arguments of lua/meta.lua.
type metaArgs struct {
	Op     metaOp
	Shards int
	Layout string
	Start  int64
	State  nsState // written by a claim that creates the copy, and by state
}

func (a metaArgs) argv() []any {
	strict, deleted := "0", "0"
	if a.State.strict {
		strict = "1"
	}
	if a.State.deleted {
		deleted = "1"
	}
	gen := max(a.State.gen, 1)
	return []any{string(a.Op), a.Shards, a.Layout, a.Start, strict, gen, deleted, a.State.created}
}

// nsState is the part of a namespace record that changes: strict mode and
// the tombstone, versioned by a generation. Nothing in it decides which IDs
// the namespace hands out.
type nsState struct {
	strict  bool
	gen     int64 // 1 for a record written before generations existed
	deleted bool
	created int64 // unix ms of this generation's creation; 0: not stored
}

// newer reports whether s should win over t: a higher generation, or at
// the same generation a tombstone (a delete racing a recreate wins).
func (s nsState) newer(t nsState) bool {
	return s.gen > t.gen || s.gen == t.gen && s.deleted && !t.deleted
}

// record is one copy of a namespace record.
type record struct {
	shards int
	layout string
	start  int64
	ready  bool
	nsState
}

// parseMetaReply returns the stored record, or nil when the copy is absent,
// and whether this call created the copy.
func parseMetaReply(values []any) (*record, nodeState, error) {
	rec, _, st, err := parseMetaReplyFull(values)
	return rec, st, err
}

func parseMetaReplyFull(values []any) (*record, bool, nodeState, error) {
	if len(values) != 12 {
		return nil, false, nodeState{}, fmt.Errorf("%w: meta reply has %d values, want 12", ErrBadRecord, len(values))
	}
	st, err := parseNodeState(values)
	if err != nil {
		return nil, false, nodeState{}, err
	}
	found, _ := asInt(values[0])
	if found == 0 {
		return nil, false, st, nil
	}
	shards, err1 := strconv.Atoi(asString(values[1]))
	start, err2 := strconv.ParseInt(asString(values[3]), 10, 64)
	gen, err3 := strconv.ParseInt(asString(values[6]), 10, 64)
	created, err4 := strconv.ParseInt(asString(values[8]), 10, 64)
	strict, deleted := asString(values[5]), asString(values[7])
	if err1 != nil || err2 != nil || shards < 1 || shards > MaxShards || start < 1 {
		return nil, false, st, fmt.Errorf("%w: namespace record shards=%v start=%v", ErrBadRecord, values[1], values[3])
	}
	if err3 != nil || err4 != nil || gen < 1 || created < 0 || (strict != "0" && strict != "1") || (deleted != "0" && deleted != "1") {
		return nil, false, st, fmt.Errorf("%w: namespace record strict=%v gen=%v deleted=%v created=%v", ErrBadRecord, values[5], values[6], values[7], values[8])
	}
	return &record{shards: shards, layout: asString(values[2]), start: start, ready: asString(values[4]) == "1",
		nsState: nsState{strict: strict == "1", gen: gen, deleted: deleted == "1", created: created}}, found == 2, st, nil
}

// indexArgs are the arguments of lua/index.lua.
type indexArgs struct {
	Add  bool
	Name string
}

func (a indexArgs) argv() []any {
	if a.Add {
		return []any{"add", a.Name}
	}
	return []any{"list", ""}
}

func parseIndexReply(values []any) ([]string, nodeState, error) {
	if len(values) != 4 {
		return nil, nodeState{}, fmt.Errorf("%w: index reply has %d values, want 4", ErrBadRecord, len(values))
	}
	st, err := parseNodeState(values)
	if err != nil {
		return nil, nodeState{}, err
	}
	raw, ok := values[0].([]any)
	if !ok {
		return nil, st, fmt.Errorf("%w: index members %v", ErrBadRecord, values[0])
	}
	names := make([]string, 0, len(raw))
	for _, m := range raw {
		if n := asString(m); ValidNamespace(n) {
			names = append(names, n)
		}
	}
	return names, st, nil
}

func asInt(v any) (int64, error) {
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

func asString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}
