package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
)

// recoverTimeout bounds how long the cluster may take to be healthy again
// after a fault; promotion takes ~4s with cluster-node-timeout 2s.
const recoverTimeout = 60 * time.Second

// inject plays fault f against the i-th master (round robin) and returns once
// the cluster is healthy again.
func inject(ctx context.Context, cfg Config, f Fault, i int) (string, error) {
	lc := cfg.Local
	if lc == nil {
		return "", errors.New("no local cluster to inject faults into")
	}
	if err := waitHealthy(ctx, lc); err != nil {
		return "", fmt.Errorf("cluster not healthy before the fault: %w", err)
	}
	masters, err := lc.Masters(ctx)
	if err != nil {
		return "", err
	}
	if len(masters) == 0 {
		return "", errors.New("no master")
	}
	slices.Sort(masters)
	m := masters[i%len(masters)]
	replicas, err := lc.ReplicasOf(ctx, m)
	if err != nil {
		return "", err
	}
	switch f {
	case KillMaster:
		if err := lc.Kill(m); err != nil {
			return "", err
		}
		if err := waitNotMaster(ctx, lc, m); err != nil {
			return "", err
		}
		if err := lc.Start(m); err != nil {
			return "", err
		}
	case PauseMaster:
		if err := lc.Pause(m); err != nil {
			return "", err
		}
		err := waitNotMaster(ctx, lc, m)
		if rerr := lc.Resume(m); rerr != nil {
			return "", rerr
		}
		if err != nil {
			return "", err
		}
	case RestartEmpty:
		if err := lc.RestartEmpty(m); err != nil {
			return "", err
		}
	case PartitionReplica, IsolateMaster:
		if cfg.Net == nil {
			return "skipped: no netfilter", nil
		}
		others := replicas
		if f == IsolateMaster {
			for _, n := range lc.Nodes() {
				if n.Addr != m {
					others = append(others, n.Addr)
				}
			}
		}
		hosts := make([]string, 0, len(others))
		for _, o := range others {
			hosts = append(hosts, host(o))
		}
		if host(m) == hosts[0] {
			return "", errors.New("partitions need a cluster started with PerNodeIP")
		}
		if err := cfg.Net.Cut(host(m), hosts...); err != nil {
			return "", err
		}
		var err error
		if f == IsolateMaster {
			err = waitNotMaster(ctx, lc, m)
		} else {
			err = hold(ctx, 3*time.Second) // no failover follows; just the cut
		}
		if herr := cfg.Net.Heal(); herr != nil {
			return "", herr
		}
		if err != nil {
			return "", err
		}
	case LaggingReplicaKill:
		if len(replicas) == 0 {
			return "", errors.New("master has no replica")
		}
		r := replicas[0]
		if err := lc.Pause(r); err != nil {
			return "", err
		}
		ferr := fill(ctx, cfg.Seeds, m, 40, 1<<20)
		_ = hold(ctx, 300*time.Millisecond) // callers keep writing to the master meanwhile
		kerr := lc.Kill(m)
		if err := lc.Resume(r); err != nil {
			return "", err
		}
		if err := errors.Join(ferr, kerr); err != nil {
			return "", err
		}
		if err := waitNotMaster(ctx, lc, m); err != nil {
			return "", err
		}
		if err := lc.Start(m); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("unknown fault %q", f)
	}
	if err := waitHealthy(ctx, lc); err != nil {
		return "", fmt.Errorf("cluster did not recover: %w", err)
	}
	return "on " + m, nil
}

func waitHealthy(ctx context.Context, lc *cluster.LocalCluster) error {
	ctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	return lc.WaitHealthy(ctx)
}

// waitNotMaster polls until a live node other than addr reports that another
// master, not flagged as failing, serves the slots addr served: its replica
// was promoted. (A failing master merely flagged pfail does not count.)
func waitNotMaster(ctx context.Context, lc *cluster.LocalCluster, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	slot := -1
	var last error
	for {
		owner, s, err := slotOwner(ctx, lc, addr, slot)
		slot = s
		if err == nil && owner != "" && owner != addr {
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("no replica of %s promoted (owner %q, %v): %w", addr, owner, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// slotOwner asks a running node other than addr who serves slot (or, when
// slot < 0, the first slot addr serves) and returns that master's address if
// it is not flagged as failing.
func slotOwner(ctx context.Context, lc *cluster.LocalCluster, addr string, slot int) (string, int, error) {
	var errs []error
	for _, n := range lc.Nodes() {
		if n.Addr == addr || n.State != "running" {
			continue
		}
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr, DialTimeout: 300 * time.Millisecond, ReadTimeout: 500 * time.Millisecond, MaxRetries: -1})
		text, err := rdb.ClusterNodes(ctx).Result()
		_ = rdb.Close()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		top, err := cluster.ParseNodes(text)
		if err != nil {
			return "", slot, err
		}
		if slot < 0 {
			m, ok := top.MasterByAddr(addr)
			if !ok || len(m.Slots) == 0 {
				return "", slot, fmt.Errorf("%s serves no slot", addr)
			}
			slot = m.Slots[0][0]
		}
		m, ok := top.MasterForSlot(slot)
		switch {
		case !ok:
			return "", slot, fmt.Errorf("slot %d unowned", slot)
		case m.Failed:
			return "", slot, fmt.Errorf("owner %s of slot %d is failing", m.Addr, slot)
		}
		return m.Addr, slot, nil
	}
	return "", slot, fmt.Errorf("no running node answered: %w", errors.Join(errs...))
}

// hold keeps a fault in place for its intended duration.
func hold(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// fill writes count values of size bytes to master addr (keys in its slots),
// so that its replication backlog and socket buffers fill up and the latest
// writes stay in its memory while its replica is frozen.
func fill(ctx context.Context, seeds []string, addr string, count, size int) error {
	cl, err := cluster.Dial(ctx, cluster.Config{Addrs: seeds, RefreshInterval: -1, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	if err != nil {
		return err
	}
	defer cl.Close()
	top := cl.Topology()
	node := cl.Node(addr)
	value := strings.Repeat("x", size)
	written := 0
	for k := 0; written < count && k < 1<<20; k++ {
		key := "shardseq:chaos:filler:{" + strconv.Itoa(k) + "}"
		m, ok := top.MasterForSlot(cluster.Slot(key))
		if !ok || m.Addr != addr {
			continue
		}
		if err := node.Set(ctx, key, value, time.Minute).Err(); err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("filler write to %s: %w", addr, err)
		}
		written++
	}
	return nil
}
