//go:build integration

package integration

import (
	"io"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shardseq/shardseq/internal/lab/checker"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
)

// Issue 22: a process that stalls does not serve stale order. `shardseq
// serve` is frozen (SIGSTOP) for 2.5 s six times in 30 s under 16 HTTP
// callers (half ask for one ID, half for 50): after each pause it must not
// hand out IDs from blocks that should have retired while it was stopped,
// so no answer is an inversion at W = 1 s (the order measure of
// order_test.go: request send times and answer times, this process's clock).
// Whether a stale block serves first after a pause is a race: three pauses
// in 30 s caught it in 1 of 2 runs here (2 of 5 in the issue), nine in 45 s
// every time; six keep the run at 30 s.
func TestStall_ServeFrozenKeepsOrder(t *testing.T) {
	c := startCluster(t, Opts{})
	rep := stallServe(t, c, stallPlan{pauses: 6, stop: 2500 * time.Millisecond, between: 2500 * time.Millisecond}).rep
	if rep.Inversions != 0 {
		t.Fatalf("%d inversions at W=%v after the pauses (largest step back %d, no inversion for W >= %v); want none",
			rep.Inversions, orderWindow, rep.MaxBackStep, rep.WindowNeeded)
	}
}

// A reservation in flight when the process stops times out the moment it
// runs again: its deadline passed while it was stopped. That says nothing of
// Redis, so it must not mark the master down or send callers to spare IDs
// (out of order) after the stop; CI caught this once in
// TestStall_ServeFrozenKeepsOrder (25 inversions, "no shard served within
// 1s"). Here each stop is made to catch a reservation in flight: every
// master is frozen for 150 ms (less than the 350 ms a caller waits before it
// takes a spare), serve is stopped meanwhile, the masters thaw, and serve
// runs again 2 s later, with and without lease callers (a
// lease's own deadline passes during the stop; no master may be held at
// fault for it). With the defence no ID is handed out of order around the
// stops and no lease is refused for want of a master; the control
// (SHARDSEQ_UNSAFE_STALLS=ignore) hands out spares after the stops.
func TestStall_ServeFrozenDuringReservation(t *testing.T) {
	c := startCluster(t, Opts{})
	plan := stallPlan{pauses: 3, stop: 2 * time.Second, between: 1500 * time.Millisecond, freezeMasters: 150 * time.Millisecond}
	leases := plan
	leases.leaseCallers = 12
	for _, tc := range []struct {
		name string
		plan stallPlan
	}{{"2s-stops", plan}, {"2s-stops-with-leases", leases}} {
		t.Run(tc.name, func(t *testing.T) {
			st := stallServe(t, c, tc.plan)
			if st.aroundStops != 0 {
				t.Errorf("%v IDs handed out of order (%s) within 500 ms of the stops; want none", st.aroundStops, outOfOrderMetric)
			}
			if st.noMaster != 0 {
				t.Errorf("%d lease requests answered \"no shard can serve\" after the stops: healthy masters were held at fault", st.noMaster)
			}
			// Spares outside the stops (a refill slower than the patience on
			// a loaded machine) explain inversions; none may come without.
			if st.outOfOrder == 0 && st.rep.Inversions != 0 {
				t.Errorf("%d inversions at W=%v with no ID handed out of order; want none", st.rep.Inversions, orderWindow)
			}
		})
	}
	t.Run("control", func(t *testing.T) {
		plan := plan
		plan.env = []string{"SHARDSEQ_UNSAFE_STALLS=ignore"}
		st := stallServe(t, c, plan)
		t.Logf("control: %v IDs out of order around the stops, %d inversions", st.aroundStops, st.rep.Inversions)
		if st.aroundStops == 0 {
			t.Fatal("control: with stalls taken for Redis faults no ID went out of order after the stops; the test does not catch a reservation in flight")
		}
	})
}

