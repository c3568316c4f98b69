package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// newServer builds a Server on cl and closes it when the test ends.
func newServer(tb testing.TB, cfg Config) *Server {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s, err := New(cfg)
	if err != nil {
		tb.Fatalf("server.New: %v", err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return s
}

type result struct {
	code   int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends one request to h and checks what every answer must have: a JSON
// object body, Content-Type application/json and Cache-Control no-store;
// and every error answer: a one-line message without a node address, a
// documented code, and Retry-After exactly on 503 and 429.
func do(tb testing.TB, h http.Handler, method, target string) result {
	tb.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, target, nil))
	res := result{code: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("%s %s: Content-Type %q, want application/json", method, target, ct)
	}
	if cc := res.header.Get("Cache-Control"); cc != "no-store" {
		tb.Errorf("%s %s: Cache-Control %q, want no-store", method, target, cc)
	}
	if method != http.MethodHead {
		if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
			tb.Errorf("%s %s: body is not a JSON object: %v: %q", method, target, err, res.raw)
		}
	}
	if res.code != http.StatusOK && method != http.MethodHead {
		checkErrorBody(tb, method+" "+target, res.body)
	}
	if res.code != http.StatusOK {
		retry := res.header.Get("Retry-After")
		if busy := res.code == http.StatusServiceUnavailable || res.code == http.StatusTooManyRequests; busy != (retry != "") {
			tb.Errorf("%s %s: %d with Retry-After %q", method, target, res.code, retry)
		}
	}
	return res
}

// checkErrorBody checks the members of an error body.
var namedMaster = regexp.MustCompile(`Redis master [0-9A-Za-z.:\[\]-]+ has no replica`)

func checkErrorBody(tb testing.TB, what string, body map[string]any) {
	tb.Helper()
	msg, _ := body["error"].(string)
	code, _ := body["code"].(string)
	// The one address a message may carry: the master an operator must
	// give a replica (errorOf, ErrNotReplicated; issue 19).
	msg = namedMaster.ReplaceAllString(msg, "Redis master <master> has no replica")
	if msg == "" || strings.ContainsAny(msg, "\r\n") || strings.Contains(msg, "127.0.0.") {
		tb.Errorf("%s: error message %q: want one line, without node addresses", what, msg)
	}
	if !slices.Contains(documentedCodes, code) {
		tb.Errorf("%s: code %q is not one of %v", what, code, documentedCodes)
	}
}

func ids(tb testing.TB, r result) []int64 {
	tb.Helper()
	var body struct {
		Namespace string  `json:"namespace"`
		IDs       []int64 `json:"ids"`
	}
	if err := json.Unmarshal([]byte(r.raw), &body); err != nil {
		tb.Fatalf("decoding %q: %v", r.raw, err)
	}
	return body.IDs
}

// TestServer runs against one real local cluster (3 masters, 1 replica each).
func TestServer(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portServer})
	cl := lc.Dial(cluster.Config{})

	t.Run("StatusCodes", func(t *testing.T) { testStatusCodes(t, cl) })
	t.Run("Shards", func(t *testing.T) { testShards(t, cl) })
	t.Run("Readyz", func(t *testing.T) { testReadyz(t, cl) })
	t.Run("ConcurrentOpen", func(t *testing.T) { testConcurrentOpen(t, cl) })
	t.Run("MaxNamespaces", func(t *testing.T) { testMaxNamespaces(t, cl) })
	t.Run("ClosedCluster", func(t *testing.T) { testClosedCluster(t, lc) })
	t.Run("ClosedServer", func(t *testing.T) { testClosedServer(t, cl) })
	t.Run("HTTPServer", func(t *testing.T) { testHTTPServer(t, cl) })
	t.Run("OpenAPI", func(t *testing.T) { testOpenAPI(t, cl) })
	t.Run("Leases", func(t *testing.T) { testLeases(t, cl) })
}

