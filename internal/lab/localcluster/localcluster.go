// Package localcluster launches local Redis Clusters of real redis-server
// (or valkey-server) processes for development, tests, benchmarks and
// `shardseq cluster`, and injects real faults into them: kill -9, SIGSTOP,
// restarts without data or from the node's own files, and iptables
// partitions between nodes that bind their own loopback addresses.
//
// It is the lab, not the product: production code talks to a cluster through
// package cluster only. What the launcher knows of the cluster's state it
// reads live from the nodes (CLUSTER NODES on a running node), in one place:
// MasterOf, Masters, ReplicasOf and WaitPromoted all read that view, so "a
// replica was promoted" means the same thing to the command, the test
// harness, the chaos engine and the benchmarks.
//
// Linux is the supported platform: liveness and PID ownership are read from
// /proc (see proc_other.go for the fallback elsewhere).
package localcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Errors of the launcher. Match them with errors.Is.
var (
	// ErrRedisNotInstalled is returned by Start when redis-server cannot be
	// found.
	ErrRedisNotInstalled = errors.New("cluster: redis-server not installed")
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = errors.New("localcluster: invalid config")
)

// ConfigError names the Config field that failed validation and why.
type ConfigError struct {
	Field string
	Value any
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("localcluster: invalid config: %s=%v: %v", e.Field, e.Value, e.Err)
}

// Unwrap lets errors.Is match both ErrInvalidConfig and the cause.
func (e *ConfigError) Unwrap() []error { return []error{ErrInvalidConfig, e.Err} }

// StateFile is the name of the JSON file Start writes in Config.Dir so that
// another process (`shardseq cluster down|status`) can re-attach with Open.
const StateFile = "shardseq-cluster.json"

// Config configures a local cluster of real redis-server processes.
// Zero values mean the documented default.
type Config struct {
	// Masters is the number of masters; default 3.
	Masters int `json:"masters"`
	// Replicas is the number of replicas per master; default 1, -1 for none.
	Replicas int `json:"replicas"`
	// Host is the address every node binds and clients dial; default
	// "127.0.0.1". Ignored when PerNodeIP is set.
	Host string `json:"host"`
	// PerNodeIP makes node k bind its own loopback address
	// 127.0.0.(IPBase+k) (with --bind-source-addr and protected mode off), so
	// tests can cut links between two nodes with iptables while clients on
	// 127.0.0.1 still reach both.
	PerNodeIP bool `json:"per_node_ip"`
	// IPBase is the last octet of node 0's address with PerNodeIP; default 11.
	IPBase int `json:"ip_base"`
	// Partitions implies PerNodeIP and lets Partition and Heal cut links
	// between nodes with iptables DROP rules in a chain of this cluster's own
	// (see PartitionsAvailable); Close removes them. It needs root and
	// iptables, and works only in the process that started the cluster.
	Partitions bool `json:"partitions"`
	// BasePort is node 0's data port; node k uses BasePort+k and the cluster
	// bus BasePort+k+10000. Default 7000. Every bus port must stay below the
	// kernel's ephemeral port range, or an outgoing connection may take it
	// and redis-server aborts at start.
	BasePort int `json:"base_port"`
	// Dir is required: node k keeps nodes.conf, data and redis.log in
	// Dir/node-k, and the state file lives in Dir.
	Dir string `json:"dir"`
	// NodeTimeout is cluster-node-timeout; default 2s. Failover after a
	// master dies takes roughly twice this.
	NodeTimeout time.Duration `json:"node_timeout"`
	// FullCoverage runs every node with cluster-require-full-coverage yes,
	// Redis's and Valkey's default: from a master's FAIL flag until a
	// replica takes its slots over, every master answers CLUSTERDOWN. The
	// default, false, runs "no", what shardseq recommends (and what every
	// test ran before issue 22). When false, SHARDSEQ_FULL_COVERAGE=yes
	// (FullCoverageEnv) turns it on, for `shardseq cluster up`, `shardseq
	// verify` and whole test runs at Redis's defaults.
	FullCoverage bool `json:"full_coverage"`
	// Persistence is what a node writes and loads, as users run Redis:
	// PersistNone (the default) has no save points and no AOF, but a replica
	// still writes the dump.rdb of every full sync and a restart loads it, as
	// Redis does; PersistRDB adds Debian's (and Redis's) save lines;
	// PersistAOF is appendonly with fsync everysec.
	Persistence Persistence `json:"persistence"`
	// Engine picks redis-server/redis-cli or valkey-server/valkey-cli when
	// ServerBin and CliBin are unset. Default EngineRedis, or the
	// SHARDSEQ_ENGINE environment variable (redis or valkey).
	Engine Engine `json:"engine"`
	// ServerBin and CliBin default to redis-server and redis-cli in PATH.
	ServerBin string `json:"server_bin"`
	CliBin    string `json:"cli_bin"`
	// ExtraArgs are appended to every redis-server command line (later
	// arguments override earlier ones).
	ExtraArgs []string `json:"extra_args"`
	// Detach starts every node in its own session so the cluster outlives
	// this process (`shardseq cluster up`). Without it, nodes are killed when
	// this process dies (Linux) and by Close.
	Detach bool `json:"detach"`
	// Logf receives progress messages; nil discards them.
	Logf func(format string, args ...any) `json:"-"`

	// useCLI builds the cluster with `redis-cli --cluster create` instead of
	// ADDSLOTSRANGE/MEET/REPLICATE; tests use it to check EvenSlotRanges.
	useCLI bool
}

