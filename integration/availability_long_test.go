//go:build integration && chaos

package integration

import (
	"testing"
	"time"

	"github.com/shardseq/shardseq/internal/lab/chaos"
)

// TestAvailability at Redis's default node timeout (15 s) with full
// coverage: kill -9 of a master only. It takes ~1 min (the FAIL flag alone
// takes 15-30 s), so it runs with the long chaos run (`make chaos-long`, the
// chaos tag), not in CI's `make test`.
func TestAvailabilityNodeTimeout15s(t *testing.T) {
	availability(t, availabilityCase{
		opts:    Opts{FullCoverage: true, NodeTimeout: 15 * time.Second},
		faults:  []chaos.Fault{chaos.KillMaster},
		servers: 1,
	})
}
