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

// RestartFromFiles kills the node with SIGKILL and starts it again on its own
// directory, before any failover can happen: it comes back with whatever its
// files hold (nodes.conf, and dump.rdb or the AOF when it wrote them), like a
// crashed server restarted from its disk.
func (lc *Cluster) RestartFromFiles(addr string) error {
	if err := lc.Kill(addr); err != nil {
		return err
	}
	return lc.Start(addr)
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

// Heal removes every cut Partition made.
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
