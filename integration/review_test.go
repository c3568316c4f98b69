//go:build integration

package integration

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// Tests for the holes the design review found, each with the timeline that
// opened it.

// gatedRouter is a shard.Router whose scripts pass through gates: a process
// using it can be stopped at a chosen step, as a GC pause, SIGSTOP or crash
// of a real process would stop it.
type gatedRouter struct {
	*cluster.Cluster
	mu    sync.Mutex
	nodes map[string]*redis.Client
	gates []*gate
}

// gate stops the first script call matching match: it signals reached and
// waits for release; if fail is set it then fails the call (the process
// "died" there).
type gate struct {
	match   func(args []any) bool
	reached chan struct{}
	release chan struct{}
	fail    bool
	once    sync.Once
}

func newGate(match func([]any) bool, fail bool) *gate {
	return &gate{match: match, reached: make(chan struct{}), release: make(chan struct{}), fail: fail}
}

func hasArg(want string) func([]any) bool {
	return func(args []any) bool {
		for _, a := range args {
			if a == want {
				return true
			}
		}
		return false
	}
}

// isRestore matches reserve.lua called with a floor claimed for an identity:
// EVALSHA sha 2 key tracekey then 14 arguments, the 9th the identity.
func isRestore(args []any) bool {
	return len(args) == 19 && fmt.Sprint(args[13]) != ""
}

func newGatedRouter(t *testing.T, c *clustertest.Cluster, gates ...*gate) *gatedRouter {
	r := &gatedRouter{Cluster: c.Dial(cluster.Config{}), nodes: map[string]*redis.Client{}, gates: gates}
	t.Cleanup(func() {
		for _, g := range gates {
			g.once.Do(func() {})
			select {
			case <-g.release:
			default:
				close(g.release)
			}
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, n := range r.nodes {
			_ = n.Close()
		}
	})
	return r
}

func (r *gatedRouter) Node(addr string) *redis.Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, ok := r.nodes[addr]; ok {
		return n
	}
	n := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: 5 * time.Second})
	n.AddHook(gateHook{r})
	r.nodes[addr] = n
	return n
}

func (r *gatedRouter) MasterForKey(key string) (cluster.Master, *redis.Client, error) {
	m, _, err := r.Cluster.MasterForKey(key)
	if err != nil {
		return m, nil, err
	}
	return m, r.Node(m.Addr), nil
}

type gateHook struct{ r *gatedRouter }

func (gateHook) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (gateHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (h gateHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			for _, g := range h.r.gates {
				hit := false
				if g.match(c.Args()) {
					g.once.Do(func() { hit = true })
				}
				if !hit {
					continue
				}
				close(g.reached)
				<-g.release
				if g.fail {
					return errors.New("gated process died here")
				}
			}
		}
		return next(ctx, cmds)
	}
}

func waitReached(t *testing.T, g *gate, what string) {
	t.Helper()
	select {
	case <-g.reached:
	case <-time.After(20 * time.Second):
		t.Fatalf("never reached: %s", what)
	}
}

