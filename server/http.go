package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/shard"
)

// maxBodyBytes bounds request bodies: no route needs one.
const maxBodyBytes = 4 << 10

// badNamespace answers a namespace that breaks shard.ValidNamespace.
const badNamespace = "namespace must match " + shard.NamespacePattern

// badRequest is a validation error (400); its message is the whole answer.
type badRequest string

func (e badRequest) Error() string { return string(e) }

// NewHTTPServer returns an http.Server for h on addr with every timeout and
// size limit set, so a slow or hostile client cannot hold connections or
// memory.
func NewHTTPServer(addr string, h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.Default()
	}
	return &http.Server{
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
	mux.HandleFunc("POST /v1/ids/{namespace}", api.require(s.handleIDs))
	mux.HandleFunc("/v1/ids/{namespace}", api.require(methodNotAllowed(http.MethodPost)))
	mux.HandleFunc("/v1/ids/", api.require(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusBadRequest, badNamespace)
	}))
	mux.HandleFunc("GET /v1/shards", api.require(s.handleShards))
	mux.HandleFunc("/v1/shards", api.require(methodNotAllowed(http.MethodGet, http.MethodHead)))
	mux.HandleFunc("/v1/", api.require(notFound)) // unknown /v1 paths say nothing without a token
	mux.HandleFunc("GET /metrics", metricsAuth.require(s.metrics.handler().ServeHTTP))
	mux.HandleFunc("/metrics", methodNotAllowed(http.MethodGet, http.MethodHead))
	mux.HandleFunc("GET /{$}", uiAuth.require(s.handleUI))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("/healthz", methodNotAllowed(http.MethodGet, http.MethodHead))
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.HandleFunc("/readyz", methodNotAllowed(http.MethodGet, http.MethodHead))
	mux.HandleFunc("/", notFound)
	return s.metrics.instrument(s.recoverer(limitBody(mux)))
}

func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "no route "+r.URL.Path+"; see GET / (health page), POST /v1/ids/{namespace}, GET /v1/shards, /metrics, /healthz, /readyz")
}

// methodNotAllowed answers what ServeMux would, but in JSON.
func methodNotAllowed(allowed ...string) http.HandlerFunc {
	allow := allowed[0]
	for _, m := range allowed[1:] {
		allow += ", " + m
	}
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+allow)
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
			writeError(w, http.StatusInternalServerError, "internal error")
		}()
		h.ServeHTTP(w, r)
	})
}

