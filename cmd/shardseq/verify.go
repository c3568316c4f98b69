package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/internal/lab/chaos"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// VerifyCommand runs the uniqueness scenario: callers take IDs through the
// library and/or HTTP servers while faults hit a launched cluster, and every
// acknowledged ID is checked for repeats.
type VerifyCommand struct {
	Main *Main
}

// ErrDuplicates is returned when the checker found an ID handed out twice.
var ErrDuplicates = errors.New("verify: IDs handed out twice")

// Usage prints the command's help.
func (c *VerifyCommand) Usage() {
	fmt.Fprint(c.Main.Stdout, `Usage: shardseq verify [flags]

Takes IDs from many concurrent callers, records every acknowledged ID and
reports any ID handed out twice (exit status 1). Faults need a cluster this
command launches (--launch); partition faults also need root and iptables.

Examples:
  shardseq verify --launch --faults mixed:10 --ids 1000000
  shardseq verify --redis 127.0.0.1:7000 --duration 30s
  shardseq verify --http http://127.0.0.1:8080 --duration 60s --concurrency 8 --json

Flags:
  --redis URL|addrs    the cluster of the library callers (env SHARDSEQ_REDIS; with the
                       --redis-* flags below)
  --launch             start a local 3-master/3-replica cluster for the run (and stop it after)
  --port n             first data port of the launched cluster (default 7600)
  --http urls          server base URLs for HTTP callers, comma-separated
  --faults list        faults, comma-separated: kill-master, pause-master, restart-empty,
                       partition-replica, isolate-master, lagging-replica-kill;
                       or mixed:N for N faults cycling through all of them (needs --launch)
  --ids n              keep the load on until this many IDs were acknowledged (default 1000000;
                       0 with --duration)
  --duration d         keep the load on at least this long (default 0)
  --max-duration d     give up after this long (default 10m)
  --concurrency n      library callers (default 8), or HTTP callers when only --http is given
  --shards n           shards of the namespace (default 6)
  --namespace ns       namespace (default verify-<time>)
  --unsafe             switch every defence off: a negative control that should find duplicates
  --json               print the report as JSON

`+redisUsage)
}

