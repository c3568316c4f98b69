package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
	"connectrpc.com/grpchealth"
	"google.golang.org/protobuf/types/known/timestamppb"

	shardseqv1 "github.com/shardseq/shardseq/api/gen/shardseq/v1"
	"github.com/shardseq/shardseq/api/gen/shardseq/v1/shardseqv1connect"
	"github.com/shardseq/shardseq/client"
)

// The RPCs: shardseq.v1.ShardseqService (api/shardseq/v1/shardseq.proto),
// the twin of the HTTP API, in gRPC, gRPC-Web and Connect, and
// grpc.health.v1.Health for load balancers. connect-go serves them on the
// server's own mux: the same port, TLS, bearer tokens (requireRPC) and
// middleware (metrics, body limit) as the HTTP routes, and every call goes
// through the same functions as its HTTP twin (take, lease, putNamespace,
// ...), whose errors errorOf decides as for HTTP; rpcCodes turns the HTTP
// code into a gRPC status code.

// rpcCodes maps every documented HTTP error code to the gRPC status code of
// the same error: the one mapping table (README "gRPC"). A test holds it to
// documentedCodes.
var rpcCodes = map[string]connect.Code{
	codeBadNamespace: connect.CodeInvalidArgument,
	codeBadCount:     connect.CodeInvalidArgument,
	codeBadBody:      connect.CodeInvalidArgument, // the settings of PutNamespaceRequest
	codeBadLimit:     connect.CodeInvalidArgument,
	codeBadCursor:    connect.CodeInvalidArgument,
	codeBadParameter: connect.CodeInvalidArgument, // HTTP only: RPCs have no query
	codeUnauthorized: connect.CodeUnauthenticated,
	codeForbidden:    connect.CodePermissionDenied, // a valid token without the call's scope
	codeNotFound:     connect.CodeNotFound,         // HTTP only: connect answers an unknown procedure Unimplemented
	// A namespace that does not exist, or was deleted: NotFound, as 404.
	codeNamespaceNotFound: connect.CodeNotFound,
	codeNamespaceDeleted:  connect.CodeNotFound,
	codeMethodNotAllowed:  connect.CodeUnimplemented, // HTTP only
	// 409: the namespace exists with other settings, was deleted with
	// other ones, or is "default" (not deletable). FailedPrecondition,
	// not AlreadyExists: PutNamespace of an existing namespace with its own
	// settings succeeds, and the caller must change its request.
	codeNamespaceConflict: connect.CodeFailedPrecondition,
	codeTooManyNamespaces: connect.CodeResourceExhausted,
	codeRateLimited:       connect.CodeResourceExhausted,
	// Every 503: retryable, as gRPC clients retry Unavailable. A request
	// timeout is one too (Redis did not answer in time), not
	// DeadlineExceeded, which says the caller's own deadline passed.
	codeUnavailable: connect.CodeUnavailable,
	codeInternal:    connect.CodeInternal,
}

// rpcError is err as an RPC answers it: the status code rpcCodes gives the
// HTTP code errorOf decides, the same public message, and an ErrorDetail
// with the HTTP code and Retry-After.
func rpcError(err error) *connect.Error {
	e := errorOf(err)
	code, ok := rpcCodes[e.code]
	if !ok {
		code = connect.CodeInternal
	}
	ce := connect.NewError(code, errors.New(e.msg))
	if d, derr := connect.NewErrorDetail(&shardseqv1.ErrorDetail{Code: e.code, RetryAfterSeconds: uint32(e.retryAfter)}); derr == nil {
		ce.AddDetail(d)
	}
	return ce
}

// rpcCompressMinBytes: smaller answers go uncompressed.
const rpcCompressMinBytes = 1024

