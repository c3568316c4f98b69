package namespace_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

const portFresh = 7270

// TestPausedCreatorLateCopy (issue 19, item 3): creator L1 writes a shard's
// counter and ceiling copy c0 and stalls before c1. L2 opens the namespace,
// finds the shard started (c0 exists), finishes the creation and marks it
// ready; traffic raises the shard to S, which creates c1 (untrusted) and
// repairs it. c1's master C restarts empty (real restart). L1 wakes and
// creates c1 at the first value, trusted under C's new identity. Then the
// counter's master A and c0's master B restart from dumps taken before the
// traffic: the restore trusts c1 only. With the creation-freshness guard,
// L2 does not mark the namespace ready before L1's deadline has passed, and
// L1's late create is refused by C (ErrCreationLate): the restore finds no
// trusted copy and refuses (ErrCeilingLost), or continues above S; no ID
// repeats. The negative control switches the guard off: the shard restarts
// below S.
func TestPausedCreatorLateCopy(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portFresh})
	cl := lc.Dial(cluster.Config{})
	// Short deadlines keep the test short; the waits are what is tested.
	namespace.SetCreationTTL(t, 1500*time.Millisecond, 300*time.Millisecond)

	run := func(t *testing.T, name string, guarded bool) {
		// L1 stalls before its second ceiling copy until resumed.
		l1, resume := stalledCreator(t, cl, name, 3, "second ceiling copy")
		started := time.Now()
		l2, err := namespace.Open(ctx10(t), cl, name, namespace.Settings{}, shard.Options{})
		if err != nil {
			close(resume)
			t.Fatalf("L2 open: %v", err)
		}
		t.Logf("L2 marked the namespace ready after %v", time.Since(started))
		s := l2.Shards[0]
		a, b, c := lc.MasterOf(s.Key), lc.MasterOf(s.CeilingKeys[0]), lc.MasterOf(s.CeilingKeys[1])
		if a == b || b == c || a == c {
			close(resume)
			t.Fatalf("layout not on three masters: %s %s %s", a, b, c)
		}
		// Dumps of A and B before any traffic.
		lc.Save(a)
		lc.Save(b)

		// Traffic raises the shard past its first lease: c1 is created by
		// the raise (untrusted) and repaired.
		var handed int64
		for range 4 {
			blk, err := s.Reserve(ctx10(t), 10_000, 0)
			if err != nil {
				close(resume)
				t.Fatalf("reserve: %v", err)
			}
			handed = blk.Hi
		}
		clustertest.Eventually(t, 10*time.Second, func() error {
			res, err := s.Repair(ctx10(t))
			if err == nil && res.Copies > 0 {
				return errors.New("a copy was repaired just now; check again")
			}
			return err
		})
		if !exists(t, cl, s.CeilingKeys[1]) {
			close(resume)
			t.Fatal("c1 not created by the traffic")
		}

		// C restarts empty, then L1 wakes and creates c1.
		lc.RestartEmpty(c)
		lc.WaitHealthy(30 * time.Second)
		close(resume)
		err = <-l1
		switch {
		case guarded && !errors.Is(err, shard.ErrCreationLate):
			t.Fatalf("L1's late creation: %v, want ErrCreationLate", err)
		case guarded && exists(t, cl, s.CeilingKeys[1]):
			t.Fatal("L1's late creation wrote c1")
		case !guarded && !exists(t, cl, s.CeilingKeys[1]):
			t.Fatalf("negative control: L1 did not write c1 (%v)", err)
		}

		// A and B restart from their dumps: the counter and c0 rewind.
		lc.RestartFromFiles(a)
		lc.WaitHealthy(30 * time.Second)
		lc.RestartFromFiles(b)
		lc.WaitHealthy(30 * time.Second)

		fresh := open(t, cl, name)
		var blk shard.Block
		clustertest.Eventually(t, 20*time.Second, func() error {
			var err error
			blk, err = fresh.Shards[0].Reserve(ctx10(t), 100, 0)
			if errors.Is(err, shard.ErrCeilingLost) {
				return nil
			}
			return err
		})
		switch {
		case guarded && blk.Hi != 0 && blk.Lo <= handed:
			t.Fatalf("after the rewinds the shard hands out %d..%d again (handed out up to %d)", blk.Lo, blk.Hi, handed)
		case guarded:
			t.Logf("after the rewinds: block %d..%d (0..0: refused, no trusted copy), handed out up to %d", blk.Lo, blk.Hi, handed)
		case blk.Hi == 0 || blk.Lo > handed:
			t.Fatalf("negative control: block %d..%d after the rewinds, want one at or below %d", blk.Lo, blk.Hi, handed)
		default:
			t.Logf("negative control: block %d..%d repeats IDs handed out up to %d", blk.Lo, blk.Hi, handed)
		}
	}
	t.Run("Guarded", func(t *testing.T) { run(t, "fresh-guarded", true) })
	t.Run("NegativeControl", func(t *testing.T) {
		namespace.SkipFreshness(t)
		run(t, "fresh-control", false)
	})
}

