package server

import (
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// Bounds of TestFreezeEveryNode.
const (
	// readyWithin: /readyz turns 503 this long after every node froze (one
	// probe interval, 1s, plus the probe timeout, 500ms, and some margin).
	readyWithin = 2 * time.Second
	// answerWithin: every request is answered within this (the request
	// timeout, 1s), plus scheduling slack for -race on 2 cores.
	answerWithin = time.Second + 250*time.Millisecond
	// atOnce: once every master's last probe failed, a request that needs
	// Redis is answered within this, without calling it (a call to a frozen
	// node takes its whole timeout).
	atOnce = 100 * time.Millisecond
)

type timedAnswer struct {
	what string
	at   time.Duration // since the freeze
	took time.Duration
	code int
}

// TestFreezeEveryNode freezes every node of the cluster (SIGSTOP): /readyz
// turns 503 within 2s; every request is answered within 1s meanwhile, and
// once every master's last probe failed, a request that needs Redis gets 503
// at once. After the nodes thaw, the server serves again and the IDs it
// hands out are new.
func TestFreezeEveryNode(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portFreeze, NodeTimeout: 15 * time.Second})
	cl := lc.Dial(cluster.Config{})
	s := newServer(t, Config{Cluster: cl, Shards: 12})
	h := s.Handler()
	before := map[string][]int64{}
	for _, ns := range []string{"default", "frozen-1", "frozen-2"} {
		r := do(t, h, "POST", "/v1/ids/"+ns+"?count=100")
		if r.code != 200 {
			t.Fatalf("%s: %d %s", ns, r.code, r.raw)
		}
		before[ns] = ids(t, r)
	}
	if r := do(t, h, "GET", "/readyz"); r.code != 200 {
		t.Fatalf("readyz before the freeze: %d %s", r.code, r.raw)
	}

	addrs := lc.Addrs()
	var paused []string
	thaw := func() {
		for _, a := range paused {
			lc.Resume(a)
		}
		paused = nil
	}
	t.Cleanup(thaw)
	frozen := time.Now()
	for _, a := range addrs {
		lc.Pause(a)
		paused = append(paused, a)
	}

	var (
		mu      sync.Mutex
		answers []timedAnswer
		wg      sync.WaitGroup
	)
	ask := func(what, method, target string) timedAnswer {
		t0 := time.Now()
		code := doQuiet(h, method, target)
		a := timedAnswer{what: what, at: t0.Sub(frozen), took: time.Since(t0), code: code}
		mu.Lock()
		answers = append(answers, a)
		mu.Unlock()
		return a
	}
	until := frozen.Add(4 * time.Second)
	k := 0
	for _, kind := range []struct{ what, target string }{
		{"readyz", "/readyz"},
		{"open namespace, more IDs than buffered", "/v1/ids/frozen-1?count=10000"},
		{"open namespace, one ID", "/v1/ids/frozen-2"},
		{"default namespace", "/v1/ids/default?count=5000"},
		{"new namespace", ""},
	} {
		method := "POST"
		if kind.what == "readyz" {
			method = "GET"
		}
		wg.Go(func() {
			for time.Now().Before(until) {
				target := kind.target
				if target == "" {
					mu.Lock()
					k++
					target = fmt.Sprintf("/v1/ids/frozen-new-%d", k)
					mu.Unlock()
				}
				ask(kind.what, method, target)
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	// Once the probes have seen every master fail: requests that need
	// Redis, timed one by one.
	clustertest.Eventually(t, 3*time.Second, func() error {
		if cl.Serving() {
			return fmt.Errorf("the cluster still counts as serving %v after the freeze", time.Since(frozen))
		}
		return nil
	})
	servingLost := time.Since(frozen)

	var fast []timedAnswer
	for k := range 20 {
		fast = append(fast,
			ask("no master serving: open namespace", "POST", "/v1/ids/frozen-1?count=10000"),
			ask("no master serving: new namespace", "POST", fmt.Sprintf("/v1/ids/frozen-fast-%d", k)),
			ask("no master serving: default", "POST", "/v1/ids/default?count=10000"))
	}
	wg.Wait()

	readyLost := time.Duration(-1)
	slices.SortFunc(answers, func(a, b timedAnswer) int { return int(a.at - b.at) })
	worst := timedAnswer{}
	for _, a := range answers {
		if a.what == "readyz" && a.code == http.StatusServiceUnavailable && readyLost < 0 {
			readyLost = a.at
		}
		if a.took > worst.took {
			worst = a
		}
		if a.took > answerWithin {
			t.Errorf("%s at +%v took %v (answer %d), want at most %v", a.what, a.at.Round(time.Millisecond), a.took.Round(time.Millisecond), a.code, answerWithin)
		}
		if a.code != http.StatusOK && a.code != http.StatusServiceUnavailable {
			t.Errorf("%s at +%v: %d, want 200 (IDs still buffered) or 503", a.what, a.at.Round(time.Millisecond), a.code)
		}
	}
	for _, a := range fast {
		if a.code != http.StatusServiceUnavailable || a.took > atOnce {
			t.Errorf("%s at +%v: %d in %v, want 503 within %v", a.what, a.at.Round(time.Millisecond), a.code, a.took, atOnce)
		}
	}
	switch {
	case readyLost < 0:
		t.Errorf("/readyz never answered 503 in the %v the nodes were frozen", time.Since(frozen).Round(time.Millisecond))
	case readyLost > readyWithin:
		t.Errorf("/readyz answered 503 %v after the freeze, want within %v", readyLost, readyWithin)
	}
	t.Logf("every node frozen: probes saw every master fail after %v, /readyz 503 after %v; %d answers, slowest %s at +%v: %v",
		servingLost.Round(time.Millisecond), readyLost.Round(time.Millisecond), len(answers), worst.what,
		worst.at.Round(time.Millisecond), worst.took.Round(time.Millisecond))

	thaw()
	lc.WaitHealthy(30 * time.Second)
	clustertest.Eventually(t, 15*time.Second, func() error {
		if r := do(t, h, "GET", "/readyz"); r.code != 200 {
			return fmt.Errorf("readyz after the thaw: %d %s", r.code, r.raw)
		}
		return nil
	})
	for ns, old := range before {
		var r result
		clustertest.Eventually(t, 10*time.Second, func() error {
			if r = do(t, h, "POST", "/v1/ids/"+ns+"?count=100"); r.code != 200 {
				return fmt.Errorf("%s after the thaw: %d %s", ns, r.code, r.raw)
			}
			return nil
		})
		top := slices.Max(old)
		for _, id := range ids(t, r) {
			if id <= top {
				t.Errorf("%s after the thaw handed out %d, not above %d", ns, id, top)
			}
		}
	}
}
