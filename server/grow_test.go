package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// Issue 19, item 1: an operator adds a master with `redis-cli --cluster
// add-node` and reshards later. Meanwhile the server comes up and PUT
// /v1/namespaces/{ns} answers within 2 s (before the fix: no answer within
// 30 s, the layout search spinning on the master without slots). A master
// that serves slots but has no replica confirming its writes makes a
// creation answer 503 unavailable naming that master, not 500 internal.
func TestPutNamespaceWhileClusterGrows(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portGrow})
	empty := lc.AddNode("")
	cl := lc.Dial(cluster.Config{})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if m, ok := cl.Topology().MasterByAddr(empty); ok && len(m.Slots) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the connection never saw the added master %s", empty)
		}
		cl.LazyReload()
		time.Sleep(50 * time.Millisecond) // polling interval, not synchronisation
	}

	start := time.Now()
	h := newServer(t, Config{Cluster: cl, Shards: 12}).Handler()
	put := func(ns string) result {
		t.Helper()
		done := make(chan result, 1)
		go func() { done <- sendBody(t, h, http.MethodPut, "/v1/namespaces/"+ns, `{}`) }()
		select {
		case r := <-done:
			return r
		case <-time.After(5 * time.Second):
			t.Fatalf("PUT %s: no answer after 5s", ns)
			return result{}
		}
	}
	if r := put("grow"); r.code != http.StatusCreated {
		t.Fatalf("PUT with a master without slots: %d %s", r.code, r.raw)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("server up and PUT answered after %v, want within 2s", d)
	} else {
		t.Logf("server up and PUT answered in %v", d)
	}

	// A master serving slots whose only replica is gone: every write there
	// waits for a confirmation that cannot come.
	m := lc.Masters()[0]
	for _, r := range lc.ReplicasOf(m) {
		lc.Kill(r)
	}
	r := put("lonely")
	if r.code != http.StatusServiceUnavailable || r.body["code"] != codeUnavailable {
		t.Fatalf("PUT with a master without replica: %d %s, want 503 %s", r.code, r.raw, codeUnavailable)
	}
	if msg, _ := r.body["error"].(string); !strings.Contains(msg, "master "+m+" has no replica") {
		t.Errorf("error %q does not name master %s", msg, m)
	}
	if r.header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
}
