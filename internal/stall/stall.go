// Package stall tells a timeout that says something about Redis from one
// that says only that this process did not run.
//
// A process that is stopped (SIGSTOP, a frozen container, a machine starved
// of CPU) fires none of its timers while stopped: when it runs again, every
// deadline that passed meanwhile fires at once, although the answer it
// waited for may have been in its socket for seconds. A reservation, a
// probe or a wait that timed out that way saw nothing of the master it
// waited on, and must neither mark that master down nor hand out spare IDs
// (out of order) in its place: it is tried again instead.
//
// A heartbeat (Watch) ticks every 20 ms while a cluster connection is open; ticks further apart than MinGap
// mean the process did not run in between. At reports whether a deadline
// fell in such a gap, or in the one going on now (the heartbeat has not run
// yet since the process resumed). A clock that stops with the process (a
// suspended machine, some hypervisors' paused guests) shows no gap: nothing
// here can tell that from time not passing.
package stall

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

const (
	// beat is the heartbeat's period.
	beat = 20 * time.Millisecond
	// MinGap is the shortest stop told apart: ticks that far apart are far
	// more than the scheduling delay of a loaded machine (a timeout there is
	// Redis's to answer for: with 100 ms, a loaded CI machine under the race
	// detector excused real timeouts of a frozen master and callers failed),
	// and as long as the stops that break order (a block retires 0.4 s after
	// it was sent).
	MinGap = time.Second
	// kept is how many gaps are remembered: a wait asks about its own
	// deadline, seconds ago at most.
	kept = 64
)

// heart is the heartbeat's record: the last tick and the recent gaps.
type heart struct {
	mu   sync.Mutex
	last time.Time
	gaps [kept]gap
	n    int // gaps recorded so far; the last kept are in gaps, as a ring
}

// gap is a time the process did not run: from the tick before to the one
// after.
type gap struct{ from, to time.Time }

var (
	beats    heart
	disabled atomic.Bool
	// watchers counts the Watch calls not yet undone; the heartbeat runs
	// while it is above zero.
	watchers struct {
		sync.Mutex
		n    int
		stop chan struct{}
		done chan struct{}
	}
)

// Watch starts the heartbeat unless it runs already, and returns the
// function that undoes this call: the heartbeat stops when every Watch was
// undone (cluster.Dial watches, Cluster.Close undoes it). While it does not
// run, At and Since report no stall.
func Watch() (unwatch func()) {
	w := &watchers
	w.Lock()
	defer w.Unlock()
	w.n++
	if w.n == 1 {
		w.stop, w.done = make(chan struct{}), make(chan struct{})
		beats.tick(time.Now())
		go beats.run(w.stop, w.done)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			w.Lock()
			defer w.Unlock()
			if w.n--; w.n == 0 {
				close(w.stop)
				<-w.done
			}
		})
	}
}

// run ticks every beat until stop is closed; then the record forgets its
// last tick, so the pause until the next Watch is no stop.
func (h *heart) run(stop, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(beat)
	defer t.Stop()
	for {
		select {
		case <-stop:
			h.mu.Lock()
			h.last = time.Time{}
			h.mu.Unlock()
			return
		case <-t.C:
			h.tick(time.Now())
		}
	}
}

// tick records a heartbeat at now.
func (h *heart) tick(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.last.IsZero() && now.Sub(h.last) > MinGap {
		h.gaps[h.n%kept] = gap{h.last, now}
		h.n++
	}
	h.last = now
}

// at reports whether t fell in a recorded gap or in the gap going on at now.
func (h *heart) at(t, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last.IsZero() {
		return false
	}
	if now.Sub(h.last) > MinGap && !t.Before(h.last) && !t.After(now) {
		return true
	}
	for i := range min(h.n, kept) {
		if g := h.gaps[i]; !t.Before(g.from) && !t.After(g.to) {
			return true
		}
	}
	return false
}

// since reports whether the process stopped at some time after t (a gap
// that ended after it, or one going on at now).
func (h *heart) since(t, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.last.IsZero() {
		return false
	}
	if now.Sub(h.last) > MinGap {
		return true
	}
	for i := range min(h.n, kept) {
		if h.gaps[i].to.After(t) {
			return true
		}
	}
	return false
}

// At reports whether this process was stopped when deadline passed: a
// timeout at that deadline says nothing of what it waited for.
func At(deadline time.Time) bool {
	return !disabled.Load() && beats.at(deadline, time.Now())
}

// Since reports whether this process was stopped at some time after t: what
// it learnt at t may be stale.
func Since(t time.Time) bool {
	return !disabled.Load() && beats.since(t, time.Now())
}

// Disable makes At and Since report false from now on: every timeout counts,
// as before stalls were told apart. It exists only for the negative
// controls of the tests (SHARDSEQ_UNSAFE_STALLS in cmd/shardseq).
func Disable() { disabled.Store(true) }

// Timeout reports whether err is a deadline that ran out (a context's or a
// connection's), not an answer.
func Timeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}
