package server

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/shardseq/shardseq/client"
)

// Limits of a token file.
const (
	// MinTokenLength is the shortest bearer token accepted: shorter ones
	// are guessable.
	MinTokenLength = 16
	// MaxTokenLength bounds one token (and the Authorization header read).
	MaxTokenLength = 512
	// MaxTokens bounds the tokens of one file.
	MaxTokens = 1000
	// maxTokenFileBytes bounds the file read.
	maxTokenFileBytes = 1 << 20
)

// ErrBadTokenFile is wrapped by every error of ParseTokens and
// LoadTokenFile.
var ErrBadTokenFile = errors.New("server: bad token file")

// Token is a bearer token and what it may do: one line of a token file.
type Token struct {
	// Secret is the bearer token itself.
	Secret string
	// Scopes are what the token may do, as a token file writes them:
	//
	//	ids            POST /v1/ids/{namespace} and /v1/leases/{namespace}, any namespace
	//	ids:PATTERN    the same, for the namespaces PATTERN matches (path.Match:
	//	               * any run of characters, ? one, [a-z] one of a class)
	//	read           GET /v1/namespaces, /v1/namespaces/{namespace}, /v1/shards;
	//	               /metrics and / when Config.AuthMetrics, AuthUI lock them
	//	admin          PUT and DELETE /v1/namespaces/{namespace}; implies read
	//
	// None (a bare token) is every scope, as before scopes existed.
	Scopes []string
	// Line is the token's line in its file (0: not from a file). Messages
	// name it, never the secret.
	Line int
}

// Scope names, as token files write them.
const (
	ScopeIDs   = "ids"
	ScopeRead  = "read"
	ScopeAdmin = "admin"
)

// maxPatternLength bounds a namespace pattern of an ids: scope.
const maxPatternLength = 128

// wantScopes says what a scope may be, for error messages.
const wantScopes = "want ids, ids:PATTERN, read or admin, separated by spaces after the token"

// ParseTokens reads bearer tokens, one per line, each optionally followed
// by its scopes (see Token.Scopes), e.g.
//
//	# orders service: IDs of orders and of every tenant-* namespace
//	9f86d081884c7d659a2feaa0c55ad015 ids:orders ids:tenant-*
//	# dashboards and operators
//	60303ae22b998861bce3b28f33eec1be read
//	fd61a03af4f77d870fc21e05e7e80678 admin ids   # every scope
//
// Fields are separated by spaces or tabs; a field starting with # ends the
// line; blank lines and lines starting with # are ignored. A token must be
// MinTokenLength to MaxTokenLength printable ASCII characters without
// spaces; a bare token has every scope. A token given twice must have the
// same scopes. At least one token is required. An error names the line and
// what is wanted, never a token (nor another field, which could be one).
func ParseTokens(r io.Reader) ([]Token, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadTokenFile, fmt.Sprintf(format, args...))
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxTokenFileBytes+1))
	sc.Buffer(make([]byte, 0, 4096), maxLineLength)
	var out []Token
	seen := map[string]int{} // secret: index in out
	read, line := 0, 0
	for sc.Scan() {
		line++
		read += len(sc.Bytes()) + 1
		if read > maxTokenFileBytes {
			return nil, bad("larger than %d bytes", maxTokenFileBytes)
		}
		fields := strings.FieldsFunc(sc.Text(), func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' })
		for i, f := range fields {
			if strings.HasPrefix(f, "#") {
				fields = fields[:i]
				break
			}
		}
		if len(fields) == 0 {
			continue
		}
		t := fields[0]
		switch {
		case len(t) < MinTokenLength:
			return nil, bad("line %d: token shorter than %d characters (generate one with: openssl rand -hex 32)", line, MinTokenLength)
		case len(t) > MaxTokenLength:
			return nil, bad("line %d: token longer than %d characters", line, MaxTokenLength)
		case !printableToken(t):
			return nil, bad("line %d: a token may contain printable ASCII characters only", line)
		}
		tok := Token{Secret: t, Line: line}
		for i, f := range fields[1:] {
			if err := checkScope(f); err != nil {
				return nil, bad("line %d: field %d after the token: %v", line, i+1, err)
			}
			if slices.Contains(tok.Scopes, f) {
				return nil, bad("line %d: field %d after the token repeats a scope", line, i+1)
			}
			tok.Scopes = append(tok.Scopes, f)
		}
		if j, dup := seen[t]; dup {
			if !sameScopes(out[j].Scopes, tok.Scopes) {
				return nil, bad("line %d: the token of line %d again, with other scopes; give each token one line", line, out[j].Line)
			}
			continue
		}
		if len(out) >= MaxTokens {
			return nil, bad("more than %d tokens", MaxTokens)
		}
		seen[t] = len(out)
		out = append(out, tok)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, bad("line %d: longer than %d characters", line+1, maxLineLength)
		}
		return nil, bad("%v", err)
	}
	if len(out) == 0 {
		return nil, bad("no token in it (one per line, optionally followed by scopes; blank lines and # comments are ignored)")
	}
	return out, nil
}

