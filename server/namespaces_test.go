package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

func TestDecodeNamespaceBody(t *testing.T) {
	const maxStart = 1 << 40
	for _, tc := range []struct {
		body   string
		ok     bool
		shards int
		start  int64
		strict string // "", "true", "false"
		msgHas string
	}{
		{"", true, 0, 0, "", ""},
		{"  \n", true, 0, 0, "", ""},
		{"{}", true, 0, 0, "", ""},
		{`{"shards":4,"start":1000,"strict":true}`, true, 4, 1000, "true", ""},
		{` {"strict":false} `, true, 0, 0, "false", ""},
		{`{"shards":null,"start":null}`, true, 0, 0, "", ""},
		{`{"shards":1024,"start":1099511627776}`, true, 1024, maxStart, "", ""},

		{`{"shards":0}`, false, 0, 0, "", "shards 0: want 1 to 1024"},
		{`{"shards":-1}`, false, 0, 0, "", "shards -1"},
		{`{"shards":1025}`, false, 0, 0, "", "shards 1025"},
		{`{"start":0}`, false, 0, 0, "", "start 0: want 1 to 1099511627776"},
		{`{"start":-5}`, false, 0, 0, "", "start -5"},
		{`{"start":1099511627777}`, false, 0, 0, "", "start 1099511627777"},
		{`{"shards":"4"}`, false, 0, 0, "", `"shards" must be an integer`},
		{`{"shards":4.5}`, false, 0, 0, "", `"shards" must be an integer`},
		{`{"shards":1e3}`, false, 0, 0, "", `"shards" must be an integer`},
		{`{"start":99999999999999999999}`, false, 0, 0, "", `"start" must be an integer`},
		{`{"strict":"yes"}`, false, 0, 0, "", `"strict" must be true or false`},
		{`{"strict":1}`, false, 0, 0, "", `"strict" must be true or false`},
		{`{"shard":4}`, false, 0, 0, "", `unknown member "shard"`},
		{`{"x\ny":4}`, false, 0, 0, "", `unknown member "x\ny"`},
		{`[]`, false, 0, 0, "", "not a JSON object"},
		{`null`, false, 0, 0, "", "not a JSON object"},
		{`4`, false, 0, 0, "", "not a JSON object"},
		{`{"shards":4}{}`, false, 0, 0, "", "more than one JSON value"},
		{`{"shards":4} x`, false, 0, 0, "", "more than one JSON value"},
		{`{"shards":4`, false, 0, 0, "", "not a valid object"},
		{`{"shards":4,}`, false, 0, 0, "", "not valid JSON at byte"},
		{`{"shards":{"a":1}}`, false, 0, 0, "", `"shards" must be an integer`},
		{`{"Shards":4}`, false, 0, 0, "", `unknown member "Shards"`},
		{`{"shards":4,"shards":5}`, false, 0, 0, "", `member "shards" given more than once`},
		{`{"shards":4,"strict":true,"shards":4}`, false, 0, 0, "", `member "shards" given more than once`},
		{`{"strict":null,"strict":true}`, false, 0, 0, "", `member "strict" given more than once`},
		{`{"sh\u0061rds":4,"shards":5}`, false, 0, 0, "", `member "shards" given more than once`},
		{`{"x":{"a":1,"a":2},"x":1}`, false, 0, 0, "", `member "x" given more than once`},
		{`{"strict":true,"zz":1,"aa":2}`, false, 0, 0, "", `unknown member "aa"`},
		{"{}\v", false, 0, 0, "", "body"},
	} {
		spec, err := decodeNamespaceBody([]byte(tc.body), maxStart)
		if (err == nil) != tc.ok {
			t.Errorf("%q: err %v, want ok %v", tc.body, err, tc.ok)
			continue
		}
		if err != nil {
			e := errorOf(err)
			if e.status != http.StatusBadRequest || e.code != codeBadBody || !strings.Contains(e.msg, tc.msgHas) || strings.ContainsAny(e.msg, "\r\n") {
				t.Errorf("%q: answer %+v, want 400 bad_body with %q", tc.body, e, tc.msgHas)
			}
			continue
		}
		if got := deref(spec.Shards); got != tc.shards {
			t.Errorf("%q: shards %d, want %d", tc.body, got, tc.shards)
		}
		if got := deref(spec.Start); got != tc.start {
			t.Errorf("%q: start %d, want %d", tc.body, got, tc.start)
		}
		if got := ""; spec.Strict != nil {
			if got = strconv.FormatBool(*spec.Strict); got != tc.strict {
				t.Errorf("%q: strict %s, want %q", tc.body, got, tc.strict)
			}
		} else if tc.strict != "" {
			t.Errorf("%q: strict unset, want %s", tc.body, tc.strict)
		}
	}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Whatever the body, the decoder answers a settings spec within bounds or
// a bad_body error with a one-line public message; what it accepts is
// valid JSON (or empty), and decodes the same when written back.
func FuzzDecodeNamespaceBody(f *testing.F) {
	for _, s := range []string{"", "{}", `{"shards":4,"start":1000,"strict":true}`, `{"shards":0}`, `{"start":-1}`,
		`{"x":1}`, `[1]`, `{"shards":4}{}`, `{"strict":null}`, `{"SHARDS":3}`, "{\"shards\":\"\xff\"}", `{"shards":1e2}`} {
		f.Add([]byte(s))
	}
	const maxStart = 1 << 52
	f.Fuzz(func(t *testing.T, body []byte) {
		spec, err := decodeNamespaceBody(body, maxStart)
		if err != nil {
			if !errors.Is(err, errBadBody) {
				t.Fatalf("%q: error %v does not wrap errBadBody", body, err)
			}
			e := errorOf(err)
			if e.status != http.StatusBadRequest || e.code != codeBadBody || strings.ContainsAny(e.msg, "\r\n") || !utf8.ValidString(e.msg) || len(e.msg) > 400 {
				t.Fatalf("%q: answer %+v", body, e)
			}
			return
		}
		if s := strings.TrimSpace(string(body)); s != "" && !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		if spec.Shards != nil && (*spec.Shards < 1 || *spec.Shards > client.MaxShards) {
			t.Fatalf("%q: accepted shards %d", body, *spec.Shards)
		}
		if spec.Start != nil && (*spec.Start < 1 || *spec.Start > maxStart) {
			t.Fatalf("%q: accepted start %d", body, *spec.Start)
		}
		again, err := json.Marshal(namespaceBody{Shards: spec.Shards, Start: spec.Start, Strict: spec.Strict})
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeNamespaceBody(again, maxStart)
		if err != nil || deref(back.Shards) != deref(spec.Shards) || deref(back.Start) != deref(spec.Start) ||
			(back.Strict == nil) != (spec.Strict == nil) || deref(back.Strict) != deref(spec.Strict) {
			t.Fatalf("%q: written back as %s, read as %+v, %v", body, again, back, err)
		}
	})
}

// sendBody is do with a request body: it checks what every answer must have (a
// JSON body but for 204, no-store, an error body with a documented code).
func sendBody(tb testing.TB, h http.Handler, method, target, body string) result {
	tb.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	h.ServeHTTP(rec, req)
	res := result{code: rec.Code, header: rec.Header(), raw: rec.Body.String()}
	if res.code == http.StatusNoContent {
		if res.raw != "" {
			tb.Errorf("%s %s: 204 with a body %q", method, target, res.raw)
		}
		return res
	}
	if ct := res.header.Get("Content-Type"); ct != "application/json" {
		tb.Errorf("%s %s: Content-Type %q, want application/json", method, target, ct)
	}
	if cc := res.header.Get("Cache-Control"); cc != "no-store" {
		tb.Errorf("%s %s: Cache-Control %q, want no-store", method, target, cc)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &res.body); err != nil {
		tb.Errorf("%s %s: body is not a JSON object: %v: %q", method, target, err, res.raw)
	}
	if res.code >= 400 {
		checkErrorBody(tb, method+" "+target, res.body)
	}
	return res
}

// namespaceAnswer decodes a namespace object.
func namespaceAnswer(tb testing.TB, r result) namespaceJSON {
	tb.Helper()
	var n namespaceJSON
	if err := json.Unmarshal([]byte(r.raw), &n); err != nil {
		tb.Fatalf("decoding %q: %v", r.raw, err)
	}
	return n
}

// TestNamespaceRoutes runs the namespace routes against a real cluster.
func TestNamespaceRoutes(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portNamespaces})
	cl := lc.Dial(cluster.Config{})
	t.Run("Put", func(t *testing.T) { testPutNamespace(t, cl) })
	t.Run("ServedWithStoredSettings", func(t *testing.T) { testServedWithStoredSettings(t, cl) })
	t.Run("List", func(t *testing.T) { testListNamespaces(t, cl) })
	t.Run("DeleteRecreate", func(t *testing.T) { testDeleteNamespace(t, cl) })
	t.Run("Auth", func(t *testing.T) { testNamespaceAuth(t, cl) })
}

