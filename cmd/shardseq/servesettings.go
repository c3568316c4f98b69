package main

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/server"
)

// serveSettings are serve's flags for the namespaces it serves: their
// lifecycle (idle closing, creation on first use) and the client settings
// every namespace it opens gets (blocks, strict mode, acknowledgement).
type serveSettings struct {
	namespaceIdle    time.Duration
	createNamespaces string
	createRate       float64
	createBurst      int
	requestTimeout   time.Duration

	blockTarget        time.Duration
	minBlock, maxBlock int64
	strict             bool
	ackReplicas        int
	ackTimeout         time.Duration
	holdFor            time.Duration
}

// serveSettingsEnv are the environment variables of serveSettings' flags.
var serveSettingsEnv = map[string]string{
	"namespace-idle": "SHARDSEQ_NAMESPACE_IDLE", "create-namespaces": "SHARDSEQ_CREATE_NAMESPACES",
	"namespace-create-rate": "SHARDSEQ_NAMESPACE_CREATE_RATE", "namespace-create-burst": "SHARDSEQ_NAMESPACE_CREATE_BURST",
	"request-timeout": "SHARDSEQ_REQUEST_TIMEOUT",
	"block-target":    "SHARDSEQ_BLOCK_TARGET", "min-block": "SHARDSEQ_MIN_BLOCK", "max-block": "SHARDSEQ_MAX_BLOCK",
	"strict": "SHARDSEQ_STRICT", "ack-replicas": "SHARDSEQ_ACK_REPLICAS", "ack-timeout": "SHARDSEQ_ACK_TIMEOUT",
	"hold-for": "SHARDSEQ_HOLD_FOR",
}

// Bounds of serve's client settings that the client alone does not impose.
const (
	// maxServeAckTimeout keeps the wait for replicas well inside one attempt
	// on a shard (client.DefaultAttemptTimeout, 750ms; the client itself
	// only refuses an ack timeout that reaches it) and one request
	// (--request-timeout, 1s by default), and below the Redis read timeout
	// (1s) that the WAIT shares a connection with.
	maxServeAckTimeout = 500 * time.Millisecond
)

func (s *serveSettings) register(fs *flag.FlagSet) {
	fs.DurationVar(&s.namespaceIdle, "namespace-idle", server.DefaultNamespaceIdle, "close a namespace unused this long; 0: never (env SHARDSEQ_NAMESPACE_IDLE)")
	fs.StringVar(&s.createNamespaces, "create-namespaces", string(server.CreateAuto), "auto: create a namespace on its first request; explicit: 404 for one nobody created (env SHARDSEQ_CREATE_NAMESPACES)")
	fs.Float64Var(&s.createRate, "namespace-create-rate", server.DefaultCreateRate, "new namespaces created per second at most, past the burst; -1: no bound (env SHARDSEQ_NAMESPACE_CREATE_RATE)")
	fs.IntVar(&s.createBurst, "namespace-create-burst", server.DefaultCreateBurst, "new namespaces that may be created at once (env SHARDSEQ_NAMESPACE_CREATE_BURST)")
	fs.DurationVar(&s.requestTimeout, "request-timeout", server.DefaultRequestTimeout, "answer every ID request within this (env SHARDSEQ_REQUEST_TIMEOUT)")
	fs.DurationVar(&s.blockTarget, "block-target", 0, "how long a block should last at the current rate; 0: the order window / (4 N) (env SHARDSEQ_BLOCK_TARGET)")
	fs.Int64Var(&s.minBlock, "min-block", client.DefaultMinBlockSize, "smallest block reserved (env SHARDSEQ_MIN_BLOCK)")
	fs.Int64Var(&s.maxBlock, "max-block", client.DefaultMaxBlockSize, "largest block reserved (env SHARDSEQ_MAX_BLOCK)")
	fs.BoolVar(&s.strict, "strict", false, "strict mode for the namespaces it opens: every ID reserved with its own acknowledged round trip, none buffered (env SHARDSEQ_STRICT)")
	fs.IntVar(&s.ackReplicas, "ack-replicas", 0, "replicas that must confirm each reservation; 0: every replica that could be promoted; -1: none, unsafe (env SHARDSEQ_ACK_REPLICAS)")
	fs.DurationVar(&s.ackTimeout, "ack-timeout", client.DefaultAckTimeout, "how long to wait for the replicas to confirm (env SHARDSEQ_ACK_TIMEOUT)")
	fs.DurationVar(&s.holdFor, "hold-for", client.DefaultHoldFor, "traffic, at the current rate, held in spare blocks for when no reservation succeeds (handed out of order meanwhile); 0: none, callers fail during such an outage (env SHARDSEQ_HOLD_FOR)")
}

