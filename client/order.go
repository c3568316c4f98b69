package client

import (
	"slices"
	"time"
)

// orderState is what a client knows of the namespace's level, for ordering
// (see Config.OrderWindow). A new block starts above every block this client
// sent more than levelLag before it, and above the counters it read when it
// opened the namespace. Blocks sent within levelLag may share sequence
// numbers on other shards: their IDs are all handed out within OrderWindow
// of each other, so their order does not matter, and letting them share
// keeps the shards' counters advancing together instead of each skipping a
// round (which would make IDs grow N times faster than they are handed out).
//
// Why it orders: a block hands out IDs only until retireAfter past its send
// time. If answer B was requested more than OrderWindow after answer A
// arrived, B's block was sent after A's block by more than
// OrderWindow - retireAfter >= levelLag, so B's block starts above A's. The
// guarded fields are under Client.mu.
type orderState struct {
	settled int64       // highest end of a block sent more than levelLag ago
	recent  []sentBlock // blocks sent within levelLag, by send time
}

type sentBlock struct {
	sent time.Time
	hi   int64
}

// level is the sequence number a block sent now must start above.
func (o *orderState) level(now time.Time, cfg Config) int64 {
	if !cfg.ordered() {
		return o.settled
	}
	cut := now.Add(-cfg.levelLag())
	k := 0
	for k < len(o.recent) && o.recent[k].sent.Before(cut) {
		o.settled = max(o.settled, o.recent[k].hi)
		k++
	}
	o.recent = o.recent[k:]
	return o.settled
}

// add records a block sent at sent and ending at hi (in its shard's counter,
// which other processes' levels have pulled up too).
func (o *orderState) add(sent time.Time, hi int64, cfg Config) {
	if !cfg.ordered() {
		return
	}
	i := len(o.recent)
	for i > 0 && o.recent[i-1].sent.After(sent) { // concurrent strict calls may finish out of order
		i--
	}
	o.recent = slices.Insert(o.recent, i, sentBlock{sent: sent, hi: hi})
}
