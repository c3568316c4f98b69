//go:build integration

package integration

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/shardseq/shardseq/internal/lab/chaos"
)

// Issue 22, compact at every rate: a new 12-shard namespace through `shardseq
// serve`, asked for one ID at a time:
//   - the first ID is at most 1,000;
//   - at one request a second (10 s), IDs advance at most 2N = 24 per request;
//   - at 100 requests a second (5 s), the IDs span at most 4 times the IDs
//     handed out;
//   - one master failover on the quiet namespace (kill -9, replica promoted,
//     old master back as a replica; one request a second throughout) moves
//     it by at most 1,000,000, measured once every shard has served again.
func TestQuietNamespace_IDSpace(t *testing.T) {
	const n = 12
	c := startCluster(t, Opts{})
	bin := buildShardseq(t)
	listen := freePort(t)
	startServe(t, bin, c, listen, n)
	url := fmt.Sprintf("http://%s/v1/ids/quiet-%d?count=1", listen, time.Now().UnixNano()%1_000_000)
	hc := &http.Client{Timeout: 5 * time.Second}
	take := func() (int64, error) {
		resp, err := hc.Post(url, "", nil)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, body)
		}
		ids, err := chaos.ParseIDs(body)
		if err != nil || len(ids) != 1 {
			return 0, fmt.Errorf("want one ID: %v %s", err, body)
		}
		return ids[0], nil
	}
	// paced takes rate IDs a second for d or until stop (pacing, not
	// synchronisation); errors end the test unless lenient (then they are
	// returned). It returns the IDs in answer order. It may run on another
	// goroutine: it never calls t.Fatal when lenient.
	paced := func(rate int, d time.Duration, stop <-chan struct{}, lenient bool) (ids []int64, errs []error) {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		for end := time.Now().Add(d); time.Now().Before(end); {
			id, err := take()
			switch {
			case err != nil && !lenient:
				t.Fatalf("request %d: %v", len(ids)+1, err)
			case err != nil:
				errs = append(errs, err)
			default:
				ids = append(ids, id)
			}
			select {
			case <-stop:
				return ids, errs
			case <-tick.C:
			}
		}
		return ids, errs
	}

	slow, _ := paced(1, 10*time.Second, nil, false)
	first := slow[0]
	perRequest := float64(slow[len(slow)-1]-slow[0]) / float64(len(slow)-1)
	t.Logf("1 request/s: %d requests, first ID %d, IDs %v; %.0f of ID space per request", len(slow), first, slow, perRequest)

	fast, _ := paced(100, 5*time.Second, nil, false)
	span := slices.Max(fast) - slices.Min(fast) + 1
	ratio := float64(span) / float64(len(fast))
	t.Logf("100 requests/s: %d requests, IDs %d..%d: %.1f of ID space per ID handed out", len(fast), slices.Min(fast), slices.Max(fast), ratio)

	before := max(slices.Max(slow), slices.Max(fast))
	victim := c.Masters()[0]
	// One request a second goes on through the failover: the namespace
	// stays quiet, not idle.
	stopDuring := make(chan struct{})
	type result struct {
		ids  []int64
		errs []error
	}
	during := make(chan result, 1)
	go func() {
		ids, errs := paced(1, 3*time.Minute, stopDuring, true)
		during <- result{ids, errs}
	}()
	t0 := time.Now()
	c.Kill(victim)
	c.WaitPromoted(victim, 60*time.Second)
	c.Start(victim)
	c.WaitHealthy(60 * time.Second)
	close(stopDuring)
	d := <-during
	t.Logf("failover of %s done after %v; meanwhile %d IDs %v and %d errors %v",
		victim, time.Since(t0).Round(time.Millisecond), len(d.ids), d.ids, len(d.errs), d.errs)
	// A shard fenced by the failover pays its jump when it next serves:
	// take IDs (10 a second) until every shard has served one (ID mod N),
	// so the jump of each is in the measure.
	var after []int64
	served := map[int64]bool{}
	tick := time.NewTicker(100 * time.Millisecond) // pacing, not synchronisation
	defer tick.Stop()
	for end := time.Now().Add(60 * time.Second); len(served) < n && time.Now().Before(end); <-tick.C {
		id, err := take()
		if err != nil {
			t.Fatalf("after the failover: %v", err)
		}
		after = append(after, id)
		served[id%n] = true
	}
	if len(served) < n {
		t.Logf("only %d of %d shards served within 60 s after the failover: the cost below may miss a jump", len(served), n)
	}
	cost := slices.Max(after) - before
	t.Logf("one master failover: last ID before %d; %d IDs after it until every shard served, largest %d: cost %d (IDs after: %v)",
		before, len(after), slices.Max(after), cost, after)

	if first > 1000 {
		t.Errorf("first ID %d; want <= 1,000", first)
	}
	if perRequest > 2*n {
		t.Errorf("%.0f of ID space per request at 1 request/s; want <= %d (2N)", perRequest, 2*n)
	}
	if ratio > 4 {
		t.Errorf("IDs span %.1f times the IDs handed out at 100 requests/s; want <= 4", ratio)
	}
	if cost > 1_000_000 {
		t.Errorf("one master failover cost %s of ID space on a quiet namespace; want <= 1,000,000", strconv.FormatInt(cost, 10))
	}
}
