package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/shardseq/shardseq/client"
)

// Namespaces as objects:
//
//	PUT    /v1/namespaces/{namespace}  create (201), or check an existing one (200; 409 if other settings)
//	GET    /v1/namespaces?limit=&cursor=  list, sorted by name, paginated
//	GET    /v1/namespaces/{namespace}  settings and usage
//	DELETE /v1/namespaces/{namespace}  retire behind a tombstone (204)
//
// They talk to Redis through the client's namespace calls; none needs the namespace open
// on this server. They sit under /v1, so the bearer tokens apply: GET
// needs the scope read, PUT and DELETE admin.

// errReservedName refuses to create a namespace named "." or "..".
var errReservedName = public(errBadNamespace, `namespace names "." and ".." cannot be created: URL paths cannot name them`)

// DefaultListLimit is the page size of GET /v1/namespaces without ?limit=.
const DefaultListLimit = 100

// namespaceRoutes registers the namespace routes on mux; routes() calls it.
func (s *Server) namespaceRoutes(mux *http.ServeMux, api *authenticator) {
	mux.HandleFunc("PUT /v1/namespaces/{namespace}", api.requireScope(scopeAdmin, strictQuery(s.handlePutNamespace)))
	mux.HandleFunc("GET /v1/namespaces/{namespace}", api.requireScope(scopeRead, strictQuery(s.handleGetNamespace)))
	mux.HandleFunc("DELETE /v1/namespaces/{namespace}", api.requireScope(scopeAdmin, strictQuery(s.handleDeleteNamespace)))
	mux.HandleFunc("/v1/namespaces/{namespace}", api.require(methodNotAllowed(http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete)))
	mux.HandleFunc("GET /v1/namespaces", api.requireScope(scopeRead, strictQuery(s.handleListNamespaces, "limit", "cursor")))
	mux.HandleFunc("/v1/namespaces", api.require(methodNotAllowed(http.MethodGet, http.MethodHead)))
	mux.HandleFunc("/v1/namespaces/", api.require(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errBadNamespace) // none, or with a slash
	}))
}

// namespaceJSON is a namespace in the answers of the namespace routes. For
// state lost or unknown (a list only) just the name and state are known.
type namespaceJSON struct {
	Name       string     `json:"name"`
	State      string     `json:"state"`
	Deleted    *bool      `json:"deleted,omitempty"`
	Shards     int        `json:"shards,omitempty"`
	Start      int64      `json:"start,omitempty"`
	Strict     *bool      `json:"strict,omitempty"`
	Generation int64      `json:"generation,omitempty"`
	CreatedAt  *time.Time `json:"created_at,omitempty"`
	Usage      *usageJSON `json:"usage,omitempty"`
}

// usageJSON is client.Usage.
type usageJSON struct {
	Reserved      int64   `json:"reserved"`
	SpaceLeft     int64   `json:"space_left"`
	Used          float64 `json:"used"`
	HighestID     int64   `json:"highest_id"`
	MaxID         int64   `json:"max_id"`
	ShardsChecked int     `json:"shards_checked"`
}

func namespaceOf(in client.Info) namespaceJSON {
	out := namespaceJSON{Name: in.Name, State: string(in.State)}
	if in.State != client.StateActive && in.State != client.StateDeleted {
		return out
	}
	deleted, strict := in.State == client.StateDeleted, in.Strict
	out.Deleted, out.Strict = &deleted, &strict
	out.Shards, out.Start, out.Generation = in.Shards, in.Start, in.Generation
	if !in.CreatedAt.IsZero() {
		at := in.CreatedAt.UTC()
		out.CreatedAt = &at
	}
	return out
}

// listJSON is the body of GET /v1/namespaces.
type listJSON struct {
	Namespaces []namespaceJSON `json:"namespaces"`
	NextCursor string          `json:"next_cursor"`
}

// namespaceBody is the body of PUT /v1/namespaces/{namespace}; a member left
// out (or null) takes the stored value of an existing namespace, or the
// default of a new one.
type namespaceBody struct {
	Shards *int   `json:"shards"`
	Start  *int64 `json:"start"`
	Strict *bool  `json:"strict"`
}

