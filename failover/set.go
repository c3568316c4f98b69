package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/stall"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// ErrNoHealthyShard means every shard of the namespace failed, has its
// breaker open, or sits on a master whose last probe failed: nothing can be
// handed out until one recovers.
var ErrNoHealthyShard = errors.New("failover: no healthy shard")

// ErrShardTimeout: a shard did not answer within AttemptTimeout (a frozen
// master, or packets to a vanished host going nowhere).
var ErrShardTimeout = errors.New("failover: shard did not answer in time")

// ErrStalled marks a wait that timed out only because this process did not
// run when its deadline passed (SIGSTOP, a frozen container, a starved CPU;
// package stall): it says nothing of the shard or its master, so it counts
// against neither, and Reserve tries again.
var ErrStalled = errors.New("this process was stopped when the deadline passed (not a fault of Redis)")

// stallRetries is how many times Reserve starts over after a stall; a
// process stopped again and again fails like one that cannot reach Redis.
const stallRetries = 2

// DefaultAttemptTimeout is BreakerConfig.AttemptTimeout when it is 0.
const DefaultAttemptTimeout = 750 * time.Millisecond

// BreakerConfig tunes the per-shard circuit breakers. Zero values are the
// defaults.
type BreakerConfig struct {
	// Failures in a row that open a breaker. Default 2: a dead master costs
	// two timeouts before callers stop trying it.
	Failures uint32
	// OpenFor is how long a breaker stays open before one trial. Default 1s.
	OpenFor time.Duration
	// AttemptTimeout bounds one reservation on one shard (script, WAIT and
	// ceiling raise); past it the shard counts a failure and the next shard
	// is tried in the same call. It must exceed the acknowledgement timeout.
	// Default 750ms.
	AttemptTimeout time.Duration
	// ReserveTimeout bounds one Reserve over every shard it tries, so a
	// caller waits at most this long for a refill. Default 1s.
	ReserveTimeout time.Duration
	// Picker chooses how Reserve walks the shards. The zero value,
	// PickPerMaster, is the only one to use; PickSequential exists for the
	// negative control that shows what it fixed.
	Picker Picker
}

// Picker is how Reserve walks the shards of a namespace.
type Picker int

const (
	// PickPerMaster tries at most one shard per master in a call and skips
	// every shard of a master that a write, in any namespace on the
	// connection, recently found unable to serve (see MasterFault).
	PickPerMaster Picker = iota
	// PickSequential is the walk before per-master health: every shard in
	// turn, each learning its master's fault again at the cost of an
	// attempt (a lagging replica's master cost one AckTimeout per shard on
	// it). Unsafe for availability; for negative controls only.
	PickSequential
)

func (c BreakerConfig) withDefaults() BreakerConfig {
	if c.Failures == 0 {
		c.Failures = 2
	}
	if c.OpenFor == 0 {
		c.OpenFor = time.Second
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = DefaultAttemptTimeout
	}
	if c.ReserveTimeout == 0 {
		c.ReserveTimeout = time.Second
	}
	return c
}

// Validate reports the first field out of bounds.
func (c BreakerConfig) Validate() error {
	switch {
	case c.OpenFor < 0 || c.OpenFor > time.Minute:
		return fmt.Errorf("OpenFor %v: want 0 (default 1s) up to 1m", c.OpenFor)
	case c.AttemptTimeout < 0 || c.AttemptTimeout > 30*time.Second:
		return fmt.Errorf("AttemptTimeout %v: want 0 (default %v) up to 30s", c.AttemptTimeout, DefaultAttemptTimeout)
	case c.ReserveTimeout < 0 || c.ReserveTimeout > time.Minute:
		return fmt.Errorf("ReserveTimeout %v: want 0 (default 1s) up to 1m", c.ReserveTimeout)
	case c.Picker < PickPerMaster || c.Picker > PickSequential:
		return fmt.Errorf("Picker %d: want PickPerMaster or PickSequential", c.Picker)
	}
	return nil
}

// Observer learns the outcome of every reservation (not of probes), for
// metrics. It is called on the reserving goroutine: keep it cheap.
type Observer interface {
	Reserved(namespace string, shard int, ids int64, took time.Duration, err error)
}

