package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
)

// TestNamespaceLifecycle: namespaces close when idle, past MaxNamespaces
// (least recently used first) and on closeNamespace; creation on first use
// is bounded; and a namespace that closed and opened again continues above
// every ID it handed out. One real cluster (3 masters, 1 replica each).
func TestNamespaceLifecycle(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portLifecycle})
	cl := lc.Dial(cluster.Config{})

	t.Run("Idle", func(t *testing.T) { testIdle(t, cl) })
	t.Run("IdleGaps", func(t *testing.T) { testIdleGaps(t, cl) })
	t.Run("CloseNamespace", func(t *testing.T) { testCloseNamespace(t, cl) })
	t.Run("Explicit", func(t *testing.T) { testExplicit(t, cl) })
	t.Run("Headroom", func(t *testing.T) { testHeadroomLive(t, cl) })
	t.Run("Flood", func(t *testing.T) { testFlood(t, cl, CreateAuto) })
}

// TestNamespaceFloodExplicit is the flood of TestNamespaceLifecycle against
// a server that creates no namespace, on a cluster of its own (every
// creation reads the whole index of namespaces: a fresh one is quicker).
func TestNamespaceFloodExplicit(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portFloodExplicit})
	testFlood(t, lc.Dial(cluster.Config{}), CreateExplicit)
}

// post hands out count IDs of ns and fails the test on anything but 200.
func post(t *testing.T, h http.Handler, ns string, count int) []int64 {
	t.Helper()
	r := do(t, h, "POST", fmt.Sprintf("/v1/ids/%s?count=%d", ns, count))
	if r.code != 200 {
		t.Fatalf("POST %s: %d %s", ns, r.code, r.raw)
	}
	return ids(t, r)
}

// above fails the test unless every ID of got is above every ID of before
// (and so none repeats).
func above(t *testing.T, what string, before, got []int64) {
	t.Helper()
	top := slices.Max(before)
	for _, id := range got {
		if id <= top {
			t.Fatalf("%s: handed out %d after reopening, not above %d, the highest before it closed", what, id, top)
		}
	}
}

func waitClosed(t *testing.T, s *Server, ns string) {
	t.Helper()
	clustertest.Eventually(t, 5*time.Second, func() error {
		if slices.Contains(s.Namespaces(), ns) {
			return fmt.Errorf("namespace %s still open: %v", ns, s.Namespaces())
		}
		return nil
	})
}

// testIdle: an unused namespace closes after NamespaceIdle (the default one
// never does), its shard rows leave the registry, and it opens again on its
// next request, above every ID it handed out.
func testIdle(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: floodShards, NamespaceIdle: 300 * time.Millisecond})
	h := s.Handler()
	before := post(t, h, "idle-a", 500)
	post(t, h, DefaultNamespace, 10)
	// A namespace in use stays open.
	for range 8 {
		time.Sleep(100 * time.Millisecond)
		before = append(before, post(t, h, "idle-a", 10)...)
	}
	if !slices.Contains(s.Namespaces(), "idle-a") {
		t.Fatalf("idle-a closed while in use: %v", s.Namespaces())
	}
	waitClosed(t, s, "idle-a")
	if v := value(t, s.Metrics(), "shardseq_namespace_evictions_total", map[string]string{"reason": "idle"}); v < 1 {
		t.Errorf("idle evictions %v, want at least 1", v)
	}
	if !slices.Contains(s.Namespaces(), DefaultNamespace) {
		t.Errorf("the default namespace closed: %v", s.Namespaces())
	}
	if rows, _ := s.Registry().List("idle-a"); len(rows) != 0 {
		t.Errorf("%d registry rows of the closed namespace left", len(rows))
	}
	if r := do(t, h, "GET", "/v1/shards?namespace=idle-a"); r.code != 404 {
		t.Errorf("shards of a closed namespace: %d %s, want 404", r.code, r.raw)
	}
	above(t, "idle-a", before, post(t, h, "idle-a", 500))
	if v := value(t, s.Metrics(), "shardseq_namespaces_open", nil); v != 2 {
		t.Errorf("shardseq_namespaces_open %v, want 2", v)
	}
}

