package client

import (
	"slices"
	"sync"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/namespace"
)

// Colocation is a shard whose counter and ceiling copies share a master
// (Client.Colocated): its keys, their slots, and the slots to move.
type Colocation = namespace.Colocation

// Colocated lists the namespace's shards whose keys share a master in the
// current topology. Keys never move, but slots do: after `redis-cli
// --cluster reshard` a counter and one of its ceiling copies, or both copies,
// can sit on one master, and then one rewind of that master can lose what
// the copies are there to keep (docs/CORRECTNESS.md). IDs are still handed
// out; the operator moves the slots named (Colocation.Move) to other masters.
// The client logs a warning when it opens the namespace with such shards and
// whenever a topology change makes or clears one.
func (c *Client) Colocated() []Colocation {
	return c.set.Namespace().Layout.Colocated(c.cl.Topology())
}

// colocationWatch logs the namespace's colocated shards when they change.
type colocationWatch struct {
	mu   sync.Mutex
	last []Colocation // what was logged last
}

// check logs what top changes about the namespace's colocated shards: a
// warning for each one when the set changed and is not empty, a note when it
// cleared.
func (c *Client) checkColocation(top *cluster.Topology) {
	got := c.set.Namespace().Layout.Colocated(top)
	w := &c.coloc
	w.mu.Lock()
	same := slices.EqualFunc(got, w.last, func(a, b Colocation) bool {
		return a.Shard == b.Shard && a.Master == b.Master && slices.Equal(a.Keys, b.Keys)
	})
	had := len(w.last) > 0
	w.last = got
	w.mu.Unlock()
	if same {
		return
	}
	for _, co := range got {
		c.log.Warn("shard keys share a master: a rewind of that master can lose the ceiling its copies keep; move the slots named",
			"namespace", c.cfg.Namespace, "shard", co.Shard, "master", co.Master, "keys", co.Keys, "slots", co.Slots,
			"move_slots", co.Move, "detail", co.String(), "generation", top.Generation)
	}
	if len(got) == 0 && had {
		c.log.Info("shard keys on distinct masters again", "namespace", c.cfg.Namespace, "generation", top.Generation)
	}
}
