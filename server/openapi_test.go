package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
)

// specFile is the API description the tests hold the server to.
const specFile = "../api/openapi.yaml"

// apiSpec is api/openapi.yaml loaded for checking answers: the document as
// JSON values, and its schemas compiled (JSON Schema 2020-12, the dialect
// of OpenAPI 3.1) as they are needed.
type apiSpec struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	compiled map[string]*jsonschema.Schema // by JSON pointer
	seen     map[string]bool               // answered: "<operation pointer> <status>", or a shared response's pointer
}

// specURL names the document for the compiler; nothing is fetched.
const specURL = "file:///shardseq/api/openapi.json"

func loadSpec(t *testing.T) *apiSpec {
	t.Helper()
	b, err := os.ReadFile(specFile)
	if err != nil {
		t.Fatal(err)
	}
	var y any
	if err := yaml.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", specFile, err)
	}
	j, err := json.Marshal(y) // YAML to the JSON values the compiler takes
	if err != nil {
		t.Fatalf("%s: not JSON-compatible: %v", specFile, err)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	doc := v.(map[string]any)
	if doc["openapi"] != "3.1.0" {
		t.Fatalf("%s: openapi %v, want 3.1.0", specFile, doc["openapi"])
	}
	// Strict for the test, open for clients: every named object schema
	// refuses members it does not list, so a member the server sends and
	// the description lacks fails here (clients may still ignore additions).
	for name, sch := range doc["components"].(map[string]any)["schemas"].(map[string]any) {
		m := sch.(map[string]any)
		if _, ok := m["properties"]; ok {
			if _, set := m["additionalProperties"]; set {
				t.Fatalf("schema %s sets additionalProperties; the test makes every schema strict itself", name)
			}
			m["additionalProperties"] = false
		}
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat() // date-time
	if err := c.AddResource(specURL, doc); err != nil {
		t.Fatal(err)
	}
	return &apiSpec{doc: doc, compiler: c, compiled: map[string]*jsonschema.Schema{}, seen: map[string]bool{}}
}

// ptr joins JSON pointer tokens, escaped (RFC 6901).
func ptr(base string, tokens ...string) string {
	for _, tok := range tokens {
		base += "/" + strings.ReplaceAll(strings.ReplaceAll(tok, "~", "~0"), "/", "~1")
	}
	return base
}

// at returns the node at JSON pointer p of the document, following a $ref
// there, and the pointer of what it returns.
func (s *apiSpec) at(t *testing.T, p string) (map[string]any, string) {
	t.Helper()
	var node any = s.doc
	for _, tok := range strings.Split(p, "/")[1:] {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		switch n := node.(type) {
		case map[string]any:
			var ok bool
			if node, ok = n[tok]; !ok {
				return nil, p
			}
		case []any:
			i, err := strconv.Atoi(tok)
			if err != nil || i < 0 || i >= len(n) {
				return nil, p
			}
			node = n[i]
		default:
			t.Fatalf("spec: %s: nothing at %q", p, tok)
		}
	}
	m, _ := node.(map[string]any)
	if ref, ok := m["$ref"].(string); ok {
		return s.at(t, strings.TrimPrefix(ref, "#"))
	}
	return m, p
}

// validate checks v against the schema at JSON pointer p.
func (s *apiSpec) validate(t *testing.T, p string, v any) error {
	t.Helper()
	sch, ok := s.compiled[p]
	if !ok {
		// The pointer is a URI fragment: percent-encode what a URI may not hold.
		frag := strings.NewReplacer("{", "%7B", "}", "%7D").Replace(p)
		var err error
		if sch, err = s.compiler.Compile(specURL + "#" + frag); err != nil {
			t.Fatalf("spec: compiling the schema at %s: %v", p, err)
		}
		s.compiled[p] = sch
	}
	return sch.Validate(v)
}

// operation finds the operation of method and path: its pointer and the
// values of its path parameters. "" when the path is not described (404);
// the path's pointer and found false when the method is not (405).
func (s *apiSpec) operation(method, path string) (op string, params map[string]string, found bool) {
	segs := strings.Split(path, "/")
	for tmpl, item := range s.doc["paths"].(map[string]any) {
		tsegs := strings.Split(tmpl, "/")
		if len(tsegs) != len(segs) {
			continue
		}
		params = map[string]string{}
		for i, ts := range tsegs {
			if strings.HasPrefix(ts, "{") && strings.HasSuffix(ts, "}") && segs[i] != "" {
				v, err := url.PathUnescape(segs[i])
				if err != nil {
					v = segs[i]
				}
				params[ts[1:len(ts)-1]] = v
			} else if ts != segs[i] {
				params = nil
				break
			}
		}
		if params == nil {
			continue
		}
		p := ptr("/paths", tmpl)
		if _, ok := item.(map[string]any)[strings.ToLower(method)]; !ok {
			return p, params, false
		}
		return ptr(p, strings.ToLower(method)), params, true
	}
	return "", nil, false
}

// checkParams holds the description's parameter schemas to the server's
// verdict: an answer 400 has a parameter the schemas refuse, any other
// answer none.
func (s *apiSpec) checkParams(t *testing.T, op string, pathParams map[string]string, query url.Values, status int) {
	t.Helper()
	node, _ := s.at(t, op)
	list, _ := node["parameters"].([]any)
	var refused []string
	for i := range list {
		prm, pp := s.at(t, ptr(op, "parameters", strconv.Itoa(i)))
		name := prm["name"].(string)
		var raw string
		switch prm["in"] {
		case "path":
			raw = pathParams[name]
		case "query":
			if !query.Has(name) {
				if prm["required"] == true {
					refused = append(refused, name+" missing")
				}
				continue // absent: the default
			}
			raw = query.Get(name)
		default:
			t.Fatalf("spec: %s: parameter in %v", op, prm["in"])
		}
		// Query and path values are text: a value is valid as text, or as
		// the integer it spells as JSON would (no sign, no leading zero).
		err := s.validate(t, ptr(pp, "schema"), raw)
		if n, perr := strconv.ParseInt(raw, 10, 64); err != nil && perr == nil && strconv.FormatInt(n, 10) == raw {
			err = s.validate(t, ptr(pp, "schema"), json.Number(strconv.FormatInt(n, 10)))
		}
		if err != nil {
			refused = append(refused, fmt.Sprintf("%s=%q", name, raw))
		}
	}
	switch {
	case status == http.StatusBadRequest && len(refused) == 0:
		t.Errorf("%s: the server refused parameters the description accepts: %v %v", op, pathParams, query)
	case status != http.StatusBadRequest && len(refused) > 0:
		t.Errorf("%s: the server accepted (%d) parameters the description refuses: %v", op, status, refused)
	}
}

// undescribed reports whether the query has a parameter the operation
// does not describe, one given twice, or what url.ParseQuery refuses: what
// bad_parameter answers (as it answers a page the schema refuses).
func (s *apiSpec) undescribed(t *testing.T, op, rawQuery string) bool {
	t.Helper()
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return true
	}
	node, _ := s.at(t, op)
	list, _ := node["parameters"].([]any)
	described := map[string]bool{}
	for i := range list {
		if prm, _ := s.at(t, ptr(op, "parameters", strconv.Itoa(i))); prm["in"] == "query" {
			described[prm["name"].(string)] = true
		}
	}
	for name, vs := range q {
		if !described[name] || len(vs) > 1 {
			return true
		}
	}
	return false
}

