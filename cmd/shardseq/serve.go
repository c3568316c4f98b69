package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/server"
)

// ServeCommand runs the HTTP ID server.
type ServeCommand struct {
	Main *Main
	// listening, when set, learns the address the server listens on (tests
	// listen on port 0).
	listening func(addr string)
}

// serveConfig is the parsed command line of serve.
type serveConfig struct {
	redis           redisConn      // the cluster's seeds, ACL user, password, TLS
	tokens          []server.Token // bearer tokens and their scopes; none: no authentication
	tokenWarning    string         // the token file is readable by others
	authMetrics     bool
	authUI          bool
	tls             *tls.Config // HTTPS; nil: plain HTTP
	listen          string
	shards          int
	maxNamespaces   int
	logFormat       string
	logLevel        slog.Level
	shutdownTimeout time.Duration
	drainDelay      time.Duration
	settings        serveSettings // namespaces: lifecycle and client settings
}

// serveEnv maps serve's own flags to their environment variables (the
// Redis flags' are redisEnv, --shards' shardsEnv).
var serveEnv = map[string]string{
	"listen":         "SHARDSEQ_LISTEN",
	"max-namespaces": "SHARDSEQ_MAX_NAMESPACES", "log-format": "SHARDSEQ_LOG_FORMAT", "log-level": "SHARDSEQ_LOG_LEVEL",
	"token-file": "SHARDSEQ_TOKEN_FILE", "auth-metrics": "SHARDSEQ_AUTH_METRICS", "auth-ui": "SHARDSEQ_AUTH_UI",
	"tls-cert": "SHARDSEQ_TLS_CERT", "tls-key": "SHARDSEQ_TLS_KEY",
}

func (c *ServeCommand) parse(args []string) (serveConfig, error) {
	var (
		cfg                        serveConfig
		rf                         redisFlags
		logLevel                   string
		tokenFile, tlsCert, tlsKey string
		fs                         = newFlagSet("serve")
	)
	rf.register(fs)
	registerShards(fs, &cfg.shards)
	cfg.settings.register(fs)
	fs.StringVar(&tokenFile, "token-file", "", "file of bearer tokens, one per line, each optionally followed by its scopes (ids, ids:PATTERN, read, admin; none: all): enables authentication on /v1/* and gRPC (env SHARDSEQ_TOKEN_FILE)")
	fs.BoolVar(&cfg.authMetrics, "auth-metrics", false, "require a token with the scope read on /metrics too (env SHARDSEQ_AUTH_METRICS)")
	fs.BoolVar(&cfg.authUI, "auth-ui", false, "require a token with the scope read on the health page / too (env SHARDSEQ_AUTH_UI)")
	fs.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; env SHARDSEQ_TLS_CERT)")
	fs.StringVar(&tlsKey, "tls-key", "", "private key of --tls-cert (PEM; env SHARDSEQ_TLS_KEY)")
	fs.StringVar(&cfg.listen, "listen", ":8080", "listen address of the HTTP API and gRPC (env SHARDSEQ_LISTEN)")
	fs.IntVar(&cfg.maxNamespaces, "max-namespaces", server.DefaultMaxNamespaces, "most namespaces kept open; opening one more closes the least recently used (env SHARDSEQ_MAX_NAMESPACES)")
	fs.StringVar(&cfg.logFormat, "log-format", "text", "log format: text or json, to stderr (env SHARDSEQ_LOG_FORMAT)")
	fs.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error (env SHARDSEQ_LOG_LEVEL)")
	fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", 15*time.Second, "on SIGTERM/SIGINT, how long in-flight requests may take to finish")
	fs.DurationVar(&cfg.drainDelay, "drain-delay", 0, "on SIGTERM/SIGINT, how long /readyz answers 503 before the listener closes (let load balancers notice)")
	pos, err := parseFlags(fs, args, c.Usage)
	if err != nil {
		return cfg, err
	}
	if len(pos) > 0 {
		return cfg, usageErrorf("unexpected argument %q", pos[0])
	}
	fromEnv, err := applyEnv(fs, c.Main.Getenv, serveEnv, redisEnv, shardsEnv, serveSettingsEnv)
	if err != nil {
		return cfg, err
	}
	if err := checkShards(fromEnv, cfg.shards); err != nil {
		return cfg, err
	}
	if rf.redis == "" && !rf.useLocal(c.Main.Stderr) {
		return cfg, requireRedis()
	}
	if cfg.redis, err = rf.load(fromEnv); err != nil {
		return cfg, err
	}
	if _, port, err := net.SplitHostPort(cfg.listen); err != nil {
		return cfg, usageErrorf("%s=%q: want [host]:port, e.g. :8080", source(fromEnv, "listen"), cfg.listen)
	} else if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return cfg, usageErrorf("%s=%q: the port must be a number from 0 to 65535", source(fromEnv, "listen"), cfg.listen)
	}
	if cfg.maxNamespaces < 1 {
		return cfg, usageErrorf("%s=%d: must be at least 1", source(fromEnv, "max-namespaces"), cfg.maxNamespaces)
	}
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		return cfg, usageErrorf("%s=%q: want text or json", source(fromEnv, "log-format"), cfg.logFormat)
	}
	if err := cfg.logLevel.UnmarshalText([]byte(logLevel)); err != nil {
		return cfg, usageErrorf("%s=%q: want debug, info, warn or error", source(fromEnv, "log-level"), logLevel)
	}
	if cfg.shutdownTimeout <= 0 || cfg.drainDelay < 0 {
		return cfg, usageErrorf("--shutdown-timeout must be positive and --drain-delay not negative")
	}
	if err := cfg.settings.validate(fromEnv); err != nil {
		return cfg, err
	}
	if tokenFile != "" {
		if cfg.tokens, cfg.tokenWarning, err = server.LoadTokenFile(tokenFile); err != nil {
			return cfg, usageErrorf("%s: %v", source(fromEnv, "token-file"), err)
		}
	} else if cfg.authMetrics || cfg.authUI {
		return cfg, usageErrorf("--auth-metrics and --auth-ui need --token-file")
	}
	switch {
	case tlsCert != "" && tlsKey != "":
		if cfg.tls, err = server.TLSConfig(tlsCert, tlsKey); err != nil {
			return cfg, usageErrorf("%v", err)
		}
	case tlsCert != "" || tlsKey != "":
		return cfg, usageErrorf("--tls-cert and --tls-key go together")
	}
	return cfg, nil
}

