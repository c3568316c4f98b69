//go:build integration

package apiclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/lab/apiclient"
	"github.com/shardseq/shardseq/server"
)

// Ports of this test's cluster: 7820-7825 (bus ports +10000); the lab
// module's tests use 7800-7849.
const portClient = 7820

const (
	token  = "generated-client-token"
	shards = 6
	// bigStart puts a namespace's IDs above 2^52, where a float64 or an
	// int32 would lose them: only an int64 decodes them exactly.
	bigStart = int64(1)<<52 - 1000
)

// seen records what the test drove through the client: operations that
// answered 2xx, and error codes.
type seen struct {
	ops   map[string]bool
	codes map[apiclient.ErrorCode]bool
}

// TestGeneratedClient drives every operation of api/openapi.yaml, and every
// documented error code but internal and rate_limited, through the client
// that oapi-codegen generated from it, against real servers on a real
// Redis Cluster, and checks the typed values it decodes.
func TestGeneratedClient(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portClient})
	cl := lc.Dial(cluster.Config{})
	newServer := func(cfg server.Config) (*server.Server, string) {
		cfg.Cluster, cfg.Shards = cl, shards
		cfg.Logger = slog.New(slog.DiscardHandler)
		s, err := server.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		hs := httptest.NewServer(s.Handler())
		t.Cleanup(hs.Close)
		return s, hs.URL
	}
	// main asks for a token everywhere; explicit creates no namespace on
	// first use; bounded creates one, then refuses more for a long while.
	_, mainURL := newServer(server.Config{Tokens: []string{token}, AuthMetrics: true, AuthUI: true})
	_, explicitURL := newServer(server.Config{CreateNamespaces: server.CreateExplicit})
	bounded, boundedURL := newServer(server.Config{CreateRate: 0.001, CreateBurst: 1})

	bearer := func(_ context.Context, req *http.Request) error {
		req.Header.Set("Authorization", "Bearer "+token)
		return nil
	}
	newClient := func(url string, opts ...apiclient.ClientOption) *apiclient.ClientWithResponses {
		c, err := apiclient.NewClientWithResponses(url, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	c := newClient(mainURL, apiclient.WithRequestEditorFn(bearer))
	anon := newClient(mainURL)
	explicit := newClient(explicitURL)
	boundedC := newClient(boundedURL)
	ctx := context.Background()
	s := &seen{ops: map[string]bool{}, codes: map[apiclient.ErrorCode]bool{}}

	t.Run("Health", func(t *testing.T) { testHealth(ctx, t, s, c) })
	t.Run("IDs", func(t *testing.T) { testIDs(ctx, t, s, c) })
	t.Run("Leases", func(t *testing.T) { testLeases(ctx, t, s, c) })
	t.Run("Namespaces", func(t *testing.T) { testNamespaces(ctx, t, s, c, explicit) })
	t.Run("Shards", func(t *testing.T) { testShards(ctx, t, s, c) })
	t.Run("Operations", func(t *testing.T) { testOperations(ctx, t, s, c, anon) })
	t.Run("Errors", func(t *testing.T) { testErrors(ctx, t, s, c, anon, explicit, boundedC) })
	t.Run("Closed", func(t *testing.T) { testClosed(ctx, t, s, bounded, boundedC) })

	// Every operation of the spec answered 2xx through the client.
	spec, err := os.ReadFile("../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, m := range regexp.MustCompile(`(?m)^\s+operationId: (\w+)$`).FindAllSubmatch(spec, -1) {
		ops = append(ops, string(m[1]))
	}
	if len(ops) < 11 {
		t.Fatalf("found %d operationIds in api/openapi.yaml: %v", len(ops), ops)
	}
	for _, op := range ops {
		if !s.ops[op] {
			t.Errorf("operation %s never answered 2xx through the generated client", op)
		}
	}
	// Every documented error code that a healthy server sends on purpose.
	for _, code := range []apiclient.ErrorCode{
		apiclient.ErrorCodeBadBody, apiclient.ErrorCodeBadCount, apiclient.ErrorCodeBadCursor,
		apiclient.ErrorCodeBadLimit, apiclient.ErrorCodeBadNamespace, apiclient.ErrorCodeBadParameter,
		apiclient.ErrorCodeMethodNotAllowed, apiclient.ErrorCodeNamespaceConflict,
		apiclient.ErrorCodeNamespaceDeleted, apiclient.ErrorCodeNamespaceNotFound, apiclient.ErrorCodeNotFound,
		apiclient.ErrorCodeTooManyNamespaces, apiclient.ErrorCodeUnauthorized, apiclient.ErrorCodeUnavailable,
	} {
		if !s.codes[code] {
			t.Errorf("error code %s never seen through the generated client", code)
		}
	}
}

// response is what every generated *Response has.
type response interface {
	StatusCode() int
	ContentType() string
}

// ok checks a 2xx answer of operation op whose typed value is v (nil when
// the answer has no body), and that v holds every member of the body with
// the same value: a generated type that drops or rounds a member fails.
func (s *seen) ok(t *testing.T, op string, r response, want int, body []byte, v any) {
	t.Helper()
	if r.StatusCode() != want {
		t.Fatalf("%s: %d %s, want %d", op, r.StatusCode(), body, want)
	}
	s.ops[op] = true
	if v == nil || reflect.ValueOf(v).IsNil() {
		if len(body) > 0 && strings.HasPrefix(r.ContentType(), "application/json") {
			t.Fatalf("%s: %d %s: the client decoded no typed value", op, want, body)
		}
		return
	}
	if back, ok := holds(t, body, v); !ok {
		t.Errorf("%s: the typed value does not hold the answer:\n body  %s\n typed %s", op, body, back)
	}
}

// holds reports whether v, marshalled again, is the JSON body: no member
// dropped, no number rounded. It returns what v marshals to.
func holds(t *testing.T, body []byte, v any) ([]byte, bool) {
	t.Helper()
	back, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return back, reflect.DeepEqual(canonical(t, body), canonical(t, back))
}

// TestHoldsCanFail is the negative control of holds: a member the type
// lacks, and an ID a float64 rounds.
func TestHoldsCanFail(t *testing.T) {
	var h apiclient.Health
	body := []byte(`{"status":"ok","extra":1}`)
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	if _, ok := holds(t, body, &h); ok {
		t.Error("holds missed a member the type drops")
	}
	var f struct {
		IDs []float64 `json:"ids"`
	}
	body = []byte(`{"ids":[9007199254740993]}`)
	if err := json.Unmarshal(body, &f); err != nil {
		t.Fatal(err)
	}
	if _, ok := holds(t, body, &f); ok {
		t.Error("holds missed an ID rounded by a float64")
	}
	var ids apiclient.IDs
	body = []byte(`{"namespace":"a","ids":[9007199254740993]}`)
	if err := json.Unmarshal(body, &ids); err != nil {
		t.Fatal(err)
	}
	if _, ok := holds(t, body, &ids); !ok {
		t.Error("holds refused an exact int64")
	}
}

// canonical decodes JSON keeping numbers as written.
func canonical(t *testing.T, b []byte) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%v: %s", err, b)
	}
	return v
}

