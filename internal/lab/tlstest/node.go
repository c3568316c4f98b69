package tlstest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartNode starts a cluster-enabled redis-server that speaks TLS (clients,
// replication and cluster bus) on tlsPort with f's certificates, and plain
// TCP on tlsPort+1 for the test's own setup, which the returned client
// uses. The test is skipped without redis-server; the node is killed by its
// PID when the test ends, and its log shown if the test failed. It keeps no
// files: these nodes test TLS plumbing, not faults.
func (f Files) StartNode(ctx context.Context, tb testing.TB, tlsPort int) *redis.Client {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		tb.Skip("redis-server not in PATH")
	}
	dir := tb.TempDir()
	cmd := exec.Command(bin, "--port", strconv.Itoa(tlsPort+1), "--bind", "127.0.0.1",
		"--tls-port", strconv.Itoa(tlsPort), "--tls-cert-file", f.CertFile, "--tls-key-file", f.KeyFile,
		"--tls-ca-cert-file", f.CAFile, "--tls-auth-clients", "optional", "--tls-cluster", "yes", "--tls-replication", "yes",
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000", "--dir", dir,
		"--save", "", "--appendonly", "no", "--repl-diskless-sync-delay", "0", "--cluster-announce-ip", "127.0.0.1", "--logfile", "redis.log")
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Kill() // our own child, by its PID
		<-exited
		if tb.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			tb.Logf("redis.log of the node on %d:\n%s", tlsPort, b)
		}
	})
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(tlsPort+1)})
	tb.Cleanup(func() { _ = rc.Close() })
	for rc.Ping(ctx).Err() != nil {
		select {
		case <-ctx.Done():
			tb.Fatalf("redis-server with TLS on %d did not start", tlsPort)
		case <-exited:
			tb.Fatalf("redis-server with TLS on %d exited: is it built with TLS? (see %s/redis.log)", tlsPort, dir)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return rc
}