func testStatusCodes(t *testing.T, cl *cluster.Cluster) {
	// Namespace "x" exists with 4 shards; the server creates namespaces with 6.
	c4, err := client.New(context.Background(), client.Config{Cluster: cl, Namespace: "x", Shards: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("client.New x/4: %v", err)
	}
	defer c4.Close()
	h := newServer(t, Config{Cluster: cl, Shards: 6}).Handler()

	long := strings.Repeat("a", 64)
	tests := []struct {
		name, method, target string
		code                 int
		ids                  int    // 200: IDs in the answer
		allow                string // 405: Allow header
		errCode              string // the error code
	}{
		{"default count", "POST", "/v1/ids/orders", 200, 1, "", ""},
		{"count 5", "POST", "/v1/ids/orders?count=5", 200, 5, "", ""},
		{"count max", "POST", "/v1/ids/orders?count=10000", 200, 10000, "", ""},
		{"count with other params", "POST", "/v1/ids/orders?x=1&count=3", 400, 0, "", codeBadParameter},
		{"empty count", "POST", "/v1/ids/orders?count=", 400, 0, "", codeBadCount},
		{"64 characters", "POST", "/v1/ids/" + long, 200, 1, "", ""},
		{"every character class", "POST", "/v1/ids/Az09_.-?count=2", 200, 2, "", ""},

		{"count 0", "POST", "/v1/ids/orders?count=0", 400, 0, "", codeBadCount},
		{"count negative", "POST", "/v1/ids/orders?count=-1", 400, 0, "", codeBadCount},
		{"count too big", "POST", "/v1/ids/orders?count=10001", 400, 0, "", codeBadCount},
		{"count huge", "POST", "/v1/ids/orders?count=99999999999999999999", 400, 0, "", codeBadCount},
		{"count not a number", "POST", "/v1/ids/orders?count=abc", 400, 0, "", codeBadCount},
		{"count fraction", "POST", "/v1/ids/orders?count=1.5", 400, 0, "", codeBadCount},
		{"65 characters", "POST", "/v1/ids/" + long + "a", 400, 0, "", codeBadNamespace},
		{"brace", "POST", "/v1/ids/a%7Bb%7D", 400, 0, "", codeBadNamespace},
		{"colon", "POST", "/v1/ids/a:b", 400, 0, "", codeBadNamespace},
		{"escaped slash", "POST", "/v1/ids/a%2Fb", 400, 0, "", codeBadNamespace},
		{"space", "POST", "/v1/ids/a%20b", 400, 0, "", codeBadNamespace},
		{"no namespace", "POST", "/v1/ids/", 400, 0, "", codeBadNamespace},
		{"two segments", "POST", "/v1/ids/a/b", 400, 0, "", codeBadNamespace},

		{"GET ids", "GET", "/v1/ids/orders", 405, 0, "POST", codeMethodNotAllowed},
		{"PUT ids", "PUT", "/v1/ids/orders", 405, 0, "POST", codeMethodNotAllowed},
		{"DELETE ids", "DELETE", "/v1/ids/orders?count=3", 405, 0, "POST", codeMethodNotAllowed},
		{"POST shards", "POST", "/v1/shards", 405, 0, "GET, HEAD", codeMethodNotAllowed},
		{"POST healthz", "POST", "/healthz", 405, 0, "GET, HEAD", codeMethodNotAllowed},
		{"DELETE readyz", "DELETE", "/readyz", 405, 0, "GET, HEAD", codeMethodNotAllowed},

		// x exists with 4 shards: the server's --shards is only for new namespaces.
		{"served with the stored N", "POST", "/v1/ids/x", 200, 1, "", ""},
		{"served with the stored N again", "POST", "/v1/ids/x?count=3", 200, 3, "", ""},

		{"unknown route", "GET", "/v2/ids/orders", 404, 0, "", codeNotFound},
		{"root POST", "POST", "/", 405, 0, "GET, HEAD", codeMethodNotAllowed},
		{"unknown v1", "GET", "/v1/nope", 404, 0, "", codeNotFound},
	}
	seen := map[int64]string{}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, h, tc.method, tc.target)
			if r.code != tc.code {
				t.Fatalf("%s %s: status %d, want %d: %s", tc.method, tc.target, r.code, tc.code, r.raw)
			}
			if tc.allow != "" && r.header.Get("Allow") != tc.allow {
				t.Errorf("Allow %q, want %q", r.header.Get("Allow"), tc.allow)
			}
			if code, _ := r.body["code"].(string); code != tc.errCode {
				t.Errorf("code %q, want %q: %s", code, tc.errCode, r.raw)
			}
			if tc.code != 200 {
				return
			}
			got := ids(t, r)
			if len(got) != tc.ids {
				t.Fatalf("%d IDs, want %d", len(got), tc.ids)
			}
			ns := r.body["namespace"]
			for _, id := range got {
				if id <= 0 {
					t.Fatalf("ID %d not positive", id)
				}
				key := fmt.Sprint(ns)
				if prev, dup := seen[id]; dup && prev == key {
					t.Fatalf("ID %d handed out twice in namespace %s", id, key)
				}
				seen[id] = key
			}
		})
	}
}

