package shard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
)

// Router finds the master that serves a key. *cluster.Cluster is one.
type Router interface {
	Topology() *cluster.Topology
	MasterForKey(key string) (cluster.Master, *redis.Client, error)
	Node(addr string) *redis.Client
	LazyReload()
	Reload(ctx context.Context) (*cluster.Topology, error)
}

// maxRedirects bounds how often one write follows MOVED/ASK before it gives
// up; a slot migrating back and forth must not loop forever.
const maxRedirects = 3

// tryAgainFor bounds how long one call waits out TRYAGAIN: the keys a
// script declares (a key and its slot's trace set) are split between the
// two masters of a slot being migrated, which ends when the migrator moves
// the rest of the slot's keys (redis-cli moves --cluster-pipeline keys per
// MIGRATE, milliseconds apart). Not a fault of either master.
const tryAgainFor = 250 * time.Millisecond

// Reply is the outcome of a script followed by WAIT on the same connection.
type Reply struct {
	Values []any  // the script's reply; it ends with the node state
	Node   string // address of the master that ran it
	State  NodeState
	Acked  int // replicas that confirmed the write within the timeout
}

// RunScript runs script with args on the master of key and, in the same
// pipeline and so on the same connection, WAIT (WAIT counts only the writes
// of its own connection). It waits for every replica the topology lists as
// not failed; CheckAck then compares with what the script saw. want < 0
// skips WAIT. MOVED and ASK are followed at once and never reported as
// failures: they are routing, not faults.
// It is the one way every script of shardseq (this package's and package
// namespace's) reaches Redis; errors are returned as Redis gave them (see
// ClassifyNode).
func RunScript(ctx context.Context, r Router, script *redis.Script, key string, want int, waitMillis int64, args []any) (Reply, error) {
	return runScript(ctx, r, script, []string{key}, want, waitMillis, args)
}

// RunScriptKeys is RunScript for a script that declares several keys, all
// of the slot of keys[0], which routes the call.
func RunScriptKeys(ctx context.Context, r Router, script *redis.Script, keys []string, want int, waitMillis int64, args []any) (Reply, error) {
	return runScript(ctx, r, script, keys, want, waitMillis, args)
}

// runScript is RunScript with the keys the script declares, all of the
// slot of keys[0], which routes the call.
func runScript(ctx context.Context, r Router, script *redis.Script, keys []string, want int, waitMillis int64, args []any) (Reply, error) {
	key := keys[0]
	master, node, err := r.MasterForKey(key)
	if err != nil {
		r.LazyReload()
		return Reply{}, err
	}
	addr := master.Addr
	if want == 0 {
		want = liveReplicas(master)
	}
	asking := false
	var waited time.Duration
	for attempt := 0; ; attempt++ {
		rep, err := pipelineAcked(ctx, node, script, keys, want, waitMillis, asking, args)
		rep.Node = addr
		if err == nil {
			return rep, nil
		}
		if redis.IsTryAgainError(err) {
			// The script did not run. Ask the slot's owner again shortly
			// (it redirects anew); redirects are counted afresh.
			d := min(5*time.Millisecond<<min(waited/(10*time.Millisecond), 4), tryAgainFor-waited)
			if d <= 0 || !sleep(ctx, d) {
				return rep, fmt.Errorf("%w: %s: its slot is split by a migration (waited %v): %v", ErrRedirect, key, waited, err)
			}
			waited += d
			if m, n, merr := r.MasterForKey(key); merr == nil {
				addr, node, asking = m.Addr, n, false
			}
			attempt = -1
			continue
		}
		if isNoScript(err) {
			if lerr := script.Load(ctx, node).Err(); lerr != nil {
				return rep, onNode(addr, lerr)
			}
			continue
		}
		to, ask, redirect := cluster.IsRedirect(err)
		if !redirect {
			if isRedisError(err) && !cluster.IsClusterDown(err) {
				return rep, onNode(addr, err)
			}
			// A dead, frozen or demoted master: its slots may have a new
			// master already. Look now, and try that one once.
			if attempt < maxRedirects && ctx.Err() == nil {
				if _, rerr := r.Reload(ctx); rerr == nil {
					if m, n, merr := r.MasterForKey(key); merr == nil && m.Addr != addr {
						addr, node, asking = m.Addr, n, false
						continue
					}
				}
			}
			r.LazyReload()
			return rep, onNode(addr, err)
		}
		r.LazyReload()
		if attempt >= maxRedirects {
			return rep, fmt.Errorf("%w: %s still redirected after %d tries: %v", ErrRedirect, key, maxRedirects, err)
		}
		addr, node, asking = to, r.Node(to), ask
	}
}

