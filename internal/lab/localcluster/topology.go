package localcluster

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shardseq/shardseq/cluster"
)

// The launcher's one reader of the live topology: what a running node says
// in CLUSTER NODES, failure flags included. MasterOf, Masters, ReplicasOf and
// WaitPromoted all read it, so every caller (the command, the test harness,
// the chaos engine, the benchmarks) sees the cluster the same way.

// live returns the topology as the first running node that answers sees it,
// asking no node in skip (a node under a fault may still believe it is
// master).
func (lc *Cluster) live(ctx context.Context, skip ...string) (*cluster.Topology, error) {
	var errs []error
	for _, n := range lc.running() {
		if slices.Contains(skip, n.Addr) {
			continue
		}
		text, err := lc.client(n.Addr).ClusterNodes(ctx).Result()
		if err == nil {
			return cluster.ParseNodes(text)
		}
		errs = append(errs, fmt.Errorf("%s: %w", n.Addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return nil, fmt.Errorf("%w: %w", cluster.ErrUnreachable, errors.Join(errs...))
}

// MasterOf returns the address of the master serving key, as the first
// running node that answers sees it (a master flagged failed that still
// holds the slot is still its master).
func (lc *Cluster) MasterOf(ctx context.Context, key string) (string, error) {
	t, err := lc.live(ctx)
	if err != nil {
		return "", err
	}
	slot := cluster.Slot(key)
	m, ok := t.MasterForSlot(slot)
	if !ok {
		return "", fmt.Errorf("%w: slot %d", cluster.ErrNoMaster, slot)
	}
	return m.Addr, nil
}

// Masters returns the addresses of the masters serving slots and not flagged
// failed, in slot order, as seen by the first running node that answers.
func (lc *Cluster) Masters(ctx context.Context) ([]string, error) {
	t, err := lc.live(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range t.Masters {
		if len(m.Slots) > 0 && !m.Failed {
			out = append(out, m.Addr)
		}
	}
	return out, nil
}

// ReplicasOf returns the replicas the cluster lists for masterAddr, excluding
// those flagged failed, sorted by address.
func (lc *Cluster) ReplicasOf(ctx context.Context, masterAddr string) ([]string, error) {
	t, err := lc.live(ctx)
	if err != nil {
		return nil, err
	}
	m, ok := t.MasterByAddr(masterAddr)
	if !ok {
		return nil, fmt.Errorf("cluster: %s is not a known master", masterAddr)
	}
	var out []string
	for _, r := range m.Replicas {
		if !r.Failed {
			out = append(out, r.Addr)
		}
	}
	slices.Sort(out)
	return out, nil
}

// WaitPromoted waits until a replica has taken over from oldMaster, a master
// serving slots when its fault began (killed, paused, cut off): see
// Promoted. It asks running nodes other than oldMaster, which may still
// believe it is master. Without a deadline on ctx it gives up after one
// minute.
func (lc *Cluster) WaitPromoted(ctx context.Context, oldMaster string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	return poll(ctx, "a replica of "+oldMaster+" to be promoted", func() error {
		t, err := lc.live(ctx, oldMaster)
		if err != nil {
			return err
		}
		return Promoted(t, oldMaster)
	})
}

// Promoted is the rule for "a replica was promoted in place of oldMaster",
// applied to one node's view t: oldMaster serves no slot, every slot is
// served, and no master serving slots is flagged failed. It returns why not,
// or nil.
func Promoted(t *cluster.Topology, oldMaster string) error {
	if m, ok := t.MasterByAddr(oldMaster); ok && len(m.Slots) > 0 {
		return fmt.Errorf("%s still serves %d slot ranges", oldMaster, len(m.Slots))
	}
	if missing := t.Missing(); len(missing) > 0 {
		return fmt.Errorf("%d slot ranges served by no master", len(missing))
	}
	for _, m := range t.Masters {
		if len(m.Slots) > 0 && m.Failed {
			return fmt.Errorf("master %s is flagged failed", m.Addr)
		}
	}
	return nil
}
