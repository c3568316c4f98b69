package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/server"
)

// ServeCommand runs the HTTP ID server.
type ServeCommand struct {
	Main *Main
}

// serveConfig is the parsed command line of serve.
type serveConfig struct {
	addrs           []string
	listen          string
	shards          int
	maxNamespaces   int
	logFormat       string
	logLevel        slog.Level
	shutdownTimeout time.Duration
	drainDelay      time.Duration
}

var serveEnv = map[string]string{
	"redis": "SHARDSEQ_REDIS", "shards": "SHARDSEQ_SHARDS", "listen": "SHARDSEQ_LISTEN",
	"max-namespaces": "SHARDSEQ_MAX_NAMESPACES", "log-format": "SHARDSEQ_LOG_FORMAT", "log-level": "SHARDSEQ_LOG_LEVEL",
}

func (c *ServeCommand) parse(args []string) (serveConfig, error) {
	var (
		cfg      serveConfig
		rf       redisFlags
		logLevel string
		fs       = newFlagSet("serve")
	)
	rf.register(fs)
	fs.StringVar(&cfg.listen, "listen", ":8080", "HTTP listen address (env SHARDSEQ_LISTEN)")
	fs.IntVar(&cfg.maxNamespaces, "max-namespaces", server.DefaultMaxNamespaces, "most namespaces kept open; requests for more get 503 (env SHARDSEQ_MAX_NAMESPACES)")
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
	fromEnv, err := applyEnv(fs, c.Main.Getenv, serveEnv)
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
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log := cfg.logger(c)
	slog.SetDefault(log)
	redis.SetLogger(redisLogger{log})

	dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	cl, err := cluster.Dial(dctx, cluster.Config{Addrs: cfg.addrs, Logger: log})
	cancel()
	switch {
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

	srv, err := server.New(server.Config{Cluster: cl, Shards: cfg.shards, MaxNamespaces: cfg.maxNamespaces, Logger: log})
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	defer srv.Close()

	ln, err := net.Listen("tcp", cfg.listen)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	hs := server.NewHTTPServer(cfg.listen, srv.Handler(), log)
	served := make(chan error, 1)
	go func() { served <- hs.Serve(ln) }()
	log.Info("serving", "listen", ln.Addr().String(), "shards", cfg.shards, "redis", cfg.addrs)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: /readyz now answers 503", "drain_delay", cfg.drainDelay, "timeout", cfg.shutdownTimeout)
	srv.Drain()
	if cfg.drainDelay > 0 {
		time.Sleep(cfg.drainDelay)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
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
	fmt.Fprint(c.Main.Stdout, `Usage: shardseq serve --redis host:port[,host:port...] [flags]

Serves IDs over HTTP:
  POST /v1/ids/{namespace}?count=K   K new IDs (1..10000, default 1)
  GET  /v1/shards[?namespace=ns]     shard health and cluster topology
  GET  /healthz, GET /readyz         liveness, readiness

Flags (flags win over environment variables):
  --redis ADDRS             Redis Cluster seeds, comma-separated (env SHARDSEQ_REDIS; required)
  --listen ADDR             HTTP listen address (env SHARDSEQ_LISTEN; default :8080)
  --shards N                shards per namespace (env SHARDSEQ_SHARDS; default 12)
  --max-namespaces K        namespaces kept open at most (env SHARDSEQ_MAX_NAMESPACES; default 1000)
  --log-format text|json    log format on stderr (env SHARDSEQ_LOG_FORMAT; default text)
  --log-level LEVEL         debug, info, warn or error (env SHARDSEQ_LOG_LEVEL; default info)
  --shutdown-timeout D      time for in-flight requests on SIGTERM/SIGINT (default 15s)
  --drain-delay D           time /readyz answers 503 before the listener closes (default 0s)
`)
}
