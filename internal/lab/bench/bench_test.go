package bench

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
)

// Ports of this package's tests: 7520-7529 (bus ports +10000).
const portTest = 7520

func TestHist(t *testing.T) {
	h := newHist(7)
	for v := 1; v <= 100000; v++ {
		h.record(time.Duration(v))
	}
	for _, q := range []float64{0.5, 0.99, 0.999} {
		got, want := float64(h.quantile(q)), q*100000
		if got < want*0.98 || got > want*1.02 {
			t.Errorf("quantile(%v) = %v, want about %v", q, got, want)
		}
	}
	if h.quantile(1) != 100000 {
		t.Errorf("max quantile %v", h.quantile(1))
	}
}

// TestRun runs every mode briefly on a launched cluster.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not in PATH; install it: apt-get install redis-server (Debian)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{Launch: true, Port: portTest, Dir: t.TempDir(), Duration: time.Second, Shards: 6, Concurrency: 4,
		Progress: tLogWriter{t}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != len(AllModes) {
		t.Fatalf("%d results, want %d", len(rep.Results), len(AllModes))
	}
	// Only that every mode produced IDs: on a loaded machine (-race, other
	// packages' clusters) a Redis call can time out now and then, and a mode
	// given 200 ms once produced none: each gets a second.
	for _, r := range rep.Results {
		if r.IDs == 0 {
			t.Errorf("%s: no IDs, %d errors (%s)", r.Mode, r.Errors, r.Note)
		}
	}
	var b bytes.Buffer
	if err := rep.WriteTable(&b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), ModeSegment) {
		t.Fatalf("table:\n%s", b.String())
	}
	t.Logf("\n%s", b.String())
}

// tLogWriter sends the run's progress lines to the test log, shown when it
// fails (or with -v).
type tLogWriter struct{ t *testing.T }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// TestRunGenerators measures an in-process generator with no cluster.
func TestRunGenerators(t *testing.T) {
	var n atomic.Int64
	count := Generator{Name: "counter", Note: "an atomic add", New: func() (func() error, error) {
		return func() error { n.Add(1); return nil }, nil
	}}
	rep, err := RunGenerators(context.Background(), Config{Duration: 100 * time.Millisecond}, []Generator{count})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Mode != "counter" || rep.Results[0].IDs != n.Load() || rep.Results[0].IDs == 0 ||
		rep.Results[0].RoundTrips != -1 || rep.Cluster != "" {
		t.Fatalf("report %+v", rep)
	}
	failing := Generator{Name: "broken", New: func() (func() error, error) { return nil, errors.New("no machine ID") }}
	if _, err := RunGenerators(context.Background(), Config{Duration: 100 * time.Millisecond}, []Generator{failing}); err == nil {
		t.Fatal("a generator that cannot start: no error")
	}
}

func TestConfigErrors(t *testing.T) {
	for _, c := range []Config{
		{},
		{Redis: cluster.Config{Addrs: []string{"x:1"}}, Fault: "kill-master"},
		{Launch: true, Fault: "nope"},
		{Launch: true, Modes: []string{"nope"}},
		{Launch: true, Duration: time.Millisecond},
		{Launch: true, Port: 50000},
	} {
		if _, err := c.withCluster(); err == nil {
			t.Errorf("%+v: no error", c)
		}
	}
}
