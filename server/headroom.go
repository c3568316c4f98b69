package server

import (
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
)

// Headroom: how much of a namespace's ID space is left. IDs run from the
// namespace's start to MaxID (2^53-1 by default, README "IDs"); shard i of
// N hands out sequence numbers s as IDs s*N+i, and the shards' counters are
// kept level, so the highest ID handed out tells how far every counter got.
// Fences and restores make counters jump (they burn space): the next ID
// handed out shows it. The server sees every ID it hands out, so this costs
// no Redis call: one comparison per request, and a CAS when the ID is a new
// high.

// headroomThresholds are the used fractions at which a warning is logged,
// once per namespace and process.
var headroomThresholds = []float64{0.5, 0.9}

// headroom follows the highest ID one open namespace handed out.
type headroom struct {
	start, maxID int64
	hi           atomic.Int64 // highest ID handed out since the namespace opened; 0: none yet
	next         atomic.Int64 // the ID at which the next threshold is passed
}

// init sets the namespace's ID range. Until then (and for an unknown range)
// nothing is followed.
func (h *headroom) init(start, maxID int64) {
	h.start, h.maxID = max(start, 1), maxID
	h.next.Store(h.threshold(0))
}

// threshold is the ID at which headroomThresholds[k] of the space is used,
// or MaxInt64 past the last one.
func (h *headroom) threshold(k int) int64 {
	if k >= len(headroomThresholds) || h.maxID <= h.start {
		return math.MaxInt64
	}
	return h.start + int64(headroomThresholds[k]*float64(h.maxID-h.start))
}

// observe records that id was handed out in namespace name.
func (h *headroom) observe(id int64, w *headroomWarnings, name string) {
	for {
		cur := h.hi.Load()
		if id <= cur || h.hi.CompareAndSwap(cur, id) {
			break
		}
	}
	if id >= h.next.Load() {
		h.passed(w, name)
	}
}

// passed logs the thresholds the highest ID has passed, each once per
// namespace (w remembers across closes), and sets the next one.
func (h *headroom) passed(w *headroomWarnings, name string) {
	hi := h.hi.Load()
	k := 0
	for k < len(headroomThresholds) && hi >= h.threshold(k) {
		k++
	}
	h.next.Store(h.threshold(k))
	if k > 0 {
		w.warn(name, k, h.usedFraction(), hi, h.maxID)
	}
}

// usedFraction is the fraction of the namespace's ID space below the highest
// ID handed out.
func (h *headroom) usedFraction() float64 {
	hi := h.hi.Load()
	if hi == 0 || h.maxID <= h.start {
		return 0
	}
	return min(max(float64(hi-h.start)/float64(h.maxID-h.start), 0), 1)
}

// leftRatio is the fraction of the ID space left, and whether it is known
// (an ID was handed out since the namespace opened).
func (h *headroom) leftRatio() (float64, bool) {
	if h.hi.Load() == 0 || h.maxID == 0 {
		return 0, false
	}
	return 1 - h.usedFraction(), true
}

// headroomWarnings remembers, per namespace, how many thresholds were
// logged already. Only namespaces past the first threshold are in it.
type headroomWarnings struct {
	log    *slog.Logger
	mu     sync.Mutex
	logged map[string]int
}

func newHeadroomWarnings(log *slog.Logger) *headroomWarnings {
	return &headroomWarnings{log: log, logged: map[string]int{}}
}

// warn logs that namespace name passed threshold k-1 (and every one
// before), unless that was logged already.
func (w *headroomWarnings) warn(name string, k int, used float64, hi, maxID int64) {
	w.mu.Lock()
	done := w.logged[name]
	if k > done {
		w.logged[name] = k
	}
	w.mu.Unlock()
	if k <= done {
		return
	}
	w.log.Warn("namespace ID space running out", "namespace", name,
		"used_percent", math.Round(used*1000)/10, "threshold_percent", headroomThresholds[k-1]*100,
		"highest_id", hi, "max_id", maxID,
		"detail", "fences and restores burn sequence space; move to a new namespace before it runs out")
}
