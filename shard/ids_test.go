package shard

import "testing"

func TestIDArithmetic(t *testing.T) {
	for _, tc := range []struct {
		seq  int64
		i, n int
		id   int64
	}{
		{1, 0, 1, 1},
		{1, 0, 12, 12},
		{1, 11, 12, 23},
		{2, 3, 4, 11},
		{1 << 40, 5, 6, 6<<40 + 5},
	} {
		if got := ID(tc.seq, tc.i, tc.n); got != tc.id {
			t.Errorf("ID(%d,%d,%d) = %d, want %d", tc.seq, tc.i, tc.n, got, tc.id)
		}
		if i, seq := Decode(tc.id, tc.n); i != tc.i || seq != tc.seq {
			t.Errorf("Decode(%d,%d) = %d,%d, want %d,%d", tc.id, tc.n, i, seq, tc.i, tc.seq)
		}
	}
	if got := MaxSeq(5, 6, DefaultMaxID); ID(got, 5, 6) > DefaultMaxID || ID(got+1, 5, 6) <= DefaultMaxID {
		t.Errorf("MaxSeq(5,6) = %d is not the last sequence below MaxID", got)
	}
}

// Step-offset numbering: IDs of distinct shards never collide, and every ID
// of shard i is congruent to i mod n and positive.
func FuzzStepOffset(f *testing.F) {
	f.Add(int64(1), int64(2), 0, 1, 3)
	f.Add(int64(7), int64(7), 2, 5, 12)
	f.Fuzz(func(t *testing.T, s1, s2 int64, i, j, n int) {
		if n < 1 || n > MaxShards || i < 0 || j < 0 || i >= n || j >= n {
			return
		}
		if s1 < 1 || s2 < 1 || s1 > MaxSeq(i, n, DefaultMaxID) || s2 > MaxSeq(j, n, DefaultMaxID) {
			return
		}
		a, b := ID(s1, i, n), ID(s2, j, n)
		if a <= 0 || b <= 0 {
			t.Fatalf("non-positive ID: %d %d", a, b)
		}
		if int(a%int64(n)) != i {
			t.Fatalf("ID %d of shard %d/%d has residue %d", a, i, n, a%int64(n))
		}
		if (a == b) != (i == j && s1 == s2) {
			t.Fatalf("ID(%d,%d)=%d vs ID(%d,%d)=%d", s1, i, a, s2, j, b)
		}
	})
}

func TestFirstSeq(t *testing.T) {
	for _, tc := range []struct {
		start int64
		n     int
	}{{1, 12}, {1000, 12}, {1001, 12}, {7, 1}, {13, 12}, {1 << 40, 1024}} {
		for i := 0; i < tc.n; i++ {
			s := firstSeq(tc.start, i, tc.n)
			if id := ID(s, i, tc.n); id < tc.start || s < 1 {
				t.Fatalf("start %d shard %d of %d: first seq %d gives ID %d", tc.start, i, tc.n, s, id)
			}
			if s > 1 && ID(s-1, i, tc.n) >= tc.start {
				t.Fatalf("start %d shard %d of %d: seq %d is not the first", tc.start, i, tc.n, s)
			}
		}
	}
}