func (cfg serveConfig) logger(c *ServeCommand) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.logLevel}
	if cfg.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(c.Main.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(c.Main.Stderr, opts))
}

// Run starts the server and blocks until ctx ends (SIGTERM/SIGINT), then
// drains: /readyz turns 503, in-flight requests finish, clients close.
func (c *ServeCommand) Run(ctx context.Context, args []string) error {
	cfg, err := c.parse(args)
	if err != nil {
		return err
	}
	log := cfg.logger(c)
	slog.SetDefault(log)
	redis.SetLogger(redisLogger{log})

	if cfg.redis.warning != "" {
		log.Warn(cfg.redis.warning)
	}
	// The port first: a clash is reported at once, not after Redis answered.
	// Connections wait in the backlog until Serve accepts them.
	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("serve: cannot listen on %s (is another server on that port? --listen or SHARDSEQ_LISTEN picks another): %w", cfg.listen, err)
	}
	defer ln.Close() // on an early return; Shutdown closes it otherwise
	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	ccfg := cfg.redis.Config
	ccfg.Logger = log
	cl, err := cluster.Dial(dctx, ccfg)
	cancel()
	if err != nil {
		if derr := dialError("serve", ccfg.Addrs, err); derr != nil {
			return derr
		}
		return fmt.Errorf("serve: connecting to Redis at %v: %w", ccfg.Addrs, err)
	}
	defer cl.Close()
	top := cl.Topology()
	log.Info("connected to Redis Cluster", "masters", len(top.Masters), "covered", top.Covered(), "generation", top.Generation)

	if cfg.tokenWarning != "" {
		log.Warn("token file: " + cfg.tokenWarning)
	}
	unsafe, err := unsafeDefences(log)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	scfg := server.Config{Cluster: cl, Shards: cfg.shards, MaxNamespaces: cfg.maxNamespaces, Logger: log,
		ScopedTokens: cfg.tokens, AuthMetrics: cfg.authMetrics, AuthUI: cfg.authUI}
	cfg.settings.apply(&scfg)
	scfg.Client.UnsafeDefences = unsafe.UnsafeDefences
	scfg.Client.Breaker.Picker = unsafe.Breaker.Picker
	if unsafe.OrderWindow != 0 {
		scfg.Client.OrderWindow = unsafe.OrderWindow
	}
	srv, err := server.New(scfg)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer srv.Close()

	hs := server.NewHTTPServer(cfg.listen, srv.Handler(), log)
	scheme := "http"
	if cfg.tls != nil {
		hs.TLSConfig = cfg.tls
		ln = tls.NewListener(ln, cfg.tls)
		scheme = "https"
	}
	if c.listening != nil {
		c.listening(ln.Addr().String())
	}
	st := cfg.settings
	log.Info("namespaces", "max", cfg.maxNamespaces, "idle", st.namespaceIdle, "create", st.createNamespaces,
		"create_rate", st.createRate, "create_burst", st.createBurst, "strict", st.strict, "block_target", st.blockTarget,
		"min_block", st.minBlock, "max_block", st.maxBlock, "ack_replicas", st.ackReplicas, "ack_timeout", st.ackTimeout,
		"request_timeout", st.requestTimeout)
	log.Info("serving", "listen", ln.Addr().String(), "scheme", scheme, "shards", cfg.shards, "redis", cfg.redis.Addrs,
		"auth", len(cfg.tokens) > 0, "auth_metrics", cfg.authMetrics, "auth_ui", cfg.authUI, "redis_tls", cfg.redis.TLSConfig != nil, "redis_user", cfg.redis.Username)
	return serveUntil(ctx, srv, hs, ln, cfg.drainDelay, cfg.shutdownTimeout, log)
}

