package namespace

import (
	"context"
	"errors"
	"fmt"

	"github.com/shardseq/shardseq/shard"
)

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
func RepairNamespace(ctx context.Context, r shard.Router, name string, changed func(addr string) bool, opt shard.Options) (NamespaceRepair, error) {
	var rep NamespaceRepair
	// A deleted namespace is repaired like any other: its counters and
	// ceilings are what a recreation continues above.
	ns, err := open(ctx, r, name, Settings{NoCreate: true}, intent{asIs: true}, opt)
	if err != nil {
		return rep, err
	}
	if opt.WithDefaults().UnsafeDefences != shard.AllDefences {
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
