package stall

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"testing"
	"time"
)

// The heartbeat's record, on synthetic times: ticks every beat, then a stop
// of 2 s, then ticks again.
func TestHeart(t *testing.T) {
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	var h heart
	for d := time.Duration(0); d <= time.Second; d += beat {
		h.tick(at(d))
	}
	// Stopped from 1 s to 3 s: the heartbeat has not run since.
	for _, tc := range []struct {
		name     string
		deadline time.Duration
		now      time.Duration
		want     bool
	}{
		{"before the stop", 500 * time.Millisecond, 3 * time.Second, false},
		{"during the stop, heartbeat not run yet", 2 * time.Second, 3 * time.Second, true},
		{"a busy moment is no stop", 1010 * time.Millisecond, 1050 * time.Millisecond, false},
	} {
		if got := h.at(at(tc.deadline), at(tc.now)); got != tc.want {
			t.Errorf("%s: at(%v) with now %v = %v, want %v", tc.name, tc.deadline, tc.now, got, tc.want)
		}
	}
	if !h.since(at(500*time.Millisecond), at(3*time.Second)) {
		t.Error("since(0.5 s) during the stop = false, want true")
	}
	h.tick(at(3 * time.Second)) // the heartbeat runs again
	for d := 3*time.Second + beat; d <= 4*time.Second; d += beat {
		h.tick(at(d))
	}
	now := at(4 * time.Second)
	for _, tc := range []struct {
		name     string
		deadline time.Duration
		want     bool
	}{
		{"in the recorded gap", 1500 * time.Millisecond, true},
		{"at its end", 3 * time.Second, true},
		{"after it", 3500 * time.Millisecond, false},
		{"before it", 900 * time.Millisecond, false},
	} {
		if got := h.at(at(tc.deadline), now); got != tc.want {
			t.Errorf("%s: at(%v) = %v, want %v", tc.name, tc.deadline, got, tc.want)
		}
	}
	if !h.since(at(2*time.Second), now) || h.since(at(3500*time.Millisecond), now) {
		t.Error("since: want true for a time before the gap's end, false after")
	}
}

// Only the last kept gaps are remembered, and At is false before the
// heartbeat has ever ticked.
func TestHeartKeepsRecentGaps(t *testing.T) {
	var h heart
	t0 := time.Now()
	if h.at(t0, t0.Add(time.Hour)) || h.since(t0, t0.Add(time.Hour)) {
		t.Fatal("a heartbeat that never ticked reports a stop")
	}
	d := time.Duration(0)
	for range kept + 10 {
		h.tick(t0.Add(d))
		d += 2 * time.Second // every tick a gap
	}
	h.tick(t0.Add(d))
	now := t0.Add(d)
	if h.at(t0.Add(500*time.Millisecond), now) {
		t.Error("the oldest gap should have been forgotten")
	}
	if !h.at(t0.Add(d-500*time.Millisecond), now) {
		t.Error("the newest gap should be remembered")
	}
}

// Timeout tells a deadline that ran out from an answer: only the former can
// be a stall's doing.
func TestTimeout(t *testing.T) {
	ioTimeout := &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"read deadline", fmt.Errorf("on m:1: %w", ioTimeout), true},
		{"context deadline", fmt.Errorf("script: %w", context.DeadlineExceeded), true},
		{"an answer", errors.New("not replicated: 0 of 1 replicas"), false},
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, false},
		{"a timeout reported as text only", fmt.Errorf("attempt timed out: %v", ioTimeout), false},
		{"nil", nil, false},
	} {
		if got := Timeout(tc.err); got != tc.want {
			t.Errorf("%s: Timeout = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The heartbeat runs while any Watch is not undone, and then stops: no
// goroutine is left behind (the cluster package's leak tests rely on it).
func TestWatchStops(t *testing.T) {
	before := runtime.NumGoroutine()
	u1 := Watch()
	u2 := Watch()
	if n := runtime.NumGoroutine(); n != before+1 {
		t.Fatalf("two Watch calls: %d goroutines, want %d", n, before+1)
	}
	u1()
	u1() // idempotent
	if n := runtime.NumGoroutine(); n != before+1 {
		t.Fatalf("one Watch undone of two: %d goroutines, want %d", n, before+1)
	}
	u2()
	if n := runtime.NumGoroutine(); n != before {
		t.Fatalf("every Watch undone: %d goroutines, want %d", n, before)
	}
	if Since(time.Now().Add(-time.Hour)) {
		t.Fatal("a stopped heartbeat reports a stop")
	}
}