// checkRequestBody holds the description's request body schema to the
// server's verdict on the body sent (reqBody): an answer bad_body has a body
// the schema refuses (or one too large, or one the operation requires and
// the request lacks), an answer 2xx or 409 one it accepts.
func (s *apiSpec) checkRequestBody(t *testing.T, op string, reqBody []byte, status int, badBody bool) {
	t.Helper()
	node, _ := s.at(t, op)
	rb, _ := node["requestBody"].(map[string]any)
	if rb == nil {
		if badBody {
			t.Errorf("%s: bad_body from an operation that takes no body", op)
		}
		return
	}
	valid := true
	why := ""
	switch {
	case len(bytes.TrimSpace(reqBody)) == 0:
		valid, why = rb["required"] != true, "required body missing"
	case len(reqBody) > maxBodyBytes:
		valid, why = false, "too large"
	case bytes.HasPrefix(bytes.TrimSpace(reqBody), []byte("{")) && json.Valid(reqBody) && firstDuplicate(reqBody):
		// JSON (RFC 8259) says names SHOULD be unique; the description's
		// objects are read as JSON Schema reads them, one value a name.
		valid, why = false, "a member given twice"
	default:
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(reqBody))
		if err == nil {
			err = s.validate(t, ptr(op, "requestBody", "content", "application/json", "schema"), v)
		}
		if err != nil {
			valid, why = false, err.Error()
		}
	}
	switch {
	case badBody && valid:
		t.Errorf("%s: the server refused a body the description accepts: %.200s", op, reqBody)
	case !valid && (status < 300 || status == http.StatusConflict):
		t.Errorf("%s: the server accepted (%d) a body the description refuses (%s): %.200s", op, status, why, reqBody)
	}
}