// fail checks an error answer: its status, its typed Error (the generated
// JSONxxx member, or the body decoded into apiclient.Error for answers the
// spec declares for every path, 404 and 405), and its code.
func (s *seen) fail(t *testing.T, what string, r response, body []byte, typed *apiclient.Error, status int, code apiclient.ErrorCode) {
	t.Helper()
	if r.StatusCode() != status {
		t.Errorf("%s: %d %s, want %d %s", what, r.StatusCode(), body, status, code)
		return
	}
	if typed == nil {
		typed = new(apiclient.Error)
		if err := json.Unmarshal(body, typed); err != nil {
			t.Errorf("%s: %v: %s", what, err, body)
			return
		}
	}
	if !typed.Code.Valid() || typed.Code != code || typed.Error == "" {
		t.Errorf("%s: error %+v, want code %s", what, *typed, code)
		return
	}
	if ct := r.ContentType(); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: Content-Type %q", what, ct)
	}
	s.codes[code] = true
}

// query is a request editor that adds raw to the URL's query: what a
// typed client cannot send by itself (unknown or repeated parameters).
func query(raw string) apiclient.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		if req.URL.RawQuery != "" {
			raw = req.URL.RawQuery + "&" + raw
		}
		req.URL.RawQuery = raw
		return nil
	}
}

