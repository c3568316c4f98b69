package server

import (
	"container/list"
	"sync"
	"sync/atomic"
)

// Reopening a namespace (after an idle close, an LRU eviction or a DELETE
// then PUT) reads its level from Redis, and that level leaves out shards
// that cannot be checked at that moment (namespace.Namespace.Level): if the
// last IDs before the close came from such a shard, the reopened namespace
// would answer below them. So the server remembers, per namespace, the
// highest ID its closed clients reserved, and opens the next client above it
// (client.Config.After).

// maxRemembered bounds the names remembered: a name closed longer ago than
// the last maxRemembered closes of other names is forgotten, and its reopen
// is ordered only by the level read from Redis. At ~100 bytes a name, 6 MB.
const maxRemembered = 1 << 16

// noReopenFloor switches the memory off: the negative control of
// TestReopenAboveHandedOut. Never set outside tests.
var noReopenFloor atomic.Bool

// closedHighs is the memory: name -> highest ID reserved, least recently
// closed first.
type closedHighs struct {
	mu    sync.Mutex
	max   int
	byKey map[string]*list.Element
	order *list.List // of *closedHigh, least recently closed at the front
}

type closedHigh struct {
	name string
	hi   int64
}

func newClosedHighs(max int) *closedHighs {
	return &closedHighs{max: max, byKey: map[string]*list.Element{}, order: list.New()}
}

// closed records that a client of name closed having reserved IDs up to hi.
func (c *closedHighs) closed(name string, hi int64) {
	if hi <= 0 || noReopenFloor.Load() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[name]; ok {
		h := el.Value.(*closedHigh)
		h.hi = max(h.hi, hi)
		c.order.MoveToBack(el)
		return
	}
	c.byKey[name] = c.order.PushBack(&closedHigh{name: name, hi: hi})
	for c.order.Len() > c.max {
		front := c.order.Front()
		delete(c.byKey, front.Value.(*closedHigh).name)
		c.order.Remove(front)
	}
}

// above is the ID a new client of name must hand out only IDs above: the
// highest its closed clients reserved, or 0.
func (c *closedHighs) above(name string) int64 {
	if noReopenFloor.Load() {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.byKey[name]; ok {
		return el.Value.(*closedHigh).hi
	}
	return 0
}
