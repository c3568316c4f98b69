package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
)

// maxBodyBytes bounds request bodies: only PUT /v1/namespaces/{namespace}
// reads one, a small JSON object.
const maxBodyBytes = 4 << 10

// NewHTTPServer returns an http.Server for h on addr with every timeout and
// size limit set, so a slow or hostile client cannot hold connections or
// memory.
func NewHTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.Default()
	}
	// HTTP/2 without TLS too (prior knowledge, as gRPC clients speak it on
	// a plain port); HTTP/1.1 clients see no difference.
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	protocols.SetUnencryptedHTTP2(true)
	return &http.Server{
		Protocols:         &protocols,
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	api := s.auth // nil: open
	var metricsAuth, uiAuth *authenticator
	if s.cfg.AuthMetrics {
		metricsAuth = s.auth
	}
	if s.cfg.AuthUI {
		uiAuth = s.auth
	}
	// Each route's scope: ids (of the namespace in the path), read or
	// admin. What is no route (a wrong method, an unknown path) needs a
	// valid token only (require), so it tells nothing without one.
	mux.HandleFunc("POST /v1/ids/{namespace}", api.requireScope(scopeIDs, s.handleIDs))
	mux.HandleFunc("/v1/ids/{namespace}", api.require(methodNotAllowed(http.MethodPost)))
	mux.HandleFunc("/v1/ids/", api.require(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errBadNamespace) // none, or with a slash
	}))
	s.leaseRoutes(mux, api)     // POST /v1/leases/{namespace}
	s.namespaceRoutes(mux, api) // PUT, GET, DELETE /v1/namespaces/{namespace}, GET /v1/namespaces
	s.rpcRoutes(mux, api)       // /shardseq.v1.ShardseqService/*, /grpc.health.v1.Health/* (rpc.go)
	mux.HandleFunc("GET /v1/shards", api.requireScope(scopeRead, strictQuery(s.handleShards, "namespace")))
	mux.HandleFunc("/v1/shards", api.require(methodNotAllowed(http.MethodGet, http.MethodHead)))
	mux.HandleFunc("/v1/", api.require(notFound)) // unknown /v1 paths say nothing without a token
	// Without these, ServeMux would redirect each to its subtree ("/v1/ids/").
	mux.HandleFunc("/v1", api.require(notFound))
	mux.HandleFunc("/v1/ids", api.require(notFound))
	mux.HandleFunc("/v1/leases", api.require(notFound))
	mux.HandleFunc("GET /metrics", metricsAuth.requireScope(scopeRead, strictQuery(s.metrics.handler().ServeHTTP)))
	mux.HandleFunc("/metrics", methodNotAllowed(http.MethodGet, http.MethodHead))
	mux.HandleFunc("GET /{$}", uiAuth.requireScope(scopeRead, strictQuery(s.handleUI, "namespace", "page", "fragment")))
	mux.HandleFunc("/{$}", methodNotAllowed(http.MethodGet, http.MethodHead))
	mux.HandleFunc("GET /healthz", strictQuery(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	mux.HandleFunc("/healthz", methodNotAllowed(http.MethodGet, http.MethodHead))
	mux.HandleFunc("GET /readyz", strictQuery(s.handleReady))
	mux.HandleFunc("/readyz", methodNotAllowed(http.MethodGet, http.MethodHead))
	mux.HandleFunc("/", notFound)
	unclean := func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && reservedName(strings.TrimPrefix(r.URL.Path, "/v1/namespaces/")) {
			writeError(w, errReservedName)
			return
		}
		notFound(w, r)
	}
	return s.metrics.instrument(s.recoverer(limitBody(cleanPaths(mux, api.require(unclean), unclean))))
}

// cleanPaths answers a request whose path ServeMux would clean (".", "..",
// "//") with unclean, or v1 for one under /v1, instead of the redirect
// ServeMux sends, which is not JSON, and which a client of the API would
// follow to another resource than it named.
func cleanPaths(mux http.Handler, v1, unclean http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch p := r.URL.Path; {
		case r.Method == http.MethodConnect || !needsCleaning(p):
			mux.ServeHTTP(w, r)
		case p == "/v1" || strings.HasPrefix(p, "/v1/"):
			v1(w, r)
		default:
			unclean(w, r)
		}
	})
}