// path is a request editor that sends the request to p as it is.
func path(p string) apiclient.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.URL.Path, req.URL.RawPath = p, ""
		return nil
	}
}

// method is a request editor that sends the request with another method.
func method(m string) apiclient.RequestEditorFn {
	return func(_ context.Context, req *http.Request) error {
		req.Method = m
		return nil
	}
}

func ptr[T any](v T) *T { return &v }

func testHealth(ctx context.Context, t *testing.T, s *seen, c *apiclient.ClientWithResponses) {
	h, err := c.HealthzWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "healthz", h, 200, h.Body, h.JSON200)
	if h.JSON200.Status != apiclient.Ok || !h.JSON200.Status.Valid() {
		t.Errorf("healthz: status %q", h.JSON200.Status)
	}
	r, err := c.ReadyzWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "readyz", r, 200, r.Body, r.JSON200)
	if got := r.JSON200; !got.Ready || got.Namespace != server.DefaultNamespace || got.Total != shards || got.Healthy < 1 || got.Healthy > got.Total {
		t.Errorf("readyz: %+v", *got)
	}
}

func testIDs(ctx context.Context, t *testing.T, s *seen, c *apiclient.ClientWithResponses) {
	one, err := c.NextIDsWithResponse(ctx, "gen-ids", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "nextIDs", one, 200, one.Body, one.JSON200)
	if got := one.JSON200; got.Namespace != "gen-ids" || len(got.Ids) != 1 || got.Ids[0] < 1 {
		t.Errorf("one ID: %+v", *got)
	}
	many, err := c.NextIDsWithResponse(ctx, "gen-ids", &apiclient.NextIDsParams{Count: ptr(500)})
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "nextIDs", many, 200, many.Body, many.JSON200)
	all := append(slices.Clone(many.JSON200.Ids), one.JSON200.Ids...)
	slices.Sort(all)
	if len(many.JSON200.Ids) != 500 || len(slices.Compact(all)) != 501 || all[0] < 1 {
		t.Errorf("500 IDs: %d, %d distinct with the first, smallest %d", len(many.JSON200.Ids), len(slices.Compact(all)), all[0])
	}

	// IDs above 2^52 decode exactly as int64.
	put, err := c.PutNamespaceWithResponse(ctx, "gen-big", apiclient.NamespaceSettings{Shards: ptr(shards), Start: ptr(bigStart)})
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "putNamespace", put, 201, put.Body, put.JSON201)
	big, err := c.NextIDsWithResponse(ctx, "gen-big", &apiclient.NextIDsParams{Count: ptr(50)})
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "nextIDs", big, 200, big.Body, big.JSON200)
	// ok compared the typed IDs with the body's digits; 50 distinct ones
	// near 2^52 are also what a float32 or int32 could not hold.
	got := slices.Clone(big.JSON200.Ids)
	slices.Sort(got)
	if len(slices.Compact(got)) != 50 || got[0] < bigStart || got[len(got)-1] > bigStart+1<<20 {
		t.Errorf("gen-big: IDs %v, want 50 distinct from %d on", big.JSON200.Ids, bigStart)
	}
}

