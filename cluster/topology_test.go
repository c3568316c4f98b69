package cluster

import (
	"errors"
	"slices"
	"testing"
)

func masters3() []Master {
	rs := [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}} // redis-cli's ranges for 3 masters
	return []Master{
		// Deliberately out of order to check sorting.
		{Node: Node{ID: "c", Addr: "h:3", Master: true}, Slots: [][2]int{rs[2]}},
		{Node: Node{ID: "a", Addr: "h:1", Master: true}, Slots: [][2]int{rs[0]},
			Replicas: []Node{{ID: "a2", Addr: "h:5"}, {ID: "a1", Addr: "h:4"}}},
		{Node: Node{ID: "b", Addr: "h:2", Master: true}, Slots: [][2]int{{5461, 6000}, {6001, 10922}}},
	}
}

func TestNewTopology(t *testing.T) {
	in := masters3()
	top, err := NewTopology(in, 7)
	if err != nil {
		t.Fatal(err)
	}
	if top.Generation != 7 || !top.Covered() || len(top.Missing()) != 0 {
		t.Fatalf("gen %d covered %v missing %v", top.Generation, top.Covered(), top.Missing())
	}
	if ids := []string{top.Masters[0].ID, top.Masters[1].ID, top.Masters[2].ID}; !slices.Equal(ids, []string{"a", "b", "c"}) {
		t.Fatalf("masters not sorted by first slot: %v", ids)
	}
	if got := top.Masters[1].Slots; !slices.Equal(got, [][2]int{{5461, 10922}}) {
		t.Fatalf("adjacent ranges not merged: %v", got)
	}
	if r := top.Masters[0].Replicas; r[0].Addr != "h:4" || r[1].Addr != "h:5" {
		t.Fatalf("replicas not sorted: %v", r)
	}
	// The input must not alias the snapshot.
	in[1].Replicas[0].Addr = "mutated"
	in[2].Slots[0][0] = 0
	if top.Masters[0].Replicas[1].Addr != "h:5" || top.Masters[1].Slots[0][0] != 5461 {
		t.Fatal("topology aliases its input")
	}
	for _, tt := range []struct {
		slot int
		id   string
		ok   bool
	}{{0, "a", true}, {5460, "a", true}, {5461, "b", true}, {10922, "b", true}, {10923, "c", true}, {16383, "c", true}, {-1, "", false}, {16384, "", false}} {
		m, ok := top.MasterForSlot(tt.slot)
		if ok != tt.ok || m.ID != tt.id {
			t.Errorf("MasterForSlot(%d) = %q,%v want %q,%v", tt.slot, m.ID, ok, tt.id, tt.ok)
		}
	}
	if m, ok := top.MasterByAddr("h:2"); !ok || m.ID != "b" {
		t.Errorf("MasterByAddr(h:2) = %v %v", m.ID, ok)
	}
	if _, ok := top.MasterByAddr("h:4"); ok {
		t.Error("MasterByAddr found a replica")
	}
	if got := top.Addrs(); !slices.Equal(got, []string{"h:1", "h:2", "h:3", "h:4", "h:5"}) {
		t.Errorf("Addrs = %v", got)
	}
	same, _ := NewTopology(masters3(), 8)
	if !top.equalContent(same) {
		t.Error("equal content not detected")
	}
	other := masters3()
	other[0].Failed = true
	diff, _ := NewTopology(other, 8)
	if top.equalContent(diff) {
		t.Error("failed flag change not detected")
	}
}

func TestNewTopologyPartialAndInvalid(t *testing.T) {
	top, err := NewTopology([]Master{
		{Node: Node{Addr: "h:1"}, Slots: [][2]int{{0, 99}, {200, 16382}}},
		{Node: Node{Addr: "h:9"}}, // no slots: sorted last
		{Node: Node{Addr: "h:0"}, Slots: [][2]int{{150, 150}}},
	}, 1)
	if err != nil {
		t.Fatal(err)
	}
	if top.Covered() {
		t.Fatal("Covered on a partial map")
	}
	if got := top.Missing(); !slices.Equal(got, [][2]int{{100, 149}, {151, 199}, {16383, 16383}}) {
		t.Fatalf("Missing = %v", got)
	}
	if top.Masters[2].Addr != "h:9" {
		t.Fatalf("slot-less master not last: %v", top.Masters)
	}
	if _, ok := top.MasterForSlot(120); ok {
		t.Fatal("unassigned slot has a master")
	}
	if got := formatRanges(top.Missing()); got != "100-149,151-199,16383" {
		t.Fatalf("formatRanges = %q", got)
	}
	for name, ms := range map[string][]Master{
		"out of range": {{Slots: [][2]int{{0, 16384}}}},
		"negative":     {{Slots: [][2]int{{-1, 5}}}},
		"reversed":     {{Slots: [][2]int{{10, 5}}}},
		"self overlap": {{Slots: [][2]int{{0, 10}, {5, 20}}}},
		"overlap":      {{Node: Node{Addr: "a"}, Slots: [][2]int{{0, 10}}}, {Node: Node{Addr: "b"}, Slots: [][2]int{{10, 20}}}},
	} {
		if _, err := NewTopology(ms, 1); !errors.Is(err, ErrInvalidTopology) {
			t.Errorf("%s: err = %v, want ErrInvalidTopology", name, err)
		}
	}
}
