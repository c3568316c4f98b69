package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"

	shardseqv1 "github.com/shardseq/shardseq/api/gen/shardseq/v1"
	"github.com/shardseq/shardseq/api/gen/shardseq/v1/shardseqv1connect"
	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/internal/lab/tlstest"
)

// TestRPCCodes holds the one mapping table to the documented codes: every
// documented code has a gRPC code and nothing else does, and the errors
// behind each answer keep their code, message and Retry-After.
func TestRPCCodes(t *testing.T) {
	want := map[string]connect.Code{
		codeBadNamespace:      connect.CodeInvalidArgument,
		codeBadCount:          connect.CodeInvalidArgument,
		codeBadBody:           connect.CodeInvalidArgument,
		codeBadLimit:          connect.CodeInvalidArgument,
		codeBadCursor:         connect.CodeInvalidArgument,
		codeBadParameter:      connect.CodeInvalidArgument,
		codeUnauthorized:      connect.CodeUnauthenticated,
		codeForbidden:         connect.CodePermissionDenied,
		codeNotFound:          connect.CodeNotFound,
		codeNamespaceNotFound: connect.CodeNotFound,
		codeNamespaceDeleted:  connect.CodeNotFound,
		codeMethodNotAllowed:  connect.CodeUnimplemented,
		codeNamespaceConflict: connect.CodeFailedPrecondition,
		codeTooManyNamespaces: connect.CodeResourceExhausted,
		codeRateLimited:       connect.CodeResourceExhausted,
		codeUnavailable:       connect.CodeUnavailable,
		codeInternal:          connect.CodeInternal,
	}
	if !maps.Equal(rpcCodes, want) {
		t.Errorf("rpcCodes %v, want %v", rpcCodes, want)
	}
	if got := slices.Sorted(maps.Keys(rpcCodes)); !slices.Equal(got, slices.Sorted(slices.Values(documentedCodes))) {
		t.Errorf("rpcCodes maps %v, want exactly the documented codes %v", got, documentedCodes)
	}

	for _, c := range []struct {
		err    error
		code   connect.Code
		detail string
		retry  uint32
	}{
		{errBadNamespace, connect.CodeInvalidArgument, codeBadNamespace, 0},
		{errBadLeaseCount, connect.CodeInvalidArgument, codeBadCount, 0},
		{public(errBadBody, "shards 0: want 1 to 1024"), connect.CodeInvalidArgument, codeBadBody, 0},
		{errUnauthorized, connect.CodeUnauthenticated, codeUnauthorized, 0},
		{client.ErrNamespaceNotFound, connect.CodeNotFound, codeNamespaceNotFound, 0},
		{client.ErrNamespaceDeleted, connect.CodeNotFound, codeNamespaceDeleted, 0},
		{client.ErrShardCountMismatch, connect.CodeFailedPrecondition, codeNamespaceConflict, 0},
		{&RetryError{Err: ErrTooManyNamespaces, RetryAfter: 2500 * time.Millisecond, Msg: "later"}, connect.CodeResourceExhausted, codeTooManyNamespaces, 3},
		{client.ErrNoHealthyShard, connect.CodeUnavailable, codeUnavailable, 1},
		{fmt.Errorf("reserving: %w", context.DeadlineExceeded), connect.CodeUnavailable, codeUnavailable, 1},
		{ErrClosed, connect.CodeUnavailable, codeUnavailable, 1},
		{errors.New("dial 127.0.0.1:7000: something odd"), connect.CodeInternal, codeInternal, 0},
	} {
		ce := rpcError(c.err)
		e := errorOf(c.err)
		if ce.Code() != c.code || ce.Message() != e.msg {
			t.Errorf("rpcError(%v) = %v %q, want %v %q", c.err, ce.Code(), ce.Message(), c.code, e.msg)
		}
		if d := errorDetail(t, ce); d.GetCode() != c.detail || d.GetRetryAfterSeconds() != c.retry {
			t.Errorf("rpcError(%v): detail %v, want code %s, retry %d", c.err, d, c.detail, c.retry)
		}
		if strings.Contains(ce.Message(), "127.0.0.") {
			t.Errorf("rpcError(%v): message %q names a node", c.err, ce.Message())
		}
	}
}

// errorDetail is the ErrorDetail of err, or nil.
func errorDetail(tb testing.TB, err error) *shardseqv1.ErrorDetail {
	tb.Helper()
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	for _, d := range ce.Details() {
		v, derr := d.Value()
		if derr != nil {
			tb.Errorf("error detail: %v", derr)
			continue
		}
		if ed, ok := v.(*shardseqv1.ErrorDetail); ok {
			return ed
		}
	}
	return nil
}

