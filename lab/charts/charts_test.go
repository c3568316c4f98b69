package charts_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/shardseq/shardseq/internal/lab/bench"
	"github.com/shardseq/shardseq/lab/charts"
)

// TestWrite draws the charts of BENCHMARKS.md from the reports checked in
// under docs/bench (no cluster needed).
func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		report string
		want   string
	}{
		{"main.json", charts.ThroughputPNG},
		{"fault-rate.json", charts.FailoverLatencyPNG},
	} {
		b, err := os.ReadFile(filepath.Join("..", "..", "docs", "bench", tc.report))
		if err != nil {
			t.Fatal(err)
		}
		var rep bench.Report
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		files, err := charts.Write(&rep, dir)
		if err != nil || len(files) != 1 || files[0] != filepath.Join(dir, tc.want) {
			t.Fatalf("%s: wrote %v: %v", tc.report, files, err)
		}
		if st, err := os.Stat(files[0]); err != nil || st.Size() < 1000 {
			t.Fatalf("%s: %v %v", files[0], st, err)
		}
	}
}
