package shard

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
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

	strict       *bool // Put: an explicit mode, checked against a live namespace and stored by a recreate
	allowDeleted bool  // open a deleted namespace as it is, without recreating it (Describe, Delete, repairs)
}

// MaxStart is the largest Start of a namespace whose IDs go up to maxID
// (0: DefaultMaxID): half the ID space, so that a namespace always has at
// least as many IDs ahead as it skipped.
func MaxStart(maxID int64) int64 {
	if maxID <= 0 {
		maxID = DefaultMaxID
	}
	return maxID / 2
}

// Validate reports the first setting out of its bounds for IDs up to maxID
// (0: DefaultMaxID).
func (s Settings) Validate(maxID int64) error {
	switch {
	case s.Shards < 0 || s.Shards > MaxShards:
		return fmt.Errorf("shard: %d shards: want 1 to %d (0: the stored N, or %d)", s.Shards, MaxShards, DefaultShards)
	case s.CreateShards < 0 || s.CreateShards > MaxShards:
		return fmt.Errorf("shard: %d shards for new namespaces: want 1 to %d (0: %d)", s.CreateShards, MaxShards, DefaultShards)
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
	Shards []*Shard
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
	r         Router
	opt       Options
	state     nsState
}

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
func Open(ctx context.Context, r Router, name string, want Settings, opt Options) (*Namespace, error) {
	return open(ctx, r, name, want, opt, false)
}

func open(ctx context.Context, r Router, name string, want Settings, opt Options, again bool) (*Namespace, error) {
	if err := ValidateNamespace(name); err != nil {
		return nil, err
	}
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	opt = opt.withDefaults()
	if err := want.Validate(opt.MaxID); err != nil {
		return nil, err
	}
	ns := &Namespace{Name: name, r: r, opt: opt}

	keys := MetaKeys(name)
	var found *record
	var state nsState
	ready := false
	var readErrs []error
	var missing []string // lost, or left unready by a creator that could not finish them
	recs := make([]*record, len(keys))
	for c, k := range keys {
		rec, err := readRecord(ctx, r, k)
		switch {
		case err != nil:
			readErrs = append(readErrs, fmt.Errorf("namespace record %s: %w", k, err))
		case rec == nil:
			missing = append(missing, k)
		default:
			if !rec.ready {
				missing = append(missing, k)
			}
			if found != nil && (rec.shards != found.shards || rec.layout != found.layout || rec.start != found.start) {
				return nil, fmt.Errorf("%w: copies of the record of namespace %q disagree (%d shards vs %d); fix or delete %v by hand", ErrBadRecord, name, rec.shards, found.shards, keys)
			}
			if found == nil || rec.newer(state) {
				state = rec.nsState
			}
			found = rec
			ready = ready || rec.ready
			recs[c] = rec
		}
	}
	if found == nil && len(readErrs) > 0 {
		// Without every copy we cannot tell a new namespace from one whose
		// reachable copies were lost; creating it could overlap IDs.
		return nil, fmt.Errorf("shard: cannot read namespace %q: %w", name, errors.Join(readErrs...))
	}
	n, start := want.Shards, want.Start
	var layout Layout
	recreate := false
	if found != nil {
		if n != 0 && n != found.shards {
			return nil, fmt.Errorf("%w: namespace %q has %d shards in Redis but this client is configured with %d; use %d shards, or a new namespace",
				ErrShardCountMismatch, name, found.shards, n, found.shards)
		}
		if start != 0 && start != found.start {
			return nil, fmt.Errorf("%w: namespace %q starts at %d in Redis, not %d", ErrSettingsMismatch, name, found.start, start)
		}
		if state.deleted && !want.allowDeleted {
			if want.NoCreate {
				return nil, fmt.Errorf("%w: %q was deleted (recreate it first: it continues above every ID it handed out)", ErrNamespaceDeleted, name)
			}
			recreate = true
		}
		if want.strict != nil && *want.strict != state.strict && !recreate {
			return nil, fmt.Errorf("%w: namespace %q has strict=%v in Redis, not %v", ErrSettingsMismatch, name, state.strict, *want.strict)
		}
		n, start = found.shards, found.start
		l, err := decodeLayout(found.layout, n)
		if err != nil {
			return nil, fmt.Errorf("namespace %q: %w", name, err)
		}
		layout = l
	} else {
		if want.NoCreate {
			return nil, fmt.Errorf("%w: %q (create it first)", ErrNamespaceNotFound, name)
		}
		if opt.Defences == AllDefences {
			if trace, err := ns.traces(ctx); err != nil {
				return nil, fmt.Errorf("shard: cannot tell whether namespace %q is new: %w", name, err)
			} else if trace != "" {
				if !again && ns.anyRecord(ctx, keys) {
					// A concurrent creator wrote its record after we read:
					// open what it wrote (finishing its creation if need be).
					return open(ctx, r, name, want, opt, true)
				}
				return nil, fmt.Errorf("%w: namespace %q has no record, but %s: its record was lost with its masters' data, and creating it anew could repeat IDs. %s",
					ErrNamespaceLost, name, trace, ns.repairHint())
			}
		}
		n, start = cmpOr(n, cmpOr(want.CreateShards, DefaultShards)), cmpOr(start, 1)
		layout = PlanLayout(name, n, r.Topology())
		state = nsState{strict: want.Strict, gen: 1, created: time.Now().UnixMilli()}
		if want.strict != nil {
			state.strict = *want.strict
		}
	}
	ns.Start = start
	ns.state = state
	ns.setLayout(layout)

	switch {
	case !ready:
		created, err := ns.create(ctx, keys, want)
		if err != nil {
			return nil, err
		}
		ns.Created = created
	case len(missing) > 0:
		// A copy lost with its master's data, or one a creator could not
		// mark ready: rewrite it, best effort. A copy left unready would
		// otherwise, once the ready ones are lost, send a later Open down
		// the creation path. The namespace is usable from the copies that
		// remain; a copy whose master is unreachable right now is left alone.
		_ = ns.repairRecord(ctx, missing)
	}
	if recreate {
		st := nsState{strict: ns.state.strict, gen: ns.state.gen + 1, created: time.Now().UnixMilli()}
		if want.strict != nil {
			st.strict = *want.strict
		}
		got, err := ns.writeState(ctx, keys, st)
		if err != nil {
			return nil, fmt.Errorf("shard: recreating namespace %q: %w", name, err)
		}
		if got.deleted {
			return nil, fmt.Errorf("%w: %q was deleted again while it was recreated; try again", ErrNamespaceDeleted, name)
		}
		ns.state = got
		ns.Created, ns.Recreated = true, true
	} else {
		var behind []string
		for c, rec := range recs {
			if rec != nil && ns.state.newer(rec.nsState) {
				behind = append(behind, keys[c])
			}
		}
		if len(behind) > 0 {
			// A copy that missed a delete or a recreate (its master was
			// down, or rewound): bring it up to date, best effort.
			_, _ = ns.writeState(ctx, behind, ns.state)
		}
	}
	ns.Strict, ns.Generation, ns.Deleted = ns.state.strict, ns.state.gen, ns.state.deleted
	if ns.state.created > 0 {
		ns.CreatedAt = time.UnixMilli(ns.state.created)
	}
	return ns, nil
}

// anyRecord reports whether a copy of the namespace's record exists now.
func (ns *Namespace) anyRecord(ctx context.Context, keys []string) bool {
	for _, k := range keys {
		if rec, err := readRecord(ctx, ns.r, k); err == nil && rec != nil {
			return true
		}
	}
	return false
}

// writeState writes st to the record copies keys (each only if st is newer
// than what it holds) and returns the newest state they hold afterwards. It
// fails only if no copy confirmed.
func (ns *Namespace) writeState(ctx context.Context, keys []string, st nsState) (nsState, error) {
	var errs []error
	var best nsState
	ok := false
	for _, k := range keys {
		rep, err := ns.acked(ctx, metaScript, k, ns.createWait(), ns.metaArgs(metaState, st).argv())
		var rec *record
		if err == nil {
			if rec, _, err = parseMetaReply(rep.values); err == nil && rec == nil {
				err = fmt.Errorf("%w: %s absent", ErrBadRecord, k)
			}
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("namespace record %s: %w", k, err))
			continue
		}
		if !ok || rec.newer(best) {
			best = rec.nsState
		}
		ok = true
	}
	if !ok {
		return nsState{}, errors.Join(errs...)
	}
	return best, nil
}