// TestRPCRequestValidation: the checks of every request message, and the
// bounds of each number on both sides.
func TestRPCRequestValidation(t *testing.T) {
	long := strings.Repeat("a", 64)
	for _, c := range []struct {
		ns    string
		count uint32
		want  int
		err   error
	}{
		{"orders", 0, 1, nil}, // unset: one, as POST /v1/ids without ?count=
		{"orders", 1, 1, nil},
		{"orders", MaxCount, MaxCount, nil},
		{"orders", MaxCount + 1, 0, errBadCount},
		{"orders", 1<<32 - 1, 0, errBadCount},
		{long, 1, 1, nil},
		{long + "a", 1, 0, errBadNamespace},
		{"", 1, 0, errBadNamespace},
		{"a:b", 1, 0, errBadNamespace},
		{"a/b", 1, 0, errBadNamespace},
		{"a b", 1, 0, errBadNamespace},
		{"{x}", 1, 0, errBadNamespace},
		{"é", 1, 0, errBadNamespace},
		{"bad name", MaxCount + 1, 0, errBadNamespace}, // the name first
	} {
		_, n, err := rpcIDRequest(&shardseqv1.TakeIdsRequest{Namespace: c.ns, Count: c.count})
		if n != c.want || !errors.Is(err, c.err) || (c.err == nil) != (err == nil) {
			t.Errorf("TakeIds(%q, %d) = %d, %v; want %d, %v", c.ns, c.count, n, err, c.want, c.err)
		}
	}
	for _, c := range []struct {
		count uint32
		ok    bool
	}{{0, false}, {1, true}, {MaxLease, true}, {MaxLease + 1, false}, {1<<32 - 1, false}} {
		_, n, err := rpcLeaseRequest(&shardseqv1.LeaseRequest{Namespace: "orders", Count: c.count})
		if (err == nil) != c.ok || (c.ok && n != int(c.count)) || (!c.ok && errorOf(err).code != codeBadCount) {
			t.Errorf("Lease(count %d) = %d, %v", c.count, n, err)
		}
	}
	if _, _, err := rpcLeaseRequest(&shardseqv1.LeaseRequest{Namespace: "a:b", Count: 5}); !errors.Is(err, errBadNamespace) {
		t.Errorf("Lease(a:b) = %v", err)
	}

	u32 := func(v uint32) *uint32 { return &v }
	i64 := func(v int64) *int64 { return &v }
	yes := true
	const maxStart = 1<<52 - 1
	for _, c := range []struct {
		req  *shardseqv1.PutNamespaceRequest
		code string
	}{
		{&shardseqv1.PutNamespaceRequest{Name: "orders"}, ""},
		{&shardseqv1.PutNamespaceRequest{Name: "orders", Shards: u32(1), Start: i64(1), Strict: &yes}, ""},
		{&shardseqv1.PutNamespaceRequest{Name: "orders", Shards: u32(client.MaxShards), Start: i64(maxStart)}, ""},
		{&shardseqv1.PutNamespaceRequest{Name: "orders", Shards: u32(0)}, codeBadBody},
		{&shardseqv1.PutNamespaceRequest{Name: "orders", Shards: u32(client.MaxShards + 1)}, codeBadBody},
		{&shardseqv1.PutNamespaceRequest{Name: "orders", Start: i64(0)}, codeBadBody},
		{&shardseqv1.PutNamespaceRequest{Name: "orders", Start: i64(-1)}, codeBadBody},
		{&shardseqv1.PutNamespaceRequest{Name: "orders", Start: i64(maxStart + 1)}, codeBadBody},
		{&shardseqv1.PutNamespaceRequest{Name: "."}, codeBadNamespace},
		{&shardseqv1.PutNamespaceRequest{Name: ".."}, codeBadNamespace},
		{&shardseqv1.PutNamespaceRequest{Name: "a:b"}, codeBadNamespace},
		{&shardseqv1.PutNamespaceRequest{Name: ""}, codeBadNamespace},
	} {
		name, spec, err := rpcPutRequest(c.req, maxStart)
		if got := codeOf(err); got != c.code {
			t.Errorf("PutNamespace(%v): %v (code %q), want code %q", c.req, err, got, c.code)
			continue
		}
		if err != nil {
			continue
		}
		if name != c.req.GetName() || (spec.Shards == nil) != (c.req.Shards == nil) || (spec.Start == nil) != (c.req.Start == nil) ||
			(spec.Strict == nil) != (c.req.Strict == nil) {
			t.Errorf("PutNamespace(%v) = %q %+v: a setting was lost or invented", c.req, name, spec)
		}
	}
	for _, c := range []struct {
		limit     uint32
		cursor    string
		wantLimit int
		code      string
	}{
		{0, "", DefaultListLimit, ""},
		{1, "b", 1, ""},
		{client.MaxListLimit, "", client.MaxListLimit, ""},
		{client.MaxListLimit + 1, "", 0, codeBadLimit},
		{5, "a:b", 0, codeBadCursor},
	} {
		limit, cursor, err := rpcListRequest(&shardseqv1.ListNamespacesRequest{Limit: c.limit, Cursor: c.cursor})
		if codeOf(err) != c.code || limit != c.wantLimit || (err == nil && cursor != c.cursor) {
			t.Errorf("ListNamespaces(%d, %q) = %d %q %v", c.limit, c.cursor, limit, cursor, err)
		}
	}
}

