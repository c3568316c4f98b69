package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/shardseq/shardseq/client"
)

// Command is one subcommand: its own file, its own FlagSet.
type Command interface {
	// Run executes the command with the arguments after its name.
	Run(ctx context.Context, args []string) error
	// Usage prints the command's help to Main.Stdout.
	Usage()
}

// commands lists the subcommands. To add one, write NAME.go with a
// NameCommand type (Run, Usage) and add a line here; e.g. `verify` and
// `bench`:
//
//	"verify": func(m *Main) Command { return &VerifyCommand{Main: m} },
//	"bench":  func(m *Main) Command { return &BenchCommand{Main: m} },
var commands = map[string]func(m *Main) Command{
	"serve":   func(m *Main) Command { return &ServeCommand{Main: m} },
	"next":    func(m *Main) Command { return &NextCommand{Main: m} },
	"cluster": func(m *Main) Command { return &ClusterCommand{Main: m} },
	"decode":  func(m *Main) Command { return &DecodeCommand{Main: m} },
	"version": func(m *Main) Command { return &VersionCommand{Main: m} },
	"verify":  func(m *Main) Command { return &VerifyCommand{Main: m} },
	"bench":   func(m *Main) Command { return &BenchCommand{Main: m} },
	"status":  func(m *Main) Command { return &StatusCommand{Main: m} },

	"namespace": func(m *Main) Command { return &NamespaceCommand{Main: m} },
}

// summaries are the one-line descriptions shown by `shardseq help`.
var summaries = map[string]string{
	"serve":   "run the HTTP ID server",
	"next":    "print new IDs, one per line",
	"cluster": "start, stop or inspect a local Redis Cluster (up|down|status|start)",
	"decode":  "print the shard and sequence number of an ID",
	"version": "print the version",
	"verify":  "check that IDs are never repeated under load",
	"bench":   "measure throughput",
	"status":  "print the shard table of a running server",

	"namespace": "create, list, show or delete namespaces (create|list|show|delete)",
}

// Main holds what commands read and write, so tests can replace it.
type Main struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

// NewMain returns a Main on the process's streams and environment.
func NewMain() *Main {
	return &Main{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv}
}

// Run dispatches args to a subcommand.
func (m *Main) Run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		m.Usage()
		return usageErrorf("no command given")
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 1 {
			if mk, ok := commands[args[1]]; ok {
				mk(m).Usage()
				return nil
			}
			return usageErrorf("unknown command %q", args[1])
		}
		m.Usage()
		return nil
	case "--version", "-version":
		name, args = "version", args[:1] // the flag form of `shardseq version`
	}
	mk, ok := commands[name]
	if !ok {
		return usageErrorf("unknown command %q; run 'shardseq help'", name)
	}
	err := mk(m).Run(ctx, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		return nil // -h: the command printed its usage; commands return ErrHelp as is
	}
	if ue := (*UsageError)(nil); errors.As(err, &ue) && ue.Cmd == "" {
		ue.Cmd = name
	}
	return err
}

// Usage prints the list of commands.
func (m *Main) Usage() {
	fmt.Fprintln(m.Stdout, "shardseq: unique int64 IDs from a Redis Cluster, never the same twice.")
	fmt.Fprintln(m.Stdout, "\nUsage:\n\n  shardseq <command> [arguments]\n\nCommands:")
	names := make([]string, 0, len(commands))
	for name := range commands {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		fmt.Fprintf(m.Stdout, "  %-9s %s\n", name, summaries[name])
	}
	fmt.Fprintln(m.Stdout, "\nRun 'shardseq help <command>' or 'shardseq <command> -h' for details.")
}

// Exit prints err to Stderr and returns the process exit status: 0 on
// success, 2 for a usage error, 1 otherwise.
func (m *Main) Exit(err error) int {
	if err == nil {
		return 0
	}
	var ue *UsageError
	if errors.As(err, &ue) {
		fmt.Fprintf(m.Stderr, "shardseq: %s\n", forPeople(err.Error()))
		if ue.Cmd != "" {
			fmt.Fprintf(m.Stderr, "Run 'shardseq %s -h' for usage.\n", ue.Cmd)
		}
		return 2
	}
	fmt.Fprintf(m.Stderr, "shardseq: %s\n", forPeople(err.Error()))
	if hint := adviceFor(err); hint != "" {
		fmt.Fprintln(m.Stderr, hint)
	}
	return 1
}

// packagePrefixes are the prefixes the product's packages put on their
// errors ("shard: shard count mismatch"): they tell a programmer where an
// error comes from, and a person nothing.
var packagePrefixes = []string{"shard: ", "cluster: ", "namespace: ", "client: ", "failover: ", "server: "}

