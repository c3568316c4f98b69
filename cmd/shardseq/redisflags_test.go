package main

import (
	"context"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/tlstest"
)

// TestRedisFlagErrors: every command that talks to Redis takes the same
// flags, and a bad value, a setting given twice or a flag that does not
// apply fails before any connection, with exit status 2, naming the flag
// or variable, and never showing a password.
func TestRedisFlagErrors(t *testing.T) {
	pki := tlstest.New(t)
	pw := writeFile(t, "pw", "s3cret\n", 0o600)
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"unknown scheme", nil, []string{"serve", "--redis", "http://h:1"}, `--redis: unknown scheme "http://": want redis://`},
		{"no host, env", map[string]string{"SHARDSEQ_REDIS": "redis://"}, []string{"next"}, "environment variable SHARDSEQ_REDIS: no host: want redis://host:port"},
		{"query parameter", nil, []string{"next", "--redis", "redis://h:1?dial_timeout=3s"}, "--redis: unsupported query parameter dial_timeout"},
		{"database", nil, []string{"serve", "--redis", "redis://h:1/2"}, "a Redis Cluster has database 0 only"},
		{"bad addr param", nil, []string{"bench", "--redis", "redis://h:1?addr=h2"}, `--redis: addr=h2: "h2" is not host:port`},
		{"URL in a list", nil, []string{"verify", "--redis", "a:1,redis://b:2"}, "a URL goes alone"},
		{"two passwords", nil, []string{"next", "--redis", "redis://u:sekrit99@h:1", "--redis-password-file", pw},
			"--redis-password-file and the password in the URL of --redis: give the password in one place"},
		{"two passwords, env", map[string]string{"SHARDSEQ_REDIS": "redis://:sekrit99@h:1", "SHARDSEQ_REDIS_PASSWORD_FILE": pw}, []string{"serve"},
			"environment variable SHARDSEQ_REDIS_PASSWORD_FILE and the password in the URL of environment variable SHARDSEQ_REDIS"},
		{"two users", nil, []string{"serve", "--redis", "rediss://app@h:1", "--redis-user", "other", "--redis-password-file", pw},
			"--redis-user and the user in the URL of --redis: give the user in one place"},
		{"TLS file with redis://", nil, []string{"serve", "--redis", "redis://h:1", "--redis-ca-file", pki.CAFile},
			"--redis-ca-file asks for TLS but --redis is a redis:// URL (plain text): use rediss://"},
		{"TLS env with redis://", map[string]string{"SHARDSEQ_REDIS_TLS": "true"}, []string{"next", "--redis", "redis://h:1"},
			"environment variable SHARDSEQ_REDIS_TLS asks for TLS but --redis is a redis:// URL"},
		{"URL user without password", nil, []string{"next", "--redis", "rediss://app@h:1"}, `--redis: the user "app" needs a password: --redis-password-file`},
		{"user without password", nil, []string{"next", "--redis", "h:1", "--redis-user", "app"}, "--redis-user needs --redis-password-file"},
		{"password in a list", nil, []string{"next", "--redis", "app:sekrit99@h:6379"}, "xxxxx@h:6379: a user or password goes in a URL"},
		{"password not valid in a URL", nil, []string{"next", "--redis", "redis://u:sekrit99/x@h:1"}, "the password is not valid in a URL: percent-encode it"},
		{"CA not PEM", nil, []string{"next", "--redis", "rediss://h:1", "--redis-ca-file", pw}, "--redis-ca-file=" + pw + ": no PEM certificate"},
		{"cert without key", nil, []string{"bench", "--redis", "h:1", "--redis-cert-file", pki.CertFile}, "--redis-cert-file and --redis-key-file go together"},
		{"bad bool env", map[string]string{"SHARDSEQ_REDIS_TLS": "maybe"}, []string{"next", "--redis", "h:1"}, `environment variable SHARDSEQ_REDIS_TLS="maybe" is not valid for --redis-tls`},
		{"bench with launch", nil, []string{"bench", "--launch", "--redis-user", "u"}, "--redis-user and --launch exclude each other"},
		{"verify with launch", nil, []string{"verify", "--launch", "--redis", "h:1"}, "--redis and --launch exclude each other"},
		{"verify user without redis", nil, []string{"verify", "--http", "http://h:1", "--redis-user", "u"}, "--redis-user needs --redis (or SHARDSEQ_REDIS): which cluster?"},
		{"bench without redis", nil, []string{"bench"}, "give --redis URL|host:port (or SHARDSEQ_REDIS), or --launch"},
		{"next without redis", nil, []string{"next", "--redis-tls"}, "--redis is required (or set SHARDSEQ_REDIS)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run(t, tc.env, tc.args...)
			if code != 2 || !strings.Contains(stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want 2 and %q", code, stderr, tc.want)
			}
			if strings.Contains(stderr, "sekrit99") {
				t.Errorf("stderr shows the password: %q", stderr)
			}
		})
	}
}