// codeOf is the documented code of err, "" for nil.
func codeOf(err error) string {
	if err == nil {
		return ""
	}
	return errorOf(err).code
}

// FuzzRPCIDRequest: TakeIds accepts exactly what POST /v1/ids accepts for
// the same namespace and count, and answers the same code otherwise.
func FuzzRPCIDRequest(f *testing.F) {
	for _, s := range []string{"orders", "", "a:b", ".", "..", strings.Repeat("z", 65), "Az09_.-", "é", "a\x00"} {
		f.Add(s, uint32(1))
	}
	f.Add("orders", uint32(0))
	f.Add("orders", uint32(MaxCount+1))
	f.Add("orders", uint32(1<<31))
	f.Fuzz(func(t *testing.T, ns string, count uint32) {
		gotNS, n, err := rpcIDRequest(&shardseqv1.TakeIdsRequest{Namespace: ns, Count: count})
		query := ""
		if count > 0 {
			query = fmt.Sprintf("count=%d", count)
		}
		wantNS, wantN, werr := parseIDRequest(ns, query)
		if gotNS != wantNS || n != wantN || codeOf(err) != codeOf(werr) {
			t.Fatalf("TakeIds(%q, %d) = %q %d %v; POST /v1/ids/%s?%s: %q %d %v", ns, count, gotNS, n, err, ns, query, wantNS, wantN, werr)
		}
		if err == nil && (!client.ValidNamespace(ns) || n < 1 || n > MaxCount) {
			t.Fatalf("TakeIds(%q, %d) accepted", ns, count)
		}
	})
}

// TestGeneratorVersions: the plugins buf.gen.yaml runs are the versions of
// the runtime modules in go.mod, so the committed code is what they make.
func TestGeneratorVersions(t *testing.T) {
	gen, err := os.ReadFile("../api/buf.gen.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ module, plugin string }{
		{"google.golang.org/protobuf", "google.golang.org/protobuf/cmd/protoc-gen-go"},
		{"connectrpc.com/connect", "connectrpc.com/connect/cmd/protoc-gen-connect-go"},
	} {
		m := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(c.module) + ` (v\S+)`).FindSubmatch(mod)
		if m == nil {
			t.Fatalf("go.mod does not require %s", c.module)
		}
		if want := c.plugin + "@" + string(m[1]); !strings.Contains(string(gen), `"`+want+`"`) {
			t.Errorf("api/buf.gen.yaml does not run %s (go.mod has %s %s)", want, c.module, m[1])
		}
	}
}

// rpcServer serves h as `shardseq serve` does (NewHTTPServer, TLS through
// tls.NewListener when tc is set) on a loopback port, and returns its URL.
func rpcServer(tb testing.TB, h http.Handler, tc *tls.Config) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hs := NewHTTPServer(ln.Addr().String(), h, slog.New(slog.DiscardHandler))
	scheme := "http"
	if tc != nil {
		hs.TLSConfig = tc
		ln = tls.NewListener(ln, tc)
		scheme = "https"
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = hs.Serve(ln)
	}()
	tb.Cleanup(func() {
		_ = hs.Close()
		<-done
	})
	return scheme + "://" + ln.Addr().String()
}

// The clients of the tests: HTTP/2 without TLS (gRPC's prior knowledge),
// and HTTP/1.1.
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 10 * time.Second}
}

func h1Client() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
}

// rpcClients are one client of ShardseqService per protocol.
type rpcClient struct {
	name string
	c    shardseqv1connect.ShardseqServiceClient
}

func rpcClients(url string, opts ...connect.ClientOption) []rpcClient {
	return []rpcClient{
		{"grpc", shardseqv1connect.NewShardseqServiceClient(h2cClient(), url, append(opts, connect.WithGRPC())...)},
		{"grpc-web", shardseqv1connect.NewShardseqServiceClient(h1Client(), url, append(opts, connect.WithGRPCWeb())...)},
		{"connect", shardseqv1connect.NewShardseqServiceClient(h1Client(), url, opts...)},
	}
}

// bearer adds an Authorization header to every call.
func bearer(token string) connect.ClientOption {
	return connect.WithInterceptors(connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			req.Header().Set("Authorization", "Bearer "+token)
			return next(ctx, req)
		}
	}))
}

