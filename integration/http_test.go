//go:build integration

package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/internal/lab/chaos"
	"github.com/shardseq/shardseq/internal/lab/checker"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/server"
)

// startServer runs a shardseq HTTP server over its own connection to c.
func startServer(t testing.TB, c *clustertest.Cluster, shards int) string {
	t.Helper()
	cl := c.Dial(cluster.Config{ReadTimeout: time.Second, ProbeInterval: 100 * time.Millisecond})
	srv, err := server.New(server.Config{Cluster: cl, Shards: shards, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL
}

type shardsReply struct {
	Shards []failover.ShardStatus `json:"shards"`
}

func getShards(base, ns string) (map[int]failover.ShardStatus, error) {
	resp, err := http.Get(base + "/v1/shards?namespace=" + ns)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/shards: %s", resp.Status)
	}
	var r shardsReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, err
	}
	out := map[int]failover.ShardStatus{}
	for _, s := range r.Shards {
		out[s.Index] = s
	}
	return out, nil
}

// Over HTTP: kill -9 of a master under load; every request succeeds, no ID
// repeats, and /v1/shards shows the dead master's shard unhealthy, then
// healthy on its new master once the old node rejoined as its replica.
func TestHTTP_KillMasterShardHealth(t *testing.T) {
	c := startCluster(t, Opts{})
	base := startServer(t, c, 3)
	const ns = "orders"
	hc := &http.Client{Timeout: 5 * time.Second}
	ck := checker.New()
	stop := make(chan struct{})
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		rec := ck.Recorder()
		go func() {
			defer func() { done <- struct{}{} }()
			callUntil(stop, func() {
				t0 := time.Now()
				req, _ := http.NewRequest(http.MethodPost, base+"/v1/ids/"+ns+"?count=10", nil)
				resp, err := hc.Do(req)
				if err != nil {
					rec.Fail(err)
					return
				}
				var body struct {
					IDs []int64 `json:"ids"`
				}
				err = json.NewDecoder(resp.Body).Decode(&body)
				resp.Body.Close()
				if err != nil || resp.StatusCode != 200 {
					rec.Fail(fmt.Errorf("HTTP %d: %v", resp.StatusCode, err))
					return
				}
				rec.Ack(time.Since(t0), body.IDs...)
			})
		}()
	}
	var shards map[int]failover.ShardStatus
	clustertest.Eventually(t, 10*time.Second, func() (err error) {
		shards, err = getShards(base, ns)
		if err == nil && len(shards) != 3 {
			err = fmt.Errorf("want 3 shards, got %d", len(shards))
		}
		return err
	})
	victim := c.MasterOf(shards[0].Key)
	if shards[0].Node != victim {
		t.Fatalf("/v1/shards says shard 0 is on %s, the cluster says %s", shards[0].Node, victim)
	}
	keys := map[int]string{}
	for i, st := range shards {
		keys[i] = st.Key
	}
	waitCeilingsAhead(t, c, keys)
	c.Kill(victim)
	clustertest.Eventually(t, 15*time.Second, func() error {
		s, err := getShards(base, ns)
		if err == nil && s[0].Healthy {
			err = fmt.Errorf("shard 0 still healthy: %+v", s[0])
		}
		return err
	})
	c.WaitPromoted(victim, 30*time.Second)
	c.Start(victim)
	c.WaitHealthy(60 * time.Second)
	clustertest.Eventually(t, 30*time.Second, func() error {
		s, err := getShards(base, ns)
		if err == nil && (!s[0].Healthy || s[0].Node == victim) {
			err = fmt.Errorf("shard 0 not healthy on a new master: %+v", s[0])
		}
		return err
	})
	close(stop)
	for g := 0; g < 4; g++ {
		<-done
	}
	rep := ck.Report()
	t.Logf("report: %s", rep)
	if !rep.OK() || rep.Errors != 0 || rep.Acknowledged < 1000 {
		t.Fatalf("want >= 1000 unique IDs and no failed request: %s", rep)
	}
}

// The chaos scenario with HTTP callers on two servers beside the library
// callers: every path that hands out IDs is checked together.
func TestChaos_HTTPAndLibrary(t *testing.T) {
	c := startCluster(t, Opts{})
	urls := []string{startServer(t, c, 6), startServer(t, c, 6)}
	rep, err := chaos.Run(context.Background(), chaos.Config{
		Seeds: c.Addrs(), Local: c.Local(), HTTP: urls,
		Namespace:   "mixed",
		Faults:      []chaos.Fault{chaos.KillMaster, chaos.RestartEmpty, chaos.PauseMaster},
		Shards:      6,
		Callers:     4,
		HTTPCallers: 4,
		MinIDs:      scale(300_000),
		MaxDuration: 4 * time.Minute,
		Client:      client.Config{Logger: quiet()},
		Logf:        t.Logf,
	})
	t.Logf("report:\n%s", rep)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("IDs handed out twice: %s", rep)
	}
}
