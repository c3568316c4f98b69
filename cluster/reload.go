package cluster

// Reading the topology: reloads, which node to ask, and what an answer
// that is not a cluster's means.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Reload queries the cluster now and publishes the result. The Generation is
// bumped only when the content differs from the current snapshot; otherwise
// the current snapshot is returned unchanged.
func (c *Cluster) Reload(ctx context.Context) (*Topology, error) {
	select {
	case c.reloadSem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("cluster: waiting for another topology reload: %w", ctx.Err())
	}
	defer func() { <-c.reloadSem }()
	if c.isClosed() {
		return nil, ErrClosed
	}
	masters, down, err := c.load(ctx)
	if err != nil {
		return nil, err
	}
	c.readAt.Store(time.Now().UnixNano())
	old := c.topo.Load()
	gen := uint64(1)
	if old != nil {
		gen = old.Generation + 1
	}
	t, err := NewTopology(masters, gen)
	if err != nil {
		return nil, err
	}
	t.Down = down
	if old != nil && old.equalContent(t) {
		return old, nil
	}
	c.topo.Store(t)
	if old != nil {
		c.log.Info("cluster: topology changed", "generation", t.Generation, "masters", len(t.Masters), "covered", t.Covered())
		c.dropGoneNodes(t)
	}
	c.watch.call(t) // under reloadSem, so watchers see generations in order
	return t, nil
}

// WatchTopology calls fn with every new topology a reload publishes (slots,
// nodes, roles or failure flags changed), in order of generation, on the
// reloading goroutine: keep it short and never block in it. A reshard shows
// up here. The returned function unsubscribes.
func (c *Cluster) WatchTopology(fn func(*Topology)) (unsubscribe func()) {
	return c.watch.add(fn)
}

// LazyReload asks for an asynchronous reload and returns at once. Calls are
// coalesced: while a reload runs, any number of further calls cause exactly
// one more, so a flood of MOVED errors costs one or two round trips.
func (c *Cluster) LazyReload() {
	c.reloadPending.Store(true)
	if !c.reloading.CompareAndSwap(false, true) {
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.reloading.Store(false)
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		for {
			for c.reloadPending.Swap(false) {
				if _, err := c.Reload(c.ctx); err != nil && c.ctx.Err() == nil {
					c.log.Warn("cluster: lazy topology reload failed", "err", err)
				}
				select {
				case <-c.ctx.Done():
					c.reloading.Store(false)
					return
				case <-time.After(lazyReloadGap):
				}
			}
			c.reloading.Store(false)
			// A call may have set pending after our last Swap but before the
			// Store above, and seen reloading still true: pick it up.
			if !c.reloadPending.Load() || !c.reloading.CompareAndSwap(false, true) {
				return
			}
		}
	}()
}

func (c *Cluster) refreshLoop(every time.Duration) {
	defer c.wg.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
			if _, err := c.Reload(c.ctx); err != nil && c.ctx.Err() == nil {
				c.log.Warn("cluster: periodic topology reload failed", "err", err)
			}
		}
	}
}

// dropGoneNodes closes pooled clients of addresses that are neither in t nor
// seeds: the node was removed from the cluster (CLUSTER FORGET) or moved.
func (c *Cluster) dropGoneNodes(t *Topology) {
	keep := map[string]bool{}
	for _, a := range t.Addrs() {
		keep[a] = true
	}
	for _, a := range c.cfg.Addrs {
		keep[a] = true
	}
	c.mu.Lock()
	var gone []*redis.Client
	for a, cl := range c.nodes {
		if !keep[a] {
			gone = append(gone, cl)
			delete(c.nodes, a)
		}
	}
	c.mu.Unlock()
	for _, cl := range gone {
		_ = cl.Close()
	}
}

// candidates lists the addresses to ask for the topology: the node that
// answered last time, then healthy known masters and replicas, then seeds,
// then known failed nodes (a failed flag may be stale).
func (c *Cluster) candidates() []string {
	var out, failed []string
	seen := map[string]bool{}
	add := func(a string, isFailed bool) {
		if a == "" || seen[a] {
			return
		}
		seen[a] = true
		if isFailed {
			failed = append(failed, a)
		} else {
			out = append(out, a)
		}
	}
	if a, ok := c.lastGood.Load().(string); ok {
		add(a, false)
	}
	if t := c.topo.Load(); t != nil {
		for _, m := range t.Masters {
			add(m.Addr, m.Failed)
		}
		for _, m := range t.Masters {
			for _, r := range m.Replicas {
				add(r.Addr, r.Failed)
			}
		}
	}
	for _, a := range c.cfg.Addrs {
		add(a, false)
	}
	return append(out, failed...)
}

