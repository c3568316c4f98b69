package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/internal/lab/tlstest"
	"github.com/shardseq/shardseq/server"
)

const token = "cmd-test-token-0123456789"

func writeFile(t *testing.T, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // umask
		t.Fatal(err)
	}
	return p
}

// TestServeSecurityFlags: the security flags and their environment
// variables are checked before any connection, with clear messages.
func TestServeSecurityFlags(t *testing.T) {
	pki := tlstest.New(t)
	good := writeFile(t, "tokens", "# ops\n\n"+token+"\n", 0o600)
	loose := writeFile(t, "loose", token+"\n", 0o644)
	empty := writeFile(t, "empty", "# nothing\n\n", 0o600)
	short := writeFile(t, "short", "abc\n", 0o600)
	badScope := writeFile(t, "badscope", "# ops\n"+token+" write\n", 0o600)
	badPattern := writeFile(t, "badpattern", token+" read ids:orders[\n", 0o600)
	pw := writeFile(t, "pw", "s3cret\n", 0o600)
	emptyPW := writeFile(t, "emptypw", "\n", 0o600)
	base := []string{"serve", "--redis", "h:1"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"token file missing", nil, []string{"--token-file", "/nonexistent/tokens"}, "--token-file: "},
		{"token file empty", nil, []string{"--token-file", empty}, "no token in it"},
		{"token too short", nil, []string{"--token-file", short}, "shorter than 16"},
		{"unknown scope", nil, []string{"--token-file", badScope}, "line 2: field 1 after the token: not a scope; want ids, ids:PATTERN, read or admin"},
		{"bad pattern", nil, []string{"--token-file", badPattern}, "line 1: field 2 after the token: ids: malformed pattern"},
		{"token file env", map[string]string{"SHARDSEQ_TOKEN_FILE": empty}, nil, "environment variable SHARDSEQ_TOKEN_FILE: "},
		{"auth-metrics alone", nil, []string{"--auth-metrics"}, "need --token-file"},
		{"tls cert alone", nil, []string{"--tls-cert", pki.CertFile}, "--tls-cert and --tls-key go together"},
		{"tls wrong key", nil, []string{"--tls-cert", pki.CertFile, "--tls-key", pki.CAFile}, "loading TLS certificate"},
		{"redis user without password", nil, []string{"--redis-user", "shardseq"}, "--redis-user needs --redis-password-file"},
		{"redis password file empty", nil, []string{"--redis-password-file", emptyPW}, "empty"},
		{"redis password file is a dir", nil, []string{"--redis-password-file", t.TempDir()}, "not a regular file"},
		{"redis ca not pem", nil, []string{"--redis-ca-file", pw}, "no PEM certificate"},
		{"redis cert alone", nil, []string{"--redis-cert-file", pki.CertFile}, "go together"},
		{"bool env", map[string]string{"SHARDSEQ_REDIS_TLS": "maybe"}, nil, "SHARDSEQ_REDIS_TLS"},
	}
	for _, tt := range tests {
		_, stderr, code := run(t, tt.env, append(append([]string{}, base...), tt.args...)...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tt.name, code, stderr, tt.want)
		}
	}

	env := map[string]string{"SHARDSEQ_TOKEN_FILE": loose, "SHARDSEQ_REDIS_USER": "shardseq", "SHARDSEQ_REDIS_PASSWORD_FILE": pw,
		"SHARDSEQ_REDIS_CA_FILE": pki.CAFile, "SHARDSEQ_AUTH_UI": "true", "SHARDSEQ_TLS_CERT": pki.CertFile, "SHARDSEQ_TLS_KEY": pki.KeyFile}
	cfg, err := (&ServeCommand{Main: &Main{Getenv: func(k string) string { return env[k] }}}).parse([]string{"--redis", "h:1", "--auth-metrics"})
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case len(cfg.tokens) != 1 || cfg.tokens[0].Secret != token || cfg.tokens[0].Scopes != nil:
		t.Errorf("tokens %+v", cfg.tokens)
	case !strings.Contains(cfg.tokenWarning, "chmod 600"):
		t.Errorf("a 0644 token file gave no warning: %q", cfg.tokenWarning)
	case cfg.redis.Username != "shardseq" || cfg.redis.Password != "s3cret":
		t.Errorf("redis credentials %q %q", cfg.redis.Username, cfg.redis.Password)
	case cfg.redis.TLSConfig == nil || cfg.redis.TLSConfig.RootCAs == nil || cfg.redis.TLSConfig.InsecureSkipVerify || cfg.redis.TLSConfig.MinVersion != tls.VersionTLS12:
		t.Errorf("redis TLS %+v", cfg.redis.TLSConfig)
	case cfg.tls == nil || cfg.tls.MinVersion != tls.VersionTLS12 || len(cfg.tls.Certificates) != 1:
		t.Errorf("HTTP TLS %+v", cfg.tls)
	case !cfg.authMetrics || !cfg.authUI:
		t.Errorf("auth-metrics %v auth-ui %v", cfg.authMetrics, cfg.authUI)
	}
	if cfg, err := (&ServeCommand{Main: &Main{Getenv: func(string) string { return "" }}}).parse([]string{"--redis", "h:1", "--token-file", good}); err != nil || cfg.tokenWarning != "" {
		t.Errorf("a 0600 token file: %v, warning %q", err, cfg.tokenWarning)
	}
}

