package server

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
)

// Limits and defaults of the HTTP API. Each default is defined here once;
// the serve command's flags default to these.
const (
	// MaxCount is the largest count one ID request may ask for.
	MaxCount = 10000
	// DefaultNamespace is opened at start and never closed; /readyz reports
	// on it.
	DefaultNamespace = client.DefaultNamespace
	// DefaultMaxNamespaces bounds the namespaces one server keeps open.
	DefaultMaxNamespaces = 1000
	// DefaultShards is N of new namespaces when Config.Shards is 0.
	DefaultShards = client.DefaultShards
	// DefaultNamespaceIdle is how long an unused namespace stays open.
	DefaultNamespaceIdle = 5 * time.Minute
	// DefaultCreateRate and DefaultCreateBurst bound how fast namespaces are
	// created on first use: a token bucket of DefaultCreateBurst tokens,
	// refilled at DefaultCreateRate per second.
	DefaultCreateRate  = 10.0
	DefaultCreateBurst = 100
	// DefaultOpenTimeout bounds opening one namespace.
	DefaultOpenTimeout = 10 * time.Second
	// DefaultRequestTimeout bounds one ID request.
	DefaultRequestTimeout = time.Second
	// DefaultSampleEvery is how often the IDs issued of every namespace are
	// sampled for the health page's rates.
	DefaultSampleEvery = 5 * time.Second
	// DefaultSampleWindow is how far back the samples go.
	DefaultSampleWindow = 10 * time.Minute
	// DefaultPageRefresh is how often the health page reloads its data.
	DefaultPageRefresh = 5 * time.Second
	// maxOpening bounds the namespaces being opened at once: past it a
	// request for one more gets 429.
	maxOpening = 64
)

// CreateMode says whether a request for a namespace that does not exist
// creates it.
type CreateMode string

// The values of Config.CreateNamespaces.
const (
	// CreateAuto creates a namespace on its first request (within
	// Config.CreateRate). The default.
	CreateAuto CreateMode = "auto"
	// CreateExplicit serves only namespaces that exist: a request for any
	// other gets 404 namespace_not_found. Create them with PUT
	// /v1/namespaces/{namespace} or `shardseq namespace create`. The
	// default namespace is created at start in both modes.
	CreateExplicit CreateMode = "explicit"
)

// ErrInvalidConfig is wrapped by every *ConfigError.
var ErrInvalidConfig = errors.New("server: invalid config")

// ConfigError names the field of a Config that New refuses, and why.
type ConfigError struct {
	Field string
	Value any
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("server: invalid config: %s=%v: %v", e.Field, e.Value, e.Err)
}

// Unwrap lets errors.Is match both ErrInvalidConfig and the cause.
func (e *ConfigError) Unwrap() []error { return []error{ErrInvalidConfig, e.Err} }

