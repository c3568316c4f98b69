package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// FaultReport is the outcome of a fault run: segment-mode callers' latency
// and errors before, during and after the fault, and over time.
type FaultReport struct {
	Fault       string  `json:"fault"`
	Master      string  `json:"master"`
	Concurrency int     `json:"concurrency"`
	Rate        float64 `json:"rate,omitempty"` // target IDs/s; 0 flat out
	// Seconds from the start of the load.
	KilledAt    float64 `json:"killed_at"`
	PromotedAt  float64 `json:"promoted_at"`
	RestartedAt float64 `json:"restarted_at"`
	HealthyAt   float64 `json:"healthy_at"`
	Seconds     float64 `json:"seconds"`
	// Phases: before (start to kill), during (kill to the cluster healthy
	// again with the old master back as a replica), after (to the end).
	Phases []Window `json:"phases"`
	// Timeline has one point per bin (100ms).
	Timeline   []Window `json:"timeline"`
	FirstError string   `json:"first_error,omitempty"`
	Shards     []string `json:"shard_health_after,omitempty"`
}

// Window is what callers saw in a span of time.
type Window struct {
	Name      string  `json:"name,omitempty"`
	From      float64 `json:"from"` // seconds since start
	To        float64 `json:"to"`
	Calls     int64   `json:"calls"`
	Errors    int64   `json:"errors"`
	IDsPerSec float64 `json:"ids_per_sec"`
	P50us     float64 `json:"p50_us"`
	P99us     float64 `json:"p99_us"`
	P999us    float64 `json:"p999_us"`
	MaxUs     float64 `json:"max_us"`
}

const faultBin = 100 * time.Millisecond

// timeline collects every call's latency into 100ms bins. Callers keep a
// private histogram for the current bin and merge it in when the bin changes.
type timeline struct {
	start time.Time
	mu    sync.Mutex
	bins  []*hist
	errs  []int64
}

func (tl *timeline) bin(t time.Time) int { return int(t.Sub(tl.start) / faultBin) }

func (tl *timeline) add(b int, h *hist, errs int64) {
	if h.n == 0 && errs == 0 {
		return
	}
	tl.mu.Lock()
	defer tl.mu.Unlock()
	for len(tl.bins) <= b {
		tl.bins = append(tl.bins, newHist(7))
		tl.errs = append(tl.errs, 0)
	}
	tl.bins[b].merge(h)
	tl.errs[b] += errs
}

func (tl *timeline) window(name string, from, to int) Window {
	w := Window{Name: name, From: (time.Duration(from) * faultBin).Seconds(), To: (time.Duration(to) * faultBin).Seconds()}
	h := newHist(7)
	for b := from; b < to && b < len(tl.bins); b++ {
		h.merge(tl.bins[b])
		w.Errors += tl.errs[b]
	}
	w.Calls = int64(h.n)
	if to > from {
		w.IDsPerSec = float64(h.n) / (time.Duration(to-from) * faultBin).Seconds()
	}
	us := func(d time.Duration) float64 { return float64(d) / 1e3 }
	w.P50us, w.P99us, w.P999us, w.MaxUs = us(h.quantile(0.5)), us(h.quantile(0.99)), us(h.quantile(0.999)), us(time.Duration(h.max))
	return w
}

