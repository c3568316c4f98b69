//go:build integration

package integration

import (
	"testing"
	"time"

	"github.com/shardseq/shardseq/internal/lab/checker"
)

// unsafePickerEnv makes `shardseq serve` walk a namespace's shards one
// after another (the picker before issue 22), for the negative control only.
const unsafePickerEnv = "SHARDSEQ_UNSAFE_PICKER"

// The negative control of the picker (issue 22): with one master's replica
// frozen, WAIT falls short on that master. The old picker (a sequential walk
// over the shards, SHARDSEQ_UNSAFE_PICKER=sequential) tries that master's
// consecutive shards one after another, each waiting the ack timeout, and
// uses up the request budget: callers see errors. The picker with
// per-master health tries a bad master once: no error. Both servers run at
// once over one cluster, each with its own namespace and 8 HTTP callers,
// through the same three 2 s freezes, and neither holds spares
// (SHARDSEQ_HOLD_FOR=0), which would carry callers through the blips and
// hide what the picker does.
func TestPicker_SequentialShowsBlips(t *testing.T) {
	c := startCluster(t, Opts{})
	bin := buildShardseq(t)
	seqListen, newListen := freePort(t), freePort(t)
	startServe(t, bin, c, seqListen, 12, unsafePickerEnv+"=sequential", "SHARDSEQ_HOLD_FOR=0")
	startServe(t, bin, c, newListen, 12, "SHARDSEQ_HOLD_FOR=0")
	seqCk, newCk := checker.New().WithShards(12), checker.New().WithShards(12)
	stop := make(chan struct{})
	waitSeq := orderLoad(t, func(int) string { return "http://" + seqListen }, "picker-seq", 8, seqCk, stop)
	waitNew := orderLoad(t, func(int) string { return "http://" + newListen }, "picker-new", 8, newCk, stop)
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
			waitSeq()
			waitNew()
		}
	}
	defer stopLoad()
	<-runFor(3 * time.Second) // both namespaces open and in use
	for k := range 3 {
		m := c.Masters()[k%3]
		r := c.ReplicasOf(m)[0]
		c.Pause(r)
		<-runFor(2 * time.Second) // the freeze's intended length
		c.Resume(r)
		c.WaitHealthy(30 * time.Second)
		t.Logf("froze replica %s of %s for 2 s", r, m)
		<-runFor(2 * time.Second)
	}
	stopLoad()
	seq, cur := seqCk.Report(), newCk.Report()
	t.Logf("sequential picker: %s", seq)
	t.Logf("default picker: %s", cur)
	if !seq.OK() || !cur.OK() {
		t.Fatal("duplicates")
	}
	if seq.Errors == 0 {
		t.Errorf("the sequential picker must show the blips (errors while a replica is frozen); the fault or the knob is broken")
	}
	if cur.Errors != 0 {
		t.Errorf("the default picker: %d errors while a replica was frozen (last: %s); want none", cur.Errors, cur.LastError)
	}
}