// Retryable decides, for the whole project, whether a failed reservation may
// be tried again on another shard. Cancellation by the caller and
// configuration errors are final; everything else (a dead or frozen master,
// missing acknowledgement, CLUSTERDOWN, a regressed counter, a shard with no
// trusted ceiling) is a fault of that shard alone.
func Retryable(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, cluster.ErrClosed):
		return false
	case errors.Is(err, shard.ErrShardCountMismatch), errors.Is(err, namespace.ErrSettingsMismatch),
		errors.Is(err, namespace.ErrNamespaceNotFound), errors.Is(err, namespace.ErrNamespaceLost), errors.Is(err, namespace.ErrInvalidNamespace),
		errors.Is(err, shard.ErrUnsafeRedis):
		return false
	case errors.Is(err, shard.ErrBadRecord) && !errors.Is(err, shard.ErrCounterRegressed):
		return false
	}
	return true
}

// MasterFault decides, for the whole project, whether a failed reservation
// says something about a master rather than one shard, and which master: a
// write that timed out or could not reach it, replicas that did not confirm
// (WAIT fell short), or a node that refuses writes for now (CLUSTERDOWN,
// LOADING, READONLY, MASTERDOWN). Every shard on that master
// would fail the same way. What belongs to one shard (a fence, a lost
// ceiling, a regressed counter, bad data) is not a master's fault, nor is
// the caller's own cancellation, nor TRYAGAIN (a slot split by a migration:
// the shard's, reported as shard.ErrRedirect).
func MasterFault(err error) (addr string, ok bool) {
	var ne *shard.NodeError
	switch {
	case err == nil || !errors.As(err, &ne):
		return "", false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, cluster.ErrClosed),
		errors.Is(err, shard.ErrFenced), errors.Is(err, shard.ErrCeilingLost), errors.Is(err, shard.ErrCounterRegressed),
		errors.Is(err, shard.ErrBadRecord), errors.Is(err, shard.ErrExhausted), errors.Is(err, shard.ErrUnsafeRedis),
		errors.Is(err, shard.ErrShardCountMismatch), errors.Is(err, shard.ErrRedirect), errors.Is(err, ErrStalled):
		return "", false
	}
	return ne.Addr, true
}

// expired reports whether ctx is over, or its deadline passed although its
// timer has not fired yet (it fires late in a process that was stopped).
func expired(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	return ctx.Err() != nil || ok && !time.Now().Before(dl)
}

// excluded says whether err must not count against a shard's breaker: the
// caller gave up, or the shard's configuration (not its health) is wrong.
func excluded(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrStalled) ||
		errors.Is(err, shard.ErrShardCountMismatch) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

// Cluster is what a Set needs of the cluster connection (*cluster.Cluster).
type Cluster interface {
	Topology() *cluster.Topology
	MasterState(addr string) (cluster.MasterState, bool)
	Subscribe(fn func(cluster.ProbeRound)) (unsubscribe func())
	// What writes learn of masters, shared by every Set on the connection.
	MasterFault(addr string) string
	TryMaster(addr string) string
	ReportFault(addr, why string, hold time.Duration)
	ReportOK(addr string)
}

type member struct {
	sh           *shard.Shard
	cb           *gobreaker.CircuitBreaker[shard.Block]
	slot         int
	reservations atomic.Uint64
	failures     atomic.Uint64
	issued       atomic.Uint64
	blockSize    atomic.Int64
	latencyNanos atomic.Int64
	trying       atomic.Bool  // a trial (a reservation of nothing, in the background) is running
	cutTrialAt   atomic.Int64 // unix nanos of the last trial for a caller cut short
	shownNode    atomic.Pointer[string]
	shownHealthy atomic.Bool  // what the registry row says, to skip writes that change nothing
	shownAt      atomic.Int64 // unix nanos of the last row write on success
	downErr      atomic.Pointer[string]
	fencesLogged atomic.Int64
}

// Set is the shards of one namespace behind their breakers.
type Set struct {
	ns      *namespace.Namespace
	reg     *Registry
	cl      Cluster
	log     *slog.Logger
	members []*member
	cfg     BreakerConfig
	obs     Observer
	next    atomic.Uint64
	unsub   func()
	closed  atomic.Bool
}

