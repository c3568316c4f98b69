package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shardseq/shardseq/cluster"
)

// NodeStatus is one node's state as reported by Status.
type NodeStatus struct {
	Node
	Alive        bool   // the process exists
	Role         string // "master" or "replica"; empty if it did not answer
	ClusterState string // "ok" or "fail" from CLUSTER INFO
	MasterLink   string // replicas: master_link_status ("up"/"down")
	MasterAddr   string // replicas: their master
	Err          string // why it did not answer
}

// Status reports every node. Paused nodes are not queried (they would only
// time out).
func (lc *Cluster) Status(ctx context.Context) []NodeStatus {
	nodes := lc.Nodes()
	out := make([]NodeStatus, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		out[i].Node = n
		out[i].Alive = n.PID != 0 && processAlive(n.PID)
		if !out[i].Alive || n.State == statePaused {
			continue
		}
		wg.Go(func() {
			s := &out[i]
			cl := lc.client(n.Addr)
			info, err := cl.Info(ctx, "replication", "cluster").Result()
			if err != nil {
				s.Err = err.Error()
				return
			}
			kv := infoMap(info)
			s.Role = kv["role"]
			if s.Role == "slave" {
				s.Role = "replica"
				s.MasterLink = kv["master_link_status"]
				s.MasterAddr = net.JoinHostPort(kv["master_host"], kv["master_port"])
			}
			ci, err := cl.ClusterInfo(ctx).Result()
			if err != nil {
				s.Err = err.Error()
				return
			}
			s.ClusterState = infoMap(ci)["cluster_state"]
		})
	}
	wg.Wait()
	return out
}

func infoMap(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// running returns the nodes that are supposed to answer: neither killed nor
// paused.
func (lc *Cluster) running() []*localProc {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var out []*localProc
	for _, n := range lc.nodes {
		if n.State == stateRunning {
			cp := *n
			out = append(out, &cp)
		}
	}
	return out
}

// WaitHealthy polls until the cluster is healthy or ctx ends. Healthy means,
// over every node that is running (nodes stopped by Kill or frozen by Pause
// are expected to be down and are skipped): the process is alive; CLUSTER
// INFO says cluster_state:ok with all 16384 slots ok; all nodes agree on the
// same set of masters serving slots, Masters of them, none flagged failed; no
// running node is flagged failed, or seen as a master without slots, by
// another; and every running node is either
// one of those masters or a replica of one with master_link_status:up and no
// sync in progress. A killed master therefore counts as healthy again once
// its replica is promoted.
func (lc *Cluster) WaitHealthy(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	return poll(ctx, "a healthy cluster", func() error { return lc.checkHealthy(ctx) })
}

func (lc *Cluster) checkHealthy(ctx context.Context) error {
	nodes := lc.running()
	if len(nodes) == 0 {
		return errors.New("cluster: no running node")
	}
	runningIDs := map[string]string{}
	for _, n := range nodes {
		runningIDs[n.ID] = n.Addr
	}
	var masters string
	for _, n := range nodes {
		if n.exited != nil {
			select {
			case <-n.exited:
				return &nodeError{n.Index, fmt.Errorf("cluster: %s exited", n.Addr)}
			default:
			}
		} else if !processAlive(n.PID) {
			return &nodeError{n.Index, fmt.Errorf("cluster: %s (pid %d) is gone", n.Addr, n.PID)}
		}
		cl := lc.client(n.Addr)
		ci, err := cl.ClusterInfo(ctx).Result()
		if err != nil {
			return &nodeError{n.Index, fmt.Errorf("cluster: %s: %w", n.Addr, err)}
		}
		kv := infoMap(ci)
		if kv["cluster_state"] != "ok" || kv["cluster_slots_ok"] != strconv.Itoa(cluster.NumSlots) {
			return &nodeError{n.Index, fmt.Errorf("cluster: %s: cluster_state:%s cluster_slots_ok:%s",
				n.Addr, kv["cluster_state"], kv["cluster_slots_ok"])}
		}
		text, err := cl.ClusterNodes(ctx).Result()
		if err != nil {
			return &nodeError{n.Index, fmt.Errorf("cluster: %s: %w", n.Addr, err)}
		}
		lines, err := cluster.ParseNodeLines(text)
		if err != nil {
			return err
		}
		var ms []string
		var me cluster.NodeLine
		for _, l := range lines {
			if l.Has("myself") {
				me = l
			}
			if l.Has("master") && len(l.Slots) > 0 {
				if l.Has("fail") || l.Has("fail?") {
					return fmt.Errorf("cluster: %s sees master %s as failed", n.Addr, l.Addr)
				}
				ms = append(ms, l.ID)
			}
			if _, ok := runningIDs[l.ID]; ok && (l.Has("fail") || l.Has("fail?") || l.Has("handshake") ||
				(l.Has("master") && len(l.Slots) == 0)) {
				// A running node seen as a slot-less master: a role change
				// (REPLICATE, a rejoin after failover) has not reached this
				// node yet.
				return fmt.Errorf("cluster: %s sees running node %s as %v with %d slot ranges", n.Addr, l.Addr, l.Flags, len(l.Slots))
			}
		}
		slices.Sort(ms)
		if len(ms) != lc.cfg.Masters {
			return fmt.Errorf("cluster: %s sees %d masters serving slots, want %d", n.Addr, len(ms), lc.cfg.Masters)
		}
		set := strings.Join(ms, ",")
		if masters == "" {
			masters = set
		} else if set != masters {
			return fmt.Errorf("cluster: nodes disagree on the set of masters (%s differs)", n.Addr)
		}
		switch {
		case me.Has("master"):
			if !slices.Contains(ms, me.ID) {
				return fmt.Errorf("cluster: %s is a master without slots", n.Addr)
			}
		case me.Has("slave"):
			if !slices.Contains(ms, me.MasterID) {
				return fmt.Errorf("cluster: replica %s follows %s, not a master serving slots", n.Addr, me.MasterID)
			}
			info, err := cl.Info(ctx, "replication").Result()
			if err != nil {
				return &nodeError{n.Index, fmt.Errorf("cluster: %s: %w", n.Addr, err)}
			}
			r := infoMap(info)
			if r["master_link_status"] != "up" || r["master_sync_in_progress"] != "0" {
				return fmt.Errorf("cluster: replica %s: master_link_status:%s master_sync_in_progress:%s",
					n.Addr, r["master_link_status"], r["master_sync_in_progress"])
			}
		default:
			return fmt.Errorf("cluster: %s has no role yet (%v)", n.Addr, me.Flags)
		}
	}
	return nil
}

// liveQuery runs f on the first running node that answers.