// Config configures a Server. Zero values mean the documented default.
type Config struct {
	// Cluster is the shared cluster connection; required. The Server does
	// not close it.
	Cluster *cluster.Cluster
	// Shards is N of the namespaces this server creates (on first use, or
	// PUT /v1/namespaces/{namespace} without "shards"). Default
	// DefaultShards (12). A namespace that exists is served with its stored
	// N.
	Shards int
	// Client is the template of every namespace's client.Config (block
	// sizes, strict mode, acknowledgement, breakers...). Its Addrs, Cluster,
	// Registry, Namespace, Shards, NoCreate and Logger are set by the
	// server. Its Strict is the mode of every namespace this server opens.
	Client client.Config
	// MaxNamespaces bounds the namespaces kept open, so a flood of names
	// cannot exhaust memory: opening one more closes the least recently
	// used (never the default namespace). Default 1000.
	MaxNamespaces int
	// NamespaceIdle closes a namespace no ID request used for that long
	// (its buffered IDs become gaps); it opens again on its next request.
	// Default DefaultNamespaceIdle (5m); -1 keeps namespaces open until
	// evicted.
	NamespaceIdle time.Duration
	// CreateNamespaces: CreateAuto (default) or CreateExplicit.
	CreateNamespaces CreateMode
	// CreateRate and CreateBurst bound the namespaces created on first use:
	// a token bucket of CreateBurst, refilled at CreateRate per second.
	// Past it a request for a new namespace gets 429 with Retry-After;
	// opening a namespace that exists takes no token. Defaults
	// DefaultCreateRate (10/s) and DefaultCreateBurst (100); CreateRate -1
	// lifts the bound.
	CreateRate  float64
	CreateBurst int
	// OpenTimeout bounds opening a namespace (a few round trips to Redis).
	// Default DefaultOpenTimeout (10s). A request does not wait that long:
	// see RequestTimeout; the opening goes on, so a retry finds the
	// namespace open.
	OpenTimeout time.Duration
	// RequestTimeout bounds one ID request, the wait for its namespace to
	// open included. Default DefaultRequestTimeout (1s).
	RequestTimeout time.Duration
	// Logger defaults to slog.Default(). Every namespace's client logs to
	// it (shard breaker, fenced, moved).
	Logger *slog.Logger

	// Tokens and ScopedTokens, when either is not empty, enable
	// bearer-token authentication on /v1/*: a request without one of them
	// gets 401, one whose token lacks the scope the route needs 403 (see
	// Token.Scopes). Tokens have every scope; ScopedTokens those they list
	// (none: every scope), e.g. from LoadTokenFile. A secret given twice
	// must have the same scopes. /healthz and /readyz stay open. New logs
	// a warning naming each token that has every scope.
	Tokens       []string
	ScopedTokens []Token
	// AuthMetrics and AuthUI require a token with the scope read (or
	// admin) on /metrics and on the health page (/) too. Both default to
	// false: a Prometheus scraper and a browser are easier to point at
	// them, and neither hands out IDs; the page and /metrics do show
	// namespace names and node addresses.
	AuthMetrics, AuthUI bool

	// SampleEvery is how often the health page's IDs-issued rates are
	// sampled (default DefaultSampleEvery, 5s); SampleWindow how far back
	// they go (default DefaultSampleWindow, 10m). Memory: MaxNamespaces *
	// SampleWindow/SampleEvery samples.
	SampleEvery, SampleWindow time.Duration
	// PageRefresh is how often the health page reloads its data in the
	// browser. Default DefaultPageRefresh (5s).
	PageRefresh time.Duration
}

