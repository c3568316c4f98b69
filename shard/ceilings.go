package shard

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Test hooks (export_test.go): noTouch is ceilingArgs.NoTouch for every
// call and noStillSame skips the check after a raise (negative controls);
// beforeRaise, if set, runs between a reservation and the raise that covers
// it (a stall there).
var (
	noTouch, noStillSame atomic.Bool
	beforeRaise          atomic.Pointer[func()]
)

// The ceiling copies of a shard: claimed by a restore, raised ahead of
// blocks, repaired after their masters changed history.

// claimFloor is the restore of a counter whose history changed (stale is the
// reserve reply that said so): it claims every ceiling copy for the counter's
// new identity with an epoch above every copy's, after which no older
// history can raise them (a raise carries its counter's epoch, and a copy
// refuses any below its own), and returns the highest value a trusted copy
// held when claimed. Every ID any history handed out is at or below a
// ceiling that was confirmed on every copy first, so it is at or below that
// value. The claim starts one above the counter's (possibly rewound) epoch
// and moves above any copy that refuses it.
func (s *Shard) claimFloor(ctx context.Context, stale reserveReply) (floor, epoch int64, err error) {
	if s.opt.UnsafeDefences == LegacyDefences {
		return s.legacyFloor(ctx)
	}
	epoch = stale.Epoch + 1
	for attempt := 0; attempt < 3; attempt++ {
		reps, errs := s.onCopies(ctx, ceilingArgs{Op: ceilClaim, Epoch: epoch, Expect: stale.ReplID})
		floor, newer, claimed := int64(-1), int64(0), 0
		for c, r := range reps {
			switch {
			case errs[c] != nil:
			case r.Stale:
				newer = max(newer, r.Epoch)
			default:
				claimed++
				if r.Trusted {
					floor = max(floor, r.V)
				}
			}
		}
		if newer > 0 {
			// Someone claimed with a newer epoch meanwhile: claim above it.
			epoch = newer + 1
			continue
		}
		if floor < 0 {
			return 0, 0, fmt.Errorf("%w: shard %d of %q: the counter %s lost its history (now %s) and none of its ceiling copies %v is both reachable and trusted (claimed %d): %w. %s",
				ErrCeilingLost, s.Index, s.name, s.Key, stale.ReplID, s.CeilingKeys, claimed, errors.Join(errs...), restoreHint)
		}
		return min(floor+s.opt.FenceGap, s.maxSeq), epoch, nil
	}
	return 0, 0, fmt.Errorf("shard %d: ceiling copies of %s keep being claimed by newer epochs; try again", s.Index, s.Key)
}

// legacyFloor is LegacyDefences' restore: any copy's value, trusted or not,
// plus the old gap.
func (s *Shard) legacyFloor(ctx context.Context) (int64, int64, error) {
	reps, errs := s.onCopies(ctx, ceilingArgs{Op: ceilRead})
	for c, r := range reps {
		if errs[c] == nil && r.V >= 0 {
			return min(r.V+LegacyFenceGap, s.maxSeq), 0, nil
		}
	}
	return 0, 0, fmt.Errorf("%w: %s and its ceilings %v are all missing", ErrCounterMissing, s.Key, s.CeilingKeys)
}

// raise raises every ceiling copy to at least to for the counter's epoch
// (of the history counter). It succeeds only if every copy confirmed it.
func (s *Shard) raise(ctx context.Context, to, epoch int64, counter string) error {
	op := ceilRaise
	if s.opt.UnsafeDefences == LegacyDefences {
		op = ceilLegacyRaise
	}
	reps, errs := s.onCopies(ctx, ceilingArgs{Op: op, Epoch: epoch, Value: to})
	var suspect bool
	var stale []ceilingReply
	for c, r := range reps {
		switch {
		case errs[c] != nil:
			return fmt.Errorf("ceiling %s: %w", s.CeilingKeys[c], errs[c])
		case r.Stale:
			stale = append(stale, r)
		case r.V < to:
			return fmt.Errorf("%w: ceiling %s at %d after a raise to %d", ErrBadRecord, s.CeilingKeys[c], r.V, to)
		}
		suspect = suspect || !r.Trusted
	}
	if len(stale) > 0 {
		err := fmt.Errorf("%w: ceiling copies of %s belong to epoch %d, this counter has %d: another history claimed them",
			ErrFenced, s.Key, stale[0].Epoch, epoch)
		newest, own, owner := int64(0), counter != "", ""
		for _, r := range stale {
			newest = max(newest, r.Epoch)
			own = own && r.Owner == counter
			if r.Owner != counter {
				owner = r.Owner
			}
		}
		if own {
			return &ownClaimError{epoch: newest, err: err}
		}
		if counter == "" {
			return err
		}
		return &otherClaimError{epoch: newest, owner: owner, err: err}
	}
	for cur := s.confirmed.Load(); to > cur && !s.confirmed.CompareAndSwap(cur, to); cur = s.confirmed.Load() {
	}
	if suspect && s.opt.UnsafeDefences == AllDefences {
		// A copy's master changed history since the copy was last trusted:
		// make it trusted again now rather than at the next sweep.
		go s.repairSoon()
	}
	return nil
}

