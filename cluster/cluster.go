// Package cluster is shardseq's connection to a Redis Cluster: an immutable
// Topology (masters, replicas, slot map, node IDs, failure flags) published
// atomically and reloaded periodically and on demand, one pooled go-redis
// client per node for commands that must reach one specific master, and the
// slot math that places keys. It classifies Redis errors (redirects, a
// cluster that is failing over) so that the layers above can decide what to
// retry; it never retries by itself.
//
// It starts no processes: the launcher of local clusters for development and
// tests is internal/lab/localcluster.
package cluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/internal/stall"
)

// Sentinel errors. Match them with errors.Is; the returned errors wrap them
// with the addresses involved and a hint.
var (
	// ErrNotCluster means a seed answered but is a standalone Redis
	// (cluster_enabled:0) or refuses the CLUSTER commands.
	ErrNotCluster = errors.New("cluster: not a redis cluster")
	// ErrUnreachable means no seed or known node answered at all.
	ErrUnreachable = errors.New("cluster: no node reachable")
	// ErrNoMaster means no master serves the slot of a key (the slot is
	// unassigned in the current topology).
	ErrNoMaster = errors.New("cluster: slot not served by any master")
	// ErrClosed is returned by operations on a closed Cluster.
	ErrClosed = errors.New("cluster: closed")
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = errors.New("cluster: invalid config")
)

// ConfigError names the Config field that failed validation and why.
type ConfigError struct {
	Field string
	Value any
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("cluster: invalid config: %s=%v: %v", e.Field, e.Value, e.Err)
}

// Unwrap lets errors.Is match both ErrInvalidConfig and the cause.
func (e *ConfigError) Unwrap() []error { return []error{ErrInvalidConfig, e.Err} }

