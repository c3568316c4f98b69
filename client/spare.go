package client

// Spares: blocks held for when no reservation succeeds (Config.HoldFor).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/shardseq/shardseq/internal/stall"
	"github.com/shardseq/shardseq/shard"
)

// fallbackPatience, plus the acknowledgement timeout, is how long a caller
// with nothing buffered waits for a refill before it is served from a
// spare: a reservation that takes longer is stuck on a master that fails
// (one whose replicas lag costs an AckTimeout, then the next master
// serves).
const fallbackPatience = 100 * time.Millisecond

// recoverEvery paces the reservations tried while callers are served from a
// spare; each fails fast while every master is known to be down.
const recoverEvery = 50 * time.Millisecond

// waitRefill waits for the refill done, or for ctx; with a spare at hand,
// a refill slower than fallbackPatience (plus the acknowledgement timeout:
// one whose replicas lag costs an AckTimeout, then the picker moves on) is
// stuck on a master that fails, and the spare is handed out meanwhile. A
// caller that cannot wait (the server hands out only what is buffered while
// no master answers its probes) gets the spare too.
//
// A wait that ends late because this process was stopped meanwhile (see
// package stall) is no sign of a stuck master: the patience starts again,
// and a context that expired during the stop ends its call without a spare
// (a spare made current then would serve the callers after the stop out of
// order).
func (c *Client) waitRefill(ctx context.Context, done <-chan struct{}, spare bool, old *segment) error {
	wait := fallbackPatience + cmp.Or(c.cfg.AckTimeout, DefaultAckTimeout)
	patience := time.NewTimer(wait)
	defer patience.Stop()
	armed := time.Now()
	if !spare {
		patience.Stop()
	}
	for {
		select {
		case <-done:
			return nil
		case <-patience.C:
			if stall.At(armed.Add(wait)) {
				patience.Reset(wait)
				armed = time.Now()
			} else if c.tryFallback(old) {
				return nil
			}
		case <-ctx.Done():
			if dl, ok := ctx.Deadline(); ok && errors.Is(ctx.Err(), context.DeadlineExceeded) && stall.At(dl) {
				return fmt.Errorf("%w: %w", ErrStalled, ctx.Err())
			}
			if c.tryFallback(old) {
				return nil
			}
			return ctx.Err()
		}
	}
}

// tryFallback hands out a spare in place of old, unless something else
// took its place meanwhile (another caller's spare, or a refill that
// arrived): then the caller goes on with that. It reports whether old was
// replaced.
func (c *Client) tryFallback(old *segment) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur.Load() != old {
		return true
	}
	return c.installNextLocked(old) || c.fallbackLocked(old)
}

// setAsideLocked stops old being current: a block is retired (its rest is a
// gap), a spare that still has IDs goes back to the spares for the next
// outage (a caller that loaded it just before may still take an ID from it:
// its lanes are atomic, so that is no repeat). Caller holds mu.
func (c *Client) setAsideLocked(old *segment) {
	switch {
	case old == nil:
	case old.fallback && old.left() > 0 && !c.closed.Load():
		c.countOutOfOrderLocked(old, old.taken())
		c.spares = append(c.spares, old)
	default:
		c.retireLocked(old, gapRetired)
	}
}

// fallbackLocked hands out a spare in place of old because no reservation
// succeeds, and keeps trying reservations in the background: the first that
// succeeds replaces the spare, which keeps what it has left for the next
// outage. It reports whether there was a spare.
func (c *Client) fallbackLocked(old *segment) bool {
	if len(c.spares) == 0 || c.closed.Load() {
		return false
	}
	k := c.fullestSpareLocked()
	sp := c.spares[k]
	c.spares = slices.Delete(c.spares, k, k+1)
	c.setAsideLocked(old)
	sp.fallback, sp.born = true, time.Now()
	c.cur.Store(sp)
	// Blocks reserved once the spell is over start above the spare's IDs,
	// as above a block sent now: a spare reserved on a shard that jumped
	// since must not put the answers after the spell below its own.
	c.order.add(sp.born, sp.lo+sp.n-1, c.cfg)
	if !c.recovering {
		c.recovering = true
		c.log.Warn("no reservation succeeds: handing out spare IDs, out of order until one does",
			"namespace", c.cfg.Namespace, "spare", sp.n, "spares_left", len(c.spares), "err", c.refillErr)
		c.wg.Add(1)
		go c.recover()
	}
	return true
}

// countOutOfOrderLocked counts the IDs of the spare sp handed out up to
// taken that were not counted yet. Caller holds mu.
func (c *Client) countOutOfOrderLocked(sp *segment, taken int64) {
	c.econ.outOfOrder.Add(taken - sp.counted)
	sp.counted = taken
}

