package shard

import (
	"strconv"
	"sync"

	"github.com/shardseq/shardseq/cluster"
)

// Traces (see namespace/traces.go): every slot that holds a counter or a
// ceiling copy of a namespace also holds the namespace's name in a set at a
// key of that very slot, so that a namespace whose record was lost can be
// recognised by its name. Package namespace writes them before it creates a
// namespace's keys; the scripts of this package write them whenever they
// create a key later (a counter restored, a ceiling copy claimed, raised or
// repaired where it was missing), in the same script, so that no key of a
// namespace ever exists without its slot's trace. One thing can part them: a
// slot migration moves keys one at a time, and its source can restart empty
// while a key has moved and the trace set has not. So every script that
// finds its key without the trace writes the trace again (retrace in
// lua/prelude.lua): a key in use is traced again by its next reservation,
// raise or repair once its slot is whole.

// traceTags holds, for each slot, a hash tag of that slot: the first of
// "0", "1", ... to land on it.
var traceTags = sync.OnceValue(func() []string {
	tags := make([]string, cluster.NumSlots)
	left := cluster.NumSlots
	for k := 0; left > 0; k++ {
		tag := strconv.Itoa(k)
		if s := cluster.Slot(tag); tags[s] == "" {
			tags[s] = tag
			left--
		}
	}
	return tags
})

// TraceKey is the key of the trace set of slot s: the names of the
// namespaces with a counter or a ceiling copy on slot s.
func TraceKey(s int) string { return "shardseq:names:{" + traceTags()[s] + "}" }

// withTrace is the keys of a script of this package on key: key, and the
// trace set of its slot (same slot, so one command may declare both).
func withTrace(key string) []string { return []string{key, TraceKey(cluster.Slot(key))} }

// traceName is what the scripts add to the trace set of a key they create:
// the namespace's name, or "" (nothing) for a shard without traces.
func (s *Shard) traceName() string {
	if s.opt.UnsafeDefences != AllDefences || s.noTraces {
		return ""
	}
	return s.name
}
