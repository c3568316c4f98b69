package namespace

import (
	"context"
	"errors"
	"fmt"
	"sync"
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
func (ns *Namespace) create(ctx context.Context, keys []string, want Settings, in intent) (bool, error) {
	// A layout with an empty or repeated key would put two shards on one
	// counter; once written it is the namespace's for good.
	if err := ns.Layout.Validate(ns.Layout.Shards); err != nil {
		return false, fmt.Errorf("namespace %q: refusing to write its planned layout: %w", ns.Name, err)
	}
	wait := ns.createWait()
	claim := func(key string, op metaOp) (*record, bool, error) {
		rep, err := shard.Acked(ctx, ns.r, ns.opt, metaScript, key, wait, ns.metaArgs(op, ns.state).argv())
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
	indexed := false
	if ns.opt.UnsafeDefences != shard.LegacyDefences {
		if indexed, err = inIndex(ctx, ns.r, ns.Name); err != nil {
			return false, fmt.Errorf("shard: cannot tell whether namespace %q was created before: %w", ns.Name, err)
		}
	}
	if !indexed {
		// Each slot's trace before its keys, so that no history of a
		// master holds a key of the namespace without its trace.
		if ns.opt.UnsafeDefences == shard.AllDefences {
			if won.unchecked && !noClaimedCheck.Load() {
				if err := ns.checkClaimed(ctx, keys[0]); err != nil {
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
		var wg sync.WaitGroup
		for i, s := range ns.Shards {
			wg.Go(func() { errs[i] = s.Create(ctx, wait) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return false, err
		}
		if ns.opt.UnsafeDefences != shard.LegacyDefences {
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

// checkClaimed runs the lost-record check again now that copy 0 of the
// record is claimed, and marks copy 0 checked. The check in decideNew ran
// before the claim: a creator paused in between (GC, SIGSTOP) may act on a
// stale answer, while another creator made the namespace, handed out IDs,
// and lost the record and index. Once copy 0 is claimed, no other creation
// can start, so a check after the claim is not stale. Traces of this very
// creation may exist only once a creator marked copy 0 checked (every
// creator checks before it writes a trace or a key): a trace found while
// copy 0 is still unchecked is another namespace's, and refuses.
func (ns *Namespace) checkClaimed(ctx context.Context, key string) error {
	trace, err := ns.traces(ctx)
	if err != nil {
		return fmt.Errorf("shard: cannot tell whether namespace %q is new: %w", ns.Name, err)
	}
	if trace != "" {
		rec, err := readRecord(ctx, ns.r, key)
		switch {
		case err != nil:
			return fmt.Errorf("shard: cannot tell whether namespace %q is new: %w", ns.Name, err)
		case rec == nil:
			return fmt.Errorf("namespace %q: record copy %s vanished while it was created; try again", ns.Name, key)
		case rec.unchecked:
			return fmt.Errorf("%w: namespace %q has no record but the one this creation just claimed, and %s: its record was lost with its masters' data, and creating it anew could repeat IDs. %s",
				ErrNamespaceLost, ns.Name, trace, lostHint)
		}
		// Another creator of this record passed the check since: the
		// trace may be its own.
	}
	rep, err := shard.Acked(ctx, ns.r, ns.opt, metaScript, key, ns.createWait(), ns.metaArgs(metaChecked, ns.state).argv())
	if err != nil {
		return fmt.Errorf("shard: marking namespace record %s checked: %w", key, err)
	}
	if rec, _, err := parseMetaReply(rep.Values); err != nil {
		return err
	} else if rec == nil || rec.unchecked {
		return fmt.Errorf("namespace %q: record copy %s lost or rewritten while it was created; try again", ns.Name, key)
	}
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
// copy is enough (the others are repaired later).
func (ns *Namespace) addToIndex(ctx context.Context) error {
	var errs []error
	ok := false
	for _, k := range IndexKeys() {
		_, err := shard.Acked(ctx, ns.r, ns.opt, indexScript, k, ns.createWait(), indexArgs{Add: true, Name: ns.Name}.argv())
		ok = ok || err == nil
		errs = append(errs, err)
	}
	if !ok {
		return fmt.Errorf("shard: adding namespace %q to the index: %w", ns.Name, errors.Join(errs...))
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
