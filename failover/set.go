package failover

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/shard"
)

// ErrNoHealthyShard means every shard of the namespace failed or has its
// breaker open: nothing can be handed out until one recovers.
var ErrNoHealthyShard = errors.New("failover: no healthy shard")

// BreakerConfig tunes the per-shard circuit breakers. Zero values are the
// defaults.
type BreakerConfig struct {
	// Failures in a row that open a breaker. Default 2: a dead master costs
	// two timeouts before callers stop trying it.
	Failures uint32
	// OpenFor is how long a breaker stays open before one trial. Default 1s.
	OpenFor time.Duration
	// ProbeEvery is how often shards whose breaker is not closed are probed
	// with a reservation of zero IDs, so they recover without caller traffic.
	// Default 500ms; -1 disables.
	ProbeEvery time.Duration
	// AttemptTimeout bounds one reservation on one shard (script, WAIT and
	// mirror raise); past it the shard counts a failure and the next shard
	// is tried in the same call. It must exceed the acknowledgement timeout.
	// Default 750ms.
	AttemptTimeout time.Duration
}

// Observer learns the outcome of every reservation (not of probes), for
// metrics. It is called on the reserving goroutine: keep it cheap.
type Observer interface {
	Reserved(namespace string, shard int, ids int64, took time.Duration, err error)
}

// ErrShardTimeout: a shard did not answer within AttemptTimeout (a frozen
// master, or packets to a vanished host going nowhere).
var ErrShardTimeout = errors.New("failover: shard did not answer in time")

func (c BreakerConfig) withDefaults() BreakerConfig {
	if c.Failures == 0 {
		c.Failures = 2
	}
	if c.OpenFor == 0 {
		c.OpenFor = time.Second
	}
	if c.ProbeEvery == 0 {
		c.ProbeEvery = 500 * time.Millisecond
	}
	if c.AttemptTimeout == 0 {
		c.AttemptTimeout = 750 * time.Millisecond
	}
	return c
}

// Retryable decides, for the whole project, whether a failed reservation may
// be tried again on another shard. Cancellation by the caller and
// configuration errors are final; everything else (a dead or frozen master,
// missing acknowledgement, CLUSTERDOWN, a regressed counter) is a fault of
// that shard alone.
func Retryable(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, cluster.ErrClosed):
		return false
	case errors.Is(err, shard.ErrShardCountMismatch), errors.Is(err, shard.ErrBadRecord) && !errors.Is(err, shard.ErrCounterRegressed):
		return false
	}
	return true
}

// excluded says whether err must not count against a shard's breaker: the
// caller gave up, the shard count was refused, or the half-open breaker is
// already probing.
func excluded(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, shard.ErrShardCountMismatch) || errors.Is(err, gobreaker.ErrTooManyRequests)
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
	lastOK       atomic.Int64 // unix nanos of the last successful reservation or probe
	shownNode    atomic.Pointer[string]
	shownHealthy atomic.Bool  // what the registry row says, to skip writes that change nothing
	shownAt      atomic.Int64 // unix nanos of the last row write on success
	fencesLogged atomic.Int64
}

// Set is the shards of one namespace behind their breakers.
type Set struct {
	ns      *shard.Namespace
	reg     *Registry
	top     func() *cluster.Topology
	log     *slog.Logger
	members []*member
	attempt time.Duration
	obs     Observer
	next    atomic.Uint64
	stop    chan struct{}
	done    chan struct{}
}

// NewSet puts every shard of ns behind a breaker named "shard-<ns>-<i>" and
// registers it in reg. top gives the current topology, for the node columns.
// Close stops its prober.
func NewSet(ns *shard.Namespace, reg *Registry, top func() *cluster.Topology, cfg BreakerConfig, log *slog.Logger, obs Observer) *Set {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	s := &Set{ns: ns, reg: reg, top: top, log: log, attempt: cfg.AttemptTimeout, obs: obs, stop: make(chan struct{}), done: make(chan struct{})}
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
					r.Healthy = to == gobreaker.StateClosed
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
	if cfg.ProbeEvery > 0 {
		go s.probe(cfg.ProbeEvery)
	} else {
		close(s.done)
	}
	return s
}