// The status codes of PUT: 201 created, 200 the same, 409 other settings,
// 400 a bad name or body (and nothing created).
func testPutNamespace(t *testing.T, cl *cluster.Cluster) {
	h := newServer(t, Config{Cluster: cl, Shards: 6}).Handler()
	const p = "/v1/namespaces/"
	maxStart := client.MaxStart(0)
	for _, tc := range []struct {
		name, method, target, body string
		code                       int
		errCode                    string
		msgHas                     string
	}{
		{"create", "PUT", p + "put-a", `{"shards":4,"start":1000}`, 201, "", ""},
		{"same again", "PUT", p + "put-a", `{"shards":4,"start":1000}`, 200, "", ""},
		{"same, strict", "PUT", p + "put-a", `{"shards":4,"start":1000,"strict":false}`, 200, "", ""},
		{"empty object", "PUT", p + "put-a", `{}`, 200, "", ""},
		{"no body", "PUT", p + "put-a", ``, 200, "", ""},
		{"shards only", "PUT", p + "put-a", `{"shards":4}`, 200, "", ""},
		{"other shards", "PUT", p + "put-a", `{"shards":5}`, 409, codeNamespaceConflict, "shards 4, start 1000, strict false"},
		{"other start", "PUT", p + "put-a", `{"start":1}`, 409, codeNamespaceConflict, "shards 4"},
		{"other strict", "PUT", p + "put-a", `{"strict":true}`, 409, codeNamespaceConflict, "strict false"},
		{"defaults", "PUT", p + "put-b", ``, 201, "", ""},
		{"strict", "PUT", p + "put-strict", `{"strict":true,"shards":2}`, 201, "", ""},
		{"largest start", "PUT", p + "put-far", `{"start":` + strconv.FormatInt(maxStart, 10) + `}`, 201, "", ""},

		{"shards 0", "PUT", p + "put-bad", `{"shards":0}`, 400, codeBadBody, "shards 0"},
		{"shards negative", "PUT", p + "put-bad", `{"shards":-3}`, 400, codeBadBody, "shards -3"},
		{"shards too many", "PUT", p + "put-bad", `{"shards":1025}`, 400, codeBadBody, "want 1 to 1024"},
		{"start 0", "PUT", p + "put-bad", `{"start":0}`, 400, codeBadBody, "start 0"},
		{"start negative", "PUT", p + "put-bad", `{"start":-1}`, 400, codeBadBody, "start -1"},
		{"start too large", "PUT", p + "put-bad", `{"start":` + strconv.FormatInt(maxStart+1, 10) + `}`, 400, codeBadBody, "start"},
		{"shards a string", "PUT", p + "put-bad", `{"shards":"4"}`, 400, codeBadBody, "integer"},
		{"shards a fraction", "PUT", p + "put-bad", `{"shards":2.5}`, 400, codeBadBody, "integer"},
		{"strict a string", "PUT", p + "put-bad", `{"strict":"true"}`, 400, codeBadBody, "true or false"},
		{"unknown member", "PUT", p + "put-bad", `{"shards":4,"mode":"x"}`, 400, codeBadBody, `unknown member "mode"`},
		{"array", "PUT", p + "put-bad", `[4]`, 400, codeBadBody, "not a JSON object"},
		{"two objects", "PUT", p + "put-bad", `{}{}`, 400, codeBadBody, "more than one"},
		{"broken", "PUT", p + "put-bad", `{"shards":`, 400, codeBadBody, "body"},
		{"too big", "PUT", p + "put-bad", `{"shards":4` + strings.Repeat(" ", maxBodyBytes) + `}`, 400, codeBadBody, "larger than 4096 bytes"},
		{"bad name", "PUT", p + "a:b", `{}`, 400, codeBadNamespace, ""},
		{"name too long", "PUT", p + strings.Repeat("n", 65), `{}`, 400, codeBadNamespace, ""},
		{"no name", "PUT", p, `{}`, 400, codeBadNamespace, ""},
		{"two segments", "PUT", p + "a/b", `{}`, 400, codeBadNamespace, ""},
		{"escaped slash", "GET", p + "a%2Fb", ``, 400, codeBadNamespace, ""},

		{"POST", "POST", p + "put-a", `{}`, 405, codeMethodNotAllowed, "GET, HEAD, PUT, DELETE"},
		{"PATCH", "PATCH", p + "put-a", `{}`, 405, codeMethodNotAllowed, ""},
		{"PUT the list", "PUT", "/v1/namespaces", `{}`, 405, codeMethodNotAllowed, "GET, HEAD"},
		{"GET never created", "GET", p + "put-never", ``, 404, codeNamespaceNotFound, "PUT /v1/namespaces/{namespace} creates it"},
		{"GET after refused PUTs", "GET", p + "put-bad", ``, 404, codeNamespaceNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sendBody(t, h, tc.method, tc.target, tc.body)
			if r.code != tc.code {
				t.Fatalf("%s %s %s: %d, want %d: %s", tc.method, tc.target, tc.body, r.code, tc.code, r.raw)
			}
			if code, _ := r.body["code"].(string); code != tc.errCode {
				t.Errorf("code %q, want %q: %s", code, tc.errCode, r.raw)
			}
			if msg, _ := r.body["error"].(string); !strings.Contains(msg, tc.msgHas) && !strings.Contains(r.header.Get("Allow"), tc.msgHas) {
				t.Errorf("error %q, want it (or Allow %q) to mention %q", msg, r.header.Get("Allow"), tc.msgHas)
			}
			if r.code == 201 && r.header.Get("Location") != tc.target {
				t.Errorf("201 with Location %q", r.header.Get("Location"))
			}
		})
	}
	a := namespaceAnswer(t, sendBody(t, h, "PUT", p+"put-a", ""))
	if a.Name != "put-a" || a.State != "active" || a.Shards != 4 || a.Start != 1000 || deref(a.Strict) || deref(a.Deleted) || a.Generation != 1 || a.CreatedAt == nil || a.Usage != nil {
		t.Errorf("PUT answer %+v", a)
	}
	if b := namespaceAnswer(t, sendBody(t, h, "GET", p+"put-b", "")); b.Shards != 6 || b.Start != 1 || deref(b.Strict) {
		t.Errorf("created with the server's defaults: %+v; want 6 shards from 1", b)
	}
}

