package shard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Namespace is an opened namespace: its layout, read from (or written to) its
// record in Redis, and its shards.
type Namespace struct {
	Name   string
	Layout Layout
	Shards []*Shard
	r      Router
	opt    Options
}

// Open opens namespace name with n shards, creating it on first use.
//
// The namespace record (shard count and key layout) is kept in three copies.
// If any copy exists it is the truth: a different n is refused with
// ErrShardCountMismatch, and lost copies are rewritten. Otherwise the layout
// is planned against the live slot map and the first writer's plan wins.
func Open(ctx context.Context, r Router, name string, n int, opt Options) (*Namespace, error) {
	if !ValidNamespace(name) {
		return nil, fmt.Errorf("%w: %q", ErrInvalidNamespace, name)
	}
	if n < 1 || n > MaxShards {
		return nil, fmt.Errorf("shard: %d shards: want 1 to %d", n, MaxShards)
	}
	if err := opt.Validate(); err != nil {
		return nil, fmt.Errorf("shard: %w", err)
	}
	ns := &Namespace{Name: name, r: r, opt: opt.withDefaults()}

	keys := MetaKeys(name)
	var found *metaRecord
	ready := false
	var readErrs []error
	var missing []string
	for _, k := range keys {
		rec, err := ns.readMeta(ctx, k)
		switch {
		case err != nil:
			readErrs = append(readErrs, fmt.Errorf("namespace record %s: %w", k, err))
		case rec == nil:
			missing = append(missing, k)
		default:
			if found != nil && (rec.shards != found.shards || rec.layout != found.layout) {
				return nil, fmt.Errorf("%w: copies of the record of namespace %q disagree (%d shards vs %d); fix or delete %v by hand", ErrBadRecord, name, rec.shards, found.shards, keys)
			}
			found = rec
			ready = ready || rec.ready
		}
	}
	if found == nil && len(readErrs) > 0 {
		// Without every copy we cannot tell a new namespace from one whose
		// reachable copies were lost; creating it could overlap IDs.
		return nil, fmt.Errorf("shard: cannot read namespace %q: %w", name, errors.Join(readErrs...))
	}
	if found != nil && found.shards != n {
		return nil, fmt.Errorf("%w: namespace %q has %d shards in Redis but this client is configured with %d; use %d shards, or a new namespace",
			ErrShardCountMismatch, name, found.shards, n, found.shards)
	}

	var layout Layout
	if found != nil {
		l, err := decodeLayout(found.layout, n)
		if err != nil {
			return nil, fmt.Errorf("namespace %q: %w", name, err)
		}
		layout = l
	} else {
		layout = PlanLayout(name, n, r.Topology())
	}
	ns.setLayout(layout)

	switch {
	case !ready:
		if err := ns.create(ctx, keys, false); err != nil {
			return nil, err
		}
	case len(missing) > 0:
		// A copy lost with its master's data: rewrite it, best effort. The
		// namespace is usable from the copies that remain; a copy whose
		// master is merely unreachable right now is left alone.
		_ = ns.repair(ctx, missing)
	}
	return ns, nil
}

type metaRecord struct {
	shards int
	layout string
	ready  bool
}

func (ns *Namespace) readMeta(ctx context.Context, key string) (*metaRecord, error) {
	_, node, err := ns.r.MasterForKey(key)
	if err != nil {
		return nil, err
	}
	vals, err := node.HMGet(ctx, key, "shards", "layout", "ready").Result()
	if err != nil {
		return nil, err
	}
	if vals[0] == nil {
		return nil, nil
	}
	shards, err := strconv.Atoi(asString(vals[0]))
	if err != nil {
		return nil, fmt.Errorf("%w: %s shards=%v", ErrBadRecord, key, vals[0])
	}
	return &metaRecord{shards: shards, layout: asString(vals[1]), ready: asString(vals[2]) == "1"}, nil
}

func (ns *Namespace) setLayout(l Layout) {
	ns.Layout = l
	ns.Shards = make([]*Shard, l.Shards)
	for i := range ns.Shards {
		ns.Shards[i] = &Shard{Index: i, Key: l.CounterKey(ns.Name, i), MirrorKey: l.MirrorKey(ns.Name, i),
			maxSeq: MaxSeq(i, l.Shards, ns.opt.MaxID), ns: ns}
	}
}

