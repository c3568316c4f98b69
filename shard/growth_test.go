package shard

import (
	"testing"
	"time"
)

// A fence's jump is a step, not a rate: it must not size every later lease
// at MaxLease, while a real rise in traffic still shows within a few blocks.
func TestGrowthJumpIsNotARate(t *testing.T) {
	var g growth
	t0 := time.Unix(0, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	hi := int64(0)
	// Steady: 1,000 per 0.1 s = 10,000/s.
	for k := 0; k <= 20; k++ {
		hi += 1000
		g.observe(hi, 1000, at(float64(k)*0.1), false)
	}
	if g.rate < 9000 || g.rate > 11000 {
		t.Fatalf("steady rate %.0f, want about 10,000/s", g.rate)
	}
	// One jump of 2^32 (a fence), then steady again.
	hi += 1 << 32
	g.observe(hi, 1000, at(2.1), false)
	if g.rate > 20000 {
		t.Fatalf("one jump made the rate %.0f/s, want at most about double", g.rate)
	}
	for k := 22; k <= 40; k++ {
		hi += 1000
		g.observe(hi, 1000, at(float64(k)*0.1), false)
	}
	if g.rate > 12000 {
		t.Fatalf("after the jump the rate stays %.0f/s, want back near 10,000/s", g.rate)
	}
	// Traffic rises 100x for real: the rate follows within 20 blocks.
	for k := 41; k <= 60; k++ {
		hi += 100_000
		g.observe(hi, 100_000, at(float64(k)*0.1), false)
	}
	if g.rate < 500_000 {
		t.Fatalf("a real 100x rise shows as %.0f/s after 20 blocks, want near 1,000,000/s", g.rate)
	}
}

// The first rate comes from this process's own blocks, not from what the
// counter jumped before it (a fresh process after a fence).
func TestGrowthFirstObservationIgnoresJump(t *testing.T) {
	var g growth
	t0 := time.Unix(0, 0)
	g.observe(1000, 1000, t0, false)
	g.observe(1000+1<<32, 1000, t0.Add(100*time.Millisecond), false)
	if g.rate > 20000 {
		t.Fatalf("first rate %.0f/s, want this process's 10,000/s", g.rate)
	}
}

// Jumps this process made (levelled blocks, restores) are not traffic: a
// series of them, one per window, leaves the rate where it was. Counted as
// traffic they would size each lease from the last jump (issue 22: a run of
// faults grew a busy namespace by 10^10 in 25 s).
func TestGrowthOwnJumpsAreNotTraffic(t *testing.T) {
	var g growth
	t0 := time.Unix(0, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	hi := int64(0)
	for k := 0; k <= 20; k++ {
		hi += 1000
		g.observe(hi, 1000, at(float64(k)*0.1), false)
	}
	for k := 21; k <= 60; k++ {
		hi += 1 << 24
		g.observe(hi, 1000, at(float64(k)*0.1), true)
	}
	if g.rate < 9000 || g.rate > 11000 {
		t.Fatalf("after 40 jumps of this process the rate is %.0f/s, want still about 10,000/s", g.rate)
	}
	// Negative control: the same jumps, unflagged, do raise it.
	var h growth
	hi = 0
	for k := 0; k <= 20; k++ {
		hi += 1000
		h.observe(hi, 1000, at(float64(k)*0.1), false)
	}
	for k := 21; k <= 60; k++ {
		hi += 1 << 24
		h.observe(hi, 1000, at(float64(k)*0.1), false)
	}
	if h.rate < 100_000 {
		t.Fatalf("unflagged jumps left the rate at %.0f/s; the control shows no hole", h.rate)
	}
}
