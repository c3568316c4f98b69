package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/shard"
)

// Errors returned by the client. Match them with errors.Is; they wrap the
// lower packages' sentinels so callers need import only this one.
var (
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = errors.New("client: invalid config")
	// ErrInvalidNamespace: the name breaks the namespace rule (1 to 64
	// characters of A-Z a-z 0-9 _ . -); its text states the rule.
	ErrInvalidNamespace = shard.ErrInvalidNamespace
	// ErrShardCountMismatch: the namespace exists with another shard count.
	ErrShardCountMismatch = shard.ErrShardCountMismatch
	// ErrNotReplicated: a reservation was not confirmed by the replicas.
	ErrNotReplicated = shard.ErrNotReplicated
	// ErrNoHealthyShard: every shard failed; nothing was handed out.
	ErrNoHealthyShard = failover.ErrNoHealthyShard
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("client: closed")
)

// Defaults of Config.
const (
	// DefaultNamespace is the namespace when Config.Namespace is empty.
	DefaultNamespace = "default"
	// DefaultShards is N when Config.Shards is 0.
	DefaultShards = 12
	// DefaultAckTimeout bounds the wait for replicas when Config.AckTimeout
	// is 0.
	DefaultAckTimeout = shard.DefaultAckTimeout
)

// ConfigError names the field of a Config that is out of bounds.
type ConfigError struct {
	Field string
	Value any
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("client: config %s=%v: %v", e.Field, e.Value, e.Err)
}

func (e *ConfigError) Unwrap() []error { return []error{ErrInvalidConfig, e.Err} }

// Config configures a Client. The zero value of every field but Addrs (or
// Cluster) is a working default.
type Config struct {
	// Addrs are seed addresses of the Redis Cluster (host:port). Required
	// unless Cluster is set.
	Addrs []string
	// Username, Password and TLS authenticate to Redis (ACL user, password,
	// TLS); ignored when Cluster is set.
	Username, Password string
	TLS                *tls.Config
	// Cluster shares an open cluster connection between clients (the server
	// opens one client per namespace). Close does not close it.
	Cluster *cluster.Cluster
	// Registry shares a shard registry between clients; default a new one.
	Registry *failover.Registry

	// Namespace names the ID space. Default DefaultNamespace. 1 to 64
	// characters of A-Z a-z 0-9 _ . - (shard.ValidNamespace).
	Namespace string
	// Shards is N, the number of shards of the namespace. Default
	// DefaultShards (12). It is
	// stored with the namespace on first use; a client with another N is
	// refused with ErrShardCountMismatch.
	Shards int

	// Strict reserves every ID with its own acknowledged round trip (B=1):
	// no ID is ever held in this process. Default false (segment mode).
	Strict bool
	// BlockSize is the first block size in segment mode. Default 1000.
	BlockSize int64
	// MinBlockSize and MaxBlockSize bound the adaptive block size.
	// Defaults 100 and 1<<20.
	MinBlockSize, MaxBlockSize int64
	// BlockTarget is how long a block should last: the block size doubles
	// when blocks run out faster than half of it and halves when they last
	// more than twice it. Default 2s.
	BlockTarget time.Duration
	// RefillAt is the fraction of a block handed out before the next one is
	// reserved in the background. Default 0.2.
	RefillAt float64

	// AckReplicas: replicas that must confirm each reservation. 0 (default):
	// all the master has, at least 1. -1: none (unsafe, see shard.Options).
	AckReplicas int
	// AckTimeout bounds the wait for replicas. Default DefaultAckTimeout
	// (250ms).
	AckTimeout time.Duration
	// FenceGap is the counter jump after a failover. Default 1<<32.
	FenceGap int64
	// MaxID is the largest ID handed out. Default and upper bound 2^53-1.
	MaxID int64
	// Breaker tunes the per-shard circuit breakers.
	Breaker failover.BreakerConfig
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Observer, when set, learns the outcome and latency of every
	// reservation (the server feeds Prometheus from it).
	Observer failover.Observer

	// UnsafeNoDefences switches off replication acknowledgement, fencing,
	// the mirror and the regression check: a naive INCR generator that
	// repeats IDs after a failover. For negative-control tests only.
	UnsafeNoDefences bool
}

