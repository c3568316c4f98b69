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