func testShards(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: 6})
	h := s.Handler()
	do(t, h, "POST", "/v1/ids/orders")

	var all struct {
		Shards []struct {
			Namespace string `json:"namespace"`
			Index     int    `json:"index"`
			Key       string `json:"key"`
			Node      string `json:"node"`
			NodeID    string `json:"node_id"`
			State     string `json:"state"`
			Healthy   bool   `json:"healthy"`
		} `json:"shards"`
		Namespaces, Healthy, Total int
		Cluster                    struct {
			Masters []struct {
				Addr     string `json:"addr"`
				ID       string `json:"id"`
				Replicas []struct {
					Addr string `json:"addr"`
				} `json:"replicas"`
				Slots [][2]int `json:"slots"`
			} `json:"masters"`
			Generation uint64 `json:"generation"`
		} `json:"cluster"`
	}
	r := do(t, h, "GET", "/v1/shards")
	if r.code != 200 {
		t.Fatalf("GET /v1/shards: %d %s", r.code, r.raw)
	}
	if err := json.Unmarshal([]byte(r.raw), &all); err != nil {
		t.Fatal(err)
	}
	if all.Namespaces != 2 || all.Total != 12 || len(all.Shards) != 12 || all.Healthy != 12 {
		t.Fatalf("namespaces %d total %d shards %d healthy %d, want 2, 12, 12, 12: %s", all.Namespaces, all.Total, len(all.Shards), all.Healthy, r.raw)
	}
	for _, sh := range all.Shards {
		if sh.Key == "" || sh.Node == "" || sh.NodeID == "" || sh.State != "closed" || !sh.Healthy {
			t.Errorf("incomplete row %+v", sh)
		}
	}
	if len(all.Cluster.Masters) != 3 || all.Cluster.Generation == 0 {
		t.Fatalf("cluster %+v, want 3 masters and a generation", all.Cluster)
	}
	for _, m := range all.Cluster.Masters {
		if m.Addr == "" || len(m.ID) != 40 || len(m.Replicas) != 1 || len(m.Slots) == 0 {
			t.Errorf("incomplete master %+v", m)
		}
	}

	r = do(t, h, "GET", "/v1/shards?namespace=orders")
	if err := json.Unmarshal([]byte(r.raw), &all); err != nil || r.code != 200 {
		t.Fatalf("?namespace=orders: %d %v %s", r.code, err, r.raw)
	}
	if all.Total != 6 || all.Namespaces != 2 {
		t.Fatalf("?namespace=orders: total %d namespaces %d, want 6 and 2", all.Total, all.Namespaces)
	}
	for i, sh := range all.Shards {
		if sh.Namespace != "orders" || sh.Index != i {
			t.Errorf("row %d: %s/%d", i, sh.Namespace, sh.Index)
		}
	}
	if r := do(t, h, "GET", "/v1/shards?namespace=never-opened"); r.code != 404 {
		t.Errorf("unopened namespace: %d, want 404", r.code)
	}
	if r := do(t, h, "GET", "/v1/shards?namespace=a%7Bb"); r.code != 400 {
		t.Errorf("bad namespace: %d, want 400", r.code)
	}
	if got := s.Namespaces(); len(got) != 2 {
		t.Errorf("GET /v1/shards opened namespaces: %v", got)
	}
	if r := do(t, h, "HEAD", "/v1/shards"); r.code != 200 {
		t.Errorf("HEAD /v1/shards: %d", r.code)
	}
}