func testLeases(ctx context.Context, t *testing.T, s *seen, c *apiclient.ClientWithResponses) {
	r, err := c.LeaseIDsWithResponse(ctx, "gen-ids", &apiclient.LeaseIDsParams{Count: 1000})
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "leaseIDs", r, 200, r.Body, r.JSON200)
	l := r.JSON200
	if l.Namespace != "gen-ids" || l.Count != 1000 || l.Step != shards || l.First < 1 ||
		l.Shard < 0 || l.Shard >= shards || l.First%int64(l.Step) != int64(l.Shard) || l.ValidMs < 0 {
		t.Errorf("lease: %+v", *l)
	}
	if l.Limited && l.ValidMs == 0 {
		t.Logf("lease came too late to use (valid_ms 0): %+v", *l)
	}
}

func testNamespaces(ctx context.Context, t *testing.T, s *seen, c, explicit *apiclient.ClientWithResponses) {
	settings := apiclient.NamespaceSettings{Shards: ptr(4), Start: ptr(int64(1000001))}
	created, err := c.PutNamespaceWithResponse(ctx, "gen-ns", settings)
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "putNamespace", created, 201, created.Body, created.JSON201)
	if rec := created.JSON201; rec.Name != "gen-ns" || rec.State != apiclient.NamespaceRecordStateActive || rec.Deleted ||
		rec.Shards != 4 || rec.Start != 1000001 || rec.Strict || rec.Generation != 1 || rec.CreatedAt == nil || rec.CreatedAt.IsZero() {
		t.Errorf("created: %+v", *rec)
	}
	if h := created.Headers201; h == nil || h.Location != "/v1/namespaces/gen-ns" {
		t.Errorf("created: Location %+v", h)
	}
	same, err := c.PutNamespaceWithResponse(ctx, "gen-ns", apiclient.NamespaceSettings{Shards: ptr(4)})
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "putNamespace", same, 200, same.Body, same.JSON200)
	if same.JSON200.Start != 1000001 {
		t.Errorf("same settings: %+v", *same.JSON200)
	}
	// Explicit mode serves a namespace once it is created.
	ids, err := explicit.NextIDsWithResponse(ctx, "gen-ns", &apiclient.NextIDsParams{Count: ptr(8)})
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "nextIDs", ids, 200, ids.Body, ids.JSON200)
	for _, id := range ids.JSON200.Ids {
		if id < 1000001 {
			t.Errorf("gen-ns: ID %d below its start", id)
		}
	}

	get, err := c.GetNamespaceWithResponse(ctx, "gen-ns")
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "getNamespace", get, 200, get.Body, get.JSON200)
	d := get.JSON200
	u := d.Usage
	if d.Name != "gen-ns" || d.Shards != 4 || d.Start != 1000001 || d.State != apiclient.NamespaceDescriptionStateActive {
		t.Errorf("description: %+v", *d)
	}
	if u.Reserved < 8 || u.SpaceLeft <= 0 || u.HighestId < 1000001 || u.MaxId != 1<<53-1 || u.ShardsChecked != 4 {
		t.Errorf("usage: %+v", u)
	}
	// used is a float64 of reserved / (reserved + space_left): a float32
	// would hold about 7 digits of it.
	if want := float64(u.Reserved) / float64(u.Reserved+u.SpaceLeft); u.Used <= 0 || math.Abs(u.Used-want) > 1e-12*want {
		t.Errorf("usage: used %v, want reserved/(reserved+space_left) = %v", u.Used, want)
	}

	// Pages of two, through next_cursor, list every namespace once, sorted.
	var names []string
	var params apiclient.ListNamespacesParams
	params.Limit = ptr(2)
	for pages := 0; ; pages++ {
		if pages > 50 {
			t.Fatalf("more than 50 pages: %v", names)
		}
		r, err := c.ListNamespacesWithResponse(ctx, &params)
		if err != nil {
			t.Fatal(err)
		}
		s.ok(t, "listNamespaces", r, 200, r.Body, r.JSON200)
		if n := len(r.JSON200.Namespaces); n > 2 || (n < 2 && r.JSON200.NextCursor != "") {
			t.Fatalf("page of %d with next_cursor %q", n, r.JSON200.NextCursor)
		}
		for _, e := range r.JSON200.Namespaces {
			names = append(names, e.Name)
			if !e.State.Valid() {
				t.Errorf("%s: state %q", e.Name, e.State)
			}
			if e.Name == "gen-ns" && (e.State != apiclient.NamespaceStateActive || e.Shards == nil || *e.Shards != 4 ||
				e.Start == nil || *e.Start != 1000001 || e.Generation == nil || *e.Generation != 1) {
				t.Errorf("listed gen-ns: %+v", e)
			}
		}
		if r.JSON200.NextCursor == "" {
			break
		}
		params.Cursor = ptr(r.JSON200.NextCursor)
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("listed %v: not sorted, or twice", names)
	}
	for _, want := range []string{"default", "gen-big", "gen-ids", "gen-ns"} {
		if !slices.Contains(names, want) {
			t.Errorf("listed %v, without %s", names, want)
		}
	}

	del, err := c.DeleteNamespaceWithResponse(ctx, "gen-ns")
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "deleteNamespace", del, 204, del.Body, nil)
	again, err := c.DeleteNamespaceWithResponse(ctx, "gen-ns")
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "deleteNamespace", again, 204, again.Body, nil)
	gone, err := c.GetNamespaceWithResponse(ctx, "gen-ns")
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "getNamespace", gone, 200, gone.Body, gone.JSON200)
	if d := gone.JSON200; d.State != apiclient.NamespaceDescriptionStateDeleted || !d.Deleted || d.Generation != 2 {
		t.Errorf("deleted: %+v", *d)
	}
	// Recreated, it continues above every ID it handed out.
	re, err := c.PutNamespaceWithResponse(ctx, "gen-ns", apiclient.NamespaceSettings{})
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "putNamespace", re, 201, re.Body, re.JSON201)
	if re.JSON201.Generation != 3 || re.JSON201.Shards != 4 {
		t.Errorf("recreated: %+v", *re.JSON201)
	}
}

