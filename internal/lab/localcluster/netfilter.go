package localcluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// netfilter cuts links between nodes that bind their own loopback addresses
// (Config.PerNodeIP), with iptables DROP rules in a chain of its own, so that
// heal and close remove exactly what it added and nothing else. Clients on
// 127.0.0.1 still reach every node.
type netfilter struct {
	mu    sync.Mutex
	chain string
	ready bool
}

// newNetfilter returns a netfilter whose chain is named after this process
// and the cluster's first port, so two clusters of one process keep apart.
func newNetfilter(port int) *netfilter {
	return &netfilter{chain: fmt.Sprintf("SHARDSEQ-%d-%d", os.Getpid(), port)}
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("cluster: iptables %s: %v: %s (partitions need root and iptables: apt-get install iptables)", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// PartitionsAvailable reports whether iptables can be used here, as
// Config.Partitions needs.
func PartitionsAvailable() error {
	if _, err := exec.LookPath("iptables"); err != nil {
		return errors.New("cluster: iptables not found: apt-get install iptables")
	}
	return iptables("-S", "INPUT")
}

func (n *netfilter) setup() error {
	if n.ready {
		return nil
	}
	removeStaleChains()
	if err := iptables("-N", n.chain); err != nil {
		return err
	}
	if err := iptables("-I", "INPUT", "-j", n.chain); err != nil {
		_ = iptables("-X", n.chain)
		return err
	}
	n.ready = true
	return nil
}

// cut drops every packet between host a and each of hosts (both ways).
func (n *netfilter) cut(a string, hosts ...string) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.setup(); err != nil {
		return err
	}
	for _, b := range hosts {
		if err := iptables("-A", n.chain, "-s", a, "-d", b, "-j", "DROP"); err != nil {
			return err
		}
		if err := iptables("-A", n.chain, "-s", b, "-d", a, "-j", "DROP"); err != nil {
			return err
		}
	}
	return nil
}

// cutPort drops the traffic between host a and port port of host b (both
// directions of that one TCP service), leaving every other port alone.
func (n *netfilter) cutPort(a, b string, port int) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.setup(); err != nil {
		return err
	}
	p := strconv.Itoa(port)
	if err := iptables("-A", n.chain, "-p", "tcp", "-s", a, "-d", b, "--dport", p, "-j", "DROP"); err != nil {
		return err
	}
	return iptables("-A", n.chain, "-p", "tcp", "-s", b, "--sport", p, "-d", a, "-j", "DROP")
}

// heal removes every cut.
func (n *netfilter) heal() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ready {
		return nil
	}
	return iptables("-F", n.chain)
}

// close removes the chain and its jump. It is idempotent.
func (n *netfilter) close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ready {
		return nil
	}
	n.ready = false
	return firstErr(iptables("-D", "INPUT", "-j", n.chain), iptables("-F", n.chain), iptables("-X", n.chain))
}

// removeStaleChains deletes the chains of earlier runs whose process is gone
// (a test killed by a signal never ran its cleanup), so that their cuts do
// not haunt later runs on the same addresses. Chains are SHARDSEQ-<pid> (older
// runs) or SHARDSEQ-<pid>-<port>.
func removeStaleChains() {
	out, err := exec.Command("iptables", "-S").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, ok := strings.CutPrefix(strings.TrimSpace(line), "-N SHARDSEQ-")
		if !ok {
			continue
		}
		pidText, _, _ := strings.Cut(name, "-")
		pid, err := strconv.Atoi(pidText)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + pidText); err == nil {
			continue // its process still runs
		}
		chain := "SHARDSEQ-" + name
		for k := 0; k < 8 && iptables("-D", "INPUT", "-j", chain) == nil; k++ {
		}
		_ = iptables("-F", chain)
		_ = iptables("-X", chain)
	}
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
