package server

import (
	"context"
	"net/http"

	"github.com/shardseq/shardseq/client"
)

// MaxLease bounds the count of POST /v1/leases/{namespace}.
const MaxLease = client.MaxLease

// errBadLeaseCount is errBadCount with the lease's bounds in its message.
var errBadLeaseCount = public(errBadCount, "count must be an integer from 1 to %d", MaxLease)

// leaseJSON is the body of a 200 answer of POST /v1/leases/{namespace}.
// valid_ms is how long after the caller sent its request it may hand the
// IDs out; it is 0 and means nothing when limited is false (a server
// without an order window: the lease lasts until used up).
type leaseJSON struct {
	Namespace string `json:"namespace"`
	Shard     int    `json:"shard"`
	First     int64  `json:"first"`
	Step      int64  `json:"step"`
	Count     int64  `json:"count"`
	ValidMS   int64  `json:"valid_ms"`
	Limited   bool   `json:"limited"`
}

// leaseRoutes registers POST /v1/leases/{namespace}, with the answers to a
// wrong method and to a missing namespace that /v1/ids gives.
func (s *Server) leaseRoutes(mux *http.ServeMux, api *authenticator) {
	mux.HandleFunc("POST /v1/leases/{namespace}", api.requireScope(scopeIDs, s.handleLease))
	mux.HandleFunc("/v1/leases/{namespace}", api.require(methodNotAllowed(http.MethodPost)))
	mux.HandleFunc("/v1/leases/", api.require(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errBadNamespace) // none, or with a slash
	}))
}

// parseLeaseRequest validates the namespace and the query of a lease
// request: exactly one count, from 1 to MaxLease.
func parseLeaseRequest(ns, rawQuery string) (string, int, error) {
	q, perr := parseQuery(rawQuery, "count")
	if perr != nil {
		return "", 0, perr
	}
	if !client.ValidNamespace(ns) {
		return "", 0, errBadNamespace
	}
	n, ok := parsePositive(q["count"], MaxLease)
	if !ok {
		return "", 0, errBadLeaseCount
	}
	return ns, n, nil
}

func (s *Server) handleLease(w http.ResponseWriter, r *http.Request) {
	name, count, err := parseLeaseRequest(r.PathValue("namespace"), r.URL.RawQuery)
	if err != nil {
		writeRequestError(w, err)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.RequestTimeout)
	defer cancel()
	l, err := s.lease(ctx, name, count)
	if err != nil {
		s.fail(w, r, name, err)
		return
	}
	// Milliseconds rounded down: the caller stops early rather than late.
	writeJSON(w, http.StatusOK, leaseJSON{Namespace: l.Namespace, Shard: l.Shard, First: l.First, Step: l.Step,
		Count: l.Count, ValidMS: l.Valid.Milliseconds(), Limited: l.Limited})
}

// lease reserves a lease of count IDs of namespace name through the
// namespace's client, on the same path as take.
func (s *Server) lease(ctx context.Context, name string, count int) (client.Lease, error) {
	var l client.Lease
	err := s.use(ctx, name, func(e *nsEntry) error {
		if !s.cfg.Cluster.Serving() {
			// Nothing is buffered for a lease: with every master's last
			// probe failed, say so at once instead of waiting for Redis.
			return ErrNoMasterServing
		}
		var err error
		if l, err = e.c.Lease(ctx, count); err != nil {
			return err
		}
		e.issued.Add(uint64(l.Count))
		e.head.observe(l.ID(l.Count-1), s.warned, name)
		return nil
	})
	return l, err
}
