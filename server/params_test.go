package server

import (
	"maps"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestParseQuery(t *testing.T) {
	for _, tc := range []struct {
		raw     string
		allowed []string
		want    map[string]string // nil with ok: empty
		ok      bool
	}{
		{"", nil, nil, true},
		{"", []string{"count"}, nil, true},
		{"count=3", []string{"count"}, map[string]string{"count": "3"}, true},
		{"count", []string{"count"}, map[string]string{"count": ""}, true},
		{"count=", []string{"count"}, map[string]string{"count": ""}, true},
		{"&count=3&", []string{"count"}, map[string]string{"count": "3"}, true},
		{"limit=2&cursor=a", []string{"limit", "cursor"}, map[string]string{"limit": "2", "cursor": "a"}, true},
		{"namespace=a+b", []string{"namespace"}, map[string]string{"namespace": "a b"}, true},
		{"x=1", nil, nil, false},
		{"cnt=3", []string{"count"}, nil, false},
		{"count=1&count=2", []string{"count"}, nil, false},
		{"count=1&c%6Funt=2", []string{"count"}, nil, false},
		{"count=1;", []string{"count"}, nil, false},
		{"count=%", []string{"count"}, nil, false},
		{"%zz=1", []string{"count"}, nil, false},
		{"=1", []string{"count"}, nil, false},
	} {
		got, err := parseQuery(tc.raw, tc.allowed...)
		if (err == nil) != tc.ok || (tc.ok && len(got)+len(tc.want) > 0 && !maps.Equal(got, tc.want)) {
			t.Errorf("parseQuery(%q, %v) = %v, %v; want %v ok=%v", tc.raw, tc.allowed, got, err, tc.want, tc.ok)
		}
	}
}

func TestParsePositive(t *testing.T) {
	for _, tc := range []struct {
		s    string
		max  int
		want int
		ok   bool
	}{
		{"1", 10, 1, true},
		{"10", 10, 10, true},
		{"11", 10, 0, false},
		{"0", 10, 0, false},
		{"", 10, 0, false},
		{"01", 10, 0, false},
		{"+1", 10, 0, false},
		{"-1", 10, 0, false},
		{" 1", 10, 0, false},
		{"1 ", 10, 0, false},
		{"1_0", 100, 0, false},
		{"2147483647", 1 << 31, 2147483647, true},
		{"99999999999", 1 << 62, 0, false},
	} {
		if got, ok := parsePositive(tc.s, tc.max); got != tc.want || ok != tc.ok {
			t.Errorf("parsePositive(%q, %d) = %d, %v; want %d, %v", tc.s, tc.max, got, ok, tc.want, tc.ok)
		}
	}
}

// TestCleanPaths: a path ServeMux would redirect gets the JSON answer of
// the handler for it, never a redirect; a clean one reaches the mux.
func TestCleanPaths(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	answer := func(status int) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(status) }
	}
	h := cleanPaths(mux, answer(http.StatusUnauthorized), answer(http.StatusNotFound))
	for _, tc := range []struct {
		path string
		want int
	}{
		{"/", http.StatusTeapot},
		{"/v1/ids/orders", http.StatusTeapot},
		{"/v1/ids/", http.StatusTeapot},
		{"/v1/namespaces/.", http.StatusUnauthorized},
		{"/v1/namespaces/..", http.StatusUnauthorized},
		{"/v1/./ids/x", http.StatusUnauthorized},
		{"/v1//ids/x", http.StatusUnauthorized},
		{"/v1/..", http.StatusUnauthorized},
		{"/./healthz", http.StatusNotFound},
		{"//healthz", http.StatusNotFound},
		{"/healthz/..", http.StatusNotFound},
		{"/v10/.", http.StatusNotFound},
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.URL.Path = tc.path
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		if rec.Code != tc.want {
			t.Errorf("%s: %d, want %d", tc.path, rec.Code, tc.want)
		}
	}
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "count=3", "count=1&count=2", "cnt=3", "count=%zz", "a=1;b=2", "&&count=&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseQuery(raw, "count", "limit")
		if err != nil {
			if got != nil || err.msg == "" {
				t.Fatalf("error %v with %v", err, got)
			}
			return
		}
		for k := range got {
			if k != "count" && k != "limit" {
				t.Fatalf("accepted %q in %q", k, raw)
			}
		}
	})
}
