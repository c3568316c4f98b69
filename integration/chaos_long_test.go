//go:build integration && chaos

package integration

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/internal/chaos"
)

// The long run behind docs/CORRECTNESS.md (`make chaos-long`, not in CI):
// >= 50 mixed faults and >= 20,000,000 IDs, no ID twice.
func TestChaosLong_MixedFaults(t *testing.T) {
	c := startCluster(t, Opts{Partitions: true})
	rep, err := chaos.Run(context.Background(), chaos.Config{
		Seeds: c.Addrs(), Local: c.Local(),
		Faults:      chaosFaults(t, 60),
		Shards:      12,
		Callers:     12,
		MinIDs:      20_000_000,
		MaxDuration: 50 * time.Minute,
		CallRate:    10_000, // ~150k IDs/s in all: memory for every ID stays a few GB
		Client:      client.Config{Logger: quiet()},
		Logf:        t.Logf,
	})
	t.Logf("report:\n%s", rep)
	if out := os.Getenv("SHARDSEQ_CHAOS_REPORT"); out != "" {
		b, _ := json.MarshalIndent(rep, "", "  ")
		_ = os.WriteFile(out, b, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("IDs handed out twice: %s", rep)
	}
	if rep.Faults < 50 || rep.Acknowledged < 20_000_000 {
		t.Fatalf("too small a run: %d faults, %d IDs", rep.Faults, rep.Acknowledged)
	}
}
