package localcluster

import (
	"os/exec"
	"strings"
	"testing"
)

func chains(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("iptables", "-S").Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// A chain left by a run that was killed (its process gone) is removed by the
// next run; the new run's own cuts are removed by Heal and Close.
func TestNetfilterRemovesStaleChainsAndItsOwn(t *testing.T) {
	if err := PartitionsAvailable(); err != nil {
		t.Skipf("needs root and iptables: %v", err)
	}
	const stale = "SHARDSEQ-999999" // no such PID: pid_max is below it on Linux defaults
	_ = exec.Command("iptables", "-N", stale).Run()
	_ = exec.Command("iptables", "-I", "INPUT", "-j", stale).Run()
	t.Cleanup(func() {
		_ = exec.Command("iptables", "-D", "INPUT", "-j", stale).Run()
		_ = exec.Command("iptables", "-X", stale).Run()
	})

	n := newNetfilter(7199)
	if err := n.cut("127.0.0.201", "127.0.0.202"); err != nil {
		t.Fatal(err)
	}
	s := chains(t)
	if strings.Contains(s, stale) {
		t.Fatalf("stale chain %s survived:\n%s", stale, s)
	}
	if !strings.Contains(s, "-s 127.0.0.201/32 -d 127.0.0.202/32 -j DROP") || !strings.Contains(s, "-s 127.0.0.202/32 -d 127.0.0.201/32 -j DROP") {
		t.Fatalf("cut not in place:\n%s", s)
	}
	if err := n.heal(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(chains(t), "127.0.0.201") {
		t.Fatal("Heal left a rule")
	}
	if err := n.close(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(chains(t), n.chain) {
		t.Fatal("Close left the chain")
	}
}