// forPeople is an error's text without the package prefixes of its wrapped
// errors. The errors keep them (errors.Is and logs are unchanged); only
// what the command prints loses them.
func forPeople(msg string) string {
	for changed := true; changed; {
		changed = false
		for _, p := range packagePrefixes {
			if strings.HasPrefix(msg, p) {
				msg, changed = msg[len(p):], true
			}
			if strings.Contains(msg, ": "+p) {
				msg, changed = strings.ReplaceAll(msg, ": "+p, ": "), true
			}
		}
	}
	return msg
}

// adviceFor is what a person can run about err: the lower packages say what
// happened, only this command knows its own subcommands.
func adviceFor(err error) string {
	switch {
	case errors.Is(err, client.ErrNamespaceLost), errors.Is(err, client.ErrCeilingLost):
		return "Run 'shardseq namespace show <namespace>' to see what is left of it."
	case errors.Is(err, client.ErrNotCluster):
		return "Start a local cluster with 'shardseq cluster up' (or 'make run')."
	}
	return ""
}

// UsageError is a mistake on the command line or in the environment; the
// process exits with status 2.
type UsageError struct {
	Cmd string
	Err error
}

func (e *UsageError) Error() string {
	if e.Cmd != "" {
		return e.Cmd + ": " + e.Err.Error()
	}
	return e.Err.Error()
}

func (e *UsageError) Unwrap() error { return e.Err }

func usageErrorf(format string, args ...any) error {
	return &UsageError{Err: fmt.Errorf(format, args...)}
}

// newFlagSet returns a FlagSet that reports errors to the caller instead of
// printing or exiting; usage printing is left to the command.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses args with fs, allowing flags after positional arguments
// (`decode 123 --shards 6`), and returns the positional arguments. -h
// prints usage and returns flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, usage func()) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				usage()
				return nil, err
			}
			return nil, usageErrorf("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// applyEnv sets every flag of fs not given on the command line from its
// environment variable, when that is set, and returns the flags so set (flag
// name -> variable), for error messages. envs are merged (a command's own
// and redisEnv). A bad value is an error naming the variable. Flags win over
// the environment.
func applyEnv(fs *flag.FlagSet, getenv func(string) string, envs ...map[string]string) (fromEnv map[string]string, err error) {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	env := map[string]string{}
	for _, e := range envs {
		maps.Copy(env, e)
	}
	names := make([]string, 0, len(env))
	for name := range env {
		names = append(names, name)
	}
	slices.Sort(names)
	fromEnv = map[string]string{}
	for _, name := range names {
		if given[name] {
			continue
		}
		v := getenv(env[name])
		if v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return nil, usageErrorf("environment variable %s=%q is not valid for --%s: want %s", env[name], v, name, expected(fs.Lookup(name)))
		}
		fromEnv[name] = env[name]
	}
	return fromEnv, nil
}

// source names where a flag's value came from, for error messages.
func source(fromEnv map[string]string, name string) string {
	if v, ok := fromEnv[name]; ok {
		return "environment variable " + v
	}
	return "--" + name
}

// registerShards defines --shards, N of the namespace (env SHARDSEQ_SHARDS
// in shardsEnv); check it with checkShards after applyEnv.
func registerShards(fs *flag.FlagSet, n *int) {
	fs.IntVar(n, "shards", client.DefaultShards, "shards per namespace, N (env SHARDSEQ_SHARDS); must match the namespace's N in Redis")
}

var shardsEnv = map[string]string{"shards": "SHARDSEQ_SHARDS"}

// expected says what a flag's value must look like, for the error of an
// environment variable the flag package refused (its own error says only
// "parse error").
func expected(f *flag.Flag) string {
	if f.Name == "shards" {
		return fmt.Sprintf("an integer from 1 to %d", client.MaxShards)
	}
	g, _ := f.Value.(flag.Getter)
	if g == nil {
		return "a valid value"
	}
	switch g.Get().(type) {
	case bool:
		return "true or false (also 1 or 0)"
	case int, int64, uint, uint64:
		return "an integer"
	case float64:
		return "a number"
	case time.Duration:
		return "a duration such as 500ms, 5s or 2m"
	}
	return "a valid value"
}

// requireRedis is the error of a command run without --redis.
func requireRedis() error {
	return usageErrorf("--redis is required (or set SHARDSEQ_REDIS), e.g. --redis 127.0.0.1:7000 or --redis rediss://user@host:6379; 'shardseq cluster up' starts a local cluster and prints its addresses")
}

func checkShards(fromEnv map[string]string, n int) error {
	if !client.ValidShards(n) {
		return usageErrorf("%s=%d: the shard count must be from 1 to %d", source(fromEnv, "shards"), n, client.MaxShards)
	}
	return nil
}

// redisLogger sends go-redis's internal log lines (connection pool errors,
// ...) to slog at debug level instead of raw lines on stderr: the errors
// that matter reach the caller anyway.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}
