package namespace

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/shard"
)

// Namespaces as objects: create (Put), inspect (Describe, List) and retire
// (Delete) them. What `PUT/GET/DELETE /v1/namespaces/...` and `shardseq
// namespace ...` call.

// State says what a namespace in the index is now.
type State string

// The values of State.
const (
	// StateActive: it hands out IDs.
	StateActive State = "active"
	// StateDeleted: retired behind a tombstone by Delete; recreating it
	// continues above every ID it ever reserved.
	StateDeleted State = "deleted"
	// StateLost: in the index, but no copy of its record is left (lost with
	// its masters' data); it is never created anew (ErrNamespaceLost).
	StateLost State = "lost"
	// StateUnknown: no copy of its record could be read now.
	StateUnknown State = "unknown"
)

// Info is what a namespace's record says. For StateLost and StateUnknown
// only Name and State are set.
type Info struct {
	Name       string
	State      State
	Shards     int
	Start      int64
	Strict     bool
	Generation int64
	CreatedAt  time.Time // zero when not stored (created by an older version)
}

// Info is what the namespace's record says.
func (ns *Namespace) Info() Info {
	st := StateActive
	if ns.Deleted {
		st = StateDeleted
	}
	return Info{Name: ns.Name, State: st, Shards: ns.Layout.Shards, Start: ns.Start, Strict: ns.Strict,
		Generation: ns.Generation, CreatedAt: ns.CreatedAt}
}

// Usage is how much of a namespace's ID space is used, counted on the shards
// whose counters could be checked.
type Usage struct {
	// Reserved is how many sequence numbers the checked shards reserved:
	// IDs handed out, and gaps (blocks left unused, levelling, the skips of
	// restores).
	Reserved int64
	// SpaceLeft is how many IDs the checked shards can still hand out before
	// MaxID.
	SpaceLeft int64
	// HighestID is the largest ID reserved so far (0: none).
	HighestID int64
	// MaxID is the largest ID of the namespace (Options.MaxID: 2^53-1 by
	// default, so IDs stay exact in JavaScript).
	MaxID int64
	// Checked is how many of the namespace's shards were checked; the
	// others' masters could not answer.
	Checked, Shards int
}

// Used is the fraction of the checked shards' ID space reserved, from 0 to 1.
func (u Usage) Used() float64 {
	if u.Reserved+u.SpaceLeft <= 0 {
		return 0
	}
	return float64(u.Reserved) / (float64(u.Reserved) + float64(u.SpaceLeft))
}

// Usage checks every shard's counter (an acknowledged reservation of
// nothing, as when a process opens the namespace, which restores a counter
// whose history changed) and counts what is used and left.
func (ns *Namespace) Usage(ctx context.Context) Usage {
	u := Usage{MaxID: ns.opt.MaxID, Shards: len(ns.Shards)}
	ns.checkShards(ctx, func(s *shard.Shard, b shard.Block) {
		initSeq, maxSeq := s.Bounds()
		u.Checked++
		u.Reserved += max(b.Hi-initSeq, 0)
		u.SpaceLeft += max(maxSeq-b.Hi, 0)
		if b.Hi > initSeq {
			u.HighestID = max(u.HighestID, shard.ID(b.Hi, s.Index, len(ns.Shards)))
		}
	})
	return u
}

// Spec is what a caller asks of a namespace it creates or ensures (`PUT
// /v1/namespaces/{namespace}`, `shardseq namespace create`). A nil field
// takes the stored value of an existing namespace, or the default of a new
// one.
type Spec struct {
	Shards *int
	Start  *int64
	Strict *bool
}

// Put creates namespace name as spec says, recreates it if it was deleted,
// or checks an existing one against spec. A field of spec that differs from
// the stored value is refused with ErrShardCountMismatch (shards) or
// ErrSettingsMismatch (start, strict); a deleted namespace is recreated with
// its stored shards and start (its counters continue above everything it
// reserved; another N or start could repeat IDs), and with spec's strict
// mode if it has one. defaultShards is N of a new namespace when spec has
// none (0: DefaultShards). The namespace's Created says whether this call
// created it (or recreated it).
func Put(ctx context.Context, r shard.Router, name string, spec Spec, defaultShards int, opt shard.Options) (*Namespace, error) {
	want := Settings{CreateShards: defaultShards}
	if spec.Shards != nil {
		if !shard.ValidShards(*spec.Shards) {
			return nil, fmt.Errorf("shard: %d shards: want 1 to %d", *spec.Shards, shard.MaxShards)
		}
		want.Shards = *spec.Shards
	}
	if spec.Start != nil {
		if *spec.Start < 1 {
			return nil, fmt.Errorf("shard: start %d: want 1 to %d", *spec.Start, MaxStart(opt.MaxID))
		}
		want.Start = *spec.Start
	}
	return open(ctx, r, name, want, intent{strict: spec.Strict}, opt)
}

