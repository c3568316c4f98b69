package namespace

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/shardseq/shardseq/shard"
)

// NamespaceRepair says what RepairNamespace did.
type NamespaceRepair struct {
	Shards   int // shards checked
	Restored int // counters whose history had changed, restored
	Copies   int // ceiling copies made trusted again
	// Found: the namespace's record was read, so its name belongs in every
	// copy of the index (RepairNamespaceUnindexed leaves that to AddToIndex).
	Found bool
}

// RepairNamespace checks namespace name after masters changed history (a
// restart, a promotion, a rewind): changed reports whether the master at an
// address is one of them (nil: all). It rewrites lost copies of the record,
// restores counters and repairs ceilings on those masters. It creates
// nothing. A shard whose keys are all on masters that did not change is not
// looked at; one whose counter did not change costs a read of the counter
// and of its copies (none of them waits for replicas), and a confirmed write
// per copy to repair.
func RepairNamespace(ctx context.Context, r shard.Router, name string, changed func(addr string) bool, opt shard.Options) (NamespaceRepair, error) {
	return repairNamespace(ctx, r, name, changed, opt, true)
}

// RepairNamespaceUnindexed is RepairNamespace without re-adding the name to
// the index: for a sweep, which adds the names of a whole page to each copy
// of the index in one script (AddToIndex) instead of three per namespace.
// Found in its result says whether the name is to be added.
func RepairNamespaceUnindexed(ctx context.Context, r shard.Router, name string, changed func(addr string) bool, opt shard.Options) (NamespaceRepair, error) {
	return repairNamespace(ctx, r, name, changed, opt, false)
}

func repairNamespace(ctx context.Context, r shard.Router, name string, changed func(addr string) bool, opt shard.Options, index bool) (NamespaceRepair, error) {
	var rep NamespaceRepair
	// A deleted namespace is repaired like any other: its counters and
	// ceilings are what a recreation continues above.
	ns, err := open(ctx, r, name, Settings{NoCreate: true}, intent{asIs: true}, opt)
	if err != nil {
		return rep, err
	}
	rep.Found = true
	if opt.WithDefaults().UnsafeDefences != shard.AllDefences {
		return rep, nil
	}
	// A record copy or index entry that could not be rewritten is an error
	// like a shard's: the sweep is retried until they are back.
	var errs []error
	if ns.recordErr != nil {
		errs = append(errs, fmt.Errorf("record: %w", ns.recordErr))
	}
	if index {
		if err := ns.addToIndex(ctx, true); err != nil {
			errs = append(errs, fmt.Errorf("index: %w", err))
		}
	}
	on := func(key string) bool {
		if changed == nil {
			return true
		}
		m, _, err := r.MasterForKey(key)
		return err != nil || changed(m.Addr)
	}
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

// AddToIndex adds names to every copy of the index of namespaces, one
// script per copy (all at once), each confirmed by the copy's replicas; it
// fails unless every copy confirmed. A sweep re-adds with it the names of a
// page whose records it found (RepairNamespaceUnindexed).
func AddToIndex(ctx context.Context, r shard.Router, names []string, opt shard.Options) error {
	if len(names) == 0 {
		return nil
	}
	if err := opt.Validate(); err != nil {
		return fmt.Errorf("shard: %w", err)
	}
	opt = opt.WithDefaults()
	wait := (&Namespace{opt: opt}).createWait()
	a := indexArgs{Op: indexAdd, Name: names[0], More: names[1:]}.argv()
	errs := make([]error, metaCopies)
	var wg sync.WaitGroup
	for c := range metaCopies {
		wg.Go(func() {
			_, errs[c] = shard.AckedKeys(ctx, r, opt, indexScript, indexCopyKeys(c), wait, a)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("shard: adding %d namespaces to the index: %w", len(names), err)
	}
	return nil
}
