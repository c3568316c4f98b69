package namespace

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

func evenTopology(t testing.TB, m int) *cluster.Topology {
	t.Helper()
	masters := make([]cluster.Master, m)
	for k, r := range localcluster.EvenSlotRanges(m) {
		masters[k] = cluster.Master{Node: cluster.Node{ID: fmt.Sprintf("%040d", k), Addr: fmt.Sprintf("127.0.0.1:%d", 7000+k), Master: true}, Slots: [][2]int{r}}
	}
	top, err := cluster.NewTopology(masters, 1)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// plan is PlanLayout, failing the test on an error.
func plan(t testing.TB, ns string, n int, top *cluster.Topology) Layout {
	t.Helper()
	l, err := PlanLayout(ns, n, top)
	if err != nil {
		t.Fatalf("PlanLayout(%q, %d): %v", ns, n, err)
	}
	return l
}

// withEmptyMasters adds k masters serving no slot to an even topology, as
// `redis-cli --cluster add-node` leaves them until a reshard.
func withEmptyMasters(t testing.TB, m, k int) *cluster.Topology {
	t.Helper()
	masters := slices.Clone(evenTopology(t, m).Masters)
	for j := range k {
		masters = append(masters, cluster.Master{Node: cluster.Node{ID: fmt.Sprintf("e%039d", j), Addr: fmt.Sprintf("127.0.0.1:%d", 7100+j), Master: true}})
	}
	top, err := cluster.NewTopology(masters, 1)
	if err != nil {
		t.Fatal(err)
	}
	return top
}

// A master added with no slots owns no key: nothing is placed on it, every
// key is distinct, each shard's counter and ceiling copies sit on three
// distinct masters that serve slots, and planning takes no time. Before the
// fix the plan chose the empty master (load 0) and searched 2^30 tags for it
// (tens of seconds of CPU), then returned "" for several keys.
func TestPlanLayoutSkipsMastersWithoutSlots(t *testing.T) {
	for _, tc := range []struct{ m, empty, n int }{{3, 1, 12}, {3, 1, 3}, {3, 2, 8}, {4, 1, 16}, {1, 1, 4}} {
		t.Run(fmt.Sprintf("masters=%d+%d/N=%d", tc.m, tc.empty, tc.n), func(t *testing.T) {
			top := withEmptyMasters(t, tc.m, tc.empty)
			done := make(chan struct{})
			var l Layout
			var err error
			start := time.Now()
			go func() { defer close(done); l, err = PlanLayout("orders", tc.n, top) }()
			select {
			case <-done:
			case <-time.After(2 * time.Second):
				t.Fatalf("PlanLayout still running after 2s (searching for a tag on a master with no slots)")
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("planned in %v", time.Since(start))
			if err := l.Validate(tc.n); err != nil {
				t.Fatal(err)
			}
			for i := range tc.n {
				onMaster := map[string]bool{}
				keys := []string{l.CounterKey(i)}
				for c := range CeilingCopies {
					keys = append(keys, l.CeilingKey(i, c))
				}
				for _, k := range keys {
					m, ok := top.MasterForSlot(cluster.Slot(k))
					if !ok || len(m.Slots) == 0 {
						t.Fatalf("shard %d: key %s on no master serving slots", i, k)
					}
					onMaster[m.ID] = true
				}
				if want := min(tc.m, 1+CeilingCopies); len(onMaster) != want {
					t.Errorf("shard %d: keys %v on %d masters, want %d", i, keys, len(onMaster), want)
				}
			}
		})
	}
}

// A search that cannot succeed ends, and says so, instead of returning an
// empty tag.
func TestPlaceTagBounded(t *testing.T) {
	never := func(int) int { return -2 }
	start := time.Now()
	if tag, ok := placeTag("x:", 100, 10, 0, never); ok || tag != "" {
		t.Fatalf("placeTag found %q for a master serving nothing", tag)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a hopeless search took %v", d)
	}
}

// Counters land on distinct masters whenever masters >= N, spread evenly
// otherwise, and each ceiling copy sits on another master than its counter
// (and than the other copy, with three or more masters), on the slot maps
// redis-cli creates for 1, 3, 4 and 6 masters.
func TestPlanLayoutPlacement(t *testing.T) {
	for _, m := range []int{1, 3, 4, 6} {
		for _, n := range []int{1, 2, 3, 4, 5, 6, 8, 12, 64} {
			t.Run(fmt.Sprintf("masters=%d/N=%d", m, n), func(t *testing.T) {
				top := evenTopology(t, m)
				l := plan(t, "orders", n, top)
				if err := l.Validate(n); err != nil {
					t.Fatal(err)
				}
				load := map[string]int{}
				for i := 0; i < n; i++ {
					cm, ok := top.MasterForSlot(cluster.Slot(l.CounterKey(i)))
					if !ok {
						t.Fatalf("shard %d: slot unassigned", i)
					}
					load[cm.ID]++
					copies := map[string]bool{}
					for c := range CeilingCopies {
						mm, _ := top.MasterForSlot(cluster.Slot(l.CeilingKey(i, c)))
						if m > 1 && mm.ID == cm.ID {
							t.Errorf("shard %d: ceiling copy %d on the counter's own master %s", i, c, cm.Addr)
						}
						copies[mm.ID] = true
						if cluster.Slot(l.CeilingKey(i, c)) != cluster.Slot(l.Ceilings[i][c]) {
							t.Errorf("shard %d: ceiling key does not hash by its tag", i)
						}
					}
					if m >= 3 && len(copies) != CeilingCopies {
						t.Errorf("shard %d: ceiling copies share a master with %d masters", i, m)
					}
					if cluster.Slot(l.CounterKey(i)) != cluster.Slot(l.Counters[i]) {
						t.Errorf("shard %d: key does not hash by its tag", i)
					}
				}
				want := (n + m - 1) / m
				for id, k := range load {
					if k > want {
						t.Errorf("master %s has %d of %d counters, want at most %d", id, k, n, want)
					}
				}
				if n <= m && len(load) != n {
					t.Errorf("want %d distinct masters, got %d", n, len(load))
				}
			})
		}
	}
}

// The layout is a pure function of its inputs: every client plans the same.
func TestPlanLayoutDeterministic(t *testing.T) {
	top := evenTopology(t, 3)
	a, b := plan(t, "x", 12, top), plan(t, "x", 12, top)
	if a.encode() != b.encode() {
		t.Fatal("two plans differ")
	}
	if plan(t, "y", 12, top).encode() == a.encode() {
		t.Fatal("namespaces must not share keys")
	}
	if nt := plan(t, "x", 12, nil); nt.Validate(12) != nil {
		t.Fatal("a plan without topology must still be valid")
	}
}

func TestMetaAndIndexKeysSpreadOverThirds(t *testing.T) {
	top := evenTopology(t, 3)
	for name, keys := range map[string][]string{"namespace record": MetaKeys("orders"), "index": IndexKeys()} {
		seen := map[string]bool{}
		for _, k := range keys {
			m, _ := top.MasterForSlot(cluster.Slot(k))
			seen[m.ID] = true
		}
		if len(seen) != 3 {
			t.Errorf("%s copies must sit on 3 distinct masters, got %d", name, len(seen))
		}
	}
	// The index's keys are outside every namespace's key prefix: a key under
	// shardseq:{<name>: is the namespace's own.
	for _, k := range IndexKeys() {
		if strings.HasPrefix(k, "shardseq:{") {
			t.Errorf("index key %s looks like a namespace key", k)
		}
	}
}

func TestLayoutValidateRejectsBadRecords(t *testing.T) {
	good := plan(t, "ns", 3, nil)
	oneCopy := [][]string{{"x"}, {"y"}, {"z"}}
	sharedTag := [][]string{good.Ceilings[0], good.Ceilings[1], {good.Counters[0], "q"}}
	for name, l := range map[string]Layout{
		"wrong count":   {Shards: 3, Counters: good.Counters[:2], Ceilings: good.Ceilings},
		"repeated tag":  {Shards: 3, Counters: []string{"a", "a", "b"}, Ceilings: good.Ceilings},
		"brace in tag":  {Shards: 3, Counters: []string{"a}", "b", "c"}, Ceilings: good.Ceilings},
		"empty tag":     {Shards: 3, Counters: []string{"", "b", "c"}, Ceilings: good.Ceilings},
		"shards differ": {Shards: 4, Counters: good.Counters, Ceilings: good.Ceilings},
		"one copy":      {Shards: 3, Counters: good.Counters, Ceilings: oneCopy},
		"shared tag":    {Shards: 3, Counters: good.Counters, Ceilings: sharedTag},
		"no ceilings":   {Shards: 3, Counters: good.Counters},
	} {
		if err := l.Validate(3); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := decodeLayout("{not json", 3); err == nil {
		t.Error("bad JSON accepted")
	}
	if _, err := decodeLayout(`{"shards":1,"counters":["a"],"mirrors":["b"]}`, 1); err == nil || !strings.Contains(err.Error(), "0.1") {
		t.Errorf("a 0.1 layout must be refused with a pointer to the migration, got %v", err)
	}
}

func FuzzDecodeLayout(f *testing.F) {
	f.Add(plan(f, "ns", 3, nil).encode(), 3)
	f.Add(`{"shards":1,"counters":["a"],"ceilings":[["b","c"]]}`, 1)
	f.Fuzz(func(t *testing.T, s string, n int) {
		l, err := decodeLayout(s, n)
		if err != nil {
			return
		}
		if l.Shards != n || len(l.Counters) != n || len(l.Ceilings) != n {
			t.Fatalf("accepted inconsistent layout %+v for n=%d", l, n)
		}
	})
}

func TestValidNamespace(t *testing.T) {
	for ns, want := range map[string]bool{
		"orders": true, "a.b-c_D9": true, "": false, "a{b}": false, "a:b": false, "a b": false,
		"x123456789012345678901234567890123456789012345678901234567890123":  true,
		"xx123456789012345678901234567890123456789012345678901234567890123": false,
	} {
		if got := ValidNamespace(ns); got != want {
			t.Errorf("ValidNamespace(%q) = %v, want %v", ns, got, want)
		}
	}
}

// moveSlot is top with slot served by master to instead (as a reshard of one
// slot leaves it).
func moveSlot(t testing.TB, top *cluster.Topology, slot, to int) *cluster.Topology {
	t.Helper()
	masters := make([]cluster.Master, len(top.Masters))
	for k, m := range top.Masters {
		m.Slots = nil
		for _, r := range top.Masters[k].Slots {
			switch {
			case slot < r[0] || slot > r[1]:
				m.Slots = append(m.Slots, r)
			default:
				if r[0] < slot {
					m.Slots = append(m.Slots, [2]int{r[0], slot - 1})
				}
				if slot < r[1] {
					m.Slots = append(m.Slots, [2]int{slot + 1, r[1]})
				}
			}
		}
		if k == to {
			m.Slots = append(m.Slots, [2]int{slot, slot})
		}
		masters[k] = m
	}
	out, err := cluster.NewTopology(masters, top.Generation+1)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// masterIndex is the index in top.Masters of the master serving key.
func masterIndex(top *cluster.Topology, key string) int {
	m, _ := top.MasterForSlot(cluster.Slot(key))
	return slices.IndexFunc(top.Masters, func(o cluster.Master) bool { return o.ID == m.ID })
}

// Issue 19, item 2: a reshard can put a ceiling copy on its counter's master,
// or both copies on one master. Colocated names the shard, the master, the
// keys and the slots to move; a layout as planned reports nothing; on two
// masters the copies share one by design and only a copy on its counter's
// master is reported.
func TestColocated(t *testing.T) {
	top := evenTopology(t, 3)
	l := plan(t, "orders", 3, top)
	if got := l.Colocated(top); len(got) != 0 {
		t.Fatalf("layout as planned: %v, want none", got)
	}
	// Copy 0 of shard 1 onto shard 1's counter's master.
	slot := cluster.Slot(l.CeilingKey(1, 0))
	moved := moveSlot(t, top, slot, masterIndex(top, l.CounterKey(1)))
	got := l.Colocated(moved)
	if len(got) != 1 {
		t.Fatalf("copy on its counter's master: %v, want one colocation", got)
	}
	c := got[0]
	m, _ := moved.MasterForSlot(cluster.Slot(l.CounterKey(1)))
	if c.Shard != 1 || c.Master != m.Addr || !slices.Equal(c.Keys, []string{l.CounterKey(1), l.CeilingKey(1, 0)}) ||
		!slices.Equal(c.Move, []int{slot}) || !strings.Contains(c.String(), fmt.Sprintf("move slot %d ", slot)) {
		t.Errorf("colocation %+v (%s): want shard 1, master %s, counter and copy 0, move slot %d", c, c, m.Addr, slot)
	}
	// Copy 1 of shard 2 onto the master of its copy 0.
	slot = cluster.Slot(l.CeilingKey(2, 1))
	moved = moveSlot(t, top, slot, masterIndex(top, l.CeilingKey(2, 0)))
	if got := l.Colocated(moved); len(got) != 1 || got[0].Shard != 2 || !slices.Equal(got[0].Move, []int{slot}) {
		t.Errorf("two copies on one master: %v, want shard 2, move slot %d", got, slot)
	}

	two := evenTopology(t, 2)
	l2 := plan(t, "orders", 2, two)
	if got := l2.Colocated(two); len(got) != 0 {
		t.Errorf("two masters, as planned (copies share one by design): %v, want none", got)
	}
	slot = cluster.Slot(l2.CeilingKey(0, 0))
	if got := l2.Colocated(moveSlot(t, two, slot, masterIndex(two, l2.CounterKey(0)))); len(got) != 1 || got[0].Shard != 0 {
		t.Errorf("two masters, a copy on its counter's: %v, want shard 0", got)
	}
	if got := l.Colocated(evenTopology(t, 1)); len(got) != 0 {
		t.Errorf("one master: %v, want none (nothing can be apart)", got)
	}
}
