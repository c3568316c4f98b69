//go:build integration && chaos

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/internal/lab/chaos"
	"github.com/shardseq/shardseq/internal/lab/checker"
)

// The long run behind docs/CORRECTNESS.md (`make chaos-long`, not in CI):
// >= 60 mixed faults, >= 20 of them rewinds and double faults, >= 20,000,000
// IDs, a fresh `shardseq serve` after every fault, no ID twice; what each
// kind of fault cost, as a table.
func TestChaosLong_MixedFaults(t *testing.T) {
	c := startCluster(t, Opts{Partitions: true})
	base, restart := freshServe(t, c, 12)
	faults := chaosFaults(t, 60)
	var costs []chaos.FaultCost
	rep, err := chaos.Run(context.Background(), chaos.Config{
		Seeds: c.Addrs(), Local: c.Local(),
		Faults:      faults,
		Namespace:   "long",
		Shards:      12,
		Callers:     12,
		HTTP:        []string{base},
		AfterFault:  restart,
		MinIDs:      20_000_000,
		MaxDuration: 55 * time.Minute,
		CallRate:    10_000, // ~150k IDs/s in all: memory for every ID stays a few GB
		Client:      client.Config{Logger: quiet()},
		Costs:       &costs,
		Logf:        t.Logf,
	})
	t.Logf("report:\n%s", rep)
	table := costTable(costs)
	t.Logf("what each fault cost:\n%s", table)
	if out := os.Getenv("SHARDSEQ_CHAOS_REPORT"); out != "" {
		b, _ := json.MarshalIndent(struct {
			Report checker.Report    `json:"report"`
			Costs  []chaos.FaultCost `json:"costs"`
		}{rep, costs}, "", "  ")
		_ = os.WriteFile(out, b, 0o644)
		_ = os.WriteFile(strings.TrimSuffix(out, ".json")+".md", []byte(table), 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("IDs handed out twice: %s", rep)
	}
	rewinds := 0
	for _, f := range faults[:rep.Faults] {
		if chaos.IsRewind(f) {
			rewinds++
		}
	}
	if rep.Faults < 60 || rewinds < 20 || rep.Acknowledged < 20_000_000 {
		t.Fatalf("too small a run: %d faults (%d rewinds), %d IDs", rep.Faults, rewinds, rep.Acknowledged)
	}
}

// costTable sums the costs per kind of fault, as a Markdown table.
func costTable(costs []chaos.FaultCost) string {
	by := map[chaos.Fault][]chaos.FaultCost{}
	for _, c := range costs {
		by[c.Fault] = append(by[c.Fault], c)
	}
	var b strings.Builder
	b.WriteString("| fault | count | seconds (mean) | failed calls (mean): library / HTTP | sequence numbers skipped (median / max) |\n|---|---|---|---|---|\n")
	for _, f := range chaos.Faults {
		cs := by[f]
		if len(cs) == 0 {
			continue
		}
		var secs, lib, web float64
		var skipped []int64
		for _, c := range cs {
			secs += c.Seconds
			lib += float64(c.LibraryErrors)
			web += float64(c.HTTPErrors)
			skipped = append(skipped, c.Skipped)
		}
		slices.Sort(skipped)
		n := float64(len(cs))
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.0f / %.0f | %d / %d |\n", f, len(cs), secs/n, lib/n, web/n, skipped[len(skipped)/2], skipped[len(skipped)-1])
	}
	return b.String()
}
