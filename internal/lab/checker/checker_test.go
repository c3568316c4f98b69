package checker

import (
	"errors"
	"sync"
	"testing"
	"time"
)

func TestReportFindsDuplicatesAcrossRecorders(t *testing.T) {
	c := New()
	a, b := c.Recorder(), c.Recorder()
	a.Ack(time.Millisecond, 1, 2, 3)
	b.Ack(time.Millisecond, 4, 3, 5)
	b.Fail(errors.New("boom"))
	rep := c.Report()
	if rep.OK() || rep.Duplicated != 1 || rep.Examples[0] != 3 {
		t.Fatalf("want one duplicate (3), got %+v", rep)
	}
	if rep.Acknowledged != 6 || rep.Errors != 1 || rep.Attempted != 3 || rep.Min != 1 || rep.Max != 5 {
		t.Fatalf("counts wrong: %+v", rep)
	}
}

func TestReportCleanRunIsOK(t *testing.T) {
	c := New()
	var wg sync.WaitGroup
	for g := int64(0); g < 8; g++ {
		r := c.Recorder()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); i < 1000; i++ {
				r.Ack(0, i*8+g+1)
			}
		}()
	}
	wg.Wait()
	if rep := c.Report(); !rep.OK() || rep.Acknowledged != 8000 {
		t.Fatalf("want a clean report of 8000 IDs, got %+v", rep)
	}
}

func TestReportFlagsNonPositive(t *testing.T) {
	c := New()
	c.Recorder().Ack(0, 0, 7)
	if rep := c.Report(); rep.OK() || rep.NonPositive != 1 {
		t.Fatalf("ID 0 must fail the report: %+v", rep)
	}
}

func TestReportCountsGapsPerShard(t *testing.T) {
	c := New().WithShards(3)
	// shard 1: seq 1,2,5 (2 gaps); shard 2: seq 1..3 (none); 0 absent.
	c.Recorder().Ack(0, 4, 7, 16, 5, 8, 11)
	if rep := c.Report(); rep.Gaps != 2 || !rep.OK() {
		t.Fatalf("want 2 gaps, got %+v", rep)
	}
}

// The order measure on hand-made answers: times in milliseconds from t0.
func TestOrderMeasure(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type call struct {
		sent, arrived int
		ids           []int64
	}
	for _, tc := range []struct {
		name       string
		calls      []call
		inversions int64
		step       int64
		needed     time.Duration
	}{
		{"increasing", []call{{0, 1, []int64{10}}, {1500, 1501, []int64{20, 21}}, {3000, 3001, []int64{30}}}, 0, 0, 0},
		{"back step within the window", []call{{0, 1, []int64{50}}, {900, 901, []int64{40}}}, 0, 0, 899 * time.Millisecond},
		{"back step past the window", []call{{0, 10, []int64{50, 60}}, {1500, 1501, []int64{40, 70}}}, 1, 20, 1490 * time.Millisecond},
		{"one inversion counts once", []call{{0, 1, []int64{100}}, {5, 6, []int64{90}}, {2000, 2001, []int64{80}}}, 1, 20, 1999 * time.Millisecond},
		{"concurrent calls never invert", []call{{0, 1000, []int64{9}}, {500, 600, []int64{1}}}, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New().WithOrder(time.Second)
			r := c.Recorder()
			for _, cl := range tc.calls {
				r.AckAt(at(cl.sent), at(cl.arrived), cl.ids...)
			}
			rep := c.Report()
			if rep.Inversions != tc.inversions || rep.MaxBackStep != tc.step {
				t.Errorf("inversions %d (step %d), want %d (step %d)", rep.Inversions, rep.MaxBackStep, tc.inversions, tc.step)
			}
			if d := rep.WindowNeeded - tc.needed; d < -time.Millisecond || d > time.Millisecond {
				t.Errorf("window needed %v, want %v", rep.WindowNeeded, tc.needed)
			}
		})
	}
}

func TestGrowth(t *testing.T) {
	c := New()
	c.Recorder().Ack(time.Millisecond, 100, 112, 124, 136) // one shard of 12: every 12th ID
	if rep := c.Report(); rep.Growth < 9.2 || rep.Growth > 9.3 {
		t.Fatalf("growth %v, want 37/4", rep.Growth)
	}
}