// wantRPCError fails the test unless err is a status of code with an
// ErrorDetail of detail and a message without node addresses.
func wantRPCError(tb testing.TB, what string, err error, code connect.Code, detail string) {
	tb.Helper()
	if connect.CodeOf(err) != code {
		tb.Errorf("%s: %v, want %v", what, err, code)
		return
	}
	if d := errorDetail(tb, err); d.GetCode() != detail {
		tb.Errorf("%s: %v: detail %v, want code %q", what, err, d, detail)
	}
	var ce *connect.Error
	if errors.As(err, &ce) && (ce.Message() == "" || strings.Contains(ce.Message(), "127.0.0.")) {
		tb.Errorf("%s: message %q: want one without node addresses", what, ce.Message())
	}
}

// TestRPC runs the RPCs on a real server over a real cluster (3 masters, 1
// replica each), on real sockets in every protocol.
func TestRPC(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portRPC})
	cl := lc.Dial(cluster.Config{})
	t.Run("IDsAcrossProtocols", func(t *testing.T) { testRPCIDs(t, cl) })
	t.Run("Lease", func(t *testing.T) { testRPCLease(t, cl) })
	t.Run("Namespaces", func(t *testing.T) { testRPCNamespaces(t, cl) })
	t.Run("Health", func(t *testing.T) { testRPCHealth(t, cl) })
	t.Run("Auth", func(t *testing.T) { testRPCAuth(t, cl) })
	t.Run("TLS", func(t *testing.T) { testRPCTLS(t, cl) })
	t.Run("Closed", func(t *testing.T) { testRPCClosed(t, cl) })
}

// testRPCIDs: IDs of one namespace taken at once over gRPC, gRPC-Web,
// Connect and HTTP from two servers never repeat.
func testRPCIDs(t *testing.T, cl *cluster.Cluster) {
	var (
		mu   sync.Mutex
		seen = map[int64]string{}
		wg   sync.WaitGroup
	)
	record := func(what string, got []int64) {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range got {
			if prev, dup := seen[id]; dup {
				t.Errorf("ID %d handed out twice: by %s and by %s", id, prev, what)
			}
			if id <= 0 {
				t.Errorf("%s: ID %d", what, id)
			}
			seen[id] = what
		}
	}
	const calls = 60
	total := 0
	for i := range 2 {
		s := newServer(t, Config{Cluster: cl, Shards: 6})
		url := rpcServer(t, s.Handler(), nil)
		for _, rc := range rpcClients(url) {
			total += calls / 2 * (1 + 7) // counts 1 and 7, alternately
			wg.Go(func() {
				for k := range calls {
					count := uint32(1 + 6*(k%2))
					res, err := rc.c.TakeIds(context.Background(), connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: "rpc-ids", Count: count}))
					if err != nil {
						t.Errorf("%s TakeIds: %v", rc.name, err)
						return
					}
					if got := res.Msg.GetIds(); len(got) != int(count) || res.Msg.GetNamespace() != "rpc-ids" {
						t.Errorf("%s TakeIds(%d): %v", rc.name, count, res.Msg)
					}
					record(fmt.Sprintf("%s of server %d", rc.name, i), res.Msg.GetIds())
				}
			})
		}
		hc := h1Client()
		total += calls * 4
		wg.Go(func() {
			for range calls {
				resp, err := hc.Post(url+"/v1/ids/rpc-ids?count=4", "", nil)
				if err != nil {
					t.Errorf("HTTP: %v", err)
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r := result{code: resp.StatusCode, raw: string(b)}
				if r.code != 200 {
					t.Errorf("HTTP: %d %s", r.code, b)
					return
				}
				record(fmt.Sprintf("HTTP of server %d", i), ids(t, r))
			}
		})
	}
	wg.Wait()
	if len(seen) != total {
		t.Errorf("%d distinct IDs, want %d", len(seen), total)
	}
}

