package server

import (
	"sync"
	"time"
)

type rateSample struct {
	at    time.Time
	total uint64
}

// rateRing is a fixed-size ring of samples of one namespace.
type rateRing struct {
	buf  []rateSample
	head int // next slot to write
	n    int // samples held
}

func (r *rateRing) add(s rateSample) {
	r.buf[r.head] = s
	r.head = (r.head + 1) % len(r.buf)
	if r.n < len(r.buf) {
		r.n++
	}
}

// samples returns the samples oldest first.
func (r *rateRing) samples() []rateSample {
	out := make([]rateSample, 0, r.n)
	start := (r.head - r.n + len(r.buf)) % len(r.buf)
	for k := 0; k < r.n; k++ {
		out = append(out, r.buf[(start+k)%len(r.buf)])
	}
	return out
}

// sampler keeps, per open namespace, a ring of IDs-issued samples taken
// every `every`; its memory is bounded by MaxNamespaces * keep samples.
type sampler struct {
	every time.Duration
	keep  int

	mu    sync.Mutex
	rings map[string]*rateRing
}

func newSampler(every, window time.Duration) *sampler {
	keep := max(int(window/every), 2)
	return &sampler{every: every, keep: keep, rings: map[string]*rateRing{}}
}

// record adds one sample per namespace; namespaces absent from totals are
// forgotten.
func (sp *sampler) record(now time.Time, totals map[string]uint64) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	for name := range sp.rings {
		if _, ok := totals[name]; !ok {
			delete(sp.rings, name)
		}
	}
	for name, total := range totals {
		r := sp.rings[name]
		if r == nil {
			r = &rateRing{buf: make([]rateSample, sp.keep)}
			sp.rings[name] = r
		}
		r.add(rateSample{at: now, total: total})
	}
}

// ratePoint is the mean rate of IDs issued between two samples.
type ratePoint struct {
	At     time.Time
	PerSec float64
}

// rates returns the per-interval rates of namespace name, oldest first.
func (sp *sampler) rates(name string) []ratePoint {
	sp.mu.Lock()
	r := sp.rings[name]
	var ss []rateSample
	if r != nil {
		ss = r.samples()
	}
	sp.mu.Unlock()
	var out []ratePoint
	for k := 1; k < len(ss); k++ {
		dt := ss[k].at.Sub(ss[k-1].at).Seconds()
		if dt <= 0 {
			continue
		}
		d := float64(0)
		if ss[k].total >= ss[k-1].total {
			d = float64(ss[k].total - ss[k-1].total)
		}
		out = append(out, ratePoint{At: ss[k].at, PerSec: d / dt})
	}
	return out
}

// recent is the mean rate over the last `over` (or what the samples cover).
func recent(points []ratePoint, every, over time.Duration) float64 {
	n := max(int(over/every), 1)
	if len(points) == 0 {
		return 0
	}
	if len(points) < n {
		n = len(points)
	}
	sum := 0.0
	for _, p := range points[len(points)-n:] {
		sum += p.PerSec
	}
	return sum / float64(n)
}

// sampleNow samples every open namespace once.
func (s *Server) sampleNow() {
	totals := map[string]uint64{}
	for _, name := range s.Namespaces() {
		totals[name] = s.pool.issued(name)
	}
	s.rates.record(time.Now(), totals)
}

// sampleLoop samples until the server closes.
func (s *Server) sampleLoop() {
	defer s.bg.Done()
	t := time.NewTicker(s.rates.every)
	defer t.Stop()
	s.sampleNow()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.sampleNow()
		}
	}
}
