//go:build unix && !linux

package cluster

import "syscall"

// sysProcAttr puts detached nodes in their own session so they outlive us.
// Outside Linux there is no Pdeathsig: attached nodes rely on Close.
func sysProcAttr(detach bool) *syscall.SysProcAttr {
	if detach {
		return &syscall.SysProcAttr{Setsid: true}
	}
	return nil
}
