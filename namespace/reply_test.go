package namespace

import (
	"errors"
	"testing"
)

func TestParseMetaReply(t *testing.T) {
	row := func(found int64, shards, layout, start, ready string) []any {
		return []any{found, shards, layout, start, ready, "0", "1", "0", "0", int64(0), int64(0), "abc", int64(0), int64(0)}
	}
	if rec, _, err := parseMetaReply(row(0, "", "", "", "0")); err != nil || rec != nil {
		t.Fatalf("absent copy: %v %v", rec, err)
	}
	rec, _, err := parseMetaReply(row(1, "12", "{}", "1000", "1"))
	if err != nil || rec.shards != 12 || rec.start != 1000 || !rec.ready || rec.gen != 1 || rec.deleted || rec.strict {
		t.Fatalf("good copy: %+v %v", rec, err)
	}
	state := row(2, "4", "{}", "1", "1")
	state[5], state[6], state[7], state[8] = "1", "7", "1", "1700000000000"
	rec, created, _, err := parseMetaReplyFull(state)
	if err != nil || !created || !rec.strict || rec.gen != 7 || !rec.deleted || rec.created != 1700000000000 {
		t.Fatalf("state: %+v created=%v %v", rec, created, err)
	}
	withState := func(strict, gen, deleted, created string) []any {
		r := row(1, "12", "{}", "1", "1")
		r[5], r[6], r[7], r[8] = strict, gen, deleted, created
		return r
	}
	for _, bad := range [][]any{row(1, "0", "{}", "1", "1"), row(1, "12", "{}", "0", "1"), row(1, "x", "{}", "1", "1"), row(1, "12", "{}", "", "1"),
		withState("2", "1", "0", "0"), withState("0", "0", "0", "0"), withState("0", "x", "0", "0"), withState("0", "1", "yes", "0"),
		withState("0", "1", "0", "-5"), row(1, "12", "{}", "1", "1")[:8]} {
		if _, _, err := parseMetaReply(bad); !errors.Is(err, ErrBadRecord) {
			t.Errorf("accepted %v", bad)
		}
	}
}

func TestStateNewer(t *testing.T) {
	live, dead := nsState{gen: 3}, nsState{gen: 3, deleted: true}
	switch {
	case !(nsState{gen: 4}).newer(dead), dead.newer(nsState{gen: 4}):
		t.Error("a higher generation must win")
	case !dead.newer(live), live.newer(dead):
		t.Error("at one generation the tombstone must win")
	case live.newer(live):
		t.Error("a state is not newer than itself")
	}
}

// The argument lists must have exactly the length the scripts' headers
// document: a mismatch would shift every later argument.
func TestArgvLengths(t *testing.T) {
	if n := len(metaArgs{}.argv()); n != 11 {
		t.Errorf("meta.lua takes 11 arguments, argv builds %d", n)
	}
}
