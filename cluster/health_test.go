package cluster

import (
	"testing"
	"time"
)

// A fault reported by a write holds for its hold, then lets exactly one
// caller through (the trial) and holds for the others until the trial
// reports; a success clears it.
func TestMasterFaultHoldTrialAndClear(t *testing.T) {
	var c Cluster
	const addr = "127.0.0.1:7000"
	if why := c.TryMaster(addr); why != "" {
		t.Fatalf("a master nothing was reported of: %q, want usable", why)
	}
	hold := 50 * time.Millisecond
	c.ReportFault(addr, "WAIT fell short", hold)
	if c.MasterFault(addr) == "" || c.TryMaster(addr) == "" {
		t.Fatal("within the hold the master must be reported faulty")
	}
	if got := c.Faults()[addr]; got != "WAIT fell short" {
		t.Fatalf("Faults()[addr] = %q", got)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.MasterFault(addr) != "" {
		if time.Now().After(deadline) {
			t.Fatal("the hold never ended")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if why := c.TryMaster(addr); why != "" {
		t.Fatalf("after the hold the first caller must get the trial, got %q", why)
	}
	if why := c.TryMaster(addr); why == "" {
		t.Fatal("a second caller during the trial must still see the fault")
	}
	c.ReportOK(addr)
	if why := c.TryMaster(addr); why != "" {
		t.Fatalf("after the trial succeeded: %q, want usable", why)
	}
	if len(c.Faults()) != 0 {
		t.Fatalf("Faults() after ReportOK = %v", c.Faults())
	}
}

// A failed probe makes the master faulty whatever writes reported.
func TestMasterFaultFollowsProbe(t *testing.T) {
	var c Cluster
	const addr = "127.0.0.1:7001"
	c.mon.states.Store(&map[string]MasterState{addr: {Addr: addr, Err: "connection refused"}})
	if why := c.MasterFault(addr); why == "" {
		t.Fatal("a master whose probe failed must be faulty")
	}
	c.ReportOK(addr)
	if why := c.TryMaster(addr); why == "" {
		t.Fatal("a write's success does not override a failed probe")
	}
}
