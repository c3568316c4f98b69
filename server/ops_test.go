package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/internal/lab/tlstest"
	"github.com/shardseq/shardseq/internal/version"
)

// testToken is a valid bearer token of the tests.
const testToken = "test-token-0123456789abcdef"

// TestOperations covers what operators use: metrics, authentication, the
// health page, Redis ACL users; on one real cluster.
func TestOperations(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portOps})
	cl := lc.Dial(cluster.Config{})

	t.Run("Metrics", func(t *testing.T) { testMetrics(t, cl) })
	t.Run("Auth", func(t *testing.T) { testAuth(t, cl) })
	t.Run("Scopes", func(t *testing.T) { testScopes(t, cl) })
	t.Run("Page", func(t *testing.T) { testPage(t, cl) })
	t.Run("RedisACL", func(t *testing.T) { testRedisACL(t, lc) })
	t.Run("HTTPTLS", func(t *testing.T) { testHTTPTLS(t, cl) })
	t.Run("HostileRequests", func(t *testing.T) { testHostileRequests(t, cl) })
}

// testHostileRequests sends a bounded stream of random requests (seeded,
// logged): none may get a 500 or panic, and every ID handed out is new.
func testHostileRequests(t *testing.T, cl *cluster.Cluster) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	s := newServer(t, Config{Cluster: cl, Shards: 4, MaxNamespaces: 5, Tokens: []string{testToken}})
	h := s.Handler()
	pieces := []string{"v1", "ids", "shards", "orders", "..", "%2e%2e", "%00", "{namespace}", "a{b}", "x%7Fy", "metrics", "readyz",
		strings.Repeat("n", 70), "ns.1", "ns-2", "ns_3", "ns4", "ns5", "ns6", "", "?", "count=", "é"}
	counts := []string{"", "1", "0", "-1", "10000", "10001", "1e3", "0x10", " 5", "5 ", "99999999999999999999", "3&count=4", "%00"}
	methods := []string{"GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH"}
	auths := []string{"", "Bearer " + testToken, "Bearer " + testToken + "x", "Bearer", "Basic x", strings.Repeat("B", 600)}
	type key struct {
		ns string
		id int64
	}
	seen := map[key]bool{} // IDs are unique within a namespace
	for range 1500 {
		path := ""
		for n := rng.IntN(4) + 1; n > 0; n-- {
			path += "/" + pieces[rng.IntN(len(pieces))]
		}
		if rng.IntN(3) == 0 {
			path = "/v1/ids/" + pieces[rng.IntN(len(pieces))]
		}
		target := path + "?count=" + counts[rng.IntN(len(counts))]
		req, err := http.NewRequest(methods[rng.IntN(len(methods))], "http://x"+target, nil)
		if err != nil {
			continue // not a URL a client could send
		}
		if a := auths[rng.IntN(len(auths))]; a != "" {
			req.Header.Set("Authorization", a)
		}
		if strings.HasPrefix(path, "/v1/ids/") && rng.IntN(2) == 0 { // mostly well-formed: IDs flow
			req.Method = "POST"
			req.Header.Set("Authorization", "Bearer "+testToken)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != 503 {
			t.Fatalf("%s %s: %d %s", req.Method, target, rec.Code, rec.Body)
		}
		if rec.Code != 200 && req.Method != "HEAD" && rec.Header().Get("Content-Type") == "application/json" {
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s %s: %d %q: %v", req.Method, target, rec.Code, rec.Body, err)
			}
			checkErrorBody(t, req.Method+" "+target, body)
		}
		if rec.Code == 200 && req.Method == "POST" && strings.HasPrefix(req.URL.Path, "/v1/ids/") {
			var body struct {
				Namespace string
				IDs       []int64
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%s: %v", target, err)
			}
			for _, id := range body.IDs {
				k := key{body.Namespace, id}
				if id <= 0 || seen[k] {
					t.Fatalf("%s: ID %d of %q handed out twice or not positive", target, id, body.Namespace)
				}
				seen[k] = true
			}
		}
	}
	if n := len(s.Namespaces()); n > 5 {
		t.Errorf("%d namespaces open, MaxNamespaces is 5", n)
	}
	t.Logf("%d distinct IDs handed out to random requests", len(seen))
}

