package client

// Refills: replacing the current block, prefetching the next, retiring
// blocks past their time.

import (
	"context"
	"errors"
	"time"

	"github.com/shardseq/shardseq/failover"
)

// staleCheck: Next reads the clock once per this many IDs of a lane (and
// NextN once per call) to stop handing out a block past its retire time,
// which a stalled process would otherwise do until its retire timer runs:
// a clock read costs several times a Next.
const staleCheck = 64

// clock is the time since the client started, on the monotonic clock.
func (c *Client) clock() int64 { return int64(time.Since(c.base)) }

// stale reports whether seg is past its retire time.
func (c *Client) stale(seg *segment) bool { return seg.retireAt != 0 && c.clock() >= seg.retireAt }

// expire retires seg if it is still current (its rest becomes a gap).
func (c *Client) expire(seg *segment) {
	c.mu.Lock()
	if c.cur.Load() == seg {
		c.retireLocked(seg, gapRetired)
	}
	c.mu.Unlock()
}

// advance replaces the exhausted (or retired) segment old with the
// prefetched one, or waits for a refill; when no reservation can succeed
// (or one takes longer than fallbackPatience) it hands out a spare instead.
// Only arithmetic happens under the lock.
func (c *Client) advance(ctx context.Context, old *segment) error {
	for {
		if c.closed.Load() {
			return ErrClosed
		}
		c.mu.Lock()
		if cur := c.cur.Load(); cur != old {
			c.mu.Unlock()
			return nil // another goroutine advanced already
		}
		if c.installNextLocked(old) {
			c.mu.Unlock()
			return nil
		}
		done := c.refillLocked()
		spare := len(c.spares) > 0
		c.mu.Unlock()
		if err := c.waitRefill(ctx, done, spare, old); err != nil || c.cur.Load() != old {
			return err
		}
		c.mu.Lock()
		err := c.refillErr
		ready := c.next != nil
		if !ready && err != nil {
			if c.closed.Load() {
				c.mu.Unlock()
				return ErrClosed // the refill was cancelled by Close
			}
			// Not after stalls: this process, not Redis, failed the refill,
			// and a spare would serve the callers after the stop out of order.
			if errors.Is(err, failover.ErrNoHealthyShard) && !errors.Is(err, failover.ErrStalled) && c.fallbackLocked(old) {
				c.mu.Unlock()
				return nil
			}
			c.mu.Unlock()
			return err
		}
		c.mu.Unlock()
	}
}

// installNextLocked makes the prefetched segment current in place of old,
// if there is one still fresh enough; it reports whether it did. Caller
// holds mu.
func (c *Client) installNextLocked(old *segment) bool {
	if c.next != nil && c.stale(c.next) {
		// Reserved too long ago: handing it out now could put its IDs
		// after higher ones of other processes. Its IDs become gaps.
		c.econ.gaps[gapRetired].Add(c.next.n)
		c.next = nil
	}
	if c.next == nil {
		return false
	}
	c.installLocked(old)
	return true
}

// installLocked makes the prefetched segment current in place of old.
// Caller holds mu and has checked that c.next is set.
func (c *Client) installLocked(old *segment) {
	c.setAsideLocked(old)
	c.next.born = time.Now()
	c.cur.Store(c.next)
	c.scheduleRetireLocked(c.next)
	c.next = nil
}

// retireLocked stops old handing out IDs and accounts for it: what it
// handed out as issued, the rest as gaps of the reason given. Caller holds
// mu.
func (c *Client) retireLocked(old *segment, reason gapReason) {
	if old.retired {
		return
	}
	old.retired = true
	used := old.close()
	c.set.Issued(old.shard, uint64(used))
	c.econ.issued.Add(used)
	c.econ.gaps[reason].Add(old.n - used)
	if old.fallback {
		c.countOutOfOrderLocked(old, used)
		return // a spare's rate is an outage's, not the callers'
	}
	if life := time.Since(old.born).Seconds(); !old.born.IsZero() && life > 0 && used > 0 {
		if r := float64(used) / life; c.rate == 0 {
			c.rate = r
		} else {
			c.rate = 0.7*c.rate + 0.3*r
		}
	}
}

