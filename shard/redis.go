package shard

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
)

var (
	//go:embed reserve.lua
	reserveSrc string
	//go:embed raise.lua
	raiseSrc string
	//go:embed meta.lua
	metaSrc string

	reserveScript = redis.NewScript(reserveSrc)
	raiseScript   = redis.NewScript(raiseSrc)
	metaScript    = redis.NewScript(metaSrc)
)

// Router finds the master that serves a key. *cluster.Cluster is one.
type Router interface {
	Topology() *cluster.Topology
	MasterForKey(key string) (cluster.Master, *redis.Client, error)
	Node(addr string) *redis.Client
	LazyReload()
}

// maxRedirects bounds how often one write follows MOVED/ASK before it gives
// up; a slot migrating back and forth must not loop forever.
const maxRedirects = 3

// ackedReply is the outcome of a script followed by WAIT on the same
// connection.
type ackedReply struct {
	values []any  // the script's reply; it includes the master's connected replicas
	node   string // address of the master that ran it
	acked  int    // replicas that confirmed the write within the timeout
}

// runAcked runs script on the master of key and, in the same pipeline and so
// on the same connection, WAIT for want replicas (WAIT counts only the writes
// of its own connection). want < 0 skips WAIT. MOVED and ASK are followed at
// once and never reported as failures: they are routing, not faults.
func runAcked(ctx context.Context, r Router, script *redis.Script, key string, want int, waitMillis int64, args ...any) (ackedReply, error) {
	master, node, err := r.MasterForKey(key)
	if err != nil {
		r.LazyReload()
		return ackedReply{}, err
	}
	addr := master.Addr
	if want == 0 {
		want = liveReplicas(master)
	}
	asking := false
	for attempt := 0; ; attempt++ {
		rep, err := pipelineAcked(ctx, node, script, key, want, waitMillis, asking, args)
		rep.node = addr
		if err == nil {
			return rep, nil
		}
		if isNoScript(err) {
			if lerr := script.Load(ctx, node).Err(); lerr != nil {
				return rep, lerr
			}
			continue
		}
		to, ask, moved := cluster.IsRedirect(err)
		if !moved {
			return rep, err
		}
		r.LazyReload()
		if attempt >= maxRedirects {
			return rep, fmt.Errorf("%w: %s still redirected after %d tries: %v", ErrRedirect, key, maxRedirects, err)
		}
		addr, node, asking = to, r.Node(to), ask
	}
}

func pipelineAcked(ctx context.Context, node *redis.Client, script *redis.Script, key string, want int, waitMillis int64, asking bool, args []any) (ackedReply, error) {
	var eval *redis.Cmd
	var wait *redis.Cmd
	_, err := node.Pipelined(ctx, func(p redis.Pipeliner) error {
		if asking {
			p.Do(ctx, "ASKING")
		}
		eval = script.EvalSha(ctx, p, []string{key}, args...)
		if want > 0 {
			wait = p.Do(ctx, "WAIT", want, waitMillis)
		}
		return nil
	})
	if err := eval.Err(); err != nil {
		return ackedReply{}, err
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return ackedReply{}, err
	}
	values, ok := eval.Val().([]any)
	if !ok || len(values) < 2 {
		return ackedReply{}, fmt.Errorf("%w: script reply %v", ErrBadRecord, eval.Val())
	}
	rep := ackedReply{values: values}
	// Every script reports the master's connected replicas as its second-to-
	// last (reserve) or last (raise, meta) value; the caller picks it out.
	if wait != nil {
		n, werr := wait.Int64()
		if werr != nil {
			return rep, werr
		}
		rep.acked = int(n)
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

func isNoScript(err error) bool {
	return err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT")
}

func asInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%w: %q is not an integer", ErrBadRecord, x)
		}
		return n, nil
	}
	return 0, fmt.Errorf("%w: %v (%T) is not an integer", ErrBadRecord, v, v)
}

func asString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return ""
}