// needsCleaning reports whether ServeMux would redirect path p to a cleaned
// one: its cleanPath, which keeps a trailing slash.
func needsCleaning(p string) bool {
	if p == "" || p[0] != '/' {
		return true
	}
	c := path.Clean(p)
	if p[len(p)-1] == '/' && c != "/" {
		c += "/"
	}
	return c != p
}

func notFound(w http.ResponseWriter, r *http.Request) { writeError(w, errNotFound) }

// methodNotAllowed answers what ServeMux would, but in JSON.
func methodNotAllowed(allowed ...string) http.HandlerFunc {
	allow := allowed[0]
	for _, m := range allowed[1:] {
		allow += ", " + m
	}
	err := public(errMethodNotAllowed, "method not allowed; use %s", allow)
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, err)
	}
}

func limitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		}
		h.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged 500 with a JSON body, so no panic
// reaches a caller (or kills the connection without an answer).
func (s *Server) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic serving request", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
			writeError(w, fmt.Errorf("server: panic: %v", v))
		}()
		h.ServeHTTP(w, r)
	})
}

// parseIDRequest validates the namespace and the query of an ID request:
// at most one count, from 1 to MaxCount as parsePositive reads it; no count
// means 1.
func parseIDRequest(ns, rawQuery string) (string, int, error) {
	q, perr := parseQuery(rawQuery, "count")
	if perr != nil {
		return "", 0, perr
	}
	if !client.ValidNamespace(ns) {
		return "", 0, errBadNamespace
	}
	countParam, ok := q["count"]
	if !ok {
		return ns, 1, nil
	}
	n, ok := parsePositive(countParam, MaxCount)
	if !ok {
		return "", 0, errBadCount
	}
	return ns, n, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func (s *Server) handleIDs(w http.ResponseWriter, r *http.Request) {
	name, count, err := parseIDRequest(r.PathValue("namespace"), r.URL.RawQuery)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	var one [1]int64
	ids, err := s.take(ctx, name, count, one[:])
	if err != nil {
		s.fail(w, r, name, err)
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"namespace":"`...)
	b = append(b, name...) // ValidNamespace: nothing to escape
	b = append(b, `","ids":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, id, 10)
	}
	b = append(b, "]}\n"...)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Cache-Control"] = []string{"no-store"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) <= 64<<10 { // don't keep the buffers of huge batches
		*bp = b
		bufPool.Put(bp)
	}
}

// fail answers a request that Redis or the server's state failed, and logs
// it with the request and the whole error, which the answer leaves out.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, ns string, err error) {
	e := writeError(w, err)
	level, msg := slog.LevelWarn, "request failed"
	switch {
	case e.status == http.StatusInternalServerError:
		level = slog.LevelError
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		level, msg = slog.LevelDebug, "request cancelled by caller" // nobody reads the answer
	}
	s.log.Log(r.Context(), level, msg, "method", r.Method, "path", r.URL.Path, "namespace", ns,
		"status", e.status, "code", e.code, "err", err)
}

// shardsResponse is the body of GET /v1/shards.
type shardsResponse struct {
	Shards     []failover.ShardStatus `json:"shards"`
	Namespaces int                    `json:"namespaces"`
	Healthy    int                    `json:"healthy"`
	Total      int                    `json:"total"`
	Cluster    clusterJSON            `json:"cluster"`
	Colocated  []colocJSON            `json:"colocated"`
}

// colocJSON is a shard of an open namespace whose keys share a master
// (client.Client.Colocated), in /v1/shards and on the health page, with
// what to do about it (colocAction).
type colocJSON struct {
	Namespace string   `json:"namespace"`
	Shard     int      `json:"shard"`
	Master    string   `json:"master"`
	Keys      []string `json:"keys"`
	Slots     []int    `json:"slots"`
	Move      []int    `json:"move"` // the slots to move off Master
	Action    string   `json:"action"`
}

// colocated lists the shards of the open namespaces among names whose keys
// share a master, by namespace then shard; empty, never nil, so the JSON
// has [] rather than null.
func (s *Server) colocated(names []string) []colocJSON {
	out := []colocJSON{}
	for _, name := range names {
		c := s.lookup(name)
		if c == nil {
			continue // closed meanwhile
		}
		for _, co := range c.Colocated() {
			out = append(out, colocJSON{Namespace: name, Shard: co.Shard, Master: co.Master,
				Keys: co.Keys, Slots: co.Slots, Move: co.Move, Action: colocAction(name, co)})
		}
	}
	return out
}

// clusterJSON is the cluster in the body of GET /v1/shards and on the
// health page (clusterOf).
type clusterJSON struct {
	Masters    []masterJSON `json:"masters"`
	Covered    bool         `json:"covered"`
	Generation uint64       `json:"generation"`
	UpdatedAt  time.Time    `json:"updated_at"`
}

type nodeJSON struct {
	Addr   string `json:"addr"`
	ID     string `json:"id"`
	Failed bool   `json:"failed"`
}

type masterJSON struct {
	nodeJSON
	Replicas []nodeJSON `json:"replicas"`
	Slots    [][2]int   `json:"slots"`
}

// clusterOf is the cluster as /v1/shards and the health page show it.
// Its lists are empty, never nil, so the JSON has [] rather than null.
func clusterOf(top *cluster.Topology) clusterJSON {
	out := clusterJSON{Masters: []masterJSON{}, Covered: top.Covered(), Generation: top.Generation, UpdatedAt: top.CreatedAt}
	for _, m := range top.Masters {
		mj := masterJSON{nodeJSON: nodeJSON{m.Addr, m.ID, m.Failed}, Replicas: []nodeJSON{}, Slots: m.Slots}
		for _, rep := range m.Replicas {
			mj.Replicas = append(mj.Replicas, nodeJSON{rep.Addr, rep.ID, rep.Failed})
		}
		if mj.Slots == nil {
			mj.Slots = [][2]int{}
		}
		out.Masters = append(out.Masters, mj)
	}
	return out
}

// failed is the number of masters flagged failed.
func (c clusterJSON) failed() int {
	n := 0
	for _, m := range c.Masters {
		if m.Failed {
			n++
		}
	}
	return n
}

func (s *Server) handleShards(w http.ResponseWriter, r *http.Request) {
	names := s.Namespaces()
	if q := r.URL.Query(); q.Has("namespace") {
		ns := q.Get("namespace")
		if !client.ValidNamespace(ns) {
			writeError(w, errBadNamespace)
			return
		}
		if s.lookup(ns) == nil {
			writeError(w, public(errNamespaceNotOpen, "namespace %q is not open on this server; it opens on its first POST /v1/ids/%s", ns, ns))
			return
		}
		names = []string{ns}
	}
	resp := shardsResponse{Shards: []failover.ShardStatus{}, Namespaces: len(s.Namespaces())}
	for _, name := range names {
		c := s.lookup(name)
		if c == nil {
			continue // closed meanwhile
		}
		for _, st := range c.Shards() {
			resp.Shards = append(resp.Shards, st)
			resp.Total++
			if st.Healthy {
				resp.Healthy++
			}
		}
	}
	resp.Cluster = clusterOf(s.cfg.Cluster.Topology())
	resp.Colocated = s.colocated(names)
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	healthy := s.def.Healthy()
	body := map[string]any{"ready": true, "namespace": DefaultNamespace, "healthy": healthy, "total": s.def.ShardCount()}
	reason := s.notReady()
	if reason == "" {
		writeJSON(w, http.StatusOK, body)
		return
	}
	// The readiness body, with the error members of every error answer.
	e := errorOf(public(errNotReady, "not ready: %s", reason))
	body["ready"], body["reason"], body["error"], body["code"] = false, reason, e.msg, e.code
	e.header(w.Header())
	writeJSON(w, e.status, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	// Not HTML-escaped: a message's "<token>" stays readable in curl, and
	// nosniff keeps a browser from taking the JSON for HTML.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	b := []byte(`{"error":"encoding the response failed","code":"` + codeInternal + `"}` + "\n")
	if err := enc.Encode(v); err == nil {
		b = buf.Bytes() // Encode ends it with a newline
	} else {
		code = http.StatusInternalServerError
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}