// scheduleRetireLocked arranges for seg, now current, to stop handing out
// IDs at its retire time, even if nobody asks for IDs meanwhile (an idle
// client must not hand out an old block's IDs later). Caller holds mu.
func (c *Client) scheduleRetireLocked(seg *segment) {
	if seg.retire.IsZero() {
		return
	}
	if c.retirer != nil {
		c.retirer.Stop()
	}
	c.retirer = time.AfterFunc(time.Until(seg.retire), func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.cur.Load() == seg && !c.closed.Load() {
			c.retireLocked(seg, gapRetired)
		}
	})
}

// startRefill reserves the next block in the background unless a refill is
// running or a block is already waiting.
func (c *Client) startRefill() {
	c.mu.Lock()
	if c.next == nil && c.prefetchUsefulLocked() {
		c.refillLocked()
	}
	c.mu.Unlock()
}

// prefetchUsefulLocked reports whether a block reserved now would still be
// usable when the current one runs out. At a low rate it would not: it
// would retire unused (a gap of a block, and a level it pulls every shard
// up to), so a quiet client reserves when it needs a block instead, one
// round trip per request.
func (c *Client) prefetchUsefulLocked() bool {
	cur := c.cur.Load()
	if !c.cfg.ordered() || c.rate <= 0 || cur == nil || cur.fallback {
		return true
	}
	left := cur.left()
	return float64(left+1)/c.rate < 0.8*c.cfg.retireAfter().Seconds()
}

func (c *Client) refillLocked() <-chan struct{} {
	if c.refilling {
		return c.refilled
	}
	if c.closed.Load() {
		// Close may be in wg.Wait: no wg.Add from here on.
		done := make(chan struct{})
		close(done)
		return done
	}
	c.refilling = true
	c.refilled = make(chan struct{})
	c.adaptLocked()
	size := c.blockSize
	c.wg.Add(1)
	go c.refill(size, c.refilled)
	return c.refilled
}

func (c *Client) refill(size int64, done chan struct{}) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.ctx, 10*time.Second)
	b, err := c.set.Reserve(ctx, size, -1, c.level)
	cancel()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refilling = false
	c.refillErr = err
	if err == nil {
		sent := b.Sent
		c.order.add(sent, b.Hi, c.cfg)
		c.noteBlockLocked(b)
		if c.closed.Load() {
			c.econ.gaps[gapClosed].Add(b.Len())
		} else {
			n := b.Len()
			c.next = newSegment(b.Lo, n, b.Shard, int64(b.Shards), c.cfg.RefillAt)
			if c.cfg.ordered() {
				c.next.retire = sent.Add(c.cfg.retireAfter())
				c.next.retireAt = int64(c.next.retire.Sub(c.base))
			}
			if cur := c.cur.Load(); cur != nil && cur.fallback {
				// Reservations work again: back to fresh blocks, in order;
				// the rest of the spare waits for the next outage.
				c.log.Info("reservations succeed again: back from spare IDs", "namespace", c.cfg.Namespace,
					"out_of_order", c.econ.outOfOrder.Load())
				c.installLocked(cur)
			}
			c.stockSparesLocked()
		}
	} else if !errors.Is(err, context.Canceled) {
		// Once per spell: while no reservation succeeds (callers on a
		// spare), every retry would log the same.
		if cur := c.cur.Load(); cur == nil || !cur.fallback {
			c.log.Warn("refill failed", "namespace", c.cfg.Namespace, "err", err)
		}
	}
	close(done)
}

// adaptLocked sizes the next reservation so that a block lasts about
// BlockTarget at the rate IDs are handed out: the rate of whole blocks
// (smoothed: a block's first fifth alone is too noisy, since callers ask for
// batches, and with ordering every spike in size is a skip on the other
// shards), or, before the first block was used up, the current block's rate
// so far. It runs as each
// refill starts. The size grows at most 8-fold per refill (a short burst
// must not reserve a huge block) and follows a drop at once; both within
// Min/MaxBlockSize.
func (c *Client) adaptLocked() {
	rate := c.rate
	if cur := c.cur.Load(); cur != nil && !cur.born.IsZero() {
		used, age := cur.taken(), time.Since(cur.born)
		// The first block's rate so far, once it is old enough to mean
		// something: one request a moment after the block arrived is not a
		// rate of thousands a second.
		if r := float64(used) / age.Seconds(); used > 0 && age >= c.cfg.BlockTarget && rate == 0 {
			rate = r
		}
	}
	if rate <= 0 {
		return
	}
	want := int64(rate * c.cfg.BlockTarget.Seconds())
	c.blockSize = min(max(want, c.cfg.MinBlockSize), c.blockSize*8, c.cfg.MaxBlockSize)
}
