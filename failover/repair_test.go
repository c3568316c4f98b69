package failover

import (
	"testing"

	"github.com/shardseq/shardseq/shard"
)

// The negative controls repair only when a namespace is opened: StartRepairs
// starts nothing for them (it does not touch the connection), and Stop and
// Report work all the same, more than once and on nil.
func TestStartRepairsNegativeControlStartsNothing(t *testing.T) {
	for _, d := range []shard.Defences{shard.NoDefences, shard.LegacyDefences} {
		r := StartRepairs(nil, RepairConfig{Options: shard.Options{UnsafeDefences: d}})
		r.Stop()
		r.Stop()
		if sweeps, last := r.Report(); sweeps != 0 || !last.At.IsZero() {
			t.Errorf("%v: report %d %+v, want nothing", d, sweeps, last)
		}
	}
	var none *Repairs
	none.Stop()
	if sweeps, _ := none.Report(); sweeps != 0 {
		t.Errorf("nil Repairs reported %d sweeps", sweeps)
	}
}
