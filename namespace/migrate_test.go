//go:build integration

package namespace_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// Ports of TestReserveDuringSlotMigration: 7270-7275.
const portMigrate = 7250

// TestReserveDuringSlotMigration measures what a slot migration does to the
// scripts that declare two keys of one slot (a counter or a ceiling copy,
// and its slot's trace set). While a slot is MIGRATING and one of the two
// keys has moved and the other not (redis-cli --cluster reshard moves a
// slot's keys --cluster-pipeline at a time, 10 by default, in hash-table
// order, so a slot holding more keys than that is split for a while), Redis
// 7.0 answers the source's ASK with TRYAGAIN on the target (7.2 and Valkey 8
// answer TRYAGAIN on the source), where a one-key script would be served
// after the ASK. It moves three slots by hand (CLUSTER SETSLOT and MIGRATE,
// what redis-cli does) while a direct reserver and a strict client take IDs:
//   - atomic: every key of shard 0's counter slot in one MIGRATE (what
//     redis-cli does for a slot of at most 10 keys): the control;
//   - counter-first: shard 1's counter moved, its trace set held back;
//   - trace-first: the trace set of shard 2's first ceiling copy moved, the
//     copy held back.
//
// It asserts no ID twice, and reports the failed calls by error (it does not
// fail on them: they are the measurement).
func TestReserveDuringSlotMigration(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portMigrate})
	cl := lc.Dial(cluster.Config{})
	const name = "migrating"
	if _, err := namespace.Put(ctx10(t), cl, name, namespace.Spec{Shards: ptr(3)}, 0, shard.Options{}); err != nil {
		t.Fatal(err)
	}
	live := open(t, cl, name)
	c := newClient(t, cl, client.Config{Namespace: name, Strict: true})

	var (
		mu      sync.Mutex
		ids     []int64
		failed  = map[string]map[string]int{} // phase -> error -> count
		tries   = map[string]int{}
		logged  = map[string]bool{} // phase/who (or what) whose first error was logged
		phase   atomic.Pointer[string]
		stop    = make(chan struct{})
		wg      sync.WaitGroup
		perShrd [3]atomic.Int64 // direct attempts per shard
	)
	setPhase := func(p string) { phase.Store(&p) }
	setPhase("before")
	record := func(who string, got []int64, err error) {
		mu.Lock()
		defer mu.Unlock()
		p := *phase.Load() + "/" + who
		tries[p]++
		if err != nil {
			if !logged[p] {
				logged[p] = true
				t.Logf("%s: first error: %v", p, err)
			}
			if failed[p] == nil {
				failed[p] = map[string]int{}
			}
			failed[p][short(err)]++
			return
		}
		ids = append(ids, got...)
	}
	// One direct reserver per shard, so each migrated slot is in use (the
	// raises are forced below).
	for i := range live.Shards {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				b, err := live.Shards[i].Reserve(ctx, 64, 0)
				cancel()
				perShrd[i].Add(1)
				var got []int64
				if err == nil {
					got = make([]int64, 0, b.Len())
					for k := range b.Len() {
						got = append(got, b.ID(k))
					}
				}
				record(fmt.Sprintf("shard%d", i), got, err)
			}
		})
	}
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			id, err := c.Next(ctx)
			cancel()
			record("client", []int64{id}, err)
		}
	})

	move := func(p string, shardIdx int, key string, first func(counter, trace string) []string) {
		setPhase(p)
		slot := cluster.Slot(key)
		src := lc.MasterOf(key)
		var dst string
		for _, m := range lc.Masters() {
			if m != src {
				dst = m
				break
			}
		}
		trace := namespace.TraceKey(slot)
		var early []string
		if first != nil {
			early = first(key, trace)
		}
		before := perShrd[shardIdx].Load()
		err := migrateSlot(t, lc.Masters(), src, dst, slot, early, func() error {
			// Hold the split until the shard's reserver tried it a few
			// times, and try a creation meanwhile.
			clustertest.Eventually(t, 10*time.Second, func() error {
				if n := perShrd[shardIdx].Load() - before; n < 8 {
					return fmt.Errorf("%d reservations on shard %d during the split", n, shardIdx)
				}
				return nil
			})
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_, err := namespace.Put(ctx, cl, "created-during-"+p, namespace.Spec{Shards: ptr(3)}, 0, shard.Options{})
			record("put", nil, err)
			// Blocks of 2^27 pass the registered ceiling every other call,
			// so some of these raise every ceiling copy of the shard. Their
			// IDs are not recorded (too many); they are never handed out.
			for range 4 {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := live.Shards[shardIdx].Reserve(ctx, 1<<27, 0)
				cancel()
				record(fmt.Sprintf("shard%d-raise", shardIdx), nil, err)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("%s: migrating slot %d from %s to %s: %v", p, slot, src, dst, err)
		}
		t.Logf("%s: slot %d (%s) moved from %s to %s", p, slot, key, src, dst)
	}

	// Load before any move, so the phases start from a working namespace.
	clustertest.Eventually(t, 10*time.Second, func() error {
		if perShrd[0].Load() < 20 {
			return errors.New("reservers not started")
		}
		return nil
	})
	move("atomic", 0, live.Layout.CounterKey(0), nil)
	move("counter-first", 1, live.Layout.CounterKey(1), func(counter, _ string) []string { return []string{counter} })
	move("trace-first", 2, live.Layout.CeilingKey(2, 0), func(_, trace string) []string { return []string{trace} })
	// A slot that holds no key at all (most slots do not), migrating: the
	// creation's trace check reads every slot's trace set.
	move("empty-slot", 0, emptySlotKey(t, cl), nil)
	// A real reshard: redis-cli moves 300 slots (the lowest of the first
	// master's) while namespaces are created one after another.
	setPhase("redis-cli-reshard")
	if cli, err := exec.LookPath("redis-cli"); err != nil {
		t.Logf("no redis-cli: %v", err)
	} else {
		ms := lc.Masters()
		from, to := nodeID(t, ms[0]), nodeID(t, ms[1])
		cmd := exec.Command(cli, "--cluster", "reshard", ms[0], "--cluster-from", from, "--cluster-to", to,
			"--cluster-slots", "300", "--cluster-yes")
		out := make(chan []byte, 1)
		var runErr error
		go func() {
			b, err := cmd.CombinedOutput()
			runErr = err
			out <- b
		}()
		start := time.Now()
		var b []byte
	creating:
		for k := 0; ; k++ {
			select {
			case b = <-out:
				break creating
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := namespace.Put(ctx, cl, fmt.Sprintf("reshard-%d", k), namespace.Spec{Shards: ptr(3)}, 0, shard.Options{})
			cancel()
			record("put", nil, err)
		}
		if runErr != nil {
			t.Fatalf("redis-cli --cluster reshard: %v\n%s", runErr, b)
		}
		t.Logf("redis-cli --cluster reshard of 300 slots from %s to %s: %v", ms[0], ms[1], time.Since(start).Round(time.Millisecond))
	}

	setPhase("after")
	// The client serves again once the slots are home: how long it takes.
	done := time.Now()
	clustertest.Eventually(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := c.Next(ctx)
		return err
	})
	t.Logf("client served again %v after the last move", time.Since(done).Round(time.Millisecond))
	before := perShrd[1].Load()
	clustertest.Eventually(t, 10*time.Second, func() error {
		if perShrd[1].Load()-before < 20 {
			return errors.New("load after the moves")
		}
		return nil
	})
	close(stop)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	keys := make([]string, 0, len(tries))
	for k := range tries {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		n := 0
		for _, v := range failed[k] {
			n += v
		}
		t.Logf("%-22s calls %6d failed %5d %v", k, tries[k], n, failed[k])
	}
	seen := make(map[int64]bool, len(ids))
	dups := 0
	for _, id := range ids {
		if seen[id] {
			dups++
		}
		seen[id] = true
	}
	t.Logf("IDs %d, duplicates %d", len(ids), dups)
	// Creations read every slot's trace set, also those of a slot being
	// migrated (where its redirection points).
	for k, n := range failed {
		if strings.HasSuffix(k, "/put") {
			t.Errorf("%s: %d of %d creations failed: %v", k, sum(n), tries[k], n)
		}
	}
	if dups > 0 {
		t.Fatalf("%d IDs handed out twice across slot migrations", dups)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// nodeID is CLUSTER MYID of the node at addr.
func nodeID(t *testing.T, addr string) string {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	id, err := c.Do(context.Background(), "CLUSTER", "MYID").Text()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// emptySlotKey is a key of a slot that holds no key.
func emptySlotKey(t *testing.T, cl *cluster.Cluster) string {
	t.Helper()
	for k := 0; ; k++ {
		key := fmt.Sprintf("nothing-%d", k)
		_, node, err := cl.MasterForKey(key)
		if err != nil {
			t.Fatal(err)
		}
		n, err := node.ClusterCountKeysInSlot(context.Background(), cluster.Slot(key)).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return key
		}
	}
}

// short is an error's message, trimmed to what tells errors apart.
func short(err error) string {
	s := err.Error()
	for _, marker := range []string{"TRYAGAIN", "ASK", "MOVED", "non local key", "CLUSTERDOWN", "still redirected", "not replicated"} {
		if strings.Contains(s, marker) {
			if i := strings.Index(s, marker); i >= 0 && len(s)-i > 90 {
				return "…" + s[i:i+90]
			}
			return "…" + s[strings.Index(s, marker):]
		}
	}
	if len(s) > 120 {
		return s[:120]
	}
	return s
}

// migrateSlot moves slot from src to dst as redis-cli --cluster reshard does
// (IMPORTING on dst, MIGRATING on src, MIGRATE of its keys, SETSLOT NODE on
// dst, src and every other master), except that the keys early are migrated
// first and the rest only after during() returned: the slot stays split
// between the two masters meanwhile, as it does while redis-cli moves a slot
// of many keys --cluster-pipeline at a time.
func migrateSlot(t *testing.T, masters []string, src, dst string, slot int, early []string, during func() error) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	node := func(addr string) *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: addr})
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	s, d := node(src), node(dst)
	srcID, err := s.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return err
	}
	dstID, err := d.Do(ctx, "CLUSTER", "MYID").Text()
	if err != nil {
		return err
	}
	host, port, _ := net.SplitHostPort(dst)
	migrate := func(keys []string) error {
		if len(keys) == 0 {
			return nil
		}
		args := []any{"MIGRATE", host, port, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		return s.Do(ctx, args...).Err()
	}
	if err := d.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", srcID).Err(); err != nil {
		return err
	}
	if err := s.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", dstID).Err(); err != nil {
		return err
	}
	if err := migrate(early); err != nil {
		return fmt.Errorf("MIGRATE %v: %w", early, err)
	}
	if err := during(); err != nil {
		return err
	}
	rest, err := s.Do(ctx, "CLUSTER", "GETKEYSINSLOT", slot, 1000).StringSlice()
	if err != nil {
		return err
	}
	if err := migrate(rest); err != nil {
		return fmt.Errorf("MIGRATE %v: %w", rest, err)
	}
	for _, addr := range append([]string{dst, src}, masters...) {
		if err := node(addr).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", dstID).Err(); err != nil {
			return fmt.Errorf("SETSLOT NODE on %s: %w", addr, err)
		}
	}
	return nil
}

