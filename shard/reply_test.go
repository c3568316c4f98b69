package shard

import (
	"errors"
	"testing"
)

func TestParseReserveReply(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []any
		count  int64
		ok     bool
	}{
		{"good", []any{int64(10), int64(0), int64(1), "abc", int64(100)}, 5, true},
		{"fenced restore", []any{int64(10), int64(2), int64(0), "abc", int64(0)}, 1, true},
		{"too short", []any{int64(10), int64(0), int64(1)}, 5, false},
		{"hi below count", []any{int64(3), int64(0), int64(1), "abc", int64(0)}, 5, false},
		{"hi past limit", []any{int64(1 << 54), int64(0), int64(1), "abc", int64(0)}, 5, false},
		{"string hi", []any{"ten", int64(0), int64(1), "abc", int64(0)}, 5, false},
		{"numeric string", []any{"10", int64(0), int64(1), "abc", int64(0)}, 5, true},
		{"trailing junk", []any{"10abc", int64(0), int64(1), "abc", int64(0)}, 5, false},
		{"bad fence flag", []any{int64(10), int64(7), int64(1), "abc", int64(0)}, 5, false},
		{"negative replicas", []any{int64(10), int64(0), int64(-1), "abc", int64(0)}, 5, false},
		{"nil value", []any{nil, int64(0), int64(1), "abc", int64(0)}, 5, false},
	} {
		_, _, _, _, err := parseReserveReply(tc.values, tc.count, DefaultMaxID)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err=%v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: want ErrBadRecord, got %v", tc.name, err)
		}
	}
}

// Whatever Redis (or something pretending to be it) replies, a block is
// accepted only if it lies inside 1..maxSeq and has the size asked for.
func FuzzParseReserveReply(f *testing.F) {
	f.Add(int64(10), int64(0), int64(1), int64(0), "10", int64(5), true)
	f.Add(int64(-1), int64(9), int64(-3), int64(-1), "x", int64(0), false)
	f.Fuzz(func(t *testing.T, hi, fenced, replicas, mirrored int64, s string, count int64, asString bool) {
		if count < 0 {
			return
		}
		var first any = hi
		if asString {
			first = s
		}
		got, _, _, _, err := parseReserveReply([]any{first, fenced, replicas, "id", mirrored}, count, DefaultMaxID)
		if err != nil {
			return
		}
		if got < count || got > DefaultMaxID || got-count+1 < 1 && count > 0 {
			t.Fatalf("accepted block ending at %d for count %d", got, count)
		}
	})
}