// send is do without the JSON checks, for routes that answer something else.
func send(h http.Handler, method, target string, hdr ...string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, target, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	h.ServeHTTP(rec, req)
	return rec
}

// gathered finds the sample of family name whose labels include want.
func gathered(t *testing.T, reg prometheus.Gatherer, name string, want map[string]string) (*dto.Metric, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == k && lp.GetValue() == v {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			return m, true
		}
	}
	return nil, false
}

func value(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m, ok := gathered(t, reg, name, labels)
	if !ok {
		t.Fatalf("no sample %s%v", name, labels)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("%s: unexpected metric type", name)
	return 0
}

type countingObserver struct {
	mu sync.Mutex
	n  int
}

func (o *countingObserver) Reserved(string, int, int64, time.Duration, error) {
	o.mu.Lock()
	o.n++
	o.mu.Unlock()
}

func testMetrics(t *testing.T, cl *cluster.Cluster) {
	obs := &countingObserver{}
	s := newServer(t, Config{Cluster: cl, Shards: 4, Client: client.Config{Strict: true, Observer: obs}})
	h := s.Handler()
	for range 3 {
		if r := do(t, h, "POST", "/v1/ids/orders?count=5"); r.code != 200 {
			t.Fatalf("POST: %d %s", r.code, r.raw)
		}
	}
	do(t, h, "GET", "/no/such/path/orders")
	do(t, h, "POST", "/v1/ids/bad%7Bname")
	reg := s.Metrics()

	if got := value(t, reg, "shardseq_ids_issued_total", map[string]string{"namespace": "orders"}); got != 15 {
		t.Errorf("ids issued in orders: %v, want 15", got)
	}
	// Strict mode: one reservation per request (of 5 IDs).
	ok := 0.0
	for i := range 4 {
		ok += testutil.ToFloat64(s.metrics.reservations.WithLabelValues("orders", fmt.Sprint(i), resultOK))
	}
	if ok != 3 {
		t.Errorf("ok reservations in orders: %v, want 3", ok)
	}
	if got := value(t, reg, "shardseq_reservation_duration_seconds", map[string]string{"namespace": "orders"}); got != 3 {
		t.Errorf("reservation latency samples: %v, want 3", got)
	}
	obs.mu.Lock()
	if obs.n < 3 {
		t.Errorf("the template's Observer saw %d reservations, want it chained (>= 3)", obs.n)
	}
	obs.mu.Unlock()
	for i := range 4 {
		l := map[string]string{"namespace": "orders", "shard": fmt.Sprint(i)}
		for state, want := range map[string]float64{"closed": 1, "half-open": 0, "open": 0} {
			if v := value(t, reg, "shardseq_breaker_state", map[string]string{"namespace": "orders", "shard": fmt.Sprint(i), "state": state}); v != want {
				t.Errorf("breaker %v state %s: %v, want %v", l, state, v, want)
			}
		}
		if v := value(t, reg, "shardseq_shard_healthy", l); v != 1 {
			t.Errorf("healthy %v: %v, want 1", l, v)
		}
		if v := value(t, reg, "shardseq_block_size", l); v != 0 && v != 5 {
			t.Errorf("block size %v: %v, want 0 (unused) or 5", l, v)
		}
		value(t, reg, "shardseq_fence_events_total", l)
	}
	if v := value(t, reg, "shardseq_namespaces_open", nil); v != 2 {
		t.Errorf("namespaces open: %v, want 2", v)
	}
	if v := value(t, reg, "shardseq_http_requests_total", map[string]string{"method": "POST", "route": "POST /v1/ids/{namespace}", "code": "200"}); v != 3 {
		t.Errorf("http requests: %v, want 3", v)
	}
	if v := value(t, reg, "shardseq_http_requests_total", map[string]string{"method": "GET", "route": "other", "code": "404"}); v != 1 {
		t.Errorf("unmatched requests: %v, want 1", v)
	}
	if v := value(t, reg, "shardseq_http_request_duration_seconds", map[string]string{"method": "POST", "route": "POST /v1/ids/{namespace}"}); v != 4 {
		t.Errorf("http latency samples of POST /v1/ids/{namespace}: %v, want 4", v)
	}
	send(h, "BREW", "/v1/ids/orders")
	if v := value(t, reg, "shardseq_http_requests_total", map[string]string{"method": "other", "route": "/v1/ids/{namespace}", "code": "405"}); v != 1 {
		t.Errorf("a made-up method: %v, want 1 under method=other", v)
	}
	bi := version.Get()
	if v := value(t, reg, "shardseq_build_info", map[string]string{"version": bi.Version, "revision": bi.Revision, "goversion": runtime.Version()}); v != 1 {
		t.Errorf("build info: %v, want 1", v)
	}
	value(t, reg, "go_goroutines", nil)
	value(t, reg, "process_open_fds", nil)
	// Label values are route patterns, never a path or a namespace from it.
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "shardseq_http_") {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if strings.Contains(lp.GetValue(), "orders") || strings.Contains(lp.GetValue(), "such") {
					t.Errorf("%s has an unbounded label %s=%q", mf.GetName(), lp.GetName(), lp.GetValue())
				}
			}
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "shardseq_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
	if n := testutil.CollectAndCount(&shardCollector{s: s}, "shardseq_breaker_state"); n != 24 {
		t.Errorf("breaker state series: %d, want 24 (2 namespaces x 4 shards x 3 states)", n)
	}

	// The exposition over HTTP.
	rec := send(h, "GET", "/metrics")
	body := rec.Body.String()
	if rec.Code != 200 || !strings.Contains(body, `shardseq_ids_issued_total{namespace="orders"} 15`) ||
		!strings.Contains(body, "# HELP shardseq_breaker_state") {
		t.Errorf("GET /metrics: %d\n%.2000s", rec.Code, body)
	}

	// Results by error class.
	m := s.metrics
	m.Reserved("x", 0, 1, time.Millisecond, fmt.Errorf("wrapped: %w", client.ErrNotReplicated))
	m.Reserved("x", 0, 1, time.Millisecond, fmt.Errorf("wrapped: %w", context.DeadlineExceeded))
	m.Reserved("x", 0, 1, time.Millisecond, io.ErrUnexpectedEOF)
	for _, res := range []string{resultNotReplicated, resultTimeout, resultError} {
		if v := testutil.ToFloat64(m.reservations.WithLabelValues("x", "0", res)); v != 1 {
			t.Errorf("result %s: %v, want 1", res, v)
		}
	}
	if v := testutil.ToFloat64(m.ackFailures.WithLabelValues("x", "0")); v != 1 {
		t.Errorf("ack failures: %v, want 1", v)
	}
}

