package shard

import (
	"context"
	"errors"
	"fmt"
)

// Create creates the shard's counter at its first sequence number and then
// its ceiling copies, only for a shard that has none of them: if the counter
// or any copy exists, the shard was created before (by this creation, by a
// creator that died half-way, or long ago, with keys lost since), and what
// is missing is left to the restore and repair paths, which continue above
// what is left instead of starting again.
//
// wait is how long replicas get to confirm each write, in milliseconds.
// deadline (unix ms by the clock of the master of the namespace record's
// first copy; 0: none) is the creation's: every write that creates a key
// is refused by its master after it (ErrCreationLate), so a creator that
// stalls cannot write a key at its first value once the namespace may have
// been used (see late in lua/prelude.lua).
func (s *Shard) Create(ctx context.Context, wait, deadline int64) error {
	if s.opt.UnsafeDefences != LegacyDefences {
		reps, errs := s.onCopies(ctx, ceilingArgs{Op: ceilRead})
		if err := errors.Join(errs...); err != nil {
			return fmt.Errorf("shard: creating counter %s: %w", s.Key, err)
		}
		for _, r := range reps {
			if r.V >= 0 {
				return nil
			}
		}
		_, node, err := s.r.MasterForKey(s.Key)
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
	if s.beforeCreate != nil {
		s.beforeCreate(s.Key)
	}
	a := s.args(0, 0)
	// The first lease is registered at once: blocks are handed out only once
	// the record is ready, after every ceiling copy holds it.
	a.Create, a.Init, a.Confirmed, a.Deadline = true, s.initSeq, min(s.initSeq+FirstLease, s.maxSeq), deadline
	rep, err := acked(ctx, s.r, s.opt, reserveScript, withTrace(s.Key), wait, a.argv())
	if err != nil {
		return fmt.Errorf("shard: creating counter %s: %w", s.Key, s.classify(err))
	}
	if _, err := parseReserveReply(rep.Values, 0, s.maxSeq); err != nil {
		return fmt.Errorf("shard: creating counter %s: %w", s.Key, err)
	}
	return s.createCeilings(ctx, wait, deadline)
}

// createCeilings creates the ceiling copies a first lease ahead of the new
// counter, so the first blocks need no raise.
func (s *Shard) createCeilings(ctx context.Context, wait, deadline int64) error {
	v := min(s.initSeq+FirstLease, s.maxSeq)
	for _, key := range s.CeilingKeys {
		if s.beforeCreate != nil {
			s.beforeCreate(key)
		}
		a := ceilingArgs{Op: ceilCreate, Epoch: 1, Value: v, Trace: s.traceName(), Deadline: deadline, NoRetrace: s.noRetrace}
		if _, err := acked(ctx, s.r, s.opt, ceilingScript, withTrace(key), wait, a.argv()); err != nil {
			return fmt.Errorf("shard: creating ceiling %s: %w", key, s.classify(err))
		}
	}
	return nil
}
