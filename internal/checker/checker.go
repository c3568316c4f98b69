// Package checker records every ID acknowledged to a caller and finds the
// ones handed out twice, like Jepsen's unique-ids workload. It is shared by
// the integration tests, `shardseq verify` and the docker load container.
package checker

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Checker collects IDs from many goroutines. Each caller records into its own
// Recorder, so recording costs an append, not a lock; Report sorts everything
// once at the end.
type Checker struct {
	mu        sync.Mutex
	recorders []*Recorder
	start     time.Time
	shards    int
}

// New returns an empty checker; its clock starts now.
func New() *Checker { return &Checker{start: time.Now()} }

// WithShards tells the checker the namespace's N, so that the report counts
// gaps: sequence numbers skipped inside each shard's acknowledged range
// (blocks dropped by closed or killed clients, or discarded unreplicated).
func (c *Checker) WithShards(n int) *Checker {
	c.shards = n
	return c
}

// Recorder is one caller's log. It is not safe for concurrent use.
type Recorder struct {
	ids       []int64
	attempted int64
	errors    int64
	lastErr   string
	lat       []time.Duration // per call, sampled
}

// Recorder returns a new recorder for one caller.
func (c *Checker) Recorder() *Recorder {
	r := &Recorder{}
	c.mu.Lock()
	c.recorders = append(c.recorders, r)
	c.mu.Unlock()
	return r
}

// Ack records ids acknowledged by one successful call that took d.
func (r *Recorder) Ack(d time.Duration, ids ...int64) {
	r.attempted++
	r.ids = append(r.ids, ids...)
	if r.attempted%16 == 1 {
		r.lat = append(r.lat, d)
	}
}

// Fail records a failed call.
func (r *Recorder) Fail(err error) {
	r.attempted++
	r.errors++
	r.lastErr = err.Error()
}

// Report is the outcome of a run.
type Report struct {
	Attempted    int64         `json:"attempted"`    // calls made
	Acknowledged int64         `json:"acknowledged"` // IDs acknowledged to callers
	Duplicated   int64         `json:"duplicated"`   // IDs acknowledged more than once
	Examples     []int64       `json:"duplicate_examples,omitempty"`
	Errors       int64         `json:"errors"` // failed calls
	LastError    string        `json:"last_error,omitempty"`
	NonPositive  int64         `json:"non_positive"`
	Gaps         int64         `json:"gaps"` // sequence numbers skipped within each shard's range (needs WithShards)
	Min          int64         `json:"min"`
	Max          int64         `json:"max"`
	P50, P99     time.Duration `json:"-"`
	P50Ms        float64       `json:"p50_ms"`
	P99Ms        float64       `json:"p99_ms"`
	P999Ms       float64       `json:"p999_ms"`
	Elapsed      time.Duration `json:"-"`
	Seconds      float64       `json:"seconds"`
	Faults       int           `json:"faults,omitempty"`
	FaultLog     []string      `json:"fault_log,omitempty"`
}

// OK is true when no ID was handed out twice and every ID is positive.
func (r Report) OK() bool { return r.Duplicated == 0 && r.NonPositive == 0 }

// Report sorts every recorded ID and counts the repeats. Call it after every
// recorder stopped.
func (c *Checker) Report() Report {
	c.mu.Lock()
	defer c.mu.Unlock()
	var rep Report
	total := 0
	for _, r := range c.recorders {
		total += len(r.ids)
	}
	all := make([]int64, 0, total)
	var lat []time.Duration
	for _, r := range c.recorders {
		all = append(all, r.ids...)
		lat = append(lat, r.lat...)
		rep.Attempted += r.attempted
		rep.Errors += r.errors
		if r.lastErr != "" {
			rep.LastError = r.lastErr
		}
	}
	slices.Sort(all)
	rep.Acknowledged = int64(len(all))
	for i, id := range all {
		if id <= 0 {
			rep.NonPositive++
		}
		if i > 0 && id == all[i-1] {
			rep.Duplicated++
			if len(rep.Examples) < 20 && (len(rep.Examples) == 0 || rep.Examples[len(rep.Examples)-1] != id) {
				rep.Examples = append(rep.Examples, id)
			}
		}
	}
	if len(all) > 0 {
		rep.Min, rep.Max = all[0], all[len(all)-1]
	}
	rep.Gaps = gaps(all, c.shards)
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	pct := func(p float64) time.Duration {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	rep.P50, rep.P99 = pct(0.50), pct(0.99)
	rep.P50Ms, rep.P99Ms, rep.P999Ms = ms(rep.P50), ms(rep.P99), ms(pct(0.999))
	rep.Elapsed = time.Since(c.start)
	rep.Seconds = rep.Elapsed.Seconds()
	return rep
}

// gaps counts, for each residue class mod n, the sequence numbers between the
// lowest and highest acknowledged that were never acknowledged. all is sorted.
func gaps(all []int64, n int) int64 {
	if n <= 0 || len(all) == 0 {
		return 0
	}
	type span struct{ lo, hi, count int64 }
	spans := make([]span, n)
	for i, id := range all {
		if id <= 0 || (i > 0 && id == all[i-1]) {
			continue
		}
		s := &spans[id%int64(n)]
		seq := id / int64(n)
		if s.count == 0 {
			s.lo = seq
		}
		s.hi = seq
		s.count++
	}
	var g int64
	for _, s := range spans {
		if s.count > 0 {
			g += s.hi - s.lo + 1 - s.count
		}
	}
	return g
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// String is the report for people.
func (r Report) String() string {
	var b strings.Builder
	verdict := "OK: no ID handed out twice"
	if !r.OK() {
		verdict = fmt.Sprintf("FAIL: %d duplicated IDs (e.g. %v), %d non-positive", r.Duplicated, r.Examples, r.NonPositive)
	}
	fmt.Fprintf(&b, "%s\n", verdict)
	fmt.Fprintf(&b, "  calls attempted %d, failed %d; IDs acknowledged %d in %.1fs (%.0f IDs/s)\n",
		r.Attempted, r.Errors, r.Acknowledged, r.Seconds, float64(r.Acknowledged)/max(r.Seconds, 1e-9))
	fmt.Fprintf(&b, "  ID range %d..%d, %d skipped (gaps); call latency p50 %.3fms p99 %.3fms p999 %.3fms\n", r.Min, r.Max, r.Gaps, r.P50Ms, r.P99Ms, r.P999Ms)
	if r.Faults > 0 {
		fmt.Fprintf(&b, "  faults injected %d: %s\n", r.Faults, strings.Join(r.FaultLog, "; "))
	}
	if r.LastError != "" {
		fmt.Fprintf(&b, "  last error: %s\n", r.LastError)
	}
	return b.String()
}

// Progress is a cheap live count for progress lines.
type Progress struct{ IDs, Errors atomic.Int64 }
