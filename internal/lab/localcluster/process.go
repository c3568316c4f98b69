package localcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

func (lc *Cluster) serverArgs(n *localProc) []string {
	c := lc.cfg
	args := []string{
		"--port", strconv.Itoa(n.Port),
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--dir", n.Dir,
		"--logfile", "redis.log",
		"--daemonize", "no",
	}
	args = append(args, c.timingArgs()...)
	if c.PerNodeIP {
		args = append(args, "--bind", n.Host, "--bind-source-addr", n.Host, "--protected-mode", "no")
	} else {
		args = append(args, "--bind", n.Host)
	}
	args = append(args, c.Persistence.args()...)
	return append(args, c.ExtraArgs...)
}

// spawn starts n's redis-server. Caller holds lc.mu.
func (lc *Cluster) spawn(n *localProc) error {
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	out, err := os.OpenFile(filepath.Join(n.Dir, "stdout.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer out.Close()
	cmd := exec.Command(lc.cfg.ServerBin, lc.serverArgs(n)...)
	cmd.Dir = n.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = sysProcAttr(lc.cfg.Detach)
	if err := cmd.Start(); err != nil {
		return &nodeError{n.Index, fmt.Errorf("cluster: starting %s: %w", n.Addr, err)}
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // reap; the exit is detected through exited
		close(exited)
	}()
	n.PID, n.exited, n.State = cmd.Process.Pid, exited, stateRunning
	return nil
}

// sysProcAttr puts detached nodes in their own session so they outlive us;
// attached ones die with us where the system allows (attachedProcAttr).
func sysProcAttr(detach bool) *syscall.SysProcAttr {
	if detach {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return attachedProcAttr()
}

// nodeError ties an error to a node so its log tail can be attached.
type nodeError struct {
	index int
	err   error
}

func (e *nodeError) Error() string { return e.err.Error() }
func (e *nodeError) Unwrap() error { return e.err }

// withLogTail appends the log tail of the node err is about, if any.
func (lc *Cluster) withLogTail(err error) error {
	var ne *nodeError
	if !errors.As(err, &ne) || ne.index < 0 || ne.index >= len(lc.nodes) {
		return err
	}
	n := lc.nodes[ne.index]
	return fmt.Errorf("%w\n--- tail of %s ---\n%s%s", err,
		filepath.Join(n.Dir, "redis.log"), tail(filepath.Join(n.Dir, "redis.log"), 15), tail(filepath.Join(n.Dir, "stdout.log"), 5))
}

func tail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const max = 8 << 10
	if st, err := f.Stat(); err == nil && st.Size() > max {
		_, _ = f.Seek(-max, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	ls := strings.SplitAfter(string(b), "\n")
	if len(ls) > lines+1 {
		ls = ls[len(ls)-lines-1:]
	}
	return strings.Join(ls, "")
}

func (lc *Cluster) client(addr string) *redis.Client {
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if cl, ok := lc.clients[addr]; ok {
		return cl
	}
	cl := redis.NewClient(&redis.Options{
		Addr: addr, DialTimeout: 500 * time.Millisecond,
		ReadTimeout: time.Second, WriteTimeout: time.Second,
		MaxRetries: -1, DialerRetries: 1, PoolSize: 4, DisableIdentity: true,
	})
	if !lc.closed {
		lc.clients[addr] = cl
	}
	return cl
}

// poll calls f every tick until it returns nil or ctx ends; then it returns
// the last error of f, wrapped with what was awaited.
func poll(ctx context.Context, what string, f func() error) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster: waiting for %s: %w (last error: %w)", what, ctx.Err(), err)
		case <-tick.C:
		}
	}
}

func (lc *Cluster) waitPing(ctx context.Context, n *localProc) error {
	cl := lc.client(n.Addr)
	return poll(ctx, n.Addr+" to answer PING", func() error {
		if n.exited != nil {
			select {
			case <-n.exited:
				return &nodeError{n.Index, fmt.Errorf("cluster: redis-server %s exited at start", n.Addr)}
			default:
			}
		}
		// Probe the port first: go-redis logs every failed dial.
		conn, err := net.DialTimeout("tcp", n.Addr, 200*time.Millisecond)
		if err != nil {
			return &nodeError{n.Index, fmt.Errorf("cluster: %s: %w", n.Addr, err)}
		}
		_ = conn.Close()
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		if err := cl.Ping(pctx).Err(); err != nil {
			return &nodeError{n.Index, fmt.Errorf("cluster: %s: %w", n.Addr, err)}
		}
		return nil
	})
}

// create builds the cluster by hand: the same epochs and slot ranges as
// redis-cli, but a deterministic master/replica layout and no fixed sleeps.

// killLocked signals n and waits up to wait for it to exit. Caller holds mu.
func (lc *Cluster) killLocked(n *localProc, sig syscall.Signal, wait time.Duration) error {
	if n.PID == 0 || n.State == stateStopped || n.reaped() {
		n.PID, n.State = 0, stateStopped
		return nil
	}
	if n.exited == nil && !lc.ownsPID(n) {
		// Not ours any more (exited and the PID was reused): never signal it.
		n.PID, n.State = 0, stateStopped
		return nil
	}
	if err := syscall.Kill(n.PID, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("cluster: kill %s (pid %d): %w", n.Addr, n.PID, err)
	}
	if sig == syscall.SIGTERM && n.State == statePaused {
		_ = syscall.Kill(n.PID, syscall.SIGCONT) // a stopped process cannot act on SIGTERM
	}
	if !waitGone(n, wait) {
		return fmt.Errorf("cluster: %s (pid %d) still alive %v after signal %v", n.Addr, n.PID, wait, sig)
	}
	n.PID, n.State = 0, stateStopped
	return nil
}

// waitGone waits for n's process to exit: on the reaper's channel for our
// child, by polling the PID otherwise.
func waitGone(n *localProc, wait time.Duration) bool {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	if n.exited != nil {
		select {
		case <-n.exited:
			return true
		case <-deadline.C:
			return false
		}
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for processAlive(n.PID) {
		select {
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
	return true
}

// ownsPID checks that n.PID still is the redis-server of this node (its
// process title names the node's port) before a re-attached cluster signals
// it, so a reused PID is never killed.
func (lc *Cluster) ownsPID(n *localProc) bool {
	if !processAlive(n.PID) {
		return false
	}
	cmdline, err := commandLine(n.PID)
	if err != nil {
		return false
	}
	return strings.Contains(cmdline, "redis") && strings.Contains(cmdline, ":"+strconv.Itoa(n.Port))
}