// DefaultConfig returns the defaults with the given seed addresses.
func DefaultConfig(addrs ...string) Config {
	return Config{Addrs: addrs}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.Shards == 0 {
		c.Shards = DefaultShards
	}
	if c.BlockSize == 0 {
		c.BlockSize = 1000
	}
	if c.MinBlockSize == 0 {
		c.MinBlockSize = 100
	}
	if c.MaxBlockSize == 0 {
		c.MaxBlockSize = 1 << 20
	}
	if c.BlockTarget == 0 {
		c.BlockTarget = 2 * time.Second
	}
	if c.RefillAt == 0 {
		c.RefillAt = 0.2
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first field out of bounds as a *ConfigError.
func (c Config) Validate() error {
	bad := func(field string, v any, format string, args ...any) error {
		return &ConfigError{Field: field, Value: v, Err: fmt.Errorf(format, args...)}
	}
	c = c.withDefaults()
	switch {
	case len(c.Addrs) == 0 && c.Cluster == nil:
		return bad("Addrs", c.Addrs, "at least one seed address host:port is required")
	case !shard.ValidNamespace(c.Namespace):
		return &ConfigError{Field: "Namespace", Value: c.Namespace, Err: ErrInvalidNamespace}
	case c.Shards < 1 || c.Shards > shard.MaxShards:
		return bad("Shards", c.Shards, "want 1 to %d", shard.MaxShards)
	case c.MinBlockSize < 1:
		return bad("MinBlockSize", c.MinBlockSize, "want at least 1")
	case c.MaxBlockSize < c.MinBlockSize || c.MaxBlockSize > 1<<24:
		return bad("MaxBlockSize", c.MaxBlockSize, "want MinBlockSize (%d) to %d", c.MinBlockSize, 1<<24)
	case c.BlockSize < c.MinBlockSize || c.BlockSize > c.MaxBlockSize:
		return bad("BlockSize", c.BlockSize, "want MinBlockSize..MaxBlockSize (%d..%d)", c.MinBlockSize, c.MaxBlockSize)
	case c.BlockTarget < 10*time.Millisecond || c.BlockTarget > time.Hour:
		return bad("BlockTarget", c.BlockTarget, "want 10ms to 1h")
	case c.RefillAt <= 0 || c.RefillAt >= 1:
		return bad("RefillAt", c.RefillAt, "want a fraction between 0 and 1")
	case c.MaxID != 0 && c.MaxID < int64(c.Shards)*1000:
		return bad("MaxID", c.MaxID, "too small for %d shards", c.Shards)
	}
	if err := c.shardOptions().Validate(); err != nil {
		return &ConfigError{Field: "shard options", Value: "", Err: err}
	}
	if c.Cluster == nil {
		if err := c.clusterConfig().Validate(); err != nil {
			return &ConfigError{Field: "Addrs", Value: c.Addrs, Err: err}
		}
	}
	return nil
}

func (c Config) shardOptions() shard.Options {
	return shard.Options{AckReplicas: c.AckReplicas, AckTimeout: c.AckTimeout, FenceGap: c.FenceGap,
		MaxID: c.MaxID, Unsafe: c.UnsafeNoDefences}
}

func (c Config) clusterConfig() cluster.Config {
	ack := c.AckTimeout
	if ack == 0 {
		ack = DefaultAckTimeout
	}
	return cluster.Config{Addrs: c.Addrs, Username: c.Username, Password: c.Password, TLSConfig: c.TLS,
		ReadTimeout: ack + 750*time.Millisecond, Logger: c.Logger}
}
