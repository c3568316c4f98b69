package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseTokens(t *testing.T) {
	long := strings.Repeat("x", MaxTokenLength+1)
	tests := []struct {
		name, in string
		want     []string
		err      string
	}{
		{"one", "abcdefghijklmnop\n", []string{"abcdefghijklmnop"}, ""},
		{"comments and blanks", "# ops team\n\n  abcdefghijklmnop  \r\n#old: zzzzzzzzzzzzzzzzzzzz\nqrstuvwxyz0123456789", []string{"abcdefghijklmnop", "qrstuvwxyz0123456789"}, ""},
		{"duplicates once", "abcdefghijklmnop\nabcdefghijklmnop\n", []string{"abcdefghijklmnop"}, ""},
		{"empty", "", nil, "no token"},
		{"only comments", "# a\n\n   \n", nil, "no token"},
		{"short", "abc\n", nil, "line 1: token shorter than 16"},
		{"inner space", "abcdefgh ijklmnop\n", nil, "printable ASCII"},
		{"non-ascii", "abcdefghijklmnopé\n", nil, "printable ASCII"},
		{"too long", long + "\n", nil, "longer than"},
		{"huge line", strings.Repeat("y", 10000), nil, "longer than"},
	}
	for _, tt := range tests {
		got, err := ParseTokens(strings.NewReader(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrBadTokenFile) {
				t.Errorf("%s: %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("%s: %q %v, want %q", tt.name, got, err, tt.want)
		}
	}
	var many strings.Builder
	for i := range MaxTokens + 1 {
		fmt.Fprintf(&many, "token-number-%08d\n", i)
	}
	if _, err := ParseTokens(strings.NewReader(many.String())); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("%d tokens: %v", MaxTokens+1, err)
	}
}

func TestLoadTokenFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "tokens")
	if err := os.WriteFile(p, []byte("abcdefghijklmnop\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if tok, warn, err := LoadTokenFile(p); err != nil || warn != "" || len(tok) != 1 {
		t.Errorf("0600: %q %q %v", tok, warn, err)
	}
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, warn, err := LoadTokenFile(p); err != nil || !strings.Contains(warn, "chmod 600") {
		t.Errorf("0644: warning %q %v", warn, err)
	}
	if _, _, err := LoadTokenFile(dir); err == nil {
		t.Error("a directory was accepted")
	}
	if _, _, err := LoadTokenFile(filepath.Join(dir, "missing")); !errors.Is(err, ErrBadTokenFile) {
		t.Errorf("missing: %v", err)
	}
}

func TestAuthenticator(t *testing.T) {
	a := newAuthenticator([]string{"abcdefghijklmnop", "qrstuvwxyz0123456789"})
	h := a.require(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	for hdr, want := range map[string]int{
		"":                            401,
		"Bearer abcdefghijklmnop":     204,
		"BEARER qrstuvwxyz0123456789": 204,
		"Bearer  abcdefghijklmnop ":   204,
		"Bearer abcdefghijklmno":      401,
		"Bearer abcdefghijklmnopq":    401,
		"Basic abcdefghijklmnop":      401,
		"Bearer":                      401,
		"abcdefghijklmnop":            401,
		"Bearer " + strings.Repeat("a", MaxTokenLength+1): 401,
	} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/v1/shards", nil)
		if hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
		h(rec, req)
		if rec.Code != want {
			t.Errorf("Authorization %q: %d, want %d", hdr, rec.Code, want)
		}
	}
	if newAuthenticator(nil) != nil {
		t.Error("no tokens must mean no authenticator")
	}
}

// FuzzParseTokens: any file content parses or fails cleanly, and what it
// accepts are valid tokens that the authenticator then accepts.
func FuzzParseTokens(f *testing.F) {
	f.Add("abcdefghijklmnop\n# c\n\nqrstuvwxyz0123456789\r\n")
	f.Add("\x00\xff\n")
	f.Add(strings.Repeat("a", 600))
	f.Fuzz(func(t *testing.T, in string) {
		toks, err := ParseTokens(strings.NewReader(in))
		if err != nil {
			return
		}
		a := newAuthenticator(toks)
		for _, tok := range toks {
			if len(tok) < MinTokenLength || len(tok) > MaxTokenLength || !printableToken(tok) {
				t.Fatalf("accepted a bad token %q", tok)
			}
			if !a.valid(tok) {
				t.Fatalf("token %q not accepted", tok)
			}
		}
	})
}

// FuzzBearer: no Authorization header panics the middleware, and only the
// token itself (with the Bearer scheme) gets through.
func FuzzBearer(f *testing.F) {
	const tok = "abcdefghijklmnop"
	f.Add("Bearer " + tok)
	f.Add("bearer\t" + tok)
	f.Add("Bearer " + tok + "\x00")
	f.Fuzz(func(t *testing.T, hdr string) {
		a := newAuthenticator([]string{tok})
		got, ok := bearerToken(hdr)
		if ok && a.valid(got) && got != tok {
			t.Fatalf("%q accepted as %q", hdr, got)
		}
	})
}

func TestSampler(t *testing.T) {
	sp := newSampler(time.Second, 5*time.Second)
	t0 := time.Unix(1000, 0)
	for k := range 10 {
		sp.record(t0.Add(time.Duration(k)*time.Second), map[string]uint64{"a": uint64(k * 100)})
	}
	pts := sp.rates("a")
	if len(pts) != 4 { // 5 samples kept: 4 intervals
		t.Fatalf("rates: %v", pts)
	}
	for _, p := range pts {
		if p.PerSec != 100 {
			t.Errorf("rate %v, want 100", p.PerSec)
		}
	}
	if r := recent(pts, time.Second, time.Minute); r != 100 {
		t.Errorf("recent %v", r)
	}
	sp.record(t0.Add(20*time.Second), map[string]uint64{"b": 1})
	if sp.rates("a") != nil || len(sp.rings) != 1 {
		t.Error("a closed namespace's samples were kept")
	}
	if pts, hi := sparkline([]ratePoint{{PerSec: 0}, {PerSec: 10}}, 4); hi != 10 || !strings.Contains(pts, "160.0,1.0") {
		t.Errorf("sparkline %q %v", pts, hi)
	}
	if formatNum(1234567) != "1\u202f234\u202f567" || formatNum(12) != "12" || formatRate(12345) != "12k" {
		t.Errorf("formatting: %q %q %q", formatNum(1234567), formatNum(12), formatRate(12345))
	}
}
