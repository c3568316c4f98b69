package client

import "testing"

// TestSparesCountWhatIsLeft: a spare put back after an outage counts what it
// has left, not its size, both for the restock (which tops the spares up
// to HoldFor) and for the choice of the next spare to hand out; counting
// sizes left the next outage with a nearly used-up spare and no restock.
func TestSparesCountWhatIsLeft(t *testing.T) {
	used := newSegment(0, 1000, 0, 4, 0.5)
	for j := range used.lane {
		used.lane[j].pos.Store(used.laneLen(j)) // lanes used up ...
	}
	used.lane[0].pos.Store(0) // ... but the first: 1000/lanes left
	fresh := newSegment(5000, 300, 1, 4, 0.5)
	c := &Client{spares: []*segment{used, fresh}}

	if got, want := c.spareLeftLocked(), used.laneLen(0)+300; got != want {
		t.Errorf("spares hold %d IDs, want %d (what is left of each)", got, want)
	}
	if got := c.fullestSpareLocked(); c.spares[got] != fresh {
		t.Errorf("picked spare %d (%d left of %d), want the fresh one (300 left)", got, c.spares[got].left(), c.spares[got].n)
	}
	used.close()
	if got := c.spareLeftLocked(); got != 300 {
		t.Errorf("spares hold %d IDs after one closed, want 300", got)
	}
}

// TestEconomyCountsReusedSpareOnce: a spare handed out in two outages (put
// back between them) counts its IDs as issued and out of order once each.
func TestEconomyCountsReusedSpareOnce(t *testing.T) {
	sp := newSegment(0, 1000, 0, 4, 0.5)
	sp.fallback = true
	sp.lane[0].pos.Store(10) // the first outage took 10
	c := &Client{}
	c.setAsideLocked(sp) // reservations succeed again: put back
	c.spares = nil
	c.cur.Store(sp)         // the second outage
	sp.lane[1].pos.Store(5) // took 5 more
	if e := c.Economy(); e.OutOfOrder != 15 || e.Issued != 15 {
		t.Errorf("current spare: out of order %d, issued %d; want 15 and 15", e.OutOfOrder, e.Issued)
	}
	c.cur.Store(nil)
	c.setAsideLocked(sp) // put back again
	if e := c.Economy(); e.OutOfOrder != 15 || e.Issued != 15 {
		t.Errorf("spare put back: out of order %d, issued %d; want 15 and 15", e.OutOfOrder, e.Issued)
	}
}