// sleep waits d, or less if ctx ends first; it reports whether it waited d.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func pipelineAcked(ctx context.Context, node *redis.Client, script *redis.Script, keys []string, want int, waitMillis int64, asking bool, args []any) (Reply, error) {
	var eval, wait *redis.Cmd
	_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		if asking {
			p.Do(ctx, "ASKING")
		}
		eval = script.EvalSha(ctx, p, keys, args...)
		if want > 0 {
			wait = p.Do(ctx, "WAIT", want, waitMillis)
		}
		return nil
	})
	if err := eval.Err(); err != nil {
		return Reply{}, err
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return Reply{}, err
	}
	values, ok := eval.Val().([]any)
	if !ok {
		return Reply{}, fmt.Errorf("%w: script reply %v", ErrBadRecord, eval.Val())
	}
	st, err := ParseNodeState(values)
	if err != nil {
		return Reply{}, err
	}
	rep := Reply{Values: values, State: st}
	if wait != nil {
		n, werr := wait.Int64()
		if werr != nil {
			return rep, werr
		}
		rep.Acked = int(n)
	}
	return rep, nil
}

// liveReplicas is how many replicas the topology lists for master that are
// not flagged as failed: what WAIT waits for by default.
func liveReplicas(m cluster.Master) int {
	n := 0
	for _, r := range m.Replicas {
		if !r.Failed {
			n++
		}
	}
	return max(n, 1)
}

func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

func isNoScript(err error) bool { return redis.HasErrorPrefix(err, "NOSCRIPT") }

// Acked runs a script with WAIT for the replicas opt asks for (opt with its
// defaults applied) and checks the acknowledgement; errors the prelude
// raised are classified (ClassifyNode).
func Acked(ctx context.Context, r Router, opt Options, script *redis.Script, key string, waitMillis int64, args []any) (Reply, error) {
	return acked(ctx, r, opt, script, []string{key}, waitMillis, args)
}

// AckedKeys is Acked for a script that declares several keys, all of the
// slot of keys[0].
func AckedKeys(ctx context.Context, r Router, opt Options, script *redis.Script, keys []string, waitMillis int64, args []any) (Reply, error) {
	return acked(ctx, r, opt, script, keys, waitMillis, args)
}

// acked is Acked with the keys the script declares (see runScript).
func acked(ctx context.Context, r Router, opt Options, script *redis.Script, keys []string, waitMillis int64, args []any) (Reply, error) {
	rep, err := runScript(ctx, r, script, keys, opt.waitFor(), waitMillis, args)
	if err != nil {
		return rep, ClassifyNode(err)
	}
	return rep, CheckAck(r, opt, rep)
}

// CheckAck decides whether a write is durable enough to rely on: by default
// every replica that could be promoted in place of the master (connected or
// listed by the cluster and not failed), and at least one.
func CheckAck(r Router, opt Options, rep Reply) error {
	want := opt.AckReplicas
	switch {
	case want < 0 || opt.UnsafeDefences == NoDefences:
		return nil
	case want == 0 && opt.UnsafeDefences == LegacyDefences:
		want = max(rep.State.Connected, 1) // the old rule: a dropped replica is not counted
	case want == 0:
		want = max(rep.State.Promotable, 1)
	}
	if rep.Acked >= want {
		return nil
	}
	r.LazyReload() // the replica count we waited for may be stale
	return onNode(rep.Node, fmt.Errorf("%w: %d of %d replicas of %s confirmed within %v", ErrNotReplicated, rep.Acked, want, rep.Node, opt.AckTimeout))
}
