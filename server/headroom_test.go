package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
)

// recordingHandler keeps the log records it is given.
type recordingHandler struct {
	mu      sync.Mutex
	records []slog.Record
}

func (h *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordingHandler) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.records = append(h.records, r)
	return nil
}
func (h *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordingHandler) WithGroup(string) slog.Handler      { return h }

// thresholds returns the threshold_percent of every warning logged.
func (h *recordingHandler) thresholds() []float64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []float64
	for _, r := range h.records {
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "threshold_percent" {
				out = append(out, a.Value.Float64())
			}
			return true
		})
	}
	return out
}

// TestHeadroom: the space left follows the highest ID handed out, and a
// warning is logged once at 50% and once at 90% used per namespace, also
// when the namespace closes and opens again; one ID that jumps past both
// logs the 90% warning alone.
func TestHeadroom(t *testing.T) {
	rec := &recordingHandler{}
	w := newHeadroomWarnings(slog.New(rec))
	const maxID = 1_000_000
	var h headroom
	if _, ok := h.leftRatio(); ok {
		t.Fatalf("space left known before init")
	}
	h.init(1, maxID)
	if _, ok := h.leftRatio(); ok {
		t.Fatalf("space left known before an ID was handed out")
	}
	steps := []struct {
		id    int64
		left  float64
		warns []float64
	}{
		{10, 1 - 9.0/(maxID-1), nil},
		{5, 1 - 9.0/(maxID-1), nil}, // lower IDs (other shards) change nothing
		{499_000, 1 - 498_999.0/(maxID-1), nil},
		{500_001, 0.5, []float64{50}},
		{600_000, 0.4, []float64{50}},
		{899_999, 0.1, []float64{50}},
		{900_001, 0.1, []float64{50, 90}},
		{990_000, 0.01, []float64{50, 90}},
		{maxID, 0, []float64{50, 90}},
	}
	for _, st := range steps {
		h.observe(st.id, w, "ns")
		left, ok := h.leftRatio()
		if !ok || math.Abs(left-st.left) > 1e-5 {
			t.Errorf("after %d: left %v (%v), want %v", st.id, left, ok, st.left)
		}
		if got := rec.thresholds(); !equalFloats(got, st.warns) {
			t.Errorf("after %d: warnings at %v, want %v", st.id, got, st.warns)
		}
	}
	// Reopened: a new headroom for the same name logs nothing again.
	var again headroom
	again.init(1, maxID)
	again.observe(950_000, w, "ns")
	if got := rec.thresholds(); len(got) != 2 {
		t.Errorf("reopened namespace warned again: %v", got)
	}
	// Another namespace, one jump past both: the 90% warning alone, once.
	var other headroom
	other.init(1000, maxID)
	other.observe(995_000, w, "other")
	other.observe(996_000, w, "other")
	if got := rec.thresholds(); !equalFloats(got, []float64{50, 90, 90}) {
		t.Errorf("jump past both thresholds: warnings at %v", got)
	}
	// The start counts: half of 1000..maxID is used at about 500,500.
	var started headroom
	started.init(1000, maxID)
	started.observe(500_499, w, "started")
	started.observe(500_501, w, "started")
	if left, _ := started.leftRatio(); math.Abs(left-0.5) > 1e-5 {
		t.Errorf("start 1000: left %v at 500,501, want 0.5", left)
	}
	if got := rec.thresholds(); !equalFloats(got, []float64{50, 90, 90, 50}) {
		t.Errorf("start 1000: warnings %v, want one more at 50", got)
	}
}

func equalFloats(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if a[k] != b[k] {
			return false
		}
	}
	return true
}

// TestTokenBucket: the burst is available at once, then one token per
// 1/rate; a refusal says how long until the next token; rate -1 never
// refuses.
func TestTokenBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	b := newTokenBucket(2, 3, clock)
	for k := range 3 {
		if ok, _ := b.take(); !ok {
			t.Fatalf("take %d of the burst refused", k)
		}
	}
	ok, wait := b.take()
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("past the burst: %v, wait %v; want refused, 500ms", ok, wait)
	}
	now = now.Add(250 * time.Millisecond)
	if ok, wait := b.take(); ok || wait != 250*time.Millisecond {
		t.Fatalf("half a token later: %v, wait %v; want refused, 250ms", ok, wait)
	}
	now = now.Add(250 * time.Millisecond)
	if ok, _ := b.take(); !ok {
		t.Fatalf("a token later: refused")
	}
	now = now.Add(time.Hour)
	for k := range 3 {
		if ok, _ := b.take(); !ok {
			t.Fatalf("after an hour, take %d refused: the burst is not refilled", k)
		}
	}
	if ok, _ := b.take(); ok {
		t.Fatalf("the bucket holds more than its burst")
	}
	now = now.Add(-time.Minute) // a clock going back refills nothing
	if ok, _ := b.take(); ok {
		t.Fatalf("a clock going back refilled the bucket")
	}
	free := newTokenBucket(-1, 1, clock)
	for range 1000 {
		if ok, _ := free.take(); !ok {
			t.Fatalf("an unbounded bucket refused")
		}
	}
}

func TestConfigLifecycleBounds(t *testing.T) {
	fakeCluster := &cluster.Cluster{} // only checked for nil
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string
	}{
		{"idle negative", Config{NamespaceIdle: -2}, "NamespaceIdle"},
		{"idle tiny", Config{NamespaceIdle: time.Millisecond}, "NamespaceIdle"},
		{"mode", Config{CreateNamespaces: "sometimes"}, "CreateNamespaces"},
		{"rate negative", Config{CreateRate: -3}, "CreateRate"},
		{"rate huge", Config{CreateRate: 1e7}, "CreateRate"},
		{"burst negative", Config{CreateBurst: -1}, "CreateBurst"},
	} {
		tc.cfg.Cluster = fakeCluster
		_, err := tc.cfg.withDefaults()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: %v, want a ConfigError on %s", tc.name, err, tc.field)
		}
	}
	for _, cfg := range []Config{{NamespaceIdle: -1}, {CreateRate: -1}, {CreateNamespaces: CreateExplicit}, {NamespaceIdle: 10 * time.Millisecond}} {
		cfg.Cluster = fakeCluster
		if _, err := cfg.withDefaults(); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
	d, _ := Config{Cluster: fakeCluster}.withDefaults()
	if d.NamespaceIdle != DefaultNamespaceIdle || d.CreateRate != DefaultCreateRate || d.CreateBurst != DefaultCreateBurst ||
		d.CreateNamespaces != CreateAuto || d.RequestTimeout != DefaultRequestTimeout {
		t.Errorf("defaults %+v", d)
	}
}