// maxLineLength bounds a line of a token file: a token and a few scopes.
const maxLineLength = MaxTokenLength + 4096

// checkScope checks one scope as a token file writes it. Its error says
// what is wanted and quotes nothing of s, which may be a misplaced token.
func checkScope(s string) error {
	switch s {
	case ScopeIDs, ScopeRead, ScopeAdmin:
		return nil
	}
	p, ok := strings.CutPrefix(s, ScopeIDs+":")
	if !ok {
		return errors.New("not a scope; " + wantScopes)
	}
	if err := checkPattern(p); err != nil {
		return fmt.Errorf("ids: %w", err)
	}
	return nil
}

// checkPattern checks a namespace pattern of an ids: scope: path.Match
// syntax over the characters of namespace names.
func checkPattern(p string) error {
	const want = "want a namespace name or a pattern of its characters (A-Z a-z 0-9 _ . -) and the wildcards * ? [...]"
	if p == "" || len(p) > maxPatternLength {
		return fmt.Errorf("pattern empty or longer than %d characters; %s", maxPatternLength, want)
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; !nameChar(c) && !strings.ContainsRune("*?[]^", rune(c)) {
			return errors.New("pattern has a character no namespace has; " + want)
		}
	}
	if _, err := path.Match(p, ""); err != nil {
		return errors.New("malformed pattern (an unclosed [ ?); " + want)
	}
	return nil
}

// nameChar reports whether c may be in a namespace name.
func nameChar(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-'
}

func sameScopes(a, b []string) bool {
	return slices.Equal(slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b)))
}

func printableToken(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] > '~' {
			return false
		}
	}
	return true
}

// LoadTokenFile reads the tokens of a file (see ParseTokens). warning is
// non-empty when the file can be read by other users than its owner: the
// tokens are secrets.
func LoadTokenFile(path string) (tokens []Token, warning string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %w", ErrBadTokenFile, err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil {
		if !fi.Mode().IsRegular() {
			return nil, "", fmt.Errorf("%w: %s is not a regular file", ErrBadTokenFile, path)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			warning = fmt.Sprintf("%s is readable by other users (mode %v); it holds secrets: chmod 600 it", path, fi.Mode().Perm())
		}
	}
	tokens, err = ParseTokens(f)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return tokens, warning, nil
}

// scope is what a route needs of a token. authorize and require take it;
// the zero value, scopeAny, needs a valid token and nothing more.
type scope uint8

const (
	scopeAny   scope = 0
	scopeIDs   scope = 1 << iota // of a namespace: see grant.ids
	scopeRead                    // read namespaces, shards, metrics, the page
	scopeAdmin                   // create and delete namespaces
)

func (s scope) String() string {
	switch s {
	case scopeIDs:
		return ScopeIDs
	case scopeRead:
		return ScopeRead
	case scopeAdmin:
		return ScopeAdmin
	}
	return "any"
}

// grant is what one token may do, compiled from its Token.Scopes.
type grant struct {
	scopes scope    // scopeRead, scopeAdmin; scopeIDs when ids is not empty
	ids    []string // namespace patterns of scopeIDs; "*" for plain "ids"
	where  string   // "line 3" or "Tokens[0]": names the token in messages
}

// compileGrant compiles t; where names it in errors.
func compileGrant(t Token, where string) (grant, error) {
	g := grant{where: where}
	if len(t.Scopes) == 0 {
		return grant{scopes: scopeIDs | scopeRead | scopeAdmin, ids: []string{"*"}, where: where}, nil
	}
	for _, s := range t.Scopes {
		if err := checkScope(s); err != nil {
			return grant{}, err
		}
		switch s {
		case ScopeIDs:
			g.scopes |= scopeIDs
			g.ids = append(g.ids, "*")
		case ScopeRead:
			g.scopes |= scopeRead
		case ScopeAdmin:
			g.scopes |= scopeAdmin | scopeRead
		default:
			g.scopes |= scopeIDs
			g.ids = append(g.ids, strings.TrimPrefix(s, ScopeIDs+":"))
		}
	}
	return g, nil
}