// Namespaces created with their own N, start and strict mode are served
// with them, whatever the server's --shards; and GET shows the usage.
func testServedWithStoredSettings(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: 6})
	h := s.Handler()
	for name, body := range map[string]string{"own-n": `{"shards":3,"start":5000000}`, "own-strict": `{"strict":true}`} {
		if r := sendBody(t, h, "PUT", "/v1/namespaces/"+name, body); r.code != 201 {
			t.Fatalf("PUT %s: %d %s", name, r.code, r.raw)
		}
	}
	var all []int64
	for range 5 {
		r := do(t, h, "POST", "/v1/ids/own-n?count=1000")
		if r.code != 200 {
			t.Fatalf("POST: %d %s", r.code, r.raw)
		}
		all = append(all, ids(t, r)...)
	}
	seen := map[int64]bool{}
	for _, id := range all {
		if id < 5000000 || seen[id] {
			t.Fatalf("ID %d: below start 5000000, or repeated", id)
		}
		seen[id] = true
	}
	if c := s.lookup("own-n"); c == nil || c.ShardCount() != 3 || c.Start() != 5000000 || c.Strict() {
		t.Errorf("own-n served with %d shards from %d, strict %v", c.ShardCount(), c.Start(), c.Strict())
	}
	if r := do(t, h, "GET", "/v1/shards?namespace=own-n"); r.code != 200 || len(r.body["shards"].([]any)) != 3 {
		t.Errorf("GET /v1/shards?namespace=own-n: %d, %d shards", r.code, len(r.body["shards"].([]any)))
	}
	do(t, h, "POST", "/v1/ids/own-strict")
	if c := s.lookup("own-strict"); c == nil || !c.Strict() || c.ShardCount() != 6 {
		t.Errorf("own-strict: not served strict with 6 shards")
	}
	d := namespaceAnswer(t, sendBody(t, h, "GET", "/v1/namespaces/own-n", ""))
	u := d.Usage
	if u == nil || d.Shards != 3 || d.Start != 5000000 || u.ShardsChecked != 3 || u.Reserved < int64(len(all))/3 ||
		u.HighestID < slices.Max(all) || u.SpaceLeft <= 0 || u.MaxID != client.DefaultMaxID || u.Used <= 0 || u.Used >= 0.01 {
		t.Errorf("GET own-n: %+v usage %+v after IDs up to %d", d, u, slices.Max(all))
	}
	if r := sendBody(t, h, "HEAD", "/v1/namespaces/own-n", ""); r.code != 200 {
		t.Errorf("HEAD: %d", r.code)
	}
}

