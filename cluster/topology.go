package cluster

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"time"
)

// ErrInvalidTopology is returned by NewTopology when the slot ranges it is
// given cannot describe a Redis Cluster (out of range, reversed, overlapping).
var ErrInvalidTopology = errors.New("cluster: invalid topology")

// Node is one Redis Cluster node as seen in a topology snapshot.
type Node struct {
	ID     string // cluster node ID (40 hex characters)
	Addr   string // host:port as clients should dial it
	Master bool
	// Failed is true when the node answering the topology query flags the
	// node fail or pfail (CLUSTER NODES) or reports its health as failed
	// (CLUSTER SHARDS). It is one node's view: a hint to route elsewhere, not
	// a cluster-wide verdict.
	Failed bool
}

// Master is a master node with its replicas and the slot ranges it serves.
type Master struct {
	Node
	Replicas []Node   // sorted by Addr
	Slots    [][2]int // inclusive ranges, sorted, adjacent ranges merged
}

// Topology is an immutable snapshot of the cluster's slot map. It is built
// whole and replaced, never edited, so readers need no lock: a *Topology
// obtained from Cluster.Topology stays valid and consistent forever. Callers
// must not modify the slices reachable from it.
type Topology struct {
	// Masters are sorted by their first slot; masters serving no slot come
	// last, sorted by address. A failed master serving no slot (an ex-master
	// whose replica was promoted) is left out by Cluster's loader.
	Masters []Master
	// Down are the dead ex-masters left out of Masters: nodes the answering
	// node still lists, flagged failed, that serve no slot (a replica took
	// them over). They are not routed to; they are shown, so that a killed
	// node is seen down until it comes back (as a replica) or is forgotten.
	// Sorted by Addr. Cluster's loader fills it; NewTopology leaves it nil.
	Down []Node
	// Generation increases by one each time a reload observes a different
	// topology (slots, nodes, roles or failure flags). Equal generations of
	// the same Cluster mean equal content.
	Generation uint64
	CreatedAt  time.Time

	slots [NumSlots]int16 // slot -> index into Masters, -1 for unassigned
}

// NewTopology validates masters and builds a snapshot. It copies its input,
// merges adjacent ranges and sorts masters by first slot. It fails with
// ErrInvalidTopology when a range leaves 0..16383, is reversed, or two ranges
// overlap: a slot served twice would route a counter to two masters.
func NewTopology(masters []Master, generation uint64) (*Topology, error) {
	if len(masters) > math.MaxInt16 {
		return nil, fmt.Errorf("%w: %d masters", ErrInvalidTopology, len(masters))
	}
	t := &Topology{Generation: generation, CreatedAt: time.Now()}
	t.Masters = make([]Master, len(masters))
	for i, m := range masters {
		ranges := slices.Clone(m.Slots)
		for _, r := range ranges {
			if r[0] < 0 || r[1] >= NumSlots || r[0] > r[1] {
				return nil, fmt.Errorf("%w: master %s: slot range %d-%d outside 0-%d or reversed",
					ErrInvalidTopology, nodeName(m.Node), r[0], r[1], NumSlots-1)
			}
		}
		slices.SortFunc(ranges, func(a, b [2]int) int { return cmp.Compare(a[0], b[0]) })
		merged := ranges[:0]
		for _, r := range ranges {
			if n := len(merged); n > 0 && merged[n-1][1]+1 >= r[0] {
				if merged[n-1][1] >= r[0] {
					return nil, fmt.Errorf("%w: master %s: slot ranges overlap at %d",
						ErrInvalidTopology, nodeName(m.Node), r[0])
				}
				merged[n-1][1] = r[1]
				continue
			}
			merged = append(merged, r)
		}
		m.Slots = merged
		m.Replicas = slices.Clone(m.Replicas)
		slices.SortFunc(m.Replicas, func(a, b Node) int { return cmp.Compare(a.Addr, b.Addr) })
		t.Masters[i] = m
	}
	slices.SortStableFunc(t.Masters, func(a, b Master) int {
		switch {
		case len(a.Slots) == 0 && len(b.Slots) == 0:
			return cmp.Compare(a.Addr, b.Addr)
		case len(a.Slots) == 0:
			return 1
		case len(b.Slots) == 0:
			return -1
		}
		return cmp.Compare(a.Slots[0][0], b.Slots[0][0])
	})
	for i := range t.slots {
		t.slots[i] = -1
	}
	for i, m := range t.Masters {
		for _, r := range m.Slots {
			for s := r[0]; s <= r[1]; s++ {
				if j := t.slots[s]; j >= 0 {
					return nil, fmt.Errorf("%w: slot %d served by both %s and %s",
						ErrInvalidTopology, s, nodeName(t.Masters[j].Node), nodeName(m.Node))
				}
				t.slots[s] = int16(i)
			}
		}
	}
	return t, nil
}

func nodeName(n Node) string {
	if n.Addr != "" {
		return n.Addr
	}
	return n.ID
}

// MasterForSlot returns the master serving slot, or false when the slot is
// unassigned or out of range.
func (t *Topology) MasterForSlot(slot int) (Master, bool) {
	if slot < 0 || slot >= NumSlots {
		return Master{}, false
	}
	i := t.slots[slot]
	if i < 0 {
		return Master{}, false
	}
	return t.Masters[i], true
}

// MasterByAddr returns the master whose address is addr.
func (t *Topology) MasterByAddr(addr string) (Master, bool) {
	for _, m := range t.Masters {
		if m.Addr == addr {
			return m, true
		}
	}
	return Master{}, false
}

// Covered reports whether all 16384 slots are assigned. An uncovered cluster
// refuses writes to the missing slots (and, with the default
// cluster-require-full-coverage, to every slot).
func (t *Topology) Covered() bool { return len(t.Missing()) == 0 }

// Missing returns the inclusive slot ranges no master serves.
func (t *Topology) Missing() [][2]int {
	var out [][2]int
	for s := 0; s < NumSlots; s++ {
		if t.slots[s] >= 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1][1] == s-1 {
			out[n-1][1] = s
		} else {
			out = append(out, [2]int{s, s})
		}
	}
	return out
}

// Addrs returns the addresses of every node in the snapshot, masters first.
func (t *Topology) Addrs() []string {
	var out []string
	for _, m := range t.Masters {
		out = append(out, m.Addr)
	}
	for _, m := range t.Masters {
		for _, r := range m.Replicas {
			out = append(out, r.Addr)
		}
	}
	return out
}

// equalContent reports whether a and b describe the same cluster, ignoring
// Generation and CreatedAt. Both are normalised by NewTopology, so a plain
// field comparison is exact.
func (t *Topology) equalContent(o *Topology) bool {
	return slices.Equal(t.Down, o.Down) && slices.EqualFunc(t.Masters, o.Masters, func(a, b Master) bool {
		return a.Node == b.Node && slices.Equal(a.Replicas, b.Replicas) && slices.Equal(a.Slots, b.Slots)
	})
}
