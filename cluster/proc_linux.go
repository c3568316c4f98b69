//go:build linux

package cluster

import "syscall"

// sysProcAttr puts detached nodes in their own session so they outlive us, and
// makes attached ones die with us (Pdeathsig) even if our process crashes
// before Close runs, e.g. a test binary killed by -timeout.
func sysProcAttr(detach bool) *syscall.SysProcAttr {
	if detach {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