// Description is a namespace's record and usage.
type Description struct {
	Info
	Usage Usage
}

// Describe reads namespace name, deleted or not, and checks its usage. It
// creates nothing (it finishes a creation left half-way, as every Open
// does). It fails with ErrNamespaceNotFound for a name never created, and
// ErrNamespaceLost for one whose record is lost.
func Describe(ctx context.Context, r shard.Router, name string, opt shard.Options) (Description, error) {
	ns, err := openAsIs(ctx, r, name, opt)
	if err != nil {
		return Description{}, err
	}
	return Description{Info: ns.Info(), Usage: ns.Usage(ctx)}, nil
}

// openAsIs opens an existing namespace, deleted or not, and tells a lost
// one (its name in the index) from one never created.
func openAsIs(ctx context.Context, r shard.Router, name string, opt shard.Options) (*Namespace, error) {
	ns, err := open(ctx, r, name, Settings{NoCreate: true}, intent{asIs: true}, opt)
	if errors.Is(err, ErrNamespaceNotFound) {
		if indexed, lerr := inIndex(ctx, r, name); lerr == nil && indexed {
			return nil, fmt.Errorf("%w: namespace %q is in the index of namespaces but no copy of its record is left. %s",
				ErrNamespaceLost, name, lostHint)
		}
	}
	return ns, err
}

// Delete retires namespace name behind a tombstone: every copy of its
// record is marked deleted (a new generation), and its name, counters and
// ceilings stay, so that recreating it (Put, or an Open that may create)
// continues above every ID it ever reserved. Opening it with NoCreate then
// fails with ErrNamespaceDeleted.
//
// Clients that have it open keep handing out IDs (from their blocks and new
// reservations, all unique) until they close: a reservation reads only its
// shard's counter, never the record. A server closes its own client of the
// namespace on DELETE; other processes see the tombstone when they next open
// it. It reports whether it deleted the namespace (false: it was deleted
// already). It succeeds once one copy of the record confirmed the tombstone;
// copies that missed it are brought up to date by the next Open.
func Delete(ctx context.Context, r shard.Router, name string, opt shard.Options) (bool, error) {
	ns, err := openAsIs(ctx, r, name, opt)
	if err != nil {
		return false, err
	}
	if ns.Deleted {
		return false, nil
	}
	st := ns.state
	st.gen, st.deleted = st.gen+1, true
	got, err := ns.writeState(ctx, MetaKeys(name), st)
	if err != nil {
		return false, fmt.Errorf("shard: deleting namespace %q: %w", name, err)
	}
	if !got.deleted {
		return false, fmt.Errorf("shard: deleting namespace %q: it was recreated meanwhile (generation %d); try again", name, got.gen)
	}
	return true, nil
}

// Page is one page of List.
type Page struct {
	Namespaces []Info
	// Next is the cursor of the next page; "" after the last one.
	Next string
}

// MaxListLimit bounds the page size of List.
const MaxListLimit = 1000

// List returns the namespaces of the index, deleted ones included, sorted by
// name: at most limit (1 to MaxListLimit) of them after cursor (a name; ""
// for the first page). Each is read from its record copies (nothing is
// written); one whose record cannot be read now is listed with
// StateUnknown, one whose record is gone with StateLost.
func List(ctx context.Context, r shard.Router, cursor string, limit int) (Page, error) {
	if limit < 1 || limit > MaxListLimit {
		return Page{}, fmt.Errorf("shard: list limit %d: want 1 to %d", limit, MaxListLimit)
	}
	if cursor != "" {
		if err := ValidateNamespace(cursor); err != nil {
			return Page{}, fmt.Errorf("shard: list cursor: %w", err)
		}
	}
	// One name more than the page: a next page exists only if it came.
	names, err := PageNames(ctx, r, cursor, limit+1)
	if err != nil {
		return Page{}, err
	}
	var page Page
	if len(names) > limit {
		names = names[:limit]
		page.Next = names[limit-1]
	}
	page.Namespaces = readInfos(ctx, r, names)
	return page, nil
}