// Run runs the scenario.
func (c *VerifyCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("verify")
	var (
		rf                          redisFlags
		httpList, faults, namespace string
		launch, unsafe, asJSON      bool
		port, concurrency, shards   int
		ids                         int64
		duration, maxDuration       time.Duration
	)
	rf.register(fs)
	fs.BoolVar(&launch, "launch", false, "")
	fs.IntVar(&port, "port", 7600, "")
	fs.StringVar(&httpList, "http", "", "")
	fs.StringVar(&faults, "faults", "", "")
	fs.Int64Var(&ids, "ids", 1_000_000, "")
	fs.DurationVar(&duration, "duration", 0, "")
	fs.DurationVar(&maxDuration, "max-duration", 10*time.Minute, "")
	fs.IntVar(&concurrency, "concurrency", 8, "")
	fs.IntVar(&shards, "shards", 6, "")
	fs.StringVar(&namespace, "namespace", "", "")
	fs.BoolVar(&unsafe, "unsafe", false, "")
	fs.BoolVar(&asJSON, "json", false, "")
	pos, err := parseFlags(fs, args, c.Usage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	fromEnv, err := applyEnv(fs, c.Main.Getenv, redisEnv)
	if err != nil {
		return err
	}
	if launch {
		// The SHARDSEQ_REDIS* variables are ignored: the cluster is ours.
		if f := rf.onCommandLine(fs, fromEnv); f != "" {
			return usageErrorf("%s and --launch exclude each other: --launch starts a local cluster, without ACL or TLS", f)
		}
		rf = redisFlags{}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	cfg := chaos.Config{Namespace: namespace, Shards: shards, MaxDuration: maxDuration, MinDuration: duration, MinIDs: ids}
	if duration > 0 && !given["ids"] {
		cfg.MinIDs = 1
	}
	switch {
	case shards < 1 || shards > 1024:
		return usageErrorf("--shards %d: want 1 to 1024", shards)
	case concurrency < 1 || concurrency > 1000:
		return usageErrorf("--concurrency %d: want 1 to 1000", concurrency)
	case ids < 0:
		return usageErrorf("--ids %d: want 0 or more", ids)
	case maxDuration <= 0:
		return usageErrorf("--max-duration %v: want a positive duration", maxDuration)
	case !launch && rf.redis == "" && httpList == "":
		return usageErrorf("say where to take IDs from: --redis, --launch or --http")
	}
	if namespace != "" && client.ValidateNamespace(namespace) != nil {
		return usageErrorf("--namespace %q: want %s", namespace, client.NamespaceRule)
	}
	if httpList != "" {
		for _, u := range strings.Split(httpList, ",") {
			u = strings.TrimSpace(u)
			if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
				return usageErrorf("--http %q: want http:// or https:// URLs", u)
			}
			cfg.HTTP = append(cfg.HTTP, u)
		}
	}
	if cfg.Faults, err = parseFaultList(faults); err != nil {
		return usageErrorf("--faults: %v", err)
	}
	if len(cfg.Faults) > 0 && !launch {
		return usageErrorf("--faults needs --launch: faults are injected into a cluster this command started")
	}
	rc, err := rf.load(fromEnv)
	if err != nil {
		return err
	}
	if rc.warning != "" {
		fmt.Fprintln(c.Main.Stderr, "verify: warning: "+rc.warning)
	}
	cfg.Seeds = rc.Addrs
	cfg.Callers = concurrency
	if len(cfg.Seeds) == 0 && !launch {
		cfg.HTTPCallers = concurrency
	}
	cfg.Client = client.Config{Username: rc.Username, Password: rc.Password, TLS: rc.TLSConfig,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if unsafe {
		cfg.Client.UnsafeDefences, cfg.Client.OrderWindow = client.NoDefences, -1
	}
	if unsafe {
		cfg.Client.BlockSize, cfg.Client.MinBlockSize, cfg.Client.MaxBlockSize = 100, 100, 100
	}

	if launch {
		lcfg := localcluster.Config{BasePort: port, Dir: filepath.Join(os.TempDir(), fmt.Sprintf("shardseq-verify-%d", port))}
		for _, f := range cfg.Faults {
			if f == chaos.PartitionReplica || f == chaos.IsolateMaster {
				if err := localcluster.PartitionsAvailable(); err != nil {
					return fmt.Errorf("verify: partition faults need iptables as root: %w", err)
				}
				lcfg.Partitions = true
				break
			}
		}
		fmt.Fprintf(c.Main.Stderr, "verify: starting a local cluster on ports %d-%d in %s\n", port, port+5, lcfg.Dir)
		lc, err := localcluster.Start(ctx, lcfg)
		if err != nil {
			return err
		}
		defer lc.Close()
		cfg.Local, cfg.Seeds = lc, lc.Addrs()
	}

	// go-redis prints every refused dial during a fault; the report says
	// what matters.
	redis.SetLogger(redisLogger{log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	cfg.Logf = func(format string, args ...any) {
		fmt.Fprintf(c.Main.Stderr, "verify: "+format+"\n", args...)
	}
	rep, runErr := chaos.Run(ctx, cfg)
	if asJSON {
		enc := json.NewEncoder(c.Main.Stdout)
		enc.SetIndent("", "  ")
		_ = enc.Encode(rep)
	} else {
		fmt.Fprint(c.Main.Stdout, rep.String())
	}
	if !rep.OK() {
		return fmt.Errorf("%w: %d (e.g. %v)", ErrDuplicates, rep.Duplicated, rep.Examples)
	}
	return runErr
}

// parseFaultList accepts "mixed:N" or a comma-separated list of fault names.
func parseFaultList(s string) ([]chaos.Fault, error) {
	if n, ok := strings.CutPrefix(s, "mixed:"); ok {
		var k int
		if _, err := fmt.Sscan(n, &k); err != nil || k < 1 || k > 10000 {
			return nil, fmt.Errorf("mixed:%s: want mixed:N with N from 1 to 10000", n)
		}
		out := make([]chaos.Fault, k)
		for i := range out {
			out[i] = chaos.Faults[i%len(chaos.Faults)]
		}
		return out, nil
	}
	return chaos.ParseFaults(s)
}