// Config configures Dial. Zero values mean the documented default; -1
// disables where noted.
type Config struct {
	// URL says where the cluster is and how to log in, as
	// redis://user:password@host:port?addr=host:port (rediss:// for TLS) or
	// a host:port[,host:port...] list; see ParseURL. It is an alternative
	// to Addrs, and combines with Username, Password and TLSConfig as long
	// as each setting is given once (see Resolve).
	URL string
	// Addrs are seed nodes (host:port); Addrs or URL is required. Any node
	// of the cluster will do: the full topology is discovered from it.
	Addrs []string
	// Username and Password authenticate with Redis ACL (or requirepass when
	// Username is empty).
	Username, Password string
	// TLSConfig enables TLS when non-nil; topology addresses then use each
	// node's tls-port when it announces one.
	TLSConfig *tls.Config
	// NewClient, when set, makes every go-redis client the connection
	// opens (the cluster client's node clients and the pooled per-node
	// clients of Node) from the options shardseq chose, as go-redis's
	// ClusterOptions.NewClient does: the place for a custom Dialer, a
	// CredentialsProvider, OnConnect or hooks (e.g. redisotel's
	// InstrumentTracing on the new client). It should return
	// redis.NewClient(opt) after changing opt, if at all, only in what
	// shardseq does not rely on: keep Addr, the timeouts, MaxRetries and
	// DialerRetries. The clients belong to the Cluster, which closes them.
	NewClient func(opt *redis.Options) *redis.Client
	// DialTimeout defaults to 500ms.
	DialTimeout time.Duration
	// ReadTimeout defaults to 1s. Callers that send WAIT must raise it above
	// their WAIT timeout.
	ReadTimeout time.Duration
	// WriteTimeout defaults to 1s.
	WriteTimeout time.Duration
	// PoolSize is the connection pool size per node; 0 keeps go-redis's
	// default of 10 per GOMAXPROCS.
	PoolSize int
	// RefreshInterval is the period of the background topology reload;
	// default 5s, -1 disables it (LazyReload and Reload still work).
	RefreshInterval time.Duration
	// ProbeInterval is how often every master is probed (INFO replication,
	// one command per master): the health that breakers, readiness and
	// repairs act on. Default 1s; -1 disables probing.
	ProbeInterval time.Duration
	// ProbeTimeout bounds one probe; a master that does not answer in time
	// counts as down until it does. Default 500ms.
	ProbeTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

const (
	defaultDialTimeout     = 500 * time.Millisecond
	defaultReadTimeout     = time.Second
	defaultWriteTimeout    = time.Second
	defaultRefreshInterval = 5 * time.Second
	defaultProbeInterval   = time.Second
	defaultProbeTimeout    = 500 * time.Millisecond
	// lazyReloadGap rate-limits LazyReload: a MOVED storm lasting seconds
	// must not turn into back-to-back CLUSTER SHARDS calls.
	lazyReloadGap = 100 * time.Millisecond
)

// Validate checks cfg and returns a *ConfigError naming the first bad field.
func (c Config) Validate() error {
	c, err := c.Resolve()
	if err != nil {
		return err
	}
	if len(c.Addrs) == 0 {
		return &ConfigError{Field: "Addrs", Value: c.Addrs, Err: errors.New("at least one seed address (Addrs or URL) is required")}
	}
	for _, a := range c.Addrs {
		if err := checkAddr(a); err != nil {
			return &ConfigError{Field: "Addrs", Value: a, Err: err}
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DialTimeout", c.DialTimeout}, {"ReadTimeout", c.ReadTimeout}, {"WriteTimeout", c.WriteTimeout}} {
		if d.v < 0 {
			return &ConfigError{Field: d.name, Value: d.v, Err: errors.New("must not be negative")}
		}
	}
	if c.PoolSize < 0 {
		return &ConfigError{Field: "PoolSize", Value: c.PoolSize, Err: errors.New("must not be negative")}
	}
	if c.RefreshInterval < 0 && c.RefreshInterval != -1 {
		return &ConfigError{Field: "RefreshInterval", Value: c.RefreshInterval, Err: errors.New("must be positive, 0 (default 5s) or -1 (disabled)")}
	}
	if (c.ProbeInterval < 0 && c.ProbeInterval != -1) || (c.ProbeInterval > 0 && c.ProbeInterval < 10*time.Millisecond) {
		return &ConfigError{Field: "ProbeInterval", Value: c.ProbeInterval, Err: errors.New("must be at least 10ms, 0 (default 1s) or -1 (disabled)")}
	}
	if c.ProbeTimeout < 0 {
		return &ConfigError{Field: "ProbeTimeout", Value: c.ProbeTimeout, Err: errors.New("must not be negative")}
	}
	return nil
}

// withDefaults returns a copy of c with zero values replaced by defaults.
func (c Config) withDefaults() Config {
	c.Addrs = slices.Clone(c.Addrs)
	if c.DialTimeout == 0 {
		c.DialTimeout = defaultDialTimeout
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = defaultReadTimeout
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = defaultWriteTimeout
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = defaultRefreshInterval
	}
	if c.ProbeInterval == 0 {
		c.ProbeInterval = defaultProbeInterval
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = defaultProbeTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Cluster is a connection to a Redis Cluster: a go-redis ClusterClient for
// ordinary routed commands, an immutable Topology snapshot published
// atomically, and one pooled *redis.Client per node address for callers that
// must talk to one specific master (a reservation script and its WAIT have to
// share a connection). It is safe for concurrent use.
type Cluster struct {
	cfg  Config
	log  *slog.Logger
	cc   *redis.ClusterClient
	topo atomic.Pointer[Topology]

	ctx     context.Context // cancelled by Close; bounds background reloads
	cancel  context.CancelFunc
	unwatch func() // stops this connection's use of the stall heartbeat

	mu     sync.Mutex               // guards nodes, closed and wg.Add
	nodes  map[string]*redis.Client // addr -> client
	closed bool
	wg     sync.WaitGroup // background goroutines

	mon    monitor              // probes of every master
	watch  listeners[*Topology] // called when a reload publishes a new topology
	faults masterFaults         // what writes learned of masters between probes

	// reloadSem serialises reloads so generations stay monotonic: a
	// one-slot semaphore rather than a mutex, so that a caller waiting for
	// another reload (which may take a read timeout per node while every
	// node is frozen) gives up when its context ends.
	reloadSem     chan struct{}
	lastGood      atomic.Value
	readAt        atomic.Int64 // unix nanos of the last successful topology read
	reloading     atomic.Bool
	reloadPending atomic.Bool
}

// Dial validates cfg, connects to the seeds and loads the topology.
//
// It fails with ErrUnreachable when no seed answers, and with ErrNotCluster
// when a seed is a standalone Redis. A cluster whose slots are not all
// covered is still returned (a cluster being set up or resharded is usable
// for the covered slots): Dial logs a warning naming the missing ranges and
// Topology().Covered() reports false.
func Dial(ctx context.Context, cfg Config) (*Cluster, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg, _ = cfg.Resolve() // Validate resolved it without error
	cfg = cfg.withDefaults()
	c := &Cluster{cfg: cfg, log: cfg.Logger, nodes: make(map[string]*redis.Client), reloadSem: make(chan struct{}, 1)}
	c.mon.seen = map[string]string{}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	// The heartbeat that tells a stopped process's timeouts from Redis's,
	// while any connection is open.
	c.unwatch = stall.Watch()
	c.cc = redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:        cfg.Addrs,
		Username:     cfg.Username,
		Password:     cfg.Password,
		TLSConfig:    cfg.TLSConfig,
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		WriteTimeout: cfg.WriteTimeout,
		PoolSize:     cfg.PoolSize,
		NewClient:    cfg.NewClient,
	})
	t, err := c.Reload(ctx)
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	if missing := t.Missing(); len(missing) > 0 {
		c.log.Warn("cluster: not all slots are covered", "missing", formatRanges(missing), "seeds", cfg.Addrs)
	}
	if cfg.RefreshInterval > 0 {
		c.wg.Add(1)
		go c.refreshLoop(cfg.RefreshInterval)
	}
	if cfg.ProbeInterval > 0 {
		c.wg.Add(1)
		go c.probeLoop(cfg.ProbeInterval, cfg.ProbeTimeout)
	}
	return c, nil
}

// Topology returns the current snapshot. It never blocks and never returns
// nil on a Cluster returned by Dial.
func (c *Cluster) Topology() *Topology { return c.topo.Load() }

// ReadAt is when the topology was last read from the cluster. A read that
// finds nothing changed keeps the snapshot (and its CreatedAt, which is when
// the content last changed), so this is the age of what Topology tells.
func (c *Cluster) ReadAt() time.Time { return time.Unix(0, c.readAt.Load()) }

// ClusterClient returns the go-redis cluster client, which routes keyed
// commands itself and follows MOVED/ASK.
func (c *Cluster) ClusterClient() *redis.ClusterClient { return c.cc }

// Node returns the pooled client for one node address, creating it on first
// use with the Config's auth, TLS and timeouts. The client neither retries
// commands (MaxRetries -1) nor dials twice (DialerRetries 1): a failure is
// reported at once so the failover layer, not go-redis, decides what to do.
// Note that go-redis stops dialing a node after PoolSize consecutive dial
// failures and then probes it once a second, so a restarted node can take up
// to a second to be used again. It is closed by Close, or when a
// reload finds that addr left the cluster. On a closed Cluster it returns a
// closed client, whose commands fail with "redis: client is closed".
func (c *Cluster) Node(addr string) *redis.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.nodes[addr]; ok {
		return cl
	}
	newClient := redis.NewClient
	if c.cfg.NewClient != nil {
		newClient = c.cfg.NewClient
	}
	cl := newClient(c.nodeOptions(addr))
	if c.closed {
		_ = cl.Close()
		return cl
	}
	c.nodes[addr] = cl
	return cl
}

func (c *Cluster) nodeOptions(addr string) *redis.Options {
	return &redis.Options{
		Addr:         addr,
		Username:     c.cfg.Username,
		Password:     c.cfg.Password,
		TLSConfig:    c.cfg.TLSConfig,
		DialTimeout:  c.cfg.DialTimeout,
		ReadTimeout:  c.cfg.ReadTimeout,
		WriteTimeout: c.cfg.WriteTimeout,
		PoolSize:     c.cfg.PoolSize,
		MaxRetries:   -1,
		// One dial attempt: go-redis would otherwise retry 5 times 100ms
		// apart, hiding a dead master from the breaker for half a second.
		DialerRetries: 1,
		// Callers bound each attempt with a context deadline shorter than
		// ReadTimeout, so a frozen or vanished master costs one attempt's
		// budget, not a full read timeout.
		ContextTimeoutEnabled: true,
	}
}

// MasterForKey returns the master serving key's slot in the current topology
// and its pooled client. It wraps ErrNoMaster when the slot is unassigned.
// When the master is flagged failed it still returns it, and schedules a
// LazyReload: a promotion is probably under way.
func (c *Cluster) MasterForKey(key string) (Master, *redis.Client, error) {
	if c.isClosed() {
		return Master{}, nil, ErrClosed
	}
	slot := Slot(key)
	m, ok := c.Topology().MasterForSlot(slot)
	if !ok {
		c.LazyReload()
		return Master{}, nil, fmt.Errorf("%w: key %q slot %d", ErrNoMaster, key, slot)
	}
	if m.Failed {
		c.LazyReload()
	}
	return m, c.Node(m.Addr), nil
}

// Close stops the background refresher and prober, waits for them, and closes the cluster client and every node
// client. It is idempotent.
func (c *Cluster) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.unwatch()
	c.mu.Lock()
	nodes := c.nodes
	c.nodes = map[string]*redis.Client{}
	c.mu.Unlock()
	errs := []error{c.cc.Close()}
	for _, cl := range nodes {
		errs = append(errs, cl.Close())
	}
	return errors.Join(errs...)
}

