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
	"strings"
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

// ParseTokens reads bearer tokens, one per line. Surrounding white space is
// trimmed; blank lines and lines starting with # are ignored. A token must
// be MinTokenLength to MaxTokenLength printable ASCII characters without
// spaces. At least one token is required.
func ParseTokens(r io.Reader) ([]string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadTokenFile, fmt.Sprintf(format, args...))
	}
	sc := bufio.NewScanner(io.LimitReader(r, maxTokenFileBytes+1))
	sc.Buffer(make([]byte, 0, 4096), MaxTokenLength+4096)
	var out []string
	seen := map[string]bool{}
	read, line := 0, 0
	for sc.Scan() {
		line++
		read += len(sc.Bytes()) + 1
		if read > maxTokenFileBytes {
			return nil, bad("larger than %d bytes", maxTokenFileBytes)
		}
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		switch {
		case len(t) < MinTokenLength:
			return nil, bad("line %d: token shorter than %d characters (generate one with: openssl rand -hex 32)", line, MinTokenLength)
		case len(t) > MaxTokenLength:
			return nil, bad("line %d: token longer than %d characters", line, MaxTokenLength)
		case !printableToken(t):
			return nil, bad("line %d: a token may contain printable ASCII characters only, no spaces", line)
		case len(out) >= MaxTokens:
			return nil, bad("more than %d tokens", MaxTokens)
		}
		if !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, bad("line %d: longer than %d characters", line+1, MaxTokenLength)
		}
		return nil, bad("%v", err)
	}
	if len(out) == 0 {
		return nil, bad("no token in it (one per line; blank lines and # comments are ignored)")
	}
	return out, nil
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
func LoadTokenFile(path string) (tokens []string, warning string, err error) {
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

// authenticator checks bearer tokens in constant time: the presented token
// and every accepted one are hashed with SHA-256 and all digests are
// compared, so neither a token's content nor its length nor which token
// matched leaks through timing.
type authenticator struct {
	digests [][sha256.Size]byte
}

func newAuthenticator(tokens []string) *authenticator {
	if len(tokens) == 0 {
		return nil
	}
	a := &authenticator{}
	for _, t := range tokens {
		a.digests = append(a.digests, sha256.Sum256([]byte(t)))
	}
	return a
}

// valid reports whether token is one of the accepted ones.
func (a *authenticator) valid(token string) bool {
	d := sha256.Sum256([]byte(token))
	ok := 0
	for i := range a.digests {
		ok |= subtle.ConstantTimeCompare(d[:], a.digests[i][:])
	}
	return ok == 1
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

// check decides on the Authorization header hdr of a request: nil for a
// valid bearer token, else the public error and the WWW-Authenticate
// challenge to answer with. The HTTP routes (require) and the RPCs
// (requireRPC) share it.
func (a *authenticator) check(hdr string) (challenge string, err error) {
	if hdr == "" {
		return `Bearer realm="shardseq"`, public(errUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
	}
	t, ok := bearerToken(hdr)
	if !ok || !a.valid(t) {
		return `Bearer realm="shardseq", error="invalid_token"`, public(errUnauthorized, "invalid bearer token")
	}
	return "", nil
}

// require wraps h: requests without a valid bearer token get 401. A nil
// authenticator lets everything through.
func (a *authenticator) require(h http.HandlerFunc) http.HandlerFunc {
	if a == nil {
		return h
	}
	return func(w http.ResponseWriter, r *http.Request) {
		if challenge, err := a.check(r.Header.Get("Authorization")); err != nil {
			w.Header().Set("WWW-Authenticate", challenge)
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
