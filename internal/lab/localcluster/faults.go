package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Kill sends SIGKILL to the node and waits until the process is gone (reaping
// it when it is our child). The node stays stopped until Start.
func (lc *Cluster) Kill(addr string) error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	n := lc.find(addr)
	if n == nil {
		return fmt.Errorf("cluster: no node %s", addr)
	}
	if err := lc.killLocked(n, syscall.SIGKILL, 5*time.Second); err != nil {
		return err
	}
	return lc.saveStateLocked()
}

// Start starts a stopped node again with its existing directory: nodes.conf
// is kept, so it rejoins with the same node ID (as a replica if its slots
// were taken over meanwhile). It returns once the node answers PING.
func (lc *Cluster) Start(addr string) error {
	err := lc.start(addr)
	if err != nil && lc.cfg.Engine == EngineValkey {
		// Valkey 8.0 can refuse its own nodes.conf after a kill -9 when a
		// replica's shard-id differs from its master's (valkey-io/valkey#2171,
		// #774; Redis fixed it in redis/redis#13428 by taking the master's).
		// Do what that fix does, once: it is the engine's bug, not the fault.
		if n, ok := lc.NodeByAddr(addr); ok && alignShardIDs(n.Dir) {
			lc.cfg.logf("cluster: %s: valkey refused its nodes.conf (shard-id of a replica, valkey-io/valkey#2171); aligned the shard-ids and starting again", addr)
			err = lc.start(addr)
		}
	}
	return err
}

func (lc *Cluster) start(addr string) error {
	lc.mu.Lock()
	n := lc.find(addr)
	if n == nil {
		lc.mu.Unlock()
		return fmt.Errorf("cluster: no node %s", addr)
	}
	if n.State != stateStopped && n.PID != 0 && !n.reaped() && (n.exited != nil || lc.ownsPID(n)) {
		lc.mu.Unlock()
		return fmt.Errorf("cluster: %s is already running (pid %d)", addr, n.PID)
	}
	if lc.closed {
		lc.mu.Unlock()
		return errors.New("cluster: local cluster closed")
	}
	for _, p := range []int{n.Port, n.Port + 10000} {
		if err := portFree(n.Host, p); err != nil {
			lc.mu.Unlock()
			return err
		}
	}
	err := lc.spawn(n)
	cp := *n
	if err == nil {
		err = lc.saveStateLocked()
	}
	lc.mu.Unlock()
	if err != nil {
		return lc.withLogTail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return lc.withLogTail(lc.waitPing(ctx, &cp))
}

// alignShardIDs rewrites dir/nodes.conf so that every replica line carries
// its master's shard-id, if redis.log says the file was refused as
// corrupted; it reports whether it changed anything.
func alignShardIDs(dir string) bool {
	if !strings.Contains(tail(filepath.Join(dir, "redis.log"), 5), "corrupted cluster config file") {
		return false
	}
	path := filepath.Join(dir, "nodes.conf")
	b, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	lines := strings.Split(string(b), "\n")
	shardOf := map[string]string{} // node ID -> shard-id
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) > 1 {
			if _, sid, ok := strings.Cut(f[1], "shard-id="); ok {
				shardOf[f[0]] = strings.SplitN(sid, ",", 2)[0]
			}
		}
	}
	changed := false
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) < 4 || !strings.Contains(f[2], "slave") && !strings.Contains(f[2], "replica") {
			continue
		}
		own, master := shardOf[f[0]], shardOf[f[3]]
		if own != "" && master != "" && own != master {
			lines[i] = strings.Replace(l, "shard-id="+own, "shard-id="+master, 1)
			changed = true
		}
	}
	if !changed {
		return false
	}
	return os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o644) == nil
}

// RestartFromFiles kills the node with SIGKILL and starts it again on its own
// directory, before any failover can happen: it comes back with whatever its
// files hold (nodes.conf, and the dump.rdb of its last save or full sync, or
// its AOF), like a crashed server restarted from its disk. After Save on an
// AOF node, the AOF is first put back as Save found it: that is the rewind
// an AOF node suffers when its disk or backup is older than its memory.
func (lc *Cluster) RestartFromFiles(addr string) error {
	if err := lc.Kill(addr); err != nil {
		return err
	}
	n, _ := lc.NodeByAddr(addr)
	saved := filepath.Join(n.Dir, savedAOF)
	if _, err := os.Stat(saved); err == nil {
		live := filepath.Join(n.Dir, "appendonlydir")
		if err := os.RemoveAll(live); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
		if err := os.Rename(saved, live); err != nil {
			return fmt.Errorf("cluster: restoring the saved AOF of %s: %w", addr, err)
		}
	}
	return lc.Start(addr)
}

// savedAOF is where Save keeps an AOF node's copy of its appendonlydir.
const savedAOF = "appendonlydir.saved"