// validate checks every setting and returns the first bad one as a usage
// error naming its flag (or environment variable).
func (s *serveSettings) validate(fromEnv map[string]string) error {
	bad := func(name string, v any, format string, args ...any) error {
		return usageErrorf("%s=%v: %s", source(fromEnv, name), v, fmt.Sprintf(format, args...))
	}
	switch {
	case s.namespaceIdle < 0 || s.namespaceIdle > 0 && s.namespaceIdle < 10*time.Millisecond:
		return bad("namespace-idle", s.namespaceIdle, "want at least 10ms, or 0 to keep namespaces open until --max-namespaces evicts them")
	case s.createNamespaces != string(server.CreateAuto) && s.createNamespaces != string(server.CreateExplicit):
		return bad("create-namespaces", fmt.Sprintf("%q", s.createNamespaces), "want auto or explicit")
	case s.createRate != -1 && (s.createRate <= 0 || s.createRate > 1e6):
		return bad("namespace-create-rate", s.createRate, "want a rate per second above 0 and up to 1000000, or -1 for no bound")
	case s.createBurst < 1 || s.createBurst > 1e6:
		return bad("namespace-create-burst", s.createBurst, "want 1 to 1000000")
	case s.requestTimeout < 10*time.Millisecond || s.requestTimeout > time.Minute:
		return bad("request-timeout", s.requestTimeout, "want 10ms to 1m")
	case s.blockTarget != 0 && (s.blockTarget < time.Millisecond || s.blockTarget > 400*time.Millisecond):
		return bad("block-target", s.blockTarget, "want 1ms to 400ms (blocks retire 0.4 x the order window, 1s, after they were reserved), or 0 for the default")
	case s.minBlock < 1 || s.minBlock > 1<<24:
		return bad("min-block", s.minBlock, "want 1 to %d", 1<<24)
	case s.maxBlock < s.minBlock || s.maxBlock > 1<<24:
		return bad("max-block", s.maxBlock, "want --min-block (%d) to %d", s.minBlock, 1<<24)
	case s.ackReplicas < -1 || s.ackReplicas > 64:
		return bad("ack-replicas", s.ackReplicas, "want a replica count up to 64, 0 for every replica that could be promoted, or -1 for none (unsafe: a failover can repeat IDs)")
	case s.ackTimeout < time.Millisecond || s.ackTimeout > maxServeAckTimeout:
		return bad("ack-timeout", s.ackTimeout, "want 1ms to %v (within one attempt on a shard, 750ms, and the Redis read timeout, 1s)", maxServeAckTimeout)
	case s.holdFor < 0 || s.holdFor > time.Minute:
		return bad("hold-for", s.holdFor, "want 0 (no spares) to 1m")
	}
	// The client checks the combination too; say which flag it refuses.
	if err := s.clientConfig().Validate(); err != nil {
		var ce *client.ConfigError
		if errors.As(err, &ce) {
			for field, name := range map[string]string{"BlockTarget": "block-target", "MinBlockSize": "min-block",
				"MaxBlockSize": "max-block", "AckReplicas": "ack-replicas", "AckTimeout": "ack-timeout", "HoldFor": "hold-for"} {
				if ce.Field == field || strings.HasPrefix(ce.Err.Error(), field) {
					return bad(name, ce.Value, "%v", ce.Err)
				}
			}
		}
		return usageErrorf("client settings: %v", err)
	}
	return nil
}

// clientConfig is the template of every namespace's client.Config.
func (s *serveSettings) clientConfig() client.Config {
	return client.Config{
		Addrs:        []string{"validate.invalid:1"}, // the server sets the shared cluster
		BlockTarget:  s.blockTarget,
		BlockSize:    min(max(client.DefaultBlockSize, s.minBlock), s.maxBlock), // the first block, within --min-block and --max-block
		MinBlockSize: s.minBlock,
		MaxBlockSize: s.maxBlock,
		Strict:       s.strict,
		AckReplicas:  s.ackReplicas,
		AckTimeout:   s.ackTimeout,
		HoldFor:      cmp.Or(s.holdFor, -1), // the flag's 0 is the client's -1: none
	}
}

// apply sets the server's configuration from the settings.
func (s *serveSettings) apply(cfg *server.Config) {
	cc := s.clientConfig()
	cc.Addrs = nil
	cfg.Client = cc
	cfg.NamespaceIdle = s.namespaceIdle
	if s.namespaceIdle == 0 {
		cfg.NamespaceIdle = -1
	}
	cfg.CreateNamespaces = server.CreateMode(s.createNamespaces)
	cfg.CreateRate, cfg.CreateBurst = s.createRate, s.createBurst
	cfg.RequestTimeout = s.requestTimeout
}