// killMaster runs segment-mode load, kills one master with SIGKILL, waits
// for its replica to be promoted, starts the old node again (it rejoins as
// a replica) and keeps the load on until the cluster is healthy and
// Duration has passed. Every call is timed.
func (e *env) killMaster(ctx context.Context) (*FaultReport, error) {
	conc := e.cfg.Concurrency
	if conc == 0 {
		conc = 50
	}
	fr := &FaultReport{Fault: "kill-master", Concurrency: conc, Rate: e.cfg.Rate}
	c, err := e.newClient(ctx, nil)
	if err != nil {
		return fr, err
	}
	defer c.Close()
	masters, err := e.lc.Masters(ctx)
	if err != nil || len(masters) == 0 {
		return fr, fmt.Errorf("bench: no master to kill: %v", err)
	}
	victim := masters[0]
	fr.Master = victim

	tl := &timeline{start: time.Now()}
	var stop atomic.Bool
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h := newHist(7)
			cur, errs := 0, int64(0)
			var interval time.Duration
			if e.cfg.Rate > 0 {
				interval = time.Duration(float64(conc) / e.cfg.Rate * float64(time.Second))
			}
			due := time.Now()
			for !stop.Load() {
				if interval > 0 {
					due = due.Add(interval)
					if wait := time.Until(due); wait > time.Millisecond {
						time.Sleep(wait)
					} else if wait < -time.Second {
						due = time.Now() // fell behind: don't burst to catch up
					}
				}
				t0 := time.Now()
				_, err := c.Next(ctx)
				t1 := time.Now()
				if b := tl.bin(t0); b != cur {
					tl.add(cur, h, errs)
					h, cur, errs = newHist(7), b, 0
				}
				h.record(t1.Sub(t0))
				if err != nil {
					errs++
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
			tl.add(cur, h, errs)
		}()
	}
	since := func() float64 { return time.Since(tl.start).Seconds() }
	lastProgress := time.Now()
	progress := func(what string) {
		if time.Since(lastProgress) < time.Second {
			return
		}
		lastProgress = time.Now()
		b := tl.bin(time.Now())
		tl.mu.Lock()
		w := tl.window("", max(0, b-10), b)
		tl.mu.Unlock()
		e.progressf("  %6.1fs %-32s %9s IDs/s  p99 %8s  max %8s  %d errors\n", since(), what, FormatSI(w.IDsPerSec), FormatMicros(w.P99us), FormatMicros(w.MaxUs), w.Errors)
	}
	sleep := func(d time.Duration, what string) error {
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
			progress(what)
		}
		return nil
	}
	// waitFor runs wait, bounded by d, printing progress until it returns.
	waitFor := func(d time.Duration, what string, wait func(context.Context) error) error {
		wctx, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- wait(wctx) }()
		for {
			select {
			case err := <-done:
				return err
			case <-time.After(100 * time.Millisecond):
				progress(what)
			}
		}
	}
	finish := func(err error) (*FaultReport, error) {
		stop.Store(true)
		wg.Wait()
		fr.Seconds = since()
		end := tl.bin(time.Now())
		kill := int(fr.KilledAt * float64(time.Second/faultBin))
		healthy := end
		if fr.HealthyAt > 0 {
			healthy = int(fr.HealthyAt * float64(time.Second/faultBin))
		}
		fr.Phases = []Window{tl.window("before", 0, kill), tl.window("during", kill, healthy), tl.window("after", healthy, end)}
		for b := 0; b < end; b++ {
			fr.Timeline = append(fr.Timeline, tl.window("", b, b+1))
		}
		if v, ok := firstErr.Load().(string); ok {
			fr.FirstError = v
		}
		for _, s := range c.Shards() {
			fr.Shards = append(fr.Shards, fmt.Sprintf("shard %d %s %s reservations=%d failures=%d", s.Index, s.State, s.Node, s.Reservations, s.Failures))
		}
		return fr, err
	}

	before := max(2*time.Second, e.cfg.Duration/4)
	if err := sleep(before, "steady"); err != nil {
		return finish(err)
	}
	e.progressf("  %6.1fs killing master %s (SIGKILL)\n", since(), victim)
	if err := e.lc.Kill(victim); err != nil {
		return finish(err)
	}
	fr.KilledAt = since()
	if err := waitFor(30*time.Second, "master down, awaiting promotion", func(ctx context.Context) error {
		return e.lc.WaitPromoted(ctx, victim)
	}); err != nil {
		return finish(fmt.Errorf("bench: no replica promoted within 30s of killing %s: %w", victim, err))
	}
	fr.PromotedAt = since()
	e.progressf("  %6.1fs replica promoted; starting %s again\n", since(), victim)
	if err := e.lc.Start(victim); err != nil {
		return finish(err)
	}
	fr.RestartedAt = since()
	if err := waitFor(30*time.Second, "old master rejoining", e.lc.WaitHealthy); err != nil {
		return finish(fmt.Errorf("bench: cluster not healthy again: %w", err))
	}
	fr.HealthyAt = since()
	e.progressf("  %6.1fs cluster healthy again\n", since())
	after := max(3*time.Second, e.cfg.Duration-time.Since(tl.start))
	if err := sleep(after, "after"); err != nil {
		return finish(err)
	}
	return finish(nil)
}
