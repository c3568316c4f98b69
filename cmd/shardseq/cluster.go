package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// ClusterCommand starts, stops and inspects a local Redis Cluster of real
// redis-server processes (internal/lab/localcluster) that outlives the command.
type ClusterCommand struct {
	Main *Main
}

type clusterConfig struct {
	action   string
	masters  int
	replicas int
	port     int
	dir      string
	given    map[string]bool // flags on the command line
}

func (c *ClusterCommand) parse(args []string) (clusterConfig, error) {
	var cfg clusterConfig
	fs := newFlagSet("cluster")
	fs.IntVar(&cfg.masters, "masters", 3, "number of masters (up)")
	fs.IntVar(&cfg.replicas, "replicas", 1, "replicas per master, 0 for none (up)")
	fs.IntVar(&cfg.port, "port", 7000, "data port of the first node; node k uses port+k, its cluster bus port+k+10000 (up)")
	fs.StringVar(&cfg.dir, "dir", localClusterDir, "directory of the nodes' data, logs and state file")
	pos, err := parseFlags(fs, args, c.Usage)
	if err != nil {
		return cfg, err
	}
	if len(pos) != 1 {
		return cfg, usageErrorf("want one action: up, down, status or start")
	}
	cfg.given = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { cfg.given[f.Name] = true })
	cfg.action = pos[0]
	switch {
	case cfg.action != "up" && cfg.action != "down" && cfg.action != "status" && cfg.action != "start":
		return cfg, usageErrorf("unknown action %q: want up, down, status or start", cfg.action)
	case cfg.masters < 1 || cfg.masters > 100:
		return cfg, usageErrorf("--masters %d: want 1 to 100", cfg.masters)
	case cfg.replicas < 0 || cfg.replicas > 5:
		return cfg, usageErrorf("--replicas %d: want 0 to 5", cfg.replicas)
	case cfg.port < 1024 || cfg.port > 65535:
		return cfg, usageErrorf("--port %d: want 1024 to 65535", cfg.port)
	case cfg.dir == "":
		return cfg, usageErrorf("--dir is required")
	}
	return cfg, nil
}

// Run executes the action.
func (c *ClusterCommand) Run(ctx context.Context, args []string) error {
	cfg, err := c.parse(args)
	if err != nil {
		return err
	}
	switch cfg.action {
	case "up":
		return c.up(ctx, cfg)
	case "down":
		return c.down(cfg)
	case "start":
		return c.start(ctx, cfg)
	default:
		return c.status(ctx, cfg)
	}
}

func (c *ClusterCommand) stateExists(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, localcluster.StateFile))
	return err == nil
}

// up starts a cluster and prints its addresses, comma-separated, on stdout
// (and nothing else there, so scripts can capture them). A cluster already
// running in dir is reported and left alone.
func (c *ClusterCommand) up(ctx context.Context, cfg clusterConfig) error {
	if c.stateExists(cfg.dir) {
		lc, err := localcluster.Open(cfg.dir)
		if err != nil {
			return fmt.Errorf("cluster up: %w", err)
		}
		st := lc.Status(ctx)
		alive := 0
		for _, n := range st {
			if n.Alive {
				alive++
			}
		}
		switch {
		case alive == len(st):
			fmt.Fprintf(c.Main.Stderr, "cluster: already running in %s (%d nodes)\n", cfg.dir, len(st))
			c.ignored(cfg, lc)
			fmt.Fprintln(c.Main.Stdout, strings.Join(lc.Addrs(), ","))
			return nil
		case alive > 0:
			return fmt.Errorf("cluster up: the cluster in %s is partly running (%d of %d nodes); see 'shardseq cluster status --dir %s', or stop it with 'shardseq cluster down --dir %s'",
				cfg.dir, alive, len(st), cfg.dir, cfg.dir)
		}
		// Nothing alive (e.g. after a reboot): forget the stale state.
		fmt.Fprintf(c.Main.Stderr, "cluster: no node of the previous cluster in %s is running; starting a new one\n", cfg.dir)
		if err := lc.Close(); err != nil {
			return fmt.Errorf("cluster up: removing stale state: %w", err)
		}
	}
	// Node directories of a stopped cluster hold its nodes.conf: nodes would
	// come back believing they are in the old cluster. The local cluster has
	// no persistence, so its data is gone anyway: start clean.
	if err := removeNodeDirs(cfg.dir); err != nil {
		return fmt.Errorf("cluster up: %w", err)
	}
	replicas := cfg.replicas
	if replicas == 0 {
		replicas = -1 // localcluster.Config: 0 means the default (1), -1 none
	}
	start := time.Now()
	lc, err := localcluster.Start(ctx, localcluster.Config{
		Masters: cfg.masters, Replicas: replicas, BasePort: cfg.port, Dir: cfg.dir, Detach: true,
		Logf: func(format string, args ...any) { fmt.Fprintf(c.Main.Stderr, format+"\n", args...) },
	})
	if err != nil {
		return fmt.Errorf("cluster up: %w", err)
	}
	addrs := strings.Join(lc.Addrs(), ",")
	fmt.Fprintf(c.Main.Stderr, "cluster: up in %v; stop it with 'shardseq cluster down --dir %s'; serve with:\n  shardseq serve --redis %s\n",
		time.Since(start).Round(time.Millisecond), cfg.dir, addrs)
	fmt.Fprintln(c.Main.Stdout, addrs)
	return nil
}