func testRPCLease(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: 6})
	c := rpcClients(rpcServer(t, s.Handler(), nil))[0].c
	ctx := context.Background()
	seen := map[int64]bool{}
	for k := range 20 {
		count := uint32(1 + 53*k)
		res, err := c.Lease(ctx, connect.NewRequest(&shardseqv1.LeaseRequest{Namespace: "rpc-lease", Count: count}))
		if err != nil {
			t.Fatalf("Lease(%d): %v", count, err)
		}
		l := res.Msg
		if l.GetNamespace() != "rpc-lease" || l.GetStep() != 6 || l.GetCount() != int64(count) || l.GetFirst() < 1 ||
			l.GetFirst()%6 != int64(l.GetShard()) || !l.GetLimited() || l.GetValidMs() < 0 || l.GetValidMs() > 400 {
			t.Errorf("lease %v: want step 6, count %d, first of shard, limited, valid_ms from 0 to 400", l, count)
		}
		for j := range l.GetCount() {
			id := l.GetFirst() + j*l.GetStep()
			if seen[id] {
				t.Fatalf("ID %d in two leases", id)
			}
			seen[id] = true
		}
	}
	res, err := c.TakeIds(ctx, connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: "rpc-lease", Count: 100}))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range res.Msg.GetIds() {
		if seen[id] {
			t.Errorf("ID %d both leased and taken", id)
		}
	}
	for _, count := range []uint32{0, MaxLease + 1} {
		_, err := c.Lease(ctx, connect.NewRequest(&shardseqv1.LeaseRequest{Namespace: "rpc-lease", Count: count}))
		wantRPCError(t, fmt.Sprintf("Lease(count %d)", count), err, connect.CodeInvalidArgument, codeBadCount)
	}
	_, err = c.Lease(ctx, connect.NewRequest(&shardseqv1.LeaseRequest{Namespace: "a:b", Count: 3}))
	wantRPCError(t, "Lease(a:b)", err, connect.CodeInvalidArgument, codeBadNamespace)

	unordered := newServer(t, Config{Cluster: cl, Shards: 6, Client: client.Config{OrderWindow: -1}})
	uc := rpcClients(rpcServer(t, unordered.Handler(), nil))[0].c
	if res, err := uc.Lease(ctx, connect.NewRequest(&shardseqv1.LeaseRequest{Namespace: "rpc-lease", Count: 10})); err != nil ||
		res.Msg.GetLimited() || res.Msg.GetValidMs() != 0 {
		t.Errorf("unordered lease: %v %v, want limited false, valid_ms 0", res, err)
	}
	explicit := newServer(t, Config{Cluster: cl, Shards: 6, CreateNamespaces: CreateExplicit})
	ec := rpcClients(rpcServer(t, explicit.Handler(), nil))[0].c
	_, err = ec.Lease(ctx, connect.NewRequest(&shardseqv1.LeaseRequest{Namespace: "rpc-never-created", Count: 3}))
	wantRPCError(t, "lease of an unknown namespace, explicit creation", err, connect.CodeNotFound, codeNamespaceNotFound)
	if v := value(t, s.Metrics(), "shardseq_ids_issued_total", map[string]string{"namespace": "rpc-lease"}); v < float64(len(seen)+100) {
		t.Errorf("shardseq_ids_issued_total %v, want at least %d", v, len(seen)+100)
	}
	for _, c := range []struct {
		procedure, code string
		want            float64
	}{
		{shardseqv1connect.ShardseqServiceLeaseProcedure, "ok", 20},
		{shardseqv1connect.ShardseqServiceLeaseProcedure, "invalid_argument", 3},
		{shardseqv1connect.ShardseqServiceTakeIdsProcedure, "ok", 1},
	} {
		if v := value(t, s.Metrics(), "shardseq_rpc_requests_total", map[string]string{"procedure": c.procedure, "code": c.code}); v != c.want {
			t.Errorf("shardseq_rpc_requests_total{%s,%s} = %v, want %v", c.procedure, c.code, v, c.want)
		}
	}
}

