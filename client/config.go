package client

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// Defences selects how much protection against repeated IDs is on. Only
// AllDefences (the zero value) is safe; the others exist for negative-control
// tests that must find duplicates.
type Defences = shard.Defences

// The values of Defences.
const (
	AllDefences    = shard.AllDefences
	LegacyDefences = shard.LegacyDefences
	NoDefences     = shard.NoDefences
)

// Defaults of Config.
const (
	// DefaultNamespace is the namespace when Config.Namespace is empty.
	DefaultNamespace = "default"
	// DefaultShards is N of a namespace created without one.
	DefaultShards = namespace.DefaultShards
	// DefaultAckTimeout bounds the wait for replicas when Config.AckTimeout
	// is 0.
	DefaultAckTimeout = shard.DefaultAckTimeout
	// DefaultOrderWindow is the ordering window W: an ID requested more
	// than W after another ID was handed out is larger than it.
	DefaultOrderWindow = time.Second
	// DefaultHoldFor is how much traffic a client holds in spare blocks for
	// when no reservation can succeed: with Redis's default
	// cluster-require-full-coverage yes, every master refuses writes between
	// one master's FAIL flag and its replica's promotion (about a second),
	// and after it the new master's writes are not confirmed until the
	// demoted one has resynced, while the shards levelled above a restored
	// counter each need a ceiling raise there: callers of Valkey 8 at its
	// defaults rode spares for up to 4.2 s through a master frozen past
	// node-timeout, and with 4 s most such runs failed callers. 8 s covers
	// that with a margin even when restocking is due (below 6 s).
	DefaultHoldFor = 8 * time.Second
	// DefaultBlockSize, DefaultMinBlockSize and DefaultMaxBlockSize are
	// BlockSize, MinBlockSize and MaxBlockSize when they are 0. A new
	// client starts small and may shrink to one ID: a quiet namespace spends
	// about one sequence number per request, not a block, and a busy one
	// grows 8-fold per refill.
	DefaultBlockSize    int64 = 4
	DefaultMinBlockSize int64 = 1
	DefaultMaxBlockSize int64 = 1 << 20
	// DefaultAttemptTimeout is Breaker.AttemptTimeout when it is 0: one
	// reservation on one shard, the wait for replicas (AckTimeout)
	// included.
	DefaultAttemptTimeout = failover.DefaultAttemptTimeout
)

