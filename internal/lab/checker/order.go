package checker

import (
	"cmp"
	"slices"
	"sort"
	"time"
)

// order answers the order measure over a run's answers: arrived sorted by
// arrival time, with the running maximum of their largest IDs.
type order struct {
	all     []answer
	arrived []int64 // arrival times, sorted
	runMax  []int64 // runMax[k]: largest ID of the first k+1 arrivals
	argMax  []int   // argMax[k]: index in byArrival of that answer
	byArr   []answer
}

func newOrder(answers []answer) *order {
	o := &order{all: answers}
	byArrival := slices.Clone(answers)
	slices.SortFunc(byArrival, func(a, b answer) int { return cmp.Compare(a.arrived, b.arrived) })
	o.arrived = make([]int64, len(byArrival))
	o.runMax = make([]int64, len(byArrival))
	o.argMax = make([]int, len(byArrival))
	o.byArr = byArrival
	var m int64
	arg := 0
	for k, a := range byArrival {
		if a.hi > m {
			m, arg = a.hi, k
		}
		o.arrived[k], o.runMax[k], o.argMax[k] = a.arrived, m, arg
	}
	return o
}

// Inversion is one answer B sent more than the window after answer A had
// arrived, with its smallest ID below A's largest. Times are from the
// checker's start.
type Inversion struct {
	ASent, AArrived, BSent time.Duration
	AHi, BLo               int64
}

// examples returns up to n inversions for window w, earliest B first.
func (o *order) examples(w time.Duration, start int64, n int) []Inversion {
	var out []Inversion
	bs := slices.Clone(o.all)
	slices.SortFunc(bs, func(a, b answer) int { return cmp.Compare(a.sent, b.sent) })
	for _, b := range bs {
		if len(out) >= n {
			break
		}
		t := b.sent - int64(w)
		k := sort.Search(len(o.arrived), func(k int) bool { return o.arrived[k] >= t })
		if k == 0 || o.runMax[k-1] <= b.lo {
			continue
		}
		a := o.byArr[o.argMax[k-1]]
		out = append(out, Inversion{ASent: time.Duration(a.sent - start), AArrived: time.Duration(a.arrived - start),
			BSent: time.Duration(b.sent - start), AHi: a.hi, BLo: b.lo})
	}
	return out
}

// before is the largest ID of the answers that arrived before t, or 0.
func (o *order) before(t int64) int64 {
	k := sort.Search(len(o.arrived), func(k int) bool { return o.arrived[k] >= t })
	if k == 0 {
		return 0
	}
	return o.runMax[k-1]
}

// inversions counts the answers sent more than w after an answer with a
// larger ID had arrived, and the largest step back among them.
func (o *order) inversions(w time.Duration) (n, step int64) {
	for _, b := range o.all {
		if m := o.before(b.sent - int64(w)); m > b.lo {
			n++
			step = max(step, m-b.lo)
		}
	}
	return n, step
}

// needed is the smallest window (to the millisecond) with no inversion.
func (o *order) needed() time.Duration {
	if len(o.all) == 0 {
		return 0
	}
	lo, hi := time.Duration(0), time.Duration(o.arrived[len(o.arrived)-1]-o.arrived[0])+time.Millisecond
	if n, _ := o.inversions(lo); n == 0 {
		return 0
	}
	for hi-lo > time.Millisecond {
		mid := lo + (hi-lo)/2
		if n, _ := o.inversions(mid); n == 0 {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}