func testRPCNamespaces(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: 6})
	url := rpcServer(t, s.Handler(), nil)
	explicit := rpcClients(rpcServer(t, newServer(t, Config{Cluster: cl, Shards: 6, CreateNamespaces: CreateExplicit}).Handler(), nil))[0].c
	ctx := context.Background()
	u32 := func(v uint32) *uint32 { return &v }
	i64 := func(v int64) *int64 { return &v }
	for _, rc := range rpcClients(url) {
		c, name := rc.c, "rpc-ns-"+rc.name
		what := func(call string) string { return rc.name + " " + call }

		put, err := c.PutNamespace(ctx, connect.NewRequest(&shardseqv1.PutNamespaceRequest{Name: name, Shards: u32(4), Start: i64(1000)}))
		if err != nil {
			t.Fatalf("%s: %v", what("PutNamespace"), err)
		}
		if ns := put.Msg.GetNamespace(); !put.Msg.GetCreated() || ns.GetName() != name || ns.GetShards() != 4 || ns.GetStart() != 1000 ||
			ns.GetState() != shardseqv1.NamespaceState_NAMESPACE_STATE_ACTIVE || ns.GetCreateTime() == nil {
			t.Errorf("%s: %v", what("PutNamespace"), put.Msg)
		}
		again, err := c.PutNamespace(ctx, connect.NewRequest(&shardseqv1.PutNamespaceRequest{Name: name}))
		if err != nil || again.Msg.GetCreated() || again.Msg.GetNamespace().GetShards() != 4 {
			t.Errorf("%s again: %v %v, want created false, shards 4", what("PutNamespace"), again, err)
		}
		_, err = c.PutNamespace(ctx, connect.NewRequest(&shardseqv1.PutNamespaceRequest{Name: name, Shards: u32(5)}))
		wantRPCError(t, what("PutNamespace with another N"), err, connect.CodeFailedPrecondition, codeNamespaceConflict)
		_, err = c.PutNamespace(ctx, connect.NewRequest(&shardseqv1.PutNamespaceRequest{Name: name, Shards: u32(0)}))
		wantRPCError(t, what("PutNamespace shards 0"), err, connect.CodeInvalidArgument, codeBadBody)
		_, err = c.PutNamespace(ctx, connect.NewRequest(&shardseqv1.PutNamespaceRequest{Name: ".."}))
		wantRPCError(t, what("PutNamespace .."), err, connect.CodeInvalidArgument, codeBadNamespace)

		taken, err := c.TakeIds(ctx, connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: name, Count: 10}))
		if err != nil {
			t.Fatalf("%s: %v", what("TakeIds"), err)
		}
		get, err := c.GetNamespace(ctx, connect.NewRequest(&shardseqv1.GetNamespaceRequest{Name: name}))
		if err != nil {
			t.Fatalf("%s: %v", what("GetNamespace"), err)
		}
		u := get.Msg.GetNamespace().GetUsage()
		if u.GetShardsChecked() != 4 || u.GetReserved() < 10 || u.GetHighestId() < slices.Max(taken.Msg.GetIds()) || u.GetSpaceLeft() <= 0 ||
			u.GetMaxId() != client.DefaultMaxID {
			t.Errorf("%s: usage %v after 10 IDs up to %d", what("GetNamespace"), u, slices.Max(taken.Msg.GetIds()))
		}

		var listed []string
		cursor := ""
		for range 1000 {
			page, err := c.ListNamespaces(ctx, connect.NewRequest(&shardseqv1.ListNamespacesRequest{Limit: 2, Cursor: cursor}))
			if err != nil {
				t.Fatalf("%s: %v", what("ListNamespaces"), err)
			}
			if len(page.Msg.GetNamespaces()) > 2 {
				t.Fatalf("%s: %d namespaces, limit 2", what("ListNamespaces"), len(page.Msg.GetNamespaces()))
			}
			for _, ns := range page.Msg.GetNamespaces() {
				listed = append(listed, ns.GetName())
			}
			if cursor = page.Msg.GetNextCursor(); cursor == "" {
				break
			}
		}
		if !slices.IsSorted(listed) || !slices.Contains(listed, name) || !slices.Contains(listed, DefaultNamespace) {
			t.Errorf("%s: %v, want sorted, with %s and %s", what("ListNamespaces"), listed, name, DefaultNamespace)
		}
		_, err = c.ListNamespaces(ctx, connect.NewRequest(&shardseqv1.ListNamespacesRequest{Limit: client.MaxListLimit + 1}))
		wantRPCError(t, what("ListNamespaces over the limit"), err, connect.CodeInvalidArgument, codeBadLimit)

		del, err := c.DeleteNamespace(ctx, connect.NewRequest(&shardseqv1.DeleteNamespaceRequest{Name: name}))
		if err != nil || !del.Msg.GetDeleted() {
			t.Errorf("%s: %v %v, want deleted", what("DeleteNamespace"), del, err)
		}
		del, err = c.DeleteNamespace(ctx, connect.NewRequest(&shardseqv1.DeleteNamespaceRequest{Name: name}))
		if err != nil || del.Msg.GetDeleted() {
			t.Errorf("%s again: %v %v, want deleted false", what("DeleteNamespace"), del, err)
		}
		get, err = c.GetNamespace(ctx, connect.NewRequest(&shardseqv1.GetNamespaceRequest{Name: name}))
		if err != nil || get.Msg.GetNamespace().GetState() != shardseqv1.NamespaceState_NAMESPACE_STATE_DELETED {
			t.Errorf("%s after delete: %v %v, want state deleted", what("GetNamespace"), get, err)
		}
		_, err = explicit.TakeIds(ctx, connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: name}))
		wantRPCError(t, what("TakeIds of a deleted namespace, explicit creation"), err, connect.CodeNotFound, codeNamespaceDeleted)
		// Auto creation recreates it, above every ID it handed out.
		again2, err := c.TakeIds(ctx, connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: name, Count: 10}))
		if err != nil || slices.Min(again2.Msg.GetIds()) <= slices.Max(taken.Msg.GetIds()) {
			t.Errorf("%s: %v %v, want IDs above %d", what("TakeIds after delete"), again2, err, slices.Max(taken.Msg.GetIds()))
		}
		_, err = c.DeleteNamespace(ctx, connect.NewRequest(&shardseqv1.DeleteNamespaceRequest{Name: "rpc-never-created"}))
		wantRPCError(t, what("DeleteNamespace of a name never created"), err, connect.CodeNotFound, codeNamespaceNotFound)
		_, err = c.DeleteNamespace(ctx, connect.NewRequest(&shardseqv1.DeleteNamespaceRequest{Name: DefaultNamespace}))
		wantRPCError(t, what("DeleteNamespace default"), err, connect.CodeFailedPrecondition, codeNamespaceConflict)
		_, err = c.GetNamespace(ctx, connect.NewRequest(&shardseqv1.GetNamespaceRequest{Name: "rpc-never-created"}))
		wantRPCError(t, what("GetNamespace of a name never created"), err, connect.CodeNotFound, codeNamespaceNotFound)
		_, err = c.GetNamespace(ctx, connect.NewRequest(&shardseqv1.GetNamespaceRequest{Name: "a:b"}))
		wantRPCError(t, what("GetNamespace a:b"), err, connect.CodeInvalidArgument, codeBadNamespace)
		_, err = c.TakeIds(ctx, connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: "orders", Count: MaxCount + 1}))
		wantRPCError(t, what("TakeIds over MaxCount"), err, connect.CodeInvalidArgument, codeBadCount)
	}
	// Connect's GET for calls without side effects goes through the same
	// handlers.
	gc := shardseqv1connect.NewShardseqServiceClient(h1Client(), url, connect.WithHTTPGet())
	if res, err := gc.GetNamespace(ctx, connect.NewRequest(&shardseqv1.GetNamespaceRequest{Name: DefaultNamespace})); err != nil ||
		res.Msg.GetNamespace().GetName() != DefaultNamespace {
		t.Errorf("GetNamespace by GET: %v %v", res, err)
	}
}