func testAuth(t *testing.T, cl *cluster.Cluster) {
	other := "second-token-abcdefghijklmnop"
	open := newServer(t, Config{Cluster: cl, Shards: 4, Tokens: []string{testToken, other}})
	locked := newServer(t, Config{Cluster: cl, Shards: 4, Tokens: []string{testToken}, AuthMetrics: true, AuthUI: true})
	tests := []struct {
		name   string
		s      *Server
		method string
		target string
		auth   string
		want   int
	}{
		{"ids without token", open, "POST", "/v1/ids/orders", "", 401},
		{"ids wrong token", open, "POST", "/v1/ids/orders", "Bearer wrong-token-0123456789", 401},
		{"ids token as basic", open, "POST", "/v1/ids/orders", "Basic " + testToken, 401},
		{"ids empty bearer", open, "POST", "/v1/ids/orders", "Bearer ", 401},
		{"ids prefix of token", open, "POST", "/v1/ids/orders", "Bearer " + testToken[:20], 401},
		{"ids token", open, "POST", "/v1/ids/orders", "Bearer " + testToken, 200},
		{"ids second token", open, "POST", "/v1/ids/orders", "Bearer " + other, 200},
		{"ids scheme case", open, "POST", "/v1/ids/orders", "bearer " + testToken, 200},
		{"shards without token", open, "GET", "/v1/shards", "", 401},
		{"shards token", open, "GET", "/v1/shards", "Bearer " + testToken, 200},
		{"bad namespace without token", open, "POST", "/v1/ids/a%7Bb", "", 401},
		{"unknown v1 without token", open, "GET", "/v1/secret", "", 401},
		{"wrong method without token", open, "GET", "/v1/ids/orders", "", 401},
		{"healthz open", locked, "GET", "/healthz", "", 200},
		{"readyz open", locked, "GET", "/readyz", "", 200},
		{"metrics open by default", open, "GET", "/metrics", "", 200},
		{"page open by default", open, "GET", "/", "", 200},
		{"metrics locked", locked, "GET", "/metrics", "", 401},
		{"metrics locked token", locked, "GET", "/metrics", "Bearer " + testToken, 200},
		{"page locked", locked, "GET", "/", "", 401},
		{"page locked token", locked, "GET", "/", "Bearer " + testToken, 200},
	}
	for _, tt := range tests {
		rec := send(tt.s.Handler(), tt.method, tt.target, "Authorization", tt.auth)
		if rec.Code != tt.want {
			t.Errorf("%s: %s %s: %d, want %d: %s", tt.name, tt.method, tt.target, rec.Code, tt.want, rec.Body)
			continue
		}
		if tt.want == 401 {
			if !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q", tt.name, rec.Header().Get("WWW-Authenticate"))
			}
			if rec.Header().Get("Content-Type") != "application/json" || !strings.Contains(rec.Body.String(), `"error"`) {
				t.Errorf("%s: 401 without a JSON error: %q", tt.name, rec.Body)
			}
		}
	}
	if _, err := New(Config{Cluster: cl, Tokens: []string{"short"}}); err == nil {
		t.Error("New accepted a 5-character token")
	}
	if _, err := New(Config{Cluster: cl, AuthMetrics: true}); err == nil {
		t.Error("New accepted AuthMetrics without tokens")
	}
}