func testListNamespaces(t *testing.T, cl *cluster.Cluster) {
	h := newServer(t, Config{Cluster: cl, Shards: 1}).Handler()
	var want []string
	for k := range 12 {
		name := fmt.Sprintf("ls-%02d", k)
		if r := sendBody(t, h, "PUT", "/v1/namespaces/"+name, ""); r.code != 201 && r.code != 200 {
			t.Fatalf("PUT %s: %d %s", name, r.code, r.raw)
		}
		want = append(want, name)
	}
	if r := sendBody(t, h, "DELETE", "/v1/namespaces/ls-03", ""); r.code != 204 {
		t.Fatalf("DELETE: %d %s", r.code, r.raw)
	}
	var everything []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("the cursor does not end")
		}
		r := sendBody(t, h, "GET", "/v1/namespaces?limit=5&cursor="+cursor, "")
		if r.code != 200 {
			t.Fatalf("list: %d %s", r.code, r.raw)
		}
		var page listJSON
		if err := json.Unmarshal([]byte(r.raw), &page); err != nil {
			t.Fatal(err)
		}
		if len(page.Namespaces) > 5 {
			t.Fatalf("%d namespaces in a page of 5", len(page.Namespaces))
		}
		for _, n := range page.Namespaces {
			everything = append(everything, n.Name)
			if strings.HasPrefix(n.Name, "ls-") && (deref(n.Deleted) != (n.Name == "ls-03") || n.Shards != 1 || n.Usage != nil) {
				t.Errorf("listed %+v", n)
			}
		}
		if page.NextCursor == "" {
			break
		}
		cursor = page.NextCursor
	}
	if !slices.IsSorted(everything) || len(slices.Compact(slices.Clone(everything))) != len(everything) {
		t.Errorf("pages not sorted or repeating: %v", everything)
	}
	var ours []string
	for _, n := range everything {
		if strings.HasPrefix(n, "ls-") {
			ours = append(ours, n)
		}
	}
	if !slices.Equal(ours, want) {
		t.Errorf("listed %v, want %v", ours, want)
	}
	if r := sendBody(t, h, "GET", "/v1/namespaces", ""); r.code != 200 || len(r.body["namespaces"].([]any)) != len(everything) || r.body["next_cursor"] != "" {
		t.Errorf("one page of the default size: %d %.200s", r.code, r.raw)
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "limit=-1", "limit=1.5"} {
		if r := sendBody(t, h, "GET", "/v1/namespaces?"+q, ""); r.code != 400 || r.body["code"] != codeBadLimit {
			t.Errorf("?%s: %d %s", q, r.code, r.raw)
		}
	}
	for _, q := range []string{"cursor=a:b", "cursor=%7B", "cursor=" + strings.Repeat("c", 65)} {
		if r := sendBody(t, h, "GET", "/v1/namespaces?"+q, ""); r.code != 400 || r.body["code"] != codeBadCursor {
			t.Errorf("?%s: %d %s", q, r.code, r.raw)
		}
	}
}