// Config configures a Client. The zero value of every field but the
// cluster's address (URL or Addrs, or Cluster) is a working default.
type Config struct {
	// URL says where the Redis Cluster is and how to log in:
	// redis://[user[:password]@]host[:port][?addr=host:port&addr=...], or
	// rediss://... for TLS (certificates verified), or a
	// host:port[,host:port...] list. Any node will do as a seed; addr
	// parameters name more. Username, Password and TLS combine with it, each
	// setting given in one place (a password in the URL and in Password is a
	// *ConfigError); TLS with a rediss:// URL supplies a private CA or a
	// client certificate. See cluster.ParseURL for every rule. Ignored when
	// Cluster is set.
	URL string
	// Addrs are seed addresses of the Redis Cluster (host:port), the
	// alternative to URL. Ignored when Cluster is set.
	Addrs []string
	// Username, Password and TLS authenticate to Redis (ACL user,
	// password, TLS); ignored when Cluster is set.
	Username, Password string
	TLS                *tls.Config
	// NewRedisClient, when set, makes every go-redis client of the
	// connection New opens, from the options shardseq chose: the hook for a
	// custom Dialer, a CredentialsProvider, OnConnect, or instrumentation
	// such as redisotel.InstrumentTracing on the new client. Return
	// redis.NewClient(opt), changing opt only in what shardseq does not rely
	// on (keep Addr, the timeouts, MaxRetries and DialerRetries). The
	// clients belong to the Client: Close closes them. Ignored when Cluster
	// is set (pass cluster.Config.NewClient to cluster.Dial instead).
	NewRedisClient func(opt *redis.Options) *redis.Client
	// Cluster shares an open cluster connection (cluster.Dial) between
	// clients, e.g. one client per namespace as the server does. The caller
	// owns it: Close does not close it, and it must outlive the clients.
	// The owner also runs its repairs (failover.StartRepairs, as the server
	// does); a client that dials its own connection runs them itself.
	Cluster *cluster.Cluster
	// Registry shares a shard registry between clients (NewRegistry);
	// default a new one per client.
	Registry *Registry

	// Namespace names the ID space. Default DefaultNamespace. NamespaceRule
	// says what a name may be; ValidateNamespace checks one.
	Namespace string
	// Shards is N, the number of shards of the namespace. 0 (default): the N
	// the namespace was created with, or DefaultShards for a new one. An
	// explicit N that differs from the stored one is refused with
	// ErrShardCountMismatch.
	Shards int
	// Start is the smallest ID a new namespace hands out (to continue above
	// an old counter's maximum). 0: 1. For an existing namespace an explicit
	// Start must match the stored one.
	Start int64
	// NoCreate refuses to create a namespace that does not exist
	// (ErrNamespaceNotFound) instead of creating it on first use, and to
	// recreate one that was deleted (ErrNamespaceDeleted). Without it, a
	// deleted namespace is recreated: it continues above every ID it handed
	// out.
	NoCreate bool
	// CreateShards is N of a namespace this client creates when Shards is
	// 0 (default DefaultShards). Unlike Shards it is not checked against an
	// existing namespace, which is opened with its stored N (`serve
	// --shards`).
	CreateShards int
	// CreateStrict stores strict mode with a namespace this client creates
	// (see Strict). An existing namespace keeps its stored mode.
	CreateStrict bool
	// After makes every ID this client hands out greater than After, spares
	// included: its blocks start above it as above the level it reads from
	// Redis when it opens the namespace. A process that closes a
	// namespace's client and opens another passes the highest ID the first
	// one reserved (Client.Reserved): the level read from Redis leaves out
	// shards that cannot be checked at that moment (a master down or
	// unable to get writes acknowledged), and their IDs may be the highest
	// handed out. `serve` does it when a namespace closes (idle, evicted,
	// deleted) and opens again. 0 (default): no bound.
	After int64

	// Strict reserves every ID with its own acknowledged round trip (B=1):
	// no ID is ever held in this process. Default false (segment mode). A
	// namespace stored strict (CreateStrict, `PUT /v1/namespaces/{ns}` with
	// "strict": true) is served strict by every client whatever this says:
	// the client is strict when either asks for it.
	Strict bool
	// BlockSize is the first block size in segment mode. Default
	// DefaultBlockSize (4).
	BlockSize int64
	// MinBlockSize and MaxBlockSize bound the adaptive block size.
	// Defaults DefaultMinBlockSize (1) and DefaultMaxBlockSize (1<<20).
	MinBlockSize, MaxBlockSize int64
	// HoldFor is how much traffic, at the current rate, the client holds in
	// spare blocks (one per shard) that it hands out only when no
	// reservation can succeed: a cluster-wide CLUSTERDOWN, every master
	// unreachable. IDs handed out from a spare are unique but may be below
	// IDs handed out before (OutOfOrder counts them); once a reservation
	// succeeds again the client returns to fresh blocks and puts the rest
	// of the spare back for the next outage. Spares cost their size in ID
	// space when they are reserved; what is left of them at Close is a
	// gap. Default DefaultHoldFor; -1 holds none (an outage is an error at
	// once).
	HoldFor time.Duration
	// BlockTarget is how long a block should last at the current rate.
	// Default: with ordering, OrderWindow / (4 N), at most 0.2 x
	// OrderWindow (21ms for 12 shards and 1s): every shard then gets a block
	// at least once per half window, so each shard's counter moves by its
	// own blocks and levelling skips next to nothing, and IDs grow about as
	// fast as they are handed out (see docs/CORRECTNESS.md); without
	// ordering 2s.
	BlockTarget time.Duration
	// RefillAt is the fraction of a block handed out before the next one is
	// reserved in the background. Default 0.2.
	RefillAt float64
	// OrderWindow is W: an ID requested more than W after another ID of this
	// client was handed out is larger than it; IDs handed out less than W
	// apart may be in any order. Blocks are retired (their rest becomes
	// gaps) 0.4 x W after they were reserved, and every block starts above
	// the blocks reserved more than W/2 before it. Default
	// DefaultOrderWindow; -1 hands IDs out in no particular order (blocks
	// live until used up; fewest gaps and reservations). At least 10ms.
	OrderWindow time.Duration

	// AckReplicas: replicas that must confirm each write. 0 (default): every
	// replica that could be promoted, at least 1. -1: none (unsafe).
	AckReplicas int
	// AckTimeout bounds the wait for replicas. Default 250ms. It must be
	// below Breaker.AttemptTimeout (default 750ms), which it is part of.
	AckTimeout time.Duration
	// FenceGap is how far above its ceiling a counter whose history changed
	// restarts. Default 0; at most 2^40.
	FenceGap int64
	// CeilingLease is how long a raise of a shard's ceiling should last at
	// the rate its counter grows; it must cover a failover of a ceiling
	// copy's master and a replica's full resync. Default 1m (see
	// shard.DefaultCeilingLease). A fault that rewinds a counter skips up to
	// a lease of sequence numbers.
	CeilingLease time.Duration
	// MaxID is the largest ID handed out. Default and upper bound 2^53-1.
	MaxID int64
	// Breaker tunes the per-shard circuit breakers.
	Breaker BreakerConfig
	// ProbeInterval is how often the client's own cluster connection probes
	// every master (ignored when Cluster is set). Default 1s.
	ProbeInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Observer, when set, learns the outcome and latency of every
	// reservation (the server feeds Prometheus from it).
	Observer Observer

	// UnsafeDefences weakens the protection against repeated IDs. Anything
	// but AllDefences (the default) repeats IDs after some faults; it exists
	// for negative-control tests only.
	UnsafeDefences Defences
}