// TestSplitMigrationLosesTrace: "a key and its slot's trace share their
// fate" does not hold while a slot is split by a migration (MIGRATE moves a
// slot's keys one at a time). A key of the namespace has moved to the
// target, the trace set of its slot has not; the source then restarts empty
// (kill -9, no persistence: its replica resyncs the empty data set) and the
// operator finishes the reshard. The key lives on without its trace. If the
// record, the index and every other key of the namespace are lost
// afterwards (the cascade TestRebuiltKeysTraced plays), a creation with
// another N finds no trace, is not refused, and repeats IDs.
//
// The defence: every script that names a key and its slot's trace set adds
// the name back when it finds the key without it (retrace in
// shard/lua/prelude.lua), so the first reservation on a counter, or the
// first read, raise or repair of a ceiling copy, once the slot is whole
// again traces the key again, and the creation is refused. The process that
// uses the key opened the namespace before the reshard (an Open writes
// every trace afresh). The negative control switches the re-trace off
// (namespace.SkipRetrace): the same use leaves the key untraced and the
// recreation repeats IDs. What is left: a key that no script touches
// between the end of the reshard and the loss of everything else (see
// docs/CORRECTNESS.md).
func TestSplitMigrationLosesTrace(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portMigrate + 20})
	cl := lc.Dial(cluster.Config{})
	for _, tc := range []struct {
		kind string
		key  func(l namespace.Layout) string
		// use is what a running process does with the key's shard after
		// the reshard.
		use func(ctx context.Context, ns *namespace.Namespace) error
	}{
		{"counter", func(l namespace.Layout) string { return l.CounterKey(1) }, func(ctx context.Context, ns *namespace.Namespace) error {
			_, err := ns.Shards[1].Reserve(ctx, 10, 0)
			return err
		}},
		// A repair: it reads the copies (which traces one found without
		// its trace) and makes the migrated copy, untrusted on its new
		// master, trusted again. (A raise traces it too, and then starts
		// the same repair in the background, which would race the losses
		// below.)
		{"ceiling", func(l namespace.Layout) string { return l.CeilingKey(2, 0) }, func(ctx context.Context, ns *namespace.Namespace) error {
			_, err := ns.Shards[2].Repair(ctx)
			return err
		}},
	} {
		for _, control := range []bool{false, true} {
			name := "split-" + tc.kind
			what := "defence"
			if control {
				name, what = name+"-control", "control"
			}
			t.Run(tc.kind+"/"+what, func(t *testing.T) {
				ns := createAndUse(t, cl, name)
				if control {
					namespace.SkipRetrace(t)
				}
				live := open(t, cl, name)
				key := tc.key(ns.Layout)
				splitAndLoseTrace(t, lc, cl, name, key)

				clustertest.Eventually(t, 20*time.Second, func() error {
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
					defer cancel()
					return tc.use(ctx, live)
				})
				if got := traced(t, cl, name, key); got == control {
					t.Fatalf("%s: %s traced %v after a script ran on it, want %v", what, key, got, !control)
				}
				keepOnly(t, cl, ns, key)
				again, err := namespace.Put(ctx10(t), cl, name, namespace.Spec{Shards: ptr(2)}, 0, shard.Options{})
				if control {
					if err != nil || !again.Created {
						t.Fatalf("control: without the re-trace the recreation must succeed: %v", err)
					}
					repeats(t, cl, name, ns.ids)
					return
				}
				if !errors.Is(err, namespace.ErrNamespaceLost) {
					if err == nil {
						repeats(t, cl, name, ns.ids) // shows the repeat; the test fails below anyway
					}
					t.Fatalf("recreating %s with its migrated key %s left: %v, want ErrNamespaceLost", name, key, err)
				}
				t.Logf("refused: %v", err)
			})
		}
	}
}