// ignored says which flags of 'cluster up' the running cluster lc in
// cfg.dir does not follow, and how to get them followed.
func (c *ClusterCommand) ignored(cfg clusterConfig, lc *localcluster.Cluster) {
	nodes := lc.Nodes()
	if len(nodes) == 0 {
		return
	}
	var notes []string
	if first := nodes[0].Addr; cfg.given["port"] {
		if _, p, err := net.SplitHostPort(first); err == nil && p != strconv.Itoa(cfg.port) {
			notes = append(notes, fmt.Sprintf("--port %d (its first node is %s)", cfg.port, first))
		}
	}
	if cfg.given["masters"] || cfg.given["replicas"] {
		notes = append(notes, "--masters and --replicas")
	}
	if len(notes) == 0 {
		return
	}
	fmt.Fprintf(c.Main.Stderr, "cluster: ignored %s: a cluster is already running in %s; stop it first with 'shardseq cluster down --dir %s', or give another --dir\n",
		strings.Join(notes, " and "), cfg.dir, cfg.dir)
}

// removeNodeDirs deletes dir/node-* (the launcher's node directories).
func removeNodeDirs(dir string) error {
	matches, err := filepath.Glob(filepath.Join(dir, "node-*"))
	if err != nil {
		return err
	}
	for _, m := range matches {
		if fi, err := os.Lstat(m); err == nil && fi.IsDir() {
			if err := os.RemoveAll(m); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *ClusterCommand) down(cfg clusterConfig) error {
	if !c.stateExists(cfg.dir) {
		fmt.Fprintf(c.Main.Stderr, "cluster: no cluster running in %s\n", cfg.dir)
		return nil
	}
	lc, err := localcluster.Open(cfg.dir)
	if err != nil {
		return fmt.Errorf("cluster down: %w", err)
	}
	n := len(lc.Addrs())
	if err := lc.Close(); err != nil {
		return fmt.Errorf("cluster down: %w", err)
	}
	fmt.Fprintf(c.Main.Stderr, "cluster: stopped %d nodes in %s\n", n, cfg.dir)
	return nil
}

// start starts again every node of the cluster in --dir whose process is
// gone (killed by hand, say): each rejoins with its node ID, as a replica if
// its slots were failed over meanwhile.
func (c *ClusterCommand) start(ctx context.Context, cfg clusterConfig) error {
	lc, err := localcluster.Open(cfg.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cluster start: no cluster in %s (start one with 'shardseq cluster up --dir %s')", cfg.dir, cfg.dir)
	}
	if err != nil {
		return fmt.Errorf("cluster start: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	started := 0
	for _, n := range lc.Status(ctx) {
		if n.Alive {
			continue
		}
		if err := lc.Start(n.Addr); err != nil {
			return fmt.Errorf("cluster start: %s: %w", n.Addr, err)
		}
		fmt.Fprintf(c.Main.Stderr, "cluster: started %s again\n", n.Addr)
		started++
	}
	if started == 0 {
		fmt.Fprintf(c.Main.Stderr, "cluster: every node in %s is running\n", cfg.dir)
	}
	return nil
}

func (c *ClusterCommand) status(ctx context.Context, cfg clusterConfig) error {
	lc, err := localcluster.Open(cfg.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cluster status: no cluster in %s (start one with 'shardseq cluster up --dir %s')", cfg.dir, cfg.dir)
	}
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	tw := tabwriter.NewWriter(c.Main.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDR\tPID\tROLE\tSTATE\tCLUSTER\tMASTER\tERROR")
	for _, n := range lc.Status(ctx) {
		state := n.State
		if !n.Alive {
			state = "down"
		}
		master := "-"
		if n.Role == "replica" {
			master = n.MasterAddr + " (link " + n.MasterLink + ")"
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\n", n.Addr, n.PID, dash(n.Role), state, dash(n.ClusterState), master, dash(n.Err))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Usage prints the help of cluster.
func (c *ClusterCommand) Usage() {
	fmt.Fprint(c.Main.Stdout, `Usage: shardseq cluster up|down|status|start [flags]

Runs a local Redis Cluster of real redis-server processes for development,
tests and benchmarks. The processes outlive the command.

  up      start masters*(1+replicas) nodes and print their addresses,
          comma-separated, for --redis; if a cluster already runs in --dir,
          print its addresses
  down    stop the cluster in --dir (its data is lost: no persistence)
  status  print a table of the nodes
  start   start again every node whose process is gone (killed by hand):
          it rejoins, as a replica if its replica took over meanwhile

Flags:
  --masters M    masters (default 3)
  --replicas R   replicas per master (default 1)
  --port P       data port of node 0; node k uses P+k and bus port P+k+10000 (default 7000)
  --dir DIR      directory of data, logs and state (default .run/cluster)
`)
}