// create writes the namespace record, counters and mirrors, each only where
// absent and each confirmed by the replicas, then marks the record ready. It
// is idempotent, so a creator that died half-way is finished by the next
// client. Once a namespace was ready, a missing counter is data loss, never a
// new counter: it is left to Reserve, which restores it from its mirror.
func (ns *Namespace) create(ctx context.Context, keys []string, wasReady bool) error {
	n := ns.Layout.Shards
	// Creation is rare and not on anyone's hot path: give replicas longer to
	// confirm than a reservation gets (but less than the read timeout).
	wait := max(ns.opt.AckTimeout, 700*time.Millisecond).Milliseconds()
	claim := func(key, mark string) (*metaRecord, error) {
		rep, err := runAcked(ctx, ns.r, metaScript, key, ns.opt.AckReplicas, wait, n, ns.Layout.encode(), mark)
		if err != nil {
			return nil, fmt.Errorf("shard: writing namespace record %s: %w", key, err)
		}
		if len(rep.values) != 4 {
			return nil, fmt.Errorf("%w: meta reply %v", ErrBadRecord, rep.values)
		}
		shards, err := strconv.Atoi(asString(rep.values[0]))
		if err != nil {
			return nil, fmt.Errorf("%w: %s shards=%v", ErrBadRecord, key, rep.values[0])
		}
		replicas, _ := asInt(rep.values[3])
		if err := ns.checkAck(rep.node, int(replicas), rep.acked); err != nil {
			return nil, fmt.Errorf("shard: namespace record %s: %w", key, err)
		}
		return &metaRecord{shards: shards, layout: asString(rep.values[1]), ready: asString(rep.values[2]) == "1"}, nil
	}

	// The first copy decides between concurrent creators.
	won, err := claim(keys[0], "")
	if err != nil {
		return err
	}
	if won.shards != n {
		return fmt.Errorf("%w: namespace %q was just created with %d shards by another client; this one has %d", ErrShardCountMismatch, ns.Name, won.shards, n)
	}
	if won.layout != ns.Layout.encode() {
		l, err := decodeLayout(won.layout, n)
		if err != nil {
			return err
		}
		ns.setLayout(l)
	}
	for _, k := range keys[1:] {
		rec, err := claim(k, "")
		if err != nil {
			return err
		}
		if rec.shards != n || rec.layout != won.layout {
			return fmt.Errorf("%w: copy %s of namespace %q disagrees with %s", ErrBadRecord, k, ns.Name, keys[0])
		}
	}

	if !wasReady {
		for _, s := range ns.Shards {
			rep, err := runAcked(ctx, ns.r, reserveScript, s.Key, ns.opt.AckReplicas, wait,
				n, 0, ns.opt.FenceGap, "", s.maxSeq, "create", 0)
			if err != nil {
				return fmt.Errorf("shard: creating counter %s: %w", s.Key, s.classify(err))
			}
			replicas, _ := asInt(rep.values[2])
			if err := ns.checkAck(rep.node, int(replicas), rep.acked); err != nil {
				return fmt.Errorf("shard: creating counter %s: %w", s.Key, err)
			}
			if err := s.raiseMirror(ctx, 0, wait); err != nil {
				return fmt.Errorf("shard: creating mirror %s: %w", s.MirrorKey, err)
			}
		}
	}
	for _, k := range keys {
		if _, err := claim(k, "ready"); err != nil {
			return err
		}
	}
	return nil
}

// repair rewrites lost copies of a ready namespace record.
func (ns *Namespace) repair(ctx context.Context, keys []string) error {
	wait := max(ns.opt.AckTimeout, 700*time.Millisecond).Milliseconds()
	var errs []error
	for _, k := range keys {
		if _, err := runAcked(ctx, ns.r, metaScript, k, ns.opt.AckReplicas, wait, ns.Layout.Shards, ns.Layout.encode(), "ready"); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
