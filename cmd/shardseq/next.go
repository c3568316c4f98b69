package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"strconv"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
)

// NextCommand prints new IDs, one per line, using the library directly.
type NextCommand struct {
	Main *Main
}

type nextConfig struct {
	redis     redisConn
	namespace string
	count     int
	shards    int
}

func (c *NextCommand) parse(args []string) (nextConfig, error) {
	var (
		cfg nextConfig
		rf  redisFlags
		fs  = newFlagSet("next")
	)
	rf.register(fs)
	// 0: the namespace's stored N (DefaultShards for a new one), as the
	// library does; a value given must match it.
	fs.IntVar(&cfg.shards, "shards", 0, "shards of the namespace, N (env SHARDSEQ_SHARDS; default: its stored N, or 12 for a new one)")
	fs.StringVar(&cfg.namespace, "namespace", client.DefaultNamespace, "namespace")
	fs.IntVar(&cfg.count, "count", 1, "number of IDs")
	pos, err := parseFlags(fs, args, c.Usage)
	if err != nil {
		return cfg, err
	}
	if len(pos) > 0 {
		return cfg, usageErrorf("unexpected argument %q", pos[0])
	}
	fromEnv, err := applyEnv(fs, c.Main.Getenv, redisEnv, shardsEnv)
	if err != nil {
		return cfg, err
	}
	shardsGiven := false // on the command line or by applyEnv
	fs.Visit(func(f *flag.Flag) { shardsGiven = shardsGiven || f.Name == "shards" })
	if shardsGiven {
		if err := checkShards(fromEnv, cfg.shards); err != nil {
			return cfg, err
		}
	}
	if rf.redis == "" && !rf.useLocal(c.Main.Stderr) {
		return cfg, requireRedis()
	}
	if cfg.redis, err = rf.load(fromEnv); err != nil {
		return cfg, err
	}
	if client.ValidateNamespace(cfg.namespace) != nil {
		return cfg, usageErrorf("--namespace %q: want %s", cfg.namespace, client.NamespaceRule)
	}
	if cfg.count < 1 || cfg.count > client.MaxBatch {
		return cfg, usageErrorf("--count %d: want 1 to %d", cfg.count, client.MaxBatch)
	}
	return cfg, nil
}

// Run reserves exactly --count IDs (strict mode: nothing is reserved that is
// not printed) and prints them.
func (c *NextCommand) Run(ctx context.Context, args []string) error {
	cfg, err := c.parse(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(c.Main.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	redis.SetLogger(redisLogger{log})
	if cfg.redis.warning != "" {
		log.Warn(cfg.redis.warning)
	}
	cl, err := client.New(ctx, cfg.redis.clientConfig(client.Config{
		Namespace: cfg.namespace, Shards: cfg.shards, Strict: true, Logger: log,
	}))
	if err != nil {
		if derr := dialError("next", cfg.redis.Addrs, err); derr != nil {
			return derr
		}
		return fmt.Errorf("next: %w", err)
	}
	defer cl.Close()
	ids, err := cl.NextN(ctx, cfg.count)
	if err != nil {
		return fmt.Errorf("next: %w", err)
	}
	w := bufio.NewWriter(c.Main.Stdout)
	var b []byte
	for _, id := range ids {
		b = strconv.AppendInt(b[:0], id, 10)
		b = append(b, '\n')
		_, _ = w.Write(b)
	}
	return w.Flush()
}

// Usage prints the help of next.
func (c *NextCommand) Usage() {
	fmt.Fprintf(c.Main.Stdout, `Usage: shardseq next [--redis URL|host:port[,...]] [--namespace ns] [--count K] [--shards N]

Prints K new IDs of namespace ns, one per line. It reserves exactly K IDs
(one acknowledged reservation), so nothing is wasted.

Flags:
  --namespace NS    namespace (default %q)
  --count K         number of IDs (default 1)
  --shards N        shards of the namespace (env SHARDSEQ_SHARDS; default: its
                    stored N, or %d for a new namespace); a value given must match

Without --redis and SHARDSEQ_REDIS, the local cluster 'shardseq cluster up'
runs in .run/cluster, if any.

%s`, client.DefaultNamespace, client.DefaultShards, redisUsage)
}