// DefaultConfig returns the defaults with the given seed addresses.
func DefaultConfig(addrs ...string) Config {
	return Config{Addrs: addrs}.withDefaults()
}

func (c Config) withDefaults() Config {
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.MinBlockSize == 0 {
		c.MinBlockSize = DefaultMinBlockSize
	}
	if c.MaxBlockSize == 0 {
		c.MaxBlockSize = DefaultMaxBlockSize
	}
	if c.BlockSize == 0 {
		c.BlockSize = min(max(DefaultBlockSize, c.MinBlockSize), c.MaxBlockSize)
	}
	if c.HoldFor == 0 {
		c.HoldFor = DefaultHoldFor
	}
	if c.OrderWindow == 0 {
		c.OrderWindow = DefaultOrderWindow
	}
	if c.BlockTarget == 0 {
		c.BlockTarget = c.blockTargetFor(cmp.Or(c.Shards, c.CreateShards, DefaultShards))
	}
	if c.RefillAt == 0 {
		c.RefillAt = 0.2
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// blockTargetFor is the default BlockTarget for a namespace of n shards.
func (c Config) blockTargetFor(n int) time.Duration {
	if !c.ordered() {
		return 2 * time.Second
	}
	return max(min(c.OrderWindow/time.Duration(4*n), c.OrderWindow/5), time.Millisecond)
}

// ordered reports whether IDs are handed out in order (OrderWindow not -1).
func (c Config) ordered() bool { return c.OrderWindow > 0 }

// retireAfter is how long after its reservation was sent a block may hand
// out IDs; levelLag how long before a reservation a block must have been
// sent for the new block to start above it. retireAfter + levelLag stays
// below OrderWindow, leaving a tenth of it for IDs taken just before a
// block retired but returned just after.
func (c Config) retireAfter() time.Duration { return c.OrderWindow * 4 / 10 }
func (c Config) levelLag() time.Duration    { return c.OrderWindow / 2 }

// Validate reports the first field out of bounds as a *ConfigError.
func (c Config) Validate() error {
	bad := func(field string, v any, format string, args ...any) error {
		return &ConfigError{Field: field, Value: v, Err: fmt.Errorf(format, args...)}
	}
	c = c.withDefaults()
	switch {
	case len(c.Addrs) == 0 && c.URL == "" && c.Cluster == nil:
		return bad("URL", "", "where is the Redis Cluster? Set URL (redis://host:port), Addrs (host:port seeds) or Cluster")
	case !namespace.ValidNamespace(c.Namespace):
		return &ConfigError{Field: "Namespace", Value: c.Namespace, Err: ErrInvalidNamespace}
	case c.Shards != 0 && !shard.ValidShards(c.Shards):
		return bad("Shards", c.Shards, "want 1 to %d (0: the stored N, or %d for a new namespace)", MaxShards, DefaultShards)
	case c.CreateShards != 0 && !shard.ValidShards(c.CreateShards):
		return bad("CreateShards", c.CreateShards, "want 1 to %d (0: %d)", MaxShards, DefaultShards)
	case c.After < 0:
		return bad("After", c.After, "want 0 (none) or a positive ID")
	case c.Start < 0 || c.Start > MaxStart(c.MaxID):
		return bad("Start", c.Start, "want 0 (default 1) or a positive ID up to %d (half of MaxID)", MaxStart(c.MaxID))
	case c.MinBlockSize < 1:
		return bad("MinBlockSize", c.MinBlockSize, "want at least 1")
	case c.MaxBlockSize < c.MinBlockSize || c.MaxBlockSize > 1<<24:
		return bad("MaxBlockSize", c.MaxBlockSize, "want MinBlockSize (%d) to %d", c.MinBlockSize, 1<<24)
	case c.BlockSize < c.MinBlockSize || c.BlockSize > c.MaxBlockSize:
		return bad("BlockSize", c.BlockSize, "want MinBlockSize..MaxBlockSize (%d..%d)", c.MinBlockSize, c.MaxBlockSize)
	case c.OrderWindow != -1 && (c.OrderWindow < 10*time.Millisecond || c.OrderWindow > time.Hour):
		return bad("OrderWindow", c.OrderWindow, "want 10ms to 1h, 0 (default %v) or -1 (unordered)", DefaultOrderWindow)
	case c.BlockTarget < time.Millisecond || c.BlockTarget > time.Hour:
		return bad("BlockTarget", c.BlockTarget, "want 1ms to 1h")
	case c.ordered() && c.BlockTarget > c.retireAfter():
		return bad("BlockTarget", c.BlockTarget, "want at most 0.4 x OrderWindow (%v): blocks retire then", c.retireAfter())
	case c.HoldFor != -1 && (c.HoldFor < 0 || c.HoldFor > time.Minute):
		return bad("HoldFor", c.HoldFor, "want up to 1m, 0 (default %v) or -1 (no spares)", DefaultHoldFor)
	case c.RefillAt <= 0 || c.RefillAt >= 1:
		return bad("RefillAt", c.RefillAt, "want a fraction between 0 and 1")
	case c.MaxID != 0 && c.MaxID < int64(max(c.Shards, DefaultShards))*1000:
		return bad("MaxID", c.MaxID, "too small for %d shards", max(c.Shards, DefaultShards))
	}
	if err := c.shardOptions().Validate(); err != nil {
		return &ConfigError{Field: "shard options", Value: "", Err: err}
	}
	if err := c.Breaker.Validate(); err != nil {
		return &ConfigError{Field: "Breaker", Value: c.Breaker, Err: err}
	}
	// The wait for replicas is part of one attempt on a shard: an attempt
	// that ends first fails every reservation a slow WAIT would confirm.
	if ack, attempt := cmp.Or(c.AckTimeout, DefaultAckTimeout), cmp.Or(c.Breaker.AttemptTimeout, DefaultAttemptTimeout); ack >= attempt {
		return bad("AckTimeout", ack, "want less than Breaker.AttemptTimeout (%v), which the wait for replicas is part of", attempt)
	}
	if c.Cluster == nil {
		if err := c.clusterConfig().Validate(); err != nil {
			// The connection fields have the same names here but TLS.
			ce := &ConfigError{Field: "Addrs", Value: c.Addrs, Err: err}
			if cce := (*cluster.ConfigError)(nil); errors.As(err, &cce) {
				ce.Field, ce.Value, ce.Err = cce.Field, cce.Value, cce.Err
				if ce.Field == "TLSConfig" {
					ce.Field = "TLS"
				}
			}
			return ce
		}
	}
	return nil
}

// ShardOptions are the shard-level options this configuration gives: what
// the namespace functions (PutNamespace, DescribeNamespace, DeleteNamespace)
// take to act as this client would.
func (c Config) ShardOptions() shard.Options { return c.shardOptions() }

func (c Config) shardOptions() shard.Options {
	return shard.Options{AckReplicas: c.AckReplicas, AckTimeout: c.AckTimeout, FenceGap: c.FenceGap,
		CeilingLease: c.CeilingLease, MaxID: c.MaxID, UnsafeDefences: c.UnsafeDefences}
}

func (c Config) settings() namespace.Settings {
	return namespace.Settings{Shards: c.Shards, Start: c.Start, NoCreate: c.NoCreate, CreateShards: c.CreateShards, Strict: c.CreateStrict}
}

func (c Config) clusterConfig() cluster.Config {
	ack := c.AckTimeout
	if ack == 0 {
		ack = DefaultAckTimeout
	}
	return cluster.Config{URL: c.URL, Addrs: c.Addrs, Username: c.Username, Password: c.Password, TLSConfig: c.TLS,
		NewClient: c.NewRedisClient, ReadTimeout: ack + 750*time.Millisecond, ProbeInterval: c.ProbeInterval, Logger: c.Logger}
}