func (c Config) replicas() int { return max(c.Replicas, 0) }

func (c Config) nodeCount() int { return c.Masters * (1 + c.replicas()) }

// withDefaults fills defaults, resolves binaries and validates.
func (c Config) withDefaults() (Config, error) {
	if c.Masters == 0 {
		c.Masters = 3
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.IPBase == 0 {
		c.IPBase = 11
	}
	if c.BasePort == 0 {
		c.BasePort = 7000
	}
	if c.NodeTimeout == 0 {
		c.NodeTimeout = 2 * time.Second
	}
	if c.Partitions {
		c.PerNodeIP = true
	}
	if !c.FullCoverage {
		full, err := FullCoverageFromEnv()
		if err != nil {
			return c, &ConfigError{Field: "FullCoverage", Value: os.Getenv(FullCoverageEnv), Err: err}
		}
		c.FullCoverage = full
	}
	c.ExtraArgs = slices.Clone(c.ExtraArgs)
	bad := func(field string, v any, why string) error {
		return &ConfigError{Field: field, Value: v, Err: errors.New(why)}
	}
	switch {
	case c.Masters < 1:
		return c, bad("Masters", c.Masters, "must be at least 1")
	case c.Replicas < -1:
		return c, bad("Replicas", c.Replicas, "must be >= 0 (0 means 1), or -1 for none")
	case c.Dir == "":
		return c, bad("Dir", c.Dir, "required")
	case c.NodeTimeout < 100*time.Millisecond:
		return c, bad("NodeTimeout", c.NodeTimeout, "must be at least 100ms")
	case c.PerNodeIP && (c.IPBase < 1 || c.IPBase+c.nodeCount()-1 > 254):
		return c, bad("IPBase", c.IPBase, fmt.Sprintf("127.0.0.%d..%d is not a valid loopback range", c.IPBase, c.IPBase+c.nodeCount()-1))
	case c.BasePort < 1024:
		return c, bad("BasePort", c.BasePort, "must be >= 1024")
	}
	if eph := ephemeralPortStart(); c.BasePort+c.nodeCount()-1+10000 >= eph {
		return c, bad("BasePort", c.BasePort, fmt.Sprintf(
			"bus port %d (data port + 10000) would fall in the ephemeral port range starting at %d; use a data port below %d",
			c.BasePort+c.nodeCount()-1+10000, eph, eph-10000-c.nodeCount()+1))
	}
	dir, err := filepath.Abs(c.Dir)
	if err != nil {
		return c, bad("Dir", c.Dir, err.Error())
	}
	c.Dir = dir
	if c.Persistence == "" {
		c.Persistence = PersistNone
	}
	if !slices.Contains([]Persistence{PersistNone, PersistRDB, PersistAOF}, c.Persistence) {
		return c, bad("Persistence", c.Persistence, "want none, rdb or aof")
	}
	if c.Engine == "" {
		c.Engine = EngineFromEnv()
	}
	if c.Engine != EngineRedis && c.Engine != EngineValkey {
		return c, bad("Engine", c.Engine, "want redis or valkey (SHARDSEQ_ENGINE)")
	}
	if c.ServerBin == "" {
		p, err := exec.LookPath(c.Engine.server())
		if err != nil {
			return c, fmt.Errorf("%w: %s: install it: %s, or set ServerBin", ErrRedisNotInstalled, c.Engine.server(), c.Engine.installHint())
		}
		c.ServerBin = p
	}
	if c.CliBin == "" {
		if p, err := exec.LookPath(c.Engine.cli()); err == nil {
			c.CliBin = p
		}
	}
	return c, nil
}

func (c Config) logf(format string, args ...any) {
	if c.Logf != nil {
		c.Logf(format, args...)
	}
}

// ephemeralPortStart reads the first port of the kernel's ephemeral range.
func ephemeralPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return n
}