// rpcRoutes mounts the RPC handlers on mux.
func (s *Server) rpcRoutes(mux *http.ServeMux, api *authenticator) {
	opts := []connect.HandlerOption{
		// A request message is a name and a few numbers: bounded like an
		// HTTP body, after decompression too.
		connect.WithReadMaxBytes(maxBodyBytes),
		// connect-go gzips every answer a client accepts gzip for: a
		// single ID's answer is a dozen bytes, and gzip's writer costs
		// more than it saves below about a kilobyte.
		connect.WithCompressMinBytes(rpcCompressMinBytes),
		connect.WithRecover(s.rpcRecover),
		connect.WithInterceptors(s.rpcCounter()),
	}
	path, h := shardseqv1connect.NewShardseqServiceHandler(rpcService{s}, opts...)
	mux.Handle(path, api.requireRPC(h))
	// Open, like /healthz and /readyz: a load balancer has no token.
	path, h = grpchealth.NewHandler(rpcHealth{s}, connect.WithReadMaxBytes(maxBodyBytes), connect.WithCompressMinBytes(rpcCompressMinBytes))
	mux.Handle(path, h)
}

// requireRPC is require for the RPCs: a call without a valid bearer token
// gets Unauthenticated, in the protocol it was made in.
func (a *authenticator) requireRPC(h http.Handler) http.Handler {
	if a == nil {
		return h
	}
	ew := connect.NewErrorWriter()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A valid token first; each procedure then checks its scope for
		// the namespace in its message (authorizeRPC).
		if err := a.authorizeHeader(r.Header.Get("Authorization"), scopeAny, ""); err != nil {
			w.Header().Set("WWW-Authenticate", challengeOf(err))
			_ = ew.Write(w, r, rpcError(err))
			return
		}
		h.ServeHTTP(w, r)
	})
}

// authorizeRPC checks that the call's token has scope sc (for scopeIDs: of
// namespace ns), as requireScope does for the HTTP twin of the call:
// PermissionDenied otherwise.
func (s *Server) authorizeRPC(h http.Header, sc scope, ns string) error {
	return s.auth.authorizeHeader(h.Get("Authorization"), sc, ns)
}

// namespaceRPC is what every namespace call does first: the token's scope,
// a server still open, and the time an open may take.
func (s *Server) namespaceRPC(ctx context.Context, h http.Header, sc scope, ns string) (context.Context, context.CancelFunc, error) {
	if err := s.authorizeRPC(h, sc, ns); err != nil {
		return nil, nil, err
	}
	if s.pool.isClosed() {
		return nil, nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.OpenTimeout)
	return ctx, cancel, nil
}

// rpcRecover turns a panic in an RPC into a logged Internal, as recoverer
// does for HTTP.
func (s *Server) rpcRecover(ctx context.Context, spec connect.Spec, _ http.Header, v any) error {
	s.log.Error("panic serving RPC", "procedure", spec.Procedure, "panic", v)
	return rpcError(fmt.Errorf("server: panic: %v", v))
}

// rpcCounter counts every call that reached a procedure in
// shardseq_rpc_requests_total: the HTTP metrics see a gRPC call as a 200
// whatever its status.
func (s *Server) rpcCounter() connect.Interceptor {
	return connect.UnaryInterceptorFunc(func(next connect.UnaryFunc) connect.UnaryFunc {
		return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
			res, err := next(ctx, req)
			code := "ok"
			if err != nil {
				code = connect.CodeOf(err).String()
			}
			s.metrics.rpcRequests.WithLabelValues(req.Spec().Procedure, code).Inc()
			return res, err
		}
	})
}

// rpcFail logs a failed RPC as fail logs a failed HTTP request, and returns
// its answer.
func (s *Server) rpcFail(ctx context.Context, procedure, ns string, err error) error {
	ce := rpcError(err)
	level, msg := slog.LevelWarn, "request failed"
	switch {
	case ce.Code() == connect.CodeInternal:
		level = slog.LevelError
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		level, msg = slog.LevelDebug, "request cancelled by caller"
	}
	s.log.Log(ctx, level, msg, "procedure", procedure, "namespace", ns, "code", errorOf(err).code, "rpc_code", ce.Code().String(), "err", err)
	return ce
}