func (c *Cluster) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func isRedisError(err error) bool {
	var re redis.Error
	return errors.As(err, &re)
}

// IsRedirect reports whether err is a MOVED or ASK redirection and returns the
// address to retry at. Redirects are routing, not failures: callers should
// retry at addr (sending ASKING first when ask is true) and, for MOVED,
// schedule a LazyReload, without counting a failure.
func IsRedirect(err error) (addr string, ask bool, ok bool) {
	if a, ok := redis.IsMovedError(err); ok {
		return a, false, true
	}
	if a, ok := redis.IsAskError(err); ok {
		return a, true, true
	}
	return "", false, false
}

// IsClusterDown reports whether err is a transient cluster-state error
// (CLUSTERDOWN, TRYAGAIN, LOADING, READONLY, MASTERDOWN): the node is alive but
// cannot serve the slot right now, typically during a failover. The topology
// should be reloaded and the shard treated as temporarily unavailable.
func IsClusterDown(err error) bool {
	return isRedisError(err) && (redis.IsClusterDownError(err) || redis.IsTryAgainError(err) ||
		redis.IsLoadingError(err) || redis.IsReadOnlyError(err) || redis.IsMasterDownError(err))
}

func formatRanges(rs [][2]int) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		if r[0] == r[1] {
			parts[i] = strconv.Itoa(r[0])
		} else {
			parts[i] = fmt.Sprintf("%d-%d", r[0], r[1])
		}
	}
	return strings.Join(parts, ",")
}
