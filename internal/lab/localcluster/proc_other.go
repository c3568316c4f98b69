//go:build unix && !linux

package localcluster

import (
	"os/exec"
	"strconv"
	"syscall"
)

// Outside Linux (macOS, the BSDs) there is no /proc and no Pdeathsig: the
// launcher falls back to kill(pid, 0) and ps(1), and attached nodes rely on
// Close. Only Linux is tested.

func attachedProcAttr() *syscall.SysProcAttr { return nil }

// processAlive reports whether pid exists; a zombie counts as alive, but our
// own children are reaped as soon as they exit.
func processAlive(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) != syscall.ESRCH
}

// commandLine returns the command line of pid as ps(1) shows it.
func commandLine(pid int) (string, error) {
	out, err := exec.Command("ps", "-o", "command=", "-p", strconv.Itoa(pid)).Output()
	return string(out), err
}