// checkAnswer holds one real answer to the description: its status is
// documented for the operation, its content type is one documented, its
// JSON body matches the schema, its required headers are there and valid,
// and the verdict on the parameters and the request body sent (reqBody) is
// the description's.
func (s *apiSpec) checkAnswer(t *testing.T, req *http.Request, reqBody []byte, resp *http.Response, body []byte) {
	t.Helper()
	what := req.Method + " " + req.URL.RequestURI()
	op, params, found := s.operation(req.Method, req.URL.EscapedPath())
	if needsCleaning(req.URL.Path) {
		op = "" // a path with "." or "" segments is not the one it cleans to
	}
	var rp string // pointer of the response description
	switch {
	case op == "" || !found:
		s.checkUnlisted(t, what, op, resp, body)
		return
	default:
		var e errorBody
		_ = json.Unmarshal(body, &e)
		badBody := resp.StatusCode == http.StatusBadRequest && e.Code == codeBadBody
		switch {
		case resp.StatusCode == http.StatusBadRequest && e.Code == codeBadParameter && s.undescribed(t, op, req.URL.RawQuery):
		case !badBody:
			s.checkParams(t, op, params, req.URL.Query(), resp.StatusCode)
		}
		s.checkRequestBody(t, op, reqBody, resp.StatusCode, badBody)
		rp = ptr(op, "responses", strconv.Itoa(resp.StatusCode))
	}
	r, rp := s.at(t, rp)
	if r == nil {
		t.Errorf("%s: status %d is not in the description of %s", what, resp.StatusCode, op)
		return
	}
	s.seen[op+" "+strconv.Itoa(resp.StatusCode)] = true
	headers, _ := r["headers"].(map[string]any)
	for name := range headers {
		h, hp := s.at(t, ptr(rp, "headers", name))
		v := resp.Header.Get(name)
		if v == "" {
			if h["required"] == true {
				t.Errorf("%s: %d without the header %s", what, resp.StatusCode, name)
			}
			continue
		}
		var val any = v
		if _, err := strconv.ParseInt(v, 10, 64); err == nil {
			val = json.Number(v)
		}
		if err := s.validate(t, ptr(hp, "schema"), val); err != nil {
			t.Errorf("%s: header %s: %q: %v", what, name, v, err)
		}
	}
	content, _ := r["content"].(map[string]any)
	if content == nil {
		if len(body) > 0 || resp.Header.Get("Content-Type") != "" {
			t.Errorf("%s: %d has no content in the description, but answered %q (%s)", what, resp.StatusCode, body, resp.Header.Get("Content-Type"))
		}
		return
	}
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if err != nil {
		t.Errorf("%s: Content-Type %q: %v", what, resp.Header.Get("Content-Type"), err)
		return
	}
	if mt == "application/json" && resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("%s: %d without X-Content-Type-Options: nosniff", what, resp.StatusCode)
	}
	if _, ok := content[mt]; !ok {
		t.Errorf("%s: %d answered %s; the description has %v", what, resp.StatusCode, mt, slices.Collect(maps.Keys(content)))
		return
	}
	if mt != "application/json" {
		return
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s: not JSON: %v: %q", what, err, body)
		return
	}
	if err := s.validate(t, ptr(rp, "content", mt, "schema"), v); err != nil {
		t.Errorf("%s: %d body does not match the description: %v\n%.300s", what, resp.StatusCode, err, body)
	}
}

