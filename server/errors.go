package server

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
)

// Error codes: the "code" of every error body, {"error":"...","code":"..."}.
// Clients branch on the code, never on the text, which may change. README
// "HTTP API" and api/openapi.yaml list them; a test keeps the three equal.
const (
	codeBadNamespace      = "bad_namespace"
	codeBadCount          = "bad_count"
	codeNamespaceConflict = "namespace_conflict"
	codeUnavailable       = "unavailable"
	codeUnauthorized      = "unauthorized"
	codeForbidden         = "forbidden"
	codeNotFound          = "not_found"
	codeMethodNotAllowed  = "method_not_allowed"
	codeInternal          = "internal"
	codeNamespaceNotFound = "namespace_not_found"
	codeNamespaceDeleted  = "namespace_deleted"
	codeBadBody           = "bad_body"
	codeBadLimit          = "bad_limit"
	codeBadCursor         = "bad_cursor"
	codeTooManyNamespaces = "too_many_namespaces"

	// Reserved: documented, so clients can know them, but not sent yet.
	codeRateLimited = "rate_limited"
)

// errorCodes is the documented set, sent and reserved.
var errorCodes = []string{codeBadNamespace, codeBadCount, codeNamespaceConflict, codeUnavailable, codeUnauthorized,
	codeForbidden, codeNotFound, codeMethodNotAllowed, codeInternal, codeNamespaceNotFound, codeNamespaceDeleted, codeBadBody,
	codeBadLimit, codeBadCursor, codeTooManyNamespaces, codeRateLimited}

// Errors of a request that never reached Redis. Their text is the public
// message unless a publicError says more.
var (
	errBadNamespace     = errors.New("namespace must match " + client.NamespacePattern)
	errBadCount         = errors.New("count must be an integer from 1 to " + strconv.Itoa(MaxCount))
	errNotFound         = errors.New("no route; see GET / (health page), POST /v1/ids/{namespace}, /v1/namespaces, GET /v1/shards, GET /metrics, GET /healthz, GET /readyz")
	errNamespaceNotOpen = errors.New("namespace not open on this server; it opens on its first POST /v1/ids/{namespace}")
	errMethodNotAllowed = errors.New("method not allowed")
	errNotReady         = errors.New("not ready")
	// Of the namespace routes (namespaces.go).
	errBadBody           = errors.New(`body must be a JSON object {"shards":N,"start":S,"strict":B}, every member optional, at most 4096 bytes`)
	errBadLimit          = errors.New("limit must be an integer from 1 to " + strconv.Itoa(client.MaxListLimit))
	errBadCursor         = errors.New("cursor must be a namespace name (next_cursor of the previous page)")
	errNamespaceConflict = errors.New("namespace conflict")
)

// Retry-After, in seconds.
const (
	// retryShort: an open breaker tries its shard again after
	// failover.BreakerConfig.OpenFor (1s by default), and Redis promotes a
	// replica within a few seconds.
	retryShort = 1
)

// apiError is the answer to a failed request.
type apiError struct {
	status     int
	code       string
	msg        string // public: ours, one line, no node address but a master an operator must fix
	retryAfter int    // seconds; 0: no Retry-After header
}

