package namespace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shardseq/shardseq/shard"
)

// Open opens namespace name, creating it on first use unless want.NoCreate.
//
// The namespace record (shard count, start, key layout, and its state:
// strict mode, generation, tombstone) is kept in three copies. If any copy
// exists it is the truth and lost copies are rewritten; copies disagree only
// on the state, where the newest generation wins. If none exists but traces
// of the namespace do (an index entry, counters or ceilings: its record was
// lost with its masters' data), Open fails with ErrNamespaceLost rather than
// create it anew. Otherwise the layout is planned against the live slot map
// and the first writer's plan wins.
//
// A namespace retired by Delete is recreated (unless want.NoCreate, which
// fails with ErrNamespaceDeleted): it keeps its record, counters and
// ceilings, so it continues above everything it ever reserved.
func Open(ctx context.Context, r shard.Router, name string, want Settings, opt shard.Options) (*Namespace, error) {
	return open(ctx, r, name, want, intent{}, opt)
}

// intent is what the admin calls ask of an open beyond Settings.
type intent struct {
	// strict is Put's explicit strict mode: checked against a live
	// namespace, stored by a creation or a recreation. nil: none.
	strict *bool
	// asIs opens a deleted namespace as it is, without recreating it
	// (Describe, Delete, repairs).
	asIs bool
}

// errRaced: a concurrent creator wrote the record after the copies were
// read; read them again.
var errRaced = errors.New("namespace: record written concurrently")

// open reads the record's copies, decides what to do with them, does it
// (create, finish or recreate the namespace, rewrite lost copies) and
// reconciles the copies' states.
func open(ctx context.Context, r shard.Router, name string, want Settings, in intent, opt shard.Options) (*Namespace, error) {
	if err := ValidateNamespace(name); err != nil {
		return nil, err
	}
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	opt = opt.WithDefaults()
	if err := want.Validate(opt.MaxID); err != nil {
		return nil, err
	}
	for again := false; ; again = true {
		ns := &Namespace{Name: name, r: r, opt: opt}
		c, err := readCopies(ctx, r, name)
		if err != nil {
			return nil, err
		}
		recreate, err := ns.decide(ctx, c, want, in, again)
		if errors.Is(err, errRaced) && !again {
			continue // open what the other creator wrote (finishing its creation if need be)
		}
		if err != nil {
			return nil, err
		}
		if err := ns.act(ctx, c, want, in, recreate); err != nil {
			return nil, err
		}
		return ns, nil
	}
}

// copies is what the copies of a namespace record say, read without
// writing.
type copies struct {
	keys    []string
	recs    []*record // by copy; nil: absent or unreadable
	found   *record   // a copy found (copies agree on all but the state)
	state   nsState   // the newest state of the copies found
	ready   bool      // a copy found is ready
	missing []string  // lost, or left unready by a creator that could not finish them
	errs    []error   // copies that could not be read
}

// readCopies reads every copy of name's record. It fails only when copies
// disagree on what decides the IDs (shards, start, layout).
func readCopies(ctx context.Context, r shard.Router, name string) (copies, error) {
	c := copies{keys: MetaKeys(name)}
	c.recs = make([]*record, len(c.keys))
	for k, key := range c.keys {
		rec, err := readRecord(ctx, r, key)
		if err := c.add(k, rec, err, name); err != nil {
			return c, err
		}
	}
	return c, nil
}

// add records copy k of name's record: rec (nil: absent) or the error that
// kept it from being read. It fails when the copy disagrees with another on
// what decides the IDs.
func (c *copies) add(k int, rec *record, err error, name string) error {
	key := c.keys[k]
	switch {
	case err != nil:
		c.errs = append(c.errs, fmt.Errorf("namespace record %s: %w", key, err))
	case rec == nil:
		c.missing = append(c.missing, key)
	default:
		if !rec.ready {
			c.missing = append(c.missing, key)
		}
		if c.found != nil && (rec.shards != c.found.shards || rec.layout != c.found.layout || rec.start != c.found.start) {
			return fmt.Errorf("%w: copies of the record of namespace %q disagree (%d shards vs %d); fix or delete %v by hand", ErrBadRecord, name, rec.shards, c.found.shards, c.keys)
		}
		if c.found == nil || rec.newer(c.state) {
			c.state = rec.nsState
		}
		c.found = rec
		c.ready = c.ready || rec.ready
		c.recs[k] = rec
	}
	return nil
}

// decide sets the namespace's start, state and layout from the copies (or
// plans them for a new namespace) and reports whether a deleted namespace is
// to be recreated.
func (ns *Namespace) decide(ctx context.Context, c copies, want Settings, in intent, again bool) (recreate bool, err error) {
	if c.found == nil {
		return false, ns.decideNew(ctx, c, want, in, again)
	}
	f := c.found
	if want.Shards != 0 && want.Shards != f.shards {
		return false, fmt.Errorf("%w: namespace %q has %d shards in Redis but this client is configured with %d; use %d shards, or a new namespace",
			ErrShardCountMismatch, ns.Name, f.shards, want.Shards, f.shards)
	}
	if want.Start != 0 && want.Start != f.start {
		return false, fmt.Errorf("%w: namespace %q starts at %d in Redis, not %d", ErrSettingsMismatch, ns.Name, f.start, want.Start)
	}
	if c.state.deleted && !in.asIs {
		if want.NoCreate {
			return false, fmt.Errorf("%w: %q was deleted (recreate it first: it continues above every ID it handed out)", ErrNamespaceDeleted, ns.Name)
		}
		recreate = true
	}
	if in.strict != nil && *in.strict != c.state.strict && !recreate {
		return false, fmt.Errorf("%w: namespace %q has strict=%v in Redis, not %v", ErrSettingsMismatch, ns.Name, c.state.strict, *in.strict)
	}
	l, err := decodeLayout(f.layout, f.shards)
	if err != nil {
		return false, fmt.Errorf("namespace %q: %w", ns.Name, err)
	}
	ns.Start, ns.state = f.start, c.state
	ns.setLayout(l)
	return recreate, nil
}