// rpcIDRequest checks a TakeIds request: the namespace, and a count from 1
// to MaxCount (0, proto3's unset, is 1, as a missing ?count=).
func rpcIDRequest(m *shardseqv1.TakeIdsRequest) (string, int, error) {
	if !client.ValidNamespace(m.GetNamespace()) {
		return "", 0, errBadNamespace
	}
	n := m.GetCount()
	if n == 0 {
		n = 1
	}
	if n > MaxCount {
		return "", 0, errBadCount
	}
	return m.GetNamespace(), int(n), nil
}

// rpcLeaseRequest checks a Lease request: the namespace, and a count from 1
// to MaxLease, required as ?count= is.
func rpcLeaseRequest(m *shardseqv1.LeaseRequest) (string, int, error) {
	if !client.ValidNamespace(m.GetNamespace()) {
		return "", 0, errBadNamespace
	}
	if n := m.GetCount(); n >= 1 && n <= MaxLease {
		return m.GetNamespace(), int(n), nil
	}
	return "", 0, errBadLeaseCount
}

// rpcPutRequest checks a PutNamespace request as handlePutNamespace checks
// the path and body: a name that can be created, settings in bounds
// (bad_body, the HTTP code of the same settings).
func rpcPutRequest(m *shardseqv1.PutNamespaceRequest, maxStart int64) (string, client.Spec, error) {
	name := m.GetName()
	switch {
	case !client.ValidNamespace(name):
		return "", client.Spec{}, errBadNamespace
	case reservedName(name):
		// A gRPC call could name them, but `shardseq namespace create` and
		// the HTTP API cannot: one rule for every face of the server.
		return "", client.Spec{}, errReservedName
	}
	var spec client.Spec
	if m.Shards != nil {
		n := int64(m.GetShards())
		if n < 1 || n > client.MaxShards {
			return "", client.Spec{}, public(errBadBody, "shards %d: want 1 to %d", n, client.MaxShards)
		}
		shards := int(n)
		spec.Shards = &shards
	}
	if m.Start != nil {
		start := m.GetStart()
		if start < 1 || start > maxStart {
			return "", client.Spec{}, public(errBadBody, "start %d: want 1 to %d", start, maxStart)
		}
		spec.Start = &start
	}
	if m.Strict != nil {
		strict := m.GetStrict()
		spec.Strict = &strict
	}
	return name, spec, nil
}

// rpcListRequest checks a ListNamespaces request: limit 1 to
// client.MaxListLimit (0, unset, is DefaultListLimit), a cursor that is ""
// or a namespace name.
func rpcListRequest(m *shardseqv1.ListNamespacesRequest) (int, string, error) {
	limit := int64(m.GetLimit())
	switch {
	case limit == 0:
		limit = DefaultListLimit
	case limit > client.MaxListLimit:
		return 0, "", errBadLimit
	}
	if c := m.GetCursor(); c != "" && !client.ValidNamespace(c) {
		return 0, "", errBadCursor
	}
	return int(limit), m.GetCursor(), nil
}

// rpcName checks the name of GetNamespace and DeleteNamespace.
func rpcName(name string) (string, error) {
	if !client.ValidNamespace(name) {
		return "", errBadNamespace
	}
	return name, nil
}

// rpcService is shardseq.v1.ShardseqService.
type rpcService struct{ s *Server }

var _ shardseqv1connect.ShardseqServiceHandler = rpcService{}