// testScopes sends each route with each kind of token over HTTP to a real
// server: 2xx, 401 or 403 as the token's scopes say. The control: the same
// tokens bare (every scope) get no 403 anywhere.
func testScopes(t *testing.T, cl *cluster.Cluster) {
	var logged bytes.Buffer
	var mu sync.Mutex
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logged, mu: &mu}, nil))
	scoped := newServer(t, Config{Cluster: cl, Shards: 4, Tokens: []string{tokAll}, ScopedTokens: scopedTokens,
		AuthMetrics: true, AuthUI: true, Logger: logger})
	var secrets []string
	for _, tok := range scopedTokens {
		secrets = append(secrets, tok.Secret)
	}
	control := newServer(t, Config{Cluster: cl, Shards: 4, Tokens: append([]string{tokAll}, secrets...), AuthMetrics: true, AuthUI: true})
	serve := func(s *Server) string {
		hs := httptest.NewUnstartedServer(s.Handler())
		hs.Config = NewHTTPServer("", s.Handler(), slog.New(slog.DiscardHandler))
		hs.Start()
		t.Cleanup(hs.Close)
		return hs.URL
	}
	scopedURL, controlURL := serve(scoped), serve(control)

	mu.Lock()
	log := logged.String()
	mu.Unlock()
	if !strings.Contains(log, "tokens with every scope") || !strings.Contains(log, "Tokens[0]") || !strings.Contains(log, "line 6") {
		t.Errorf("no warning naming the tokens with every scope: %q", log)
	}
	for _, secret := range append(secrets, tokAll) {
		if strings.Contains(log, secret) {
			t.Errorf("the log shows a token: %q", log)
		}
	}

	const (
		ok  = 200 // any 2xx
		no  = 401
		fbd = 403
	)
	tokens := []string{"", tokAll, tokIDs, tokOrders, tokRead, tokAdmin, tokIDsAdmin}
	routes := []struct {
		method, target string
		want           [7]int // by tokens
	}{
		{"POST", "/v1/ids/orders", [7]int{no, ok, ok, ok, fbd, fbd, ok}},
		{"POST", "/v1/ids/tenant-7?count=3", [7]int{no, ok, ok, ok, fbd, fbd, ok}},
		{"POST", "/v1/ids/billing", [7]int{no, ok, ok, fbd, fbd, fbd, ok}},
		{"POST", "/v1/leases/orders?count=10", [7]int{no, ok, ok, ok, fbd, fbd, ok}},
		{"POST", "/v1/leases/billing?count=10", [7]int{no, ok, ok, fbd, fbd, fbd, ok}},
		{"GET", "/v1/namespaces", [7]int{no, ok, fbd, fbd, ok, ok, ok}},
		{"GET", "/v1/namespaces/orders", [7]int{no, ok, fbd, fbd, ok, ok, ok}},
		{"GET", "/v1/shards", [7]int{no, ok, fbd, fbd, ok, ok, ok}},
		{"GET", "/v1/shards?namespace=orders", [7]int{no, ok, fbd, fbd, ok, ok, ok}},
		{"GET", "/metrics", [7]int{no, ok, fbd, fbd, ok, ok, ok}},
		{"GET", "/", [7]int{no, ok, fbd, fbd, ok, ok, ok}},
		{"PUT", "/v1/namespaces/sc-admin", [7]int{no, ok, fbd, fbd, fbd, ok, ok}},
		{"DELETE", "/v1/namespaces/sc-admin", [7]int{no, ok, fbd, fbd, fbd, ok, ok}},
		// What is no route needs a valid token, whatever its scopes.
		{"GET", "/v1/ids/orders", [7]int{no, 405, 405, 405, 405, 405, 405}},
		{"GET", "/v1/nope", [7]int{no, 404, 404, 404, 404, 404, 404}},
		{"GET", "/healthz", [7]int{ok, ok, ok, ok, ok, ok, ok}},
	}
	call := func(base, method, target, token string) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest(method, base+target, nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, body
	}
	forbidden := 0
	for _, r := range routes {
		for i, tok := range tokens {
			code, hdr, body := call(scopedURL, r.method, r.target, tok)
			what := fmt.Sprintf("%s %s with token %q", r.method, r.target, tok)
			got := code
			if code >= 200 && code < 300 {
				got = ok
			}
			if got != r.want[i] {
				t.Errorf("%s: %d, want %d: %s", what, code, r.want[i], body)
				continue
			}
			if code == fbd {
				forbidden++
				var e errorBody
				if err := json.Unmarshal(body, &e); err != nil || e.Code != codeForbidden || hdr.Get("Content-Type") != "application/json" {
					t.Errorf("%s: 403 body %q, want the JSON error with code forbidden", what, body)
				}
				if !strings.Contains(hdr.Get("WWW-Authenticate"), `error="insufficient_scope"`) {
					t.Errorf("%s: WWW-Authenticate %q", what, hdr.Get("WWW-Authenticate"))
				}
				if strings.Contains(string(body), tok) {
					t.Errorf("%s: the answer shows the token: %s", what, body)
				}
			}
			// The control: every token has every scope.
			if ccode, _, cbody := call(controlURL, r.method, r.target, tok); ccode == fbd || (ccode == no) != (tok == "" && r.want[i] == no) {
				t.Errorf("control: %s: %d: %s", what, ccode, cbody)
			}
		}
	}
	if forbidden == 0 {
		t.Error("no request was forbidden")
	}
	// A pattern-limited token creates no namespace out of its patterns.
	if code, _, _ := call(scopedURL, "POST", "/v1/ids/sc-never", tokOrders); code != fbd {
		t.Errorf("POST sc-never with ids:orders: %d, want 403", code)
	}
	if code, _, body := call(scopedURL, "GET", "/v1/namespaces/sc-never", tokRead); code != 404 {
		t.Errorf("GET sc-never after a forbidden POST: %d, want 404 (never created): %s", code, body)
	}
}

