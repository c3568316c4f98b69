package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// AddNode starts one more redis-server and joins it to the running cluster
// as `redis-cli --cluster add-node` does: with asReplicaOf empty the node is
// a master serving no slot until a reshard gives it some; otherwise it
// replicates the master at address asReplicaOf (`--cluster-slave
// --cluster-master-id`). The node takes the next index and port (BasePort +
// its index; make room for it in the package's port range) and belongs to
// the cluster like the others: Close stops it by PID. AddNode returns the
// node's address once every running node knows it and, for a replica, once
// its link to the master is up. Without a deadline on ctx it gives up after
// one minute.
func (lc *Cluster) AddNode(ctx context.Context, asReplicaOf string) (string, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	var masterID string
	if asReplicaOf != "" {
		if _, ok := lc.NodeByAddr(asReplicaOf); !ok {
			return "", fmt.Errorf("cluster: AddNode: no node %s in this cluster", asReplicaOf)
		}
		id, err := lc.client(asReplicaOf).Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return "", fmt.Errorf("cluster: CLUSTER MYID on %s: %w", asReplicaOf, err)
		}
		masterID = id
	}
	others := lc.running()
	if len(others) == 0 {
		return "", errors.New("cluster: AddNode: no running node to meet")
	}

	lc.mu.Lock()
	if lc.closed {
		lc.mu.Unlock()
		return "", errors.New("cluster: AddNode: cluster closed")
	}
	k := len(lc.nodes)
	host := lc.cfg.Host
	if lc.cfg.PerNodeIP {
		host = fmt.Sprintf("127.0.0.%d", lc.cfg.IPBase+k)
	}
	port := lc.cfg.BasePort + k
	n := &localProc{Node: Node{
		Index: k, Host: host, Port: port,
		Addr: net.JoinHostPort(host, strconv.Itoa(port)),
		Dir:  filepath.Join(lc.cfg.Dir, fmt.Sprintf("node-%d", k)),
	}}
	if eph := ephemeralPortStart(); port+10000 >= eph {
		lc.mu.Unlock()
		return "", fmt.Errorf("cluster: AddNode: bus port %d would fall in the ephemeral port range starting at %d", port+10000, eph)
	}
	for _, p := range []int{port, port + 10000} {
		if err := portFree(host, p); err != nil {
			lc.mu.Unlock()
			return "", err
		}
	}
	if err := lc.spawn(n); err != nil {
		lc.mu.Unlock()
		return "", err
	}
	// Owned from here on, so Close stops it even if joining fails.
	lc.nodes = append(lc.nodes, n)
	err := lc.saveStateLocked()
	lc.mu.Unlock()
	if err != nil {
		return "", err
	}
	fail := func(err error) (string, error) { return "", lc.withLogTail(err) }

	if err := lc.waitPing(ctx, n); err != nil {
		return fail(err)
	}
	id, err := lc.client(n.Addr).Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return fail(&nodeError{k, fmt.Errorf("cluster: CLUSTER MYID on %s: %w", n.Addr, err)})
	}
	lc.mu.Lock()
	n.ID = id
	err = lc.saveStateLocked()
	lc.mu.Unlock()
	if err != nil {
		return fail(err)
	}
	if err := lc.client(others[0].Addr).Do(ctx, "CLUSTER", "MEET", n.Host, n.Port).Err(); err != nil {
		return fail(&nodeError{k, fmt.Errorf("cluster: CLUSTER MEET %s from %s: %w", n.Addr, others[0].Addr, err)})
	}
	for _, o := range append(others, n) {
		cl := lc.client(o.Addr)
		err := poll(ctx, o.Addr+" to know "+n.Addr, func() error {
			known, err := knownNodes(ctx, cl)
			if err != nil {
				return err
			}
			if known < len(others)+1 {
				return fmt.Errorf("knows %d of %d nodes", known, len(others)+1)
			}
			return nil
		})
		if err != nil {
			return fail(&nodeError{k, err})
		}
	}
	if masterID == "" {
		return n.Addr, nil
	}
	cl := lc.client(n.Addr)
	if err := cl.Do(ctx, "CLUSTER", "REPLICATE", masterID).Err(); err != nil {
		return fail(&nodeError{k, fmt.Errorf("cluster: CLUSTER REPLICATE %s on %s: %w", asReplicaOf, n.Addr, err)})
	}
	err = poll(ctx, n.Addr+" to replicate "+asReplicaOf, func() error {
		info, err := cl.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "master_link_status:up") {
			return errors.New("master link not up")
		}
		return nil
	})
	if err != nil {
		return fail(&nodeError{k, err})
	}
	return n.Addr, nil
}

