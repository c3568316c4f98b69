package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
)

// Netfilter cuts links between nodes that bind their own loopback addresses
// (cluster.LocalConfig.PerNodeIP), with iptables DROP rules in a chain of its
// own, so that Heal and Close remove exactly what it added and nothing else.
// Clients on 127.0.0.1 still reach every node.
type Netfilter struct {
	mu    sync.Mutex
	chain string
	ready bool
	cuts  int
}

// NewNetfilter returns a Netfilter whose chain is named after this process.
func NewNetfilter() *Netfilter {
	return &Netfilter{chain: fmt.Sprintf("SHARDSEQ-%d", os.Getpid())}
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chaos: iptables %s: %v: %s (partitions need root and iptables: apt-get install iptables)", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Available reports whether iptables can be used here.
func Available() error {
	if _, err := exec.LookPath("iptables"); err != nil {
		return fmt.Errorf("chaos: iptables not found: apt-get install iptables")
	}
	return iptables("-S", "INPUT")
}

func (n *Netfilter) setup() error {
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

// Cut drops every packet between host a and each of hosts (both ways).
func (n *Netfilter) Cut(a string, hosts ...string) error {
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
		n.cuts++
	}
	return nil
}

// Heal removes every cut.
func (n *Netfilter) Heal() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ready {
		return nil
	}
	n.cuts = 0
	return iptables("-F", n.chain)
}

// Close removes the chain and its jump. It is idempotent.
func (n *Netfilter) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.ready {
		return nil
	}
	n.ready = false
	return errorsJoin(iptables("-D", "INPUT", "-j", n.chain), iptables("-F", n.chain), iptables("-X", n.chain))
}

// removeStaleChains deletes the chains of earlier runs whose process is gone
// (a test killed by a signal never ran its cleanup), so that their cuts do
// not haunt later runs on the same addresses.
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
		pid, err := strconv.Atoi(name)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + name); err == nil {
			continue // its process still runs
		}
		chain := "SHARDSEQ-" + name
		for k := 0; k < 8 && iptables("-D", "INPUT", "-j", chain) == nil; k++ {
		}
		_ = iptables("-F", chain)
		_ = iptables("-X", chain)
	}
}

func errorsJoin(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