// lockedWriter serializes writes to w, for a logger the server's goroutines share.
type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func testPage(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: 4, SampleEvery: 20 * time.Millisecond, SampleWindow: time.Second})
	h := s.Handler()
	do(t, h, "POST", "/v1/ids/orders?count=100")
	deadline := time.Now().Add(5 * time.Second)
	for len(s.rates.rates("orders")) < 2 && time.Now().Before(deadline) {
		do(t, h, "POST", "/v1/ids/orders?count=10")
		time.Sleep(20 * time.Millisecond)
	}
	rec := send(h, "GET", "/")
	body := rec.Body.String()
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	csp := rec.Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'nonce-") {
		t.Errorf("CSP %q", csp)
	}
	for _, ns := range []string{"default", "orders"} {
		for i := range 4 {
			if row := fmt.Sprintf(`data-shard="%s/%d" data-healthy="true"`, ns, i); !strings.Contains(body, row) {
				t.Errorf("page lacks the row %s", row)
			}
		}
	}
	for _, m := range cl.Topology().Masters {
		if !strings.Contains(body, `data-master="`+m.Addr+`"`) {
			t.Errorf("page lacks master %s", m.Addr)
		}
	}
	if !strings.Contains(body, "<polyline points=") {
		t.Errorf("page has no sparkline for orders")
	}
	frag := send(h, "GET", "/?fragment=1&namespace=orders").Body.String()
	if strings.Contains(frag, "<html") || !strings.Contains(frag, `data-shard="orders/0"`) || strings.Contains(frag, `data-shard="default/0"`) {
		t.Errorf("fragment of namespace orders: %.500s", frag)
	}
	if r := send(h, "GET", "/?namespace=%3Cscript%3E"); r.Code != 400 {
		t.Errorf("bad namespace: %d", r.Code)
	}
	if r := send(h, "HEAD", "/"); r.Code != 200 || r.Body.Len() != 0 {
		t.Errorf("HEAD /: %d %d bytes", r.Code, r.Body.Len())
	}
}

