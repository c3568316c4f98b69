package localcluster

import (
	"context"
	"fmt"
	"math"
	"os/exec"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
)

func (lc *Cluster) create(ctx context.Context) error {
	for i, n := range lc.nodes {
		cl := lc.client(n.Addr)
		id, err := cl.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return &nodeError{i, fmt.Errorf("cluster: CLUSTER MYID on %s: %w", n.Addr, err)}
		}
		n.ID = id
		// Distinct config epochs up front, as redis-cli does, so the nodes
		// need not run epoch-collision resolution.
		if err := cl.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return &nodeError{i, fmt.Errorf("cluster: CLUSTER SET-CONFIG-EPOCH on %s: %w", n.Addr, err)}
		}
	}
	for i, r := range EvenSlotRanges(lc.cfg.Masters) {
		n := lc.nodes[i]
		if err := lc.client(n.Addr).Do(ctx, "CLUSTER", "ADDSLOTSRANGE", r[0], r[1]).Err(); err != nil {
			return &nodeError{i, fmt.Errorf("cluster: CLUSTER ADDSLOTSRANGE %d %d on %s: %w", r[0], r[1], n.Addr, err)}
		}
	}
	first := lc.client(lc.nodes[0].Addr)
	for _, n := range lc.nodes[1:] {
		if err := first.Do(ctx, "CLUSTER", "MEET", n.Host, n.Port).Err(); err != nil {
			return &nodeError{0, fmt.Errorf("cluster: CLUSTER MEET %s: %w", n.Addr, err)}
		}
	}
	// Every node must know every other one before REPLICATE can name it.
	for _, n := range lc.nodes {
		cl := lc.client(n.Addr)
		err := poll(ctx, n.Addr+" to know all nodes", func() error {
			known, err := knownNodes(ctx, cl)
			if err != nil {
				return err
			}
			if known != len(lc.nodes) {
				return fmt.Errorf("knows %d of %d nodes", known, len(lc.nodes))
			}
			return nil
		})
		if err != nil {
			return &nodeError{n.Index, err}
		}
	}
	m, r := lc.cfg.Masters, lc.cfg.replicas()
	for i := range m {
		for j := range r {
			n := lc.nodes[m+i*r+j]
			if err := lc.client(n.Addr).Do(ctx, "CLUSTER", "REPLICATE", lc.nodes[i].ID).Err(); err != nil {
				return &nodeError{n.Index, fmt.Errorf("cluster: CLUSTER REPLICATE on %s: %w", n.Addr, err)}
			}
		}
	}
	return nil
}

// createWithCLI builds the cluster with redis-cli, the reference tool.
func (lc *Cluster) createWithCLI(ctx context.Context) error {
	if lc.cfg.CliBin == "" {
		return fmt.Errorf("%w: redis-cli not found: install it: apt-get install redis-tools (Debian), or set CliBin", ErrRedisNotInstalled)
	}
	args := []string{"--cluster", "create"}
	for _, n := range lc.nodes {
		args = append(args, n.Addr)
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(lc.cfg.replicas()), "--cluster-yes")
	out, err := exec.CommandContext(ctx, lc.cfg.CliBin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cluster: redis-cli --cluster create: %w\n%s", err, out)
	}
	for _, n := range lc.nodes {
		id, err := lc.client(n.Addr).Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return &nodeError{n.Index, err}
		}
		n.ID = id
	}
	return nil
}

// EvenSlotRanges returns the slot ranges `redis-cli --cluster create` assigns
// to m masters, master i getting the i-th range. It mirrors redis-cli's
// arithmetic exactly, including its single-precision float cursor and lround,
// so a cluster built by the launcher is indistinguishable from one built by
// redis-cli (for m=3: 0-5460, 5461-10922, 10923-16383). It returns nil for
// m < 1 and gives one slot each to the first 16384 masters if m is larger.
func EvenSlotRanges(m int) [][2]int {
	if m < 1 {
		return nil
	}
	if m > cluster.NumSlots {
		m = cluster.NumSlots
	}
	perNode := float32(cluster.NumSlots) / float32(m)
	var cursor float32
	first := 0
	out := make([][2]int, 0, m)
	for i := range m {
		last := int(math.Round(float64(float32(cursor+perNode) - 1)))
		if last > cluster.NumSlots || i == m-1 {
			last = cluster.NumSlots - 1
		}
		if last < first {
			last = first
		}
		out = append(out, [2]int{first, last})
		first = last + 1
		cursor += perNode
	}
	return out
}

// knownNodes counts the nodes cl's node knows past the handshake, from
// CLUSTER NODES.
func knownNodes(ctx context.Context, cl *redis.Client) (int, error) {
	text, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		return 0, err
	}
	lines, err := cluster.ParseNodeLines(text)
	if err != nil {
		return 0, err
	}
	known := 0
	for _, l := range lines {
		if !l.Has("handshake") && !l.Has("noaddr") {
			known++
		}
	}
	return known, nil
}
