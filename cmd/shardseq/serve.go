package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
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
	addrs           []string
	redis           redisSecurity // ACL user, password, TLS to Redis
	tokens          []string      // bearer tokens; none: no authentication
	tokenWarning    string        // the token file is readable by others
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

var serveEnv = map[string]string{
	"redis": "SHARDSEQ_REDIS", "shards": "SHARDSEQ_SHARDS", "listen": "SHARDSEQ_LISTEN",
	"max-namespaces": "SHARDSEQ_MAX_NAMESPACES", "log-format": "SHARDSEQ_LOG_FORMAT", "log-level": "SHARDSEQ_LOG_LEVEL",
	"token-file": "SHARDSEQ_TOKEN_FILE", "auth-metrics": "SHARDSEQ_AUTH_METRICS", "auth-ui": "SHARDSEQ_AUTH_UI",
	"tls-cert": "SHARDSEQ_TLS_CERT", "tls-key": "SHARDSEQ_TLS_KEY",
	"redis-user": "SHARDSEQ_REDIS_USER", "redis-password-file": "SHARDSEQ_REDIS_PASSWORD_FILE",
	"redis-tls": "SHARDSEQ_REDIS_TLS", "redis-ca-file": "SHARDSEQ_REDIS_CA_FILE",
	"redis-cert-file": "SHARDSEQ_REDIS_CERT_FILE", "redis-key-file": "SHARDSEQ_REDIS_KEY_FILE",
}