func testShards(ctx context.Context, t *testing.T, s *seen, c *apiclient.ClientWithResponses) {
	all, err := c.ShardsWithResponse(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "shards", all, 200, all.Body, all.JSON200)
	sh := all.JSON200
	if sh.Total != len(sh.Shards) || sh.Healthy > sh.Total || sh.Namespaces < 3 || !sh.Cluster.Covered || len(sh.Cluster.Masters) != 3 {
		t.Errorf("shards: total %d of %d listed, %d healthy, %d namespaces, covered %v, %d masters",
			sh.Total, len(sh.Shards), sh.Healthy, sh.Namespaces, sh.Cluster.Covered, len(sh.Cluster.Masters))
	}
	slots := 0
	for _, m := range sh.Cluster.Masters {
		if len(m.Replicas) != 1 || m.Failed {
			t.Errorf("master %+v", m)
		}
		for _, r := range m.Slots {
			if len(r) != 2 || r[0] < 0 || r[0] > r[1] || r[1] > 16383 {
				t.Errorf("master %s: slot range %v", m.Addr, r)
				continue
			}
			slots += int(r[1] - r[0] + 1)
		}
	}
	if slots != 16384 {
		t.Errorf("masters serve %d slots, want 16384", slots)
	}
	one, err := c.ShardsWithResponse(ctx, &apiclient.ShardsParams{Namespace: ptr("gen-ids")})
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "shards", one, 200, one.Body, one.JSON200)
	if len(one.JSON200.Shards) != shards {
		t.Errorf("shards of gen-ids: %d, want %d", len(one.JSON200.Shards), shards)
	}
	for _, x := range one.JSON200.Shards {
		if x.Namespace != "gen-ids" || !x.State.Valid() || x.Slot < 0 || x.Slot > 16383 || x.Key == "" || x.Node == "" ||
			x.LatencyMs < 0 || x.UpdatedAt.IsZero() || x.Index < 0 || x.Index >= shards {
			t.Errorf("shard %+v", x)
		}
	}
}