// testIdleGaps: without ordering a block lives until used up, so closing a
// namespace drops what it buffered: gaps, counted, never handed out.
func testIdleGaps(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: floodShards, NamespaceIdle: 200 * time.Millisecond,
		Client: client.Config{OrderWindow: -1, BlockSize: 1000}})
	h := s.Handler()
	before := post(t, h, "idle-gaps", 10)
	waitClosed(t, s, "idle-gaps")
	if v := value(t, s.Metrics(), "shardseq_namespace_close_gap_ids_total", nil); v < 1 {
		t.Errorf("close gaps %v, want the buffered rest of a block", v)
	}
	after := post(t, h, "idle-gaps", 100)
	seen := map[int64]bool{}
	for _, id := range append(before, after...) {
		if seen[id] {
			t.Fatalf("ID %d handed out twice across a close", id)
		}
		seen[id] = true
	}
}

// testCloseNamespace: closeNamespace (what a DELETE calls) closes an open
// namespace at once; the next request opens it again from Redis.
func testCloseNamespace(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: floodShards})
	h := s.Handler()
	before := post(t, h, "to-close", 100)
	if s.closeNamespace("never-opened") {
		t.Errorf("closeNamespace of a namespace not open reported true")
	}
	if s.closeNamespace(DefaultNamespace) || !slices.Contains(s.Namespaces(), DefaultNamespace) {
		t.Errorf("closeNamespace closed the default namespace")
	}
	if !s.closeNamespace("to-close") {
		t.Fatalf("closeNamespace(to-close) = false")
	}
	if slices.Contains(s.Namespaces(), "to-close") {
		t.Fatalf("to-close still open after closeNamespace")
	}
	if v := value(t, s.Metrics(), "shardseq_namespace_evictions_total", map[string]string{"reason": "lru"}); v != 0 {
		t.Errorf("closeNamespace counted as an eviction")
	}
	above(t, "to-close", before, post(t, h, "to-close", 100))
	// Concurrent requests while it closes: each is answered, none repeats.
	var wg sync.WaitGroup
	var mu sync.Mutex
	seen := map[int64]bool{}
	for g := range 8 {
		wg.Go(func() {
			for k := range 30 {
				if g == 0 && k%10 == 5 {
					s.closeNamespace("to-close")
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/ids/to-close?count=7", nil))
				if rec.Code != 200 {
					t.Errorf("POST while closing: %d %s", rec.Code, rec.Body)
					return
				}
				var body struct{ IDs []int64 }
				_ = json.Unmarshal(rec.Body.Bytes(), &body)
				mu.Lock()
				for _, id := range body.IDs {
					if seen[id] {
						t.Errorf("ID %d handed out twice", id)
					}
					seen[id] = true
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}

// testExplicit: with CreateExplicit a namespace nobody created gets 404
// namespace_not_found; one that exists is served.
func testExplicit(t *testing.T, cl *cluster.Cluster) {
	precreate(t, cl, floodShards, "made-before")
	s := newServer(t, Config{Cluster: cl, Shards: floodShards, CreateNamespaces: CreateExplicit})
	h := s.Handler()
	r := do(t, h, "POST", "/v1/ids/nobody-made-it")
	if r.code != 404 || r.body["code"] != codeNamespaceNotFound || !strings.Contains(r.raw, "explicit") {
		t.Fatalf("namespace nobody created: %d %s, want 404 namespace_not_found naming --create-namespaces explicit", r.code, r.raw)
	}
	if r := do(t, h, "POST", "/v1/ids/nobody-made-it"); r.code != 404 {
		t.Fatalf("again: %d %s", r.code, r.raw)
	}
	names, err := namespace.ListNamespaces(context.Background(), cl)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(names, "nobody-made-it") {
		t.Fatalf("explicit mode created the namespace")
	}
	post(t, h, "made-before", 5)
	post(t, h, DefaultNamespace, 5)
}

// testHeadroomLive: with a small MaxID, handing out most of a namespace's
// space shows in shardseq_namespace_space_left_ratio and logs the 50% and
// 90% warnings once each. (The gauge follows the IDs handed out; the
// counters run ahead by the blocks buffered, at most MaxBlockSize per shard,
// nothing next to 2^53 but much next to this MaxID: hence fixed blocks.)
func testHeadroomLive(t *testing.T, cl *cluster.Cluster) {
	rec := &recordingHandler{}
	const maxID = 2_000_000
	// Fixed blocks, handed out until used up, and no spares (a spare handed
	// out when a refill is slow, under load, would jump the highest ID past
	// 50% at once): the counters stay within a block of the highest ID
	// handed out.
	s := newServer(t, Config{Cluster: cl, Shards: floodShards, Logger: slog.New(rec), Client: client.Config{MaxID: maxID,
		OrderWindow: -1, BlockSize: MaxCount, MinBlockSize: MaxCount, MaxBlockSize: MaxCount, HoldFor: -1}})
	h := s.Handler()
	var got []int64
	for len(got) < maxID*95/100 {
		got = append(got, post(t, h, "headroom", MaxCount)...)
		if left := value(t, s.Metrics(), "shardseq_namespace_space_left_ratio", map[string]string{"namespace": "headroom"}); math.Abs(left-(1-float64(slices.Max(got))/maxID)) > 0.01 {
			t.Fatalf("space left %v with %d of %d handed out, highest %d", left, len(got), maxID, slices.Max(got))
		}
	}
	if w := rec.thresholds(); !equalFloats(w, []float64{50, 90}) {
		t.Errorf("warnings at %v, want 50 and 90", w)
	}
}

// precreate creates namespaces as `shardseq namespace create` would: with
// client.PutNamespace, 8 at a time.
func precreate(t *testing.T, cl *cluster.Cluster, shards int, names ...string) {
	t.Helper()
	work := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range 8 {
		wg.Go(func() {
			for name := range work {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, err := client.PutNamespace(ctx, cl, name, client.Spec{Shards: &shards}, 0, client.Config{})
				cancel()
				if err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("%s: %w", name, err))
					mu.Unlock()
				}
			}
		})
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("creating %d namespaces: %d failed, first %v", len(names), len(errs), errs[0])
	}
}

// Sizes of the flood.
const (
	floodNames = 1500
	floodMax   = 1000
	// floodExisting names exist before the explicit flood; the others get
	// 404.
	floodExisting = 1100
	// floodBurst and floodRate are the creation bound of the auto flood:
	// past the burst (refilled at floodRate per second) new names get 429.
	floodBurst = 1200
	floodRate  = 0.01
	// floodShards is N of every namespace of the lifecycle tests (the
	// default namespace's too): few, so 1,500 namespaces are created quickly.
	floodShards = 2
	// maxPageBytes bounds the health page with 1,000 namespaces open.
	maxPageBytes = 200 << 10
)

// testFlood sends a flood of 1,500 names at a server with MaxNamespaces
// 1,000: no answer is a 503; names within the creation bound get 200 and
// those past it 429 with Retry-After (auto), every name that exists gets 200
// (explicit); the least recently used namespaces close to make room, and
// reopen above every ID they handed out. The health page stays small.
func testFlood(t *testing.T, cl *cluster.Cluster, mode CreateMode) {
	prefix := "flood-" + string(mode) + "-"
	names := make([]string, floodNames)
	for k := range names {
		names[k] = prefix + strconv.Itoa(k)
	}
	if mode == CreateExplicit {
		t0 := time.Now()
		precreate(t, cl, floodShards, names[:floodExisting]...)
		t.Logf("%d namespaces created in %v", floodExisting, time.Since(t0).Round(time.Millisecond))
	}
	// Replicas slowed down by the flood (2 cores for 6 nodes and the test)
	// get time to acknowledge: this test is about the lifecycle, not
	// latency. Under the race detector a creation can take longer than the
	// 1s request timeout, which answers 503 "still being opened" (and the
	// opening goes on): there requests get longer. Without it, the
	// defaults: no 503.
	timeout := time.Duration(0)
	if raceEnabled {
		timeout = 20 * time.Second
	}
	s := newServer(t, Config{Cluster: cl, Shards: floodShards, MaxNamespaces: floodMax, CreateNamespaces: mode,
		CreateRate: floodRate, CreateBurst: floodBurst, RequestTimeout: timeout,
		Client: client.Config{AckTimeout: time.Second, Breaker: failover.BreakerConfig{AttemptTimeout: 2 * time.Second, ReserveTimeout: 5 * time.Second}}})
	h := s.Handler()

	type answer struct {
		code  int
		retry string
		ids   []int64
	}
	answers := make([]answer, floodNames)
	work := make(chan int)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range 8 {
		wg.Go(func() {
			for k := range work {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/ids/"+names[k]+"?count=3", nil))
				a := answer{code: rec.Code, retry: rec.Header().Get("Retry-After")}
				if rec.Code == 200 {
					var body struct{ IDs []int64 }
					_ = json.Unmarshal(rec.Body.Bytes(), &body)
					a.ids = body.IDs
				}
				answers[k] = a
			}
		})
	}
	for k := range names {
		work <- k
	}
	close(work)
	wg.Wait()
	took := time.Since(t0)

	byCode := map[int]int{}
	for k, a := range answers {
		byCode[a.code]++
		switch {
		case a.code == 503:
			t.Errorf("%s: 503", names[k])
		case a.code == 429 && (mode == CreateExplicit || a.retry == ""):
			t.Errorf("%s: 429 with Retry-After %q in mode %s", names[k], a.retry, mode)
		case mode == CreateExplicit && (a.code == 200) != (k < floodExisting):
			t.Errorf("%s: %d, want 200 for a namespace that exists, 404 for one that does not", names[k], a.code)
		case a.code != 200 && a.code != 429 && !(mode == CreateExplicit && a.code == 404):
			t.Errorf("%s: %d", names[k], a.code)
		}
	}
	t.Logf("%s: %d names in %v: %v", mode, floodNames, took.Round(time.Millisecond), byCode)
	created := value(t, s.Metrics(), "shardseq_namespaces_created_total", nil)
	switch mode {
	case CreateAuto:
		// The bucket holds floodBurst and refills at floodRate while the
		// flood runs; every token taken is one namespace created.
		most := float64(floodBurst) + floodRate*took.Seconds() + 1
		if ok := byCode[200]; ok < floodBurst || float64(ok) > most || float64(ok) != created {
			t.Errorf("%d names served, %v created; want from %d to %.0f, all created", ok, created, floodBurst, most)
		}
		if byCode[429] == 0 {
			t.Errorf("no 429 past the creation bound")
		}
	case CreateExplicit:
		if byCode[200] != floodExisting || byCode[404] != floodNames-floodExisting || created != 0 {
			t.Errorf("%d of %d names that exist served, %d 404, %v created; want all, %d, none", byCode[200], floodExisting, byCode[404], created, floodNames-floodExisting)
		}
	}
	open := len(s.Namespaces())
	lru := value(t, s.Metrics(), "shardseq_namespace_evictions_total", map[string]string{"reason": "lru"})
	t.Logf("%s: %d namespaces open, %v evicted (lru)", mode, open, lru)
	if open > floodMax || lru < float64(byCode[200]+1-floodMax) || !slices.Contains(s.Namespaces(), DefaultNamespace) {
		t.Errorf("%d open (at most %d, default among them), %v evicted (want at least %d)", open, floodMax, lru, byCode[200]+1-floodMax)
	}

	// The health page with 1,000 namespaces: summary first, small.
	page := send(h, "GET", "/")
	if page.Code != 200 || page.Body.Len() > maxPageBytes {
		t.Errorf("health page with %d namespaces: %d, %d bytes, want 200 and at most %d", open, page.Code, page.Body.Len(), maxPageBytes)
	}
	t.Logf("health page with %d namespaces open: %d bytes", open, page.Body.Len())
	body := page.Body.String()
	if !strings.Contains(body, `data-summary="namespaces">`+strconv.Itoa(open)+`<`) {
		t.Errorf("health page lacks the summary of %d namespaces: %.2000s", open, body)
	}
	if n := strings.Count(body, "data-shard="); n > maxPageNamespaces*floodShards {
		t.Errorf("health page shows %d shard rows, want at most %d", n, maxPageNamespaces*floodShards)
	}
	last := names[floodExisting-1] // served in both modes, and among the most recently used
	if one := send(h, "GET", "/?namespace="+last).Body.String(); !strings.Contains(one, `data-shard="`+last+`/1"`) {
		t.Errorf("page of namespace %s lacks its shards: %.2000s", last, one)
	}

	// The first names were evicted (least recently used): they reopen
	// without a creation token, above every ID they handed out.
	for _, k := range []int{0, 1, 2, 3} {
		if answers[k].code != 200 {
			continue
		}
		if slices.Contains(s.Namespaces(), names[k]) {
			t.Errorf("%s, among the least recently used, still open", names[k])
		}
		above(t, names[k], answers[k].ids, post(t, h, names[k], 3))
	}
	// New names past the bound still get 429; existing ones keep working.
	if mode == CreateAuto {
		r := do(t, h, "POST", "/v1/ids/"+prefix+"late")
		if r.code != 429 || r.body["code"] != codeTooManyNamespaces {
			t.Errorf("new name past the bound: %d %s, want 429 too_many_namespaces", r.code, r.raw)
		}
	}
}
