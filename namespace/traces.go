package namespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/shard"
)

// Traces of a namespace: what refuses to create anew a namespace whose
// record was lost while keys of it survive (ErrNamespaceLost), in a time
// that does not grow with the number of namespaces.
//
// A lost namespace's keys cannot be found from its name alone: its layout
// was planned against the slot map of its day (PlanLayout's hash tags are
// the first of name:N:i:k, k = 0, 1, ..., whose slot fits that map), and N
// itself was in the lost record. So every slot that holds a counter or a
// ceiling copy of a namespace also holds a trace: the name, in a set at a
// key of that very slot (traceKey). A key and its slot's trace live and die
// together: they move together on a reshard, and the trace is written and
// confirmed by the replicas before the key is created, so every history of
// the master that holds the key (a replica promoted, a dump) holds the
// trace too. A reshard parts them for a moment (MIGRATE moves a slot's keys
// one at a time): if its source restarts empty then, a key that moved is
// left without its trace, and the next script run on it (package shard,
// retrace in lua/prelude.lua) traces it again. A creation looks the name up in the trace set of every slot,
// one script per master: 16384 SISMEMBERs whatever the number of
// namespaces, where a SCAN of every key used to grow with it. (A script may
// reach keys of several slots of its master, but one command may not: one
// EXISTS of many keys is refused.)

// traceKey is the key of the trace set of slot s (shard.TraceKey: the
// scripts of package shard write traces too).
func traceKey(s int) string { return shard.TraceKey(s) }

// noScriptTraces stops the scripts of package shard from tracing the keys
// they create after the namespace's creation (a counter restored, a ceiling
// copy rebuilt; shard.Config.NoTraces): the negative control of the tests.
var noScriptTraces atomic.Bool

// noRetrace stops the scripts of package shard from tracing again a key
// they find without its trace (shard.Config.NoRetrace): the negative
// control of TestSplitMigrationLosesTrace.
var noRetrace atomic.Bool

// noClaimedCheck skips the check a creation repeats once it claimed the
// record (checkClaimed): the negative control of the tests.
var noClaimedCheck atomic.Bool

// beforeClaim, if set, is called by a creation right before it claims the
// record, after the first check: where the tests pause a creator.
var beforeClaim atomic.Pointer[func(name string)]

// beforeCreate, if set, is given to the shards opened meanwhile (see
// shard.Config.BeforeCreate): tests pause a creator with it.
var beforeCreate atomic.Pointer[func(key string)]

// noTraceCheck switches the trace check off (only the index is looked at):
// the negative control of the tests, which shows what the check prevents.
var noTraceCheck atomic.Bool

// keys are the counter and ceiling keys of the layout.
func (l Layout) keys() []string {
	out := make([]string, 0, (1+CeilingCopies)*l.Shards)
	for i := range l.Counters {
		out = append(out, l.CounterKey(i))
		for c := range l.Ceilings[i] {
			out = append(out, l.CeilingKey(i, c))
		}
	}
	return out
}