// FuzzServeFlags: no command line or environment makes parsing panic.
func FuzzServeFlags(f *testing.F) {
	f.Add("--redis\x00h:1\x00--shards\x006", "SHARDSEQ_LISTEN", ":1")
	f.Add("--redis=a:1,b:2\x00--listen\x00[::1]:0\x00--log-level\x00DEBUG", "SHARDSEQ_MAX_NAMESPACES", "-3")
	f.Add("--token-file\x00/dev/null\x00--redis-user\x00u", "SHARDSEQ_REDIS_TLS", "true")
	f.Add("--redis-ca-file\x00/dev/zero\x00--redis\x00h:1", "SHARDSEQ_REDIS_PASSWORD_FILE", "/dev/zero")
	f.Add("-h", "SHARDSEQ_SHARDS", "9999999999999999999999")
	f.Fuzz(func(t *testing.T, args, key, val string) {
		if strings.Contains(args, "/dev/") || strings.Contains(val, "/dev/") || strings.Contains(args, "/proc/") || strings.Contains(val, "/proc/") {
			t.Skip("device files: a FIFO or a tty could block")
		}
		m := &Main{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(k string) string {
			if k == key {
				return val
			}
			return ""
		}}
		_, _ = (&ServeCommand{Main: m}).parse(strings.Split(args, "\x00"))
	})
}