// everything reports whether g may do all a token can: IDs of every
// namespace, and administer them.
func (g grant) everything() bool {
	if g.scopes&scopeAdmin == 0 {
		return false
	}
	for _, p := range g.ids {
		if strings.Trim(p, "*") == "" {
			return true
		}
	}
	return false
}

// allows reports whether g grants sc (of namespace ns, for scopeIDs).
func (g grant) allows(sc scope, ns string) bool {
	if g.scopes&sc != sc {
		return false
	}
	if sc != scopeIDs {
		return true
	}
	for _, p := range g.ids {
		if ok, _ := path.Match(p, ns); ok {
			return true
		}
	}
	return false
}

// Errors of authorize, and their answers: 401 unauthorized, 403 forbidden.
var (
	// errUnauthorized: no valid bearer token.
	errUnauthorized = errors.New("missing or invalid bearer token")
	// errForbidden: a valid token without the scope the request needs.
	errForbidden = errors.New("the token lacks the scope this request needs")
)

// authError is a refusal of authorize: it wraps errUnauthorized or
// errForbidden, with the public message, and carries the WWW-Authenticate
// challenge to answer with (RFC 6750 section 3).
type authError struct {
	err       error // a *publicError
	challenge string
}

func (e *authError) Error() string { return e.err.Error() }
func (e *authError) Unwrap() error { return e.err }

// challengeOf is the WWW-Authenticate value of an error of authorize, ""
// for any other error.
func challengeOf(err error) string {
	if ae := (*authError)(nil); errors.As(err, &ae) {
		return ae.challenge
	}
	return ""
}

// authenticator checks bearer tokens in constant time: the presented token
// and every accepted one are hashed with SHA-256 and all digests are
// compared, so neither a token's content nor its length nor which token
// matched leaks through timing. It then checks the matched token's scopes.
type authenticator struct {
	digests [][sha256.Size]byte
	grants  []grant // of digests[i]
}

// newAuthenticator compiles the tokens: bare ones (every scope) and
// scoped. No token: nil, which lets everything through. The tokens must
// have passed Config.Validate.
func newAuthenticator(bare []string, scoped []Token) *authenticator {
	tokens, wheres := allTokens(bare, scoped)
	if len(tokens) == 0 {
		return nil
	}
	a := &authenticator{}
	for i, t := range tokens {
		g, err := compileGrant(t, wheres[i])
		if err != nil {
			panic("server: token not validated: " + err.Error()) // Config.Validate refuses it first
		}
		a.digests = append(a.digests, sha256.Sum256([]byte(t.Secret)))
		a.grants = append(a.grants, g)
	}
	return a
}

// allTokens is bare and scoped as Tokens, with the name each has in
// messages: its line, or its place in the configuration.
func allTokens(bare []string, scoped []Token) ([]Token, []string) {
	var out []Token
	var wheres []string
	for i, t := range bare {
		out = append(out, Token{Secret: t})
		wheres = append(wheres, fmt.Sprintf("Tokens[%d]", i))
	}
	for i, t := range scoped {
		out = append(out, t)
		if t.Line > 0 {
			wheres = append(wheres, fmt.Sprintf("line %d", t.Line))
		} else {
			wheres = append(wheres, fmt.Sprintf("ScopedTokens[%d]", i))
		}
	}
	return out, wheres
}

// everything names the tokens that have every scope ("line 3",
// "Tokens[0]"), for the warning at start.
func (a *authenticator) everything() []string {
	if a == nil {
		return nil
	}
	var out []string
	for _, g := range a.grants {
		if g.everything() && !slices.Contains(out, g.where) {
			out = append(out, g.where)
		}
	}
	return out
}

// lookup returns the grant of token, or false. Every digest is compared
// and the match is selected without a branch on which one matched.
func (a *authenticator) lookup(token string) (grant, bool) {
	d := sha256.Sum256([]byte(token))
	found, idx := 0, 0
	for i := range a.digests {
		eq := subtle.ConstantTimeCompare(d[:], a.digests[i][:])
		idx = subtle.ConstantTimeSelect(eq, i, idx)
		found |= eq
	}
	if found != 1 {
		return grant{}, false
	}
	return a.grants[idx], true
}

// valid reports whether token is one of the accepted ones, whatever its
// scopes.
func (a *authenticator) valid(token string) bool {
	_, ok := a.lookup(token)
	return ok
}