// NewSet puts every shard of ns behind a breaker named "shard-<ns>-<i>",
// registers it in reg, and follows the cluster's master probes: a shard on a
// master whose last probe failed is skipped at once, and one whose breaker is
// open gets a trial when its master answers again. Close stops following.
func NewSet(ns *namespace.Namespace, reg *Registry, cl Cluster, cfg BreakerConfig, log *slog.Logger, obs Observer) *Set {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	s := &Set{ns: ns, reg: reg, cl: cl, log: log, cfg: cfg, obs: obs}
	for _, sh := range ns.Shards {
		m := &member{sh: sh, slot: cluster.Slot(sh.Key)}
		idx := sh.Index
		m.cb = gobreaker.NewCircuitBreaker[shard.Block](gobreaker.Settings{
			Name:        "shard-" + ns.Name + "-" + strconv.Itoa(idx),
			MaxRequests: 1,
			Timeout:     cfg.OpenFor,
			ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= cfg.Failures },
			IsExcluded:  excluded,
			// Runs under the breaker's lock: one registry write and one log
			// line, never a call back into the breaker.
			OnStateChange: func(name string, from, to gobreaker.State) {
				s.log.Info("shard breaker", "breaker", name, "from", from.String(), "to", to.String())
				reg.Update(ns.Name, idx, func(r *ShardStatus) {
					r.State = to.String()
					r.Healthy = to == gobreaker.StateClosed && s.members[idx].downErr.Load() == nil
				})
				s.members[idx].shownHealthy.Store(to == gobreaker.StateClosed)
			},
		})
		s.members = append(s.members, m)
		reg.Update(ns.Name, idx, func(r *ShardStatus) {
			r.Key, r.Slot, r.State, r.Healthy = sh.Key, m.slot, gobreaker.StateClosed.String(), true
			s.fillNode(r, "")
		})
	}
	s.unsub = cl.Subscribe(s.onProbe)
	return s
}

func (s *Set) fillNode(r *ShardStatus, addr string) {
	top := s.cl.Topology()
	if top == nil {
		return
	}
	if m, ok := top.MasterForSlot(r.Slot); ok && (addr == "" || addr == m.Addr) {
		r.Node, r.NodeID = m.Addr, m.ID
		return
	}
	if m, ok := top.MasterByAddr(addr); ok {
		r.Node, r.NodeID = m.Addr, m.ID
		return
	}
	if addr != "" {
		r.Node, r.NodeID = addr, ""
	}
}

// Namespace is the namespace this set serves.
func (s *Set) Namespace() *namespace.Namespace { return s.ns }

// health is the one definition of whether shard m can serve now: the
// address of the master serving its counter, and why it cannot ("" when it
// can): its slot has no master, its master's last probe failed or a write
// there recently failed (in any namespace on the connection), or its own
// breaker is open.
func (s *Set) health(m *member) (addr, why string) {
	addr, why = s.master(m)
	if why == "" && m.cb.State() == gobreaker.StateOpen {
		why = "breaker open"
	}
	return addr, why
}

// master is the part of health that concerns m's master rather than m.
func (s *Set) master(m *member) (addr, why string) {
	top := s.cl.Topology()
	if top == nil {
		return "", ""
	}
	master, ok := top.MasterForSlot(m.slot)
	if !ok {
		return "", "slot " + strconv.Itoa(m.slot) + " has no master"
	}
	return master.Addr, s.cl.MasterFault(master.Addr)
}

// Reserve reserves count IDs from one shard, none at or below level() (asked
// right before each attempt is sent; nil: no level). It starts at shard
// prefer (or round robin when prefer < 0) and moves on whenever a shard
// fails with a retryable error, so the caller sees an error only when no
// shard can serve. It tries at most one shard per master: a failure that
// concerns the master (MasterFault) is recorded on the connection, so that
// every shard of that master, in every namespace, is skipped without a call
// until a trial succeeds; shards whose breaker is open are skipped too. The
// whole call takes at most ReserveTimeout, unless this process stalls
// during it: then what timed out is not held against any master and the
// call starts over (at most stallRetries times).
func (s *Set) Reserve(parent context.Context, count int64, prefer int, level func() int64) (shard.Block, error) {
	for try := 0; ; try++ {
		b, err := s.reserveOnce(parent, count, prefer, level)
		if !errors.Is(err, ErrStalled) || try == stallRetries || expired(parent) {
			return b, err
		}
		s.log.Info("reservation tried again: this process stalled during it", "namespace", s.ns.Name, "err", err)
	}
}