// readInfos reads the records of names for a page of List: one pipeline of
// HMGETs per master, all at once, where Read would run a script per copy
// (300 of them for a page of 100). A copy the pipeline could not read (its
// slot moved, its master did not answer) is read again as Read does.
func readInfos(ctx context.Context, r shard.Router, names []string) []Info {
	type read struct {
		name int
		rec  *record
		err  error
	}
	keys := make([][]string, len(names))
	byNode := map[string][]int{} // master address: indexes into flat
	var flat []read
	var flatKeys []string
	nodes := map[string]*redis.Client{}
	for i, n := range names {
		keys[i] = MetaKeys(n)
		for _, k := range keys[i] {
			m, node, err := r.MasterForKey(k)
			flat = append(flat, read{name: i, err: err})
			flatKeys = append(flatKeys, k)
			if err == nil {
				byNode[m.Addr] = append(byNode[m.Addr], len(flat)-1)
				nodes[m.Addr] = node
			}
		}
	}
	var wg sync.WaitGroup
	for addr, idx := range byNode {
		wg.Go(func() {
			cmds := make([]*redis.SliceCmd, len(idx))
			_, _ = nodes[addr].Pipelined(ctx, func(p redis.Pipeliner) error {
				for j, f := range idx {
					cmds[j] = p.HMGet(ctx, flatKeys[f], recordFields...)
				}
				return nil
			})
			for j, f := range idx {
				vals, err := cmds[j].Result()
				if err == nil {
					flat[f].rec, err = recordOf(vals)
				}
				flat[f].err = err
			}
		})
	}
	wg.Wait()
	out := make([]Info, len(names))
	for i, n := range names {
		c := copies{keys: keys[i], recs: make([]*record, len(keys[i]))}
		var err error
		for k := range keys[i] {
			f := flat[i*len(keys[i])+k]
			rec := f.rec
			if f.err != nil {
				rec, f.err = readRecord(ctx, r, keys[i][k]) // as Read: redirects, retries
			}
			if err == nil {
				err = c.add(k, rec, f.err, n)
			}
		}
		out[i] = infoOf(n, c, err)
	}
	return out
}

// recordFields are the fields of a record copy, in the order of meta.lua's
// HMGET.
var recordFields = []string{"shards", "layout", "start", "ready", "strict", "gen", "deleted", "created"}

// recordOf reads a record copy from an HMGET of recordFields, as meta.lua's
// read replies it (nil: absent).
func recordOf(vals []any) (*record, error) {
	or := func(v any, def string) any {
		if v == nil {
			return def
		}
		return v
	}
	found := int64(1)
	if vals[0] == nil {
		found = 0
	}
	reply := []any{found, or(vals[0], ""), or(vals[1], ""), or(vals[2], ""), or(vals[3], "0"), or(vals[4], "0"),
		or(vals[5], "1"), or(vals[6], "0"), or(vals[7], "0"), "hmget", int64(0), int64(0)}
	rec, _, err := parseMetaReply(reply)
	return rec, err
}

// Read reads the copies of namespace name's record, writing nothing (List
// does it for each name). A name never created has StateLost, as one whose
// record is gone: Read does not look at the index.
func Read(ctx context.Context, r shard.Router, name string) Info {
	c, err := readCopies(ctx, r, name)
	return infoOf(name, c, err)
}

// infoOf is what the copies c of name's record say (err: they disagree).
func infoOf(name string, c copies, err error) Info {
	switch {
	case err != nil:
		return Info{Name: name, State: StateUnknown} // copies disagree: Open says how
	case c.found == nil && len(c.errs) > 0:
		return Info{Name: name, State: StateUnknown}
	case c.found == nil:
		return Info{Name: name, State: StateLost}
	}
	info := Info{Name: name, State: StateActive, Shards: c.found.shards, Start: c.found.start, Strict: c.state.strict, Generation: c.state.gen}
	if c.state.deleted {
		info.State = StateDeleted
	}
	if c.state.created > 0 {
		info.CreatedAt = time.UnixMilli(c.state.created)
	}
	return info
}
