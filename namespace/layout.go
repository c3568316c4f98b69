package namespace

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/shardseq/shardseq/cluster"
)

// metaCopies is how many copies of the namespace record are kept. They sit on
// slots a third of the slot space apart, so on a cluster of three or more
// masters losing all of them takes three masters losing their data.
const metaCopies = 3

// CeilingCopies is how many copies of each shard's ceiling are kept, on
// masters other than the counter's (and other than each other's when there
// are three or more masters): a counter whose history rewinds restores from
// the highest copy still trusted, so one master rewinding never stops a
// shard.
const CeilingCopies = 2

// Layout names the keys of a namespace. It is planned once, when the namespace
// is created, and stored in the namespace record: keys must never move, since
// a counter at a new key would start again from zero.
type Layout struct {
	Shards   int        `json:"shards"`
	Counters []string   `json:"counters"` // hash tag of shard i's counter
	Ceilings [][]string `json:"ceilings"` // hash tags of shard i's ceiling copies
}

// CounterKey is the Redis key of shard i's counter.
func (l Layout) CounterKey(i int) string {
	return "shardseq:{" + l.Counters[i] + "}:seq"
}

// CeilingKey is the Redis key of copy c of shard i's ceiling.
func (l Layout) CeilingKey(i, c int) string {
	return "shardseq:{" + l.Ceilings[i][c] + "}:ceil"
}

// Validate checks a layout read back from Redis before it is trusted.
func (l Layout) Validate(n int) error {
	if l.Shards != n || len(l.Counters) != n || len(l.Ceilings) != n {
		return fmt.Errorf("%w: layout for %d shards has %d counters and %d ceilings (want %d each)", ErrBadRecord, l.Shards, len(l.Counters), len(l.Ceilings), n)
	}
	seen := make(map[string]bool, (1+CeilingCopies)*n)
	tags := slices.Clone(l.Counters)
	for i, cs := range l.Ceilings {
		if len(cs) != CeilingCopies {
			return fmt.Errorf("%w: shard %d has %d ceiling copies, want %d", ErrBadRecord, i, len(cs), CeilingCopies)
		}
		tags = append(tags, cs...)
	}
	for _, t := range tags {
		if t == "" || seen[t] || !validTag(t) {
			return fmt.Errorf("%w: bad or repeated hash tag %q", ErrBadRecord, t)
		}
		seen[t] = true
	}
	return nil
}

func validTag(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] == '{' || t[i] == '}' {
			return false
		}
	}
	return true
}

func (l Layout) encode() string {
	b, _ := json.Marshal(l) // a struct of strings and ints cannot fail
	return string(b)
}

func decodeLayout(s string, n int) (Layout, error) {
	var l Layout
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		return Layout{}, fmt.Errorf("%w: layout is not JSON: %v", ErrBadRecord, err)
	}
	if l.Ceilings == nil && strings.Contains(s, `"mirrors"`) {
		return Layout{}, fmt.Errorf("%w: the namespace was created by shardseq 0.1 (one mirror per shard); see CHANGELOG.md for the migration", ErrBadRecord)
	}
	return l, l.Validate(n)
}

// MetaKeys are the keys of the copies of a namespace record. Unlike the
// layout they cannot depend on the live slot map, because a client must find
// them before it knows anything else; they target the middles of the three
// thirds of the slot space, which sit on distinct masters of an evenly sliced
// cluster.
func MetaKeys(ns string) []string {
	keys := make([]string, metaCopies)
	for c := range keys {
		target := (2*c + 1) * cluster.NumSlots / (2 * metaCopies)
		prefix := ns + ":meta:" + strconv.Itoa(c) + ":"
		tag := mustSearchTag(prefix, func(s int) bool { return abs(s-target) <= cluster.NumSlots/(8*metaCopies) })
		keys[c] = "shardseq:{" + tag + "}:meta"
	}
	return keys
}

// IndexKeys are the keys of the copies of the index of namespaces (sorted
// sets, see lua/index.lua), on the thirds of the slot space like the
// namespace records.
func IndexKeys() []string {
	keys := make([]string, metaCopies)
	for c := range keys {
		keys[c] = indexCopyKeys(c)[0]
	}
	return keys
}

// LegacyIndexKeys are the keys of the copies of the index as versions before
// the sorted index kept them (sets), merged into IndexKeys by lua/index.lua.
func LegacyIndexKeys() []string {
	keys := make([]string, metaCopies)
	for c := range keys {
		keys[c] = indexCopyKeys(c)[1]
	}
	return keys
}

// indexCopyKeys are the keys lua/index.lua declares for copy c of the
// index: the sorted set, the legacy set, and the size of the legacy set last
// merged; one hash tag, so one slot.
func indexCopyKeys(c int) []string {
	target := (2*c + 1) * cluster.NumSlots / (2 * metaCopies)
	tag := mustSearchTag("index:"+strconv.Itoa(c)+":", func(s int) bool { return abs(s-target) <= cluster.NumSlots/(8*metaCopies) })
	legacy := "shardseq:index:{" + tag + "}"
	return []string{legacy + ":sorted", legacy, legacy + ":merged"}
}