func (s *Set) reserveOnce(parent context.Context, count int64, prefer int, level func() int64) (shard.Block, error) {
	ctx, cancel := context.WithTimeout(parent, s.cfg.ReserveTimeout)
	defer cancel()
	if level == nil {
		level = func() int64 { return 0 }
	}
	n := len(s.members)
	start := prefer
	if start < 0 || start >= n {
		start = int(s.next.Add(1) % uint64(n))
	}
	perMaster := s.cfg.Picker == PickPerMaster
	var errs []error
	var failed []string // masters a write failed on in this call
	caller, _ := parent.Deadline()
	for k := 0; k < n; k++ {
		m := s.members[(start+k)%n]
		if m.cb.State() == gobreaker.StateOpen {
			continue
		}
		addr, why := "", ""
		if perMaster {
			if addr, why = s.master(m); why == "" && slices.Contains(failed, addr) {
				continue // one attempt per master per call
			}
			if why == "" && addr != "" {
				why = s.cl.TryMaster(addr)
			}
		} else {
			why = s.masterProbeDown(m)
		}
		if why != "" {
			errs = append(errs, fmt.Errorf("shard %d: %s", m.sh.Index, why))
			continue
		}
		b, err := s.reserveOn(ctx, caller, m, count, level)
		if bad := s.report(b, err); bad != "" {
			failed = append(failed, bad)
		}
		if err == nil {
			return b, nil
		}
		if errors.Is(err, ErrStalled) {
			// The deadline passed while this process was stopped: this
			// failure, and those of the shards after it, say nothing.
			return shard.Block{}, fmt.Errorf("%w in namespace %q: shard %d: %w", ErrNoHealthyShard, s.ns.Name, m.sh.Index, err)
		}
		// Our own time limit running out (a write stuck on a frozen master)
		// is this shard's failure, not the caller's: it ends the search.
		outOfTime := expired(ctx) && !expired(parent) && errors.Is(err, context.DeadlineExceeded)
		if (!Retryable(err) && !outOfTime) || expired(parent) {
			return shard.Block{}, err
		}
		errs = append(errs, fmt.Errorf("shard %d: %w", m.sh.Index, err))
		if expired(ctx) {
			errs = append(errs, fmt.Errorf("no shard served within %v", s.cfg.ReserveTimeout))
			break
		}
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("every breaker is open"))
	}
	return shard.Block{}, fmt.Errorf("%w in namespace %q: %w", ErrNoHealthyShard, s.ns.Name, errors.Join(errs...))
}

// report tells the connection what an attempt learned of its master, with
// PickPerMaster: a success clears a fault (ReportOK); a failure that
// concerns the master (MasterFault) holds it for OpenFor, and report
// returns that master.
func (s *Set) report(b shard.Block, err error) (faulty string) {
	if s.cfg.Picker != PickPerMaster {
		return ""
	}
	if err == nil {
		s.cl.ReportOK(b.Node)
		return ""
	}
	if bad, ok := MasterFault(err); ok {
		s.cl.ReportFault(bad, err.Error(), s.cfg.OpenFor)
		return bad
	}
	return ""
}

// masterProbeDown is PickSequential's view: the master's last probe only.
func (s *Set) masterProbeDown(m *member) string {
	top := s.cl.Topology()
	if top == nil {
		return ""
	}
	master, ok := top.MasterForSlot(m.slot)
	if !ok {
		return "slot " + strconv.Itoa(m.slot) + " has no master"
	}
	if st, ok := s.cl.MasterState(master.Addr); ok && !st.OK {
		return "master " + master.Addr + ": " + st.Err
	}
	return ""
}