func testReadyz(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: 6})
	h := s.Handler()
	if r := do(t, h, "GET", "/healthz"); r.code != 200 {
		t.Fatalf("healthz %d", r.code)
	}
	r := do(t, h, "GET", "/readyz")
	if r.code != 200 || r.body["ready"] != true || r.body["healthy"] != float64(6) {
		t.Fatalf("readyz %d %s, want 200 with 6 healthy", r.code, r.raw)
	}
	s.Drain()
	r = do(t, h, "GET", "/readyz")
	if r.code != 503 || r.body["ready"] != false || !strings.Contains(fmt.Sprint(r.body["reason"]), "draining") {
		t.Fatalf("readyz while draining: %d %s, want 503", r.code, r.raw)
	}
	// Draining stops new traffic from arriving, not the traffic in flight.
	if r := do(t, h, "POST", "/v1/ids/orders"); r.code != 200 {
		t.Fatalf("POST while draining: %d %s", r.code, r.raw)
	}
	if r := do(t, h, "GET", "/healthz"); r.code != 200 {
		t.Fatalf("healthz while draining %d", r.code)
	}
}

// countingHandler counts log records with a given message.
type countingHandler struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		h.n.Add(1)
	}
	return nil
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }

func testConcurrentOpen(t *testing.T, cl *cluster.Cluster) {
	var opens atomic.Int64
	log := slog.New(countingHandler{Handler: slog.DiscardHandler, msg: "namespace open", n: &opens})
	s := newServer(t, Config{Cluster: cl, Shards: 6, Logger: log})
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()

	const goroutines, each = 32, 20
	var (
		mu   sync.Mutex
		seen = map[int64]bool{}
		wg   sync.WaitGroup
	)
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for k := range each {
				count := 1 + (g+k)%7
				resp, err := srv.Client().Post(fmt.Sprintf("%s/v1/ids/concurrent?count=%d", srv.URL, count), "", nil)
				if err != nil {
					t.Error(err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d: %s", resp.StatusCode, b)
					return
				}
				got := ids(t, result{raw: string(b)})
				if len(got) != count {
					t.Errorf("%d IDs, want %d", len(got), count)
				}
				mu.Lock()
				for _, id := range got {
					if seen[id] {
						t.Errorf("ID %d handed out twice", id)
					}
					seen[id] = true
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	// default at New, then "concurrent" once, however many asked at once.
	if n := opens.Load(); n != 2 {
		t.Fatalf("namespaces opened %d times, want 2 (default + concurrent once)", n)
	}
	if got := s.Namespaces(); strings.Join(got, ",") != "concurrent,default" {
		t.Fatalf("open namespaces %v", got)
	}
}

// testMaxNamespaces: past MaxNamespaces the least recently used namespace
// (never the default one) closes to make room, and opens again on its next
// request, above every ID it handed out.
func testMaxNamespaces(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: 6, MaxNamespaces: 3})
	h := s.Handler()
	var m1 []int64
	for _, ns := range []string{"m1", "m2", "m1", "default"} {
		r := do(t, h, "POST", "/v1/ids/"+ns+"?count=50")
		if r.code != 200 {
			t.Fatalf("%s: %d %s", ns, r.code, r.raw)
		}
		if ns == "m1" {
			m1 = append(m1, ids(t, r)...)
		}
	}
	// m2 is the least recently used now.
	if r := do(t, h, "POST", "/v1/ids/m3"); r.code != 200 {
		t.Fatalf("namespace beyond the limit: %d %s, want 200 (the least recently used one closes)", r.code, r.raw)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if got := strings.Join(s.Namespaces(), ","); got != "default,m1,m3" {
			return fmt.Errorf("open namespaces %s, want default,m1,m3 (m2 evicted)", got)
		}
		return nil
	})
	if v := value(t, s.Metrics(), "shardseq_namespace_evictions_total", map[string]string{"reason": "lru"}); v != 1 {
		t.Errorf("lru evictions %v, want 1", v)
	}
	// m1 is the least recently used now; m2 reopens in its place.
	if r := do(t, h, "POST", "/v1/ids/m2?count=2"); r.code != 200 {
		t.Fatalf("m2 after eviction: %d %s", r.code, r.raw)
	}
	clustertest.Eventually(t, 5*time.Second, func() error {
		if got := strings.Join(s.Namespaces(), ","); got != "default,m2,m3" {
			return fmt.Errorf("open namespaces %s, want default,m2,m3 (m1 evicted)", got)
		}
		return nil
	})
	r := do(t, h, "POST", "/v1/ids/m1?count=50")
	if r.code != 200 {
		t.Fatalf("m1 after eviction: %d %s", r.code, r.raw)
	}
	top := slices.Max(m1)
	for _, id := range ids(t, r) {
		if id <= top {
			t.Fatalf("m1 reopened handed out %d, not above %d, the highest before it closed", id, top)
		}
	}
}

