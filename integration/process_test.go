//go:build integration

package integration

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardseq/shardseq/internal/lab/chaos"
	"github.com/shardseq/shardseq/internal/lab/checker"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
)

// binDir holds the binary buildShardseq builds once for the package;
// TestMain removes it.
var (
	binDir    string
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// buildShardseq builds the real binary, once per package run.
func buildShardseq(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binPath = filepath.Join(binDir, "shardseq")
		cmd := exec.Command("go", "build", "-o", binPath, "../cmd/shardseq")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startServe runs `shardseq serve` as its own process; the test stops it by
// PID.
func startServe(t *testing.T, bin string, c *clustertest.Cluster, listen string, shards int, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--redis", strings.Join(c.Addrs(), ","), "--listen", listen, "--shards", strconv.Itoa(shards), "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	clustertest.Eventually(t, 60*time.Second, func() error {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
	return cmd
}

// freshServe starts `shardseq serve` (env added to its environment) and
// returns its base URL and a chaos.Config.AfterFault that kills it with
// kill -9 (the blocks it holds become gaps) and starts a new process on the
// same address: after every fault a process with no memory of the old one
// serves.
func freshServe(t *testing.T, c *clustertest.Cluster, shards int, env ...string) (string, func(context.Context, int, chaos.Fault) error) {
	t.Helper()
	bin := buildShardseq(t)
	listen := freePort(t)
	serve := startServe(t, bin, c, listen, shards, env...)
	return "http://" + listen, func(context.Context, int, chaos.Fault) error {
		_ = serve.Process.Kill()
		_ = serve.Wait()
		serve = startServe(t, bin, c, listen, shards, env...)
		return nil
	}
}

// Our own process: a server killed with kill -9 while it holds blocks, and
// started again, never hands out an ID of the blocks it held; they are gaps.
func TestProcess_KilledServerNeverReissues(t *testing.T) {
	c := startCluster(t, Opts{})
	bin := buildShardseq(t)
	listen := freePort(t)
	ck := checker.New().WithShards(3)
	rec := ck.Recorder()
	hc := &http.Client{Timeout: 5 * time.Second}
	take := func(n int) {
		for k := 0; k < n; k++ {
			req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://"+listen+"/v1/ids/procs?count=100", nil)
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("request %d: %v", k, err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatalf("request %d: %v", k, err)
			}
			ids, err := chaos.ParseIDs(body)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("request %d: HTTP %d %v", k, resp.StatusCode, err)
			}
			rec.Ack(0, ids...)
		}
	}
	for round := 0; round < 3; round++ {
		cmd := startServe(t, bin, c, listen, 3)
		take(200)
		if err := cmd.Process.Kill(); err != nil { // SIGKILL: no Close, blocks held are lost
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	rep := ck.Report()
	t.Logf("report: %s", rep)
	if !rep.OK() || rep.Acknowledged != 3*200*100 {
		t.Fatalf("want %d unique IDs across 3 killed servers: %s", 3*200*100, rep)
	}
	if rep.Gaps == 0 {
		t.Fatalf("killed servers held unused blocks, so the IDs must show gaps: %s", rep)
	}
}