func (s *Set) fillNode(r *ShardStatus, addr string) {
	top := s.top()
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
func (s *Set) Namespace() *shard.Namespace { return s.ns }

// Reserve reserves count IDs from one shard. It starts at shard prefer (or
// round robin when prefer < 0) and moves on to the next shard whose breaker
// lets it through whenever a shard fails with a retryable error, so the
// caller sees an error only when no shard can serve.
func (s *Set) Reserve(ctx context.Context, count int64, prefer int) (shard.Block, error) {
	n := len(s.members)
	start := prefer
	if start < 0 || start >= n {
		start = int(s.next.Add(1) % uint64(n))
	}
	var errs []error
	for k := 0; k < n; k++ {
		m := s.members[(start+k)%n]
		if m.cb.State() == gobreaker.StateOpen {
			continue
		}
		b, err := s.reserveOn(ctx, m, count)
		if err == nil {
			return b, nil
		}
		if !Retryable(err) {
			return shard.Block{}, err
		}
		errs = append(errs, fmt.Errorf("shard %d: %w", m.sh.Index, err))
	}
	if len(errs) == 0 {
		errs = append(errs, errors.New("every breaker is open"))
	}
	return shard.Block{}, fmt.Errorf("%w in namespace %q: %w", ErrNoHealthyShard, s.ns.Name, errors.Join(errs...))
}

func (s *Set) reserveOn(ctx context.Context, m *member, count int64) (shard.Block, error) {
	t0 := time.Now()
	b, err := m.cb.Execute(func() (shard.Block, error) {
		actx, cancel := context.WithTimeout(ctx, s.attempt)
		defer cancel()
		b, err := m.sh.Reserve(actx, count)
		if err != nil && actx.Err() != nil && ctx.Err() == nil {
			// The attempt's deadline, not the caller's: a fault of this shard.
			err = fmt.Errorf("%w (%v): %v", ErrShardTimeout, s.attempt, err)
		}
		return b, err
	})
	lat := time.Since(t0)
	if f := m.sh.FenceCount.Load(); f != m.fencesLogged.Load() {
		m.fencesLogged.Store(f)
		s.log.Warn("shard fenced", "namespace", s.ns.Name, "shard", m.sh.Index, "fence_events", f,
			"node", b.Node, "detail", "the counter jumped by the fence gap: its node's replication history changed, or it was restored from its mirror")
	}
	if s.obs != nil && count > 0 && !errors.Is(err, gobreaker.ErrOpenState) && !errors.Is(err, gobreaker.ErrTooManyRequests) {
		s.obs.Reserved(s.ns.Name, m.sh.Index, count, lat, err)
	}
	if err != nil {
		if errors.Is(err, gobreaker.ErrTooManyRequests) || errors.Is(err, gobreaker.ErrOpenState) {
			return b, err
		}
		m.failures.Add(1)
		if !errors.Is(err, context.Canceled) {
			msg := err.Error()
			s.reg.Update(s.ns.Name, m.sh.Index, func(r *ShardStatus) {
				r.LastError, r.LastErrorAt, r.Healthy = msg, time.Now(), false
				s.fillNode(r, "") // the slot may have a new master already
			})
			m.shownHealthy.Store(false)
		}
		return b, err
	}
	m.lastOK.Store(time.Now().UnixNano())
	if count > 0 {
		m.reservations.Add(1)
		m.blockSize.Store(count)
	}
	m.latencyNanos.Store(int64(lat))
	// The registry row changes only when something an operator sees changes
	// (node, health, a fence); the counters live in atomics and are merged in
	// by Status. A write per reservation would cost strict mode a third of
	// its CPU. A write at least once a second bounds how long a row can stay
	// wrong after two racing outcomes wrote it in the wrong order.
	healthy := m.cb.State() == gobreaker.StateClosed
	now := time.Now()
	if shown := m.shownNode.Load(); shown == nil || *shown != b.Node || b.Fenced != 0 || m.shownHealthy.Load() != healthy ||
		now.Sub(time.Unix(0, m.shownAt.Load())) > time.Second {
		m.shownAt.Store(now.UnixNano())
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

// Healthy is the number of shards whose breaker is closed.
func (s *Set) Healthy() int {
	n := 0
	for _, m := range s.members {
		if m.cb.State() == gobreaker.StateClosed {
			n++
		}
	}
	return n
}

// probe gives shards whose breaker is not closed a trial with a reservation
// of zero IDs, so that a recovered shard is seen without caller traffic; and
// probes idle shards every idleProbes ticks, so that a master that died while
// nobody asked for IDs shows as unhealthy before the next caller finds out.
func (s *Set) probe(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		for _, m := range s.members {
			idle := time.Since(time.Unix(0, m.lastOK.Load())) > idleProbes*every
			if m.cb.State() == gobreaker.StateClosed && !idle {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			_, _ = s.reserveOn(ctx, m, 0)
			cancel()
		}
	}
}

// idleProbes is how many probe periods a shard may go without a successful
// reservation before it is probed anyway.
const idleProbes = 10

// Close stops the prober. It is idempotent.
func (s *Set) Close() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
}
