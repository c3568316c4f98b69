package namespace

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardseq/shardseq/shard"
)

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
// record, written first, is adopted, unless want (or in) asked explicitly
// for a setting it does not have. It reports whether this call wrote the first
// copy (created the namespace).
func (ns *Namespace) create(ctx context.Context, keys []string, want Settings, in intent) (_ bool, err error) {
	// A layout with an empty or repeated key would put two shards on one
	// counter; once written it is the namespace's for good.
	if err := ns.Layout.Validate(ns.Layout.Shards); err != nil {
		return false, fmt.Errorf("namespace %q: refusing to write its planned layout: %w", ns.Name, err)
	}
	wait := ns.createWait()
	token := ns.creationToken()
	keysSent := false
	defer func() {
		// A creation that failed before it sent any key write withdraws
		// its registration, so that a retry need not wait for it. After a
		// key write was sent it stays: the write may still land (a frozen
		// master), and the registration is what keeps it harmless.
		if err != nil && !keysSent && token != "" && ctx.Err() == nil {
			for _, k := range keys {
				_, _ = shard.RunScript(ctx, ns.r, metaScript, k, -1, 0, ns.creationArgs(metaDone, token).argv())
			}
		}
	}()
	claim := func(key string, op metaOp) (*record, bool, error) {
		rep, err := shard.Acked(ctx, ns.r, ns.opt, metaScript, key, wait, ns.creationArgs(op, token).argv())
		if err != nil {
			return nil, false, fmt.Errorf("shard: writing namespace record %s: %w", key, err)
		}
		rec, created, _, err := parseMetaReplyFull(rep.Values)
		if err == nil && rec == nil {
			err = fmt.Errorf("%w: %s absent after a claim", ErrBadRecord, key)
		}
		return rec, created, err
	}

	if h := beforeClaim.Load(); h != nil {
		(*h)(ns.Name)
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
	case !created && in.strict != nil && won.strict != *in.strict:
		return false, fmt.Errorf("%w: namespace %q was just created with strict=%v by another client, not %v", ErrSettingsMismatch, ns.Name, won.strict, *in.strict)
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
	// A copy 0 found ready was finished by another creator (this one read
	// the copies before): its keys may have been used and lost since, so
	// none is created again at its first value.
	indexed := won.ready
	if !indexed && ns.opt.UnsafeDefences != shard.LegacyDefences {
		if indexed, err = inIndex(ctx, ns.r, ns.Name); err != nil {
			return false, fmt.Errorf("shard: cannot tell whether namespace %q was created before: %w", ns.Name, err)
		}
	}
	if !indexed {
		// Each slot's trace before its keys, so that no history of a
		// master holds a key of the namespace without its trace.
		if ns.opt.UnsafeDefences == shard.AllDefences {
			if won.unchecked && !noClaimedCheck.Load() {
				if err := ns.checkClaimed(ctx, keys); err != nil {
					return false, err
				}
			}
			if err := ns.writeTraces(ctx, true); err != nil {
				return false, err
			}
		}
		// The shards are independent: created all at once, a creation
		// costs a few round trips, not a few per shard.
		errs := make([]error, len(ns.Shards))
		keysSent = true
		var wg sync.WaitGroup
		for i, s := range ns.Shards {
			wg.Go(func() { errs[i] = s.Create(ctx, wait, won.deadline) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return false, err
		}
		if ns.opt.UnsafeDefences != shard.LegacyDefences {
			if err := ns.addToIndex(ctx, false); err != nil {
				return false, err
			}
		}
	}
	return created, ns.markReady(ctx, keys, token)
}

// The creation-freshness guard (issue 19, item 3; see lua/meta.lua): a
// creator writes keys only until creationTTL after it claimed copy 0 of the
// record (by that master's clock), and no creator marks the record ready
// until every other creator registered on it is past its deadline plus
// creationMargin, the clock skew allowed between masters. Variables, so
// that tests can shorten them.
var (
	creationTTL    atomic.Int64 // time.Duration
	creationMargin atomic.Int64 // time.Duration
	// noFreshness switches the guard off: the negative control of its test.
	noFreshness atomic.Bool
)

func init() {
	creationTTL.Store(int64(10 * time.Second))
	creationMargin.Store(int64(2 * time.Second))
}

// creationToken identifies this creation in the record's registrations; ""
// without the guard.
func (ns *Namespace) creationToken() string {
	if ns.opt.UnsafeDefences != shard.AllDefences || noFreshness.Load() {
		return ""
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// creationArgs are metaArgs for the creation with token.
func (ns *Namespace) creationArgs(op metaOp, token string) metaArgs {
	a := ns.metaArgs(op, ns.state)
	if token != "" {
		a.Token, a.TTL, a.Margin = token, time.Duration(creationTTL.Load()), time.Duration(creationMargin.Load())
	}
	return a
}

// markReady marks every copy of the record ready once this creation wrote
// all it will write, and no other creator may still write keys (one that
// stalled, crashed or runs concurrently): it withdraws its own registration
// from every copy and waits, within ctx, until no copy holds another
// creator's that is still within its deadline plus the margin; only then
// does it mark the copies ready (each checks again in its script). Every
// copy is looked at before any is marked: a copy 0 lost and claimed anew
// holds only the registrations made since, and once one copy is ready the
// namespace is used.
func (ns *Namespace) markReady(ctx context.Context, keys []string, token string) error {
	for token != "" {
		var wait time.Duration
		for _, k := range keys {
			rep, err := shard.RunScript(ctx, ns.r, metaScript, k, -1, 0, ns.creationArgs(metaDone, token).argv())
			var rec *record
			if err == nil {
				rec, _, err = parseMetaReply(rep.Values)
			}
			if err != nil {
				return fmt.Errorf("shard: reading namespace record %s: %w", k, shard.ClassifyNode(err))
			}
			if rec != nil {
				wait = max(wait, rec.wait)
			}
		}
		if wait == 0 {
			break
		}
		if err := ns.waitCreators(ctx, wait); err != nil {
			return err
		}
	}
	for _, k := range keys {
		for {
			rep, err := shard.Acked(ctx, ns.r, ns.opt, metaScript, k, ns.createWait(), ns.creationArgs(metaReady, token).argv())
			if err != nil {
				return fmt.Errorf("shard: writing namespace record %s: %w", k, err)
			}
			rec, _, err := parseMetaReply(rep.Values)
			if err != nil {
				return err
			}
			if rec == nil || rec.wait == 0 {
				break
			}
			if err := ns.waitCreators(ctx, rec.wait); err != nil {
				return err
			}
		}
	}
	return nil
}

// waitCreators waits up to wait (at most 250 ms at a time: a creator that
// finishes withdraws its registration) while another creation of the
// namespace may still write keys.
func (ns *Namespace) waitCreators(ctx context.Context, wait time.Duration) error {
	t := time.NewTimer(min(wait, 250*time.Millisecond))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("%w: namespace %q: another process's creation of it may write keys for %v more; try again: %w",
			ErrCreating, ns.Name, wait, ctx.Err())
	case <-t.C:
		return nil
	}
}

// checkClaimed runs the lost-record check again now that copy 0 of the
// record (keys[0]) is claimed, and marks every copy checked. The check in
// decideNew ran before the claim: a creator paused in between (GC, SIGSTOP)
// may act on a stale answer, while another creator made the namespace,
// handed out IDs, and lost the record and index. Once copy 0 is claimed, no
// other creation can start, so a check after the claim is not stale. Traces
// of this very creation may exist only once a creator marked a copy checked
// (every creator checks before it writes a trace or a key): a trace found
// while no copy is checked is another namespace's, and refuses. Checking
// every copy, not only copy 0, is what lets a creation that stopped half-way
// be finished after copy 0 was lost with its master's data: the copies that
// remain say that a creator of this record passed the check.
func (ns *Namespace) checkClaimed(ctx context.Context, keys []string) error {
	trace, err := ns.traces(ctx)
	if err != nil {
		return fmt.Errorf("shard: cannot tell whether namespace %q is new: %w", ns.Name, err)
	}
	if trace != "" {
		passed := false
		for i, key := range keys {
			rec, err := readRecord(ctx, ns.r, key)
			switch {
			case err != nil:
				return fmt.Errorf("shard: cannot tell whether namespace %q is new: %w", ns.Name, err)
			case rec == nil && i == 0:
				return fmt.Errorf("namespace %q: record copy %s vanished while it was created; try again", ns.Name, key)
			case rec != nil && !rec.unchecked && !rec.ready && rec.layout == ns.Layout.encode() && rec.shards == ns.Layout.Shards:
				// Another creator of this record passed the check
				// since: the trace may be its own. (A ready copy is
				// not enough: that namespace may have been used and
				// lost its keys since; the next open repairs it.)
				passed = true
			}
		}
		if !passed {
			return fmt.Errorf("%w: namespace %q has no record but the one this creation just claimed, and %s: its record was lost with its masters' data, and creating it anew could repeat IDs. %s",
				ErrNamespaceLost, ns.Name, trace, lostHint)
		}
	}
	rep, err := shard.Acked(ctx, ns.r, ns.opt, metaScript, keys[0], ns.createWait(), ns.metaArgs(metaChecked, ns.state).argv())
	if err != nil {
		return fmt.Errorf("shard: marking namespace record %s checked: %w", keys[0], err)
	}
	if rec, _, err := parseMetaReply(rep.Values); err != nil {
		return err
	} else if rec == nil || rec.unchecked {
		return fmt.Errorf("namespace %q: record copy %s lost or rewritten while it was created; try again", ns.Name, keys[0])
	}
	// Best effort, the copies at once (they sit on different masters): a
	// copy left unchecked only makes a later finish of this creation, after
	// copy 0 is lost, refuse (fail closed).
	var wg sync.WaitGroup
	for _, key := range keys[1:] {
		wg.Go(func() {
			_, _ = shard.Acked(ctx, ns.r, ns.opt, metaScript, key, ns.createWait(), ns.metaArgs(metaChecked, ns.state).argv())
		})
	}
	wg.Wait()
	return nil
}

// repairRecord rewrites lost copies of a ready namespace record, with the
// namespace's state.
func (ns *Namespace) repairRecord(ctx context.Context, keys []string) error {
	var errs []error
	for _, k := range keys {
		for _, op := range []metaOp{metaClaim, metaReady} {
			if _, err := shard.Acked(ctx, ns.r, ns.opt, metaScript, k, ns.createWait(), ns.metaArgs(op, ns.state).argv()); err != nil {
				errs = append(errs, err)
				break
			}
		}
	}
	return errors.Join(errs...)
}

// addToIndex adds the namespace to every copy of the index; one confirmed
// copy is enough for a creation (the others are repaired later, by
// RepairNamespace), all is what a repair needs.
func (ns *Namespace) addToIndex(ctx context.Context, all bool) error {
	var errs []error
	ok := false
	for c := range metaCopies {
		_, err := shard.AckedKeys(ctx, ns.r, ns.opt, indexScript, indexCopyKeys(c), ns.createWait(), indexArgs{Op: indexAdd, Name: ns.Name}.argv())
		ok = ok || err == nil
		errs = append(errs, err)
	}
	if !ok || all {
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("shard: adding namespace %q to the index: %w", ns.Name, err)
		}
	}
	return nil
}

// writeState writes st to the record copies keys (each only if st is newer
// than what it holds) and returns the newest state they hold afterwards. It
// fails only if no copy confirmed.
func (ns *Namespace) writeState(ctx context.Context, keys []string, st nsState) (nsState, error) {
	var errs []error
	var best nsState
	ok := false
	for _, k := range keys {
		rep, err := shard.Acked(ctx, ns.r, ns.opt, metaScript, k, ns.createWait(), ns.metaArgs(metaState, st).argv())
		var rec *record
		if err == nil {
			if rec, _, err = parseMetaReply(rep.Values); err == nil && rec == nil {
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