// testClosedCluster: a server whose cluster connection is gone answers 503,
// for namespaces already open and for new ones.
func testClosedCluster(t *testing.T, lc *clustertest.Cluster) {
	cl := lc.Dial(cluster.Config{})
	s := newServer(t, Config{Cluster: cl, Shards: 6})
	h := s.Handler()
	if r := do(t, h, "POST", "/v1/ids/before"); r.code != 200 {
		t.Fatalf("before closing: %d %s", r.code, r.raw)
	}
	if err := cl.Close(); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{
		"/v1/ids/default",            // open, nothing buffered: needs Redis
		"/v1/ids/before?count=10000", // open, more than buffered
		"/v1/ids/after",              // new: opening needs Redis
	} {
		r := do(t, h, "POST", target)
		if r.code != 503 {
			t.Errorf("%s on a closed cluster: %d %s, want 503", target, r.code, r.raw)
		}
		t.Logf("%s -> %d %s", target, r.code, strings.TrimSpace(r.raw))
	}
	// Readiness follows the breakers of the default namespace: they open
	// after BreakerConfig.Failures failures in a row (default 2), so keep
	// asking until they do.
	deadline := time.Now().Add(10 * time.Second)
	for {
		do(t, h, "POST", "/v1/ids/default")
		r := do(t, h, "GET", "/readyz")
		if r.code == 503 {
			if r.body["healthy"] != float64(0) {
				t.Errorf("readyz 503 with healthy shards: %s", r.raw)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz on a closed cluster still %d %s after 10s, want 503", r.code, r.raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// One breaker series per state: exactly one is 1 for each shard, and
	// the shards that failed are not closed.
	notClosed := 0.0
	for i := range 6 {
		sum := 0.0
		for _, state := range breakerStates {
			v := value(t, s.Metrics(), "shardseq_breaker_state", map[string]string{"namespace": DefaultNamespace, "shard": fmt.Sprint(i), "state": state})
			sum += v
			if state != "closed" {
				notClosed += v
			}
		}
		if sum != 1 {
			t.Errorf("shard %d: the breaker state series add up to %v, want 1", i, sum)
		}
	}
	if notClosed == 0 {
		t.Errorf("every breaker of a closed cluster's namespace reports closed")
	}
}

func testClosedServer(t *testing.T, cl *cluster.Cluster) {
	s, err := New(Config{Cluster: cl, Shards: 6, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	do(t, h, "POST", "/v1/ids/orders")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	for _, target := range []string{"/v1/ids/orders", "/v1/ids/new"} {
		if r := do(t, h, "POST", target); r.code != 503 {
			t.Errorf("%s after Close: %d %s, want 503", target, r.code, r.raw)
		}
	}
	if r := do(t, h, "GET", "/readyz"); r.code != 503 {
		t.Errorf("readyz after Close: %d, want 503", r.code)
	}
}

// testHTTPServer exercises the real listener: timeouts set, body limited.
func testHTTPServer(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: 6})
	hs := NewHTTPServer("127.0.0.1:0", s.Handler(), slog.New(slog.DiscardHandler))
	if hs.ReadHeaderTimeout == 0 || hs.ReadTimeout == 0 || hs.WriteTimeout == 0 || hs.IdleTimeout == 0 || hs.MaxHeaderBytes == 0 {
		t.Fatalf("unset limits: %+v", hs)
	}
	srv := httptest.NewUnstartedServer(s.Handler())
	srv.Config = hs
	srv.Start()
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/ids/orders?count=3", "application/octet-stream", strings.NewReader(strings.Repeat("x", 1<<20)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || len(ids(t, result{raw: string(b)})) != 3 {
		t.Fatalf("POST with an ignored body: %d %s", resp.StatusCode, b)
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := New(Config{}); !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "Cluster") {
		t.Fatalf("no cluster: %v", err)
	}
}

func TestErrorOf(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 7000}, Err: errors.New("connect: connection refused")}
	everyShard := errors.Join(fmt.Errorf("shard 0 on 127.0.0.1:7000: %w", refused), errors.New("shard 1 on 127.0.0.2:7001: not replicated"))
	tests := []struct {
		name   string
		err    error
		status int
		code   string
		retry  int
		msgHas string
	}{
		{"bad namespace", errBadNamespace, 400, codeBadNamespace, 0, client.NamespacePattern},
		{"bad count", errBadCount, 400, codeBadCount, 0, "from 1 to 10000"},
		{"unauthorized", public(errUnauthorized, "invalid bearer token"), 401, codeUnauthorized, 0, "invalid bearer token"},
		{"no route", errNotFound, 404, codeNotFound, 0, "no route"},
		{"namespace not open", public(errNamespaceNotOpen, "namespace %q is not open", "ns"), 404, codeNotFound, 0, `namespace "ns" is not open`},
		{"method", public(errMethodNotAllowed, "use %s", "POST"), 405, codeMethodNotAllowed, 0, "use POST"},
		{"shard count mismatch", fmt.Errorf("open: %w", client.ErrShardCountMismatch), 409, codeNamespaceConflict, 0, "another shard count"},
		{"too many namespaces", fmt.Errorf("%w: at most 3", ErrTooManyNamespaces), 429, codeTooManyNamespaces, retryShort, "too many new namespaces"},
		{"creation bound", &RetryError{Err: ErrTooManyNamespaces, RetryAfter: 2500 * time.Millisecond, Msg: "namespace \"x\" is new"}, 429, codeTooManyNamespaces, 3, `"x" is new`},
		{"creation bound, short wait", &RetryError{Err: ErrTooManyNamespaces, RetryAfter: time.Millisecond, Msg: "new"}, 429, codeTooManyNamespaces, 1, "new"},
		{"namespace not found", fmt.Errorf("open: %w", client.ErrNamespaceNotFound), 404, codeNamespaceNotFound, 0, "does not exist"},
		{"namespace not found, explicit", public(fmt.Errorf("open: %w", client.ErrNamespaceNotFound), "namespace %q does not exist; create it", "x"), 404, codeNamespaceNotFound, 0, "create it"},
		{"no master serving", ErrNoMasterServing, 503, codeUnavailable, retryShort, "last probe"},
		{"still opening", stillOpening(expired(), "ns"), 503, codeUnavailable, retryShort, `namespace "ns" is still being opened`},
		{"not ready", public(errNotReady, "not ready: draining"), 503, codeUnavailable, retryShort, "not ready: draining"},
		{"server closed", ErrClosed, 503, codeUnavailable, retryShort, "shutting down"},
		{"client closed", fmt.Errorf("x: %w", client.ErrClosed), 503, codeUnavailable, retryShort, "shutting down"},
		{"cluster closed", cluster.ErrClosed, 503, codeUnavailable, retryShort, "shutting down"},
		{"go-redis closed", redis.ErrClosed, 503, codeUnavailable, retryShort, "shutting down"},
		{"no healthy shard, joined errors with addresses", fmt.Errorf("%w: %w", client.ErrNoHealthyShard, everyShard), 503, codeUnavailable, retryShort, "no shard"},
		{"deadline", fmt.Errorf("next: %w", context.DeadlineExceeded), 503, codeUnavailable, retryShort, "timed out"},
		{"stalled past the deadline", fmt.Errorf("%w: %w", client.ErrStalled, context.DeadlineExceeded), 503, codeUnavailable, retryShort, "this server was stopped"},
		{"stalled reservations", fmt.Errorf("%w: %w", client.ErrNoHealthyShard, client.ErrStalled), 503, codeUnavailable, retryShort, "this server was stopped"},
		{"cancelled", context.Canceled, 503, codeUnavailable, retryShort, "cancelled"},
		{"unreachable", fmt.Errorf("x: %w: %w", cluster.ErrUnreachable, refused), 503, codeUnavailable, retryShort, "Redis Cluster"},
		{"no master", cluster.ErrNoMaster, 503, codeUnavailable, retryShort, "Redis Cluster"},
		{"network error alone", refused, 503, codeUnavailable, retryShort, "Redis Cluster"},
		{"not replicated, no master", fmt.Errorf("creating: %w: 0 of 1 replicas", client.ErrNotReplicated), 503, codeUnavailable, retryShort, "has no replica"},
		{"something else", fmt.Errorf("on 127.0.0.1:7000: %w", errors.New("boom\nsecond line")), 500, codeInternal, 0, "internal error"},
		{"panic", fmt.Errorf("server: panic: %v", "boom"), 500, codeInternal, 0, "internal error"},
	}
	for _, tc := range tests {
		e := errorOf(tc.err)
		if e.status != tc.status || e.code != tc.code || e.retryAfter != tc.retry || !strings.Contains(e.msg, tc.msgHas) {
			t.Errorf("%s: errorOf(%q) = %+v, want %d %s retry %d with %q", tc.name, tc.err, e, tc.status, tc.code, tc.retry, tc.msgHas)
		}
		if strings.ContainsAny(e.msg, "\r\n") || strings.Contains(e.msg, "127.0.0.") || strings.Contains(e.msg, "boom") {
			t.Errorf("%s: public message %q leaks the error %q", tc.name, e.msg, tc.err)
		}
		if busy := e.status == 503 || e.status == 429; busy != (e.retryAfter > 0) {
			t.Errorf("%s: status %d with Retry-After %d", tc.name, e.status, e.retryAfter)
		}
		if !slices.Contains(documentedCodes, e.code) {
			t.Errorf("%s: undocumented code %q", tc.name, e.code)
		}
	}
}

