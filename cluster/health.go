package cluster

import (
	"sync"
	"time"
)

// masterFaults holds what reservations learned about masters between
// probes: a master whose writes time out, whose replicas do not confirm
// (WAIT falls short) or that answers CLUSTERDOWN, LOADING, READONLY or
// MASTERDOWN is as unable to serve every shard on it as one whose probe
// failed, and every namespace on the connection should step around it at
// once instead of each learning it again at the cost of a caller's budget.
// A probe cannot see most of these (INFO answers while WAIT falls short), so
// a fault is held for a while and then one caller is let through as a trial.
type masterFaults struct {
	mu sync.Mutex
	m  map[string]*masterFault
}

type masterFault struct {
	why   string
	until time.Time // the fault holds until then (monotonic)
	hold  time.Duration
}

// ReportFault records that a write to the master at addr failed in a way
// that concerns the whole master (the caller decides which errors do), so
// that everything on this connection avoids it for hold. After hold one
// caller at a time may try it again (MasterFault lets it through); its
// success (ReportOK) or failure (ReportFault) ends the trial.
func (c *Cluster) ReportFault(addr, why string, hold time.Duration) {
	f := &c.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.m == nil {
		f.m = make(map[string]*masterFault)
	}
	f.m[addr] = &masterFault{why: why, until: time.Now().Add(hold), hold: hold}
}

// ReportOK clears what ReportFault recorded for addr: a write there
// succeeded.
func (c *Cluster) ReportOK(addr string) {
	f := &c.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, addr)
}

// MasterFault says why the master at addr should not be used now: its last
// probe failed, or a write there failed (ReportFault) within the hold. It
// changes nothing: health pages and counts ask it.
func (c *Cluster) MasterFault(addr string) string {
	if st, ok := c.MasterState(addr); ok && !st.OK {
		return "master " + addr + ": " + st.Err
	}
	f := &c.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	if mf := f.m[addr]; mf != nil && time.Now().Before(mf.until) {
		return "master " + addr + ": " + mf.why
	}
	return ""
}

// TryMaster is MasterFault for a caller about to write to addr: "" lets it
// go ahead. Once a fault's hold is over, one caller is let through (the
// trial) and the fault holds for the others one more hold: long enough for
// the trial to report (ReportOK or ReportFault), and a trial that never
// reports (its caller gave up) costs one hold.
func (c *Cluster) TryMaster(addr string) string {
	if st, ok := c.MasterState(addr); ok && !st.OK {
		return "master " + addr + ": " + st.Err
	}
	f := &c.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	mf := f.m[addr]
	switch {
	case mf == nil:
		return ""
	case time.Now().Before(mf.until):
		return "master " + addr + ": " + mf.why
	}
	mf.until = time.Now().Add(mf.hold)
	return ""
}

// Faults returns the masters a write recently failed on, with why, for the
// health page and logs.
func (c *Cluster) Faults() map[string]string {
	f := &c.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]string, len(f.m))
	for addr, mf := range f.m {
		out[addr] = mf.why
	}
	return out
}
