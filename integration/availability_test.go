//go:build integration

package integration

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/internal/lab/chaos"
	"github.com/shardseq/shardseq/internal/lab/checker"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// outOfOrderMetric counts the answers a server hands out below what it
// already answered more than the order window before: only while no
// reservation can succeed for longer than 0.4 W (issue 22). Until a server
// exports it, the availability tests report inversions without failing.
const outOfOrderMetric = "shardseq_ids_out_of_order_total"

// Issue 22: callers of a namespace open and in use before a single fault see
// no error through it, at Redis's and Valkey's defaults
// (cluster-require-full-coverage yes) as well as with the recommended "no",
// node-timeout 2 s (and 15 s, Redis's default, for kill -9): 16 HTTP
// callers of `shardseq serve` (half ask for one ID, half for 50) and 4
// library callers (segment mode, one client each, opened before the faults), through kill -9 of a master, a 2 s
// cluster-wide CLUSTERDOWN, a master frozen past node-timeout, a frozen and
// a lagging replica, a replica cut from its master (needs iptables) and a
// master restarted empty. Each fault ends once the cluster is healthy and
// the callers recovered (chaos.Config.Settle): their spares cover 5/8 of
// HoldFor again (restocking tops up below 3/4), and every shard's confirmed
// ceiling is above every counter (raised after the level jump of a
// restore). A fault that starts before is a double fault. No ID twice, no failed call (library and HTTP counted
// apart, per fault), and no inversion at W = 1 s on one server
// beyond what it counts in shardseq_ids_out_of_order_total. The
// redis/full-coverage-yes case runs two server processes; the Valkey cases
// skip the lagging and the cut replica. 30-40 s a case (~3 min in all);
// one more case runs Redis's default node timeout (15 s) through kill -9 of
// a master.
func TestAvailability(t *testing.T) {
	for _, engine := range []localcluster.Engine{localcluster.EngineRedis, localcluster.EngineValkey} {
		for _, full := range []bool{true, false} {
			servers := 1
			if engine == localcluster.EngineRedis && full {
				servers = 2
			}
			faults := chaos.Availability
			if engine == localcluster.EngineValkey {
				// CI's budget: on Valkey the faults in which the engine acts
				// (failover, CLUSTERDOWN, restart); a replica that lags or is
				// cut looks the same to callers on both engines.
				faults = []chaos.Fault{chaos.KillMaster, chaos.ClusterDown2s, chaos.PauseMaster, chaos.FrozenReplica, chaos.RestartEmpty}
			}
			if engine == localcluster.EngineValkey && !full && !longRuns {
				continue // CI's budget: Valkey at the recommended setting runs with the chaos tag
			}
			t.Run(fmt.Sprintf("%s/full-coverage-%s", engine, yesNo(full)), func(t *testing.T) {
				availability(t, availabilityCase{
					opts:    Opts{Engine: engine, FullCoverage: full, Partitions: partitionsAvailable()},
					faults:  faults,
					servers: servers,
				})
			})
		}
	}
	// Redis's default node timeout: the FAIL flag comes 15-30 s after the
	// kill; 35-40 s.
	t.Run("redis/full-coverage-yes/node-timeout-15s", func(t *testing.T) {
		if !longRuns {
			t.Skip("CI's budget: Redis's default node timeout runs with the chaos tag (make chaos-long)")
		}
		availability(t, availabilityCase{
			opts:    Opts{Engine: localcluster.EngineRedis, FullCoverage: true, NodeTimeout: 15 * time.Second},
			faults:  []chaos.Fault{chaos.KillMaster},
			servers: 1,
		})
	})
}

type availabilityCase struct {
	opts    Opts
	faults  []chaos.Fault
	servers int
}

