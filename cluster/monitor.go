package cluster

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shardseq/shardseq/internal/stall"
)

// MasterState is what the last probe of one master found. Health is a
// property of a master, not of a shard: one probe per master per interval
// serves every namespace and shard on it.
type MasterState struct {
	Addr string
	ID   string
	// OK: the master answered INFO within ProbeTimeout and still says it is
	// a master.
	OK  bool
	Err string // why not OK
	// Identity is its master_replid and run_id: it changes on promotion and
	// on every restart, so a new one means the history it serves may have
	// changed (the same identity the reservation scripts read).
	Identity string
	Replicas int // connected_slaves
	Latency  time.Duration
	At       time.Time // when the probe ran
}

// Change is a master whose identity this process has not seen before: an
// identity other than the last one probed at that address, or a master
// probed for the first time (after a promotion, or when the process starts,
// since nobody can tell what happened while it was not running).
type Change struct {
	Addr, ID              string
	OldIdentity, Identity string // OldIdentity is "" for a first probe
}

// ProbeRound is the outcome of one probe of every master.
type ProbeRound struct {
	Masters map[string]MasterState // by address; do not modify
	Changes []Change
}

// monitor probes every master of the topology once per interval.
type monitor struct {
	states atomic.Pointer[map[string]MasterState]
	subs   listeners[ProbeRound]
	mu     sync.Mutex        // guards seen
	seen   map[string]string // addr -> last identity
	rounds atomic.Uint64
}

// Masters returns the last probe of every master, by address. It is empty
// until the first round finished, and nil when probing is disabled.
func (c *Cluster) Masters() map[string]MasterState {
	if p := c.mon.states.Load(); p != nil {
		return *p
	}
	return nil
}

// MasterState returns the last probe of the master at addr.
func (c *Cluster) MasterState(addr string) (MasterState, bool) {
	s, ok := c.Masters()[addr]
	return s, ok
}

// Serving reports whether the last probe found at least one master able to
// serve. Before the first round, with probing disabled, and when this
// process was stopped since the last round (what it found may be over; the
// next round runs at once), it is true.
func (c *Cluster) Serving() bool {
	p := c.mon.states.Load()
	if p == nil || len(*p) == 0 {
		return true
	}
	var last time.Time
	for _, s := range *p {
		if s.OK {
			return true
		}
		if s.At.After(last) {
			last = s.At
		}
	}
	return stall.Since(last)
}

// ProbeRounds is the number of probe rounds run so far.
func (c *Cluster) ProbeRounds() uint64 { return c.mon.rounds.Load() }

// Subscribe calls fn after every probe round, on the prober's goroutine:
// keep it short and never block in it. The returned function unsubscribes.
func (c *Cluster) Subscribe(fn func(ProbeRound)) (unsubscribe func()) {
	return c.mon.subs.add(fn)
}

func (c *Cluster) probeLoop(every, timeout time.Duration) {
	defer c.wg.Done()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		c.probeRound(timeout)
		select {
		case <-c.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probeRound probes every master serving slots at once and publishes the
// result.
func (c *Cluster) probeRound(timeout time.Duration) {
	top := c.Topology()
	if top == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	out := make(map[string]MasterState, len(top.Masters))
	prev := c.mon.states.Load()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, m := range top.Masters {
		if len(m.Slots) == 0 {
			continue
		}
		wg.Go(func() {
			s, stalled := c.probe(ctx, m)
			if stalled && prev != nil {
				// This process was stopped when the probe's deadline
				// passed: it saw nothing of its master (the answer may have
				// waited in the socket), which keeps its last state; the
				// ticker's pending tick probes again at once.
				if p, ok := (*prev)[m.Addr]; ok {
					s = p
				}
			}
			mu.Lock()
			out[m.Addr] = s
			mu.Unlock()
		})
	}
	wg.Wait()
	if c.ctx.Err() != nil {
		return
	}
	mon := &c.mon
	mon.mu.Lock()
	var changes []Change
	for addr, s := range out {
		if !s.OK || s.Identity == "" {
			continue
		}
		if old, ok := mon.seen[addr]; !ok || old != s.Identity {
			changes = append(changes, Change{Addr: addr, ID: s.ID, OldIdentity: old, Identity: s.Identity})
			mon.seen[addr] = s.Identity
		}
	}
	mon.mu.Unlock()
	mon.states.Store(&out)
	mon.rounds.Add(1)
	mon.subs.call(ProbeRound{Masters: out, Changes: changes})
}

// probe asks one master for its replication state; stalled reports a
// probe that timed out while this process was stopped (package stall).
func (c *Cluster) probe(ctx context.Context, m Master) (s MasterState, stalled bool) {
	s = MasterState{Addr: m.Addr, ID: m.ID, At: time.Now()}
	info, err := c.Node(m.Addr).Info(ctx, "replication", "server").Result()
	s.Latency = time.Since(s.At)
	if err != nil {
		s.Err = err.Error()
		if errors.Is(err, context.DeadlineExceeded) {
			s.Err = "no answer within the probe timeout"
		}
		if dl, _ := ctx.Deadline(); stall.Timeout(err) && stall.At(dl) {
			return s, true
		}
		c.LazyReload() // a replica may have been promoted in its place
		return s, false
	}
	kv := map[string]string{}
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			kv[k] = v
		}
	}
	if kv["master_replid"] != "" && kv["run_id"] != "" {
		s.Identity = kv["master_replid"] + "-" + kv["run_id"]
	}
	s.Replicas, _ = strconv.Atoi(kv["connected_slaves"])
	if role := kv["role"]; role != "master" {
		s.Err = "not a master any more (role " + role + ")"
		c.LazyReload() // a promotion moved its slots
		return s, false
	}
	s.OK = true
	return s, false
}