// decideNew plans a namespace no copy of whose record was found: unless it
// may not be created, or traces of it show its record was lost.
func (ns *Namespace) decideNew(ctx context.Context, c copies, want Settings, in intent, again bool) error {
	if len(c.errs) > 0 {
		// Without every copy we cannot tell a new namespace from one whose
		// reachable copies were lost; creating it could overlap IDs.
		return fmt.Errorf("shard: cannot read namespace %q: %w", ns.Name, errors.Join(c.errs...))
	}
	if want.NoCreate {
		return fmt.Errorf("%w: %q (create it first)", ErrNamespaceNotFound, ns.Name)
	}
	if ns.opt.UnsafeDefences == shard.AllDefences {
		if trace, err := ns.traces(ctx); err != nil {
			return fmt.Errorf("shard: cannot tell whether namespace %q is new: %w", ns.Name, err)
		} else if trace != "" {
			if !again && ns.anyRecord(ctx, c.keys) {
				return errRaced
			}
			return fmt.Errorf("%w: namespace %q has no record, but %s: its record was lost with its masters' data, and creating it anew could repeat IDs. %s",
				ErrNamespaceLost, ns.Name, trace, lostHint)
		}
	}
	n := cmpOr(want.Shards, cmpOr(want.CreateShards, DefaultShards))
	ns.Start = cmpOr(want.Start, 1)
	ns.state = nsState{strict: want.Strict, gen: 1, created: time.Now().UnixMilli()}
	if in.strict != nil {
		ns.state.strict = *in.strict
	}
	l, err := PlanLayout(ns.Name, n, ns.r.Topology())
	if err != nil {
		return err
	}
	ns.setLayout(l)
	return nil
}

// act does what decide decided: it creates the namespace (or finishes a
// creation) when no copy is ready, rewrites lost copies, and recreates a
// deleted namespace or else reconciles the copies' states.
func (ns *Namespace) act(ctx context.Context, c copies, want Settings, in intent, recreate bool) error {
	switch {
	case !c.ready:
		created, err := ns.create(ctx, c.keys, want, in)
		if err != nil {
			return err
		}
		ns.Created = created
	case len(c.missing) > 0:
		// A copy lost with its master's data, or one a creator could not
		// mark ready: rewrite it, best effort. A copy left unready would
		// otherwise, once the ready ones are lost, send a later Open down
		// the creation path. The namespace is usable from the copies that
		// remain; a copy whose master is unreachable right now is left alone.
		ns.recordErr = ns.repairRecord(ctx, c.missing)
	}
	if c.ready && ns.opt.UnsafeDefences == shard.AllDefences {
		// A namespace created before traces existed gets them now, best
		// effort (a no-op, not even replicated, once they are there).
		_ = ns.writeTraces(ctx, false)
	}
	if recreate {
		if err := ns.recreate(ctx, c.keys, in); err != nil {
			return err
		}
	} else {
		ns.reconcile(ctx, c)
	}
	ns.Strict, ns.Generation, ns.Deleted = ns.state.strict, ns.state.gen, ns.state.deleted
	if ns.state.created > 0 {
		ns.CreatedAt = time.UnixMilli(ns.state.created)
	}
	return nil
}

// recreate brings a deleted namespace back as a new generation, with its
// stored strict mode unless in asks for one.
func (ns *Namespace) recreate(ctx context.Context, keys []string, in intent) error {
	st := nsState{strict: ns.state.strict, gen: ns.state.gen + 1, created: time.Now().UnixMilli()}
	if in.strict != nil {
		st.strict = *in.strict
	}
	got, err := ns.writeState(ctx, keys, st)
	if err != nil {
		return fmt.Errorf("shard: recreating namespace %q: %w", ns.Name, err)
	}
	if got.deleted {
		return fmt.Errorf("%w: %q was deleted again while it was recreated; try again", ErrNamespaceDeleted, ns.Name)
	}
	ns.state = got
	ns.Created, ns.Recreated = true, true
	return nil
}

// reconcile brings copies that missed a delete or a recreate (their master
// was down, or rewound) up to the newest state, best effort.
func (ns *Namespace) reconcile(ctx context.Context, c copies) {
	var behind []string
	for k, rec := range c.recs {
		if rec != nil && ns.state.newer(rec.nsState) {
			behind = append(behind, c.keys[k])
		}
	}
	if len(behind) > 0 {
		_, _ = ns.writeState(ctx, behind, ns.state)
	}
}
