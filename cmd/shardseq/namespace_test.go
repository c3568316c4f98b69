package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// Bad namespace command lines fail before any connection, with exit status
// 2 and a message naming the culprit.
func TestNamespaceUsageErrors(t *testing.T) {
	r := []string{"--redis", "h:1"}
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"no action", nil, []string{"namespace"}, "want an action: create, list, show or delete"},
		{"unknown action", nil, []string{"namespace", "rename", "x"}, `unknown action "rename"`},
		{"create without name", nil, append([]string{"namespace", "create"}, r...), "create: want exactly one namespace name"},
		{"show two names", nil, append([]string{"namespace", "show", "a", "b"}, r...), "show: want exactly one namespace name"},
		{"bad name", nil, append([]string{"namespace", "delete", "a:b"}, r...), `delete: namespace "a:b": want 1 to 64 characters`},
		{"create .", nil, append([]string{"namespace", "create", "."}, r...), `create: namespace ".": the names . and .. cannot be created`},
		{"create ..", nil, append([]string{"namespace", "create", ".."}, r...), `create: namespace "..": the names . and .. cannot be created`},
		{"list with a name", nil, append([]string{"namespace", "list", "x"}, r...), `list: unexpected argument "x"`},
		{"no redis", nil, []string{"namespace", "list"}, "--redis is required (or set SHARDSEQ_REDIS)"},
		{"bad redis env", map[string]string{"SHARDSEQ_REDIS": "nope"}, []string{"namespace", "list"}, `environment variable SHARDSEQ_REDIS: "nope" is not host:port`},
		{"shards 0", nil, append([]string{"namespace", "create", "x", "--shards", "0"}, r...), "--shards 0: want 1 to 1024"},
		{"shards too many", nil, append([]string{"namespace", "create", "x", "--shards=2000"}, r...), "--shards 2000"},
		{"start 0", nil, append([]string{"namespace", "create", "x", "--start", "0"}, r...), "--start 0: want 1 to 4503599627370495"},
		{"start too large", nil, append([]string{"namespace", "create", "x", "--start", "4503599627370496"}, r...), "--start 4503599627370496"},
		{"start not a number", nil, append([]string{"namespace", "create", "x", "--start", "1e6"}, r...), `invalid value "1e6" for flag -start`},
		{"shards on show", nil, append([]string{"namespace", "show", "x", "--shards", "4"}, r...), "--shards is for 'namespace create', not show"},
		{"limit on create", nil, append([]string{"namespace", "create", "x", "--limit", "4"}, r...), "--limit is for 'namespace list'"},
		{"bad limit", nil, append([]string{"namespace", "list", "--limit", "0"}, r...), "--limit 0: want 1 to 1000"},
		{"bad cursor", nil, append([]string{"namespace", "list", "--cursor", "a{b"}, r...), `--cursor "a{b": want a namespace name`},
		{"delete default", nil, append([]string{"namespace", "delete", "default"}, r...), "pass --force"},
		{"user without password", nil, append([]string{"namespace", "list", "--redis-user", "u"}, r...), "needs --redis-password-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run(t, tc.env, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
		})
	}
}