// metaArgs are the arguments of meta.lua for this namespace's record.
func (ns *Namespace) metaArgs(op metaOp, st nsState) metaArgs {
	return metaArgs{Op: op, Shards: ns.Layout.Shards, Layout: ns.Layout.encode(), Start: ns.Start, State: st}
}

func cmpOr[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// repairHint names what an operator can do about a lost namespace or shard.
func (ns *Namespace) repairHint() string {
	return fmt.Sprintf("Restore the masters' data, or give the namespace a new name; `shardseq namespace show %s` lists what is left", ns.Name)
}

func readRecord(ctx context.Context, r Router, key string) (*record, error) {
	rep, err := runAcked(ctx, r, metaScript, key, -1, 0, metaArgs{Op: metaRead}.argv())
	if err != nil {
		return nil, classifyNode(err)
	}
	rec, _, err := parseMetaReply(rep.values)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	return rec, nil
}

func (ns *Namespace) setLayout(l Layout) {
	ns.Layout = l
	ns.Shards = make([]*Shard, l.Shards)
	for i := range ns.Shards {
		s := &Shard{Index: i, Key: l.CounterKey(i), maxSeq: MaxSeq(i, l.Shards, ns.opt.MaxID),
			initSeq: firstSeq(ns.Start, i, l.Shards) - 1, ns: ns}
		for c := range l.Ceilings[i] {
			s.CeilingKeys = append(s.CeilingKeys, l.CeilingKey(i, c))
		}
		ns.Shards[i] = s
	}
}

// firstSeq is the first sequence number of shard i of n whose ID is at
// least start (and at least 1).
func firstSeq(start int64, i, n int) int64 {
	s := (start - int64(i) + int64(n) - 1) / int64(n)
	return max(s, 1)
}

// createWait gives replicas longer to confirm creation and repairs than a
// reservation gets (but less than the read timeout): they are rare and on
// nobody's hot path.
func (ns *Namespace) createWait() int64 {
	return max(ns.opt.AckTimeout, 700*time.Millisecond).Milliseconds()
}

// create writes the namespace record, adds the name to the index, creates
// counters and ceilings (each only where absent and each confirmed by the
// replicas), then marks the record ready. It is idempotent, so a creator
// that died half-way is finished by the next client. Another creator's
// record, written first, is adopted, unless want asked explicitly for a
// setting it does not have. It reports whether this call wrote the first
// copy (created the namespace).
func (ns *Namespace) create(ctx context.Context, keys []string, want Settings) (bool, error) {
	wait := ns.createWait()
	claim := func(key string, op metaOp) (*record, bool, error) {
		rep, err := ns.acked(ctx, metaScript, key, wait, ns.metaArgs(op, ns.state).argv())
		if err != nil {
			return nil, false, fmt.Errorf("shard: writing namespace record %s: %w", key, err)
		}
		rec, created, _, err := parseMetaReplyFull(rep.values)
		if err == nil && rec == nil {
			err = fmt.Errorf("%w: %s absent after a claim", ErrBadRecord, key)
		}
		return rec, created, err
	}

	// The first copy decides between concurrent creators.
	won, created, err := claim(keys[0], metaClaim)
	if err != nil {
		return false, err
	}
	switch {
	case won.shards != ns.Layout.Shards && want.Shards != 0:
		return false, fmt.Errorf("%w: namespace %q was just created with %d shards by another client; this one has %d", ErrShardCountMismatch, ns.Name, won.shards, want.Shards)
	case won.start != ns.Start && want.Start != 0:
		return false, fmt.Errorf("%w: namespace %q was just created starting at %d by another client, not %d", ErrSettingsMismatch, ns.Name, won.start, want.Start)
	case !created && want.strict != nil && won.strict != *want.strict:
		return false, fmt.Errorf("%w: namespace %q was just created with strict=%v by another client, not %v", ErrSettingsMismatch, ns.Name, won.strict, *want.strict)
	case won.layout != ns.Layout.encode() || won.start != ns.Start:
		l, err := decodeLayout(won.layout, won.shards)
		if err != nil {
			return false, err
		}
		ns.Start = won.start
		ns.setLayout(l)
	}
	ns.state = won.nsState
	for _, k := range keys[1:] {
		rec, _, err := claim(k, metaClaim)
		if err != nil {
			return false, err
		}
		if rec.shards != won.shards || rec.layout != won.layout || rec.start != won.start {
			return false, fmt.Errorf("%w: copy %s of namespace %q disagrees with %s", ErrBadRecord, k, ns.Name, keys[0])
		}
	}
	// A name in the index was created completely once (the index is
	// written only after every counter and ceiling): it is never created
	// again, only repaired, whatever its record copies say.
	indexed := false
	if ns.opt.Defences != LegacyDefences {
		names, err := ListNamespaces(ctx, ns.r)
		if err != nil {
			return false, fmt.Errorf("shard: cannot tell whether namespace %q was created before: %w", ns.Name, err)
		}
		indexed = slices.Contains(names, ns.Name)
	}
	if !indexed {
		for _, s := range ns.Shards {
			if err := s.create(ctx, wait); err != nil {
				return false, err
			}
		}
		if ns.opt.Defences != LegacyDefences {
			if err := ns.addToIndex(ctx); err != nil {
				return false, err
			}
		}
	}
	for _, k := range keys {
		if _, _, err := claim(k, metaReady); err != nil {
			return false, err
		}
	}
	return created, nil
}

// create creates the shard's counter at its first sequence number and then
// its ceiling copies, only for a shard that has none of them: if the counter
// or any copy exists, the shard was created before (by this creation, by a
// creator that died half-way, or long ago, with keys lost since), and what
// is missing is left to the restore and repair paths, which continue above
// what is left instead of starting again.
func (s *Shard) create(ctx context.Context, wait int64) error {
	if s.ns.opt.Defences != LegacyDefences {
		reps, errs := s.onCopies(ctx, ceilingArgs{Op: ceilRead})
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("shard: creating counter %s: %w", s.Key, err)
		}
		for _, r := range reps {
			if r.V >= 0 {
				return nil
			}
		}
		_, node, err := s.ns.r.MasterForKey(s.Key)
		if err != nil {
			return fmt.Errorf("shard: creating counter %s: %w", s.Key, err)
		}
		if n, err := node.Exists(ctx, s.Key).Result(); err != nil || n > 0 {
			if err != nil {
				return fmt.Errorf("shard: creating counter %s: %w", s.Key, err)
			}
			return nil
		}
	}
	a := s.args(0, 0)
	// The first lease is registered at once: blocks are handed out only once
	// the record is ready, after every ceiling copy holds it.
	a.Create, a.Init, a.Ceiling = true, s.initSeq, min(s.initSeq+FirstLease, s.maxSeq)
	rep, err := s.ns.acked(ctx, reserveScript, s.Key, wait, a.argv())
	if err != nil {
		return fmt.Errorf("shard: creating counter %s: %w", s.Key, s.classify(err))
	}
	if _, err := parseReserveReply(rep.values, 0, s.maxSeq); err != nil {
		return fmt.Errorf("shard: creating counter %s: %w", s.Key, err)
	}
	return s.createCeilings(ctx, wait)
}