// MigrateSlot moves one slot and its keys to the master at to, the way
// `redis-cli --cluster reshard` moves each slot: CLUSTER SETSLOT IMPORTING on
// the target, MIGRATING on the source, MIGRATE of the slot's keys, then
// SETSLOT NODE on the target, the source and every other master. It returns
// once every running node says the slot is served by to. Keys never move on
// their own: this is how an operator's reshard can bring two keys placed on
// distinct masters onto one (issue 19, item 2). Without a deadline on ctx it
// gives up after one minute.
func (lc *Cluster) MigrateSlot(ctx context.Context, slot int, to string) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	dst, ok := lc.NodeByAddr(to)
	if !ok {
		return fmt.Errorf("cluster: MigrateSlot: no node %s in this cluster", to)
	}
	t, err := lc.live(ctx)
	if err != nil {
		return err
	}
	src, ok := t.MasterForSlot(slot)
	if !ok {
		return fmt.Errorf("cluster: MigrateSlot: no master serves slot %d", slot)
	}
	dstID, err := lc.client(to).Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return fmt.Errorf("cluster: CLUSTER MYID on %s: %w", to, err)
	}
	if src.ID == dstID {
		return nil
	}
	sc, dc := lc.client(src.Addr), lc.client(to)
	if err := dc.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", src.ID).Err(); err != nil {
		return fmt.Errorf("cluster: SETSLOT %d IMPORTING on %s: %w", slot, to, err)
	}
	if err := sc.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err(); err != nil {
		return fmt.Errorf("cluster: SETSLOT %d MIGRATING on %s: %w", slot, src.Addr, err)
	}
	for {
		keys, err := sc.ClusterGetKeysInSlot(ctx, slot, 100).Result()
		if err != nil {
			return fmt.Errorf("cluster: GETKEYSINSLOT %d on %s: %w", slot, src.Addr, err)
		}
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", dst.Host, dst.Port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		if err := sc.Do(ctx, args...).Err(); err != nil {
			return fmt.Errorf("cluster: MIGRATE of slot %d from %s to %s: %w", slot, src.Addr, to, err)
		}
	}
	// The target first, so that it owns the slot before the source gives it
	// up (redis-cli's order); the other masters learn it here or by gossip.
	if err := dc.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err(); err != nil {
		return fmt.Errorf("cluster: SETSLOT %d NODE on %s: %w", slot, to, err)
	}
	if err := sc.Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err(); err != nil {
		return fmt.Errorf("cluster: SETSLOT %d NODE on %s: %w", slot, src.Addr, err)
	}
	for _, m := range t.Masters {
		if m.ID != src.ID && m.ID != dstID && len(m.Slots) > 0 {
			_ = lc.client(m.Addr).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err() // gossip does it too
		}
	}
	for _, n := range lc.running() {
		cl := lc.client(n.Addr)
		err := poll(ctx, fmt.Sprintf("%s to see slot %d on %s", n.Addr, slot, to), func() error {
			shards, err := cl.ClusterShards(ctx).Result()
			if err != nil {
				return err
			}
			for _, sh := range shards {
				for _, r := range sh.Slots {
					if r.Start > int64(slot) || int64(slot) > r.End {
						continue
					}
					for _, node := range sh.Nodes {
						if node.Role == "master" {
							if node.ID == dstID {
								return nil
							}
							return fmt.Errorf("slot %d on %s:%d", slot, node.IP, node.Port)
						}
					}
				}
			}
			return fmt.Errorf("slot %d unassigned", slot)
		})
		if err != nil {
			return err
		}
	}
	return nil
}