// A write no replica confirmed (a master with no replica yet, issue 19) is
// 503 unavailable, and the message names the master the operator must fix:
// the one address a public message carries, taken from the error's
// structure, never from its text.
func TestErrorOfNotReplicatedNamesTheMaster(t *testing.T) {
	err := fmt.Errorf("shard: creating shard 3 of \"x\": %w", &client.NodeError{Addr: "127.0.0.1:7216",
		Err: fmt.Errorf("%w: 0 of 1 replicas of 127.0.0.1:7216 confirmed within 700ms\nboom", client.ErrNotReplicated)})
	e := errorOf(err)
	if e.status != 503 || e.code != codeUnavailable || e.retryAfter != retryShort {
		t.Fatalf("errorOf = %+v, want 503 %s with Retry-After", e, codeUnavailable)
	}
	if !strings.Contains(e.msg, "master 127.0.0.1:7216 has no replica") || strings.ContainsAny(e.msg, "\r\n") || strings.Contains(e.msg, "boom") {
		t.Errorf("message %q: want the master named, one line, nothing of the error's text", e.msg)
	}
}

// expired is a context whose deadline passed.
func expired() context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(1, 0))
	_ = cancel
	return ctx
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	writeError(rec, fmt.Errorf("%w: %w", client.ErrNoHealthyShard, errors.New("shard 0: dial 127.0.0.1:7000")))
	want := `{"error":"no shard of the namespace can serve now: their masters are down or not replicating","code":"unavailable"}` + "\n"
	if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" || rec.Body.String() != want {
		t.Fatalf("writeError: %d %v %q, want 503, Retry-After 1, %q", rec.Code, rec.Header(), rec.Body, want)
	}
}