// parseIDRequest validates the namespace and the count parameter of an ID
// request. An empty count means 1.
func parseIDRequest(ns, countParam string) (string, int, error) {
	if !shard.ValidNamespace(ns) {
		return "", 0, badRequest(badNamespace)
	}
	if countParam == "" {
		return ns, 1, nil
	}
	n, err := strconv.Atoi(countParam)
	if err != nil || n < 1 || n > MaxCount {
		return "", 0, badRequest("count must be an integer from 1 to " + strconv.Itoa(MaxCount))
	}
	return ns, n, nil
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func (s *Server) handleIDs(w http.ResponseWriter, r *http.Request) {
	countParam := ""
	if r.URL.RawQuery != "" {
		countParam = r.URL.Query().Get("count")
	}
	name, count, err := parseIDRequest(r.PathValue("namespace"), countParam)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	c := s.lookup(name)
	if c == nil {
		if c, err = s.namespace(ctx, name); err != nil {
			s.writeFailure(w, r, name, err)
			return
		}
	}
	var one [1]int64
	ids := one[:]
	if count == 1 {
		ids[0], err = c.Next(ctx)
	} else {
		ids, err = c.NextN(ctx, count)
	}
	if err != nil {
		s.writeFailure(w, r, name, err)
		return
	}
	s.addIssued(name, len(ids))
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
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	if cap(b) <= 64<<10 { // don't keep the buffers of huge batches
		*bp = b
		bufPool.Put(bp)
	}
}

// statusOf maps an error of opening a namespace or of handing out IDs to an
// HTTP status.
func statusOf(err error) int {
	var netErr net.Error
	switch {
	case errors.As(err, new(badRequest)):
		return http.StatusBadRequest
	case errors.Is(err, client.ErrShardCountMismatch):
		return http.StatusConflict
	case errors.Is(err, client.ErrNoHealthyShard),
		errors.Is(err, ErrTooManyNamespaces),
		errors.Is(err, ErrClosed),
		errors.Is(err, client.ErrClosed),
		errors.Is(err, cluster.ErrClosed),
		errors.Is(err, cluster.ErrUnreachable),
		errors.Is(err, cluster.ErrNoMaster),
		errors.Is(err, redis.ErrClosed),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, context.Canceled),
		cluster.IsClusterDown(err),
		errors.As(err, &netErr):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

func (s *Server) writeFailure(w http.ResponseWriter, r *http.Request, ns string, err error) {
	code := statusOf(err)
	msg := err.Error()
	switch {
	case code == http.StatusInternalServerError:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "namespace", ns, "err", err)
	case errors.Is(err, context.Canceled) && r.Context().Err() != nil:
		// the caller went away: nobody reads the answer
		s.log.Debug("request cancelled by caller", "namespace", ns)
	default:
		s.log.Warn("request failed", "namespace", ns, "status", code, "err", err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("timed out after %v: %v", s.cfg.RequestTimeout, err)
	}
	writeError(w, code, msg)
}

// shardsResponse is the body of GET /v1/shards.
type shardsResponse struct {
	Shards     []failover.ShardStatus `json:"shards"`
	Namespaces int                    `json:"namespaces"`
	Healthy    int                    `json:"healthy"`
	Total      int                    `json:"total"`
	Cluster    clusterJSON            `json:"cluster"`
}

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

func (s *Server) handleShards(w http.ResponseWriter, r *http.Request) {
	names := s.Namespaces()
	if q := r.URL.Query(); q.Has("namespace") {
		ns := q.Get("namespace")
		if !shard.ValidNamespace(ns) {
			writeError(w, http.StatusBadRequest, badNamespace)
			return
		}
		if s.lookup(ns) == nil {
			writeError(w, http.StatusNotFound, fmt.Sprintf("namespace %q is not open on this server; it opens on its first POST /v1/ids/%s", ns, ns))
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
	top := s.cfg.Cluster.Topology()
	resp.Cluster = clusterJSON{Masters: []masterJSON{}, Covered: top.Covered(), Generation: top.Generation, UpdatedAt: top.CreatedAt}
	for _, m := range top.Masters {
		mj := masterJSON{nodeJSON: nodeJSON{m.Addr, m.ID, m.Failed}, Replicas: []nodeJSON{}, Slots: m.Slots}
		for _, rep := range m.Replicas {
			mj.Replicas = append(mj.Replicas, nodeJSON{rep.Addr, rep.ID, rep.Failed})
		}
		if mj.Slots == nil {
			mj.Slots = [][2]int{}
		}
		resp.Cluster.Masters = append(resp.Cluster.Masters, mj)
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	healthy := s.def.Healthy()
	body := map[string]any{"ready": true, "namespace": DefaultNamespace, "healthy": healthy, "total": s.def.ShardCount()}
	code := http.StatusOK
	switch {
	case s.draining.Load():
		body["ready"], body["reason"] = false, "draining: the server is shutting down"
		code = http.StatusServiceUnavailable
	case s.isClosed():
		body["ready"], body["reason"] = false, "closed"
		code = http.StatusServiceUnavailable
	case healthy == 0:
		body["ready"], body["reason"] = false, "no healthy shard in namespace "+DefaultNamespace
		code = http.StatusServiceUnavailable
	}
	if code != http.StatusOK {
		body["error"] = "not ready: " + body["reason"].(string)
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"encoding the response failed"}`)
	}
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, struct {
		Error string `json:"error"`
	}{msg})
}