// firstDuplicate reports whether the JSON object b has a member twice.
func firstDuplicate(b []byte) bool {
	_, dup := duplicateMember(b)
	return dup
}

// checkUnlisted holds the answer to a path (op "") or a method the
// description does not list to what its introduction says: 404 not_found,
// or 405 method_not_allowed with Allow; both an Error. PUT
// /v1/namespaces/. and .. are 400 bad_namespace.
func (s *apiSpec) checkUnlisted(t *testing.T, what, op string, resp *http.Response, body []byte) {
	t.Helper()
	status, code := http.StatusNotFound, codeNotFound
	switch {
	case strings.HasPrefix(what, "PUT /v1/namespaces/.") && reservedName(strings.TrimPrefix(what, "PUT /v1/namespaces/")):
		status, code = http.StatusBadRequest, codeBadNamespace
	case op != "":
		status, code = http.StatusMethodNotAllowed, codeMethodNotAllowed
		if resp.Header.Get("Allow") == "" {
			t.Errorf("%s: 405 without Allow", what)
		}
	}
	if resp.StatusCode != status {
		t.Errorf("%s: %d, want %d for what the description does not list", what, resp.StatusCode, status)
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt != "application/json" {
		t.Errorf("%s: Content-Type %q, want JSON", what, resp.Header.Get("Content-Type"))
		return
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err == nil {
		err = s.validate(t, "/components/schemas/Error", v)
	}
	var e errorBody
	if err == nil {
		err = json.Unmarshal(body, &e)
	}
	if err != nil || e.Code != code {
		t.Errorf("%s: body %q (%v), want an Error with code %s", what, body, err, code)
	}
	s.seen["unlisted "+strconv.Itoa(status)] = true
}

// unseen lists the documented answers of every operation no check saw,
// but 500s, which a healthy real server does not give on purpose.
func (s *apiSpec) unseen(t *testing.T) []string {
	t.Helper()
	var out []string
	for tmpl, item := range s.doc["paths"].(map[string]any) {
		for method, o := range item.(map[string]any) {
			for status := range o.(map[string]any)["responses"].(map[string]any) {
				if key := ptr(ptr("/paths", tmpl), method) + " " + status; status != "500" && !s.seen[key] {
					out = append(out, key)
				}
			}
		}
	}
	for _, key := range []string{"unlisted 404", "unlisted 405"} {
		if !s.seen[key] {
			out = append(out, key)
		}
	}
	slices.Sort(out)
	return out
}

// TestOpenAPIDocument checks what the description says without a server:
// its error codes are the server's, and the README lists them all.
func TestOpenAPIDocument(t *testing.T) {
	spec := loadSpec(t)
	codes, _ := spec.at(t, "/components/schemas/ErrorCode")
	var enum []string
	for _, c := range codes["enum"].([]any) {
		enum = append(enum, c.(string))
	}
	if !slices.Equal(enum, documentedCodes) {
		t.Errorf("ErrorCode enum %v, want the server's codes %v", enum, documentedCodes)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range documentedCodes {
		if !bytes.Contains(readme, []byte("| `"+c+"` |")) {
			t.Errorf("README's error code table lacks %s", c)
		}
	}
	// What OpenAPI 3.1 requires of the objects used here: a response has a
	// description, a parameter a name, a place and a schema, and a path
	// parameter is required.
	for tmpl, item := range spec.doc["paths"].(map[string]any) {
		for method := range item.(map[string]any) {
			op := ptr(ptr("/paths", tmpl), method)
			node, _ := spec.at(t, op)
			for status := range node["responses"].(map[string]any) {
				if r, rp := spec.at(t, ptr(op, "responses", status)); r == nil || r["description"] == nil {
					t.Errorf("%s: response %s without a description", rp, status)
				}
			}
			params, _ := node["parameters"].([]any)
			for i := range params {
				prm, pp := spec.at(t, ptr(op, "parameters", strconv.Itoa(i)))
				if prm["name"] == nil || prm["schema"] == nil || prm["in"] != "query" && (prm["in"] != "path" || prm["required"] != true) {
					t.Errorf("%s: parameter %v", pp, prm)
				}
				if prm["in"] == "path" && !strings.Contains(tmpl, "{"+prm["name"].(string)+"}") {
					t.Errorf("%s: path parameter %v not in %s", pp, prm["name"], tmpl)
				}
			}
		}
	}
	// Every $ref resolves, and every schema compiles.
	var walk func(p string, v any)
	walk = func(p string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok {
				if n, _ := spec.at(t, strings.TrimPrefix(ref, "#")); n == nil {
					t.Errorf("%s: $ref %s resolves to nothing", p, ref)
				}
			}
			if strings.HasSuffix(p, "/schema") || strings.HasPrefix(p, "/components/schemas/") && strings.Count(p, "/") == 3 {
				_ = spec.validate(t, p, nil) // compiling is the check
			}
			for k, e := range v {
				walk(ptr(p, k), e)
			}
		case []any:
			for i, e := range v {
				walk(ptr(p, strconv.Itoa(i)), e)
			}
		}
	}
	walk("", spec.doc)
}

// testOpenAPI sends real requests over HTTP to real servers on the test
// cluster, holds every answer to api/openapi.yaml, and requires every
// documented answer (but 500) to have been seen.
func testOpenAPI(t *testing.T, cl *cluster.Cluster) {
	spec := loadSpec(t)
	// "oa-conflict" exists with 4 shards; the servers use 6.
	c4, err := client.New(context.Background(), client.Config{Cluster: cl, Namespace: "oa-conflict", Shards: 4, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c4.Close()

	start := func(s *Server) *httptest.Server {
		hs := httptest.NewUnstartedServer(s.Handler())
		hs.Config = NewHTTPServer("", s.Handler(), slog.New(slog.DiscardHandler))
		hs.Start()
		t.Cleanup(hs.Close)
		return hs
	}
	open := newServer(t, Config{Cluster: cl, Shards: 6, MaxNamespaces: 4})
	locked := newServer(t, Config{Cluster: cl, Shards: 6, Tokens: []string{testToken}, ScopedTokens: scopedTokens, AuthMetrics: true, AuthUI: true})
	openURL, lockedURL := start(open).URL, start(locked).URL

	exchange := func(base, method, target, token, reqBody string, status int, code string) {
		t.Helper()
		var rb io.Reader
		if reqBody != "" {
			rb = strings.NewReader(reqBody)
		}
		req, err := http.NewRequest(method, base+target, rb)
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
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != status {
			t.Errorf("%s %s: %d, want %d: %s", method, target, resp.StatusCode, status, body)
			return
		}
		spec.checkAnswer(t, req, []byte(reqBody), resp, body)
		if code != "" {
			var e errorBody
			if err := json.Unmarshal(body, &e); err != nil || e.Code != code {
				t.Errorf("%s %s: code %q, want %q: %s", method, target, e.Code, code, body)
			}
		}
	}
	check := func(base, method, target, token string, status int, code string) {
		t.Helper()
		exchange(base, method, target, token, "", status, code)
	}

	for _, c := range []struct {
		method, target string
		status         int
		code           string
	}{
		{"POST", "/v1/ids/orders", 200, ""},
		{"POST", "/v1/ids/orders?count=10000", 200, ""},
		{"POST", "/v1/ids/Az09_.-?count=7", 200, ""},
		{"POST", "/v1/ids/orders?count=007", 400, codeBadCount},
		{"POST", "/v1/ids/orders?count=", 400, codeBadCount},
		{"POST", "/v1/ids/orders?count=%2B3", 400, codeBadCount},
		{"POST", "/v1/ids/orders?cnt=3", 400, codeBadParameter},
		{"POST", "/v1/ids/orders?count=1&count=2", 400, codeBadParameter},
		{"POST", "/v1/ids/orders?count=1;x=1", 400, codeBadParameter},
		{"POST", "/v1/leases/orders?count=5&n=1", 400, codeBadParameter},
		{"GET", "/v1/shards?ns=orders", 400, codeBadParameter},
		{"GET", "/healthz?verbose=1", 400, codeBadParameter},
		{"GET", "/readyz?x", 400, codeBadParameter},
		{"GET", "/metrics?name[]=x", 400, codeBadParameter},
		{"GET", "/?page=abc", 400, codeBadParameter},
		{"GET", "/?page=0", 400, codeBadParameter},
		{"GET", "/?page=2", 200, ""},
		{"GET", "/?fragment=1&fragment=1", 400, codeBadParameter},
		{"POST", "/v1/ids/orders?count=0", 400, codeBadCount},
		{"POST", "/v1/ids/orders?count=10001", 400, codeBadCount},
		{"POST", "/v1/ids/orders?count=1e3", 400, codeBadCount},
		{"POST", "/v1/ids/orders?count=%205", 400, codeBadCount},
		{"POST", "/v1/ids/a%7Bb%7D", 400, codeBadNamespace},
		{"POST", "/v1/ids/" + strings.Repeat("n", 65), 400, codeBadNamespace},
		{"POST", "/v1/ids/a%2Fb", 400, codeBadNamespace},
		{"GET", "/v1/ids/orders", 405, codeMethodNotAllowed},
		{"POST", "/v1/leases/orders?count=1000", 200, ""},
		{"POST", "/v1/leases/orders?count=1000001", 400, codeBadCount},
		{"POST", "/v1/leases/orders", 400, codeBadCount},
		{"POST", "/v1/leases/a%7Bb%7D?count=1", 400, codeBadNamespace},
		{"GET", "/v1/leases/orders", 405, codeMethodNotAllowed},
		{"GET", "/v1/shards", 200, ""},
		{"GET", "/v1/shards?namespace=orders", 200, ""},
		{"GET", "/v1/shards?namespace=never-opened", 404, codeNotFound},
		{"GET", "/v1/shards?namespace=a%3Ab", 400, codeBadNamespace},
		{"DELETE", "/v1/shards", 405, codeMethodNotAllowed},
		{"GET", "/healthz", 200, ""},
		{"POST", "/healthz", 405, codeMethodNotAllowed},
		{"GET", "/readyz", 200, ""},
		{"GET", "/metrics", 200, ""},
		{"GET", "/", 200, ""},
		{"GET", "/?fragment=1&namespace=orders", 200, ""},
		{"GET", "/?namespace=%3Cscript%3E", 400, codeBadNamespace},
		{"GET", "/v2/ids/orders", 404, codeNotFound},
		{"DELETE", "/", 405, codeMethodNotAllowed},
		{"POST", "/", 405, codeMethodNotAllowed},
		{"POST", "/v1/ids", 404, codeNotFound},
		{"POST", "/v1/leases", 404, codeNotFound},
		{"GET", "/v1", 404, codeNotFound},
		{"GET", "/v1/namespaces/.", 404, codeNotFound},
		{"DELETE", "/v1/namespaces/..", 404, codeNotFound},
		{"PUT", "/v1/namespaces/.", 400, codeBadNamespace},
		{"PUT", "/v1/namespaces/..", 400, codeBadNamespace},
		{"POST", "/v1/ids/./orders", 404, codeNotFound},
		{"POST", "/v1/ids/orders/..", 404, codeNotFound},
		{"GET", "//healthz", 404, codeNotFound},
		{"GET", "/./metrics", 404, codeNotFound},
		{"GET", "/v1/nope", 404, codeNotFound},
		// default, orders, Az09_.- and n3 fill MaxNamespaces 4: n4 closes
		// the least recently used.
		{"POST", "/v1/ids/n3", 200, ""},
		{"POST", "/v1/ids/n4", 200, ""},
	} {
		check(openURL, c.method, c.target, "", c.status, c.code)
	}
	// The namespace routes (they open nothing on the server).
	for _, c := range []struct {
		method, target, body string
		status               int
		code                 string
	}{
		{"PUT", "/v1/namespaces/oa-ns", `{"shards":3,"start":100}`, 201, ""},
		{"PUT", "/v1/namespaces/oa-ns", `{"shards":3,"start":100,"strict":false}`, 200, ""},
		{"PUT", "/v1/namespaces/oa-ns", "", 200, ""},
		{"PUT", "/v1/namespaces/oa-ns", `{"shards":null}`, 200, ""},
		{"PUT", "/v1/namespaces/oa-conflict", `{"shards":6}`, 409, codeNamespaceConflict},
		{"PUT", "/v1/namespaces/oa-ns", `{"shards":0}`, 400, codeBadBody},
		{"PUT", "/v1/namespaces/oa-ns", `{"shards":2.5}`, 400, codeBadBody},
		{"PUT", "/v1/namespaces/oa-ns", `{"start":4503599627370496}`, 400, codeBadBody},
		{"PUT", "/v1/namespaces/oa-ns", `{"strict":"yes"}`, 400, codeBadBody},
		{"PUT", "/v1/namespaces/oa-ns", `{"nope":1}`, 400, codeBadBody},
		{"PUT", "/v1/namespaces/oa-ns", `[]`, 400, codeBadBody},
		{"PUT", "/v1/namespaces/oa-ns", `{"shards":3` + strings.Repeat(" ", maxBodyBytes) + `}`, 400, codeBadBody},
		{"PUT", "/v1/namespaces/a%3Ab", `{}`, 400, codeBadNamespace},
		{"PUT", "/v1/namespaces/oa-ns", `{"shards":3,"shards":4}`, 400, codeBadBody},
		{"PUT", "/v1/namespaces/oa-ns?shards=3", `{}`, 400, codeBadParameter},
		{"GET", "/v1/namespaces/oa-ns?usage=0", "", 400, codeBadParameter},
		{"DELETE", "/v1/namespaces/oa-ns?force=1", "", 400, codeBadParameter},
		{"GET", "/v1/namespaces?limit=", "", 400, codeBadLimit},
		{"GET", "/v1/namespaces?limit=01", "", 400, codeBadLimit},
		{"GET", "/v1/namespaces?limit=1&limit=2", "", 400, codeBadParameter},
		{"GET", "/v1/namespaces?page=2", "", 400, codeBadParameter},
		{"PUT", "/v1/namespaces/oa-del", `{"shards":1}`, 201, ""},
		{"GET", "/v1/namespaces/oa-ns", "", 200, ""},
		{"GET", "/v1/namespaces/oa-never", "", 404, codeNamespaceNotFound},
		{"GET", "/v1/namespaces/a%7Bb", "", 400, codeBadNamespace},
		{"GET", "/v1/namespaces", "", 200, ""},
		{"GET", "/v1/namespaces?limit=1", "", 200, ""},
		{"GET", "/v1/namespaces?limit=2&cursor=oa-conflict", "", 200, ""},
		{"GET", "/v1/namespaces?limit=0", "", 400, codeBadLimit},
		{"GET", "/v1/namespaces?limit=1001", "", 400, codeBadLimit},
		{"GET", "/v1/namespaces?cursor=a%3Ab", "", 400, codeBadCursor},
		{"DELETE", "/v1/namespaces/oa-del", "", 204, ""},
		{"DELETE", "/v1/namespaces/oa-del", "", 204, ""},
		{"GET", "/v1/namespaces/oa-del", "", 200, ""},
		{"DELETE", "/v1/namespaces/oa-never", "", 404, codeNamespaceNotFound},
		{"DELETE", "/v1/namespaces/default", "", 409, codeNamespaceConflict},
		{"DELETE", "/v1/namespaces/a%3Ab", "", 400, codeBadNamespace},
		{"POST", "/v1/namespaces", "", 405, codeMethodNotAllowed},
		{"PATCH", "/v1/namespaces/oa-ns", `{}`, 405, codeMethodNotAllowed},
	} {
		exchange(openURL, c.method, c.target, "", c.body, c.status, c.code)
	}
	// Creation bound, explicit creation, a closed server.
	limited := newServer(t, Config{Cluster: cl, Shards: 6, CreateRate: 0.001, CreateBurst: 1})
	explicit := newServer(t, Config{Cluster: cl, Shards: 6, CreateNamespaces: CreateExplicit})
	closed := newServer(t, Config{Cluster: cl, Shards: 6})
	closedURL := start(closed).URL
	if err := closed.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		base, method, target string
		status               int
		code                 string
	}{
		{start(limited).URL, "POST", "/v1/ids/oa-new-1", 200, ""},
		{start(limited).URL, "POST", "/v1/ids/oa-new-2", 429, codeTooManyNamespaces},
		{start(explicit).URL, "POST", "/v1/ids/oa-never-created", 404, codeNamespaceNotFound},
		{start(explicit).URL, "POST", "/v1/ids/orders", 200, ""},
		{start(explicit).URL, "POST", "/v1/leases/oa-never-created?count=5", 404, codeNamespaceNotFound},
		{closedURL, "POST", "/v1/ids/orders", 503, codeUnavailable},
		{closedURL, "POST", "/v1/leases/orders?count=5", 503, codeUnavailable},
	} {
		check(c.base, c.method, c.target, "", c.status, c.code)
	}
	for _, c := range []struct {
		method, target, token string
		status                int
	}{
		{"POST", "/v1/ids/orders", "", 401},
		{"POST", "/v1/ids/orders", "wrong-token-0123456789", 401},
		{"GET", "/v1/shards", "", 401},
		{"GET", "/metrics", "", 401},
		{"GET", "/", "", 401},
		{"PUT", "/v1/namespaces/oa-locked", "", 401},
		{"GET", "/v1/namespaces/oa-locked", "", 401},
		{"DELETE", "/v1/namespaces/oa-locked", "", 401},
		{"GET", "/v1/namespaces", "", 401},
		{"GET", "/v1/namespaces", testToken, 200},
		{"POST", "/v1/ids/orders?count=3", testToken, 200},
		{"POST", "/v1/leases/orders?count=3", "", 401},
		{"POST", "/v1/leases/orders?count=3", testToken, 200},
		{"GET", "/v1/shards", testToken, 200},
		{"GET", "/metrics", testToken, 200},
		// Scopes: a 403 from every route that needs one.
		{"POST", "/v1/ids/orders", tokRead, 403},
		{"POST", "/v1/ids/billing", tokOrders, 403},
		{"POST", "/v1/ids/orders", tokOrders, 200},
		{"POST", "/v1/leases/orders?count=3", tokAdmin, 403},
		{"POST", "/v1/leases/billing?count=3", tokOrders, 403},
		{"GET", "/v1/namespaces", tokIDs, 403},
		{"GET", "/v1/namespaces", tokRead, 200},
		{"PUT", "/v1/namespaces/oa-locked", tokRead, 403},
		{"PUT", "/v1/namespaces/oa-locked", tokAdmin, 201},
		{"GET", "/v1/namespaces/oa-locked", tokIDs, 403},
		{"GET", "/v1/namespaces/oa-locked", tokRead, 200},
		{"DELETE", "/v1/namespaces/oa-locked", tokRead, 403},
		{"DELETE", "/v1/namespaces/oa-locked", tokAdmin, 204},
		{"GET", "/v1/shards", tokOrders, 403},
		{"GET", "/v1/shards", tokRead, 200},
		{"GET", "/metrics", tokIDs, 403},
		{"GET", "/", tokIDs, 403},
		{"GET", "/", tokRead, 200},
	} {
		code := ""
		switch c.status {
		case 401:
			code = codeUnauthorized
		case 403:
			code = codeForbidden
		}
		check(lockedURL, c.method, c.target, c.token, c.status, code)
	}
	open.Drain()
	check(openURL, "GET", "/readyz", "", 503, codeUnavailable)
	if err := open.Close(); err != nil {
		t.Fatal(err)
	}
	check(openURL, "POST", "/v1/ids/orders", "", 503, codeUnavailable)
	for _, c := range []struct{ method, target string }{
		{"PUT", "/v1/namespaces/oa-ns"}, {"GET", "/v1/namespaces/oa-ns"}, {"DELETE", "/v1/namespaces/oa-ns"}, {"GET", "/v1/namespaces"},
	} {
		check(openURL, c.method, c.target, "", 503, codeUnavailable)
	}

	if missing := spec.unseen(t); len(missing) > 0 {
		t.Errorf("documented answers no request got: %v", missing)
	}
}