// aclRules are the minimal ACL of the user shardseq connects as (README
// "Security"): each is used by shardseq (README "Compatible engines" says
// by what), and the whole product runs as this user below.
var aclRules = clustertest.ACLRules

func setACLUser(t *testing.T, lc *clustertest.Cluster, user, password string, rules []string) {
	t.Helper()
	args := []any{"ACL", "SETUSER", user, "reset", ">" + password}
	for _, r := range rules {
		args = append(args, r)
	}
	for _, addr := range lc.Addrs() {
		rc := redis.NewClient(&redis.Options{Addr: addr})
		err := rc.Do(context.Background(), args...).Err()
		_ = rc.Close()
		if err != nil {
			t.Fatalf("ACL SETUSER on %s: %v", addr, err)
		}
	}
	t.Cleanup(func() {
		for _, addr := range lc.Addrs() {
			rc := redis.NewClient(&redis.Options{Addr: addr})
			_ = rc.Do(context.Background(), "ACL", "DELUSER", user).Err()
			_ = rc.Close()
		}
	})
}

func testRedisACL(t *testing.T, lc *clustertest.Cluster) {
	const password = "acl-secret-password"
	setACLUser(t, lc, "shardseq", password, aclRules)
	// A user missing one command the reservation script runs.
	setACLUser(t, lc, "nohset", password, slices.DeleteFunc(slices.Clone(aclRules), func(r string) bool { return r == "+hset" }))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cl, err := cluster.Dial(ctx, cluster.Config{Addrs: lc.Addrs(), Username: "shardseq", Password: password, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Dial as the ACL user: %v", err)
	}
	defer cl.Close()
	// A new namespace on a fresh script cache: SCRIPT LOAD, the meta,
	// mirror and reservation scripts all run as the ACL user.
	for _, addr := range lc.Addrs() {
		rc := redis.NewClient(&redis.Options{Addr: addr})
		_ = rc.ScriptFlush(ctx).Err()
		_ = rc.Close()
	}
	s := newServer(t, Config{Cluster: cl, Shards: 4, Client: client.Config{Strict: true}})
	for range 12 {
		if r := do(t, s.Handler(), "POST", "/v1/ids/acl-ns?count=3"); r.code != 200 {
			t.Fatalf("POST as the ACL user: %d %s", r.code, r.raw)
		}
	}
	// A page of the index (ZRANGE BYLEX, and the merge check of a legacy set).
	if r := do(t, s.Handler(), "GET", "/v1/namespaces?limit=1000"); r.code != 200 || !strings.Contains(r.raw, `"acl-ns"`) {
		t.Fatalf("GET /v1/namespaces as the ACL user: %d %s", r.code, r.raw)
	}

	_, err = cluster.Dial(ctx, cluster.Config{Addrs: lc.Addrs(), Username: "shardseq", Password: "wrong", Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("Dial with a wrong password: %v, want WRONGPASS", err)
	}

	cl2, err := cluster.Dial(ctx, cluster.Config{Addrs: lc.Addrs(), Username: "nohset", Password: password, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Dial as nohset: %v", err)
	}
	defer cl2.Close()
	// Redis's refusal reaches the operator (New's error, or each shard's
	// last error on the page and /v1/shards), never the body of an answer
	// (do checks it is a documented code).
	s2, err := New(Config{Cluster: cl2, Shards: 4, Logger: slog.New(slog.DiscardHandler), OpenTimeout: 5 * time.Second, Client: client.Config{Strict: true}})
	if err == nil {
		defer s2.Close()
		r := do(t, s2.Handler(), "POST", "/v1/ids/acl-ns")
		if r.code == 200 || strings.Contains(r.raw, "can't run") || strings.Contains(r.raw, "permissions") {
			t.Errorf("a user without HSET: %d %s, want an error without Redis's text", r.code, r.raw)
		}
		var last []string
		rows, _ := s2.Registry().List("acl-ns")
		for _, st := range rows {
			last = append(last, st.LastError)
		}
		err = errors.New(strings.Join(last, "; "))
	}
	// Redis 7.0 and Valkey 8.0 word the refusal differently.
	if msg := err.Error(); !strings.Contains(msg, "can't run this command") && !strings.Contains(msg, "no permissions to run the 'hset' command") {
		t.Fatalf("a user without HSET: %v, want the script's permission error", err)
	}
}

func testHTTPTLS(t *testing.T, cl *cluster.Cluster) {
	pki := tlstest.New(t)
	tc, err := TLSConfig(pki.CertFile, pki.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Config{Cluster: cl, Shards: 4})
	hs := httptest.NewUnstartedServer(s.Handler())
	hs.TLS = tc
	hs.Config.ErrorLog = slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)
	hs.StartTLS()
	defer hs.Close()

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.ClientConfig()}, Timeout: 5 * time.Second}
	resp, err := hc.Post(hs.URL+"/v1/ids/tls?count=2", "", nil)
	if err != nil {
		t.Fatalf("POST over TLS: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.TLS == nil || resp.TLS.Version < tls.VersionTLS12 {
		t.Fatalf("POST over TLS: %d %s", resp.StatusCode, b)
	}
	old := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool, MaxVersion: tls.VersionTLS11}}}
	if _, err := old.Get(hs.URL + "/healthz"); err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	untrusted := &http.Client{Transport: &http.Transport{}}
	if _, err := untrusted.Get(hs.URL + "/healthz"); err == nil {
		t.Error("a client not trusting the CA was served")
	}
	if _, err := TLSConfig(pki.CertFile, pki.CAFile); err == nil {
		t.Error("TLSConfig accepted a certificate with the wrong key")
	}
	if _, err := TLSConfig(filepath.Join(t.TempDir(), "missing"), pki.KeyFile); err == nil {
		t.Error("TLSConfig accepted a missing file")
	}
}