func (s *Set) reserveOn(ctx context.Context, caller time.Time, m *member, count int64, level func() int64) (shard.Block, error) {
	t0 := time.Now()
	cutShort := false
	b, err := m.cb.Execute(func() (shard.Block, error) {
		own := time.Now().Add(s.cfg.AttemptTimeout)
		actx, cancel := context.WithDeadline(ctx, own)
		defer cancel()
		b, err := m.sh.ReserveAbove(actx, count, level)
		dl, _ := actx.Deadline()
		switch {
		case err == nil || !stall.Timeout(err) || !expired(actx):
			// An answer, or a failure that is not this attempt's deadline
			// (a caller's cancellation passes as it is).
		case stall.At(dl):
			// The deadline passed while this process was stopped: the
			// answer may have waited in the socket. (An answer, even a late
			// one, is still Redis's word.)
			return b, fmt.Errorf("%w: %w", ErrStalled, err)
		case !caller.IsZero() && !dl.Before(caller) && dl.Before(own):
			// The caller's own deadline cut the attempt short of its limit:
			// the master was not shown to be at fault. go-redis reports
			// that deadline as the socket's "i/o timeout"; wrapped in the
			// context's error, neither MasterFault nor the breaker counts
			// it. A trial finds out in the background.
			cutShort = true
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		default:
			// The attempt's own deadline, or the call's ReserveTimeout: a
			// fault of this shard's master, or of a ceiling copy's
			// (NodeError says which). The context error is not wrapped:
			// Retryable must not take it for the caller's.
			werr := fmt.Errorf("%w (%v): %v", ErrShardTimeout, s.cfg.AttemptTimeout, err)
			if ne := (*shard.NodeError)(nil); errors.As(err, &ne) {
				werr = &shard.NodeError{Addr: ne.Addr, Err: werr}
			}
			err = werr
		}
		return b, err
	})
	if cutShort {
		s.trial(m, true)
	}
	lat := time.Since(t0)
	if f := m.sh.FenceCount.Load(); f != m.fencesLogged.Load() {
		m.fencesLogged.Store(f)
		s.log.Warn("shard fenced", "namespace", s.ns.Name, "shard", m.sh.Index, "fence_events", f,
			"node", b.Node, "detail", "the counter's history changed (a promotion, a restart, older data): it continues above its ceiling")
	}
	// What a stall timed out is not the shard's: neither its metrics nor
	// its health row hear of it.
	skipped := errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) || errors.Is(err, ErrStalled)
	if s.obs != nil && count > 0 && !skipped {
		s.obs.Reserved(s.ns.Name, m.sh.Index, count, lat, err)
	}
	if err != nil {
		if skipped {
			return b, err
		}
		if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) { // else the caller's, not the shard's
			m.failures.Add(1)
			if s.closed.Load() {
				return b, err // a late trial: the namespace's rows are gone
			}
			msg := err.Error()
			s.reg.Update(s.ns.Name, m.sh.Index, func(r *ShardStatus) {
				r.LastError, r.LastErrorAt, r.Healthy = msg, time.Now(), false
				s.fillNode(r, "") // the slot may have a new master already
			})
			m.shownHealthy.Store(false)
		}
		return b, err
	}
	if count > 0 {
		m.reservations.Add(1)
		m.blockSize.Store(count)
	}
	m.latencyNanos.Store(int64(lat))
	if s.closed.Load() {
		return b, nil // a late trial: the namespace's rows are gone
	}
	// The registry row changes only when something an operator sees changes
	// (node, health, a fence); the counters live in atomics and are merged in
	// by Status. A write per reservation would cost strict mode a third of
	// its CPU. A write at least once a second bounds how long a row can stay
	// wrong after two racing outcomes wrote it in the wrong order.
	healthy := m.cb.State() == gobreaker.StateClosed
	now := time.Now()
	if shown := m.shownNode.Load(); shown == nil || *shown != b.Node || b.Fence != shard.NotFenced || m.shownHealthy.Load() != healthy ||
		now.Sub(time.Unix(0, m.shownAt.Load())) > time.Second {
		m.shownAt.Store(now.UnixNano())
		m.downErr.Store(nil)
		s.reg.Update(s.ns.Name, m.sh.Index, func(r *ShardStatus) {
			if r.Node != "" && r.Node != b.Node {
				s.log.Info("shard moved", "namespace", s.ns.Name, "shard", m.sh.Index, "from", r.Node, "to", b.Node)
			}
			s.fillNode(r, b.Node)
			r.Healthy = healthy
			s.snapshot(m, r)
		})
		node := b.Node
		m.shownNode.Store(&node)
		m.shownHealthy.Store(healthy)
	}
	return b, nil
}