// writeTraces adds the namespace to the trace set of every slot its layout
// uses, one script per master. acked: each confirmed by the master's
// replicas (a creation, before it creates a key); otherwise best effort and
// unconfirmed (the backfill of a namespace created before traces existed).
func (ns *Namespace) writeTraces(ctx context.Context, acked bool) error {
	byMaster := map[string][]any{}
	seen := map[int]bool{}
	for _, k := range ns.Layout.keys() {
		s := cluster.Slot(k)
		if seen[s] {
			continue
		}
		seen[s] = true
		tk := traceKey(s)
		m, _, err := ns.r.MasterForKey(tk)
		if err != nil {
			return fmt.Errorf("shard: tracing namespace %q: %w", ns.Name, err)
		}
		if byMaster[m.Addr] == nil {
			byMaster[m.Addr] = []any{ns.Name}
		}
		byMaster[m.Addr] = append(byMaster[m.Addr], tk)
	}
	errs := make([]error, 0, len(byMaster))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, args := range byMaster {
		wg.Go(func() {
			route := args[1].(string)
			var err error
			if acked {
				_, err = shard.Acked(ctx, ns.r, ns.opt, traceScript, route, ns.createWait(), args)
			} else {
				_, err = shard.RunScript(ctx, ns.r, traceScript, route, -1, 0, args)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("shard: tracing namespace %q on the master of %s: %w", ns.Name, route, err))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// findTrace looks the namespace up in the trace set of every slot, one
// script per master (all at once), and says where it found it; "" when
// nowhere. It fails closed: a slot no master serves, or a master that
// cannot answer, is an error, never "no trace". A master whose slots
// changed under it is asked again once, after a reload of the slot map.
// Trace sets a master could not read (their slot moved since the map was
// read, or is being migrated) are read where the slot is now (readUnread).
func (ns *Namespace) findTrace(ctx context.Context) (string, error) {
	where, unread, err := ns.findTraceOnce(ctx, ns.r.Topology())
	if err != nil {
		top, rerr := ns.r.Reload(ctx)
		if rerr != nil {
			return "", err
		}
		if where, unread, err = ns.findTraceOnce(ctx, top); err != nil {
			return "", err
		}
	}
	if where != "" || len(unread) == 0 {
		return where, nil
	}
	return ns.readUnread(ctx, unread)
}

func (ns *Namespace) findTraceOnce(ctx context.Context, top *cluster.Topology) (string, []string, error) {
	if top == nil {
		return "", nil, errors.New("no slot map")
	}
	if missing := top.Missing(); len(missing) > 0 {
		return "", nil, fmt.Errorf("slots %v are served by no master", missing)
	}
	byMaster := map[string][]string{}
	for _, m := range top.Masters {
		for _, r := range m.Slots {
			for s := r[0]; s <= r[1]; s++ {
				byMaster[m.Addr] = append(byMaster[m.Addr], traceKey(s))
			}
		}
	}
	return ns.lookUp(ctx, byMaster)
}

// lookUp runs the trace check on each master with its trace keys, all at
// once: where the name was found, or the keys no master could read.
func (ns *Namespace) lookUp(ctx context.Context, byMaster map[string][]string) (string, []string, error) {
	type answer struct {
		addr, key string
		unread    []string
		err       error
	}
	var answers []answer
	var mu sync.Mutex
	var wg sync.WaitGroup
	for addr, keys := range byMaster {
		args := make([]any, 0, 1+len(keys))
		args = append(args, ns.Name)
		for _, k := range keys {
			args = append(args, k)
		}
		wg.Go(func() {
			key, unread, err := evalSha(ctx, ns.r.Node(addr), args)
			mu.Lock()
			answers = append(answers, answer{addr, key, unread, err})
			mu.Unlock()
		})
	}
	wg.Wait()
	var errs []error
	var unread []string
	for _, a := range answers {
		switch {
		case a.err != nil:
			errs = append(errs, fmt.Errorf("looking for traces on %s: %w", a.addr, a.err))
		case a.key != "":
			return fmt.Sprintf("keys of it exist on %s (its trace in %s)", a.addr, a.key), nil, nil
		}
		unread = append(unread, a.unread...)
	}
	return "", unread, errors.Join(errs...)
}

// maxMigrating bounds the trace sets left unread once the slot map is
// fresh: slots being migrated right now (redis-cli migrates one slot at a
// time per source). Each is read after its ASK redirection, one call each.
const maxMigrating = 16

// readUnread reads the trace sets that the masters of an older slot map
// could not: with a fresh map, on their slots' masters now; those still
// unread (their slot is being migrated and the set is not on the source)
// one by one, routed by the ASK redirection like any script.
func (ns *Namespace) readUnread(ctx context.Context, keys []string) (string, error) {
	top, err := ns.r.Reload(ctx)
	if err != nil {
		return "", err
	}
	byMaster := map[string][]string{}
	for _, k := range keys {
		m, ok := top.MasterForSlot(cluster.Slot(k))
		if !ok {
			return "", fmt.Errorf("slot %d is served by no master", cluster.Slot(k))
		}
		byMaster[m.Addr] = append(byMaster[m.Addr], k)
	}
	where, unread, err := ns.lookUp(ctx, byMaster)
	switch {
	case err != nil || where != "":
		return where, err
	case len(unread) > maxMigrating:
		return "", fmt.Errorf("%d trace sets could not be read (slots moving faster than the slot map is read)", len(unread))
	}
	for _, key := range unread {
		rep, err := shard.RunScript(ctx, ns.r, traceCheckScript, key, -1, 0, []any{ns.Name, key})
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", key, shard.ClassifyNode(err))
		}
		found, again, err := parseTraceCheck(rep.Values)
		switch {
		case err != nil:
			return "", err
		case found != "":
			return fmt.Sprintf("keys of it exist on %s (its trace in %s)", rep.Node, found), nil
		case len(again) > 0:
			return "", fmt.Errorf("%s could not be read where its slot redirects to (%s)", key, rep.Node)
		}
	}
	return "", nil
}

// inIndex reports whether name is in the index of namespaces: in any copy,
// each looked up with one ZSCORE (after the merge of a legacy set, see
// lua/index.lua). It fails only if no copy can be read.
func inIndex(ctx context.Context, r shard.Router, name string) (bool, error) {
	var errs []error
	read := 0
	for c := range metaCopies {
		rep, err := shard.RunScriptKeys(ctx, r, indexScript, indexCopyKeys(c), -1, 0, indexArgs{Op: indexHas, Name: name}.argv())
		if err == nil {
			var names []string
			if names, _, err = parseIndexReply(rep.Values); err == nil {
				if slices.Contains(names, name) {
					return true, nil
				}
				read++
			}
		}
		errs = append(errs, err)
	}
	if read == 0 {
		return false, fmt.Errorf("shard: reading the index of namespaces: %w", errors.Join(errs...))
	}
	return false, nil
}

// evalSha runs the trace check on node, loading it first if the node lacks
// it: EVAL is not in the ACL shardseq documents (README), SCRIPT LOAD is.
// The prelude's refusals (an evicting master) are classified as the other
// scripts' are. It returns the trace key holding the name, or the keys the
// node could not read.
func evalSha(ctx context.Context, node *redis.Client, args []any) (string, []string, error) {
	vals, err := traceCheckScript.EvalSha(ctx, node, nil, args...).Slice()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		if err := traceCheckScript.Load(ctx, node).Err(); err != nil {
			return "", nil, err
		}
		vals, err = traceCheckScript.EvalSha(ctx, node, nil, args...).Slice()
	}
	if err != nil {
		return "", nil, shard.ClassifyNode(err)
	}
	return parseTraceCheck(vals)
}

// parseTraceCheck reads tracecheck.lua's reply {found, unread..., node
// state}.
func parseTraceCheck(vals []any) (found string, unread []string, err error) {
	if _, err := shard.ParseNodeState(vals); err != nil || len(vals) < 4 {
		return "", nil, fmt.Errorf("%w: trace check reply %v", shard.ErrBadRecord, vals)
	}
	vals = vals[:len(vals)-3]
	strs := make([]string, len(vals))
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			return "", nil, fmt.Errorf("%w: trace check reply %v", shard.ErrBadRecord, vals)
		}
		strs[i] = s
	}
	return strs[0], strs[1:], nil
}