// Save makes the node's files a snapshot of now, so that a later
// RestartFromFiles rewinds to it: BGSAVE, returning once the dump.rdb is
// written (rdb_bgsave_in_progress:0 and the save time moved); on an AOF node,
// which loads its AOF and not dump.rdb, a copy of the AOF directory instead,
// taken when no rewrite runs.
func (lc *Cluster) Save(ctx context.Context, addr string) error {
	n, ok := lc.NodeByAddr(addr)
	if !ok {
		return fmt.Errorf("cluster: no node %s", addr)
	}
	rdb := lc.client(addr) // shared: not closed here
	info := func() (map[string]string, error) {
		s, err := rdb.Info(ctx, "persistence").Result()
		return infoMap(s), err
	}
	if lc.cfg.Persistence == PersistAOF {
		return poll(ctx, "AOF of "+addr+" idle to copy", func() error {
			m, err := info()
			if err != nil {
				return err
			}
			if m["aof_rewrite_in_progress"] != "0" || m["aof_rewrite_scheduled"] != "0" {
				return errors.New("AOF rewrite in progress")
			}
			dst := filepath.Join(n.Dir, savedAOF)
			if err := os.RemoveAll(dst); err != nil {
				return err
			}
			return os.CopyFS(dst, os.DirFS(filepath.Join(n.Dir, "appendonlydir")))
		})
	}
	before, err := info()
	if err != nil {
		return fmt.Errorf("cluster: Save %s: %w", addr, err)
	}
	if err := poll(ctx, "BGSAVE accepted by "+addr, func() error {
		// Refused while a save (or a full sync's) runs: try again after it.
		return rdb.BgSave(ctx).Err()
	}); err != nil {
		return err
	}
	return poll(ctx, "BGSAVE of "+addr+" done", func() error {
		m, err := info()
		if err != nil {
			return err
		}
		if m["rdb_bgsave_in_progress"] != "0" || m["rdb_last_save_time"] == before["rdb_last_save_time"] {
			return errors.New("save in progress")
		}
		if m["rdb_last_bgsave_status"] != "ok" {
			return fmt.Errorf("BGSAVE failed: rdb_last_bgsave_status:%s (see %s)", m["rdb_last_bgsave_status"], filepath.Join(n.Dir, "redis.log"))
		}
		return nil
	})
}

// CutReplication drops the data link between replica and its master (both
// ways, data ports only) while their cluster bus stays up: the master stops
// counting the replica once repl-timeout passes, yet the cluster still sees
// it healthy and it can be promoted (FailoverForce). Heal undoes it. It
// needs Config.Partitions.
func (lc *Cluster) CutReplication(replica, master string) error {
	if lc.net == nil {
		return errors.New("cluster: CutReplication needs a cluster started with Config.Partitions by this process")
	}
	r, ok1 := lc.NodeByAddr(replica)
	m, ok2 := lc.NodeByAddr(master)
	if !ok1 || !ok2 {
		return fmt.Errorf("cluster: no node %s or %s", replica, master)
	}
	return lc.net.cutPort(r.Host, m.Host, m.Port)
}

// DropReplica makes master close its replication link to replica, as its
// client-output-buffer-limit does to a replica that falls behind: master
// stops counting it at once, while the cluster still lists it healthy.
// After CutReplication it cannot reconnect until Heal.
func (lc *Cluster) DropReplica(ctx context.Context, master, replica string) error {
	r, ok := lc.NodeByAddr(replica)
	if !ok {
		return fmt.Errorf("cluster: no node %s", replica)
	}
	rdb := lc.client(master)
	list, err := rdb.Do(ctx, "CLIENT", "LIST", "TYPE", "replica").Text()
	if err != nil {
		return fmt.Errorf("cluster: CLIENT LIST on %s: %w", master, err)
	}
	for _, line := range strings.Split(list, "\n") {
		var id, addr string
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if v, ok := strings.CutPrefix(f, "addr="); ok {
				addr = v
			}
		}
		if host, _, _ := net.SplitHostPort(addr); host == r.Host && id != "" {
			if err := rdb.Do(ctx, "CLIENT", "KILL", "ID", id).Err(); err != nil {
				return fmt.Errorf("cluster: CLIENT KILL ID %s on %s: %w", id, master, err)
			}
		}
	}
	return nil
}

// WaitReplicaDropped waits until master no longer lists replica among its
// connected replicas (INFO replication): after CutReplication that takes
// repl-timeout (default 60 s), while CLUSTER REPLICAS still shows it healthy.
func (lc *Cluster) WaitReplicaDropped(ctx context.Context, master, replica string) error {
	n, ok := lc.NodeByAddr(replica)
	if !ok {
		return fmt.Errorf("cluster: no node %s", replica)
	}
	entry := fmt.Sprintf("ip=%s,port=%d,", n.Host, n.Port)
	rdb := lc.client(master)
	return poll(ctx, replica+" dropped by "+master, func() error {
		s, err := rdb.Info(ctx, "replication").Result()
		if err != nil {
			return err
		}
		if strings.Contains(s, entry) {
			return errors.New("still connected")
		}
		return nil
	})
}

