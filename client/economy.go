package client

import "sync/atomic"

// Economy is what became of the ID space a client reserved: the IDs it
// handed out and every kind of gap, so that an operator sees what shardseq
// spends (the server exports it as shardseq_ids_issued_total and
// shardseq_id_space_skipped_total{reason}).
type Economy struct {
	// Issued is how many IDs were handed out.
	Issued int64
	// Retired: IDs left in blocks retired by the order window (a block
	// hands out IDs only until 0.4 x OrderWindow after it was reserved), or
	// in a prefetched block that retired before it was needed.
	Retired int64
	// Closed: IDs still held (blocks and spares) when the client closed.
	Closed int64
	// Levelled and Fenced: sequence numbers a shard's counter skipped
	// between two blocks this client reserved on it, because a block
	// started at the namespace's level (ordering) or because the counter
	// was restored above its ceiling after its history changed. Measured
	// against this client's previous block on the shard, so with several
	// processes they include the blocks the others reserved meanwhile.
	Levelled, Fenced int64
	// OutOfOrder is how many of the issued IDs came from spare blocks while
	// no reservation could succeed: unique, but possibly below IDs handed
	// out before.
	OutOfOrder int64
}

// Gaps is every ID reserved and never handed out: Retired + Closed (what
// Discarded reports).
func (e Economy) Gaps() int64 { return e.Retired + e.Closed }

// Growth is the ID space spent per ID handed out: 1 when nothing was
// skipped; 0 before the first ID.
func (e Economy) Growth() float64 {
	if e.Issued == 0 {
		return 0
	}
	return float64(e.Issued+e.Gaps()+e.Levelled+e.Fenced) / float64(e.Issued)
}

type gapReason int

const (
	gapRetired gapReason = iota
	gapClosed
)

// economy holds the counters behind Economy.
type economy struct {
	issued, outOfOrder atomic.Int64
	gaps               [2]atomic.Int64 // by gapReason
	levelled, fenced   atomic.Int64
}

func (e *economy) snapshot() Economy {
	return Economy{Issued: e.issued.Load(), Retired: e.gaps[gapRetired].Load(), Closed: e.gaps[gapClosed].Load(),
		Levelled: e.levelled.Load(), Fenced: e.fenced.Load(),
		OutOfOrder: e.outOfOrder.Load()}
}