// healthOf is the status of service by grpc.health.v1 over gRPC.
func healthOf(tb testing.TB, url, service string) (grpchealth.Status, error) {
	tb.Helper()
	res, err := grpchealth.NewClient(h2cClient(), url, connect.WithGRPC()).Check(context.Background(), &grpchealth.CheckRequest{Service: service})
	if err != nil {
		return 0, err
	}
	return res.Status, nil
}

// testRPCHealth: SERVING while ready, NOT_SERVING once draining (the
// negative control: the answer follows readiness), NotFound for another
// service.
func testRPCHealth(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: 6})
	url := rpcServer(t, s.Handler(), nil)
	for _, svc := range []string{"", shardseqv1connect.ShardseqServiceName} {
		if st, err := healthOf(t, url, svc); err != nil || st != grpchealth.StatusServing {
			t.Errorf("health of %q: %v %v, want serving", svc, st, err)
		}
	}
	if _, err := healthOf(t, url, "acme.v1.Other"); connect.CodeOf(err) != connect.CodeNotFound {
		t.Errorf("health of another service: %v, want NotFound", err)
	}
	s.Drain()
	if st, err := healthOf(t, url, ""); err != nil || st != grpchealth.StatusNotServing {
		t.Errorf("health while draining: %v %v, want not serving", st, err)
	}
}

// testRPCAuth: with tokens, every protocol needs one (missing or wrong:
// Unauthenticated); health needs none. Without tokens (the control) no
// token is needed.
func testRPCAuth(t *testing.T, cl *cluster.Cluster) {
	locked := newServer(t, Config{Cluster: cl, Shards: 6, Tokens: []string{testToken}})
	url := rpcServer(t, locked.Handler(), nil)
	ctx := context.Background()
	take := func(c shardseqv1connect.ShardseqServiceClient) error {
		_, err := c.TakeIds(ctx, connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: "rpc-auth"}))
		return err
	}
	for i, rc := range rpcClients(url) {
		wantRPCError(t, rc.name+" without a token", take(rc.c), connect.CodeUnauthenticated, codeUnauthorized)
		wantRPCError(t, rc.name+" with a wrong token", take(rpcClients(url, bearer(testToken+"x"))[i].c), connect.CodeUnauthenticated, codeUnauthorized)
		if err := take(rpcClients(url, bearer(testToken))[i].c); err != nil {
			t.Errorf("%s with the token: %v", rc.name, err)
		}
		_, err := rc.c.ListNamespaces(ctx, connect.NewRequest(&shardseqv1.ListNamespacesRequest{}))
		wantRPCError(t, rc.name+" ListNamespaces without a token", err, connect.CodeUnauthenticated, codeUnauthorized)
	}
	if st, err := healthOf(t, url, ""); err != nil || st != grpchealth.StatusServing {
		t.Errorf("health without a token: %v %v, want serving (load balancers have none)", st, err)
	}
	open := newServer(t, Config{Cluster: cl, Shards: 6})
	if err := take(rpcClients(rpcServer(t, open.Handler(), nil))[0].c); err != nil {
		t.Errorf("a server without tokens: %v", err)
	}

	// Scopes, as on the HTTP twins: PermissionDenied for a valid token
	// without the call's scope.
	scoped := newServer(t, Config{Cluster: cl, Shards: 6, ScopedTokens: []Token{
		{Secret: "ids-token-0123456789", Scopes: []string{"ids:rpc-*"}}, {Secret: "read-token-0123456789", Scopes: []string{"read"}}}})
	surl := rpcServer(t, scoped.Handler(), nil)
	for i, rc := range rpcClients(surl) {
		ids := rpcClients(surl, bearer("ids-token-0123456789"))[i].c
		read := rpcClients(surl, bearer("read-token-0123456789"))[i].c
		if err := take(ids); err != nil {
			t.Errorf("%s: ids:rpc-* taking IDs of rpc-auth: %v", rc.name, err)
		}
		_, err := ids.TakeIds(ctx, connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: "other"}))
		wantRPCError(t, rc.name+" ids:rpc-* taking IDs of other", err, connect.CodePermissionDenied, codeForbidden)
		_, err = ids.Lease(ctx, connect.NewRequest(&shardseqv1.LeaseRequest{Namespace: "other", Count: 10}))
		wantRPCError(t, rc.name+" ids:rpc-* leasing from other", err, connect.CodePermissionDenied, codeForbidden)
		_, err = ids.ListNamespaces(ctx, connect.NewRequest(&shardseqv1.ListNamespacesRequest{}))
		wantRPCError(t, rc.name+" ids:rpc-* listing namespaces", err, connect.CodePermissionDenied, codeForbidden)
		_, err = read.DeleteNamespace(ctx, connect.NewRequest(&shardseqv1.DeleteNamespaceRequest{Name: "rpc-auth"}))
		wantRPCError(t, rc.name+" read deleting a namespace", err, connect.CodePermissionDenied, codeForbidden)
		if _, err := read.ListNamespaces(ctx, connect.NewRequest(&shardseqv1.ListNamespacesRequest{})); err != nil {
			t.Errorf("%s: read listing namespaces: %v", rc.name, err)
		}
		wantRPCError(t, rc.name+" read taking IDs", take(read), connect.CodePermissionDenied, codeForbidden)
	}
}