// Node describes one node of a Cluster.
type Node struct {
	Index int    `json:"index"`
	Addr  string `json:"addr"`
	Host  string `json:"host"`
	Port  int    `json:"port"`
	Dir   string `json:"dir"`
	// ID is the cluster node ID; it survives restarts (nodes.conf is kept).
	ID string `json:"id"`
	// PID is the current process, 0 when the node is stopped.
	PID int `json:"pid"`
	// State is "running", "paused" (SIGSTOP) or "stopped" (killed).
	State string `json:"state"`
}

const (
	stateRunning = "running"
	statePaused  = "paused"
	stateStopped = "stopped"
)

type localProc struct {
	Node
	exited chan struct{} // closed when our child exits; nil if not our child
}

// reaped reports whether n is our child and has exited: its PID may already
// belong to another process and must not be signalled.
func (n *localProc) reaped() bool {
	if n.exited == nil {
		return false
	}
	select {
	case <-n.exited:
		return true
	default:
		return false
	}
}

// Cluster owns a set of redis-server processes forming one cluster. Its
// methods are safe for concurrent use. Fault verbs (Kill, Pause, ...) take a
// node address as returned by Addrs.
type Cluster struct {
	cfg Config

	mu      sync.Mutex // guards nodes' state, clients and closed; never held across waits on the cluster
	nodes   []*localProc
	clients map[string]*redis.Client
	closed  bool

	net *netfilter // with Config.Partitions, in the process that started the cluster
}

// localState is the JSON state file.
type localState struct {
	Config Config `json:"config"`
	Nodes  []Node `json:"nodes"`
}

// Start starts Masters*(1+Replicas) redis-server processes, builds a
// cluster from them and waits until it is healthy (see WaitHealthy). Master i
// is node i and serves EvenSlotRanges(Masters)[i]; replica j of master i is
// node Masters + i*Replicas + j. On failure it stops everything it started
// and the error includes the tail of the failing node's log. Without a
// deadline on ctx it gives up after one minute.
func Start(ctx context.Context, cfg Config) (*Cluster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	lc := &Cluster{cfg: cfg, clients: map[string]*redis.Client{}}
	if cfg.Partitions {
		if err := PartitionsAvailable(); err != nil {
			return nil, err
		}
		lc.net = newNetfilter(cfg.BasePort)
	}
	for k := range cfg.nodeCount() {
		host := cfg.Host
		if cfg.PerNodeIP {
			host = fmt.Sprintf("127.0.0.%d", cfg.IPBase+k)
		}
		port := cfg.BasePort + k
		lc.nodes = append(lc.nodes, &localProc{Node: Node{
			Index: k, Host: host, Port: port,
			Addr: net.JoinHostPort(host, strconv.Itoa(port)),
			Dir:  filepath.Join(cfg.Dir, fmt.Sprintf("node-%d", k)),
		}})
	}
	for _, n := range lc.nodes {
		for _, p := range []int{n.Port, n.Port + 10000} {
			if err := portFree(n.Host, p); err != nil {
				return nil, err
			}
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	start := time.Now()
	fail := func(err error) (*Cluster, error) {
		err = lc.withLogTail(err)
		_ = lc.Close()
		return nil, err
	}
	lc.mu.Lock()
	for _, n := range lc.nodes {
		if err := lc.spawn(n); err != nil {
			lc.mu.Unlock()
			return fail(err)
		}
	}
	lc.mu.Unlock()
	if err := lc.saveState(); err != nil {
		return fail(err)
	}
	for _, n := range lc.nodes {
		if err := lc.waitPing(ctx, n); err != nil {
			return fail(err)
		}
	}
	cfg.logf("cluster: %d redis-server processes up in %v", len(lc.nodes), time.Since(start).Round(time.Millisecond))
	if cfg.useCLI {
		err = lc.createWithCLI(ctx)
	} else {
		err = lc.create(ctx)
	}
	if err != nil {
		return fail(err)
	}
	if err := lc.WaitHealthy(ctx); err != nil {
		return fail(err)
	}
	if err := lc.saveState(); err != nil {
		return fail(err)
	}
	cfg.logf("cluster: %d masters, %d replicas each (%s, node timeout %v, full coverage %s), healthy after %v",
		cfg.Masters, cfg.replicas(), cfg.Engine, cfg.NodeTimeout, yesNo(cfg.FullCoverage), time.Since(start).Round(time.Millisecond))
	return lc, nil
}

// Open re-attaches to a cluster started (usually with Detach) by
// Start in dir, from its state file. The processes are not children of
// the caller: Close and Kill signal them by PID after checking the PID still
// belongs to a redis-server on the node's port.
func Open(dir string) (*Cluster, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("cluster: no local cluster in %s: %w", dir, err)
	}
	var st localState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("cluster: corrupt state file %s: %w", filepath.Join(dir, StateFile), err)
	}
	lc := &Cluster{cfg: st.Config, clients: map[string]*redis.Client{}}
	for _, n := range st.Nodes {
		lc.nodes = append(lc.nodes, &localProc{Node: n})
	}
	return lc, nil
}