// defaulted returns c with every zero field set to its default. It checks
// nothing: see Validate.
func (c Config) defaulted() Config {
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.MaxNamespaces == 0 {
		c.MaxNamespaces = DefaultMaxNamespaces
	}
	if c.NamespaceIdle == 0 {
		c.NamespaceIdle = DefaultNamespaceIdle
	}
	if c.CreateNamespaces == "" {
		c.CreateNamespaces = CreateAuto
	}
	if c.CreateRate == 0 {
		c.CreateRate = DefaultCreateRate
	}
	if c.CreateBurst == 0 {
		c.CreateBurst = DefaultCreateBurst
	}
	if c.OpenTimeout == 0 {
		c.OpenTimeout = DefaultOpenTimeout
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.SampleEvery == 0 {
		c.SampleEvery = DefaultSampleEvery
	}
	if c.SampleWindow == 0 {
		c.SampleWindow = DefaultSampleWindow
	}
	if c.PageRefresh == 0 {
		c.PageRefresh = DefaultPageRefresh
	}
	return c
}

// Validate reports the first field out of bounds as a *ConfigError. A zero
// field stands for its default. New calls it; the namespaces' client
// template (Client) is checked by each client.New.
func (c Config) Validate() error {
	bad := func(field string, v any, format string, args ...any) error {
		return &ConfigError{Field: field, Value: v, Err: fmt.Errorf(format, args...)}
	}
	c = c.defaulted()
	switch {
	case c.Cluster == nil:
		return bad("Cluster", nil, "required")
	case !client.ValidShards(c.Shards):
		return bad("Shards", c.Shards, "want 1 to %d", client.MaxShards)
	case c.MaxNamespaces < 1:
		return bad("MaxNamespaces", c.MaxNamespaces, "must be at least 1")
	case c.NamespaceIdle < 0 && c.NamespaceIdle != -1 || c.NamespaceIdle > 0 && c.NamespaceIdle < 10*time.Millisecond:
		return bad("NamespaceIdle", c.NamespaceIdle, "want at least 10ms, 0 (default 5m) or -1 (never)")
	case c.CreateNamespaces != CreateAuto && c.CreateNamespaces != CreateExplicit:
		return bad("CreateNamespaces", c.CreateNamespaces, "want auto or explicit")
	case c.CreateRate < 0 && c.CreateRate != -1 || c.CreateRate > 1e6:
		return bad("CreateRate", c.CreateRate, "want a rate per second up to 1e6, 0 (default %g) or -1 (unbounded)", DefaultCreateRate)
	case c.CreateBurst < 1 || c.CreateBurst > 1e6:
		return bad("CreateBurst", c.CreateBurst, "want 1 to 1000000 (0: default %d)", DefaultCreateBurst)
	case c.OpenTimeout < 0 || c.RequestTimeout < 0:
		return bad("OpenTimeout/RequestTimeout", c.OpenTimeout, "must not be negative")
	case c.PageRefresh < 100*time.Millisecond:
		return bad("PageRefresh", c.PageRefresh, "want at least 100ms")
	case c.SampleEvery < 10*time.Millisecond || c.SampleWindow < c.SampleEvery || c.SampleWindow/c.SampleEvery > 10000:
		return bad("SampleEvery/SampleWindow", c.SampleEvery, "want SampleEvery >= 10ms and SampleWindow from 1 to 10000 times it")
	}
	if err := c.validTokens(); err != nil {
		return err
	}
	if len(c.Tokens) == 0 && len(c.ScopedTokens) == 0 && (c.AuthMetrics || c.AuthUI) {
		return bad("AuthMetrics/AuthUI", true, "need Tokens or ScopedTokens")
	}
	// The namespaces' client template, refused here in this package's shape
	// rather than by the first namespace that opens. Err keeps the client's
	// error, so errors.Is still finds client.ErrInvalidConfig.
	if err := c.namespaceConfig(DefaultNamespace).Validate(); err != nil {
		if ce := (*client.ConfigError)(nil); errors.As(err, &ce) {
			return &ConfigError{Field: "Client." + ce.Field, Value: ce.Value, Err: err}
		}
		return &ConfigError{Field: "Client", Value: "", Err: err}
	}
	return nil
}

// namespaceConfig is the client.Config of namespace name: the template
// Client on the shared cluster connection.
func (c Config) namespaceConfig(name string) client.Config {
	cc := c.Client
	cc.Addrs = nil
	cc.Cluster = c.Cluster
	cc.Namespace = name
	cc.Shards, cc.CreateShards = 0, c.Shards // an existing namespace keeps its N
	return cc
}

// withDefaults validates c and returns it with its defaults set.
func (c Config) withDefaults() (Config, error) {
	if err := c.Validate(); err != nil {
		return c, err
	}
	return c.defaulted(), nil
}

// validTokens checks Tokens and ScopedTokens: each secret MinTokenLength
// to MaxTokenLength printable ASCII characters, each scope one that
// Token.Scopes lists, and a secret given twice with the same scopes. Its
// errors show no secret.
func (c Config) validTokens() error {
	bad := func(field string, format string, args ...any) error {
		return &ConfigError{Field: field, Value: "<secret>", Err: fmt.Errorf(format, args...)}
	}
	tokens, _ := allTokens(c.Tokens, c.ScopedTokens)
	field := func(i int) string {
		if i < len(c.Tokens) {
			return fmt.Sprintf("Tokens[%d]", i)
		}
		return fmt.Sprintf("ScopedTokens[%d]", i-len(c.Tokens))
	}
	seen := map[string]int{}
	for i, t := range tokens {
		if len(t.Secret) < MinTokenLength || len(t.Secret) > MaxTokenLength || !printableToken(t.Secret) {
			return bad(field(i), "want %d to %d printable ASCII characters without spaces", MinTokenLength, MaxTokenLength)
		}
		for k, s := range t.Scopes {
			if err := checkScope(s); err != nil {
				return bad(field(i), "scope %d: %v", k, err)
			}
		}
		if j, dup := seen[t.Secret]; dup && !sameScopes(scopesOf(tokens[j]), scopesOf(t)) {
			return bad(field(i), "the secret of %s again, with other scopes", field(j))
		}
		seen[t.Secret] = i
	}
	return nil
}

// scopesOf is t's scopes, with a bare token's spelled out.
func scopesOf(t Token) []string {
	if len(t.Scopes) == 0 {
		return []string{ScopeIDs, ScopeRead, ScopeAdmin}
	}
	return t.Scopes
}