func testOperations(ctx context.Context, t *testing.T, s *seen, c, anon *apiclient.ClientWithResponses) {
	m, err := c.MetricsWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "metrics", m, 200, m.Body, nil)
	if !bytes.Contains(m.Body, []byte("shardseq_ids_issued_total")) {
		t.Errorf("metrics without shardseq_ids_issued_total")
	}
	p, err := c.HealthPageWithResponse(ctx, &apiclient.HealthPageParams{Namespace: ptr("gen-ids"), Page: ptr(int32(1))})
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "healthPage", p, 200, p.Body, nil)
	if !strings.HasPrefix(p.ContentType(), "text/html") || !bytes.Contains(p.Body, []byte("gen-ids")) {
		t.Errorf("health page: %s, %d bytes", p.ContentType(), len(p.Body))
	}
	// Without a token both need one here (AuthMetrics, AuthUI).
	m, err = anon.MetricsWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.fail(t, "metrics without a token", m, m.Body, m.JSON401, 401, apiclient.ErrorCodeUnauthorized)
	if m.Headers401 == nil || !strings.HasPrefix(m.Headers401.WWWAuthenticate, "Bearer ") {
		t.Errorf("401 without WWW-Authenticate: %+v", m.Headers401)
	}
	p, err = anon.HealthPageWithResponse(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.fail(t, "page without a token", p, p.Body, p.JSON401, 401, apiclient.ErrorCodeUnauthorized)
	p, err = c.HealthPageWithResponse(ctx, &apiclient.HealthPageParams{Page: ptr(int32(0))})
	if err != nil {
		t.Fatal(err)
	}
	s.fail(t, "page=0", p, p.Body, p.JSON400, 400, apiclient.ErrorCodeBadParameter)
}

