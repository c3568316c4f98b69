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
		tag := searchTag(prefix, func(s int) bool { return abs(s-target) <= cluster.NumSlots/(8*metaCopies) })
		keys[c] = "shardseq:{" + tag + "}:meta"
	}
	return keys
}

// IndexKeys are the keys of the copies of the index of namespaces, on the
// thirds of the slot space like the namespace records.
func IndexKeys() []string {
	keys := make([]string, metaCopies)
	for c := range keys {
		target := (2*c + 1) * cluster.NumSlots / (2 * metaCopies)
		tag := searchTag("index:"+strconv.Itoa(c)+":", func(s int) bool { return abs(s-target) <= cluster.NumSlots/(8*metaCopies) })
		keys[c] = "shardseq:index:{" + tag + "}"
	}
	return keys
}

// PlanLayout places the N counters of a namespace and their ceilings. Shard
// i aims at the middle of the i-th N-th of the slot space, then moves to
// another master if that master already holds its share, so that the
// counters sit on distinct masters whenever there are at least N masters and
// spread evenly otherwise. The ceiling copies of a shard sit on masters other
// than its counter's, and on distinct ones when there are three or more. With
// no topology (or an empty one) the plan uses slot targets alone.
func PlanLayout(ns string, n int, top *cluster.Topology) Layout {
	l := Layout{Shards: n, Counters: make([]string, n), Ceilings: make([][]string, n)}
	var masters []cluster.Master
	if top != nil {
		masters = top.Masters
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
		l.Counters[i] = placeTag(prefix, target, tol, want, owner)
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
			l.Ceilings[i][c] = placeTag(prefix+"c"+strconv.Itoa(c)+":", ctarget, tol, cwant, owner)
		}
	}
	return l
}

// placeTag finds the first tag prefix+k whose slot lies within tol of target
// and, when want >= 0, is served by master want; if want serves no slot near
// the target, any slot of want will do.
func placeTag(prefix string, target, tol, want int, owner func(int) int) string {
	near := func(s int) bool { return abs(s-target) <= tol }
	if want < 0 {
		return searchTag(prefix, near)
	}
	const patience = 1 << 16
	if tag, ok := searchTagN(prefix, patience, func(s int) bool { return near(s) && owner(s) == want }); ok {
		return tag
	}
	return searchTag(prefix, func(s int) bool { return owner(s) == want })
}

func searchTag(prefix string, ok func(slot int) bool) string {
	tag, _ := searchTagN(prefix, 1<<30, ok)
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