// onProbe follows a round of master probes: a shard on a master that stopped
// answering turns unhealthy at once, without caller traffic; one whose
// breaker is open gets a trial (a reservation of nothing) once its master
// answers again. Healthy idle shards cost nothing: their master's probe is
// their health.
func (s *Set) onProbe(cluster.ProbeRound) {
	if s.closed.Load() {
		return
	}
	for _, m := range s.members {
		_, why := s.master(m)
		switch {
		case why != "":
			if old := m.downErr.Load(); old == nil || *old != why {
				m.downErr.Store(&why)
				s.reg.Update(s.ns.Name, m.sh.Index, func(r *ShardStatus) {
					r.LastError, r.LastErrorAt, r.Healthy = why, time.Now(), false
					s.fillNode(r, "")
				})
				m.shownHealthy.Store(false)
			}
		case m.cb.State() != gobreaker.StateClosed || m.downErr.Load() != nil:
			s.trial(m, false)
		}
	}
}

// trial reserves nothing on m in the background, with the attempt's own
// deadline, one at a time per shard. After the master's probe recovered
// (cut false) it is the shard's way back: a success clears its down mark.
// For a caller whose deadline cut an attempt short (cut true, at most once
// per OpenFor per shard, so that callers timing out under overload do not
// add load) it finishes what that attempt could not: it reports the master
// as the attempt would have (ReportFault or ReportOK).
func (s *Set) trial(m *member, cut bool) {
	if cut {
		now, last := time.Now().UnixNano(), m.cutTrialAt.Load()
		if now-last < int64(s.cfg.OpenFor) || !m.cutTrialAt.CompareAndSwap(last, now) {
			return
		}
	}
	if s.closed.Load() || !m.trying.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer m.trying.Store(false)
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.AttemptTimeout+time.Second) // the attempt's own deadline governs
		defer cancel()
		b, err := s.reserveOn(ctx, time.Time{}, m, 0, func() int64 { return 0 })
		switch {
		case s.closed.Load():
		case cut:
			s.report(b, err)
		case !cut && err == nil:
			m.downErr.Store(nil)
			s.reg.Update(s.ns.Name, m.sh.Index, func(r *ShardStatus) {
				r.Healthy = m.cb.State() == gobreaker.StateClosed
			})
		}
	}()
}

// Issued records n IDs of shard i handed to callers.
func (s *Set) Issued(i int, n uint64) { s.members[i].issued.Add(n) }

func (s *Set) snapshot(m *member, r *ShardStatus) {
	r.Reservations = m.reservations.Load()
	r.Failures = m.failures.Load()
	r.IDsIssued = m.issued.Load()
	r.BlockSize = m.blockSize.Load()
	r.LatencyMs = float64(m.latencyNanos.Load()) / 1e6
	r.FenceEvents = uint64(m.sh.FenceCount.Load())
}

// Status returns the registry rows of this namespace with live counters.
func (s *Set) Status() []ShardStatus {
	rows, _ := s.reg.List(s.ns.Name)
	for k := range rows {
		if i := rows[k].Index; i < len(s.members) {
			s.snapshot(s.members[i], &rows[k])
		}
	}
	return rows
}

// Healthy is the number of shards that can serve now (see health).
func (s *Set) Healthy() int {
	n := 0
	for _, m := range s.members {
		if _, why := s.health(m); why == "" && m.cb.State() == gobreaker.StateClosed {
			n++
		}
	}
	return n
}

// Close stops following the master probes. It is idempotent.
func (s *Set) Close() {
	if s.closed.CompareAndSwap(false, true) {
		s.unsub()
	}
}
