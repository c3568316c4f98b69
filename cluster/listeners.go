package cluster

import (
	"maps"
	"slices"
	"sync"
)

// listeners are the functions registered to hear of one kind of event
// (probe rounds, new topologies).
type listeners[T any] struct {
	mu   sync.Mutex
	fns  map[int]func(T)
	next int
}

// add registers fn; the returned function removes it.
func (l *listeners[T]) add(fn func(T)) (remove func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fns == nil {
		l.fns = make(map[int]func(T))
	}
	id := l.next
	l.next++
	l.fns[id] = fn
	return func() {
		l.mu.Lock()
		delete(l.fns, id)
		l.mu.Unlock()
	}
}

// call calls every registered function with v, on this goroutine, outside
// the lock (a listener may remove itself).
func (l *listeners[T]) call(v T) {
	l.mu.Lock()
	fns := slices.Collect(maps.Values(l.fns))
	l.mu.Unlock()
	for _, fn := range fns {
		fn(v)
	}
}