// bearerToken extracts the token of an "Authorization: Bearer <token>"
// header (the scheme is case-insensitive, RFC 6750).
func bearerToken(h string) (string, bool) {
	const scheme = "bearer "
	if len(h) < len(scheme) || !strings.EqualFold(h[:len(scheme)], scheme) {
		return "", false
	}
	t := strings.TrimSpace(h[len(scheme):])
	if t == "" || len(t) > MaxTokenLength {
		return "", false
	}
	return t, true
}

// authorize decides whether request r may do what needs sc, of namespace
// ns for scopeIDs (ignored otherwise): nil, or an error wrapping
// errUnauthorized (answer 401) or errForbidden (403), with the public
// message and challengeOf it. A nil authenticator allows everything.
func (a *authenticator) authorize(r *http.Request, sc scope, ns string) error {
	return a.authorizeHeader(r.Header.Get("Authorization"), sc, ns)
}

// authorizeHeader is authorize for the value hdr of an Authorization
// header (or of gRPC "authorization" metadata).
func (a *authenticator) authorizeHeader(hdr string, sc scope, ns string) error {
	if a == nil {
		return nil
	}
	if hdr == "" {
		return &authError{public(errUnauthorized, "missing bearer token: send Authorization: Bearer <token>"), `Bearer realm="shardseq"`}
	}
	t, ok := bearerToken(hdr)
	if !ok {
		return &authError{public(errUnauthorized, "invalid bearer token"), `Bearer realm="shardseq", error="invalid_token"`}
	}
	return a.authorizeToken(t, sc, ns)
}

// authorizeToken is authorize for a bearer token itself.
func (a *authenticator) authorizeToken(token string, sc scope, ns string) error {
	if a == nil {
		return nil
	}
	g, ok := a.lookup(token)
	if !ok {
		return &authError{public(errUnauthorized, "invalid bearer token"), `Bearer realm="shardseq", error="invalid_token"`}
	}
	if g.allows(sc, ns) {
		return nil
	}
	var msg string
	switch {
	case sc == scopeIDs && g.scopes&scopeIDs != 0:
		which := "this namespace"
		if client.ValidNamespace(ns) {
			which = strconv.Quote(ns)
		}
		msg = "this token may ask for IDs of other namespaces, not of " + which + " (its scopes ids:PATTERN do not match it)"
	case sc == scopeRead:
		msg = "this token lacks the scope read (or admin, which implies it) that this request needs"
	default:
		msg = "this token lacks the scope " + sc.String() + " that this request needs"
	}
	return &authError{public(errForbidden, "%s", msg), fmt.Sprintf(`Bearer realm="shardseq", error="insufficient_scope", scope="%s"`, sc)}
}

// require wraps h: requests without a valid bearer token get 401, whatever
// its scopes. A nil authenticator lets everything through. Routes that
// need a scope use requireScope.
func (a *authenticator) require(h http.HandlerFunc) http.HandlerFunc {
	return a.requireScope(scopeAny, h)
}

// requireScope wraps h: requests without a valid bearer token get 401,
// those whose token lacks sc 403 (for scopeIDs: of the namespace in the
// path, {namespace}). A nil authenticator lets everything through.
func (a *authenticator) requireScope(sc scope, h http.HandlerFunc) http.HandlerFunc {
	if a == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if err := a.authorize(r, sc, r.PathValue("namespace")); err != nil {
			w.Header().Set("WWW-Authenticate", challengeOf(err))
			writeError(w, err)
			return
		}
		h(w, r)
	}
}

// TLSConfig loads a certificate and its key for the HTTP server and returns
// a configuration that accepts TLS 1.2 and later only. The files are read
// once, at start; a bad pair is an error here, not at the first handshake.
func TLSConfig(certFile, keyFile string) (*tls.Config, error) {
	if certFile == "" || keyFile == "" {
		return nil, errors.New("server: TLS needs both a certificate and a key file")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("server: loading TLS certificate %s and key %s: %w", certFile, keyFile, err)
	}
	// h2 for gRPC (which needs HTTP/2) on the same port as HTTP/1.1.
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"h2", "http/1.1"}}, nil
}

// ReadSecretFile reads a one-line secret (e.g. a Redis password) from a
// file, trimming the line break. An empty file is an error.
func ReadSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s: not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, 4097))
	if err != nil {
		return "", err
	}
	if len(b) > 4096 {
		return "", fmt.Errorf("%s: larger than 4096 bytes; want one line", path)
	}
	s := string(bytes.TrimRight(b, "\r\n"))
	if strings.ContainsAny(s, "\r\n") {
		return "", fmt.Errorf("%s: more than one line; want the secret alone", path)
	}
	if s == "" {
		return "", fmt.Errorf("%s: empty", path)
	}
	return s, nil
}
