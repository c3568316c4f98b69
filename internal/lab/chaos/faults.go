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
	"github.com/shardseq/shardseq/internal/lab/localcluster"
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
		if err := killAndRejoin(ctx, lc, m); err != nil {
			return "", err
		}
	case PauseMaster:
		if err := lc.Pause(m); err != nil {
			return "", err
		}
		err := waitPromoted(ctx, lc, m)
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
	case ClusterDown2s:
		d, err := lc.ClusterDown(ctx, m, 2*time.Second)
		if err != nil {
			return "", err
		}
		m = d.String()
	case FrozenReplica, LaggingReplica:
		if len(replicas) == 0 {
			return "", errors.New("master has no replica")
		}
		r := replicas[0]
		if err := lc.Pause(r); err != nil {
			return "", err
		}
		var ferr error
		if f == LaggingReplica {
			ferr = fill(ctx, cfg.Seeds, m, 40, 1<<20)
		} else {
			ferr = hold(ctx, 3*time.Second) // the freeze's intended duration
		}
		if err := lc.Resume(r); err != nil {
			return "", err
		}
		if ferr != nil {
			return "", ferr
		}
		m = fmt.Sprintf("%s (replica %s)", m, r)
	case PartitionReplica, IsolateMaster:
		if !lc.CanPartition() {
			return "skipped: the cluster cannot be partitioned", nil
		}
		others := replicas
		if f == IsolateMaster {
			for _, n := range lc.Nodes() {
				if n.Addr != m {
					others = append(others, n.Addr)
				}
			}
		}
		if err := lc.Partition(m, others...); err != nil {
			return "", err
		}
		var err error
		if f == IsolateMaster {
			err = waitPromoted(ctx, lc, m)
		} else {
			err = hold(ctx, 3*time.Second) // no failover follows; just the cut
		}
		if herr := lc.Heal(); herr != nil {
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
		if err := waitPromoted(ctx, lc, m); err != nil {
			return "", err
		}
		if err := lc.Start(m); err != nil {
			return "", err
		}
	case PromotedStaleRestart:
		if len(replicas) == 0 {
			return "", errors.New("master has no replica")
		}
		r := replicas[0]
		if err := lc.Save(ctx, r); err != nil {
			return "", err
		}
		_ = hold(ctx, 200*time.Millisecond) // IDs handed out after the save
		if err := killAndRejoin(ctx, lc, m); err != nil {
			return "", err
		}
		_ = hold(ctx, time.Second) // the promoted node serves
		if err := lc.RestartFromFiles(r); err != nil {
			return "", err
		}
		if err := stillMaster(ctx, lc, r); err != nil {
			return "", err
		}
		m = r
	case RollingEmpty:
		for k, mk := range masters {
			if k > 0 {
				if err := waitHealthy(ctx, lc); err != nil {
					return "", err
				}
				_ = hold(ctx, 2*time.Second) // the load goes on between restarts
			}
			if err := lc.RestartEmpty(mk); err != nil {
				return "", err
			}
		}
		m = strings.Join(masters, ",")
	case StaleMasterAndReplica:
		if len(replicas) == 0 {
			return "", errors.New("master has no replica")
		}
		r := replicas[0]
		for _, n := range []string{m, r} {
			if err := lc.Save(ctx, n); err != nil {
				return "", err
			}
		}
		_ = hold(ctx, time.Second) // IDs handed out after the saves
		// A failover moves the shard to r, which serves past its saved state.
		if err := killAndRejoin(ctx, lc, m); err != nil {
			return "", err
		}
		_ = hold(ctx, time.Second)
		// Both crash together and restart from their files: r from its save,
		// from before it took over.
		if err := lc.Kill(m); err != nil {
			return "", err
		}
		if err := lc.RestartFromFiles(r); err != nil {
			return "", err
		}
		if err := lc.Start(m); err != nil {
			return "", err
		}
		if err := stillMaster(ctx, lc, r); err != nil {
			return "", err
		}
		m = r
	case DroppedReplicaForce:
		if !lc.CanPartition() {
			return "skipped: the cluster cannot be partitioned", nil
		}
		if len(replicas) == 0 {
			return "", errors.New("master has no replica")
		}
		r, others := replicas[0], append([]string{m}, replicas[1:]...)
		for _, o := range others {
			if err := lc.CutReplication(r, o); err != nil {
				return "", err
			}
		}
		// The master drops r, as its output-buffer limit would (or its
		// repl-timeout, later); r cannot reconnect, yet the cluster still
		// lists it healthy, so it can still be promoted.
		err := lc.DropReplica(ctx, m, r)
		if err == nil {
			err = waitDropped(ctx, lc, m, r)
		}
		if err == nil {
			_ = hold(ctx, 200*time.Millisecond) // the shard goes on without r
		}
		old := m
		if err == nil && len(replicas) > 1 {
			// A planned switch-over to another replica: it takes the shard
			// over with everything, and serves.
			if err = lc.Failover(ctx, replicas[1]); err == nil {
				err = waitPromoted(ctx, lc, m)
			}
			if err == nil {
				old = replicas[1]
				_ = hold(ctx, 2*time.Second)
			}
		}
		if err == nil {
			err = lc.FailoverForce(ctx, r)
		}
		if err == nil {
			err = waitPromoted(ctx, lc, old)
		}
		if herr := lc.Heal(); herr != nil {
			return "", herr
		}
		if err != nil {
			return "", err
		}
		// Then the node it took over from crashes and restarts.
		if err := lc.RestartFromFiles(old); err != nil {
			return "", err
		}
		m = r
	default:
		return "", fmt.Errorf("unknown fault %q", f)
	}
	if err := waitHealthy(ctx, lc); err != nil {
		return "", fmt.Errorf("cluster did not recover: %w", err)
	}
	return "on " + m, nil
}

func waitHealthy(ctx context.Context, lc *localcluster.Cluster) error {
	ctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	return lc.WaitHealthy(ctx)
}

func waitPromoted(ctx context.Context, lc *localcluster.Cluster, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, recoverTimeout)
	defer cancel()
	return lc.WaitPromoted(ctx, addr)
}

func waitDropped(ctx context.Context, lc *localcluster.Cluster, master, replica string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*recoverTimeout)
	defer cancel()
	return lc.WaitReplicaDropped(ctx, master, replica)
}

// killAndRejoin kill -9s master m, waits for its replica to take over, and
// starts m again (it rejoins as a replica) until the cluster is healthy.
func killAndRejoin(ctx context.Context, lc *localcluster.Cluster, m string) error {
	if err := lc.Kill(m); err != nil {
		return err
	}
	if err := waitPromoted(ctx, lc, m); err != nil {
		return err
	}
	if err := lc.Start(m); err != nil {
		return err
	}
	return waitHealthy(ctx, lc)
}

// stillMaster checks that addr, restarted to come back with older data, is
// master once the cluster settled: had its replica taken over meanwhile, no
// rewind would have happened and the fault would prove nothing.
func stillMaster(ctx context.Context, lc *localcluster.Cluster, addr string) error {
	if err := waitHealthy(ctx, lc); err != nil {
		return err
	}
	masters, err := lc.Masters(ctx)
	if err != nil {
		return err
	}
	if !slices.Contains(masters, addr) {
		return fmt.Errorf("%s restarted too slowly: its replica took over, so nothing rewound", addr)
	}
	return nil
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
