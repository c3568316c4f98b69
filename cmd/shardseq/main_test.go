package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"runtime"
	"strings"
	"testing"
)

// run runs the CLI with env and returns stdout, stderr and the exit status.
func run(t *testing.T, env map[string]string, args ...string) (string, string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	m := &Main{Stdout: &out, Stderr: &errOut, Getenv: func(k string) string { return env[k] }}
	code := m.Exit(m.Run(context.Background(), args))
	return out.String(), errOut.String(), code
}

// TestUsageErrors: bad command lines and environments fail before any
// connection is attempted, with exit status 2 and a message naming the
// culprit. No cluster is needed.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string // in stderr
	}{
		{"no command", nil, nil, "no command given"},
		{"unknown command", nil, []string{"frobnicate"}, `unknown command "frobnicate"`},
		{"help unknown", nil, []string{"help", "nope"}, `unknown command "nope"`},

		{"serve missing redis", nil, []string{"serve"}, "--redis is required (or set SHARDSEQ_REDIS)"},
		{"serve bad redis", nil, []string{"serve", "--redis", "localhost"}, `--redis: "localhost" is not host:port`},
		{"serve bad redis port", nil, []string{"serve", "--redis", "h:99999"}, `port from 1 to 65535`},
		{"serve bad redis env", map[string]string{"SHARDSEQ_REDIS": "nope"}, []string{"serve"}, `environment variable SHARDSEQ_REDIS: "nope" is not host:port`},
		{"serve shards 0", nil, []string{"serve", "--redis", "h:1", "--shards", "0"}, "--shards=0: the shard count must be from 1 to 1024"},
		{"serve shards too many", nil, []string{"serve", "--redis", "h:1", "--shards", "1025"}, "from 1 to 1024"},
		{"serve shards not a number", nil, []string{"serve", "--redis", "h:1", "--shards", "many"}, `invalid value "many" for flag -shards`},
		{"serve bad shards env", map[string]string{"SHARDSEQ_SHARDS": "twelve"}, []string{"serve", "--redis", "h:1"}, `environment variable SHARDSEQ_SHARDS="twelve" is not valid for --shards: want an integer from 1 to 1024`},
		{"serve bad duration env", map[string]string{"SHARDSEQ_REQUEST_TIMEOUT": "5"}, []string{"serve", "--redis", "h:1"}, `is not valid for --request-timeout: want a duration such as 500ms, 5s or 2m`},
		{"serve shards env out of range", map[string]string{"SHARDSEQ_SHARDS": "0"}, []string{"serve", "--redis", "h:1"}, "environment variable SHARDSEQ_SHARDS=0: the shard count must be from 1 to 1024"},
		{"serve bad listen", nil, []string{"serve", "--redis", "h:1", "--listen", "8080"}, `--listen="8080": want [host]:port`},
		{"serve bad listen env", map[string]string{"SHARDSEQ_LISTEN": "x:y"}, []string{"serve", "--redis", "h:1"}, `environment variable SHARDSEQ_LISTEN="x:y"`},
		{"serve bad log format", nil, []string{"serve", "--redis", "h:1", "--log-format", "xml"}, "want text or json"},
		{"serve bad log level", nil, []string{"serve", "--redis", "h:1", "--log-level", "loud"}, "want debug, info, warn or error"},
		{"serve max namespaces", nil, []string{"serve", "--redis", "h:1", "--max-namespaces", "0"}, "--max-namespaces=0: must be at least 1"},
		{"serve unknown flag", nil, []string{"serve", "--nope"}, "flag provided but not defined: -nope"},
		{"serve extra argument", nil, []string{"serve", "--redis", "h:1", "extra"}, `unexpected argument "extra"`},

		{"next missing redis", nil, []string{"next"}, "--redis is required"},
		{"next bad count", nil, []string{"next", "--redis", "h:1", "--count", "0"}, "--count 0: want 1 to"},
		{"next bad namespace", nil, []string{"next", "--redis", "h:1", "--namespace", "a{b}"}, `--namespace "a{b}"`},
		{"next bad shards env", map[string]string{"SHARDSEQ_SHARDS": "-1"}, []string{"next", "--redis", "h:1"}, "SHARDSEQ_SHARDS=-1"},
		{"next shards abc env", map[string]string{"SHARDSEQ_SHARDS": "abc"}, []string{"next", "--redis", "h:1"}, `SHARDSEQ_SHARDS="abc" is not valid for --shards: want an integer from 1 to 1024`},
		{"next shards 0", nil, []string{"next", "--redis", "h:1", "--shards", "0"}, "--shards=0: the shard count must be from 1 to 1024"},

		{"decode no id", nil, []string{"decode"}, "want exactly one ID"},
		{"decode bad id", nil, []string{"decode", "abc"}, `"abc" is not an ID`},
		{"decode zero", nil, []string{"decode", "0"}, `"0" is not an ID`},
		{"decode bad shards", nil, []string{"decode", "13", "--shards", "0"}, "--shards=0"},

		{"cluster no action", nil, []string{"cluster"}, "want one action: up, down, status or start"},
		{"cluster bad action", nil, []string{"cluster", "sideways"}, `unknown action "sideways"`},
		{"cluster bad masters", nil, []string{"cluster", "up", "--masters", "0"}, "--masters 0"},
		{"cluster bad port", nil, []string{"cluster", "up", "--port", "80"}, "--port 80"},

		{"version argument", nil, []string{"version", "x"}, "takes no arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run(t, tc.env, tc.args...)
			if code != 2 {
				t.Errorf("exit %d, want 2; stderr: %s", code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("stderr %q does not contain %q", stderr, tc.want)
			}
		})
	}
}

