package shard

import (
	"sync"
	"testing"
)

// Hooks for the tests of package shard_test.

// SkipCeilingTouch lets a ceiling raise or repair that changed nothing write
// nothing (so its WAIT is acknowledged at once) until the test ends: the
// negative control of the rewrite in lua/ceiling.lua.
func SkipCeilingTouch(t testing.TB) {
	noTouch.Store(true)
	t.Cleanup(func() { noTouch.Store(false) })
}

// SkipStillSame lets a block stand although its counter changed history
// while its ceiling was raised, until the test ends: the negative control of
// the check after a raise.
func SkipStillSame(t testing.TB) {
	noStillSame.Store(true)
	t.Cleanup(func() { noStillSame.Store(false) })
}

// StallBeforeRaise makes the next reservation that needs a ceiling raise
// stop between its reservation and the raise (a GC pause, a SIGSTOP) until
// the test closes release; reached is closed when it stops.
func StallBeforeRaise(t testing.TB) (reached <-chan struct{}, release chan<- struct{}) {
	reach, rel := make(chan struct{}), make(chan struct{})
	var once sync.Once
	h := func() {
		stall := false
		once.Do(func() { stall = true })
		if stall {
			close(reach)
			<-rel
		}
	}
	beforeRaise.Store(&h)
	t.Cleanup(func() {
		beforeRaise.Store(nil)
		select {
		case <-rel:
		default:
			close(rel)
		}
	})
	return reach, rel
}
