// Package bare is the baseline of issue 22: a bare net/http handler that
// answers POST /v1/ids/{namespace} with the body and headers `shardseq serve`
// answers for one ID, taken from an atomic counter instead of Redis. Measured
// side by side with serve (scripts/http-vs-bare.sh), the gap is what the
// product's handler, its client and Redis cost over net/http itself.
package bare

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/server"
)

// Handler answers POST /v1/ids/{namespace} with {"namespace":NS,"ids":[N]}
// and the headers of serve's answer; N counts up from 1 across namespaces.
// A namespace serve would refuse gets 400 (so the body needs no escaping);
// ?count is ignored: the baseline is the single-ID request.
type Handler struct {
	next atomic.Int64
	mux  *http.ServeMux
}

// NewHandler returns a Handler whose first ID is 1.
func NewHandler() *Handler {
	h := &Handler{mux: http.NewServeMux()}
	h.mux.HandleFunc("POST /v1/ids/{namespace}", h.ids)
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// ids writes the body as server.handleIDs does (appended bytes, a pooled
// buffer, headers set as map entries), so the baseline is not slowed by a
// JSON encoder the product does not use.
func (h *Handler) ids(w http.ResponseWriter, r *http.Request) {
	ns := r.PathValue("namespace")
	if !client.ValidNamespace(ns) {
		http.Error(w, `{"error":"bad namespace"}`, http.StatusBadRequest)
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := append((*bp)[:0], `{"namespace":"`...)
	b = append(b, ns...)
	b = append(b, `","ids":[`...)
	b = strconv.AppendInt(b, h.next.Add(1), 10)
	b = append(b, "]}\n"...)
	hd := w.Header()
	hd["Content-Type"] = []string{"application/json"}
	hd["Cache-Control"] = []string{"no-store"}
	hd["X-Content-Type-Options"] = []string{"nosniff"}
	hd["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	*bp = b
	bufPool.Put(bp)
}

// Serve answers on ln until ctx is done, then shuts down within 5 s. The
// http.Server has serve's timeouts and limits (server.NewHTTPServer), so
// the two differ only in the handler and what stands behind it.
func Serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	srv := server.NewHTTPServer(ln.Addr().String(), NewHandler(), log)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