// createCeilings creates the ceiling copies a first lease ahead of the new
// counter, so the first blocks need no raise.
func (s *Shard) createCeilings(ctx context.Context, wait int64) error {
	v := min(s.initSeq+FirstLease, s.maxSeq)
	for _, key := range s.CeilingKeys {
		if _, err := s.ns.acked(ctx, ceilingScript, key, wait, ceilingArgs{Op: ceilCreate, Epoch: 1, Value: v}.argv()); err != nil {
			return fmt.Errorf("shard: creating ceiling %s: %w", key, s.classify(err))
		}
	}
	return nil
}

// repairRecord rewrites lost copies of a ready namespace record, with the
// namespace's state.
func (ns *Namespace) repairRecord(ctx context.Context, keys []string) error {
	var errs []error
	for _, k := range keys {
		for _, op := range []metaOp{metaClaim, metaReady} {
			if _, err := ns.acked(ctx, metaScript, k, ns.createWait(), ns.metaArgs(op, ns.state).argv()); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

// addToIndex adds the namespace to every copy of the index; one confirmed
// copy is enough (the others are repaired later).
func (ns *Namespace) addToIndex(ctx context.Context) error {
	var errs []error
	ok := false
	for _, k := range IndexKeys() {
		_, err := ns.acked(ctx, indexScript, k, ns.createWait(), indexArgs{Add: true, Name: ns.Name}.argv())
		ok = ok || err == nil
		errs = append(errs, err)
	}
	if !ok {
		return fmt.Errorf("shard: adding namespace %q to the index: %w", ns.Name, errors.Join(errs...))
	}
	return nil
}

// ListNamespaces returns the names in the index of namespaces: the union of
// its copies. It fails only if no copy can be read.
func ListNamespaces(ctx context.Context, r Router) ([]string, error) {
	seen := map[string]bool{}
	var errs []error
	read := 0
	for _, k := range IndexKeys() {
		rep, err := runAcked(ctx, r, indexScript, k, -1, 0, indexArgs{}.argv())
		if err == nil {
			var names []string
			if names, _, err = parseIndexReply(rep.values); err == nil {
				read++
				for _, n := range names {
					seen[n] = true
				}
			}
		}
		errs = append(errs, err)
	}
	if read == 0 {
		return nil, fmt.Errorf("shard: reading the index of namespaces: %w", errors.Join(errs...))
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	return out, nil
}

// traces describes what is left of a namespace that has no record: its name
// in the index, or keys under its hash-tag prefix on any master (a full SCAN
// of each master, done only when a namespace is about to be created). It
// returns "" when there is none.
func (ns *Namespace) traces(ctx context.Context) (string, error) {
	names, err := ListNamespaces(ctx, ns.r)
	if err != nil {
		return "", err
	}
	for _, n := range names {
		if n == ns.Name {
			return "it is in the index of namespaces", nil
		}
	}
	top := ns.r.Topology()
	if top == nil {
		return "", errors.New("no topology")
	}
	pattern := "shardseq:{" + ns.Name + ":*" // a namespace cannot hold ':' or glob characters
	for _, m := range top.Masters {
		if len(m.Slots) == 0 {
			continue
		}
		key, err := scanFirst(ctx, ns.r.Node(m.Addr), pattern)
		if err != nil {
			return "", fmt.Errorf("scanning %s: %w", m.Addr, err)
		}
		if key != "" {
			return fmt.Sprintf("key %s of it exists on %s", key, m.Addr), nil
		}
	}
	return "", nil
}

func scanFirst(ctx context.Context, node *redis.Client, pattern string) (string, error) {
	var cursor uint64
	for {
		keys, next, err := node.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return "", err
		}
		if len(keys) > 0 {
			return keys[0], nil
		}
		if next == 0 {
			return "", nil
		}
		cursor = next
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
// other shards' levels, which the shards' levelling keeps close.
func (ns *Namespace) Level(ctx context.Context) int64 {
	var mu sync.Mutex
	var level int64
	var wg sync.WaitGroup
	for _, s := range ns.Shards {
		wg.Go(func() {
			b, _, err := s.reserve(ctx, 0, func() int64 { return 0 })
			if err != nil {
				return
			}
			mu.Lock()
			level = max(level, b.Hi)
			mu.Unlock()
		})
	}
	wg.Wait()
	return level
}

// NamespaceRepair says what RepairNamespace did.
type NamespaceRepair struct {
	Shards   int // shards checked
	Restored int // counters whose history had changed, restored
	Copies   int // ceiling copies made trusted again
}

// RepairNamespace checks namespace name after masters changed history (a
// restart, a promotion, a rewind): changed reports whether the master at an
// address is one of them (nil: all). It rewrites lost copies of the record,
// restores counters and repairs ceilings on those masters. It creates
// nothing, and costs three reads per shard on a changed master.
func RepairNamespace(ctx context.Context, r Router, name string, changed func(addr string) bool, opt Options) (NamespaceRepair, error) {
	var rep NamespaceRepair
	// A deleted namespace is repaired like any other: its counters and
	// ceilings are what a recreation continues above.
	ns, err := Open(ctx, r, name, Settings{NoCreate: true, allowDeleted: true}, opt)
	if err != nil {
		return rep, err
	}
	if opt.Defences != AllDefences {
		return rep, nil
	}
	_ = ns.addToIndex(ctx)
	on := func(key string) bool {
		if changed == nil {
			return true
		}
		m, _, err := r.MasterForKey(key)
		return err != nil || changed(m.Addr)
	}
	var errs []error
	for _, s := range ns.Shards {
		hit := on(s.Key)
		for _, k := range s.CeilingKeys {
			hit = hit || on(k)
		}
		if !hit {
			continue
		}
		rep.Shards++
		res, err := s.Repair(ctx)
		if res.Restored {
			rep.Restored++
		}
		rep.Copies += res.Copies
		if err != nil {
			errs = append(errs, fmt.Errorf("shard %d: %w", s.Index, err))
		}
	}
	return rep, errors.Join(errs...)
}

// ValidateNamespace returns an error saying what a namespace name must look
// like, or nil.
func ValidateNamespace(name string) error {
	if ValidNamespace(name) {
		return nil
	}
	shown := name
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	return fmt.Errorf("%w: %q", ErrInvalidNamespace, strings.ToValidUTF8(shown, "?"))
}