func (c *ServeCommand) parse(args []string) (serveConfig, error) {
	var (
		cfg                        serveConfig
		rf                         redisFlags
		logLevel                   string
		rs                         redisSecurityFlags
		tokenFile, tlsCert, tlsKey string
		fs                         = newFlagSet("serve")
	)
	rf.register(fs)
	rs.register(fs)
	cfg.settings.register(fs)
	fs.StringVar(&tokenFile, "token-file", "", "file of bearer tokens, one per line: enables authentication on /v1/* (env SHARDSEQ_TOKEN_FILE)")
	fs.BoolVar(&cfg.authMetrics, "auth-metrics", false, "require a token on /metrics too (env SHARDSEQ_AUTH_METRICS)")
	fs.BoolVar(&cfg.authUI, "auth-ui", false, "require a token on the health page / too (env SHARDSEQ_AUTH_UI)")
	fs.StringVar(&tlsCert, "tls-cert", "", "serve HTTPS with this certificate (PEM; env SHARDSEQ_TLS_CERT)")
	fs.StringVar(&tlsKey, "tls-key", "", "private key of --tls-cert (PEM; env SHARDSEQ_TLS_KEY)")
	fs.StringVar(&cfg.listen, "listen", ":8080", "HTTP listen address (env SHARDSEQ_LISTEN)")
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
	env := maps.Clone(serveEnv)
	maps.Copy(env, serveSettingsEnv)
	fromEnv, err := applyEnv(fs, c.Main.Getenv, env)
	if err != nil {
		return cfg, err
	}
	if cfg.addrs, err = rf.validate(fromEnv); err != nil {
		return cfg, err
	}
	cfg.shards = rf.shards
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
	if cfg.redis, err = rs.load(fromEnv); err != nil {
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

// redisSecurityFlags are the flags that authenticate to Redis and encrypt
// the connection: an ACL user and its password (read from a file, never
// given on the command line where ps shows it), and TLS. There is no flag
// to skip certificate verification.
type redisSecurityFlags struct {
	user, passwordFile        string
	useTLS                    bool
	caFile, certFile, keyFile string
}

// redisSecurity is what cluster.Config needs of them.
type redisSecurity struct {
	user, password string
	tls            *tls.Config
}

func (r *redisSecurityFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.user, "redis-user", "", "Redis ACL user (env SHARDSEQ_REDIS_USER; default: the default user)")
	fs.StringVar(&r.passwordFile, "redis-password-file", "", "file holding the Redis password (env SHARDSEQ_REDIS_PASSWORD_FILE)")
	fs.BoolVar(&r.useTLS, "redis-tls", false, "connect to Redis with TLS, verifying its certificate (env SHARDSEQ_REDIS_TLS)")
	fs.StringVar(&r.caFile, "redis-ca-file", "", "CA certificates (PEM) that sign the Redis nodes' certificates; implies --redis-tls (env SHARDSEQ_REDIS_CA_FILE; default: the system's)")
	fs.StringVar(&r.certFile, "redis-cert-file", "", "client certificate (PEM) for Redis nodes with tls-auth-clients; implies --redis-tls (env SHARDSEQ_REDIS_CERT_FILE)")
	fs.StringVar(&r.keyFile, "redis-key-file", "", "private key of --redis-cert-file (env SHARDSEQ_REDIS_KEY_FILE)")
}

// load reads the files named by the flags.
func (r *redisSecurityFlags) load(fromEnv map[string]string) (redisSecurity, error) {
	var out redisSecurity
	out.user = r.user
	if r.passwordFile != "" {
		pw, err := server.ReadSecretFile(r.passwordFile)
		if err != nil {
			return out, usageErrorf("%s: %v", source(fromEnv, "redis-password-file"), err)
		}
		out.password = pw
	} else if r.user != "" {
		return out, usageErrorf("%s needs --redis-password-file (or SHARDSEQ_REDIS_PASSWORD_FILE)", source(fromEnv, "redis-user"))
	}
	if !r.useTLS && r.caFile == "" && r.certFile == "" && r.keyFile == "" {
		return out, nil
	}
	out.tls = &tls.Config{MinVersion: tls.VersionTLS12}
	if r.caFile != "" {
		pem, err := os.ReadFile(r.caFile)
		if err != nil {
			return out, usageErrorf("%s: %v", source(fromEnv, "redis-ca-file"), err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return out, usageErrorf("%s=%s: no PEM certificate in it", source(fromEnv, "redis-ca-file"), r.caFile)
		}
		out.tls.RootCAs = pool
	}
	switch {
	case r.certFile != "" && r.keyFile != "":
		cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
		if err != nil {
			return out, usageErrorf("--redis-cert-file/--redis-key-file: %v", err)
		}
		out.tls.Certificates = []tls.Certificate{cert}
	case r.certFile != "" || r.keyFile != "":
		return out, usageErrorf("--redis-cert-file and --redis-key-file go together")
	}
	return out, nil
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

	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	cl, err := cluster.Dial(dctx, cluster.Config{Addrs: cfg.addrs, Logger: log,
		Username: cfg.redis.user, Password: cfg.redis.password, TLSConfig: cfg.redis.tls})
	cancel()
	switch {
	case isAuthError(err):
		return fmt.Errorf("serve: Redis refused the credentials (check --redis-user and --redis-password-file, and the user's ACL): %w", err)
	case errors.Is(err, cluster.ErrUnreachable):
		return fmt.Errorf("serve: Redis unreachable at %v (start a local cluster with 'shardseq cluster up' or 'make run'): %w", cfg.addrs, err)
	case errors.Is(err, cluster.ErrNotCluster):
		return fmt.Errorf("serve: %v is not a Redis Cluster (shardseq needs cluster-enabled yes): %w", cfg.addrs, err)
	case err != nil:
		return fmt.Errorf("serve: connecting to Redis at %v: %w", cfg.addrs, err)
	}
	defer cl.Close()
	top := cl.Topology()
	log.Info("connected to Redis Cluster", "masters", len(top.Masters), "covered", top.Covered(), "generation", top.Generation)

	if cfg.tokenWarning != "" {
		log.Warn("token file: " + cfg.tokenWarning)
	}
	scfg := server.Config{Cluster: cl, Shards: cfg.shards, MaxNamespaces: cfg.maxNamespaces, Logger: log,
		Tokens: cfg.tokens, AuthMetrics: cfg.authMetrics, AuthUI: cfg.authUI}
	cfg.settings.apply(&scfg)
	srv, err := server.New(scfg)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
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
	log.Info("serving", "listen", ln.Addr().String(), "scheme", scheme, "shards", cfg.shards, "redis", cfg.addrs,
		"auth", len(cfg.tokens) > 0, "auth_metrics", cfg.authMetrics, "auth_ui", cfg.authUI, "redis_tls", cfg.redis.tls != nil, "redis_user", cfg.redis.user)
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

// isAuthError reports a Redis refusal of the credentials: a wrong password
// (WRONGPASS), no password where one is needed (NOAUTH) or a user not
// allowed to run what shardseq needs (NOPERM).
func isAuthError(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "WRONGPASS") || strings.Contains(msg, "NOAUTH") || strings.Contains(msg, "NOPERM")
}

// Usage prints the help of serve.
func (c *ServeCommand) Usage() {
	fmt.Fprintf(c.Main.Stdout, `Usage: shardseq serve --redis host:port[,host:port...] [flags]

Serves IDs over HTTP:
  POST /v1/ids/{namespace}?count=K   K new IDs (1..10000, default 1)
  GET  /v1/shards[?namespace=ns]     shard health and cluster topology
  GET  /                             shard-health page (HTML)
  GET  /metrics                      Prometheus metrics
  GET  /healthz, GET /readyz         liveness, readiness

Flags (flags win over environment variables):
  --redis ADDRS             Redis Cluster seeds, comma-separated (env SHARDSEQ_REDIS; required)
  --listen ADDR             HTTP listen address (env SHARDSEQ_LISTEN; default :8080)
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

Client settings of every namespace it opens (see README "Configuration"):
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
  --token-file F            bearer tokens, one per line: /v1/* needs one (env SHARDSEQ_TOKEN_FILE)
  --auth-metrics            /metrics needs a token too (env SHARDSEQ_AUTH_METRICS; default false)
  --auth-ui                 the health page needs a token too (env SHARDSEQ_AUTH_UI; default false)
  --tls-cert F, --tls-key F serve HTTPS, TLS 1.2 or later (env SHARDSEQ_TLS_CERT, SHARDSEQ_TLS_KEY)
  --redis-user U            Redis ACL user (env SHARDSEQ_REDIS_USER)
  --redis-password-file F   file holding its password (env SHARDSEQ_REDIS_PASSWORD_FILE)
  --redis-tls               TLS to Redis, certificates verified (env SHARDSEQ_REDIS_TLS)
  --redis-ca-file F         CA of the Redis certificates; implies --redis-tls (env SHARDSEQ_REDIS_CA_FILE)
  --redis-cert-file F, --redis-key-file F
                            client certificate for tls-auth-clients (env SHARDSEQ_REDIS_CERT_FILE, _KEY_FILE)
`, client.DefaultShards)
}
