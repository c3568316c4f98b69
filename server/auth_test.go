package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
)

// Tokens of the parser tests.
const (
	tokA = "abcdefghijklmnop"
	tokB = "qrstuvwxyz0123456789"
)

func TestParseTokens(t *testing.T) {
	long := strings.Repeat("x", MaxTokenLength+1)
	tok := func(secret string, line int, scopes ...string) Token {
		return Token{Secret: secret, Scopes: scopes, Line: line}
	}
	tests := []struct {
		name, in string
		want     []Token
		err      string // the message has it, and shows no field of the file
	}{
		{"one", tokA + "\n", []Token{tok(tokA, 1)}, ""},
		{"comments and blanks", "# ops team\n\n  " + tokA + "  \r\n#old: zzzzzzzzzzzzzzzzzzzz\n" + tokB, []Token{tok(tokA, 3), tok(tokB, 5)}, ""},
		{"duplicates once", tokA + "\n" + tokA + "\n", []Token{tok(tokA, 1)}, ""},
		{"scopes", tokA + " ids:orders\tids:tenant-* read\n" + tokB + " admin", []Token{tok(tokA, 1, "ids:orders", "ids:tenant-*", "read"), tok(tokB, 2, "admin")}, ""},
		{"every scope spelled out", tokA + " ids read admin", []Token{tok(tokA, 1, "ids", "read", "admin")}, ""},
		{"trailing comment", tokA + " ids:orders # the orders service\n" + tokB + "\t#bare", []Token{tok(tokA, 1, "ids:orders"), tok(tokB, 2)}, ""},
		{"patterns", tokA + " ids:?x ids:[a-c]* ids:[^0-9]z ids:a.b_c-d ids:*", []Token{tok(tokA, 1, "ids:?x", "ids:[a-c]*", "ids:[^0-9]z", "ids:a.b_c-d", "ids:*")}, ""},
		{"same scopes in another order", tokA + " read ids\n" + tokA + " ids read", []Token{tok(tokA, 1, "read", "ids")}, ""},
		{"a hash inside a token", "abc#defghijklmnop read", []Token{tok("abc#defghijklmnop", 1, "read")}, ""},
		{"empty", "", nil, "no token"},
		{"only comments", "# a\n\n   \n", nil, "no token"},
		{"short", "abc\n", nil, "line 1: token shorter than 16"},
		{"two short halves", "abcdefgh ijklmnop\n", nil, "line 1: token shorter than 16"},
		{"non-ascii", "abcdefghijklmnopé\n", nil, "line 1: a token may contain printable ASCII characters only"},
		{"too long", long + "\n", nil, "longer than"},
		{"huge line", strings.Repeat("y", 10000), nil, "longer than"},
		{"unknown scope", "\n" + tokA + " write\n", nil, "line 2: field 1 after the token: not a scope; want ids, ids:PATTERN, read or admin"},
		{"two tokens on a line", tokA + " " + tokB + "\n", nil, "line 1: field 1 after the token: not a scope"},
		{"scope case", tokA + " Read", nil, "line 1: field 1 after the token: not a scope"},
		{"ids with nothing", tokA + " ids:", nil, "line 1: field 1 after the token: ids: pattern empty"},
		{"unclosed class", tokA + " read ids:a[b", nil, "line 1: field 2 after the token: ids: malformed pattern"},
		{"slash", tokA + " ids:a/b", nil, "line 1: field 1 after the token: ids: pattern has a character no namespace has"},
		{"backslash", tokA + ` ids:a\*`, nil, "pattern has a character no namespace has"},
		{"pattern too long", tokA + " ids:" + strings.Repeat("a", maxPatternLength+1), nil, "longer than 128"},
		{"repeated scope", tokA + " read ids read", nil, "line 1: field 3 after the token repeats a scope"},
		{"same token, other scopes", tokA + " read\n# x\n" + tokA + " admin\n", nil, "line 3: the token of line 1 again, with other scopes"},
		{"bare and scoped", tokA + "\n" + tokA + " ids\n", nil, "line 2: the token of line 1 again"},
		{"comma list", tokA + " ids,read", nil, "not a scope"},
	}
	for _, tt := range tests {
		got, err := ParseTokens(strings.NewReader(tt.in))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || !errors.Is(err, ErrBadTokenFile) {
				t.Errorf("%s: %v, want %q", tt.name, err, tt.err)
				continue
			}
			for _, f := range strings.Fields(tt.in) {
				if len(f) >= MinTokenLength && strings.Contains(err.Error(), f) {
					t.Errorf("%s: the error shows a field of the file: %v", tt.name, err)
				}
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %+v %v, want %+v", tt.name, got, err, tt.want)
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
		t.Errorf("0600: %+v %q %v", tok, warn, err)
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
	a := newAuthenticator([]string{tokA, tokB}, nil)
	h := a.require(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	for hdr, want := range map[string]int{
		"":                      401,
		"Bearer " + tokA:        204,
		"BEARER " + tokB:        204,
		"Bearer  " + tokA + " ": 204,
		"Bearer " + tokA[:15]:   401,
		"Bearer " + tokA + "q":  401,
		"Basic " + tokA:         401,
		"Bearer":                401,
		tokA:                    401,
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
	if newAuthenticator(nil, nil) != nil {
		t.Error("no tokens must mean no authenticator")
	}
	var none *authenticator
	if err := none.authorize(httptest.NewRequest("DELETE", "/v1/namespaces/x", nil), scopeAdmin, ""); err != nil {
		t.Errorf("no authenticator: %v", err)
	}
}

// Tokens of the scope tests, one per kind of grant.
const (
	tokAll      = "all-scopes-0123456789"
	tokIDs      = "ids-any-0123456789ab"
	tokOrders   = "ids-orders-0123456789"
	tokRead     = "read-only-0123456789"
	tokAdmin    = "admin-only-0123456789"
	tokIDsAdmin = "ids-and-admin-0123456789"
)

// scopedTokens are the tokens of the scope tests, as a token file has them
// (line 1 would be tokAll, bare).
var scopedTokens = []Token{
	{Secret: tokIDs, Scopes: []string{"ids"}, Line: 2},
	{Secret: tokOrders, Scopes: []string{"ids:orders", "ids:tenant-*"}, Line: 3},
	{Secret: tokRead, Scopes: []string{"read"}, Line: 4},
	{Secret: tokAdmin, Scopes: []string{"admin"}, Line: 5},
	{Secret: tokIDsAdmin, Scopes: []string{"ids:*", "admin"}, Line: 6},
}

// TestAuthorize: each scope × each token, through authorizeHeader as the
// gRPC calls would use it; the errors are the sentinels, with their
// challenges.
func TestAuthorize(t *testing.T) {
	a := newAuthenticator([]string{tokAll}, scopedTokens)
	type verdict int
	const (
		ok verdict = iota
		unauth
		forbid
	)
	tests := []struct {
		token string
		sc    scope
		ns    string
		want  verdict
	}{
		{tokAll, scopeIDs, "orders", ok}, {tokAll, scopeRead, "", ok}, {tokAll, scopeAdmin, "", ok}, {tokAll, scopeAny, "", ok},
		{tokIDs, scopeIDs, "orders", ok}, {tokIDs, scopeIDs, "x.y-z_9", ok}, {tokIDs, scopeRead, "", forbid}, {tokIDs, scopeAdmin, "", forbid}, {tokIDs, scopeAny, "", ok},
		{tokOrders, scopeIDs, "orders", ok}, {tokOrders, scopeIDs, "tenant-a", ok}, {tokOrders, scopeIDs, "tenant-", ok},
		{tokOrders, scopeIDs, "orders2", forbid}, {tokOrders, scopeIDs, "Orders", forbid}, {tokOrders, scopeIDs, "billing", forbid},
		{tokOrders, scopeIDs, "tenant", forbid}, {tokOrders, scopeIDs, "a/tenant-b", forbid}, {tokOrders, scopeRead, "", forbid},
		{tokRead, scopeRead, "", ok}, {tokRead, scopeIDs, "orders", forbid}, {tokRead, scopeAdmin, "", forbid},
		{tokAdmin, scopeAdmin, "", ok}, {tokAdmin, scopeRead, "", ok}, {tokAdmin, scopeIDs, "orders", forbid},
		{tokIDsAdmin, scopeIDs, "orders", ok}, {tokIDsAdmin, scopeAdmin, "", ok},
		{"", scopeAny, "", unauth}, {"wrong-token-0123456789", scopeIDs, "orders", unauth}, {tokAll + "x", scopeRead, "", unauth},
	}
	for _, tt := range tests {
		hdr := ""
		if tt.token != "" {
			hdr = "Bearer " + tt.token
		}
		err := a.authorizeHeader(hdr, tt.sc, tt.ns)
		what := fmt.Sprintf("token %s, scope %v, namespace %q", tt.token, tt.sc, tt.ns)
		switch tt.want {
		case ok:
			if err != nil {
				t.Errorf("%s: %v, want allowed", what, err)
			}
		case unauth:
			if !errors.Is(err, errUnauthorized) || errors.Is(err, errForbidden) || !strings.HasPrefix(challengeOf(err), `Bearer realm="shardseq"`) {
				t.Errorf("%s: %v (challenge %q), want errUnauthorized", what, err, challengeOf(err))
			}
		case forbid:
			if !errors.Is(err, errForbidden) || errors.Is(err, errUnauthorized) || !strings.Contains(challengeOf(err), `error="insufficient_scope", scope="`+tt.sc.String()+`"`) {
				t.Errorf("%s: %v (challenge %q), want errForbidden", what, err, challengeOf(err))
			}
			e := errorOf(err)
			if e.status != 403 || e.code != codeForbidden || strings.Contains(e.msg, tt.token) {
				t.Errorf("%s: answered %+v", what, e)
			}
		}
		if tt.token != "" && tt.want != unauth {
			if got := a.authorizeToken(tt.token, tt.sc, tt.ns); (got == nil) != (err == nil) {
				t.Errorf("%s: authorizeToken %v, authorizeHeader %v", what, got, err)
			}
		}
	}
	// A pattern-limited token is told which namespace, when it is a name.
	if e := errorOf(a.authorizeToken(tokOrders, scopeIDs, "billing")); !strings.Contains(e.msg, `"billing"`) {
		t.Errorf("message %q", e.msg)
	}
	if e := errorOf(a.authorizeToken(tokOrders, scopeIDs, "a\"b\n")); strings.Contains(e.msg, `a\"b`) || e.status != 403 {
		t.Errorf("a path that is no namespace in the message: %+v", e)
	}
	// The warning at start names the tokens with every scope by place.
	if got := a.everything(); !slices.Equal(got, []string{"Tokens[0]", "line 6"}) {
		t.Errorf("everything: %v", got)
	}
	if got := newAuthenticator(nil, scopedTokens[:4]).everything(); got != nil {
		t.Errorf("everything without such a token: %v", got)
	}
}

// TestRequireScope: the HTTP wrapper answers 401 and 403 with the JSON
// error and the challenge, and takes the namespace from the path.
func TestRequireScope(t *testing.T) {
	a := newAuthenticator(nil, scopedTokens)
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }
	mux.HandleFunc("POST /v1/ids/{namespace}", a.requireScope(scopeIDs, ok))
	mux.HandleFunc("DELETE /v1/namespaces/{namespace}", a.requireScope(scopeAdmin, ok))
	for _, tt := range []struct {
		method, target, token string
		want                  int
	}{
		{"POST", "/v1/ids/orders", tokOrders, 204},
		{"POST", "/v1/ids/billing", tokOrders, 403},
		{"POST", "/v1/ids/orders", tokRead, 403},
		{"POST", "/v1/ids/orders", "", 401},
		{"DELETE", "/v1/namespaces/orders", tokOrders, 403},
		{"DELETE", "/v1/namespaces/orders", tokAdmin, 204},
	} {
		rec := send(mux, tt.method, tt.target)
		if tt.token != "" {
			rec = send(mux, tt.method, tt.target, "Authorization", "Bearer "+tt.token)
		}
		if rec.Code != tt.want {
			t.Errorf("%s %s with %q: %d, want %d", tt.method, tt.target, tt.token, rec.Code, tt.want)
			continue
		}
		if tt.want == 403 {
			var e errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Code != codeForbidden || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("%s %s: 403 body %q", tt.method, tt.target, rec.Body)
			}
			if !strings.Contains(rec.Header().Get("WWW-Authenticate"), "insufficient_scope") {
				t.Errorf("%s %s: WWW-Authenticate %q", tt.method, tt.target, rec.Header().Get("WWW-Authenticate"))
			}
		}
	}
}

func TestValidateTokens(t *testing.T) {
	for _, tt := range []struct {
		name   string
		tokens []string
		scoped []Token
		err    string
	}{
		{"bare", []string{tokA}, nil, ""},
		{"scoped", nil, scopedTokens, ""},
		{"same twice", []string{tokA}, []Token{{Secret: tokA}}, ""},
		{"short", []string{"short"}, nil, "Tokens[0]"},
		{"short scoped", nil, []Token{{Secret: "short", Scopes: []string{"read"}}}, "ScopedTokens[0]"},
		{"bad scope", nil, []Token{{Secret: tokA, Scopes: []string{"write"}}}, "ScopedTokens[0]"},
		{"bad pattern", nil, []Token{{Secret: tokA}, {Secret: tokB, Scopes: []string{"ids:["}}}, "ScopedTokens[1]"},
		{"other scopes", []string{tokA}, []Token{{Secret: tokA, Scopes: []string{"read"}}}, "the secret of Tokens[0] again"},
	} {
		cfg := Config{Tokens: tt.tokens, ScopedTokens: tt.scoped}
		err := cfg.validTokens()
		switch {
		case tt.err == "" && err != nil, tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
			t.Errorf("%s: %v, want %q", tt.name, err, tt.err)
		case err != nil && (strings.Contains(err.Error(), tokA) || strings.Contains(err.Error(), tokB)):
			t.Errorf("%s: the error shows a secret: %v", tt.name, err)
		}
	}
	cl := &cluster.Cluster{}
	if err := (Config{Cluster: cl, ScopedTokens: scopedTokens, AuthUI: true}).Validate(); err != nil && strings.Contains(err.Error(), "AuthMetrics") {
		t.Errorf("AuthUI with ScopedTokens: %v", err)
	}
	if err := (Config{Cluster: cl, AuthUI: true}).Validate(); err == nil || !strings.Contains(err.Error(), "AuthMetrics/AuthUI") {
		t.Errorf("AuthUI without tokens: %v", err)
	}
}

// FuzzParseTokens: any file content parses or fails cleanly; what it
// accepts are valid tokens with valid scopes, which the authenticator then
// accepts with exactly those scopes; an error shows no token-long field.
func FuzzParseTokens(f *testing.F) {
	f.Add(tokA + "\n# c\n\n" + tokB + "\r\n")
	f.Add(tokA + " ids:orders ids:tenant-* read # c\n" + tokB + " admin\n")
	f.Add(tokA + " ids:[a-\n" + tokA + " read\n")
	f.Add("\x00\xff\n")
	f.Add(strings.Repeat("a", 600))
	f.Fuzz(func(t *testing.T, in string) {
		toks, err := ParseTokens(strings.NewReader(in))
		if err != nil {
			for _, fld := range strings.Fields(in) {
				if len(fld) >= MinTokenLength && strings.Contains(err.Error(), fld) {
					t.Fatalf("the error shows a field: %v", err)
				}
			}
			return
		}
		if err := (Config{ScopedTokens: toks}).validTokens(); err != nil {
			t.Fatalf("parsed, then refused: %v", err)
		}
		a := newAuthenticator(nil, toks)
		for _, tok := range toks {
			if len(tok.Secret) < MinTokenLength || len(tok.Secret) > MaxTokenLength || !printableToken(tok.Secret) {
				t.Fatalf("accepted a bad token %q", tok.Secret)
			}
			if !a.valid(tok.Secret) {
				t.Fatalf("token %q not accepted", tok.Secret)
			}
			has := func(s string) bool { return len(tok.Scopes) == 0 || slices.Contains(tok.Scopes, s) }
			if got := a.authorizeToken(tok.Secret, scopeRead, "") == nil; got != (has(ScopeRead) || has(ScopeAdmin)) {
				t.Fatalf("%q: read %v with scopes %q", tok.Secret, got, tok.Scopes)
			}
			if got := a.authorizeToken(tok.Secret, scopeAdmin, "") == nil; got != has(ScopeAdmin) {
				t.Fatalf("%q: admin %v with scopes %q", tok.Secret, got, tok.Scopes)
			}
			if got := a.authorizeToken(tok.Secret, scopeIDs, "orders") == nil; has(ScopeIDs) && !got {
				t.Fatalf("%q: no IDs with scopes %q", tok.Secret, tok.Scopes)
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
		a := newAuthenticator([]string{tok}, nil)
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
