package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/human"
)

// NamespaceCommand creates, lists, shows and deletes namespaces, talking to
// Redis directly (package shard), as PUT/GET/DELETE /v1/namespaces do.
type NamespaceCommand struct {
	Main *Main
}

// namespaceArgs is a parsed namespace command line.
type namespaceArgs struct {
	action, name string
	redis        redisConn
	spec         client.Spec
	limit        int
	cursor       string
	all, force   bool
	timeout      time.Duration
}

func (c *NamespaceCommand) parse(args []string) (namespaceArgs, error) {
	var (
		a        namespaceArgs
		rf       redisFlags
		shards   int
		start    int64
		strict   bool
		fs       = newFlagSet("namespace")
		withName = map[string]bool{"create": true, "show": true, "delete": true}
	)
	rf.register(fs)
	fs.IntVar(&shards, "shards", 0, "create: N (default: the stored N, or 12 for a new namespace)")
	fs.Int64Var(&start, "start", 0, "create: the smallest ID (default: the stored start, or 1)")
	fs.BoolVar(&strict, "strict", false, "create: strict mode (every ID its own acknowledged reservation)")
	fs.IntVar(&a.limit, "limit", client.MaxListLimit, "list: namespaces per page")
	fs.StringVar(&a.cursor, "cursor", "", "list: start after this name")
	fs.BoolVar(&a.all, "all", false, "list: every page")
	fs.BoolVar(&a.force, "force", false, "delete: also namespace default, which every server opens at start")
	fs.DurationVar(&a.timeout, "timeout", 15*time.Second, "how long to wait for Redis")
	pos, err := parseFlags(fs, args, c.Usage)
	if err != nil {
		return a, err
	}
	if len(pos) == 0 {
		return a, usageErrorf("want an action: create, list, show or delete")
	}
	a.action, pos = pos[0], pos[1:]
	switch {
	case withName[a.action]:
		if len(pos) != 1 {
			return a, usageErrorf("%s: want exactly one namespace name, e.g. 'shardseq namespace %s orders'", a.action, a.action)
		}
		a.name = pos[0]
		if !client.ValidNamespace(a.name) {
			return a, usageErrorf("%s: namespace %q: want %s", a.action, a.name, client.NamespaceRule)
		}
		// Valid, and one a library may have made, but no URL path can name
		// it (the server refuses it at creation too).
		if a.action == "create" && (a.name == "." || a.name == "..") {
			return a, usageErrorf("create: namespace %q: the names . and .. cannot be created (URL paths cannot name them)", a.name)
		}
	case a.action == "list":
		if len(pos) > 0 {
			return a, usageErrorf("list: unexpected argument %q (use --cursor to start after a name)", pos[0])
		}
	default:
		return a, usageErrorf("unknown action %q: want create, list, show or delete", a.action)
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for flagName, action := range map[string]string{"shards": "create", "start": "create", "strict": "create",
		"limit": "list", "cursor": "list", "all": "list", "force": "delete"} {
		if given[flagName] && a.action != action {
			return a, usageErrorf("--%s is for 'namespace %s', not %s", flagName, action, a.action)
		}
	}
	fromEnv, err := applyEnv(fs, c.Main.Getenv, redisEnv)
	if err != nil {
		return a, err
	}
	if rf.redis == "" && !rf.useLocal(c.Main.Stderr) {
		return a, requireRedis()
	}
	if a.redis, err = rf.load(fromEnv); err != nil {
		return a, err
	}
	switch {
	case given["shards"] && !client.ValidShards(shards):
		return a, usageErrorf("--shards %d: want 1 to %d", shards, client.MaxShards)
	case given["start"] && (start < 1 || start > client.MaxStart(0)):
		return a, usageErrorf("--start %d: want 1 to %d (half the ID space)", start, client.MaxStart(0))
	case a.limit < 1 || a.limit > client.MaxListLimit:
		return a, usageErrorf("--limit %d: want 1 to %d", a.limit, client.MaxListLimit)
	case a.cursor != "" && !client.ValidNamespace(a.cursor):
		return a, usageErrorf("--cursor %q: want a namespace name", a.cursor)
	case a.timeout <= 0:
		return a, usageErrorf("--timeout must be positive")
	case a.action == "delete" && a.name == client.DefaultNamespace && !a.force:
		return a, usageErrorf("delete: namespace %q is opened by every server at start (readiness); pass --force to delete it anyway", a.name)
	}
	if given["shards"] {
		a.spec.Shards = &shards
	}
	if given["start"] {
		a.spec.Start = &start
	}
	if given["strict"] {
		a.spec.Strict = &strict
	}
	return a, nil
}

// Run runs one action.
func (c *NamespaceCommand) Run(ctx context.Context, args []string) error {
	a, err := c.parse(args)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(c.Main.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	redis.SetLogger(redisLogger{log})
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	if a.redis.warning != "" {
		log.Warn(a.redis.warning)
	}
	cfg := a.redis.Config
	cfg.Logger, cfg.ProbeInterval = log, -1
	cl, err := cluster.Dial(ctx, cfg)
	if err != nil {
		if derr := dialError("namespace", a.redis.Addrs, err); derr != nil {
			return derr
		}
		return fmt.Errorf("namespace: connecting to Redis at %v: %w", a.redis.Addrs, err)
	}
	defer cl.Close()
	w := c.Main.Stdout
	var opt client.Config // the default acknowledgement
	switch a.action {
	case "create":
		ns, err := client.PutNamespace(ctx, cl, a.name, a.spec, 0, opt)
		if err != nil {
			return fmt.Errorf("namespace create: %w", err)
		}
		what := "exists"
		switch {
		case ns.Recreated:
			what = "recreated (it continues above every ID it handed out)"
		case ns.Created:
			what = "created"
		}
		fmt.Fprintf(w, "namespace %s %s: %d shards, start %d, strict %v\n", a.name, what, ns.Shards, ns.Start, ns.Strict)
	case "show":
		d, err := client.DescribeNamespace(ctx, cl, a.name, opt)
		if errors.Is(err, client.ErrNamespaceNotFound) {
			// Not the library's "(create it first)": show asks, it creates nothing.
			return fmt.Errorf("namespace show: %q: %w; 'shardseq namespace list' shows those that exist", a.name, client.ErrNamespaceNotFound)
		}
		if err != nil {
			return fmt.Errorf("namespace show: %w", err)
		}
		printDescription(w, d)
	case "delete":
		deleted, err := client.DeleteNamespace(ctx, cl, a.name, opt)
		if errors.Is(err, client.ErrNamespaceNotFound) {
			return fmt.Errorf("namespace delete: %q: %w: nothing to delete", a.name, client.ErrNamespaceNotFound)
		}
		if err != nil {
			return fmt.Errorf("namespace delete: %w", err)
		}
		if !deleted {
			fmt.Fprintf(w, "namespace %s was deleted already\n", a.name)
			return nil
		}
		fmt.Fprintf(w, "namespace %s deleted; its counters stay, so recreating it continues above every ID it handed out. "+
			"Servers that have it open keep serving it until they close it (a server closes its own on DELETE /v1/namespaces/%s)\n", a.name, a.name)
	case "list":
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tSTATE\tSHARDS\tSTART\tSTRICT\tGENERATION\tCREATED")
		cursor := a.cursor
		for {
			page, err := client.ListNamespaces(ctx, cl, cursor, a.limit)
			if err != nil {
				return fmt.Errorf("namespace list: %w", err)
			}
			for _, in := range page.Namespaces {
				printEntry(tw, in)
			}
			cursor = page.Next
			if cursor == "" || !a.all {
				break
			}
		}
		_ = tw.Flush()
		if cursor != "" {
			fmt.Fprintf(w, "more: --cursor %s (or --all)\n", cursor)
		}
	}
	return nil
}

func printEntry(w io.Writer, in client.Info) {
	if in.State != client.StateActive && in.State != client.StateDeleted {
		fmt.Fprintf(w, "%s\t%s\t-\t-\t-\t-\t-\n", in.Name, in.State)
		return
	}
	created := "-"
	if !in.CreatedAt.IsZero() {
		created = in.CreatedAt.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%v\t%d\t%s\n", in.Name, in.State, in.Shards, in.Start, in.Strict, in.Generation, created)
}

func printDescription(w io.Writer, d client.Description) {
	created := "(not stored)"
	if !d.CreatedAt.IsZero() {
		created = d.CreatedAt.UTC().Format(time.RFC3339)
	}
	u := d.Usage
	fmt.Fprintf(w, "namespace:   %s\nstate:       %s\nshards:      %d\nstart:       %d\nstrict:      %v\ngeneration:  %d\ncreated:     %s\n",
		d.Name, d.State, d.Shards, d.Start, d.Strict, d.Generation, created)
	fmt.Fprintf(w, "reserved:    %d sequence numbers (IDs handed out, and gaps)\nhighest ID:  %d\nspace left:  %d IDs up to %d (%s used)\n",
		u.Reserved, u.HighestID, u.SpaceLeft, u.MaxID, human.Percent(u.Used()))
	if u.Checked < u.Shards {
		fmt.Fprintf(w, "checked:     %d of %d shards (the others' masters did not answer)\n", u.Checked, u.Shards)
	}
}

// Usage prints the help of namespace.
func (c *NamespaceCommand) Usage() {
	fmt.Fprintf(c.Main.Stdout, `Usage: shardseq namespace create|list|show|delete [NAME] [--redis URL|host:port[,...]] [flags]

Manages namespaces in Redis directly (no server needed; without --redis and
SHARDSEQ_REDIS, in the local cluster 'shardseq cluster up' runs in
.run/cluster, if any):

  create NAME [--shards N] [--start S] [--strict]
        create it, or check an existing one: a flag given must match what is
        stored; a deleted namespace is recreated with its own N and start and
        continues above every ID it handed out
  list [--limit K] [--cursor NAME] [--all]
        every namespace of the index, deleted ones included, sorted by name
  show NAME
        settings and usage (sequence numbers reserved, space left)
  delete NAME [--force]
        retire it behind a tombstone; its counters stay, so the name never
        starts again from its start. default needs --force

Flags:
  --timeout D               how long to wait for Redis (default 15s)

%s`, redisUsage)
}