// testRPCTLS: gRPC over TLS, as serve sets it up (TLSConfig, tls.NewListener,
// HTTP/2 by ALPN); a TLS 1.1 client and one not trusting the CA are refused.
func testRPCTLS(t *testing.T, cl *cluster.Cluster) {
	pki := tlstest.New(t)
	tc, err := TLSConfig(pki.CertFile, pki.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	s := newServer(t, Config{Cluster: cl, Shards: 6, Tokens: []string{testToken}})
	url := rpcServer(t, s.Handler(), tc)
	var h2 http.Protocols
	h2.SetHTTP2(true) // HTTP/2 only: the call fails unless ALPN chose h2
	tlsClient := func(cfg *tls.Config) shardseqv1connect.ShardseqServiceClient {
		hc := &http.Client{Transport: &http.Transport{TLSClientConfig: cfg, Protocols: &h2}, Timeout: 10 * time.Second}
		return shardseqv1connect.NewShardseqServiceClient(hc, url, connect.WithGRPC(), bearer(testToken))
	}
	res, err := tlsClient(pki.ClientConfig()).TakeIds(context.Background(), connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: "rpc-tls", Count: 3}))
	if err != nil || len(res.Msg.GetIds()) != 3 {
		t.Fatalf("gRPC over TLS: %v %v", res, err)
	}
	_, err = tlsClient(&tls.Config{RootCAs: pki.Pool, MaxVersion: tls.VersionTLS11}).TakeIds(context.Background(),
		connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: "rpc-tls"}))
	if err == nil {
		t.Error("a TLS 1.1 client was served")
	}
	_, err = tlsClient(&tls.Config{}).TakeIds(context.Background(), connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: "rpc-tls"}))
	if err == nil {
		t.Error("a client not trusting the CA was served")
	}
}

// testRPCClosed: a closed server answers Unavailable, with Retry-After 1 in
// the detail.
func testRPCClosed(t *testing.T, cl *cluster.Cluster) {
	s := newServer(t, Config{Cluster: cl, Shards: 6})
	url := rpcServer(t, s.Handler(), nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	c := rpcClients(url)[0].c
	ctx := context.Background()
	_, err := c.TakeIds(ctx, connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: "rpc-closed"}))
	wantRPCError(t, "TakeIds of a closed server", err, connect.CodeUnavailable, codeUnavailable)
	if d := errorDetail(t, err); d.GetRetryAfterSeconds() != retryShort {
		t.Errorf("detail %v, want retry after %d", d, retryShort)
	}
	_, err = c.GetNamespace(ctx, connect.NewRequest(&shardseqv1.GetNamespaceRequest{Name: DefaultNamespace}))
	wantRPCError(t, "GetNamespace of a closed server", err, connect.CodeUnavailable, codeUnavailable)
	if st, err := healthOf(t, url, ""); err != nil || st != grpchealth.StatusNotServing {
		t.Errorf("health of a closed server: %v %v", st, err)
	}
}
