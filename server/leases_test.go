package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
)

// leaseOf decodes a 200 answer of POST /v1/leases.
func leaseOf(tb testing.TB, r result) leaseJSON {
	tb.Helper()
	if r.code != http.StatusOK {
		tb.Fatalf("lease: %d %s", r.code, r.raw)
	}
	var l leaseJSON
	if err := json.Unmarshal([]byte(r.raw), &l); err != nil {
		tb.Fatalf("decoding %q: %v", r.raw, err)
	}
	return l
}

func TestParseLeaseRequest(t *testing.T) {
	for _, c := range []struct {
		ns, count string
		want      int
		ok        bool
	}{
		{"orders", "count=1", 1, true},
		{"orders", "count=1000000", 1000000, true},
		{"orders", "", 0, false},
		{"orders", "count=", 0, false},
		{"orders", "count=0", 0, false},
		{"orders", "count=01", 0, false},
		{"orders", "count=1000001", 0, false},
		{"orders", "count=-5", 0, false},
		{"orders", "count=1e3", 0, false},
		{"orders", "cnt=5", 0, false},
		{"orders", "count=5&count=5", 0, false},
		{"a:b", "count=5", 0, false},
	} {
		_, n, err := parseLeaseRequest(c.ns, c.count)
		if (err == nil) != c.ok || n != c.want {
			t.Errorf("parseLeaseRequest(%q, %q) = %d, %v", c.ns, c.count, n, err)
		}
	}
}

// testLeases: leases and /v1/ids of one namespace never share an ID, even
// when taken at once from two servers; a lease says how long it may be
// used; counts out of bounds, an unknown namespace under explicit creation
// and a missing token get the documented answers.
func testLeases(t *testing.T, cl *cluster.Cluster) {
	a := newServer(t, Config{Cluster: cl, Shards: 6})
	b := newServer(t, Config{Cluster: cl, Shards: 6})
	seen := map[int64]string{}
	var mu sync.Mutex
	record := func(what string, id int64) {
		mu.Lock()
		defer mu.Unlock()
		if prev, dup := seen[id]; dup {
			t.Errorf("ID %d handed out twice: by %s and by %s", id, prev, what)
		}
		seen[id] = what
	}
	var wg sync.WaitGroup
	for i, s := range []*Server{a, b} {
		h := s.Handler()
		wg.Go(func() {
			for k := range 40 {
				l := leaseOf(t, do(t, h, "POST", fmt.Sprintf("/v1/leases/leases?count=%d", 1+k*37)))
				if l.Namespace != "leases" || l.Step != 6 || l.Count != int64(1+k*37) || l.First%6 != int64(l.Shard) || l.First < 1 {
					t.Errorf("lease %+v", l)
				}
				if !l.Limited || l.ValidMS < 0 || l.ValidMS > 400 {
					t.Errorf("lease %+v: want limited, valid_ms from 0 to 400 (0.4 x the 1s window)", l)
				}
				for j := range l.Count {
					record(fmt.Sprintf("lease of server %d", i), l.First+j*l.Step)
				}
			}
		})
		wg.Go(func() {
			for range 40 {
				for _, id := range post(t, h, "leases", 50) {
					record(fmt.Sprintf("ids of server %d", i), id)
				}
			}
		})
	}
	wg.Wait()

	// Without an order window a lease lasts until used up.
	unordered := newServer(t, Config{Cluster: cl, Shards: 6, Client: client.Config{OrderWindow: -1}})
	if l := leaseOf(t, do(t, unordered.Handler(), "POST", "/v1/leases/leases-unordered?count=10")); l.Limited || l.ValidMS != 0 {
		t.Errorf("unordered lease %+v: want limited false, valid_ms 0", l)
	}

	h := a.Handler()
	for _, c := range []struct {
		target string
		status int
		code   string
	}{
		{"/v1/leases/leases?count=0", 400, codeBadCount},
		{"/v1/leases/leases?count=1000001", 400, codeBadCount},
		{"/v1/leases/leases", 400, codeBadCount},
		{"/v1/leases/a%3Ab?count=3", 400, codeBadNamespace},
		{"/v1/leases/?count=3", 400, codeBadNamespace},
	} {
		if r := do(t, h, "POST", c.target); r.code != c.status || r.body["code"] != c.code {
			t.Errorf("POST %s: %d %s, want %d %s", c.target, r.code, r.raw, c.status, c.code)
		}
	}
	if r := do(t, h, "GET", "/v1/leases/leases?count=3"); r.code != 405 || r.header.Get("Allow") != "POST" {
		t.Errorf("GET lease: %d Allow %q, want 405 POST", r.code, r.header.Get("Allow"))
	}

	explicit := newServer(t, Config{Cluster: cl, Shards: 6, CreateNamespaces: CreateExplicit})
	if r := do(t, explicit.Handler(), "POST", "/v1/leases/lease-never-created?count=3"); r.code != 404 || r.body["code"] != codeNamespaceNotFound {
		t.Errorf("lease of an unknown namespace, explicit creation: %d %s", r.code, r.raw)
	}
	if r := do(t, explicit.Handler(), "POST", "/v1/leases/leases?count=3"); r.code != 200 {
		t.Errorf("lease of an existing namespace, explicit creation: %d %s", r.code, r.raw)
	}

	locked := newServer(t, Config{Cluster: cl, Shards: 6, Tokens: []string{testToken}})
	req := httptest.NewRequest("POST", "/v1/leases/leases?count=3", nil)
	rec := httptest.NewRecorder()
	locked.Handler().ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Errorf("lease without a token: %d %s", rec.Code, rec.Body)
	}
	req = httptest.NewRequest("POST", "/v1/leases/leases?count=3", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	rec = httptest.NewRecorder()
	locked.Handler().ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Errorf("lease with the token: %d %s", rec.Code, rec.Body)
	}
	// The lease's IDs count as issued: 40 leases of 1+37k IDs, and
	// 40 x 50 IDs.
	if v := value(t, a.Metrics(), "shardseq_ids_issued_total", map[string]string{"namespace": "leases"}); v < 40+37*780+2000 {
		t.Errorf("shardseq_ids_issued_total %v: the leases' IDs are not counted", v)
	}
}