// recover tries a reservation every recoverEvery while callers are served
// from a spare; the refill that succeeds replaces the spare (see refill).
func (c *Client) recover() {
	defer c.wg.Done()
	for {
		c.mu.Lock()
		cur := c.cur.Load()
		if c.closed.Load() || cur == nil || !cur.fallback {
			c.recovering = false
			c.mu.Unlock()
			return
		}
		done := c.refillLocked()
		c.mu.Unlock()
		select {
		case <-done:
		case <-c.ctx.Done():
		}
		t := time.NewTimer(recoverEvery)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
		}
	}
}

// stockSparesLocked reserves spares in the background, once the rate is
// known, when what is held covers less than three quarters of HoldFor at it
// (an outage that used some must not leave the next one short): one block per
// shard, so that the counters, and with them the namespace's level, move by
// a share each rather than one shard by all of it. Caller holds mu.
func (c *Client) stockSparesLocked() {
	// Not before the rate is known: a namespace used once (a server's
	// thousand tenants) must not cost N reservations of spares each.
	if c.cfg.HoldFor < 0 || c.sparing || c.closed.Load() || c.cfg.Strict || c.rate <= 0 {
		return
	}
	held := c.spareLeftLocked()
	// Never more than was handed out so far: a rate measured on a burst of
	// a few IDs (a block used up in a millisecond) would otherwise set aside
	// thousands for a namespace that has handed out six.
	want := min(int64(c.rate*c.cfg.HoldFor.Seconds()), c.econ.issued.Load())
	if 4*held >= 3*want {
		return
	}
	n := len(c.lastHi)
	per := max((want-held+int64(n)-1)/int64(n), 1)
	// Not bound by MaxBlockSize, which bounds the blocks of normal traffic:
	// a spare is reserved once and must last HoldFor.
	per = min(per, shard.MaxLease/64)
	c.sparing = true
	c.wg.Add(1)
	go c.reserveSpares(per)
}

// reserveSpares reserves one spare block of per IDs on every shard it can.
// Spares stay out of the ordering state: they are handed out only when
// ordering is given up anyway. They start above Config.After all the same.
func (c *Client) reserveSpares(per int64) {
	defer c.wg.Done()
	for i := range c.lastHi {
		ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
		b, err := c.set.Reserve(ctx, per, i, c.spareLevel)
		cancel()
		c.mu.Lock()
		if err == nil {
			c.noteBlockLocked(b)
			if c.closed.Load() {
				c.econ.gaps[gapClosed].Add(b.Len())
			} else {
				c.spares = append(c.spares, newSegment(b.Lo, b.Len(), b.Shard, int64(b.Shards), c.cfg.RefillAt))
			}
		}
		stop := err != nil || c.closed.Load()
		if stop {
			c.sparing = false
		}
		c.mu.Unlock()
		if stop {
			return // the next successful refill tries again
		}
	}
	c.mu.Lock()
	c.sparing = false
	c.mu.Unlock()
}

// fullestSpareLocked is the index of the spare with the most IDs left,
// handed out first: spares stocked before the rate was known are small, one
// put back after an outage may be nearly used up, and each switch to the
// next spare costs callers a wait for a refill. Caller holds mu; there is a
// spare.
func (c *Client) fullestSpareLocked() int {
	k := 0
	for i, sp := range c.spares {
		if sp.left() > c.spares[k].left() {
			k = i
		}
	}
	return k
}

// spareLeftLocked is how many IDs the spares hold: what is left of each,
// not its size (a spare put back after an outage may be nearly used up, and
// counting its size would leave the next outage without a restock). Caller
// holds mu.
func (c *Client) spareLeftLocked() int64 {
	var left int64
	for _, sp := range c.spares {
		left += sp.left()
	}
	return left
}

// SpareCover is how long the spare blocks held now, with the rest of a
// spare in use, would carry the callers through an outage of every shard
// at the rate IDs are handed out: about Config.HoldFor once stocked, less
// after an outage until reservations succeed again and restock them. It is
// 0 while the rate is not known yet, in strict mode and with HoldFor -1.
func (c *Client) SpareCover() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rate <= 0 {
		return 0
	}
	left := c.spareLeftLocked()
	if cur := c.cur.Load(); cur != nil && cur.fallback {
		left += cur.left()
	}
	return time.Duration(float64(left) / c.rate * float64(time.Second))
}

// spareLevel is the level spares start above: Config.After's, fixed.
func (c *Client) spareLevel() int64 { return c.floor }
