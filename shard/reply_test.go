package shard

import (
	"errors"
	"testing"
)

// reserveValues builds a reserve.lua reply: {status, hi, fence, epoch,
// mirrored, replid, connected, promotable}.
func reserveValues(status string, hi any, fence, epoch, mirrored any, connected, promotable any) []any {
	return []any{status, hi, fence, epoch, mirrored, "abc123", connected, promotable}
}

func TestParseReserveReply(t *testing.T) {
	for _, tc := range []struct {
		name   string
		values []any
		count  int64
		ok     bool
		fence  bool
	}{
		{"good", reserveValues("ok", "10", int64(0), "1", "100", int64(1), int64(1)), 5, true, false},
		{"restored", reserveValues("ok", "10", int64(2), "3", "0", int64(0), int64(1)), 1, true, false},
		{"fence needed", reserveValues("fence", "-1", int64(0), "4", "0", int64(1), int64(1)), 5, true, true},
		{"fence with bad hi", reserveValues("fence", "-7", int64(0), "4", "0", int64(1), int64(1)), 5, false, false},
		{"unknown status", reserveValues("maybe", "10", int64(0), "1", "0", int64(1), int64(1)), 5, false, false},
		{"too short", []any{"ok", "10", int64(0)}, 5, false, false},
		{"hi below count", reserveValues("ok", "3", int64(0), "1", "0", int64(1), int64(1)), 5, false, false},
		{"hi past limit", reserveValues("ok", int64(1<<54), int64(0), "1", "0", int64(1), int64(1)), 5, false, false},
		{"string hi", reserveValues("ok", "ten", int64(0), "1", "0", int64(1), int64(1)), 5, false, false},
		{"trailing junk", reserveValues("ok", "10abc", int64(0), "1", "0", int64(1), int64(1)), 5, false, false},
		{"float formatting", reserveValues("ok", "1e+17", int64(0), "1", "0", int64(1), int64(1)), 5, false, false},
		{"bad fence flag", reserveValues("ok", "10", int64(7), "1", "0", int64(1), int64(1)), 5, false, false},
		{"negative epoch", reserveValues("ok", "10", int64(0), "-1", "0", int64(1), int64(1)), 5, false, false},
		{"fewer promotable than connected", reserveValues("ok", "10", int64(0), "1", "0", int64(2), int64(1)), 5, false, false},
		{"nil value", reserveValues("ok", nil, int64(0), "1", "0", int64(1), int64(1)), 5, false, false},
	} {
		rep, err := parseReserveReply(tc.values, tc.count, DefaultMaxID)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err=%v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrBadRecord) {
			t.Errorf("%s: want ErrBadRecord, got %v", tc.name, err)
		}
		if err == nil && rep.NeedsFence != tc.fence {
			t.Errorf("%s: NeedsFence=%v, want %v", tc.name, rep.NeedsFence, tc.fence)
		}
	}
}

// Whatever Redis (or something pretending to be it) replies, a block is
// accepted only if it lies inside 1..maxSeq and has the size asked for.
func FuzzParseReserveReply(f *testing.F) {
	f.Add("ok", "10", int64(0), "1", "0", int64(1), int64(1), int64(5))
	f.Add("fence", "-1", int64(9), "-3", "x", int64(2), int64(0), int64(0))
	f.Fuzz(func(t *testing.T, status, hi string, fence int64, epoch, mirrored string, connected, promotable, count int64) {
		if count < 0 {
			return
		}
		rep, err := parseReserveReply(reserveValues(status, hi, fence, epoch, mirrored, connected, promotable), count, DefaultMaxID)
		if err != nil || rep.NeedsFence {
			return
		}
		if rep.Hi < count || rep.Hi > DefaultMaxID || (count > 0 && rep.Hi-count+1 < 1) {
			t.Fatalf("accepted block ending at %d for count %d", rep.Hi, count)
		}
		if rep.Promotable < rep.Connected || rep.Connected < 0 {
			t.Fatalf("accepted replica counts %d/%d", rep.Connected, rep.Promotable)
		}
	})
}

func TestParseCeilingReply(t *testing.T) {
	row := func(status string, v any, trusted any, epoch any) []any {
		return []any{status, v, trusted, epoch, "owner", "abc", int64(1), int64(1)}
	}
	for _, tc := range []struct {
		name    string
		values  []any
		ok      bool
		trusted bool
		stale   bool
	}{
		{"trusted", row("ok", "100", int64(1), "2"), true, true, false},
		{"suspect", row("ok", "100", int64(0), "2"), true, false, false},
		{"absent", row("ok", "-1", int64(0), "0"), true, false, false},
		{"stale", row("stale", "100", int64(1), "9"), true, true, true},
		{"changed", row("changed", "100", int64(0), "2"), true, false, false},
		{"trusted but absent", row("ok", "-1", int64(1), "0"), false, false, false},
		{"bad status", row("fine", "100", int64(1), "2"), false, false, false},
		{"bad trust flag", row("ok", "100", int64(3), "2"), false, false, false},
		{"value below -1", row("ok", "-5", int64(0), "2"), false, false, false},
		{"short", []any{"ok", "1"}, false, false, false},
	} {
		rep, err := parseCeilingReply(tc.values)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err=%v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if err == nil && (rep.Trusted != tc.trusted || rep.Stale != tc.stale) {
			t.Errorf("%s: trusted=%v stale=%v", tc.name, rep.Trusted, rep.Stale)
		}
	}
}

// The argument lists must have exactly the length the scripts' headers
// document: a mismatch would shift every later argument.
func TestArgvLengths(t *testing.T) {
	if n := len(reserveArgs{}.argv()); n != 14 {
		t.Errorf("reserve.lua takes 14 arguments, argv builds %d", n)
	}
	if n := len(ceilingArgs{}.argv()); n != 8 {
		t.Errorf("ceiling.lua takes 8 arguments, argv builds %d", n)
	}
}

func TestCeilingFor(t *testing.T) {
	for _, tc := range []struct{ hi, lease, want int64 }{
		{0, 1 << 20, 1 << 20},
		{1, 1 << 20, 2 << 20},
		{5 << 20, 1 << 20, 6 << 20},
		{5<<20 + 7, 3 << 20, 12 << 20}, // grid 4M: 8M+7 rounds up to 12M
		{DefaultMaxID - 10, 1 << 20, DefaultMaxID},
	} {
		got := ceilingFor(tc.hi, tc.lease, DefaultMaxID)
		if got != tc.want || got < min(tc.hi+tc.lease, DefaultMaxID) {
			t.Errorf("ceilingFor(%d, %d) = %d, want %d", tc.hi, tc.lease, got, tc.want)
		}
	}
	// Never more than MaxLease ahead, whatever the grid: repairs from a
	// counter alone rely on that bound.
	for _, lease := range []int64{MaxLease/2 + 1, MaxLease - 1, MaxLease} {
		for _, hi := range []int64{1, 12345, MaxLease + 7} {
			if got := ceilingFor(hi, lease, DefaultMaxID); got > hi+MaxLease || got < hi+lease {
				t.Errorf("ceilingFor(%d, %d) = %d, want within [%d, %d]", hi, lease, got, hi+lease, hi+MaxLease)
			}
		}
	}
	// Shards at nearby levels share their ceiling.
	if a, b := ceilingFor(10_000_000, 1<<20, DefaultMaxID), ceilingFor(10_300_000, 1<<20, DefaultMaxID); a != b {
		t.Errorf("nearby shards got ceilings %d and %d", a, b)
	}
}