func (r rpcService) TakeIds(ctx context.Context, req *connect.Request[shardseqv1.TakeIdsRequest]) (*connect.Response[shardseqv1.TakeIdsResponse], error) {
	name, count, err := rpcIDRequest(req.Msg)
	if err != nil {
		return nil, rpcError(err)
	}
	if err := r.s.authorizeRPC(req.Header(), scopeIDs, name); err != nil {
		return nil, rpcError(err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.s.cfg.RequestTimeout)
	defer cancel()
	ids, err := r.s.take(ctx, name, count, nil)
	if err != nil {
		return nil, r.s.rpcFail(ctx, req.Spec().Procedure, name, err)
	}
	return connect.NewResponse(&shardseqv1.TakeIdsResponse{Namespace: name, Ids: ids}), nil
}

func (r rpcService) Lease(ctx context.Context, req *connect.Request[shardseqv1.LeaseRequest]) (*connect.Response[shardseqv1.LeaseResponse], error) {
	name, count, err := rpcLeaseRequest(req.Msg)
	if err != nil {
		return nil, rpcError(err)
	}
	if err := r.s.authorizeRPC(req.Header(), scopeIDs, name); err != nil {
		return nil, rpcError(err)
	}
	ctx, cancel := context.WithTimeout(ctx, r.s.cfg.RequestTimeout)
	defer cancel()
	l, err := r.s.lease(ctx, name, count)
	if err != nil {
		return nil, r.s.rpcFail(ctx, req.Spec().Procedure, name, err)
	}
	// Milliseconds rounded down, as POST /v1/leases: early rather than late.
	return connect.NewResponse(&shardseqv1.LeaseResponse{Namespace: l.Namespace, Shard: uint32(l.Shard), First: l.First,
		Step: l.Step, Count: l.Count, ValidMs: l.Valid.Milliseconds(), Limited: l.Limited}), nil
}

func (r rpcService) PutNamespace(ctx context.Context, req *connect.Request[shardseqv1.PutNamespaceRequest]) (*connect.Response[shardseqv1.PutNamespaceResponse], error) {
	name, spec, err := rpcPutRequest(req.Msg, client.MaxStart(r.s.cfg.Client.MaxID))
	if err != nil {
		return nil, rpcError(err)
	}
	ctx, cancel, err := r.s.namespaceRPC(ctx, req.Header(), scopeAdmin, name)
	if err != nil {
		return nil, rpcError(err)
	}
	defer cancel()
	ns, err := r.s.putNamespace(ctx, name, spec)
	if err != nil {
		return nil, r.s.rpcFail(ctx, req.Spec().Procedure, name, err)
	}
	return connect.NewResponse(&shardseqv1.PutNamespaceResponse{Namespace: namespaceMessage(ns.Info), Created: ns.Created,
		Recreated: ns.Recreated}), nil
}

func (r rpcService) GetNamespace(ctx context.Context, req *connect.Request[shardseqv1.GetNamespaceRequest]) (*connect.Response[shardseqv1.GetNamespaceResponse], error) {
	name, err := rpcName(req.Msg.GetName())
	if err != nil {
		return nil, rpcError(err)
	}
	ctx, cancel, err := r.s.namespaceRPC(ctx, req.Header(), scopeRead, name)
	if err != nil {
		return nil, rpcError(err)
	}
	defer cancel()
	d, err := client.DescribeNamespace(ctx, r.s.cfg.Cluster, name, r.s.cfg.Client)
	if err != nil {
		return nil, r.s.rpcFail(ctx, req.Spec().Procedure, name, err)
	}
	out := namespaceMessage(d.Info)
	u := d.Usage
	out.Usage = &shardseqv1.Usage{Reserved: u.Reserved, SpaceLeft: u.SpaceLeft, Used: u.Used(), HighestId: u.HighestID,
		MaxId: u.MaxID, ShardsChecked: uint32(u.Checked)}
	return connect.NewResponse(&shardseqv1.GetNamespaceResponse{Namespace: out}), nil
}

func (r rpcService) DeleteNamespace(ctx context.Context, req *connect.Request[shardseqv1.DeleteNamespaceRequest]) (*connect.Response[shardseqv1.DeleteNamespaceResponse], error) {
	name, err := rpcName(req.Msg.GetName())
	if err != nil {
		return nil, rpcError(err)
	}
	ctx, cancel, err := r.s.namespaceRPC(ctx, req.Header(), scopeAdmin, name)
	if err != nil {
		return nil, rpcError(err)
	}
	defer cancel()
	deleted, err := r.s.deleteNamespace(ctx, name)
	if errors.Is(err, errNamespaceConflict) {
		return nil, rpcError(err) // "default": not Redis's failure, nothing to log
	}
	if err != nil {
		return nil, r.s.rpcFail(ctx, req.Spec().Procedure, name, err)
	}
	return connect.NewResponse(&shardseqv1.DeleteNamespaceResponse{Deleted: deleted}), nil
}

func (r rpcService) ListNamespaces(ctx context.Context, req *connect.Request[shardseqv1.ListNamespacesRequest]) (*connect.Response[shardseqv1.ListNamespacesResponse], error) {
	limit, cursor, err := rpcListRequest(req.Msg)
	if err != nil {
		return nil, rpcError(err)
	}
	ctx, cancel, err := r.s.namespaceRPC(ctx, req.Header(), scopeRead, "")
	if err != nil {
		return nil, rpcError(err)
	}
	defer cancel()
	page, err := client.ListNamespaces(ctx, r.s.cfg.Cluster, cursor, limit)
	if err != nil {
		return nil, r.s.rpcFail(ctx, req.Spec().Procedure, "", err)
	}
	out := &shardseqv1.ListNamespacesResponse{Namespaces: make([]*shardseqv1.Namespace, 0, len(page.Namespaces)), NextCursor: page.Next}
	for _, in := range page.Namespaces {
		out.Namespaces = append(out.Namespaces, namespaceMessage(in))
	}
	return connect.NewResponse(out), nil
}

// namespaceStates maps client.State to the enum of the proto.
var namespaceStates = map[client.State]shardseqv1.NamespaceState{
	client.StateActive:  shardseqv1.NamespaceState_NAMESPACE_STATE_ACTIVE,
	client.StateDeleted: shardseqv1.NamespaceState_NAMESPACE_STATE_DELETED,
	client.StateLost:    shardseqv1.NamespaceState_NAMESPACE_STATE_LOST,
	client.StateUnknown: shardseqv1.NamespaceState_NAMESPACE_STATE_UNKNOWN,
}

// namespaceMessage is namespaceOf for the RPCs: for state lost or unknown
// just the name and state.
func namespaceMessage(in client.Info) *shardseqv1.Namespace {
	out := &shardseqv1.Namespace{Name: in.Name, State: namespaceStates[in.State]}
	if in.State != client.StateActive && in.State != client.StateDeleted {
		return out
	}
	out.Shards, out.Start, out.Strict, out.Generation = uint32(in.Shards), in.Start, in.Strict, in.Generation
	if !in.CreatedAt.IsZero() {
		out.CreateTime = timestamppb.New(in.CreatedAt)
	}
	return out
}

// rpcHealth answers grpc.health.v1.Health.Check as /readyz answers: SERVING
// while the server is ready, NOT_SERVING otherwise (draining, closed, no
// master answering, no healthy shard of the default namespace), for the
// whole server ("") and for shardseq.v1.ShardseqService.
type rpcHealth struct{ s *Server }

func (h rpcHealth) Check(_ context.Context, req *grpchealth.CheckRequest) (*grpchealth.CheckResponse, error) {
	switch req.Service {
	case "", shardseqv1connect.ShardseqServiceName:
	default:
		return nil, connect.NewError(connect.CodeNotFound, fmt.Errorf("unknown service %q", req.Service))
	}
	if h.s.Ready() {
		return &grpchealth.CheckResponse{Status: grpchealth.StatusServing}, nil
	}
	return &grpchealth.CheckResponse{Status: grpchealth.StatusNotServing}, nil
}