func testErrors(ctx context.Context, t *testing.T, s *seen, c, anon, explicit, bounded *apiclient.ClientWithResponses) {
	check := func(what string, r response, body []byte, typed *apiclient.Error, status int, code apiclient.ErrorCode) {
		t.Helper()
		s.fail(t, what, r, body, typed, status, code)
	}
	for _, n := range []int{0, -1, server.MaxCount + 1} {
		r, err := c.NextIDsWithResponse(ctx, "gen-ids", &apiclient.NextIDsParams{Count: ptr(n)})
		if err != nil {
			t.Fatal(err)
		}
		check("count", r, r.Body, r.JSON400, 400, apiclient.ErrorCodeBadCount)
	}
	l, err := c.LeaseIDsWithResponse(ctx, "gen-ids", &apiclient.LeaseIDsParams{Count: 1000001})
	if err != nil {
		t.Fatal(err)
	}
	check("lease count", l, l.Body, l.JSON400, 400, apiclient.ErrorCodeBadCount)

	r, err := c.NextIDsWithResponse(ctx, "gen-ids", nil, query("cnt=3"))
	if err != nil {
		t.Fatal(err)
	}
	check("?cnt=3", r, r.Body, r.JSON400, 400, apiclient.ErrorCodeBadParameter)
	r, err = c.NextIDsWithResponse(ctx, "gen-ids", &apiclient.NextIDsParams{Count: ptr(1)}, query("count=2"))
	if err != nil {
		t.Fatal(err)
	}
	check("count twice", r, r.Body, r.JSON400, 400, apiclient.ErrorCodeBadParameter)
	r, err = c.NextIDsWithResponse(ctx, "no spaces!", nil)
	if err != nil {
		t.Fatal(err)
	}
	check("bad namespace", r, r.Body, r.JSON400, 400, apiclient.ErrorCodeBadNamespace)
	r, err = c.NextIDsWithResponse(ctx, strings.Repeat("x", 65), nil)
	if err != nil {
		t.Fatal(err)
	}
	check("namespace of 65", r, r.Body, r.JSON400, 400, apiclient.ErrorCodeBadNamespace)
	r, err = anon.NextIDsWithResponse(ctx, "gen-ids", nil)
	if err != nil {
		t.Fatal(err)
	}
	check("no token", r, r.Body, r.JSON401, 401, apiclient.ErrorCodeUnauthorized)
	if h := r.Headers401; h == nil || !strings.HasPrefix(h.WWWAuthenticate, "Bearer ") {
		t.Errorf("401 without WWW-Authenticate: %+v", h)
	}

	// PUT: bodies the spec refuses, names that cannot be created, conflicts.
	for _, body := range []string{`{"shards":4,"shards":5}`, `{"nope":1}`, `{"shards":0}`, `{"start":1.5}`, `[]`} {
		p, err := c.PutNamespaceWithBodyWithResponse(ctx, "gen-body", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		check("PUT "+body, p, p.Body, p.JSON400, 400, apiclient.ErrorCodeBadBody)
	}
	for _, name := range []string{".", ".."} {
		// The generated client resolves its path against the server URL,
		// which removes dot segments ("/v1/namespaces/.." becomes "/v1/"),
		// as the spec warns: no URL path names them. The edited request
		// puts the segment back, as curl --path-as-is would.
		p, err := c.PutNamespaceWithResponse(ctx, name, apiclient.NamespaceSettings{}, path("/v1/namespaces/"+name))
		if err != nil {
			t.Fatal(err)
		}
		check("PUT "+name, p, p.Body, p.JSON400, 400, apiclient.ErrorCodeBadNamespace)
	}
	p, err := c.PutNamespaceWithResponse(ctx, "gen-big", apiclient.NamespaceSettings{Shards: ptr(shards + 1)})
	if err != nil {
		t.Fatal(err)
	}
	check("PUT other shards", p, p.Body, p.JSON409, 409, apiclient.ErrorCodeNamespaceConflict)
	d, err := c.DeleteNamespaceWithResponse(ctx, server.DefaultNamespace)
	if err != nil {
		t.Fatal(err)
	}
	check("DELETE default", d, d.Body, d.JSON409, 409, apiclient.ErrorCodeNamespaceConflict)
	d, err = c.DeleteNamespaceWithResponse(ctx, "gen-never")
	if err != nil {
		t.Fatal(err)
	}
	check("DELETE never created", d, d.Body, d.JSON404, 404, apiclient.ErrorCodeNamespaceNotFound)
	g, err := c.GetNamespaceWithResponse(ctx, "gen-never")
	if err != nil {
		t.Fatal(err)
	}
	check("GET never created", g, g.Body, g.JSON404, 404, apiclient.ErrorCodeNamespaceNotFound)

	// List: limit and cursor.
	for _, n := range []int{0, 1001} {
		ln, err := c.ListNamespacesWithResponse(ctx, &apiclient.ListNamespacesParams{Limit: ptr(n)})
		if err != nil {
			t.Fatal(err)
		}
		check("limit", ln, ln.Body, ln.JSON400, 400, apiclient.ErrorCodeBadLimit)
	}
	ln, err := c.ListNamespacesWithResponse(ctx, &apiclient.ListNamespacesParams{Cursor: ptr("no spaces!")})
	if err != nil {
		t.Fatal(err)
	}
	check("cursor", ln, ln.Body, ln.JSON400, 400, apiclient.ErrorCodeBadCursor)

	// Shards of a namespace this server has not opened, or a bad name.
	sh, err := c.ShardsWithResponse(ctx, &apiclient.ShardsParams{Namespace: ptr("gen-never")})
	if err != nil {
		t.Fatal(err)
	}
	check("shards of gen-never", sh, sh.Body, sh.JSON404, 404, apiclient.ErrorCodeNotFound)
	sh, err = c.ShardsWithResponse(ctx, &apiclient.ShardsParams{Namespace: ptr("no spaces!")})
	if err != nil {
		t.Fatal(err)
	}
	check("shards of a bad name", sh, sh.Body, sh.JSON400, 400, apiclient.ErrorCodeBadNamespace)

	// Answers the spec gives every path: 405 with Allow, 404 for a path it
	// does not list. The typed client sends them with an edited request.
	h, err := c.HealthzWithResponse(ctx, method(http.MethodPost))
	if err != nil {
		t.Fatal(err)
	}
	check("POST /healthz", h, h.Body, nil, 405, apiclient.ErrorCodeMethodNotAllowed)
	if allow := h.HTTPResponse.Header.Get("Allow"); !strings.Contains(allow, http.MethodGet) {
		t.Errorf("405 with Allow %q", allow)
	}
	r, err = c.NextIDsWithResponse(ctx, "gen-ids", nil, method(http.MethodGet))
	if err != nil {
		t.Fatal(err)
	}
	check("GET /v1/ids", r, r.Body, nil, 405, apiclient.ErrorCodeMethodNotAllowed)
	h, err = c.HealthzWithResponse(ctx, path("/v2/healthz"))
	if err != nil {
		t.Fatal(err)
	}
	check("GET /v2/healthz", h, h.Body, nil, 404, apiclient.ErrorCodeNotFound)

	// Explicit creation: no namespace on first use; a deleted one stays
	// deleted.
	r, err = explicit.NextIDsWithResponse(ctx, "gen-never", nil)
	if err != nil {
		t.Fatal(err)
	}
	check("explicit, never created", r, r.Body, r.JSON404, 404, apiclient.ErrorCodeNamespaceNotFound)
	del, err := c.DeleteNamespaceWithResponse(ctx, "gen-big")
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "deleteNamespace", del, 204, del.Body, nil)
	l, err = explicit.LeaseIDsWithResponse(ctx, "gen-big", &apiclient.LeaseIDsParams{Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	check("explicit, deleted", l, l.Body, l.JSON404, 404, apiclient.ErrorCodeNamespaceDeleted)

	// The creation bound: one new namespace, then 429 with Retry-After.
	r, err = bounded.NextIDsWithResponse(ctx, "gen-bound-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.ok(t, "nextIDs", r, 200, r.Body, r.JSON200)
	r, err = bounded.NextIDsWithResponse(ctx, "gen-bound-2", nil)
	if err != nil {
		t.Fatal(err)
	}
	check("past the creation bound", r, r.Body, r.JSON429, 429, apiclient.ErrorCodeTooManyNamespaces)
	if h := r.Headers429; h == nil || h.RetryAfter < 1 {
		t.Errorf("429 Retry-After %+v", h)
	}
}

// testClosed closes a server: /readyz answers a typed NotReady, IDs an
// Unavailable, both with Retry-After.
func testClosed(ctx context.Context, t *testing.T, s *seen, srv *server.Server, c *apiclient.ClientWithResponses) {
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := c.ReadyzWithResponse(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode() != 503 || r.JSON503 == nil {
		t.Fatalf("readyz of a closed server: %d %s", r.StatusCode(), r.Body)
	}
	if nr := r.JSON503; nr.Ready || nr.Code != "unavailable" || nr.Reason == "" || nr.Error == "" || nr.Namespace != server.DefaultNamespace {
		t.Errorf("not ready: %+v", *nr)
	}
	if r.Headers503 == nil || r.Headers503.RetryAfter < 1 {
		t.Errorf("readyz 503 Retry-After %+v", r.Headers503)
	}
	s.codes[apiclient.ErrorCode(r.JSON503.Code)] = true
	n, err := c.NextIDsWithResponse(ctx, "gen-bound-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.fail(t, "IDs of a closed server", n, n.Body, n.JSON503, 503, apiclient.ErrorCodeUnavailable)
	if n.Headers503 == nil || n.Headers503.RetryAfter < 1 {
		t.Errorf("503 Retry-After %+v", n.Headers503)
	}
}
