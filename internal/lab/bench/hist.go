package bench

import (
	"math/bits"
	"time"
)

// hist is a log-linear latency histogram in nanoseconds: exact below 2^sub
// ns, then 2^sub buckets per power of two (relative error below 2^-sub).
// One goroutine writes it; merge them when the run is over.
type hist struct {
	sub    uint
	counts []uint64
	n      uint64
	max    int64
}

// maxExp bounds recorded values to 2^maxExp ns (about 18 minutes).
const maxExp = 40

func newHist(sub uint) *hist {
	return &hist{sub: sub, counts: make([]uint64, (maxExp-int(sub)+1)<<sub)}
}

func (h *hist) index(v int64) int {
	if v < 0 {
		v = 0
	}
	u := uint64(v)
	sb := uint64(1) << h.sub
	if u < sb {
		return int(u)
	}
	shift := bits.Len64(u) - int(h.sub) - 1
	idx := uint64(shift+1)<<h.sub + (u >> uint(shift)) - sb
	return min(int(idx), len(h.counts)-1)
}

// value is the middle of bucket i.
func (h *hist) value(i int) int64 {
	sb := 1 << h.sub
	if i < sb {
		return int64(i)
	}
	shift := i>>h.sub - 1
	lo := int64(i-(shift+1)<<h.sub+sb) << uint(shift)
	return lo + (int64(1)<<uint(shift))/2
}

func (h *hist) record(d time.Duration) {
	v := int64(d)
	h.counts[h.index(v)]++
	h.n++
	if v > h.max {
		h.max = v
	}
}

func (h *hist) merge(o *hist) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile returns the q-quantile (0..1), 0 for an empty histogram.
func (h *hist) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q * float64(h.n))
	if rank >= h.n {
		rank = h.n - 1
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen > rank {
			return time.Duration(min(h.value(i), h.max))
		}
	}
	return time.Duration(h.max)
}