// splitAndLoseTrace migrates key's slot to another master with key moved
// first, restarts the source empty while the slot is split, finishes the
// migration, and checks that key survived on the target without its trace.
func splitAndLoseTrace(t *testing.T, lc *clustertest.Cluster, cl *cluster.Cluster, name, key string) {
	t.Helper()
	slot := cluster.Slot(key)
	src := lc.MasterOf(key)
	var dst string
	for _, m := range lc.Masters() {
		if m != src {
			dst = m
			break
		}
	}
	err := migrateSlot(t, lc.Masters(), src, dst, slot, []string{key}, func() error {
		lc.RestartEmpty(src)
		lc.WaitHealthy(30 * time.Second)
		return nil
	})
	if err != nil {
		t.Fatalf("migrating slot %d: %v", slot, err)
	}
	clustertest.Eventually(t, 10*time.Second, func() error {
		top, err := cl.Reload(context.Background())
		if err != nil {
			return err
		}
		if m, ok := top.MasterForSlot(slot); !ok || m.Addr != dst {
			return fmt.Errorf("slot %d still on %s", slot, m.Addr)
		}
		return nil
	})
	if !exists(t, cl, key) {
		t.Fatalf("setup: %s did not survive on %s", key, dst)
	}
	if traced(t, cl, name, key) {
		t.Fatalf("setup: %s kept its trace", key)
	}
	t.Logf("slot %d: %s moved from %s to %s, its trace set lost with %s's empty restart", slot, key, src, dst, src)
}
