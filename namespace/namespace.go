package namespace

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/shardseq/shardseq/shard"
)

// DefaultShards is N of a namespace created without one.
const DefaultShards = 12

// Settings are what a namespace is created with, and what Open checks an
// existing one against.
type Settings struct {
	// Shards is N. 0: the stored N of an existing namespace, CreateShards
	// for a new one. An explicit N that differs from the stored one is
	// refused with ErrShardCountMismatch: two values of N overlap residue
	// classes.
	Shards int
	// Start is the smallest ID the namespace hands out (set it above the old
	// maximum when migrating from another counter). 0: 1 for a new
	// namespace; an explicit Start that differs from the stored one is
	// refused with ErrSettingsMismatch.
	Start int64
	// NoCreate makes Open fail with ErrNamespaceNotFound instead of creating
	// a namespace that does not exist, and with ErrNamespaceDeleted instead
	// of recreating one that was deleted.
	NoCreate bool
	// CreateShards is N of a namespace this Open creates when Shards is 0
	// (0: DefaultShards). Unlike Shards it is not checked against an
	// existing namespace, which keeps its stored N: it is `serve --shards`.
	CreateShards int
	// Strict is the strict mode stored with a namespace this Open creates.
	// An existing namespace keeps its stored mode (Namespace.Strict), and so
	// does one this Open recreates after Delete; Put changes it.
	Strict bool
}

// MaxStart is the largest Start of a namespace whose IDs go up to maxID
// (0: shard.DefaultMaxID): half the ID space, so that a namespace always has
// at least as many IDs ahead as it skipped.
func MaxStart(maxID int64) int64 {
	if maxID <= 0 {
		maxID = shard.DefaultMaxID
	}
	return maxID / 2
}

// Validate reports the first setting out of its bounds for IDs up to maxID
// (0: shard.DefaultMaxID).
func (s Settings) Validate(maxID int64) error {
	switch {
	case s.Shards != 0 && !shard.ValidShards(s.Shards):
		return fmt.Errorf("shard: %d shards: want 1 to %d (0: the stored N, or %d)", s.Shards, shard.MaxShards, DefaultShards)
	case s.CreateShards != 0 && !shard.ValidShards(s.CreateShards):
		return fmt.Errorf("shard: %d shards for new namespaces: want 1 to %d (0: %d)", s.CreateShards, shard.MaxShards, DefaultShards)
	case s.Start < 0 || s.Start > MaxStart(maxID):
		return fmt.Errorf("shard: start %d: want 1 to %d (0: 1)", s.Start, MaxStart(maxID))
	}
	return nil
}

// Namespace is an opened namespace: its record, read from (or written to)
// Redis, and its shards.
type Namespace struct {
	Name   string
	Layout Layout
	Start  int64 // the smallest ID it hands out
	Shards []*shard.Shard
	// Created: this Open created the namespace, or recreated it after a
	// Delete (then Recreated is set too).
	Created, Recreated bool
	// Strict is the namespace's stored strict mode.
	Strict bool
	// Generation counts the namespace's lives: 1 when created, +1 on each
	// Delete and each recreation.
	Generation int64
	// Deleted: the namespace is retired behind a tombstone (only ever set
	// for Describe and Delete, which open it as it is).
	Deleted bool
	// CreatedAt is when this generation was created; zero for a namespace
	// created before the time was stored.
	CreatedAt time.Time
	r         shard.Router
	opt       shard.Options // with defaults
	state     nsState
	// recordErr is why the Open could not rewrite a lost copy of the
	// record (best effort there); RepairNamespace reports it, so that a
	// sweep that could not finish the record is retried.
	recordErr error
}

// setLayout makes the namespace's shards for layout l (and ns.Start): each
// gets its keys, its index, N and the options, and nothing else of the
// namespace.
func (ns *Namespace) setLayout(l Layout) {
	ns.Layout = l
	ns.Shards = make([]*shard.Shard, l.Shards)
	for i := range ns.Shards {
		cfg := shard.Config{Router: ns.r, Options: ns.opt, Namespace: ns.Name, Index: i, Shards: l.Shards,
			Start: ns.Start, Key: l.CounterKey(i), NoTraces: noScriptTraces.Load(),
			NoRetrace: noRetrace.Load()}
		if h := beforeCreate.Load(); h != nil {
			cfg.BeforeCreate = *h
		}
		for c := range l.Ceilings[i] {
			cfg.CeilingKeys = append(cfg.CeilingKeys, l.CeilingKey(i, c))
		}
		ns.Shards[i] = shard.New(cfg)
	}
}

// Level is the highest sequence number the namespace's counters have
// reached, as far as it can be told now: a process starts its first block
// above it, so that its IDs follow those handed out before it started. Each
// counter is checked with an acknowledged reservation of nothing, which
// restores it first if its history changed (a rewound counter's own value
// would be below IDs already handed out). A shard that cannot be checked (its
// master down, or unable to get writes acknowledged) is left out: its value
// may be one nobody could hand out (a restore written but never confirmed),
// and starting every shard above it would take them all past their ceilings,
// where raising needs that very master. Ordering is then only as good as the
// other shards' levels, which the shards' levelling keeps close; a process
// that opens a namespace again also starts above what it reserved before
// (client.Config.After), since the shard left out may hold its last IDs.
func (ns *Namespace) Level(ctx context.Context) int64 {
	var level int64
	ns.checkShards(ctx, func(_ *shard.Shard, b shard.Block) { level = max(level, b.Hi) })
	return level
}

// checkShards checks every shard's counter at once, with an acknowledged
// reservation of nothing (which restores a counter whose history changed),
// and calls fn, one call at a time, with each shard that answered and its
// counter. Shards that could not be checked are left out.
func (ns *Namespace) checkShards(ctx context.Context, fn func(*shard.Shard, shard.Block)) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, s := range ns.Shards {
		wg.Go(func() {
			b, err := s.Reserve(ctx, 0, 0)
			if err != nil {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			fn(s, b)
		})
	}
	wg.Wait()
}

// lostHint is what an operator can do about a namespace whose record is
// lost.
const lostHint = "Restore the masters' data, or give the namespace a new name"

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
