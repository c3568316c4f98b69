package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/internal/lab/bench"
)

// BenchCommand measures shardseq side by side with naive Redis generators on
// this machine (see internal/lab/bench); the in-process baselines and the charts
// are the lab module's (lab/cmd/shardseq-lab), which reads --json.
type BenchCommand struct {
	Main *Main
}

type benchArgs struct {
	cfg     bench.Config
	rf      redisFlags
	json    bool
	warning string // of the Redis flags
}

// flagSet defines the command's flags on a, with the raw --modes string.
func (a *benchArgs) flagSet(modes *string) *flag.FlagSet {
	fs := newFlagSet("bench")
	a.rf.register(fs)
	fs.BoolVar(&a.cfg.Launch, "launch", false, "launch a local 3-master, 3-replica cluster for the run (needs redis-server)")
	fs.IntVar(&a.cfg.Port, "port", 7550, "first data port of the launched cluster (6 nodes; bus ports +10000)")
	fs.StringVar(&a.cfg.Dir, "dir", "", "directory of the launched cluster (default: a temporary one, removed)")
	fs.DurationVar(&a.cfg.Duration, "duration", 5*time.Second, "how long each mode runs")
	fs.IntVar(&a.cfg.Concurrency, "concurrency", 0, "callers per mode (default 50 for Redis and HTTP modes, GOMAXPROCS in-process)")
	fs.StringVar(&a.cfg.HTTP, "http", bench.HTTPLocal, `server for the HTTP modes: a base URL (http://host:8080), "local" for an in-process server on the same cluster, or "off"`)
	fs.StringVar(modes, "modes", "", "comma-separated modes to run (default all): "+strings.Join(bench.AllModes, ","))
	fs.IntVar(&a.cfg.Shards, "shards", client.DefaultShards, "shards per namespace, N (each mode uses a new namespace)")
	fs.StringVar(&a.cfg.Fault, "fault", "", `"kill-master": run segment-mode load while a master is killed and restarted (needs --launch)`)
	fs.Float64Var(&a.cfg.Rate, "rate", 0, "with --fault: pace the callers to this many IDs/s in all (default 0: flat out)")
	fs.BoolVar(&a.json, "json", false, "print the report as JSON (the lab draws the charts from it)")
	return fs
}

func (c *BenchCommand) parse(args []string) (benchArgs, error) {
	var (
		a     benchArgs
		modes string
	)
	fs := a.flagSet(&modes)
	pos, err := parseFlags(fs, args, c.Usage)
	if err != nil {
		return a, err
	}
	if len(pos) > 0 {
		return a, usageErrorf("unexpected argument %q", pos[0])
	}
	fromEnv, err := applyEnv(fs, c.Main.Getenv, redisEnv)
	if err != nil {
		return a, err
	}
	switch {
	case a.cfg.Launch:
		// The SHARDSEQ_REDIS* variables are ignored: the cluster is ours.
		if f := a.rf.onCommandLine(fs, fromEnv); f != "" {
			return a, usageErrorf("%s and --launch exclude each other: --launch starts a local cluster, without ACL or TLS", f)
		}
	case a.rf.redis == "":
		return a, usageErrorf("give --redis URL|host:port (or SHARDSEQ_REDIS), or --launch to start a local cluster")
	default:
		rc, err := a.rf.load(fromEnv)
		if err != nil {
			return a, err
		}
		a.cfg.Redis, a.warning = rc.Config, rc.warning
	}
	if a.cfg.Fault != "" && a.cfg.Fault != "kill-master" {
		return a, usageErrorf("--fault %q: the only fault is kill-master", a.cfg.Fault)
	}
	if a.cfg.Fault != "" && !a.cfg.Launch {
		return a, usageErrorf("--fault kill-master needs --launch: it kills a node of a cluster it started")
	}
	if a.cfg.Duration < 100*time.Millisecond || a.cfg.Duration > time.Hour {
		return a, usageErrorf("--duration %v: want 100ms to 1h", a.cfg.Duration)
	}
	if a.cfg.Rate < 0 {
		return a, usageErrorf("--rate %v: want 0 (flat out) or more", a.cfg.Rate)
	}
	if a.cfg.Concurrency < 0 || a.cfg.Concurrency > 10000 {
		return a, usageErrorf("--concurrency %d: want 0 (default) to 10000", a.cfg.Concurrency)
	}
	if modes != "" {
		for m := range strings.SplitSeq(modes, ",") {
			if m = strings.TrimSpace(m); m != "" {
				a.cfg.Modes = append(a.cfg.Modes, m)
			}
		}
	}
	return a, nil
}

// Run runs the benchmark and prints the table (or JSON) to Stdout; progress
// goes to Stderr.
func (c *BenchCommand) Run(ctx context.Context, args []string) error {
	a, err := c.parse(args)
	if err != nil {
		return err
	}
	if a.warning != "" {
		fmt.Fprintln(c.Main.Stderr, "bench: warning: "+a.warning)
	}
	log := slog.New(slog.NewTextHandler(c.Main.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	redis.SetLogger(benchRedisLogger{})
	a.cfg.Logger = log
	a.cfg.Progress = c.Main.Stderr
	rep, err := bench.Run(ctx, a.cfg)
	if rep != nil {
		if a.json {
			err = errors.Join(err, rep.WriteJSON(c.Main.Stdout))
		} else {
			err = errors.Join(err, rep.WriteTable(c.Main.Stdout))
		}
	}
	return err
}

// benchRedisLogger drops go-redis's own log lines (dial errors while a master
// is down), which would interleave with the progress lines.
type benchRedisLogger struct{}

func (benchRedisLogger) Printf(context.Context, string, ...any) {}

// Usage prints the command's help.
func (c *BenchCommand) Usage() {
	fmt.Fprint(c.Main.Stdout, `Usage: shardseq bench [--redis URL|host:port,... | --launch [--port 7550]] [flags]

Runs, one after the other on this machine, for --duration each:
  redis-incr          raw go-redis INCR per ID (the naive generator)
  redis-incr-wait     pipelined [INCR, WAIT 1 250] per ID on the key's master
  shardseq-strict     shardseq with B=1: one acknowledged reservation per ID
  shardseq-segment    shardseq segment mode (adaptive double-buffered blocks)
  shardseq-http-1     POST /v1/ids/bench, one ID per request
  shardseq-http-1000  POST /v1/ids/bench?count=1000
and prints IDs/s, p50/p99/p99.9 latency per call, Redis round trips per
1,000 IDs (every command and pipeline sent, counted by a go-redis hook) and
the ratio to segment mode. Progress goes to stderr. The in-process
generators (snowflake, sonyflake, uuidv7, xid) and the PNG charts are in the
lab module: see lab/README.md.

--fault kill-master (with --launch) instead runs segment-mode callers while
one master is killed with SIGKILL, its replica is promoted and the old master
is started again, and prints latency and errors before, during and after.

Flags:
`)
	var (
		a benchArgs
		m string
	)
	fs := a.flagSet(&m)
	fs.SetOutput(c.Main.Stdout)
	fs.PrintDefaults()
	fmt.Fprintln(c.Main.Stdout, `
Examples:
  shardseq bench --launch --json > docs/bench/main.json
  shardseq bench --redis 127.0.0.1:7000 --http http://127.0.0.1:8080 --modes shardseq-http-1,shardseq-http-1000
  SHARDSEQ_REDIS=rediss://bench:PASSWORD@redis-0:6379 shardseq bench --redis-ca-file ca.pem --modes shardseq-segment
  shardseq bench --launch --fault kill-master --duration 20s --json > docs/bench/fault.json`)
}