func TestRecoverer(t *testing.T) {
	var logged atomic.Int64
	s := &Server{log: slog.New(countingHandler{Handler: slog.DiscardHandler, msg: "panic serving request", n: &logged})}
	h := s.recoverer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	r := do(t, h, "POST", "/v1/ids/x")
	if r.code != 500 || r.body["error"] != "internal error" {
		t.Fatalf("panic: %d %s, want 500 internal error", r.code, r.raw)
	}
	if strings.Contains(r.raw, "boom") {
		t.Errorf("panic value leaked: %s", r.raw)
	}
	if logged.Load() != 1 {
		t.Errorf("panic logged %d times, want 1", logged.Load())
	}
}

func TestParseIDRequest(t *testing.T) {
	tests := []struct {
		ns, query string
		wantN     int
		code      string // "": accepted
	}{
		{"orders", "", 1, ""},
		{"orders", "count=1", 1, ""},
		{"orders", "count=10000", 10000, ""},
		{"orders", "count=7&", 7, ""},
		{"a", "count=5", 5, ""},
		{"a", "c%6Funt=5", 5, ""},
		{strings.Repeat("z", 64), "", 1, ""},
		{"", "", 0, codeBadNamespace},
		{strings.Repeat("z", 65), "", 0, codeBadNamespace},
		{"a b", "", 0, codeBadNamespace},
		{"a{b}", "", 0, codeBadNamespace},
		{"a:b", "", 0, codeBadNamespace},
		{"é", "", 0, codeBadNamespace},
		{"orders", "count=0", 0, codeBadCount},
		{"orders", "count=-3", 0, codeBadCount},
		{"orders", "count=10001", 0, codeBadCount},
		{"orders", "count=1e3", 0, codeBadCount},
		{"orders", "count=%205", 0, codeBadCount},
		{"orders", "count=0x10", 0, codeBadCount},
		{"orders", "count=", 0, codeBadCount},
		{"orders", "count", 0, codeBadCount},
		{"orders", "count=+3", 0, codeBadCount},
		{"orders", "count=%2B3", 0, codeBadCount},
		{"orders", "count=03", 0, codeBadCount},
		{"orders", "count=007", 0, codeBadCount},
		{"orders", "count=99999999999", 0, codeBadCount},
		{"orders", "cnt=3", 0, codeBadParameter},
		{"orders", "count=1&count=2", 0, codeBadParameter},
		{"orders", "count=1&count=1", 0, codeBadParameter},
		{"orders", "count=1;x=2", 0, codeBadParameter},
		{"orders", "count=%zz", 0, codeBadParameter},
		{"orders", "Count=3", 0, codeBadParameter},
		{"a:b", "cnt=3", 0, codeBadParameter}, // the query first
	}
	for _, tc := range tests {
		ns, n, err := parseIDRequest(tc.ns, tc.query)
		if got := requestCode(err); got != tc.code || (tc.code == "" && (ns != tc.ns || n != tc.wantN)) {
			t.Errorf("parseIDRequest(%q, %q) = %q, %d, %v (code %q); want code %q n=%d", tc.ns, tc.query, ns, n, err, got, tc.code, tc.wantN)
		}
	}
}

