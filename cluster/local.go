package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// ErrRedisNotInstalled is returned by StartLocal when redis-server cannot be
// found.
var ErrRedisNotInstalled = errors.New("cluster: redis-server not installed")

// StateFile is the name of the JSON file StartLocal writes in LocalConfig.Dir
// so that another process (`shardseq cluster down|status`) can re-attach with
// OpenLocal.
const StateFile = "shardseq-cluster.json"

// LocalConfig configures a local cluster of real redis-server processes.
// Zero values mean the documented default.
type LocalConfig struct {
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
	// Persistence enables appendonly (fsync everysec). By default a node has
	// no persistence at all (no RDB snapshots, and replicas load the
	// replication stream straight into memory), so a restarted node comes
	// back empty, as a production node without persistence would.
	Persistence bool `json:"persistence"`
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

func (c LocalConfig) replicas() int { return max(c.Replicas, 0) }

func (c LocalConfig) nodeCount() int { return c.Masters * (1 + c.replicas()) }

// withDefaults fills defaults, resolves binaries and validates.
func (c LocalConfig) withDefaults() (LocalConfig, error) {
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
	c.ExtraArgs = slices.Clone(c.ExtraArgs)
	bad := func(field string, v any, why string) error {
		return &ConfigError{Field: "LocalConfig." + field, Value: v, Reason: why}
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
	if c.ServerBin == "" {
		p, err := exec.LookPath("redis-server")
		if err != nil {
			return c, fmt.Errorf("%w: install it: apt-get install redis-server (Debian), or set ServerBin", ErrRedisNotInstalled)
		}
		c.ServerBin = p
	}
	if c.CliBin == "" {
		if p, err := exec.LookPath("redis-cli"); err == nil {
			c.CliBin = p
		}
	}
	return c, nil
}

func (c LocalConfig) logf(format string, args ...any) {
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

// LocalNode describes one node of a LocalCluster.
type LocalNode struct {
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
	LocalNode
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

// LocalCluster owns a set of redis-server processes forming one cluster. Its
// methods are safe for concurrent use. Fault verbs (Kill, Pause, ...) take a
// node address as returned by Addrs.
type LocalCluster struct {
	cfg LocalConfig

	mu      sync.Mutex // guards nodes' state, clients and closed; never held across waits on the cluster
	nodes   []*localProc
	clients map[string]*redis.Client
	closed  bool
}

// localState is the JSON state file.
type localState struct {
	Config LocalConfig `json:"config"`
	Nodes  []LocalNode `json:"nodes"`
}

// StartLocal starts Masters*(1+Replicas) redis-server processes, builds a
// cluster from them and waits until it is healthy (see WaitHealthy). Master i
// is node i and serves EvenSlotRanges(Masters)[i]; replica j of master i is
// node Masters + i*Replicas + j. On failure it stops everything it started
// and the error includes the tail of the failing node's log. Without a
// deadline on ctx it gives up after one minute.
func StartLocal(ctx context.Context, cfg LocalConfig) (*LocalCluster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	lc := &LocalCluster{cfg: cfg, clients: map[string]*redis.Client{}}
	for k := range cfg.nodeCount() {
		host := cfg.Host
		if cfg.PerNodeIP {
			host = fmt.Sprintf("127.0.0.%d", cfg.IPBase+k)
		}
		port := cfg.BasePort + k
		lc.nodes = append(lc.nodes, &localProc{LocalNode: LocalNode{
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
	fail := func(err error) (*LocalCluster, error) {
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
	cfg.logf("cluster: %d masters, %d replicas each, healthy after %v", cfg.Masters, cfg.replicas(), time.Since(start).Round(time.Millisecond))
	return lc, nil
}

// OpenLocal re-attaches to a cluster started (usually with Detach) by
// StartLocal in dir, from its state file. The processes are not children of
// the caller: Close and Kill signal them by PID after checking the PID still
// belongs to a redis-server on the node's port.
func OpenLocal(dir string) (*LocalCluster, error) {
	b, err := os.ReadFile(filepath.Join(dir, StateFile))
	if err != nil {
		return nil, fmt.Errorf("cluster: no local cluster in %s: %w", dir, err)
	}
	var st localState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("cluster: corrupt state file %s: %w", filepath.Join(dir, StateFile), err)
	}
	lc := &LocalCluster{cfg: st.Config, clients: map[string]*redis.Client{}}
	for _, n := range st.Nodes {
		lc.nodes = append(lc.nodes, &localProc{LocalNode: n})
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

func (lc *LocalCluster) serverArgs(n *localProc) []string {
	c := lc.cfg
	args := []string{
		"--port", strconv.Itoa(n.Port),
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.FormatInt(c.NodeTimeout.Milliseconds(), 10),
		"--cluster-allow-reads-when-down", "no",
		// With full coverage required (the Redis default), every master
		// refuses all writes from the moment one master is marked failed
		// until its replica is promoted; without it, the other masters keep
		// serving their own slots, which is what lets the other shards serve
		// through a failover. shardseq recommends it for production too.
		"--cluster-require-full-coverage", "no",
		"--dir", n.Dir,
		"--logfile", "redis.log",
		"--daemonize", "no",
		"--repl-diskless-sync", "yes",
		"--repl-diskless-sync-delay", "0",
	}
	if c.PerNodeIP {
		args = append(args, "--bind", n.Host, "--bind-source-addr", n.Host, "--protected-mode", "no")
	} else {
		args = append(args, "--bind", n.Host)
	}
	if c.Persistence {
		args = append(args, "--appendonly", "yes", "--appendfsync", "everysec")
	} else {
		// No snapshots, and replicas load the sync stream into memory
		// (swapdb) instead of writing dump.rdb, which a restart would load.
		args = append(args, "--save", "", "--appendonly", "no", "--repl-diskless-load", "swapdb")
	}
	return append(args, c.ExtraArgs...)
}

// spawn starts n's redis-server. Caller holds lc.mu.
func (lc *LocalCluster) spawn(n *localProc) error {
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	out, err := os.OpenFile(filepath.Join(n.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer out.Close()
	cmd := exec.Command(lc.cfg.ServerBin, lc.serverArgs(n)...)
	cmd.Dir = n.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr(lc.cfg.Detach)
	if err := cmd.Start(); err != nil {
		return &nodeError{n.Index, fmt.Errorf("cluster: starting %s: %w", n.Addr, err)}
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // reap; the exit is detected through exited
		close(exited)
	}()
	n.PID, n.exited, n.State = cmd.Process.Pid, exited, stateRunning
	return nil
}

// nodeError ties an error to a node so its log tail can be attached.
type nodeError struct {
	index int
	err   error
}

func (e *nodeError) Error() string { return e.err.Error() }
func (e *nodeError) Unwrap() error { return e.err }

// withLogTail appends the log tail of the node err is about, if any.
func (lc *LocalCluster) withLogTail(err error) error {
	var ne *nodeError
	if !errors.As(err, &ne) || ne.index < 0 || ne.index >= len(lc.nodes) {
		return err
	}
	n := lc.nodes[ne.index]
	return fmt.Errorf("%w\n--- tail of %s ---\n%s%s", err,
		filepath.Join(n.Dir, "redis.log"), tail(filepath.Join(n.Dir, "redis.log"), 15), tail(filepath.Join(n.Dir, "stdout.log"), 5))
}

func tail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 8 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(-max, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	ls := strings.SplitAfter(string(b), "\n")
	if len(ls) > lines+1 {
		ls = ls[len(ls)-lines-1:]
	}
	return strings.Join(ls, "")
}

func (lc *LocalCluster) client(addr string) *redis.Client {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if cl, ok := lc.clients[addr]; ok {
		return cl
	}
	cl := redis.NewClient(&redis.Options{
		Addr: addr, DialTimeout: 500 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: -1, DialerRetries: 1, PoolSize: 4, DisableIdentity: true,
	})
	if !lc.closed {
		lc.clients[addr] = cl
	}
	return cl
}

// poll calls f every tick until it returns nil or ctx ends; then it returns
// the last error of f, wrapped with what was awaited.
func poll(ctx context.Context, what string, f func() error) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for %s: %w (last error: %w)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func (lc *LocalCluster) waitPing(ctx context.Context, n *localProc) error {
	cl := lc.client(n.Addr)
	return poll(ctx, n.Addr+" to answer PING", func() error {
		if n.exited != nil {
			select {
			case <-n.exited:
				return &nodeError{n.Index, fmt.Errorf("cluster: redis-server %s exited at start", n.Addr)}
			default:
			}
		}
		// Probe the port first: go-redis logs every failed dial.
		conn, err := net.DialTimeout("tcp", n.Addr, 200*time.Millisecond)
		if err != nil {
			return &nodeError{n.Index, fmt.Errorf("cluster: %s: %w", n.Addr, err)}
		}
		_ = conn.Close()
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := cl.Ping(pctx).Err(); err != nil {
			return &nodeError{n.Index, fmt.Errorf("cluster: %s: %w", n.Addr, err)}
		}
		return nil
	})
}

// create builds the cluster by hand: the same epochs and slot ranges as
// redis-cli, but a deterministic master/replica layout and no fixed sleeps.
func (lc *LocalCluster) create(ctx context.Context) error {
	for i, n := range lc.nodes {
		cl := lc.client(n.Addr)
		id, err := cl.Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return &nodeError{i, fmt.Errorf("cluster: CLUSTER MYID on %s: %w", n.Addr, err)}
		}
		n.ID = id
		// Distinct config epochs up front, as redis-cli does, so the nodes
		// need not run epoch-collision resolution.
		if err := cl.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err(); err != nil {
			return &nodeError{i, fmt.Errorf("cluster: CLUSTER SET-CONFIG-EPOCH on %s: %w", n.Addr, err)}
		}
	}
	for i, r := range EvenSlotRanges(lc.cfg.Masters) {
		n := lc.nodes[i]
		if err := lc.client(n.Addr).Do(ctx, "CLUSTER", "ADDSLOTSRANGE", r[0], r[1]).Err(); err != nil {
			return &nodeError{i, fmt.Errorf("cluster: CLUSTER ADDSLOTSRANGE %d %d on %s: %w", r[0], r[1], n.Addr, err)}
		}
	}
	first := lc.client(lc.nodes[0].Addr)
	for _, n := range lc.nodes[1:] {
		if err := first.Do(ctx, "CLUSTER", "MEET", n.Host, n.Port).Err(); err != nil {
			return &nodeError{0, fmt.Errorf("cluster: CLUSTER MEET %s: %w", n.Addr, err)}
		}
	}
	// Every node must know every other one before REPLICATE can name it.
	for _, n := range lc.nodes {
		cl := lc.client(n.Addr)
		err := poll(ctx, n.Addr+" to know all nodes", func() error {
			text, err := cl.ClusterNodes(ctx).Result()
			if err != nil {
				return err
			}
			lines, err := parseClusterNodes(text)
			if err != nil {
				return err
			}
			known := 0
			for _, l := range lines {
				if !l.has("handshake") && !l.has("noaddr") {
					known++
				}
			}
			if known != len(lc.nodes) {
				return fmt.Errorf("knows %d of %d nodes", known, len(lc.nodes))
			}
			return nil
		})
		if err != nil {
			return &nodeError{n.Index, err}
		}
	}
	m, r := lc.cfg.Masters, lc.cfg.replicas()
	for i := range m {
		for j := range r {
			n := lc.nodes[m+i*r+j]
			if err := lc.client(n.Addr).Do(ctx, "CLUSTER", "REPLICATE", lc.nodes[i].ID).Err(); err != nil {
				return &nodeError{n.Index, fmt.Errorf("cluster: CLUSTER REPLICATE on %s: %w", n.Addr, err)}
			}
		}
	}
	return nil
}

// createWithCLI builds the cluster with redis-cli, the reference tool.
func (lc *LocalCluster) createWithCLI(ctx context.Context) error {
	if lc.cfg.CliBin == "" {
		return fmt.Errorf("%w: redis-cli not found: install it: apt-get install redis-tools (Debian), or set CliBin", ErrRedisNotInstalled)
	}
	args := []string{"--cluster", "create"}
	for _, n := range lc.nodes {
		args = append(args, n.Addr)
	}
	args = append(args, "--cluster-replicas", strconv.Itoa(lc.cfg.replicas()), "--cluster-yes")
	out, err := exec.CommandContext(ctx, lc.cfg.CliBin, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cluster: redis-cli --cluster create: %w\n%s", err, out)
	}
	for _, n := range lc.nodes {
		id, err := lc.client(n.Addr).Do(ctx, "CLUSTER", "MYID").Text()
		if err != nil {
			return &nodeError{n.Index, err}
		}
		n.ID = id
	}
	return nil
}

func (lc *LocalCluster) saveState() error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	return lc.saveStateLocked()
}

// saveStateLocked writes the state file. Caller holds lc.mu, so the file
// always matches the in-memory state; it is small and local.
func (lc *LocalCluster) saveStateLocked() error {
	st := localState{Config: lc.cfg}
	for _, n := range lc.nodes {
		st.Nodes = append(st.Nodes, n.LocalNode)
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
func (lc *LocalCluster) Addrs() []string {
	nodes := lc.Nodes()
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Addr
	}
	return out
}

// Nodes returns a copy of every node's description.
func (lc *LocalCluster) Nodes() []LocalNode {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	out := make([]LocalNode, len(lc.nodes))
	for i, n := range lc.nodes {
		out[i] = n.LocalNode
	}
	return out
}

// NodeByAddr returns the node with address addr.
func (lc *LocalCluster) NodeByAddr(addr string) (LocalNode, bool) {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if n := lc.find(addr); n != nil {
		return n.LocalNode, true
	}
	return LocalNode{}, false
}

func (lc *LocalCluster) find(addr string) *localProc {
	for _, n := range lc.nodes {
		if n.Addr == addr {
			return n
		}
	}
	return nil
}

// NodeStatus is one node's state as reported by Status.
type NodeStatus struct {
	LocalNode
	Alive        bool   // the process exists
	Role         string // "master" or "replica"; empty if it did not answer
	ClusterState string // "ok" or "fail" from CLUSTER INFO
	MasterLink   string // replicas: master_link_status ("up"/"down")
	MasterAddr   string // replicas: their master
	Err          string // why it did not answer
}

// Status reports every node. Paused nodes are not queried (they would only
// time out).
func (lc *LocalCluster) Status(ctx context.Context) []NodeStatus {
	nodes := lc.Nodes()
	out := make([]NodeStatus, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		out[i].LocalNode = n
		out[i].Alive = n.PID != 0 && processAlive(n.PID)
		if !out[i].Alive || n.State == statePaused {
			continue
		}
		wg.Go(func() {
			s := &out[i]
			cl := lc.client(n.Addr)
			info, err := cl.Info(ctx, "replication", "cluster").Result()
			if err != nil {
				s.Err = err.Error()
				return
			}
			kv := infoMap(info)
			s.Role = kv["role"]
			if s.Role == "slave" {
				s.Role = "replica"
				s.MasterLink = kv["master_link_status"]
				s.MasterAddr = net.JoinHostPort(kv["master_host"], kv["master_port"])
			}
			ci, err := cl.ClusterInfo(ctx).Result()
			if err != nil {
				s.Err = err.Error()
				return
			}
			s.ClusterState = infoMap(ci)["cluster_state"]
		})
	}
	wg.Wait()
	return out
}

func infoMap(s string) map[string]string {
	m := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m
}

// running returns the nodes that are supposed to answer: neither killed nor
// paused.
func (lc *LocalCluster) running() []*localProc {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	var out []*localProc
	for _, n := range lc.nodes {
		if n.State == stateRunning {
			cp := *n
			out = append(out, &cp)
		}
	}
	return out
}

// WaitHealthy polls until the cluster is healthy or ctx ends. Healthy means,
// over every node that is running (nodes stopped by Kill or frozen by Pause
// are expected to be down and are skipped): the process is alive; CLUSTER
// INFO says cluster_state:ok with all 16384 slots ok; all nodes agree on the
// same set of masters serving slots, Masters of them, none flagged failed; no
// running node is flagged failed, or seen as a master without slots, by
// another; and every running node is either
// one of those masters or a replica of one with master_link_status:up and no
// sync in progress. A killed master therefore counts as healthy again once
// its replica is promoted.
func (lc *LocalCluster) WaitHealthy(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	return poll(ctx, "a healthy cluster", func() error { return lc.checkHealthy(ctx) })
}

func (lc *LocalCluster) checkHealthy(ctx context.Context) error {
	nodes := lc.running()
	if len(nodes) == 0 {
		return errors.New("cluster: no running node")
	}
	runningIDs := map[string]string{}
	for _, n := range nodes {
		runningIDs[n.ID] = n.Addr
	}
	var masters string
	for _, n := range nodes {
		if n.exited != nil {
			select {
			case <-n.exited:
				return &nodeError{n.Index, fmt.Errorf("cluster: %s exited", n.Addr)}
			default:
			}
		} else if !processAlive(n.PID) {
			return &nodeError{n.Index, fmt.Errorf("cluster: %s (pid %d) is gone", n.Addr, n.PID)}
		}
		cl := lc.client(n.Addr)
		ci, err := cl.ClusterInfo(ctx).Result()
		if err != nil {
			return &nodeError{n.Index, fmt.Errorf("cluster: %s: %w", n.Addr, err)}
		}
		kv := infoMap(ci)
		if kv["cluster_state"] != "ok" || kv["cluster_slots_ok"] != strconv.Itoa(NumSlots) {
			return &nodeError{n.Index, fmt.Errorf("cluster: %s: cluster_state:%s cluster_slots_ok:%s",
				n.Addr, kv["cluster_state"], kv["cluster_slots_ok"])}
		}
		text, err := cl.ClusterNodes(ctx).Result()
		if err != nil {
			return &nodeError{n.Index, fmt.Errorf("cluster: %s: %w", n.Addr, err)}
		}
		lines, err := parseClusterNodes(text)
		if err != nil {
			return err
		}
		var ms []string
		var me nodeLine
		for _, l := range lines {
			if l.has("myself") {
				me = l
			}
			if l.has("master") && len(l.slots) > 0 {
				if l.has("fail") || l.has("fail?") {
					return fmt.Errorf("cluster: %s sees master %s as failed", n.Addr, l.addr)
				}
				ms = append(ms, l.id)
			}
			if _, ok := runningIDs[l.id]; ok && (l.has("fail") || l.has("fail?") || l.has("handshake") ||
				(l.has("master") && len(l.slots) == 0)) {
				// A running node seen as a slot-less master: a role change
				// (REPLICATE, a rejoin after failover) has not reached this
				// node yet.
				return fmt.Errorf("cluster: %s sees running node %s as %v with %d slot ranges", n.Addr, l.addr, l.flags, len(l.slots))
			}
		}
		slices.Sort(ms)
		if len(ms) != lc.cfg.Masters {
			return fmt.Errorf("cluster: %s sees %d masters serving slots, want %d", n.Addr, len(ms), lc.cfg.Masters)
		}
		set := strings.Join(ms, ",")
		if masters == "" {
			masters = set
		} else if set != masters {
			return fmt.Errorf("cluster: nodes disagree on the set of masters (%s differs)", n.Addr)
		}
		switch {
		case me.has("master"):
			if !slices.Contains(ms, me.id) {
				return fmt.Errorf("cluster: %s is a master without slots", n.Addr)
			}
		case me.has("slave"):
			if !slices.Contains(ms, me.masterID) {
				return fmt.Errorf("cluster: replica %s follows %s, not a master serving slots", n.Addr, me.masterID)
			}
			info, err := cl.Info(ctx, "replication").Result()
			if err != nil {
				return &nodeError{n.Index, fmt.Errorf("cluster: %s: %w", n.Addr, err)}
			}
			r := infoMap(info)
			if r["master_link_status"] != "up" || r["master_sync_in_progress"] != "0" {
				return fmt.Errorf("cluster: replica %s: master_link_status:%s master_sync_in_progress:%s",
					n.Addr, r["master_link_status"], r["master_sync_in_progress"])
			}
		default:
			return fmt.Errorf("cluster: %s has no role yet (%v)", n.Addr, me.flags)
		}
	}
	return nil
}

// liveQuery runs f on the first running node that answers.
func (lc *LocalCluster) liveQuery(ctx context.Context, f func(*redis.Client) error) error {
	var errs []error
	for _, n := range lc.running() {
		err := f(lc.client(n.Addr))
		if err == nil {
			return nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", n.Addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, errors.Join(errs...))
}

// MasterOf returns the address of the master serving key, according to
// CLUSTER SHARDS on the first running node that answers.
func (lc *LocalCluster) MasterOf(ctx context.Context, key string) (string, error) {
	slot := Slot(key)
	var addr string
	err := lc.liveQuery(ctx, func(cl *redis.Client) error {
		shards, err := cl.ClusterShards(ctx).Result()
		if err != nil {
			return err
		}
		t, err := NewTopology(mastersFromShards(shards, false), 0)
		if err != nil {
			return err
		}
		m, ok := t.MasterForSlot(slot)
		if !ok {
			return fmt.Errorf("%w: slot %d", ErrNoMaster, slot)
		}
		addr = m.Addr
		return nil
	})
	return addr, err
}

// liveTopology is the topology as the first running node that answers sees
// it in CLUSTER NODES, failure flags included.
func (lc *LocalCluster) liveTopology(ctx context.Context) (*Topology, error) {
	var top *Topology
	err := lc.liveQuery(ctx, func(cl *redis.Client) error {
		text, err := cl.ClusterNodes(ctx).Result()
		if err != nil {
			return err
		}
		top, err = ParseNodes(text)
		return err
	})
	return top, err
}

// Masters returns the addresses of the masters serving slots and not flagged
// failed, in slot order, as seen by the first running node that answers.
func (lc *LocalCluster) Masters(ctx context.Context) ([]string, error) {
	t, err := lc.liveTopology(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range t.Masters {
		if len(m.Slots) > 0 && !m.Failed {
			out = append(out, m.Addr)
		}
	}
	return out, nil
}

// ReplicasOf returns the replicas the cluster lists for masterAddr, excluding
// those flagged failed, sorted by address.
func (lc *LocalCluster) ReplicasOf(ctx context.Context, masterAddr string) ([]string, error) {
	t, err := lc.liveTopology(ctx)
	if err != nil {
		return nil, err
	}
	m, ok := t.MasterByAddr(masterAddr)
	if !ok {
		return nil, fmt.Errorf("cluster: %s is not a known master", masterAddr)
	}
	var out []string
	for _, r := range m.Replicas {
		if !r.Failed {
			out = append(out, r.Addr)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Kill sends SIGKILL to the node and waits until the process is gone (reaping
// it when it is our child). The node stays stopped until Start.
func (lc *LocalCluster) Kill(addr string) error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	n := lc.find(addr)
	if n == nil {
		return fmt.Errorf("cluster: no node %s", addr)
	}
	if err := lc.killLocked(n, syscall.SIGKILL, 5*time.Second); err != nil {
		return err
	}
	return lc.saveStateLocked()
}

// killLocked signals n and waits up to wait for it to exit. Caller holds mu.
func (lc *LocalCluster) killLocked(n *localProc, sig syscall.Signal, wait time.Duration) error {
	if n.PID == 0 || n.State == stateStopped || n.reaped() {
		n.PID, n.State = 0, stateStopped
		return nil
	}
	if n.exited == nil && !lc.ownsPID(n) {
		// Not ours any more (exited and the PID was reused): never signal it.
		n.PID, n.State = 0, stateStopped
		return nil
	}
	if err := syscall.Kill(n.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("cluster: kill %s (pid %d): %w", n.Addr, n.PID, err)
	}
	if sig == syscall.SIGTERM && n.State == statePaused {
		_ = syscall.Kill(n.PID, syscall.SIGCONT) // a stopped process cannot act on SIGTERM
	}
	if !waitGone(n, wait) {
		return fmt.Errorf("cluster: %s (pid %d) still alive %v after signal %v", n.Addr, n.PID, wait, sig)
	}
	n.PID, n.State = 0, stateStopped
	return nil
}

// waitGone waits for n's process to exit: on the reaper's channel for our
// child, by polling the PID otherwise.
func waitGone(n *localProc, wait time.Duration) bool {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	if n.exited != nil {
		select {
		case <-n.exited:
			return true
		case <-deadline.C:
			return false
		}
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for processAlive(n.PID) {
		select {
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
	return true
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) == syscall.ESRCH {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !os.IsNotExist(err)
	}
	// Format: pid (comm) state ...; comm may contain spaces or parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z'
	}
	return true
}

// ownsPID checks that n.PID still is the redis-server of this node (its
// process title names the node's port) before a re-attached cluster signals
// it, so a reused PID is never killed.
func (lc *LocalCluster) ownsPID(n *localProc) bool {
	if !processAlive(n.PID) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", n.PID))
	if err != nil {
		return false
	}
	cmdline := string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
	return strings.Contains(cmdline, "redis") && strings.Contains(cmdline, ":"+strconv.Itoa(n.Port))
}

// Start starts a stopped node again with its existing directory: nodes.conf
// is kept, so it rejoins with the same node ID (as a replica if its slots
// were taken over meanwhile). It returns once the node answers PING.
func (lc *LocalCluster) Start(addr string) error {
	lc.mu.Lock()
	n := lc.find(addr)
	if n == nil {
		lc.mu.Unlock()
		return fmt.Errorf("cluster: no node %s", addr)
	}
	if n.State != stateStopped && n.PID != 0 && !n.reaped() && (n.exited != nil || lc.ownsPID(n)) {
		lc.mu.Unlock()
		return fmt.Errorf("cluster: %s is already running (pid %d)", addr, n.PID)
	}
	if lc.closed {
		lc.mu.Unlock()
		return errors.New("cluster: local cluster closed")
	}
	for _, p := range []int{n.Port, n.Port + 10000} {
		if err := portFree(n.Host, p); err != nil {
			lc.mu.Unlock()
			return err
		}
	}
	err := lc.spawn(n)
	cp := *n
	if err == nil {
		err = lc.saveStateLocked()
	}
	lc.mu.Unlock()
	if err != nil {
		return lc.withLogTail(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return lc.withLogTail(lc.waitPing(ctx, &cp))
}

// Restart is Kill followed by Start.
func (lc *LocalCluster) Restart(addr string) error {
	if err := lc.Kill(addr); err != nil {
		return err
	}
	return lc.Start(addr)
}

// RestartEmpty kills the node, deletes its data (dump.rdb, AOF files) but
// keeps nodes.conf, and starts it: it comes back with no data under the same
// node ID, like a server without persistence that crashed.
func (lc *LocalCluster) RestartEmpty(addr string) error {
	if err := lc.Kill(addr); err != nil {
		return err
	}
	n, _ := lc.NodeByAddr(addr)
	entries, err := os.ReadDir(n.Dir)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == "dump.rdb" || name == "appendonlydir" || strings.HasPrefix(name, "appendonly") ||
			(strings.HasPrefix(name, "temp-") && strings.HasSuffix(name, ".rdb")) {
			if err := os.RemoveAll(filepath.Join(n.Dir, name)); err != nil {
				return fmt.Errorf("cluster: %w", err)
			}
		}
	}
	return lc.Start(addr)
}

// Pause freezes the node with SIGSTOP: its sockets stay open but it answers
// nothing, like a stalled machine. WaitHealthy skips paused nodes.
func (lc *LocalCluster) Pause(addr string) error {
	return lc.signal(addr, syscall.SIGSTOP, statePaused)
}

// Resume thaws a paused node with SIGCONT.
func (lc *LocalCluster) Resume(addr string) error {
	return lc.signal(addr, syscall.SIGCONT, stateRunning)
}

func (lc *LocalCluster) signal(addr string, sig syscall.Signal, state string) error {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	n := lc.find(addr)
	if n == nil {
		return fmt.Errorf("cluster: no node %s", addr)
	}
	if n.State == stateStopped || n.PID == 0 || n.reaped() || (n.exited == nil && !lc.ownsPID(n)) {
		return fmt.Errorf("cluster: %s is not running", addr)
	}
	if err := syscall.Kill(n.PID, sig); err != nil {
		return fmt.Errorf("cluster: signal %v to %s (pid %d): %w", sig, addr, n.PID, err)
	}
	n.State = state
	return lc.saveStateLocked()
}

// Close stops every node (SIGTERM, then SIGKILL after a short grace), waits
// until the processes are gone, closes its clients and removes the state
// file. Data directories are left in place. It is idempotent.
func (lc *LocalCluster) Close() error {
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
	if err := os.Remove(filepath.Join(lc.cfg.Dir, StateFile)); err != nil && !os.IsNotExist(err) {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