func availability(t *testing.T, ac availabilityCase) {
	if envFull, _ := localcluster.FullCoverageFromEnv(); envFull && !ac.opts.FullCoverage {
		t.Skipf("%s=yes: every cluster runs full coverage, so this case would not be what its name says", localcluster.FullCoverageEnv)
	}
	start := time.Now()
	c := startCluster(t, ac.opts)
	bin := buildShardseq(t)
	var urls []string
	for range ac.servers {
		listen := freePort(t)
		startServe(t, bin, c, listen, 12)
		urls = append(urls, "http://"+listen)
	}
	var costs []chaos.FaultCost
	var errs chaos.CallerErrors
	var orders []checker.Report
	rep, err := chaos.Run(context.Background(), chaos.Config{
		Seeds: c.Addrs(), Local: c.Local(),
		Faults:        ac.faults,
		Warmup:        3 * time.Second,
		Namespace:     "avail",
		Shards:        12,
		Callers:       4,
		StrictCallers: -1, // strict mode reserves per call: no buffer can carry it through CLUSTERDOWN
		RestartEvery:  -1, // namespaces open and in use before the fault
		HTTP:          urls,
		HTTPCallers:   16,
		HTTPBatches:   []int{1, 50},
		MinIDs:        1,
		MinDuration:   2 * time.Second,
		MaxDuration:   4 * time.Minute,
		OrderWindow:   -1,      // across processes order holds only within a wider window: measured per server below
		ServerOrder:   &orders, // at client.DefaultOrderWindow (1 s)
		Errors:        &errs,
		Costs:         &costs,
		Settle:        client.DefaultHoldFor * 5 / 8, // each fault a single fault: callers recovered from the last (spares restocked, ceilings raised)
		Client:        client.Config{Logger: quiet()},
		Logf:          t.Logf,
	})
	t.Logf("report (%v in all):\n%s", time.Since(start).Round(time.Second), rep)
	for _, fc := range costs {
		t.Logf("fault: %s", fc)
	}
	t.Logf("callers: %s", errs)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("IDs handed out twice: %s", rep)
	}
	if rep.Faults < len(ac.faults) {
		t.Fatalf("only %d of %d faults injected", rep.Faults, len(ac.faults))
	}
	if rep.Acknowledged < 100_000 {
		t.Errorf("too little load to mean anything: %d IDs", rep.Acknowledged)
	}
	for i, o := range orders {
		ooo, ok := metricSum(t, urls[i], outOfOrderMetric)
		t.Logf("server %d: %d of %d answers are inversions at W=%v (largest step back %d, no inversion for W >= %v); %s = %v (exported: %v)",
			i, o.Inversions, o.Answers, o.Window, o.MaxBackStep, o.WindowNeeded, outOfOrderMetric, ooo, ok)
		for _, e := range o.InversionExamples {
			t.Logf("  e.g. ID %d answered at %v (sent %v); a request sent at %v got ID %d",
				e.AHi, e.AArrived.Round(time.Millisecond), e.ASent.Round(time.Millisecond), e.BSent.Round(time.Millisecond), e.BLo)
		}
		if ok && float64(o.Inversions) > ooo {
			t.Errorf("server %d: %d inversions at W=%v, but it counted only %v answers out of order", i, o.Inversions, o.Window, ooo)
		}
	}
	if errs.Library != 0 || errs.HTTP != 0 {
		t.Errorf("callers saw errors through single faults: %s", errs)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// partitionsAvailable reports whether this machine can cut links between
// nodes (root and iptables); without it the cut-replica fault is skipped and
// said so in the fault log.
func partitionsAvailable() bool { return localcluster.PartitionsAvailable() == nil }

// metricSum sums every sample of the Prometheus counter name on a server's
// /metrics (all label sets); ok is false when the server does not export it.
func metricSum(t testing.TB, base, name string) (sum float64, ok bool) {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Logf("metrics of %s: %v", base, err)
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, found := strings.CutPrefix(line, name)
		if !found || (rest != "" && rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			sum, ok = sum+v, true
		}
	}
	return sum, ok
}
