package namespace_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// Ports of this package's clusters: 7200-7239 (bus ports +10000).
const portNamespaces = 7200

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func ptr[T any](v T) *T { return &v }

// TestNamespaces runs the namespace API against one real local cluster (3
// masters, 1 replica each).
func TestNamespaces(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portNamespaces})
	cl := lc.Dial(cluster.Config{})
	t.Run("StartAndShards", func(t *testing.T) { testStartAndShards(t, cl) })
	t.Run("Put", func(t *testing.T) { testPut(t, cl) })
	t.Run("ConcurrentPut", func(t *testing.T) { testConcurrentPut(t, cl) })
	t.Run("List", func(t *testing.T) { testList(t, cl) })
	t.Run("Describe", func(t *testing.T) { testDescribe(t, cl) })
	t.Run("DeleteRecreate", func(t *testing.T) { testDeleteRecreate(t, cl) })
	t.Run("StaleCopies", func(t *testing.T) { testStaleCopies(t, cl) })
	t.Run("NaiveDeleteRepeats", func(t *testing.T) { testNaiveDeleteRepeats(t, cl) })
}

func newClient(t *testing.T, cl *cluster.Cluster, cfg client.Config) *client.Client {
	t.Helper()
	c, err := openClient(cl, cfg)
	if err != nil {
		t.Fatalf("client.New %s: %v", cfg.Namespace, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func openClient(cl *cluster.Cluster, cfg client.Config) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cfg.Cluster, cfg.Logger = cl, quiet()
	return client.New(ctx, cfg)
}

func take(t *testing.T, c *client.Client, n int) []int64 {
	t.Helper()
	var out []int64
	for len(out) < n {
		ids, err := c.NextN(context.Background(), min(n-len(out), 997))
		if err != nil {
			t.Fatalf("NextN: %v", err)
		}
		out = append(out, ids...)
	}
	return out
}

// distinct fails the test on any ID seen twice across the lists.
func distinct(t *testing.T, lists ...[]int64) {
	t.Helper()
	seen := map[int64]bool{}
	for _, l := range lists {
		for _, id := range l {
			if seen[id] {
				t.Fatalf("ID %d handed out twice", id)
			}
			seen[id] = true
		}
	}
}

// countRepeats is how many IDs of after are in before.
func countRepeats(before, after []int64) int {
	seen := make(map[int64]bool, len(before))
	for _, id := range before {
		seen[id] = true
	}
	n := 0
	for _, id := range after {
		if seen[id] {
			n++
		}
	}
	return n
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// A namespace's own N and start are honoured: every ID is at least start,
// shard i hands out only IDs congruent to i mod N, the stored N is used when
// none is asked for, and another N or start is refused.
func testStartAndShards(t *testing.T, cl *cluster.Cluster) {
	const n, start = 5, 1_000_003
	first := newClient(t, cl, client.Config{Namespace: "migrated", Shards: n, Start: start})
	if first.ShardCount() != n || first.Start() != start {
		t.Fatalf("opened with %d shards from %d", first.ShardCount(), first.Start())
	}
	strict := newClient(t, cl, client.Config{Namespace: "migrated", Strict: true, CreateShards: 9})
	if strict.ShardCount() != n || strict.Start() != start {
		t.Fatalf("reopened without N: %d shards from %d; want the stored %d from %d", strict.ShardCount(), strict.Start(), n, start)
	}
	a, b := take(t, first, 20_000), take(t, strict, 200)
	distinct(t, a, b)
	for _, id := range slices.Concat(a, b) {
		if id < start {
			t.Fatalf("ID %d below start %d", id, start)
		}
	}
	// The blocks say which shard reserved them: shard i's IDs are i mod N.
	ns, err := namespace.Open(ctx10(t), cl, "migrated", namespace.Settings{NoCreate: true}, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ns.Shards {
		blk, err := s.Reserve(ctx10(t), 3, 0)
		if err != nil {
			t.Fatalf("shard %d: %v", s.Index, err)
		}
		for k := range blk.Len() {
			if id := blk.ID(k); id%n != int64(s.Index) || id < start {
				t.Errorf("shard %d handed out %d", s.Index, id)
			}
		}
	}

	_, err = openClient(cl, client.Config{Namespace: "migrated", Shards: n + 1})
	if !errors.Is(err, client.ErrShardCountMismatch) || !strings.Contains(err.Error(), "5") {
		t.Errorf("explicit other N: %v, want ErrShardCountMismatch naming 5", err)
	}
	_, err = openClient(cl, client.Config{Namespace: "migrated", Start: 7})
	if !errors.Is(err, client.ErrSettingsMismatch) {
		t.Errorf("explicit other start: %v, want ErrSettingsMismatch", err)
	}
	// CreateShards decides only for a new namespace.
	fresh := newClient(t, cl, client.Config{Namespace: "created-with-7", CreateShards: 7})
	if fresh.ShardCount() != 7 || fresh.Start() != 1 {
		t.Errorf("CreateShards 7: %d shards from %d", fresh.ShardCount(), fresh.Start())
	}
	// The first ID of a new namespace with a start is the start or just above.
	edge := newClient(t, cl, client.Config{Namespace: "edge", Shards: 3, Start: 100, Strict: true, OrderWindow: -1})
	ids := take(t, edge, 3)
	slices.Sort(ids)
	if ids[0] < 100 || ids[0] > 102 {
		t.Errorf("first strict IDs from start 100 over 3 shards: %v", ids)
	}
}

func testPut(t *testing.T, cl *cluster.Cluster) {
	opt := shard.Options{}
	ns, err := namespace.Put(ctx10(t), cl, "put", namespace.Spec{Shards: ptr(4), Start: ptr(int64(500)), Strict: ptr(true)}, 0, opt)
	if err != nil || !ns.Created || ns.Recreated {
		t.Fatalf("Put new: %+v %v", ns, err)
	}
	if in := ns.Info(); in.Shards != 4 || in.Start != 500 || !in.Strict || in.State != namespace.StateActive || in.Generation != 1 ||
		time.Since(in.CreatedAt) > time.Minute {
		t.Errorf("Info %+v", in)
	}
	for _, spec := range []namespace.Spec{{}, {Shards: ptr(4)}, {Start: ptr(int64(500))}, {Strict: ptr(true)},
		{Shards: ptr(4), Start: ptr(int64(500)), Strict: ptr(true)}} {
		again, err := namespace.Put(ctx10(t), cl, "put", spec, 9, opt)
		if err != nil || again.Created || again.Layout.Shards != 4 {
			t.Errorf("Put again with %+v: %+v %v; want the namespace, not created", spec, again, err)
		}
	}
	for _, tc := range []struct {
		spec namespace.Spec
		want error
	}{
		{namespace.Spec{Shards: ptr(5)}, namespace.ErrShardCountMismatch},
		{namespace.Spec{Start: ptr(int64(501))}, namespace.ErrSettingsMismatch},
		{namespace.Spec{Strict: ptr(false)}, namespace.ErrSettingsMismatch},
	} {
		if _, err := namespace.Put(ctx10(t), cl, "put", tc.spec, 0, opt); !errors.Is(err, tc.want) {
			t.Errorf("Put %+v: %v, want %v", tc.spec, err, tc.want)
		}
	}
	for _, spec := range []namespace.Spec{{Shards: ptr(0)}, {Shards: ptr(shard.MaxShards + 1)}, {Start: ptr(int64(0))}, {Start: ptr(namespace.MaxStart(0) + 1)}} {
		if _, err := namespace.Put(ctx10(t), cl, "put-bad", spec, 0, opt); err == nil {
			t.Errorf("Put %+v accepted", spec)
		}
	}
	if _, err := namespace.Open(ctx10(t), cl, "put-bad", namespace.Settings{NoCreate: true}, opt); !errors.Is(err, namespace.ErrNamespaceNotFound) {
		t.Errorf("a refused Put created something: %v", err)
	}
	// defaultShards is N of a new namespace without one.
	if ns, err := namespace.Put(ctx10(t), cl, "put-default", namespace.Spec{}, 3, opt); err != nil || ns.Layout.Shards != 3 || ns.Start != 1 || ns.Strict {
		t.Errorf("Put with defaults: %+v %v", ns, err)
	}
	// A namespace stored strict is served strict by every client.
	c := newClient(t, cl, client.Config{Namespace: "put"})
	if !c.Strict() {
		t.Error("a client of a strict namespace is not strict")
	}
	if ids := take(t, c, 10); slices.Min(ids) < 500 {
		t.Errorf("IDs %v below the start 500", ids)
	}
}

// Concurrent creators of one namespace: one of them created it, the others
// got it.
func testConcurrentPut(t *testing.T, cl *cluster.Cluster) {
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for range 6 {
		wg.Go(func() {
			ns, err := namespace.Put(ctx10(t), cl, "racing", namespace.Spec{Shards: ptr(3)}, 0, shard.Options{})
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ns.Created {
				created++
			}
		})
	}
	wg.Wait()
	if created != 1 {
		t.Errorf("%d Puts say they created the namespace, want 1", created)
	}
}

func testList(t *testing.T, cl *cluster.Cluster) {
	var want []string
	for k := range 23 {
		name := fmt.Sprintf("list-%02d", k)
		if _, err := namespace.Put(ctx10(t), cl, name, namespace.Spec{Shards: ptr(1)}, 0, shard.Options{}); err != nil {
			t.Fatal(err)
		}
		want = append(want, name)
	}
	if _, err := namespace.Delete(ctx10(t), cl, "list-07", shard.Options{}); err != nil {
		t.Fatal(err)
	}
	// list-11's record is lost (every copy), list-12 keeps one copy of three.
	for _, k := range namespace.MetaKeys("list-11") {
		del(t, cl, k)
	}
	for _, k := range namespace.MetaKeys("list-12")[1:] {
		del(t, cl, k)
	}
	var got []string
	cursor, pages := "", 0
	for {
		page, err := namespace.List(ctx10(t), cl, cursor, 5)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		if len(page.Namespaces) > 5 || (page.Next != "" && len(page.Namespaces) != 5) {
			t.Fatalf("page of %d after %q, next %q", len(page.Namespaces), cursor, page.Next)
		}
		for _, in := range page.Namespaces {
			if strings.HasPrefix(in.Name, "list-") {
				got = append(got, in.Name)
				state := namespace.StateActive
				if in.Name == "list-07" {
					state = namespace.StateDeleted
				}
				switch {
				case in.Name == "list-11":
					if in.State != namespace.StateLost || in.Shards != 0 {
						t.Errorf("listed %+v, want lost", in)
					}
				case in.State != state || in.Shards != 1 || in.Start != 1:
					t.Errorf("listed %+v", in)
				}
			}
			// A page reads records with pipelined HMGETs: what Read says.
			if read := namespace.Read(ctx10(t), cl, in.Name); read != in {
				t.Errorf("listed %+v, Read says %+v", in, read)
			}
		}
		if !slices.IsSortedFunc(page.Namespaces, func(a, b namespace.Info) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("page not sorted: %v", page.Namespaces)
		}
		if page.Next == "" {
			break
		}
		cursor = page.Next
	}
	if !slices.Equal(got, want) {
		t.Errorf("listed %v, want %v", got, want)
	}
	if pages < 5 {
		t.Errorf("%d pages of 5 for more than 23 names", pages)
	}
	// A cursor past every name, and one between names.
	if page, err := namespace.List(ctx10(t), cl, "zzz", 10); err != nil || len(page.Namespaces) != 0 || page.Next != "" {
		t.Errorf("after the last name: %+v %v", page, err)
	}
	if page, err := namespace.List(ctx10(t), cl, "list-03a", 2); err != nil || len(page.Namespaces) != 2 || page.Namespaces[0].Name != "list-04" || page.Next != "list-05" {
		t.Errorf("after list-03a: %+v %v", page, err)
	}
	for _, bad := range []struct {
		cursor string
		limit  int
	}{{"", 0}, {"", namespace.MaxListLimit + 1}, {"a:b", 10}} {
		if _, err := namespace.List(ctx10(t), cl, bad.cursor, bad.limit); err == nil {
			t.Errorf("List(%q, %d) accepted", bad.cursor, bad.limit)
		}
	}
}

func testDescribe(t *testing.T, cl *cluster.Cluster) {
	c := newClient(t, cl, client.Config{Namespace: "described", Shards: 4, Start: 1000})
	ids := take(t, c, 5000)
	d, err := namespace.Describe(ctx10(t), cl, "described", shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	u := d.Usage
	if d.Shards != 4 || d.Start != 1000 || d.State != namespace.StateActive || u.Checked != 4 || u.Shards != 4 || u.MaxID != shard.DefaultMaxID {
		t.Errorf("description %+v", d)
	}
	if u.HighestID < slices.Max(ids) || u.Reserved < int64(len(ids))/4 {
		t.Errorf("usage %+v after %d IDs up to %d", u, len(ids), slices.Max(ids))
	}
	if total := u.Reserved + u.SpaceLeft; total < (shard.DefaultMaxID-1000)/4*4-8 || total > shard.DefaultMaxID || u.Used() <= 0 || u.Used() > 0.01 {
		t.Errorf("usage %+v: reserved+left %d, used %g", u, total, u.Used())
	}
	if _, err := namespace.Describe(ctx10(t), cl, "never-created", shard.Options{}); !errors.Is(err, namespace.ErrNamespaceNotFound) {
		t.Errorf("Describe of a name never created: %v", err)
	}
	if _, err := namespace.Delete(ctx10(t), cl, "never-created", shard.Options{}); !errors.Is(err, namespace.ErrNamespaceNotFound) {
		t.Errorf("Delete of a name never created: %v", err)
	}
	// A smaller MaxID shows in the space left.
	small, err := namespace.Describe(ctx10(t), cl, "described", shard.Options{MaxID: 1 << 40})
	if err != nil || small.Usage.SpaceLeft > 1<<40 || small.Usage.Used() <= u.Used() {
		t.Errorf("with MaxID 2^40: %+v %v", small.Usage, err)
	}
}

// Deleting never loses what a namespace reserved: recreating it (with Put,
// or by a client that may create) continues above every ID it handed out,
// and clients that had it open keep handing out unique IDs.
func testDeleteRecreate(t *testing.T, cl *cluster.Cluster) {
	const name = "retired"
	opt := shard.Options{}
	old := newClient(t, cl, client.Config{Namespace: name, Shards: 3, Start: 50})
	before := take(t, old, 30_000)
	deleted, err := namespace.Delete(ctx10(t), cl, name, opt)
	if err != nil || !deleted {
		t.Fatalf("Delete: %v %v", deleted, err)
	}
	if again, err := namespace.Delete(ctx10(t), cl, name, opt); err != nil || again {
		t.Errorf("Delete again: %v %v; want nothing to do", again, err)
	}
	d, err := namespace.Describe(ctx10(t), cl, name, opt)
	if err != nil || d.State != namespace.StateDeleted || d.Generation != 2 || d.Usage.HighestID < slices.Max(before) {
		t.Errorf("Describe after Delete: %+v %v", d, err)
	}
	_, err = namespace.Open(ctx10(t), cl, name, namespace.Settings{NoCreate: true}, opt)
	if !errors.Is(err, namespace.ErrNamespaceDeleted) || !errors.Is(err, namespace.ErrNamespaceNotFound) || !strings.Contains(err.Error(), name) {
		t.Errorf("Open NoCreate of a deleted namespace: %v", err)
	}
	if _, err := openClient(cl, client.Config{Namespace: name, NoCreate: true}); !errors.Is(err, client.ErrNamespaceDeleted) {
		t.Errorf("client.New NoCreate of a deleted namespace: %v", err)
	}
	// The client that had it open keeps serving, from its blocks and new
	// reservations: unique IDs all the same.
	during := take(t, old, 10_000)
	distinct(t, before, during)
	oldMax := max(slices.Max(before), slices.Max(during))

	// Recreated with Put: another N or start is refused (it could repeat
	// IDs); the same (or none) continues above everything.
	if _, err := namespace.Put(ctx10(t), cl, name, namespace.Spec{Shards: ptr(4)}, 0, opt); !errors.Is(err, namespace.ErrShardCountMismatch) {
		t.Errorf("recreate with another N: %v", err)
	}
	if _, err := namespace.Put(ctx10(t), cl, name, namespace.Spec{Start: ptr(int64(1))}, 0, opt); !errors.Is(err, namespace.ErrSettingsMismatch) {
		t.Errorf("recreate with another start: %v", err)
	}
	ns, err := namespace.Put(ctx10(t), cl, name, namespace.Spec{Strict: ptr(true)}, 7, opt)
	if err != nil || !ns.Created || !ns.Recreated || ns.Generation != 3 || ns.Layout.Shards != 3 || ns.Start != 50 || !ns.Strict {
		t.Fatalf("recreate with Put: %+v %v", ns, err)
	}
	old.Close() // what a server does on DELETE; its blocks become gaps
	second := newClient(t, cl, client.Config{Namespace: name})
	after := take(t, second, 500)
	distinct(t, before, during, after)
	if m := slices.Min(after); m <= oldMax {
		t.Errorf("after recreation the smallest ID is %d, not above the old maximum %d", m, oldMax)
	}

	// Deleted again and recreated by a client that may create.
	if _, err := namespace.Delete(ctx10(t), cl, name, opt); err != nil {
		t.Fatal(err)
	}
	oldMax = max(oldMax, slices.Max(after))
	second.Close()
	third := newClient(t, cl, client.Config{Namespace: name, Shards: 3})
	last := take(t, third, 20_000)
	distinct(t, before, during, after, last)
	if m := slices.Min(last); m <= oldMax {
		t.Errorf("after the auto recreation the smallest ID is %d, not above the old maximum %d", m, oldMax)
	}
	if d, err := namespace.Describe(ctx10(t), cl, name, opt); err != nil || d.State != namespace.StateActive || d.Generation != 5 || !d.Strict {
		t.Errorf("after the auto recreation: %+v %v; want generation 5, strict kept", d, err)
	}
}

// Copies of the record that missed a delete (their master was down, or
// rewound) or that an older version wrote: the newest state wins and the
// stale copy is brought up to date.
func testStaleCopies(t *testing.T, cl *cluster.Cluster) {
	const name = "stale-copies"
	opt := shard.Options{}
	if _, err := namespace.Put(ctx10(t), cl, name, namespace.Spec{Shards: ptr(2)}, 0, opt); err != nil {
		t.Fatal(err)
	}
	keys := namespace.MetaKeys(name)
	hash := func(key string) map[string]string {
		_, node, err := cl.MasterForKey(key)
		if err != nil {
			t.Fatal(err)
		}
		h, err := node.HGetAll(context.Background(), key).Result()
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	set := func(key string, kv ...any) {
		_, node, err := cl.MasterForKey(key)
		if err != nil {
			t.Fatal(err)
		}
		if err := node.HSet(context.Background(), key, kv...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Written by a version without state: generation 1, live.
	for _, k := range keys {
		_, node, _ := cl.MasterForKey(k)
		if err := node.HDel(context.Background(), k, "strict", "gen", "deleted", "created").Err(); err != nil {
			t.Fatal(err)
		}
	}
	ns, err := namespace.Open(ctx10(t), cl, name, namespace.Settings{NoCreate: true}, opt)
	if err != nil || ns.Generation != 1 || ns.Deleted || ns.Strict || !ns.CreatedAt.IsZero() {
		t.Fatalf("record without state: %+v %v", ns, err)
	}
	if _, err := namespace.Delete(ctx10(t), cl, name, opt); err != nil {
		t.Fatal(err)
	}
	set(keys[1], "gen", "1", "deleted", "0") // missed the delete
	_, err = namespace.Open(ctx10(t), cl, name, namespace.Settings{NoCreate: true}, opt)
	if !errors.Is(err, namespace.ErrNamespaceDeleted) {
		t.Fatalf("with one copy behind: %v, want ErrNamespaceDeleted", err)
	}
	if _, err := namespace.Describe(ctx10(t), cl, name, opt); err != nil {
		t.Fatal(err)
	}
	if h := hash(keys[1]); h["gen"] != "2" || h["deleted"] != "1" {
		t.Errorf("the copy behind was not brought up to date: %v", h)
	}
	// Only copy 2 left, the others lost: it is the truth, and the lost
	// copies are rewritten with its state.
	for _, k := range keys[:2] {
		_, node, _ := cl.MasterForKey(k)
		if err := node.Del(context.Background(), k).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := namespace.Describe(ctx10(t), cl, name, opt); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if h := hash(k); h["gen"] != "2" || h["deleted"] != "1" || h["ready"] != "1" || h["shards"] != "2" {
			t.Errorf("copy %s after the repair: %v", k, h)
		}
	}
}

// Negative control: a "delete" that removes the namespace's keys (record
// copies, index entry, counters, ceilings) lets the name start again from
// its start, and IDs repeat. The tombstone keeps the keys for that reason.
func testNaiveDeleteRepeats(t *testing.T, cl *cluster.Cluster) {
	const name = "naive-delete"
	c := newClient(t, cl, client.Config{Namespace: name, Shards: 2})
	before := take(t, c, 2000)
	c.Close()
	ns, err := namespace.Open(ctx10(t), cl, name, namespace.Settings{NoCreate: true}, shard.Options{})
	if err != nil {
		t.Fatal(err)
	}
	keys := namespace.MetaKeys(name)
	for _, s := range ns.Shards {
		keys = append(keys, s.Key)
		keys = append(keys, s.CeilingKeys...)
	}
	for _, k := range keys {
		_, node, err := cl.MasterForKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := node.Del(context.Background(), k).Err(); err != nil {
			t.Fatal(err)
		}
		// And the trace of each key's slot: every trace is gone, or the
		// guard against a lost record refuses the recreation.
		tk := namespace.TraceKey(cluster.Slot(k))
		if _, node, err = cl.MasterForKey(tk); err == nil {
			err = node.SRem(context.Background(), tk, name).Err()
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range namespace.IndexKeys() {
		_, node, err := cl.MasterForKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if err := node.ZRem(context.Background(), k, name).Err(); err != nil {
			t.Fatal(err)
		}
	}
	again := newClient(t, cl, client.Config{Namespace: name, Shards: 2})
	after := take(t, again, 2000)
	repeats := countRepeats(before, after)
	if repeats == 0 {
		t.Fatal("removing the keys repeated no ID: this control proves nothing")
	}
	t.Logf("a delete that removes the keys repeated %d of %d IDs", repeats, len(after))
}