// DELETE retires a namespace: the server closes its client, the name shows
// deleted, and recreating it (PUT, or a POST of IDs, which creates on first
// use) continues above every ID it handed out.
func testDeleteNamespace(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: 4})
	h := s.Handler()
	const name, path = "retire-me", "/v1/namespaces/retire-me"
	take := func(n int) []int64 {
		t.Helper()
		var out []int64
		for len(out) < n {
			r := do(t, h, "POST", "/v1/ids/"+name+"?count="+strconv.Itoa(min(n-len(out), MaxCount)))
			if r.code != 200 {
				t.Fatalf("POST ids: %d %s", r.code, r.raw)
			}
			out = append(out, ids(t, r)...)
		}
		return out
	}
	first := take(25_000)
	if s.lookup(name) == nil {
		t.Fatal("not open after POST")
	}
	if r := sendBody(t, h, "DELETE", path, ""); r.code != 204 {
		t.Fatalf("DELETE: %d %s", r.code, r.raw)
	}
	if s.lookup(name) != nil {
		t.Error("the server kept its client of a deleted namespace")
	}
	d := namespaceAnswer(t, sendBody(t, h, "GET", path, ""))
	if d.State != "deleted" || !deref(d.Deleted) || d.Generation != 2 || d.Usage == nil || d.Usage.HighestID < slices.Max(first) {
		t.Errorf("GET after DELETE: %+v", d)
	}
	for _, tc := range []struct {
		method, target string
		code           int
		errCode        string
	}{
		{"DELETE", path, 204, ""},
		{"DELETE", "/v1/namespaces/never-was", 404, codeNamespaceNotFound},
		{"DELETE", "/v1/namespaces/default", 409, codeNamespaceConflict},
		{"DELETE", "/v1/namespaces/a:b", 400, codeBadNamespace},
	} {
		if r := sendBody(t, h, tc.method, tc.target, ""); r.code != tc.code || (tc.errCode != "" && r.body["code"] != tc.errCode) {
			t.Errorf("%s %s: %d %s, want %d %s", tc.method, tc.target, r.code, r.raw, tc.code, tc.errCode)
		}
	}
	// Recreated by a POST of IDs (auto creation).
	second := take(5000)
	if slices.Min(second) <= slices.Max(first) {
		t.Errorf("after the recreation by POST the smallest ID is %d, the old maximum %d", slices.Min(second), slices.Max(first))
	}
	if d := namespaceAnswer(t, sendBody(t, h, "GET", path, "")); d.State != "active" || d.Generation != 3 || d.Shards != 4 {
		t.Errorf("after the recreation by POST: %+v", d)
	}
	// Deleted again and recreated by PUT, which may not change N or start.
	if r := sendBody(t, h, "DELETE", path, ""); r.code != 204 {
		t.Fatalf("DELETE: %d", r.code)
	}
	if r := sendBody(t, h, "PUT", path, `{"shards":5}`); r.code != 409 || !strings.Contains(r.body["error"].(string), "was deleted") {
		t.Errorf("recreate with another N: %d %s", r.code, r.raw)
	}
	if r := sendBody(t, h, "PUT", path, `{"shards":4,"strict":true}`); r.code != 201 {
		t.Fatalf("recreate with PUT: %d %s", r.code, r.raw)
	} else if d := namespaceAnswer(t, r); d.Generation != 5 || !deref(d.Strict) || deref(d.Deleted) {
		t.Errorf("recreated: %+v", d)
	}
	third := take(5000)
	if slices.Min(third) <= max(slices.Max(first), slices.Max(second)) {
		t.Errorf("after the recreation by PUT the smallest ID is %d", slices.Min(third))
	}
	seen := map[int64]bool{}
	for _, id := range slices.Concat(first, second, third) {
		if seen[id] {
			t.Fatalf("ID %d handed out twice", id)
		}
		seen[id] = true
	}
}

func testNamespaceAuth(t *testing.T, cl *cluster.Cluster) {
	h := newServer(t, Config{Cluster: cl, Tokens: []string{testToken}}).Handler()
	for _, tc := range []struct{ method, target string }{
		{"PUT", "/v1/namespaces/auth-x"}, {"GET", "/v1/namespaces/auth-x"}, {"DELETE", "/v1/namespaces/auth-x"},
		{"GET", "/v1/namespaces"}, {"POST", "/v1/namespaces"},
	} {
		if r := sendBody(t, h, tc.method, tc.target, "{}"); r.code != 401 || r.body["code"] != codeUnauthorized {
			t.Errorf("%s %s without a token: %d %s", tc.method, tc.target, r.code, r.raw)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("PUT", "/v1/namespaces/auth-x", strings.NewReader(`{"shards":2}`))
	req.Header.Set("Authorization", "Bearer "+testToken)
	h.ServeHTTP(rec, req)
	if rec.Code != 201 {
		t.Errorf("PUT with the token: %d %s", rec.Code, rec.Body)
	}
}