// PlanLayout places the N counters of a namespace and their ceilings. Shard
// i aims at the middle of the i-th N-th of the slot space, then moves to
// another master if that master already holds its share, so that the
// counters sit on distinct masters whenever there are at least N masters and
// spread evenly otherwise. The ceiling copies of a shard sit on masters other
// than its counter's, and on distinct ones when there are three or more. Only
// masters that serve slots count: one added to the cluster and not yet given
// slots by a reshard cannot own a key. With no topology (or one without a
// master serving slots) the plan uses slot targets alone. It fails with
// ErrCannotPlace, never with a partial or repeated layout, when a key cannot
// be placed on its master.
func PlanLayout(ns string, n int, top *cluster.Topology) (Layout, error) {
	if n < 1 {
		return Layout{}, fmt.Errorf("%w: namespace %q: %d shards", ErrCannotPlace, ns, n)
	}
	l := Layout{Shards: n, Counters: make([]string, n), Ceilings: make([][]string, n)}
	var masters []cluster.Master
	if top != nil {
		for _, m := range top.Masters {
			if len(m.Slots) > 0 {
				masters = append(masters, m)
			}
		}
	}
	owner := func(slot int) int { // index into masters, -1 unknown
		if top == nil {
			return -1
		}
		m, ok := top.MasterForSlot(slot)
		if !ok {
			return -1
		}
		for k := range masters {
			if masters[k].ID == m.ID {
				return k
			}
		}
		return -1
	}
	place := func(prefix string, target, tol, want int) (string, error) {
		tag, ok := placeTag(prefix, target, tol, want, owner)
		if !ok {
			where := fmt.Sprintf("near slot %d", target)
			if want >= 0 {
				where = "on master " + nodeName(masters[want].Node)
			}
			return "", fmt.Errorf("%w: namespace %q: no hash tag for %s found %s", ErrCannotPlace, ns, strings.TrimSuffix(prefix, ":"), where)
		}
		return tag, nil
	}
	quota := 1
	if len(masters) > 0 {
		quota = (n + len(masters) - 1) / len(masters)
	}
	load := make([]int, len(masters))
	tol := max(cluster.NumSlots/(8*n), 1)
	for i := 0; i < n; i++ {
		target := (2*i + 1) * cluster.NumSlots / (2 * n)
		want := owner(target)
		if want >= 0 && load[want] >= quota {
			want = leastLoadedNear(masters, load, target)
		}
		prefix := ns + ":" + strconv.Itoa(n) + ":" + strconv.Itoa(i) + ":"
		var err error
		if l.Counters[i], err = place(prefix, target, tol, want); err != nil {
			return Layout{}, err
		}
		if want >= 0 {
			load[want]++
		}
		counterOwner := owner(cluster.Slot(l.Counters[i]))
		l.Ceilings[i] = make([]string, CeilingCopies)
		for c := range CeilingCopies {
			ctarget := (target + (c+1)*cluster.NumSlots/(CeilingCopies+1)) % cluster.NumSlots
			cwant := owner(ctarget)
			if len(masters) > 1 && counterOwner >= 0 {
				// The c-th master after the counter's, skipping it.
				cwant = (counterOwner + 1 + c%(len(masters)-1)) % len(masters)
			}
			if l.Ceilings[i][c], err = place(prefix+"c"+strconv.Itoa(c)+":", ctarget, tol, cwant); err != nil {
				return Layout{}, err
			}
		}
	}
	if err := l.Validate(n); err != nil {
		return Layout{}, fmt.Errorf("%w: namespace %q: %w", ErrCannotPlace, ns, err)
	}
	return l, nil
}

// nodeName is a master's address, or its ID when it has none.
func nodeName(n cluster.Node) string {
	if n.Addr != "" {
		return n.Addr
	}
	return n.ID
}

// Bounds of the searches for a hash tag. Each try is one CRC16 of a short
// string. A master serving a single slot takes 16384 tries on average, so
// searchLimit misses it with probability e^-256; the bound exists so that a
// master serving nothing (which PlanLayout never asks for) costs a bounded
// error rather than 2^30 tries.
const (
	nearPatience = 1 << 16
	searchLimit  = 1 << 22
)

// placeTag finds the first tag prefix+k whose slot lies within tol of target
// and, when want >= 0, is served by master want; if want serves no slot near
// the target, any slot of want will do. It reports false when it finds none
// within searchLimit tries.
func placeTag(prefix string, target, tol, want int, owner func(int) int) (string, bool) {
	near := func(s int) bool { return abs(s-target) <= tol }
	if want < 0 {
		return searchTagN(prefix, searchLimit, near)
	}
	if tag, ok := searchTagN(prefix, nearPatience, func(s int) bool { return near(s) && owner(s) == want }); ok {
		return tag, true
	}
	return searchTagN(prefix, searchLimit, func(s int) bool { return owner(s) == want })
}