// TestRedisFlagsCombine: a URL from the environment, the password from a
// file and the CA from a flag make one connection config, the same for
// every command; a password given on the command line is warned about.
func TestRedisFlagsCombine(t *testing.T) {
	pki := tlstest.New(t)
	pw := writeFile(t, "pw", "s3cret\n", 0o600)
	env := map[string]string{"SHARDSEQ_REDIS": "rediss://app@h1:7000?addr=h2:7001&addr=h3:7002", "SHARDSEQ_REDIS_PASSWORD_FILE": pw}
	m := &Main{Getenv: func(k string) string { return env[k] }}
	check := func(name string, rc redisConn) {
		t.Helper()
		switch {
		case strings.Join(rc.Addrs, ",") != "h1:7000,h2:7001,h3:7002":
			t.Errorf("%s: seeds %q", name, rc.Addrs)
		case rc.Username != "app" || rc.Password != "s3cret":
			t.Errorf("%s: credentials %q %q", name, rc.Username, rc.Password)
		case rc.TLSConfig == nil || rc.TLSConfig.RootCAs == nil || rc.TLSConfig.InsecureSkipVerify:
			t.Errorf("%s: TLS %+v", name, rc.TLSConfig)
		case rc.warning != "":
			t.Errorf("%s: warning %q", name, rc.warning)
		}
	}
	sc, err := (&ServeCommand{Main: m}).parse([]string{"--redis-ca-file", pki.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	check("serve", sc.redis)
	nc, err := (&NextCommand{Main: m}).parse([]string{"--redis-ca-file", pki.CAFile, "--count", "3"})
	if err != nil {
		t.Fatal(err)
	}
	check("next", nc.redis)
	ba, err := (&BenchCommand{Main: m}).parse([]string{"--redis-ca-file", pki.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	check("bench", redisConn{Config: ba.cfg.Redis, warning: ba.warning})
	if ba, err := (&BenchCommand{Main: m}).parse([]string{"--launch"}); err != nil || len(ba.cfg.Redis.Addrs) != 0 {
		t.Errorf("bench --launch takes SHARDSEQ_REDIS: %v %+v", err, ba.cfg.Redis)
	}

	// A flag wins over its variable; a password on the command line is
	// accepted with a warning, one in the environment is not warned about.
	nc, err = (&NextCommand{Main: m}).parse([]string{"--redis", "redis://:pw2@h:1", "--redis-password-file", ""})
	if err != nil {
		t.Fatal(err)
	}
	if nc.redis.Password != "pw2" || nc.redis.TLSConfig != nil || !strings.Contains(nc.redis.warning, "ps") {
		t.Errorf("password in --redis: %+v, warning %q", nc.redis.Config, nc.redis.warning)
	}
	env = map[string]string{"SHARDSEQ_REDIS": "redis://:pw2@h:1"}
	if nc, err = (&NextCommand{Main: m}).parse(nil); err != nil || nc.redis.Password != "pw2" || nc.redis.warning != "" {
		t.Errorf("password in SHARDSEQ_REDIS: %v %+v, warning %q", err, nc.redis.Config, nc.redis.warning)
	}
}

// TestNextTLSACL runs `next` against a Redis Cluster reached over TLS only
// (certificates verified against the test CA) as an ACL user with the
// README's minimal rules: one master and its replica (a reservation needs an
// acknowledgement), both TLS, the URL's user, the password from a file, the
// CA from a flag. Then the failures an operator meets: a wrong password,
// no CA, no TLS.
func TestNextTLSACL(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not in PATH")
	}
	pki := tlstest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	master := pki.StartNode(ctx, t, portTLSMaster)
	replica := pki.StartNode(ctx, t, portTLSReplica)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(master.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, cluster.NumSlots-1).Err())
	must(replica.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(portTLSMaster)).Err()) // bus: the TLS port + 10000
	id, err := master.ClusterMyID(ctx).Result()
	must(err)
	waitFor(ctx, t, "the replica to know the master", func() bool {
		nodes, _ := replica.ClusterNodes(ctx).Result()
		return strings.Contains(nodes, id)
	})
	must(replica.ClusterReplicate(ctx, id).Err())
	waitFor(ctx, t, "replication over TLS and cluster_state:ok", func() bool {
		info, _ := replica.Info(ctx, "replication").Result()
		ci1, _ := master.ClusterInfo(ctx).Result()
		ci2, _ := replica.ClusterInfo(ctx).Result()
		return strings.Contains(info, "master_link_status:up") && strings.Contains(ci1, "cluster_state:ok") && strings.Contains(ci2, "cluster_state:ok")
	})
	const password = "tls-acl-password-42"
	args := []any{"ACL", "SETUSER", "shardseq", "reset", ">" + password}
	for _, r := range clustertest.ACLRules {
		args = append(args, r)
	}
	must(master.Do(ctx, args...).Err())
	must(replica.Do(ctx, args...).Err())

	pwFile := writeFile(t, "pw", password+"\n", 0o600)
	url := "rediss://shardseq@127.0.0.1:" + strconv.Itoa(portTLSMaster) + "?addr=127.0.0.1:" + strconv.Itoa(portTLSReplica)
	stdout, stderr, code := run(t, nil, "next", "--redis", url, "--redis-password-file", pwFile, "--redis-ca-file", pki.CAFile,
		"--namespace", "tls-acl", "--shards", "2", "--count", "5")
	if code != 0 {
		t.Fatalf("next over TLS as the ACL user: exit %d\n%s", code, stderr)
	}
	if ids := strings.Fields(stdout); len(ids) != 5 || !regexp.MustCompile(`^[1-9][0-9]*$`).MatchString(ids[0]) {
		t.Fatalf("next printed %q, want 5 IDs", stdout)
	}
	// The whole URL in the environment, password included: no warning.
	env := map[string]string{"SHARDSEQ_REDIS": strings.Replace(url, "shardseq@", "shardseq:"+password+"@", 1), "SHARDSEQ_REDIS_CA_FILE": pki.CAFile}
	stdout, stderr, code = run(t, env, "next", "--namespace", "tls-acl", "--shards", "2", "--count", "2")
	if code != 0 || len(strings.Fields(stdout)) != 2 || stderr != "" {
		t.Fatalf("next with SHARDSEQ_REDIS: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	wrong := writeFile(t, "wrong", "not-the-password\n", 0o600)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong password", []string{"--redis", url, "--redis-password-file", wrong, "--redis-ca-file", pki.CAFile},
			"next: Redis refused the credentials (check --redis-user and --redis-password-file"},
		{"no CA", []string{"--redis", url, "--redis-password-file", pwFile}, "next: the TLS certificate of Redis at 127.0.0.1:7760,127.0.0.1:7762 was refused"},
		{"plain text to the TLS port", []string{"--redis", "redis://shardseq@127.0.0.1:" + strconv.Itoa(portTLSMaster), "--redis-password-file", pwFile},
			"next: Redis unreachable at [127.0.0.1:7760]"},
	} {
		_, stderr, code := run(t, nil, append([]string{"next", "--namespace", "tls-acl", "--shards", "2"}, tc.args...)...)
		if code != 1 || !strings.Contains(stderr, tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want 1 and %q", tc.name, code, stderr, tc.want)
		}
	}
}

// startTLSNode starts a cluster-enabled redis-server with TLS on tlsPort
// (clients, replication and the cluster bus) and plain text on tlsPort+1 for
// the test's setup, and returns a client of the plain port. It is killed
// when the test ends.
func waitFor(ctx context.Context, t *testing.T, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