// decodeNamespaceBody reads a PUT body: empty, or one JSON object with no
// member but shards (1 to client.MaxShards), start (1 to maxStart) and
// strict, each written as JSON writes it (an integer literal, true or
// false; null is the same as leaving it out). Names are matched exactly.
// Its errors wrap errBadBody, with a public message that says what is
// wrong.
func decodeNamespaceBody(b []byte, maxStart int64) (client.Spec, error) {
	bad := func(format string, args ...any) error {
		return public(errBadBody, "body: "+format+`; want {"shards":N,"start":S,"strict":B}, every member optional`, args...)
	}
	b = bytes.Trim(b, " \t\r\n") // JSON's whitespace
	if len(b) == 0 {
		return client.Spec{}, nil
	}
	if b[0] != '{' {
		return client.Spec{}, bad("not a JSON object")
	}
	var members map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&members); err != nil {
		if syn := (*json.SyntaxError)(nil); errors.As(err, &syn) {
			return client.Spec{}, bad("not valid JSON at byte %d", syn.Offset)
		}
		return client.Spec{}, bad("not a valid object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return client.Spec{}, bad("more than one JSON value")
	}
	if name, dup := duplicateMember(b); dup {
		return client.Spec{}, bad("member %s given more than once", quoted(name))
	}
	names := slices.Sorted(maps.Keys(members))
	var body namespaceBody
	for _, name := range names {
		var target any
		want := "an integer"
		switch name {
		case "shards":
			target = &body.Shards
		case "start":
			target = &body.Start
		case "strict":
			target, want = &body.Strict, "true or false"
		default:
			return client.Spec{}, bad("unknown member %s", quoted(name))
		}
		if err := json.Unmarshal(members[name], target); err != nil {
			return client.Spec{}, bad("%s must be %s", quoted(name), want)
		}
	}
	switch {
	case body.Shards != nil && !client.ValidShards(*body.Shards):
		return client.Spec{}, bad("shards %d: want 1 to %d", *body.Shards, client.MaxShards)
	case body.Start != nil && (*body.Start < 1 || *body.Start > maxStart):
		return client.Spec{}, bad("start %d: want 1 to %d", *body.Start, maxStart)
	}
	return client.Spec{Shards: body.Shards, Start: body.Start, Strict: body.Strict}, nil
}

// duplicateMember reports the first member name that the JSON object b
// (valid JSON, checked by the caller) has twice. encoding/json keeps the
// last of them silently; {"shards":4,"shards":5} is probably a mistake.
func duplicateMember(b []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return "", false
		}
		name, _ := t.(string)
		if seen[name] {
			return name, true
		}
		seen[name] = true
		var skip json.RawMessage // the member's value, whatever its depth
		if err := dec.Decode(&skip); err != nil {
			return "", false
		}
	}
	return "", false
}

// reservedName reports the names a namespace may not be created with: "."
// and ".." are valid names (a library may have made one, and it keeps
// working), but no URL path can name them, as clients and servers clean
// them away.
func reservedName(name string) bool { return name == "." || name == ".." }

// quoted quotes s for a message, cut to 64 bytes of valid UTF-8.
func quoted(s string) string {
	if len(s) > 64 {
		s = s[:64]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "..."
	}
	return strconv.Quote(strings.ToValidUTF8(s, "?"))
}

// adminContext bounds a namespace route's work in Redis.
func (s *Server) adminContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), s.cfg.OpenTimeout)
}

// closedAnswer answers 503 once the server is closed, as every route does,
// and reports whether it did.
func (s *Server) closedAnswer(w http.ResponseWriter) bool {
	if s.pool.isClosed() {
		writeError(w, ErrClosed)
		return true
	}
	return false
}

// namespaceArg is the {namespace} of the path, or false once it answered
// 400 for a bad name or 503 for a closed server.
func (s *Server) namespaceArg(w http.ResponseWriter, r *http.Request) (string, bool) {
	name := r.PathValue("namespace")
	if !client.ValidNamespace(name) {
		writeError(w, errBadNamespace)
		return "", false
	}
	return name, !s.closedAnswer(w)
}

func (s *Server) handlePutNamespace(w http.ResponseWriter, r *http.Request) {
	name, ok := s.namespaceArg(w, r)
	if !ok {
		return
	}
	if reservedName(name) {
		writeError(w, errReservedName)
		return
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, public(errBadBody, "body: larger than %d bytes", tooBig.Limit))
		} else {
			writeError(w, public(errBadBody, "body: cannot be read"))
		}
		return
	}
	spec, err := decodeNamespaceBody(b, client.MaxStart(s.cfg.Client.MaxID))
	if err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := s.adminContext(r)
	defer cancel()
	ns, err := s.putNamespace(ctx, name, spec)
	if err != nil {
		s.fail(w, r, name, err)
		return
	}
	status := http.StatusOK
	if ns.Created {
		status = http.StatusCreated
		w.Header().Set("Location", "/v1/namespaces/"+name)
	}
	writeJSON(w, status, namespaceOf(ns.Info))
}