func TestFlagsWinOverEnv(t *testing.T) {
	m := &Main{Getenv: func(k string) string {
		return map[string]string{"SHARDSEQ_REDIS": "env:1", "SHARDSEQ_SHARDS": "bogus", "SHARDSEQ_LISTEN": ":9999"}[k]
	}}
	cfg, err := (&ServeCommand{Main: m}).parse([]string{"--redis", "a:1,b:2", "--shards", "6"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.redis.Addrs, ",") != "a:1,b:2" || cfg.shards != 6 || cfg.listen != ":9999" {
		t.Fatalf("got %+v, want flags for redis and shards, env for listen", cfg)
	}
	cfg, err = (&ServeCommand{Main: &Main{Getenv: func(string) string { return "" }}}).parse([]string{"--redis", " a:1 , b:2 ,"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.redis.Addrs, ",") != "a:1,b:2" || cfg.shards != 12 || cfg.listen != ":8080" || cfg.logFormat != "text" {
		t.Fatalf("defaults: %+v", cfg)
	}
}

func TestDecode(t *testing.T) {
	out, stderr, code := run(t, nil, "decode", "37", "--shards", "6")
	if code != 0 || out != "id 37: shard 1 of 6, sequence 6\n" {
		t.Fatalf("exit %d out %q err %q", code, out, stderr)
	}
	out, _, code = run(t, map[string]string{"SHARDSEQ_SHARDS": "12"}, "decode", "--shards=4", "9")
	if code != 0 || out != "id 9: shard 1 of 4, sequence 2\n" {
		t.Fatalf("exit %d out %q", code, out)
	}
}

func TestHelp(t *testing.T) {
	out, _, code := run(t, nil, "help")
	if code != 0 || !strings.Contains(out, "serve") || !strings.Contains(out, "cluster") {
		t.Fatalf("help: %d %q", code, out)
	}
	for name := range commands {
		out, _, code := run(t, nil, name, "-h")
		if code != 0 || !strings.Contains(out, "Usage: shardseq "+name) {
			t.Errorf("%s -h: exit %d, %q", name, code, out)
		}
	}
	for _, arg := range []string{"version", "--version", "-version"} {
		out, _, code = run(t, nil, arg)
		if code != 0 || !strings.HasPrefix(out, "shardseq ") || !strings.Contains(out, runtime.Version()) {
			t.Fatalf("%s: %d %q", arg, code, out)
		}
	}
}

func TestExitCodes(t *testing.T) {
	m := &Main{Stdout: new(bytes.Buffer), Stderr: new(bytes.Buffer)}
	if got := m.Exit(errors.New("boom")); got != 1 {
		t.Errorf("runtime error: exit %d, want 1", got)
	}
	if got := m.Exit(usageErrorf("bad")); got != 2 {
		t.Errorf("usage error: exit %d, want 2", got)
	}
	if got := m.Exit(nil); got != 0 {
		t.Errorf("success: exit %d", got)
	}
}

func TestServeUnreachable(t *testing.T) {
	// Port 1 on loopback refuses connections at once.
	_, stderr, code := run(t, nil, "serve", "--redis", "127.0.0.1:1", "--listen", "127.0.0.1:0")
	if code != 1 || !strings.Contains(stderr, "Redis unreachable at [127.0.0.1:1]") {
		t.Fatalf("exit %d, stderr %q; want 1 and a clear message", code, stderr)
	}
}

// TestServePortTaken: a port in use is reported before Redis is tried.
func TestServePortTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, stderr, code := run(t, nil, "serve", "--redis", "127.0.0.1:1", "--listen", ln.Addr().String())
	if code != 1 || !strings.Contains(stderr, "cannot listen on "+ln.Addr().String()) || strings.Contains(stderr, "Redis") {
		t.Fatalf("exit %d, stderr %q; want 1 and the port named, before Redis", code, stderr)
	}
}

func TestClusterStatusWithoutCluster(t *testing.T) {
	dir := t.TempDir()
	_, stderr, code := run(t, nil, "cluster", "status", "--dir", dir)
	if code != 1 || !strings.Contains(stderr, "no cluster in "+dir) {
		t.Fatalf("status: exit %d %q", code, stderr)
	}
	_, stderr, code = run(t, nil, "cluster", "down", "--dir", dir)
	if code != 0 || !strings.Contains(stderr, "no cluster running") {
		t.Fatalf("down without a cluster: exit %d %q", code, stderr)
	}
	_, stderr, code = run(t, nil, "cluster", "start", "--dir", dir)
	if code != 1 || !strings.Contains(stderr, "no cluster in "+dir) {
		t.Fatalf("start without a cluster: exit %d %q", code, stderr)
	}
}

func TestForPeople(t *testing.T) {
	for in, want := range map[string]string{
		"next: shard: shard count mismatch":                 "next: shard count mismatch",
		"shard: shard count mismatch":                       "shard count mismatch",
		"serve: server: bad token file: x":                  "serve: bad token file: x",
		"next: client: namespace: cluster: no node reached": "next: no node reached",
		`show: namespace "a": not found`:                    `show: namespace "a": not found`,
		"cluster up: port busy":                             "cluster up: port busy",
		"next: reshard: x":                                  "next: reshard: x",
	} {
		if got := forPeople(in); got != want {
			t.Errorf("forPeople(%q) = %q, want %q", in, got, want)
		}
	}
}