func (s *Shard) repairSoon() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = s.repairCeilings(ctx)
}

// onCopies runs ceiling.lua on every copy at once (they sit on different
// masters) and returns each copy's reply or error.
func (s *Shard) onCopies(ctx context.Context, a ceilingArgs) ([]ceilingReply, []error) {
	reps := make([]ceilingReply, len(s.CeilingKeys))
	errs := make([]error, len(s.CeilingKeys))
	wait := s.opt.AckTimeout.Milliseconds()
	a.Trace, a.NoRetrace = s.traceName(), s.noRetrace
	a.NoTouch = noTouch.Load()
	var wg sync.WaitGroup
	for c, key := range s.CeilingKeys {
		wg.Go(func() {
			ack, err := runScript(ctx, s.r, ceilingScript, withTrace(key), s.opt.waitFor(), wait, a.argv())
			if err != nil {
				errs[c] = s.classify(err)
				return
			}
			r, err := parseCeilingReply(ack.Values)
			if err != nil {
				errs[c] = fmt.Errorf("ceiling %s: %w", key, err)
				return
			}
			reps[c] = r
			if a.Op != ceilRead && !r.Stale {
				errs[c] = CheckAck(s.r, s.opt, ack)
			}
		})
	}
	wg.Wait()
	return reps, errs
}

// RepairResult says what a repair of one shard did.
type RepairResult struct {
	Restored bool // the counter's history had changed; it was restored
	Copies   int  // ceiling copies made trusted again
}

// Repair checks one shard after a master changed history: it restores the
// counter if its history changed, and rewrites ceiling copies that are
// missing or no longer trusted. It writes nothing when nothing changed.
func (s *Shard) Repair(ctx context.Context) (RepairResult, error) {
	return s.repairCeilings(ctx)
}

// repairCeilings makes every ceiling copy trusted again. A copy may be made
// trusted only with a value at or above every ceiling ever confirmed: a
// trusted copy holds that already; with no copy trusted, the counter's value
// plus MaxLease does, since every ceiling was raised from a block at or below
// the counter and no lease exceeds MaxLease.
func (s *Shard) repairCeilings(ctx context.Context) (RepairResult, error) {
	var res RepairResult
	if s.opt.UnsafeDefences != AllDefences {
		return res, nil
	}
	s.repairing.Lock()
	defer s.repairing.Unlock()
	b, rep, err := s.reserve(ctx, 0, func() int64 { return 0 })
	if err != nil {
		return res, err
	}
	res.Restored = b.Fence != NotFenced
	reps, errs := s.onCopies(ctx, ceilingArgs{Op: ceilRead})
	value, trusted := rep.Confirmed, false
	for c, r := range reps {
		if errs[c] == nil && r.Trusted {
			value, trusted = max(value, r.V), true
		}
	}
	if !trusted {
		value = max(value, min(rep.Hi+MaxLease, s.maxSeq))
	}
	var failed []error
	for c, r := range reps {
		if errs[c] != nil || r.Trusted {
			failed = append(failed, errs[c])
			continue
		}
		ack, err := acked(ctx, s.r, s.opt, ceilingScript, withTrace(s.CeilingKeys[c]), s.opt.AckTimeout.Milliseconds(),
			ceilingArgs{Op: ceilRepair, Epoch: rep.Epoch, Value: value, Expect: r.ReplID, Trace: s.traceName(), NoRetrace: s.noRetrace}.argv())
		if err == nil {
			var got ceilingReply
			switch got, err = parseCeilingReply(ack.Values); {
			case err != nil:
			case got.Stale:
				err = fmt.Errorf("%w: ceiling %s belongs to epoch %d, the counter has %d", ErrFenced, s.CeilingKeys[c], got.Epoch, rep.Epoch)
			case got.Changed:
				err = fmt.Errorf("ceiling %s: its master changed history again while it was repaired; try again", s.CeilingKeys[c])
			}
		}
		if err != nil {
			failed = append(failed, fmt.Errorf("ceiling %s: %w", s.CeilingKeys[c], err))
			continue
		}
		res.Copies++
	}
	return res, errors.Join(failed...)
}