// putNamespace creates namespace name as spec says, or checks it against
// spec: PUT /v1/namespaces/{namespace} and its gRPC twin, after they
// checked name and spec.
func (s *Server) putNamespace(ctx context.Context, name string, spec client.Spec) (client.Put, error) {
	ns, err := client.PutNamespace(ctx, s.cfg.Cluster, name, spec, s.cfg.Shards, s.cfg.Client)
	if errors.Is(err, client.ErrShardCountMismatch) || errors.Is(err, client.ErrSettingsMismatch) {
		err = s.conflict(ctx, name, err)
	}
	if err != nil {
		return ns, err
	}
	if ns.Created {
		s.log.Info("namespace created", "namespace", name, "shards", ns.Shards, "start", ns.Start, "strict", ns.Strict,
			"recreated", ns.Recreated, "generation", ns.Generation)
	}
	return ns, nil
}

// conflict gives a settings mismatch of namespace name a public message
// with the stored settings.
func (s *Server) conflict(ctx context.Context, name string, err error) error {
	in := client.ReadNamespace(ctx, s.cfg.Cluster, name)
	switch in.State {
	case client.StateActive:
		return public(err, "namespace %q exists with shards %d, start %d, strict %v; PUT those, or leave them out", name, in.Shards, in.Start, in.Strict)
	case client.StateDeleted:
		return public(err, "namespace %q was deleted; it can be recreated only with its shards %d and start %d (another N or start could repeat IDs)",
			name, in.Shards, in.Start)
	}
	return err
}

func (s *Server) handleGetNamespace(w http.ResponseWriter, r *http.Request) {
	name, ok := s.namespaceArg(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.adminContext(r)
	defer cancel()
	d, err := client.DescribeNamespace(ctx, s.cfg.Cluster, name, s.cfg.Client)
	if err != nil {
		s.fail(w, r, name, err)
		return
	}
	out := namespaceOf(d.Info)
	u := d.Usage
	out.Usage = &usageJSON{Reserved: u.Reserved, SpaceLeft: u.SpaceLeft, Used: u.Used(), HighestID: u.HighestID, MaxID: u.MaxID, ShardsChecked: u.Checked}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleDeleteNamespace(w http.ResponseWriter, r *http.Request) {
	name, ok := s.namespaceArg(w, r)
	if !ok {
		return
	}
	ctx, cancel := s.adminContext(r)
	defer cancel()
	if _, err := s.deleteNamespace(ctx, name); err != nil {
		if errors.Is(err, errNamespaceConflict) {
			writeError(w, err) // not Redis's failure: nothing to log
		} else {
			s.fail(w, r, name, err)
		}
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
}

// deleteNamespace retires namespace name (not the default one) and closes
// it on this server: DELETE /v1/namespaces/{namespace} and its gRPC twin.
// It reports whether this call deleted it.
func (s *Server) deleteNamespace(ctx context.Context, name string) (bool, error) {
	if name == DefaultNamespace {
		return false, public(errNamespaceConflict, "namespace %q is opened by every server at start (readiness) and cannot be deleted", name)
	}
	deleted, err := client.DeleteNamespace(ctx, s.cfg.Cluster, name, s.cfg.Client)
	if err != nil {
		return false, err
	}
	s.closeNamespace(name)
	if deleted {
		s.log.Info("namespace deleted", "namespace", name)
	}
	return deleted, nil
}

func (s *Server) handleListNamespaces(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit := DefaultListLimit
	if q.Has("limit") {
		n, ok := parsePositive(q.Get("limit"), client.MaxListLimit)
		if !ok {
			writeError(w, errBadLimit)
			return
		}
		limit = n
	}
	cursor := q.Get("cursor")
	if cursor != "" && !client.ValidNamespace(cursor) { // "": the first page, as next_cursor "" ends the list
		writeError(w, errBadCursor)
		return
	}
	if s.closedAnswer(w) {
		return
	}
	ctx, cancel := s.adminContext(r)
	defer cancel()
	page, err := client.ListNamespaces(ctx, s.cfg.Cluster, cursor, limit)
	if err != nil {
		s.fail(w, r, "", err)
		return
	}
	out := listJSON{Namespaces: make([]namespaceJSON, 0, len(page.Namespaces)), NextCursor: page.Next}
	for _, in := range page.Namespaces {
		out.Namespaces = append(out.Namespaces, namespaceOf(in))
	}
	writeJSON(w, http.StatusOK, out)
}
