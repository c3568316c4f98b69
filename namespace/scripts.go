package namespace

import (
	_ "embed"
	"fmt"
	"strconv"
	"time"

	"github.com/shardseq/shardseq/shard"
)

// The scripts of the namespace record and of the index of namespaces, each
// prefixed with package shard's prelude, and the only code that builds their
// arguments (the argv methods below) or reads their replies.
var (
	//go:embed lua/meta.lua
	metaSrc string
	//go:embed lua/index.lua
	indexSrc string
	//go:embed lua/trace.lua
	traceSrc string
	//go:embed lua/tracecheck.lua
	traceCheckSrc string

	metaScript  = shard.NewScript(metaSrc)
	indexScript = shard.NewScript(indexSrc)
	traceScript = shard.NewFlaggedScript("allow-cross-slot-keys", traceSrc)
	// traceCheckScript reads only; its prelude refuses an evicting master
	// (a trace evicted would let a lost namespace look new).
	traceCheckScript = shard.NewFlaggedScript("no-writes,allow-cross-slot-keys", traceCheckSrc)
)

// metaOp is an operation of lua/meta.lua.
type metaOp string

const (
	metaRead  metaOp = "read"
	metaClaim metaOp = "claim"
	metaReady metaOp = "ready"
	// metaChecked marks a claimed copy as having passed the lost-record
	// check since it was claimed (see create).
	metaChecked metaOp = "checked"
	metaState   metaOp = "state"
	// metaDone removes the caller's registration as a creator: it wrote
	// every key it will write (see create).
	metaDone metaOp = "done"
)

// metaArgs are the arguments of lua/meta.lua.
type metaArgs struct {
	Op     metaOp
	Shards int
	Layout string
	Start  int64
	State  nsState // written by a claim that creates the copy, and by state
	// Token identifies a creation (claim, done, ready); "": no freshness
	// guard (repairs of a ready record, negative controls).
	Token string
	// TTL (claim) is how long the creator may write keys; Margin (ready)
	// the clock skew allowed between masters. See lua/meta.lua.
	TTL, Margin time.Duration
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
	return []any{string(a.Op), a.Shards, a.Layout, a.Start, strict, gen, deleted, a.State.created,
		a.Token, a.TTL.Milliseconds(), a.Margin.Milliseconds()}
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
	// unchecked: claimed, and no creator has passed the lost-record check
	// since (see create)
	unchecked bool
	// deadline: the one a claim registered for its creator (unix ms by the
	// copy's master; 0: none); wait: a ready refused, how long other
	// creators may still write keys (see lua/meta.lua).
	deadline int64
	wait     time.Duration
	nsState
}

// parseMetaReply returns the stored record, or nil when the copy is absent,
// and whether this call created the copy.
func parseMetaReply(values []any) (*record, shard.NodeState, error) {
	rec, _, st, err := parseMetaReplyFull(values)
	return rec, st, err
}

func parseMetaReplyFull(values []any) (*record, bool, shard.NodeState, error) {
	if len(values) != 14 {
		return nil, false, shard.NodeState{}, fmt.Errorf("%w: meta reply has %d values, want 14", ErrBadRecord, len(values))
	}
	st, err := shard.ParseNodeState(values)
	if err != nil {
		return nil, false, shard.NodeState{}, err
	}
	found, _ := asInt(values[0])
	if found == 0 {
		return nil, false, st, nil
	}
	shards, err1 := strconv.Atoi(asString(values[1]))
	start, err2 := strconv.ParseInt(asString(values[3]), 10, 64)
	gen, err3 := strconv.ParseInt(asString(values[6]), 10, 64)
	created, err4 := strconv.ParseInt(asString(values[8]), 10, 64)
	deadline, err5 := asInt(values[9])
	wait, err6 := asInt(values[10])
	strict, deleted := asString(values[5]), asString(values[7])
	if err1 != nil || err2 != nil || !shard.ValidShards(shards) || start < 1 {
		return nil, false, st, fmt.Errorf("%w: namespace record shards=%v start=%v", ErrBadRecord, values[1], values[3])
	}
	if err5 != nil || err6 != nil || deadline < 0 || wait < 0 {
		return nil, false, st, fmt.Errorf("%w: namespace record deadline=%v wait=%v", ErrBadRecord, values[9], values[10])
	}
	if err3 != nil || err4 != nil || gen < 1 || created < 0 || (strict != "0" && strict != "1") || (deleted != "0" && deleted != "1") {
		return nil, false, st, fmt.Errorf("%w: namespace record strict=%v gen=%v deleted=%v created=%v", ErrBadRecord, values[5], values[6], values[7], values[8])
	}
	return &record{shards: shards, layout: asString(values[2]), start: start, ready: asString(values[4]) == "1", unchecked: asString(values[4]) == "u",
		deadline: deadline, wait: time.Duration(wait) * time.Millisecond,
		nsState: nsState{strict: strict == "1", gen: gen, deleted: deleted == "1", created: created}}, found == 2, st, nil
}

// indexOp is an operation of lua/index.lua.
type indexOp string

const (
	indexAdd  indexOp = "add"
	indexHas  indexOp = "has"  // one ZSCORE, whatever the index's size
	indexPage indexOp = "page" // ZRANGE BYLEX after a cursor
	indexList indexOp = "list" // every member
)

// indexArgs are the arguments of lua/index.lua.
type indexArgs struct {
	Op    indexOp
	Name  string   // the name to add or look up; page's cursor
	Limit int      // page's size
	More  []string // add: more names to add
}

func (a indexArgs) argv() []any {
	out := []any{string(a.Op), a.Name, a.Limit}
	for _, n := range a.More {
		out = append(out, n)
	}
	return out
}

func parseIndexReply(values []any) ([]string, shard.NodeState, error) {
	if len(values) != 4 {
		return nil, shard.NodeState{}, fmt.Errorf("%w: index reply has %d values, want 4", ErrBadRecord, len(values))
	}
	st, err := shard.ParseNodeState(values)
	if err != nil {
		return nil, shard.NodeState{}, err
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

// The reply readers are shard's: one rule for what a script's reply holds.
var (
	asInt    = shard.ReplyInt
	asString = shard.ReplyString
)