// FailoverForce makes replica take over its master's slots at once, without
// the master's agreement (CLUSTER FAILOVER FORCE), as an operator does when
// the master seems gone.
func (lc *Cluster) FailoverForce(ctx context.Context, replica string) error {
	return lc.failover(ctx, replica, "FORCE")
}

// Failover makes replica take over its master's slots with the master's
// agreement (CLUSTER FAILOVER): a planned switch-over.
func (lc *Cluster) Failover(ctx context.Context, replica string) error {
	return lc.failover(ctx, replica)
}

func (lc *Cluster) failover(ctx context.Context, replica string, mode ...any) error {
	args := append([]any{"CLUSTER", "FAILOVER"}, mode...)
	if err := lc.client(replica).Do(ctx, args...).Err(); err != nil {
		return fmt.Errorf("cluster: %v on %s: %w", args, replica, err)
	}
	return nil
}

// RestartEmpty kills the node, deletes its data (dump.rdb, AOF files) but
// keeps nodes.conf, and starts it: it comes back with no data under the same
// node ID, like a server without persistence that crashed.
func (lc *Cluster) RestartEmpty(addr string) error {
	if err := lc.Kill(addr); err != nil {
		return err
	}
	n, _ := lc.NodeByAddr(addr)
	entries, err := os.ReadDir(n.Dir)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == "dump.rdb" || name == "appendonlydir" || strings.HasPrefix(name, "appendonly") ||
			(strings.HasPrefix(name, "temp-") && strings.HasSuffix(name, ".rdb")) {
			if err := os.RemoveAll(filepath.Join(n.Dir, name)); err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
		}
	}
	return lc.Start(addr)
}

// Pause freezes the node with SIGSTOP: its sockets stay open but it answers
// nothing, like a stalled machine. WaitHealthy skips paused nodes.
func (lc *Cluster) Pause(addr string) error {
	return lc.signal(addr, syscall.SIGSTOP, statePaused)
}

// Resume thaws a paused node with SIGCONT.
func (lc *Cluster) Resume(addr string) error {
	return lc.signal(addr, syscall.SIGCONT, stateRunning)
}

func (lc *Cluster) signal(addr string, sig syscall.Signal, state string) error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	n := lc.find(addr)
	if n == nil {
		return fmt.Errorf("cluster: no node %s", addr)
	}
	if n.State == stateStopped || n.PID == 0 || n.reaped() || (n.exited == nil && !lc.ownsPID(n)) {
		return fmt.Errorf("cluster: %s is not running", addr)
	}
	if err := syscall.Kill(n.PID, sig); err != nil {
		return fmt.Errorf("cluster: signal %v to %s (pid %d): %w", sig, addr, n.PID, err)
	}
	n.State = state
	return lc.saveStateLocked()
}

// CanPartition reports whether Partition works on this cluster: it was
// started with Config.Partitions by this process.
func (lc *Cluster) CanPartition() bool { return lc.net != nil }

// Partition cuts node off from each node of from, both ways (iptables DROP
// between their addresses; see Config.Partitions). Clients on 127.0.0.1
// still reach all of them. Heal undoes every cut.
func (lc *Cluster) Partition(node string, from ...string) error {
	if lc.net == nil {
		return errors.New("cluster: Partition needs a cluster started with Config.Partitions by this process")
	}
	a := hostOf(node)
	hosts := make([]string, len(from))
	for i, f := range from {
		if hosts[i] = hostOf(f); hosts[i] == a {
			return fmt.Errorf("cluster: %s and %s share an address: nothing to cut", node, f)
		}
	}
	return lc.net.cut(a, hosts...)
}

// PartitionBus cuts node's cluster bus off from each node of from, both
// ways (its connections to their bus ports and theirs to its own), while
// every data port stays open: the nodes stop hearing of each other, but
// clients and replication links still reach them. That is a master restarted
// behind a firewall that blocks only the bus: until node-timeout passes
// without news of the other masters it still believes its old role and
// serves (see Redis's clusterUpdateState). Heal undoes it; it needs
// Config.Partitions.
func (lc *Cluster) PartitionBus(node string, from ...string) error {
	if lc.net == nil {
		return errors.New("cluster: PartitionBus needs a cluster started with Config.Partitions by this process")
	}
	a, ok := lc.NodeByAddr(node)
	if !ok {
		return fmt.Errorf("cluster: no node %s", node)
	}
	for _, f := range from {
		b, ok := lc.NodeByAddr(f)
		if !ok {
			return fmt.Errorf("cluster: no node %s", f)
		}
		if b.Host == a.Host {
			return fmt.Errorf("cluster: %s and %s share an address: nothing to cut", node, f)
		}
		if err := lc.net.cutPort(a.Host, b.Host, b.Port+10000); err != nil {
			return err
		}
		if err := lc.net.cutPort(b.Host, a.Host, a.Port+10000); err != nil {
			return err
		}
	}
	return nil
}

// Heal removes every cut Partition, PartitionBus and CutReplication made.
func (lc *Cluster) Heal() error {
	if lc.net == nil {
		return nil
	}
	return lc.net.heal()
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return h
}