// TestNamespaceCommand runs create, list, show and delete against a real
// cluster.
func TestNamespaceCommand(t *testing.T) {
	// In .run/cluster of the working directory, where 'cluster up' puts it:
	// next finds it without --redis.
	work := t.TempDir()
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portNamespace, Dir: filepath.Join(work, ".run", "cluster")})
	env := map[string]string{"SHARDSEQ_REDIS": strings.Join(lc.Addrs(), ",")}
	ns := func(want int, args ...string) string {
		t.Helper()
		out, stderr, code := run(t, env, append([]string{"namespace"}, args...)...)
		if code != want {
			t.Fatalf("namespace %v: exit %d, want %d\nstdout %s\nstderr %s", args, code, want, out, stderr)
		}
		return out + stderr
	}
	contains := func(out string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("output lacks %q:\n%s", w, out)
			}
		}
	}
	contains(ns(0, "create", "orders", "--shards", "4", "--start", "1000000"), "namespace orders created: 4 shards, start 1000000, strict false")
	contains(ns(0, "create", "orders"), "namespace orders exists: 4 shards, start 1000000")
	contains(ns(0, "create", "orders", "--shards=4"), "exists")
	contains(ns(1, "create", "orders", "--shards", "5"), "shard count mismatch", "4 shards")
	contains(ns(1, "create", "orders", "--start", "7"), "settings mismatch")
	contains(ns(1, "create", "orders", "--strict"), "settings mismatch", "strict=false")
	contains(ns(0, "create", "users", "--strict"), "namespace users created: 12 shards, start 1, strict true")

	// next uses the stored N (4), not 12; a --shards given must match it.
	if out, stderr, code := run(t, env, "next", "--namespace", "orders", "--count", "2"); code != 0 || strings.Count(out, "\n") != 2 {
		t.Errorf("next on 4 shards without --shards: exit %d\n%s%s", code, out, stderr)
	}
	if _, stderr, code := run(t, env, "next", "--namespace", "orders", "--shards", "5"); code != 1 || !strings.Contains(stderr, "mismatch") {
		t.Errorf("next --shards 5 on 4 shards: exit %d %s", code, stderr)
	}
	// cluster up beside it leaves it alone, and says what it ignored.
	dir := filepath.Join(work, ".run", "cluster")
	if out, stderr, code := run(t, nil, "cluster", "up", "--dir", dir, "--port", "7999"); code != 0 || strings.TrimSpace(out) != strings.Join(lc.Addrs(), ",") ||
		!strings.Contains(stderr, "ignored --port 7999 (its first node is "+lc.Addrs()[0]+"): a cluster is already running in "+dir) {
		t.Errorf("cluster up --port on a running cluster: exit %d\n%s%s", code, out, stderr)
	}
	t.Chdir(work)
	if out, stderr, code := run(t, nil, "next", "--namespace", "orders"); code != 0 || strings.Count(out, "\n") != 1 ||
		!strings.Contains(stderr, "using the local cluster in .run/cluster ("+strings.Join(lc.Addrs(), ",")+")") {
		t.Errorf("next without --redis beside a local cluster: exit %d\n%s%s", code, out, stderr)
	}
	for k := range 3 {
		ns(0, "create", fmt.Sprintf("page-%d", k), "--shards", "1")
	}

	out := ns(0, "show", "orders")
	contains(out, "namespace:   orders", "state:       active", "shards:      4", "start:       1000000", "strict:      false",
		"generation:  1", "space left:", "up to 9007199254740991")
	contains(ns(1, "show", "nobody"), "namespace not found")

	out = ns(0, "list")
	contains(out, "NAME", "orders", "active", "users", "page-2")
	if strings.Contains(out, "more:") {
		t.Errorf("one page should hold everything:\n%s", out)
	}
	out = ns(0, "list", "--limit", "2")
	contains(out, "orders", "page-0", "more: --cursor page-0")
	out = ns(0, "list", "--limit", "2", "--cursor", "orders")
	contains(out, "page-0", "page-1", "more: --cursor page-1")
	out = ns(0, "list", "--limit", "2", "--all")
	contains(out, "orders", "page-0", "users")

	contains(ns(0, "delete", "orders"), "namespace orders deleted")
	contains(ns(0, "delete", "orders"), "was deleted already")
	contains(ns(0, "show", "orders"), "state:       deleted", "generation:  2")
	contains(ns(0, "list"), "deleted")
	out = ns(1, "delete", "nobody")
	contains(out, `namespace delete: "nobody": namespace not found: nothing to delete`)
	if strings.Contains(out, "create it first") || strings.Contains(out, "shard: ") {
		t.Errorf("delete of a namespace never created: %s", out)
	}
	contains(ns(1, "create", "orders", "--shards", "5"), "shard count mismatch")
	contains(ns(0, "create", "orders"), "namespace orders recreated (it continues above every ID it handed out): 4 shards, start 1000000")
	contains(ns(0, "show", "orders"), "state:       active", "generation:  3")
}