// load fetches the masters, and the dead ex-masters (Topology.Down), from
// the first candidate that answers.
func (c *Cluster) load(ctx context.Context) ([]Master, []Node, error) {
	cands := c.candidates()
	var errs []error
	for _, addr := range cands {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		masters, down, err := c.loadFrom(ctx, addr)
		if err == nil {
			c.lastGood.Store(addr)
			return masters, down, nil
		}
		if errors.Is(err, ErrNotCluster) {
			return nil, nil, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", addr, err))
		if isRedisError(err) && !errors.Is(err, errNodeUnusable) {
			// The node answered but refused (auth, ACL): another node will
			// refuse the same way; report it rather than "unreachable".
			return nil, nil, fmt.Errorf("cluster: loading topology from %s: %w", addr, err)
		}
	}
	return nil, nil, fmt.Errorf("%w: tried %s: %w",
		ErrUnreachable, strings.Join(cands, ", "), errors.Join(errs...))
}

// errNodeUnusable marks a Redis error that is specific to the node asked
// (LOADING, a node not yet part of a cluster): try the next candidate.
var errNodeUnusable = errors.New("cluster: node cannot answer")

// loadFrom asks one node: CLUSTER SHARDS (Redis 7+), falling back to CLUSTER
// NODES on servers that do not know SHARDS.
func (c *Cluster) loadFrom(ctx context.Context, addr string) ([]Master, []Node, error) {
	cl := c.Node(addr)
	shards, err := cl.ClusterShards(ctx).Result()
	if err == nil {
		masters := mastersFromShards(shards, c.cfg.TLSConfig != nil)
		if len(masters) == 0 {
			return nil, nil, fmt.Errorf("%w: no master known", errNodeUnusable)
		}
		return masters, deadFromShards(shards, masters, c.cfg.TLSConfig != nil), nil
	}
	if !isRedisError(err) {
		return nil, nil, err
	}
	switch {
	case clusterDisabled(err):
		return nil, nil, notCluster(addr, err)
	case redis.IsLoadingError(err):
		return nil, nil, fmt.Errorf("%w: %w", errNodeUnusable, err)
	case unknownCommand(err):
		// Older than Redis 7, or SHARDS renamed: fall back to NODES.
	default:
		return nil, nil, err
	}
	text, err := cl.ClusterNodes(ctx).Result()
	if err != nil {
		if clusterDisabled(err) {
			return nil, nil, notCluster(addr, err)
		}
		if unknownCommand(err) {
			return nil, nil, c.confirmNotCluster(ctx, cl, addr, err)
		}
		return nil, nil, err
	}
	masters, err := mastersFromNodes(text)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", errNodeUnusable, err)
	}
	if len(masters) == 0 {
		return nil, nil, fmt.Errorf("%w: no master known", errNodeUnusable)
	}
	return masters, deadFromNodes(text), nil
}

// confirmNotCluster is used when CLUSTER commands are refused outright (a
// proxy, a managed Redis that renames them): INFO cluster tells whether it is
// a standalone server.
func (c *Cluster) confirmNotCluster(ctx context.Context, cl *redis.Client, addr string, cause error) error {
	info, err := cl.Info(ctx, "cluster").Result()
	if err == nil && strings.Contains(info, "cluster_enabled:0") {
		return notCluster(addr, cause)
	}
	return fmt.Errorf("%w: %s refuses CLUSTER SHARDS and CLUSTER NODES: %w", ErrNotCluster, addr, cause)
}

func notCluster(addr string, cause error) error {
	return fmt.Errorf("%w: %s is a standalone redis (%v); start it with cluster-enabled yes", ErrNotCluster, addr, cause)
}

// unknownCommand reports a server that does not know the command or
// subcommand ("ERR unknown command", "ERR unknown subcommand", and the
// "ERR Unknown subcommand or wrong number of arguments" of Redis 6). go-redis
// has no predicate for it.
func unknownCommand(err error) bool {
	return redis.HasErrorPrefix(err, "unknown ") || redis.HasErrorPrefix(err, "Unknown subcommand")
}

// clusterDisabled reports "ERR This instance has cluster support disabled",
// a standalone server's answer to CLUSTER commands (no go-redis predicate).
func clusterDisabled(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.Contains(re.Error(), "cluster support disabled")
}
