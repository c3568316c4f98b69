// Package checker records every ID acknowledged to a caller and finds the
// ones handed out twice, like Jepsen's unique-ids workload. With WithOrder it
// also measures how far IDs are from creation order: answer B is an
// inversion (for a window W) when B's request was sent more than W after
// some answer A had arrived, and B's smallest ID is below A's largest. It is
// shared by the integration tests, `shardseq verify` and the docker load
// container.
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
	window    time.Duration // > 0: record answers for the order measure
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

// WithOrder makes the report measure order for window w (see the package
// comment). It keeps 32 bytes per answer.
func (c *Checker) WithOrder(w time.Duration) *Checker {
	c.window = w
	return c
}

// Recorder is one caller's log. It is not safe for concurrent use.
type Recorder struct {
	ids       []int64
	attempted int64
	errors    int64
	lastErr   string
	lat       []time.Duration // per call, sampled
	order     bool
	answers   []answer
}

// answer is one successful call, for the order measure: when its request was
// sent, when its answer arrived (unix nanoseconds, one process's clock), and
// its smallest and largest ID.
type answer struct {
	sent, arrived int64
	lo, hi        int64
}

// Recorder returns a new recorder for one caller.
func (c *Checker) Recorder() *Recorder {
	r := &Recorder{order: c.window > 0}
	c.mu.Lock()
	c.recorders = append(c.recorders, r)
	c.mu.Unlock()
	return r
}

// Ack records ids acknowledged by one successful call that took d and
// returned just now.
func (r *Recorder) Ack(d time.Duration, ids ...int64) {
	now := time.Now()
	r.AckAt(now.Add(-d), now, ids...)
}

// AckAt records ids acknowledged by one successful call whose request was
// sent at sent and whose answer arrived at arrived.
func (r *Recorder) AckAt(sent, arrived time.Time, ids ...int64) {
	r.attempted++
	r.ids = append(r.ids, ids...)
	if r.attempted%16 == 1 {
		r.lat = append(r.lat, arrived.Sub(sent))
	}
	if r.order && len(ids) > 0 {
		a := answer{sent: sent.UnixNano(), arrived: arrived.UnixNano(), lo: ids[0], hi: ids[0]}
		for _, id := range ids[1:] {
			a.lo, a.hi = min(a.lo, id), max(a.hi, id)
		}
		r.answers = append(r.answers, a)
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
	// Growth is how fast IDs grow per ID handed out: (Max-Min+1) /
	// Acknowledged. 1 is dense; N means only one shard's residues are used.
	Growth float64 `json:"growth"`
	// The order measure (WithOrder): answers that are inversions for
	// Window, the largest backward step of one (how far below an earlier
	// answer's largest ID its smallest ID was), and WindowNeeded, the
	// smallest window for which no answer is an inversion.
	Window       time.Duration `json:"-"`
	WindowMs     float64       `json:"window_ms,omitempty"`
	Answers      int64         `json:"answers,omitempty"`
	Inversions   int64         `json:"inversions"`
	MaxBackStep  int64         `json:"max_back_step,omitempty"`
	WindowNeeded time.Duration `json:"-"`
	NeededMs     float64       `json:"window_needed_ms,omitempty"`
	// InversionExamples are the first few inversions, for diagnosis.
	InversionExamples []Inversion `json:"inversion_examples,omitempty"`
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
	var answers []answer
	for _, r := range c.recorders {
		all = append(all, r.ids...)
		lat = append(lat, r.lat...)
		answers = append(answers, r.answers...)
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
	if rep.Acknowledged > 0 {
		rep.Growth = float64(rep.Max-rep.Min+1) / float64(rep.Acknowledged)
	}
	if c.window > 0 {
		o := newOrder(answers)
		rep.Window, rep.WindowMs, rep.Answers = c.window, ms(c.window), int64(len(answers))
		rep.Inversions, rep.MaxBackStep = o.inversions(c.window)
		rep.WindowNeeded = o.needed()
		rep.NeededMs = ms(rep.WindowNeeded)
		rep.InversionExamples = o.examples(c.window, c.start.UnixNano(), 5)
	}
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
	fmt.Fprintf(&b, "  ID growth %.3f per ID handed out\n", r.Growth)
	if r.Window > 0 {
		fmt.Fprintf(&b, "  order: %d of %d answers are inversions at W=%v (largest backward step %d); no inversion for W >= %v\n",
			r.Inversions, r.Answers, r.Window, r.MaxBackStep, r.WindowNeeded)
		for _, e := range r.InversionExamples {
			fmt.Fprintf(&b, "    e.g. answer with ID %d sent at %v arrived at %v; answer sent at %v got ID %d\n",
				e.AHi, e.ASent.Round(time.Millisecond), e.AArrived.Round(time.Millisecond), e.BSent.Round(time.Millisecond), e.BLo)
		}
	}
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
