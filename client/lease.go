package client

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// MaxLease bounds the count of one Lease.
const MaxLease = 1_000_000

// ErrBadLeaseCount: Lease was asked for fewer than 1 or more than MaxLease
// IDs.
var ErrBadLeaseCount = errors.New("client: lease count out of range")

// Lease is a block of IDs reserved for a caller that hands them out itself
// (another process, another language): First, First+Step, ...,
// First+(Count-1)*Step, all of shard Shard of Namespace (Step is N).
//
// Every ID of a lease is unique, used or not; IDs left unused are gaps. For
// IDs handed out from successive leases to keep the order of
// Config.OrderWindow, the caller hands out a lease's IDs only for Valid,
// counted on its own monotonic clock from the moment it SENT the request
// that brought the lease (not from when the answer arrived), and drops the
// rest. Limited is false when the client hands IDs out in no particular
// order (OrderWindow -1): Valid is then 0 and means nothing, the lease may
// be used until it is used up. A Limited lease with Valid 0 came too late to
// be used (its reservation took the whole retirement time, in a failover,
// say): drop it and ask again.
type Lease struct {
	Namespace string
	Shard     int
	First     int64
	Step      int64
	Count     int64
	Valid     time.Duration
	Limited   bool
}

// ID returns the k-th ID of the lease (k from 0).
func (l Lease) ID(k int64) int64 { return l.First + k*l.Step }

// Lease reserves count IDs (1 to MaxLease) in one block for the caller to
// hand out itself, through the same picker, fences, acknowledgements and
// levelling as Next; the block counts for ordering as if this client had
// handed it out (the next blocks start above it once it is half a window
// old). It fails as NextN does, or with ErrBadLeaseCount.
//
// Valid is the client's retirement time (0.4 x OrderWindow) less the time
// between the call and the moment the successful reservation was sent: the
// caller sent its request before the call, so it counts from earlier than
// the block's send time, and it stops handing out at the latest when this
// client would have retired the block. (Any Valid up to the retirement time
// would be safe; the subtraction keeps a margin for the caller's checks of
// its clock.)
func (c *Client) Lease(ctx context.Context, count int) (Lease, error) {
	if count < 1 || count > MaxLease {
		return Lease{}, fmt.Errorf("%w: Lease(%d): want 1 to %d", ErrBadLeaseCount, count, MaxLease)
	}
	called := time.Now()
	b, err := c.reserve(ctx, int64(count))
	if err != nil {
		return Lease{}, err
	}
	l := Lease{Namespace: c.cfg.Namespace, Shard: b.Shard, First: b.ID(0), Step: int64(b.Shards), Count: b.Len()}
	if c.cfg.ordered() {
		l.Limited = true
		l.Valid = min(max(c.cfg.retireAfter()-b.Sent.Sub(called), 0), c.cfg.retireAfter())
	}
	return l, nil
}