// requestCode is the code writeRequestError answers err with; "" for nil.
func requestCode(err error) string {
	if err == nil {
		return ""
	}
	rec := httptest.NewRecorder()
	writeRequestError(rec, err)
	var e errorBody
	if json.Unmarshal(rec.Body.Bytes(), &e) != nil || rec.Code != http.StatusBadRequest {
		return fmt.Sprintf("status %d: %s", rec.Code, rec.Body)
	}
	return e.Code
}

func FuzzParseIDRequest(f *testing.F) {
	for _, s := range [][2]string{{"orders", ""}, {"orders", "count=5"}, {"a.b-c_d", "count=10000"}, {"", "count=1"},
		{"x{y}", "count=-1"}, {"ok", "count=10001"}, {"ok", "count=+7"}, {"ok", "count=1&count=2"}, {"ok", "cnt=3"}, {"ok", "count=%31"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, ns, query string) {
		got, n, err := parseIDRequest(ns, query)
		if err != nil {
			if got != "" || n != 0 {
				t.Fatalf("error with values %q %d", got, n)
			}
			if code := requestCode(err); code != codeBadNamespace && code != codeBadCount && code != codeBadParameter {
				t.Fatalf("error %v answers %s, not a 400 bad_namespace, bad_count or bad_parameter", err, code)
			}
			return
		}
		if got != ns || n < 1 || n > MaxCount || len(ns) < 1 || len(ns) > 64 {
			t.Fatalf("accepted %q %q as %q %d", ns, query, got, n)
		}
		for _, r := range ns {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '.' || r == '-') {
				t.Fatalf("accepted namespace %q with %q", ns, r)
			}
		}
		// What was accepted, url.ParseQuery reads the same: one count at
		// most, spelled as the number is.
		q, perr := url.ParseQuery(query)
		if perr != nil || len(q) > 1 || len(q["count"]) > 1 {
			t.Fatalf("accepted query %q, which url.ParseQuery reads as %v, %v", query, q, perr)
		}
		if c, ok := q["count"]; ok && c[0] != strconv.Itoa(n) || !ok && len(q) == 0 && n != 1 {
			t.Fatalf("query %q gave %d", query, n)
		}
	})
}