type stallPlan struct {
	pauses        int
	stop          time.Duration // how long serve is stopped each time
	between       time.Duration // load between stops
	freezeMasters time.Duration // >0: every master frozen this long before serve stops, thawed while it is stopped
	leaseCallers  int           // callers asking for leases (of 10 IDs) on another namespace meanwhile
	env           []string
}

// stallResult is what stallServe measured.
type stallResult struct {
	rep         checker.Report
	outOfOrder  float64 // the server's count of IDs handed out of order, in all
	aroundStops float64 // of those, from just before each freeze to 500 ms after serve ran again
	noMaster    int64   // lease requests refused for want of a master
}

// stallServe runs `shardseq serve` under 16 HTTP callers (half ask for one
// ID, half for 50) and stops it plan.pauses times; it fails the test on a
// repeated ID or too little load.
func stallServe(t *testing.T, c *clustertest.Cluster, plan stallPlan) stallResult {
	t.Helper()
	bin := buildShardseq(t)
	listen := freePort(t)
	serve := startServe(t, bin, c, listen, 12, plan.env...)
	t.Cleanup(func() { _ = serve.Process.Signal(syscall.SIGCONT) }) // never leave it stopped
	url := "http://" + listen
	ck := checker.New().WithShards(12).WithOrder(orderWindow)
	stop := make(chan struct{})
	wait := orderLoad(t, func(int) string { return url }, "stalled", 16, ck, stop)
	var noMaster atomic.Int64
	var lwg sync.WaitGroup
	for range plan.leaseCallers {
		hc := &http.Client{Timeout: 5 * time.Second}
		lwg.Go(func() {
			callUntil(stop, func() {
				resp, err := hc.Post(url+"/v1/leases/leased?count=10", "", nil)
				if err != nil {
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(body), "no shard of the namespace can serve") {
					noMaster.Add(1)
				}
			})
		})
	}
	stopLoad := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wait()
			lwg.Wait()
		}
	}
	defer stopLoad()
	<-runFor(2 * time.Second) // steady state first
	var around float64
	for k := range plan.pauses {
		before, _ := metricSum(t, url, outOfOrderMetric)
		stallOnce(t, c, serve, plan)
		<-runFor(500 * time.Millisecond)
		after, _ := metricSum(t, url, outOfOrderMetric)
		around += after - before
		t.Logf("pause %d: serve (pid %d) stopped %v; %v IDs out of order around it", k+1, serve.Process.Pid, plan.stop, after-before)
		<-runFor(plan.between - 500*time.Millisecond)
	}
	stopLoad()
	rep := ck.Report()
	t.Logf("report: %s", rep)
	switch {
	case !rep.OK():
		t.Fatalf("duplicates: %s", rep)
	case rep.Acknowledged < 10_000:
		t.Fatalf("too little load to mean anything: %d IDs", rep.Acknowledged)
	}
	if rep.Errors > 0 {
		t.Logf("not asserted: %d failed requests across the pauses (last: %s)", rep.Errors, rep.LastError)
	}
	outOfOrder, ok := metricSum(t, url, outOfOrderMetric)
	if !ok {
		t.Fatalf("serve exports no %s", outOfOrderMetric)
	}
	return stallResult{rep: rep, outOfOrder: outOfOrder, aroundStops: around, noMaster: noMaster.Load()}
}

// stallOnce stops serve for plan.stop; with plan.freezeMasters, every master
// is frozen first so that serve stops with reservations in flight.
func stallOnce(t *testing.T, c *clustertest.Cluster, serve *exec.Cmd, plan stallPlan) {
	t.Helper()
	var frozen []string
	if plan.freezeMasters > 0 {
		frozen = c.Masters()
		for _, m := range frozen {
			c.Pause(m)
		}
		<-runFor(plan.freezeMasters) // the fault's intended length
	}
	if err := serve.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	for _, m := range frozen {
		c.Resume(m)
	}
	<-runFor(plan.stop) // the stall's intended length
	if err := serve.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
}