// mustSearchTag finds a tag for a predicate on slot arithmetic alone (a
// window of the slot space), which a few dozen tries satisfy: not finding
// one within searchLimit is a bug in the caller, not a state of the cluster.
func mustSearchTag(prefix string, ok func(slot int) bool) string {
	tag, found := searchTagN(prefix, searchLimit, ok)
	if !found {
		panic("namespace: no hash tag with prefix " + strconv.Quote(prefix) + " satisfies a slot window")
	}
	return tag
}

func searchTagN(prefix string, limit int, ok func(slot int) bool) (string, bool) {
	for k := 0; k < limit; k++ {
		tag := prefix + strconv.Itoa(k)
		if ok(cluster.Slot(tag)) {
			return tag, true
		}
	}
	return "", false
}

// leastLoadedNear picks, among the masters with the fewest counters, the one
// with a slot closest to target.
func leastLoadedNear(masters []cluster.Master, load []int, target int) int {
	idx := make([]int, len(masters))
	for k := range idx {
		idx[k] = k
	}
	dist := func(k int) int {
		best := cluster.NumSlots
		for _, r := range masters[k].Slots {
			switch {
			case target < r[0]:
				best = min(best, r[0]-target)
			case target > r[1]:
				best = min(best, target-r[1])
			default:
				return 0
			}
		}
		return best
	}
	sort.SliceStable(idx, func(a, b int) bool {
		if load[idx[a]] != load[idx[b]] {
			return load[idx[a]] < load[idx[b]]
		}
		return dist(idx[a]) < dist(idx[b])
	})
	return idx[0]
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// Colocation is one shard whose keys do not sit on distinct masters: keys
// never move, but their slots do (`redis-cli --cluster reshard`), and the
// argument of docs/CORRECTNESS.md assumes a counter and its ceiling copies
// fail apart.
type Colocation struct {
	Shard  int
	Master string   // address of the master that holds two or more of its keys
	Keys   []string // those keys: the counter first if it is one of them, then the copies in order
	Slots  []int    // their slots, in the order of Keys
	// Move are the slots to move off Master (to masters holding none of the
	// shard's other keys) to set it right: the ceiling copies' when the
	// counter is among Keys, else all copies but the first.
	Move []int
}

// Colocated lists the shards of l whose counter and ceiling copies share a
// master in top, by shard. It reports only what enough masters could avoid,
// as PlanLayout does: a copy on its counter's master when two or more masters
// serve slots, two copies on one master when three or more do. A key whose
// slot no master serves is left out (the topology says so already).
func (l Layout) Colocated(top *cluster.Topology) []Colocation {
	if top == nil {
		return nil
	}
	serving := 0
	for _, m := range top.Masters {
		if len(m.Slots) > 0 {
			serving++
		}
	}
	if serving < 2 {
		return nil
	}
	var out []Colocation
	for i := 0; i < l.Shards && i < len(l.Counters) && i < len(l.Ceilings); i++ {
		keys := []string{l.CounterKey(i)}
		for c := range l.Ceilings[i] {
			keys = append(keys, l.CeilingKey(i, c))
		}
		byMaster := map[string][]int{} // master ID -> indexes into keys
		var order []string
		for k, key := range keys {
			m, ok := top.MasterForSlot(cluster.Slot(key))
			if !ok {
				continue
			}
			if _, seen := byMaster[m.ID]; !seen {
				order = append(order, m.ID)
			}
			byMaster[m.ID] = append(byMaster[m.ID], k)
		}
		for _, id := range order {
			ks := byMaster[id]
			if len(ks) < 2 || (ks[0] != 0 && serving < 3) {
				continue
			}
			m, _ := top.MasterForSlot(cluster.Slot(keys[ks[0]]))
			co := Colocation{Shard: i, Master: nodeName(m.Node)}
			for n, k := range ks {
				slot := cluster.Slot(keys[k])
				co.Keys = append(co.Keys, keys[k])
				co.Slots = append(co.Slots, slot)
				if n > 0 {
					co.Move = append(co.Move, slot)
				}
			}
			out = append(out, co)
		}
	}
	return out
}

// String says what is wrong and what to move, for logs and the health page.
func (c Colocation) String() string {
	var parts []string
	for k, key := range c.Keys {
		parts = append(parts, fmt.Sprintf("%s (slot %d)", key, c.Slots[k]))
	}
	moves := make([]string, len(c.Move))
	for k, s := range c.Move {
		moves[k] = strconv.Itoa(s)
	}
	return fmt.Sprintf("shard %d: %s share master %s; move slot %s to masters holding none of the shard's other keys",
		c.Shard, strings.Join(parts, " and "), c.Master, strings.Join(moves, " and "))
}