// errorOf decides the answer to err: status, code, public message and
// Retry-After. Every error answer of the server goes through it. The error
// itself, with node addresses and the joined errors of every shard, is for
// the log only.
func errorOf(err error) apiError {
	var netErr net.Error
	var e apiError
	switch {
	case errors.Is(err, errBadNamespace), errors.Is(err, client.ErrInvalidNamespace):
		e = apiError{http.StatusBadRequest, codeBadNamespace, errBadNamespace.Error(), 0}
	case errors.Is(err, errBadCount):
		e = apiError{http.StatusBadRequest, codeBadCount, errBadCount.Error(), 0}
	case errors.Is(err, errBadBody):
		e = apiError{http.StatusBadRequest, codeBadBody, errBadBody.Error(), 0}
	case errors.Is(err, errBadLimit):
		e = apiError{http.StatusBadRequest, codeBadLimit, errBadLimit.Error(), 0}
	case errors.Is(err, errBadCursor):
		e = apiError{http.StatusBadRequest, codeBadCursor, errBadCursor.Error(), 0}
	case errors.Is(err, errUnauthorized):
		e = apiError{http.StatusUnauthorized, codeUnauthorized, errUnauthorized.Error(), 0}
	case errors.Is(err, errForbidden):
		e = apiError{http.StatusForbidden, codeForbidden, errForbidden.Error(), 0}
	case errors.Is(err, errNotFound):
		e = apiError{http.StatusNotFound, codeNotFound, errNotFound.Error(), 0}
	case errors.Is(err, errNamespaceNotOpen):
		e = apiError{http.StatusNotFound, codeNotFound, errNamespaceNotOpen.Error(), 0}
	case errors.Is(err, errMethodNotAllowed):
		e = apiError{http.StatusMethodNotAllowed, codeMethodNotAllowed, errMethodNotAllowed.Error(), 0}
	case errors.Is(err, client.ErrNamespaceDeleted):
		e = apiError{http.StatusNotFound, codeNamespaceDeleted,
			"the namespace was deleted; PUT /v1/namespaces/{namespace} recreates it (it continues above every ID it handed out)", 0}
	case errors.Is(err, client.ErrNamespaceNotFound):
		e = apiError{http.StatusNotFound, codeNamespaceNotFound,
			"the namespace does not exist; PUT /v1/namespaces/{namespace} creates it", 0}
	case errors.Is(err, client.ErrShardCountMismatch), errors.Is(err, client.ErrSettingsMismatch), errors.Is(err, errNamespaceConflict):
		e = apiError{http.StatusConflict, codeNamespaceConflict,
			"the namespace exists in Redis with another shard count or start than asked for; use its own, or a new namespace", 0}
	case errors.Is(err, ErrTooManyNamespaces):
		e = apiError{http.StatusTooManyRequests, codeTooManyNamespaces, "too many new namespaces; retry later", retryShort}
		if re := (*RetryError)(nil); errors.As(err, &re) {
			e.msg, e.retryAfter = re.Msg, max(int(math.Ceil(re.RetryAfter.Seconds())), retryShort)
		}
	case errors.Is(err, client.ErrCreating), errors.Is(err, client.ErrCreationLate):
		e = apiError{http.StatusServiceUnavailable, codeUnavailable,
			"another creation of the namespace is unfinished and may still write for a few seconds; retry", retryShort}
	case errors.Is(err, ErrNoMasterServing):
		e = apiError{http.StatusServiceUnavailable, codeUnavailable,
			"no Redis master answered its last probe: nothing can be reserved now", retryShort}
	case errors.Is(err, errNotReady):
		e = apiError{http.StatusServiceUnavailable, codeUnavailable, errNotReady.Error(), retryShort}
	case errors.Is(err, ErrClosed), errors.Is(err, client.ErrClosed), errors.Is(err, cluster.ErrClosed), errors.Is(err, redis.ErrClosed):
		e = apiError{http.StatusServiceUnavailable, codeUnavailable, "the server is shutting down", retryShort}
	case errors.Is(err, client.ErrStalled):
		e = apiError{http.StatusServiceUnavailable, codeUnavailable, "timed out: this server was stopped (paused) while it waited for Redis", retryShort}
	case errors.Is(err, client.ErrNoHealthyShard):
		e = apiError{http.StatusServiceUnavailable, codeUnavailable,
			"no shard of the namespace can serve now: their masters are down or not replicating", retryShort}
	case errors.Is(err, context.DeadlineExceeded):
		e = apiError{http.StatusServiceUnavailable, codeUnavailable, "timed out: Redis did not answer in time", retryShort}
	case errors.Is(err, context.Canceled):
		e = apiError{http.StatusServiceUnavailable, codeUnavailable, "request cancelled", retryShort}
	case errors.Is(err, cluster.ErrUnreachable), errors.Is(err, cluster.ErrNoMaster), cluster.IsClusterDown(err), errors.As(err, &netErr):
		e = apiError{http.StatusServiceUnavailable, codeUnavailable, "the Redis Cluster cannot be reached or is not serving", retryShort}
	case errors.Is(err, client.ErrNamespaceLost):
		e = apiError{http.StatusInternalServerError, codeInternal,
			"the namespace's record was lost with its masters' data; it is not created anew, which could repeat IDs (see the server log)", 0}
	case errors.Is(err, client.ErrNotReplicated):
		// A master whose writes no replica confirms (it has none yet, or
		// its replica is down): WAIT cannot succeed until an operator acts,
		// so it is unavailability, not a fault of ours.
		e = apiError{http.StatusServiceUnavailable, codeUnavailable,
			"a Redis master has no replica confirming its writes (every master holding shardseq keys needs one); add or repair its replica", retryShort}
		if ne := (*client.NodeError)(nil); errors.As(err, &ne) && ne.Addr != "" {
			e.msg = "Redis master " + ne.Addr + " has no replica confirming its writes (every master holding shardseq keys needs one); add or repair its replica"
		}
	default:
		e = apiError{http.StatusInternalServerError, codeInternal, "internal error", 0}
	}
	if pe := (*publicError)(nil); errors.As(err, &pe) {
		e.msg = pe.msg
	}
	return e
}

// publicError gives an error a more precise public message, written by us
// from values the caller sent or the server's configuration, never from
// another error's text. Error() is the wrapped error's, for the log.
type publicError struct {
	err error
	msg string
}

func (e *publicError) Error() string { return e.err.Error() }
func (e *publicError) Unwrap() error { return e.err }

// public wraps err with the public message format, args.
func public(err error, format string, args ...any) error {
	return &publicError{err: err, msg: fmt.Sprintf(format, args...)}
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
}

// header sets the Retry-After header of e, if it has one.
func (e apiError) header(h http.Header) {
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.retryAfter))
	}
}

// writeError answers err as errorOf decides and returns that answer.
func writeError(w http.ResponseWriter, err error) apiError {
	e := errorOf(err)
	e.header(w.Header())
	writeJSON(w, e.status, errorBody{Error: e.msg, Code: e.code})
	return e
}
