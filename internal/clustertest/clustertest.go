// Package clustertest starts real local Redis Clusters for tests. It lives
// apart from package cluster so that "testing" is never linked into
// production binaries.
package clustertest

import (
	"context"
	"os/exec"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
)

// Start starts a local cluster for tb and stops it when the test ends.
//
// cfg.Dir defaults to tb.TempDir(). The test is skipped, with the install
// hint, when redis-server is missing (cfg.ServerBin unset and not in PATH); it
// fails, with the tail of the failing node's log, when the cluster does not
// become healthy within a minute. Give every test package its own BasePort
// range: `go test ./...` runs packages in parallel.
func Start(tb testing.TB, cfg cluster.LocalConfig) *cluster.LocalCluster {
	tb.Helper()
	if cfg.ServerBin == "" {
		if _, err := exec.LookPath("redis-server"); err != nil {
			tb.Skip("redis-server not in PATH; install it: apt-get install redis-server (Debian), or set LocalConfig.ServerBin")
		}
	}
	if cfg.Dir == "" {
		cfg.Dir = tb.TempDir()
	}
	if cfg.Logf == nil {
		cfg.Logf = tb.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lc, err := cluster.StartLocal(ctx, cfg)
	if err != nil {
		tb.Fatalf("clustertest: starting local cluster: %v", err)
	}
	tb.Cleanup(func() {
		if err := lc.Close(); err != nil {
			tb.Errorf("clustertest: closing local cluster: %v", err)
		}
	})
	return lc
}
