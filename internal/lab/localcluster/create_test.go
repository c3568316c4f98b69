package localcluster

import (
	"slices"
	"testing"

	"github.com/shardseq/shardseq/cluster"
)

func TestEvenSlotRanges(t *testing.T) {
	tests := []struct {
		m    int
		want [][2]int
	}{
		{0, nil},
		{1, [][2]int{{0, 16383}}},
		{2, [][2]int{{0, 8191}, {8192, 16383}}},
		// Checked against a real `redis-cli --cluster create` in TestEvenSlotRangesMatchRedisCLI.
		{3, [][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}},
		{4, [][2]int{{0, 4095}, {4096, 8191}, {8192, 12287}, {12288, 16383}}},
		{5, [][2]int{{0, 3276}, {3277, 6553}, {6554, 9829}, {9830, 13106}, {13107, 16383}}},
		{6, [][2]int{{0, 2730}, {2731, 5460}, {5461, 8191}, {8192, 10922}, {10923, 13652}, {13653, 16383}}},
	}
	for _, tt := range tests {
		if got := EvenSlotRanges(tt.m); !slices.Equal(got, tt.want) {
			t.Errorf("EvenSlotRanges(%d) = %v, want %v", tt.m, got, tt.want)
		}
	}
	for m := 1; m <= 1000; m++ {
		rs := EvenSlotRanges(m)
		if len(rs) != m || rs[0][0] != 0 || rs[m-1][1] != cluster.NumSlots-1 {
			t.Fatalf("EvenSlotRanges(%d) = %v...", m, rs[:1])
		}
		for i := 1; i < m; i++ {
			if rs[i][0] != rs[i-1][1]+1 || rs[i][1] < rs[i][0] {
				t.Fatalf("EvenSlotRanges(%d): gap or overlap at %d: %v %v", m, i, rs[i-1], rs[i])
			}
		}
	}
}