// stalledCreator starts L1, a creation of name with one shard that stalls
// at its n-th key write (see pauseCreator), and returns once it stalled:
// L1's result comes on l1 after resume is closed.
func stalledCreator(t *testing.T, cl *cluster.Cluster, name string, n int32, what string) (l1 chan error, resume chan struct{}) {
	t.Helper()
	paused, resume := pauseCreator(t, n)
	l1 = make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := namespace.Open(ctx, cl, name, namespace.Settings{Shards: 1}, shard.Options{})
		l1 <- err
	}()
	select {
	case <-paused:
	case err := <-l1:
		t.Fatalf("L1 finished without stalling: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("L1 did not reach its " + what)
	}
	return l1, resume
}

// pauseCreator makes the n-th key write of the creations that follow (1:
// the first shard's counter; with one shard, 2 and 3: its ceiling copies)
// wait until resume is closed; paused is closed when it does.
func pauseCreator(t *testing.T, n int32) (paused, resume chan struct{}) {
	paused, resume = make(chan struct{}), make(chan struct{})
	var writes atomic.Int32
	namespace.BeforeCreate(t, func(string) {
		if writes.Add(1) == n {
			close(paused)
			<-resume
		}
	})
	return paused, resume
}

// TestPausedCreatorLateCounter: the limit CORRECTNESS.md called "a creator
// paused for the lifetime of a namespace". L1 reads a shard's keys as
// absent and stalls before it writes the counter; L2 creates the shard and
// marks the namespace ready; traffic; the counter's master restarts empty
// (real restart); L1 wakes. Guarded, its counter create is refused and the
// next reservation restores the counter above its ceiling. The negative
// control (guard off) writes the counter at its first value: the shard hands
// out its first IDs again, with no other fault.
func TestPausedCreatorLateCounter(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portFresh + 10})
	cl := lc.Dial(cluster.Config{})
	namespace.SetCreationTTL(t, 1500*time.Millisecond, 300*time.Millisecond)

	run := func(t *testing.T, name string, guarded bool) {
		l1, resume := stalledCreator(t, cl, name, 1, "counter")
		resumed := false
		defer func() {
			if !resumed {
				close(resume)
			}
		}()
		l2, err := namespace.Open(ctx10(t), cl, name, namespace.Settings{}, shard.Options{})
		if err != nil {
			t.Fatalf("L2 open: %v", err)
		}
		s := l2.Shards[0]
		var handed int64
		for range 4 {
			blk, err := s.Reserve(ctx10(t), 10_000, 0)
			if err != nil {
				t.Fatalf("reserve: %v", err)
			}
			handed = blk.Hi
		}
		lc.RestartEmpty(lc.MasterOf(s.Key))
		lc.WaitHealthy(30 * time.Second)
		resumed = true
		close(resume)
		err = <-l1
		switch {
		case guarded && !errors.Is(err, shard.ErrCreationLate):
			t.Fatalf("L1's late creation: %v, want ErrCreationLate", err)
		case guarded && exists(t, cl, s.Key):
			t.Fatal("L1's late creation wrote the counter")
		case !guarded && !exists(t, cl, s.Key):
			t.Fatalf("negative control: L1 did not write the counter (%v)", err)
		}
		fresh := open(t, cl, name)
		var blk shard.Block
		clustertest.Eventually(t, 20*time.Second, func() error {
			var err error
			blk, err = fresh.Shards[0].Reserve(ctx10(t), 100, 0)
			return err
		})
		switch {
		case guarded && blk.Lo <= handed:
			t.Fatalf("after the late creation the shard hands out %d..%d again (handed out up to %d)", blk.Lo, blk.Hi, handed)
		case !guarded && blk.Lo > handed:
			t.Fatalf("negative control: block %d..%d, want one at or below %d", blk.Lo, blk.Hi, handed)
		}
		t.Logf("guarded=%v: block %d..%d after the late creation, handed out up to %d", guarded, blk.Lo, blk.Hi, handed)
	}
	t.Run("Guarded", func(t *testing.T) { run(t, "late-counter", true) })
	t.Run("NegativeControl", func(t *testing.T) {
		namespace.SkipFreshness(t)
		run(t, "late-counter-control", false)
	})
}