func portFree(host string, port int) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cluster: port %d busy (cannot listen on %s; data port + 10000 is the cluster bus port): %w", port, addr, err)
	}
	return ln.Close()
}

func (lc *Cluster) saveState() error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.saveStateLocked()
}

// saveStateLocked writes the state file. Caller holds lc.mu, so the file
// always matches the in-memory state; it is small and local.
func (lc *Cluster) saveStateLocked() error {
	st := localState{Config: lc.cfg}
	for _, n := range lc.nodes {
		st.Nodes = append(st.Nodes, n.Node)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	path := filepath.Join(lc.cfg.Dir, StateFile)
	if err := os.WriteFile(path+".tmp", b, 0o644); err != nil {
		return fmt.Errorf("cluster: writing state: %w", err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return fmt.Errorf("cluster: writing state: %w", err)
	}
	return nil
}

// Addrs returns every node address, masters of the initial layout first. Any
// of them is a valid seed.
func (lc *Cluster) Addrs() []string {
	nodes := lc.Nodes()
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Addr
	}
	return out
}

// Nodes returns a copy of every node's description.
func (lc *Cluster) Nodes() []Node {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	out := make([]Node, len(lc.nodes))
	for i, n := range lc.nodes {
		out[i] = n.Node
	}
	return out
}

// NodeByAddr returns the node with address addr.
func (lc *Cluster) NodeByAddr(addr string) (Node, bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if n := lc.find(addr); n != nil {
		return n.Node, true
	}
	return Node{}, false
}

func (lc *Cluster) find(addr string) *localProc {
	for _, n := range lc.nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// Close stops every node (SIGTERM, then SIGKILL after a short grace), waits
// until the processes are gone, closes its clients, removes every iptables
// rule it added and the state file. Data directories are left in place. It
// is idempotent.
func (lc *Cluster) Close() error {
	lc.mu.Lock()
	if lc.closed {
		lc.mu.Unlock()
		return nil
	}
	lc.closed = true
	var errs []error
	var alive []*localProc
	for _, n := range lc.nodes {
		if n.PID == 0 || n.State == stateStopped || n.reaped() {
			continue
		}
		if n.exited == nil && !lc.ownsPID(n) {
			continue
		}
		if n.State == statePaused {
			_ = syscall.Kill(n.PID, syscall.SIGCONT)
		}
		_ = syscall.Kill(n.PID, syscall.SIGTERM)
		alive = append(alive, n)
	}
	grace := time.Now().Add(500 * time.Millisecond)
	for _, n := range alive {
		if !waitGone(n, max(time.Until(grace), time.Millisecond)) {
			if err := lc.killLocked(n, syscall.SIGKILL, 5*time.Second); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		n.PID, n.State = 0, stateStopped
	}
	clients := lc.clients
	lc.clients = map[string]*redis.Client{}
	lc.mu.Unlock()
	for _, cl := range clients {
		_ = cl.Close()
	}
	if lc.net != nil {
		if err := lc.net.close(); err != nil {
			errs = append(errs, fmt.Errorf("cluster: removing iptables rules: %w", err))
		}
	}
	if err := os.Remove(filepath.Join(lc.cfg.Dir, StateFile)); err != nil && !os.IsNotExist(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
