//go:build integration

package integration

import (
	"cmp"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/internal/lab/chaos"
	"github.com/shardseq/shardseq/internal/lab/checker"
)

// rewindRun is one rewind scenario: long-lived library callers (they never
// reopen, so no Open repairs anything for them) and HTTP callers of a
// `shardseq serve` process that is killed and started afresh after every
// fault, so a new process with no memory of the old must also keep IDs
// unique. defences is the switch of the negative controls.
type rewindRun struct {
	opts     Opts
	faults   []chaos.Fault
	defences client.Defences
	minIDs   int64
	// longLivedControl keeps the library clients of the negative control
	// open for the whole run too: reopening would repair what the scenario
	// destroys (namespace records are repaired by Open under the old rules).
	longLivedControl bool
	// after is how long the negative control's load goes on after the
	// fault (default 8 s): what a rewind re-issues is handed out then, once
	// the rewound counter has climbed back over the range it lost.
	after time.Duration
}

// loadAfter is how long the load goes on after the fault.
func (r rewindRun) loadAfter() time.Duration {
	if r.defences == client.AllDefences {
		return 8 * time.Second
	}
	return cmp.Or(r.after, 8*time.Second)
}

// client is the library callers' configuration: the negative controls also
// turn time order off, since levelling the shards pulls a rewound counter up
// (as serve does under SHARDSEQ_UNSAFE_DEFENCES).
func (r rewindRun) client() client.Config {
	c := client.Config{UnsafeDefences: r.defences, Logger: quiet()}
	if r.defences != client.AllDefences {
		// The control isolates the fence: no levelling, and no spares,
		// whose large blocks would skip over a rewound counter's range by
		// luck (and never hand it out) and hide the hole.
		c.OrderWindow, c.HoldFor = -1, -1
	}
	return c
}

// restartEvery: with the defences on, library clients never reopen, so no
// Open repairs anything for them; in the negative controls they reopen every
// second, as fresh processes with no memory of the blocks they had (the
// memory that would refuse a counter that went backwards).
func (r rewindRun) restartEvery() time.Duration {
	if r.defences == client.AllDefences || r.longLivedControl {
		return -1
	}
	return time.Second
}

func (r rewindRun) run(t *testing.T) checker.Report {
	t.Helper()
	c := startCluster(t, r.opts)
	var env []string
	switch r.defences {
	case client.LegacyDefences:
		env = append(env, "SHARDSEQ_UNSAFE_DEFENCES=legacy", "SHARDSEQ_HOLD_FOR=0")
	case client.NoDefences:
		env = append(env, "SHARDSEQ_UNSAFE_DEFENCES=none", "SHARDSEQ_HOLD_FOR=0")
	}
	base, restart := freshServe(t, c, 3, env...)
	ns := "ids" // the namespace the HTTP callers use; 3 shards (startServe)
	rep, err := chaos.Run(context.Background(), chaos.Config{
		Seeds: c.Addrs(), Local: c.Local(),
		Faults:       r.faults,
		Namespace:    ns,
		Shards:       3,
		Callers:      4,
		RestartEvery: r.restartEvery(),
		HTTP:         []string{base},
		HTTPCallers:  4,
		HTTPBatch:    50,
		MinIDs:       scale(r.minIDs),
		MinDuration:  r.loadAfter(),
		MaxDuration:  4 * time.Minute,
		Client:       r.client(),
		AfterFault:   restart,
		Logf:         t.Logf,
	})
	t.Logf("report:\n%s", rep)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Faults != len(r.faults) {
		t.Fatalf("%d of %d faults injected", rep.Faults, len(r.faults))
	}
	return rep
}

// controlTries bounds the tries of a negative control. Three were too few:
// a CI rehearsal's stale-master-and-replica control repeated no ID in three
// tries, where it usually does on the first.
const controlTries = 5

// Each scenario gives 0 duplicates with every defence on, and its negative
// control (the fence from the counter's own value, namespace repairs only in
// Open, acks counted from connected replicas: the behaviour before the
// rewinds issue) shows duplicates, so the scenario is one that breaks a
// generator.
func TestRewind(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  rewindRun
	}{
		{"promoted-stale-restart", rewindRun{faults: []chaos.Fault{chaos.PromotedStaleRestart}, minIDs: 200_000}},
		{"rolling-empty", rewindRun{faults: []chaos.Fault{chaos.RollingEmpty}, minIDs: 200_000, longLivedControl: true}},
		{"stale-master-and-replica", rewindRun{faults: []chaos.Fault{chaos.StaleMasterAndReplica}, minIDs: 200_000}},
		// Two replicas per master: with one, even the old rule waits for one
		// ack, and a master with no replica left refuses anyway.
		{"dropped-replica-force", rewindRun{opts: Opts{Partitions: true, Replicas: 2},
			// The stale replica lost the blocks of the whole cut and
			// switch-over; climbing back over them takes longer.
			faults: []chaos.Fault{chaos.DroppedReplicaForce}, minIDs: 200_000, after: 30 * time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := tc.run.run(t)
			if !rep.OK() {
				t.Fatalf("IDs handed out twice: %s", rep)
			}
		})
		t.Run(tc.name+"/negative-control", func(t *testing.T) {
			r := tc.run
			r.defences = client.LegacyDefences
			// Whether the old rules repeat depends on timing (which counter
			// a caller touches first after the fault), so the hole must
			// show within a few tries; each try is a new cluster.
			for try := 1; try <= controlTries; try++ {
				var rep checker.Report
				t.Run(fmt.Sprintf("try-%d", try), func(t *testing.T) { rep = r.run(t) })
				if rep.Duplicated > 0 {
					t.Logf("the old rules repeated %d IDs on try %d", rep.Duplicated, try)
					return
				}
			}
			t.Fatalf("the old behaviour repeated no ID in %d tries of this scenario, so the scenario proves nothing", controlTries)
		})
	}
}