// serveUntil serves hs on ln until ctx ends, then shuts down in order:
// /readyz turns 503 (Drain), after drainDelay the listener closes and
// in-flight requests get up to timeout to finish, then every namespace's
// client closes.
func serveUntil(ctx context.Context, srv *server.Server, hs *http.Server, ln net.Listener, drainDelay, timeout time.Duration, log *slog.Logger) error {
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: /readyz now answers 503", "drain_delay", drainDelay, "timeout", timeout)
	srv.Drain()
	if drainDelay > 0 {
		time.Sleep(drainDelay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("shutdown: in-flight requests did not finish in time", "err", err)
		_ = hs.Close()
	}
	if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Warn("serve", "err", err)
	}
	if err := srv.Close(); err != nil {
		log.Warn("closing namespaces", "err", err)
	}
	log.Info("stopped")
	return nil
}

// Usage prints the help of serve.
func (c *ServeCommand) Usage() {
	fmt.Fprintf(c.Main.Stdout, `Usage: shardseq serve [--redis redis://host:port|rediss://...|host:port[,host:port...]] [flags]

Serves IDs over HTTP (README "HTTP API", api/openapi.yaml):
  POST /v1/ids/{namespace}?count=K   K new IDs (1..10000, default 1)
  POST /v1/leases/{namespace}?count=K a block of K IDs for the caller to hand out
  PUT, GET, DELETE /v1/namespaces/{namespace}, GET /v1/namespaces
                                     create, show, delete, list namespaces
  GET  /v1/shards[?namespace=ns]     shard health and cluster topology
  GET  /                             shard-health page (HTML)
  GET  /metrics                      Prometheus metrics
  GET  /healthz, GET /readyz         liveness, readiness
and the same over gRPC, gRPC-Web and Connect on the same port (README "gRPC",
api/shardseq/v1/shardseq.proto): shardseq.v1.ShardseqService, grpc.health.v1.Health

Flags (flags win over environment variables):
  --listen ADDR             HTTP and gRPC listen address (env SHARDSEQ_LISTEN; default :8080)
  --shards N                shards per namespace (env SHARDSEQ_SHARDS; default %d)
  --max-namespaces K        namespaces kept open at most; one more closes the least recently used
                            (env SHARDSEQ_MAX_NAMESPACES; default 1000)
  --request-timeout D       every ID request is answered within D (env SHARDSEQ_REQUEST_TIMEOUT; default 1s)
  --log-format text|json    log format on stderr (env SHARDSEQ_LOG_FORMAT; default text)
  --log-level LEVEL         debug, info, warn or error (env SHARDSEQ_LOG_LEVEL; default info)
  --shutdown-timeout D      time for in-flight requests on SIGTERM/SIGINT (default 15s)
  --drain-delay D           time /readyz answers 503 before the listener closes (default 0s)

Namespaces (see README "Namespaces on a server"):
  --namespace-idle D        close a namespace unused for D; 0: never (env SHARDSEQ_NAMESPACE_IDLE; default 5m)
  --create-namespaces M     auto: create a namespace on its first request; explicit: 404 for one
                            nobody created (env SHARDSEQ_CREATE_NAMESPACES; default auto)
  --namespace-create-rate R new namespaces per second past the burst, then 429; -1: no bound
                            (env SHARDSEQ_NAMESPACE_CREATE_RATE; default 10)
  --namespace-create-burst B new namespaces at once (env SHARDSEQ_NAMESPACE_CREATE_BURST; default 100)

Client settings of every namespace it opens (see README "serve configuration"):
  --strict                  strict mode: every ID its own acknowledged reservation (env SHARDSEQ_STRICT)
  --block-target D          a block lasts about D at the current rate, 1ms to 400ms; 0: 1s / (4 N)
                            (env SHARDSEQ_BLOCK_TARGET; default 0)
  --min-block K, --max-block K
                            bounds of the adaptive block size (env SHARDSEQ_MIN_BLOCK, SHARDSEQ_MAX_BLOCK;
                            defaults 100 and 1048576)
  --ack-replicas K          replicas that confirm each reservation; 0: every promotable one; -1: none,
                            unsafe (env SHARDSEQ_ACK_REPLICAS; default 0)
  --ack-timeout D           wait for them at most D, 1ms to 500ms (env SHARDSEQ_ACK_TIMEOUT; default 250ms)

Security (see README "Security"):
  --token-file F            bearer tokens, one per line: /v1/* and gRPC need one (env SHARDSEQ_TOKEN_FILE);
                            after a token, its scopes: ids, ids:PATTERN (e.g. ids:tenant-*), read,
                            admin (implies read); a bare token has every scope
  --auth-metrics            /metrics needs a token with read too (env SHARDSEQ_AUTH_METRICS; default false)
  --auth-ui                 the health page needs a token with read too (env SHARDSEQ_AUTH_UI; default false)
  --tls-cert F, --tls-key F serve HTTPS, TLS 1.2 or later (env SHARDSEQ_TLS_CERT, SHARDSEQ_TLS_KEY)

Without --redis and SHARDSEQ_REDIS, the local cluster 'shardseq cluster up'
runs in .run/cluster, if any.

%s`, client.DefaultShards, redisUsage)
}