// TestServeEndToEnd runs `serve` with HTTPS and a token against a real
// cluster, reads it with `status`, then stops it as SIGTERM would:
// /readyz turns 503 while draining and serve returns. Then
// testShutdownInFlight proves that a request in flight finishes.
func TestServeEndToEnd(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portServe})
	pki := tlstest.New(t)
	// Line 2 may ask for IDs of orders only, line 3 read only, line 4 (bare)
	// do everything: serve warns of it, status sends line 3.
	const idsToken, readToken = "cmd-ids-orders-0123456789", "cmd-read-only-0123456789"
	tokens := writeFile(t, "tokens", "# test tokens\n"+idsToken+" ids:orders\n"+readToken+" read # status\n"+token+"\n", 0o600)
	idsOnly := writeFile(t, "ids-only", idsToken+" ids:orders\n", 0o600)

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	addrCh := make(chan string, 1)
	var logs syncBuffer
	m := &Main{Stdout: io.Discard, Stderr: &logs, Getenv: func(string) string { return "" }}
	cmd := &ServeCommand{Main: m, listening: func(a string) { addrCh <- a }}
	done := make(chan error, 1)
	go func() {
		done <- cmd.Run(ctx, []string{"--redis", strings.Join(lc.Addrs(), ","), "--listen", "127.0.0.1:0", "--shards", "6",
			"--token-file", tokens, "--tls-cert", pki.CertFile, "--tls-key", pki.KeyFile, "--drain-delay", "1500ms", "--log-format", "json"})
	}()
	var addr string
	select {
	case addr = <-addrCh:
	case err := <-done:
		t.Fatalf("serve: %v\n%s", err, logs.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not listen\n%s", logs.String())
	}
	base := "https://" + addr
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: pki.ClientConfig()}, Timeout: 5 * time.Second}
	defer hc.CloseIdleConnections()
	get := func(method, path, tok string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("GET", "/readyz", ""); code != 200 {
		t.Fatalf("readyz %d %s", code, body)
	}
	if code, _ := get("POST", "/v1/ids/orders?count=3", ""); code != 401 {
		t.Errorf("POST without token: %d, want 401", code)
	}
	if code, body := get("POST", "/v1/ids/orders?count=3", token); code != 200 {
		t.Errorf("POST with token: %d %s", code, body)
	}
	for _, c := range []struct {
		method, path, tok string
		want              int
	}{
		{"POST", "/v1/ids/orders?count=2", idsToken, 200},
		{"POST", "/v1/ids/billing", idsToken, 403},
		{"GET", "/v1/shards", idsToken, 403},
		{"DELETE", "/v1/namespaces/orders", readToken, 403},
		{"POST", "/v1/ids/orders", readToken, 403},
	} {
		if code, body := get(c.method, c.path, c.tok); code != c.want || (code == 403 && !strings.Contains(body, `"code":"forbidden"`)) {
			t.Errorf("%s %s: %d, want %d: %s", c.method, c.path, code, c.want, body)
		}
	}
	if l := logs.String(); !strings.Contains(l, "tokens with every scope") || !strings.Contains(l, "line 4") || strings.Contains(l, token) {
		t.Errorf("serve logged no warning naming line 4 (or showed the token):\n%s", l)
	}
	if code, body := get("GET", "/metrics", ""); code != 200 || !strings.Contains(body, `shardseq_ids_issued_total{namespace="orders"} 5`) {
		t.Errorf("metrics: %d %.300s", code, body)
	}
	if code, body := get("GET", "/", ""); code != 200 || !strings.Contains(body, `data-shard="orders/5"`) {
		t.Errorf("page: %d %.300s", code, body)
	}

	// status, over HTTPS with the test CA.
	stdout, stderr, code := run(t, map[string]string{"SHARDSEQ_SERVER": base, "SHARDSEQ_CA_FILE": pki.CAFile}, "status", "--token-file", tokens)
	if code != 0 {
		t.Fatalf("status: exit %d %s", code, stderr)
	}
	for _, want := range []string{"cluster: 3 masters, all slots served", "shards: 12 of 12 healthy in 2 namespaces",
		"NAMESPACE  SHARD  NODE", "orders     5      127.0.0.1:772",
		"colocated: none (every shard's keys on distinct masters)\nshards: "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status output lacks %q:\n%s", want, stdout)
		}
	}
	t.Logf("shardseq status:\n%s", stdout)
	if _, stderr, code := run(t, nil, "status", "--server", base, "--ca-file", pki.CAFile); code != 1 || !strings.Contains(stderr, "401") {
		t.Errorf("status without token: exit %d %q", code, stderr)
	}
	if _, stderr, code := run(t, nil, "status", "--server", base, "--token-file", tokens); code != 1 || !strings.Contains(stderr, "certificate") {
		t.Errorf("status without the CA: exit %d %q", code, stderr)
	}
	if _, stderr, code := run(t, nil, "status", "--server", base, "--ca-file", pki.CAFile, "--token-file", idsOnly); code != 2 || !strings.Contains(stderr, "has the scope read") {
		t.Errorf("status with an ids-only token file: exit %d %q", code, stderr)
	}

	// SIGTERM: /readyz turns 503 during the drain delay, then serve stops.
	stop()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, body := get("GET", "/readyz", "")
		if code == 503 && strings.Contains(body, "draining") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz did not turn 503 while draining: %d %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not stop")
	}
	for _, want := range []string{`"msg":"shutting down: /readyz now answers 503"`, `"msg":"stopped"`, `"auth":true`, `"scheme":"https"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("logs lack %s", want)
		}
	}
	t.Run("ShutdownInFlight", func(t *testing.T) { testShutdownInFlight(t, lc) })
}

// testShutdownInFlight runs serveUntil with a handler that holds one
// request until the shutdown is under way: /readyz answers 503 first, then
// the listener closes, and the held request still gets its IDs.
func testShutdownInFlight(t *testing.T, lc *clustertest.Cluster) {
	log := slog.New(slog.DiscardHandler)
	cl := lc.Dial(cluster.Config{Logger: log})
	srv, err := server.New(server.Config{Cluster: cl, Shards: 6, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	entered, release := make(chan struct{}), make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Hold") != "" {
			close(entered)
			<-release
		}
		srv.Handler().ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	hs := server.NewHTTPServer(ln.Addr().String(), h, log)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	done := make(chan error, 1)
	go func() { done <- serveUntil(ctx, srv, hs, ln, 500*time.Millisecond, 10*time.Second, log) }()

	type answer struct {
		code int
		body string
		err  error
	}
	held := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest("POST", base+"/v1/ids/inflight?count=4", nil)
		req.Header.Set("X-Hold", "1")
		resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
		if err != nil {
			held <- answer{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		held <- answer{code: resp.StatusCode, body: string(b)}
	}()
	select {
	case <-entered:
	case a := <-held:
		t.Fatalf("held request: %+v", a)
	case <-time.After(10 * time.Second):
		t.Fatal("the held request never reached the handler")
	}
	stop() // SIGTERM
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := hc.Get(base + "/readyz")
		if err != nil {
			t.Fatalf("readyz during the drain delay: %v (the listener closed before /readyz said 503)", err)
		}
		resp.Body.Close()
		if resp.StatusCode == 503 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("readyz never answered 503")
		}
		time.Sleep(10 * time.Millisecond)
	}
	for {
		c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
		if err != nil {
			break // the listener closed; Shutdown waits for the held request
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener did not close after the drain delay")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("serveUntil returned (%v) with a request in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	a := <-held
	if a.err != nil || a.code != 200 || !strings.Contains(a.body, `"ids":[`) {
		t.Fatalf("in-flight request: %+v", a)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serveUntil did not return")
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