// F6: two processes restore the same new history of a counter. A claims the
// copies and restores the counter; B, which saw the counter stale before A
// restored it, claims above A (its first claim at A's epoch is refused) and
// dies before it restores. The copies now carry an epoch above the counter's,
// claimed for the counter's own history. A's raise is refused as "stale";
// were that taken as a newer history, the shard would be fenced for good
// (nothing else re-fences a counter whose identity matches). A claim made
// for one's own history is adopted instead, and A's block stands.
func TestRestore_ClaimForOwnHistoryIsAdopted(t *testing.T) {
	c := startCluster(t, Opts{})
	const ns = "ownclaim"
	setup := c.Dial(cluster.Config{})
	sns, err := namespace.Open(context.Background(), setup, ns, namespace.Settings{Shards: 1}, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sns.Shards[0].Reserve(context.Background(), 10, 0); err != nil {
		t.Fatal(err)
	}
	key, ceilings := sns.Shards[0].Key, sns.Shards[0].CeilingKeys
	old := c.MasterOf(key)
	c.Kill(old)
	c.WaitPromoted(old, 30*time.Second)
	c.Start(old)
	c.WaitHealthy(60 * time.Second)

	bClaim, bRestore := newGate(hasArg("claim"), false), newGate(isRestore, true)
	rb := newGatedRouter(t, c, bClaim, bRestore)
	aRaise := newGate(hasArg("raise"), false)
	ra := newGatedRouter(t, c, aRaise)
	open := func(r shard.Router) *shard.Shard {
		n, err := namespace.Open(context.Background(), r, ns, namespace.Settings{}, shard.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return n.Shards[0]
	}
	sa, sb := open(ra), open(rb)

	bDone := make(chan error, 1)
	go func() { _, err := sb.Reserve(context.Background(), 1, 0); bDone <- err }()
	waitReached(t, bClaim, "B's claim (B saw the counter's changed history)")
	type res struct {
		b   shard.Block
		err error
	}
	aDone := make(chan res, 1)
	// A replica that has just resynced may miss a WAIT; A tries again then,
	// as a client would (the gate stops only the raise).
	go func() {
		for attempt := 0; ; attempt++ {
			b, err := sa.Reserve(context.Background(), 1, 0)
			if err == nil || !errors.Is(err, shard.ErrNotReplicated) || attempt == 20 {
				aDone <- res{b, err}
				return
			}
		}
	}()
	select {
	case <-aRaise.reached:
	case r := <-aDone:
		t.Fatalf("A's reservation ended before its raise: %+v %v", r.b, r.err)
	case <-time.After(20 * time.Second):
		t.Fatal("A never reached its raise")
	}
	close(bClaim.release)
	waitReached(t, bRestore, "B's restore (B claimed above A)")
	close(bRestore.release) // B dies before it restores
	if err := <-bDone; err == nil {
		t.Fatal("B was to die before restoring")
	}

	cc := setup.ClusterClient()
	ctx := context.Background()
	counter := cc.HGetAll(ctx, key).Val()
	cEpoch, _ := strconv.ParseInt(counter["epoch"], 10, 64)
	for _, k := range ceilings {
		copyState := cc.HGetAll(ctx, k).Val()
		e, _ := strconv.ParseInt(copyState["epoch"], 10, 64)
		if e <= cEpoch || copyState["owner"] != counter["node"] {
			t.Fatalf("the trap was not set: counter %v, copy %s %v (want the copy's epoch above the counter's, claimed for its identity)", counter, k, copyState)
		}
	}
	t.Logf("trap set: counter epoch %d; copies claimed above it for the counter's own history", cEpoch)

	close(aRaise.release)
	r := <-aDone
	if r.err != nil {
		t.Fatalf("A's reservation failed; a claim for its own history must be adopted: %v", r.err)
	}
	if got, _ := strconv.ParseInt(cc.HGet(ctx, key, "epoch").Val(), 10, 64); got <= cEpoch {
		t.Fatalf("the counter did not adopt the newer epoch (still %d)", got)
	}
	// And the shard keeps serving for anyone.
	if _, err := open(setup).Reserve(context.Background(), 1, 0); err != nil {
		t.Fatalf("a fresh process cannot reserve: %v", err)
	}
}

// F2: a master whose eviction policy can delete keys (allkeys-*) is refused
// with a clear error, for new namespaces and for reservations alike: an
// evicted record or counter would come back as a new namespace, or a counter
// starting over. The second half shows the hazard is real: under memory
// pressure such a master does evict shardseq's keys.
func TestUnsafeRedis_EvictingPolicyRefused(t *testing.T) {
	c := startCluster(t, Opts{})
	conn := c.Dial(cluster.Config{})
	ctx := context.Background()
	ns, err := namespace.Open(ctx, conn, "evict", namespace.Settings{Shards: 3}, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ns.Shards {
		if _, err := s.Reserve(ctx, 100, 0); err != nil {
			t.Fatal(err)
		}
	}
	masters := c.Masters()
	setPolicy := func(policy, maxmemory string) {
		for _, m := range masters {
			rc := redis.NewClient(&redis.Options{Addr: m})
			err := rc.ConfigSet(ctx, "maxmemory-policy", policy).Err()
			if err == nil {
				err = rc.ConfigSet(ctx, "maxmemory", maxmemory).Err()
			}
			_ = rc.Close()
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	setPolicy("allkeys-lru", "0")
	t.Cleanup(func() { setPolicy("noeviction", "0") })

	for _, s := range ns.Shards {
		_, err := s.Reserve(ctx, 100, 0)
		if !errors.Is(err, shard.ErrUnsafeRedis) || !strings.Contains(err.Error(), "noeviction") {
			t.Fatalf("shard %d: reservation on an evicting master: %v, want ErrUnsafeRedis naming the fix", s.Index, err)
		}
	}
	if _, err := namespace.Open(ctx, conn, "evict-new", namespace.Settings{}, shard.Options{}); !errors.Is(err, shard.ErrUnsafeRedis) {
		t.Fatalf("new namespace on evicting masters: %v, want ErrUnsafeRedis", err)
	}

	// The hazard: fill one master past maxmemory; it evicts our keys too.
	victim := c.MasterOf(ns.Shards[0].Key)
	rc := redis.NewClient(&redis.Options{Addr: victim})
	defer rc.Close()
	used, _ := rc.Info(ctx, "memory").Result()
	var usedBytes int64
	for line := range strings.Lines(used) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			usedBytes, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	if err := rc.ConfigSet(ctx, "maxmemory", strconv.FormatInt(usedBytes+4<<20, 10)).Err(); err != nil {
		t.Fatal(err)
	}
	top := conn.Topology()
	value := strings.Repeat("x", 4096)
	written := 0
	for k := 0; written < 8000 && k < 1<<20; k++ {
		fk := "junk:{" + strconv.Itoa(k) + "}"
		if m, ok := top.MasterForSlot(cluster.Slot(fk)); !ok || m.Addr != victim {
			continue
		}
		if err := rc.Set(ctx, fk, value, 0).Err(); err != nil {
			t.Fatal(err)
		}
		written++
	}
	if n := rc.Exists(ctx, ns.Shards[0].Key).Val(); n != 0 {
		t.Skipf("LRU kept the counter this time (%d junk keys written); the refusal above is what this test is about", written)
	}
	t.Logf("under allkeys-lru the counter %s was evicted without a trace: what the refusal prevents", ns.Shards[0].Key)
}
