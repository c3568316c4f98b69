package shard

import (
	"fmt"
	"time"
)

// Defences selects how much of the protection against repeated IDs is on.
// Anything but AllDefences is unsafe and exists for negative controls: tests
// that must find duplicates, or they prove nothing.
type Defences int

const (
	// AllDefences is the default and the only safe choice.
	AllDefences Defences = iota
	// LegacyDefences is the behaviour before ceilings had identities: a
	// counter whose history changed jumps by LegacyFenceGap from its own
	// (possibly rewound) value, a missing counter restarts from any ceiling
	// copy plus the gap, replicas are counted by connected_slaves only, and
	// namespace records are repaired only when a client opens them.
	LegacyDefences
	// NoDefences is a naive INCR generator: no acknowledgement, no fence,
	// no ceiling, no regression check.
	NoDefences
)

func (d Defences) String() string {
	switch d {
	case AllDefences:
		return "all"
	case LegacyDefences:
		return "legacy"
	case NoDefences:
		return "none"
	}
	return fmt.Sprintf("Defences(%d)", int(d))
}

// Bounds and defaults of Options.
const (
	// DefaultAckTimeout bounds the WAIT for replicas.
	DefaultAckTimeout = 250 * time.Millisecond
	// MaxFenceGap bounds FenceGap (and keeps the script's doubles exact).
	MaxFenceGap int64 = 1 << 40
	// MinLease and MaxLease bound how far ahead of a block its ceiling is
	// raised. Every client's lease is at most MaxLease, which is what lets a
	// copy be repaired from its counter alone (see Shard.repairCeilings).
	// MinLease keeps a quiet shard from raising its ceiling on every
	// request (at one request a second it lasts over an hour); a failover
	// skips at most about two leases per shard, so it also bounds what a
	// failover costs a quiet namespace (N x 2 x 4096: under 100,000 IDs
	// for 12 shards). A busy shard's lease follows its rate.
	MinLease int64 = 1 << 12
	MaxLease int64 = 1 << 30
	// FirstLease is how far ahead of a new namespace's counters their
	// ceilings start, before any rate is known: MinLease. A namespace that
	// is busy at once raises its ceilings within its first blocks (64
	// blocks ahead, then its rate's CeilingLease).
	FirstLease = MinLease
	// LegacyFenceGap is the jump of LegacyDefences.
	LegacyFenceGap int64 = 1 << 32
	// DefaultCeilingLease is how long a shard can serve without raising
	// its ceiling: while a ceiling copy's master fails over and its
	// replacement has no replica to confirm a raise yet. With Redis's
	// default cluster-node-timeout of 15 s such a master is out for about
	// 17 s (detection, election, the old master's resync as a replica), so
	// a minute is margin of more than three times; a failover of the
	// counter's own master skips up to a lease of this shard's traffic.
	DefaultCeilingLease = time.Minute
)

// Options are the defences of a namespace. The zero value is the safe default.
type Options struct {
	// AckReplicas is how many replicas must confirm a write before it is
	// relied on. 0 (default): every replica that could be promoted (the
	// connected ones and those the cluster lists as not failed), and at
	// least one; k > 0: at least k. -1 skips the acknowledgement (unsafe).
	AckReplicas int
	// AckTimeout bounds the WAIT for replicas. Default DefaultAckTimeout,
	// at most 10s.
	AckTimeout time.Duration
	// FenceGap is how far above its floor a counter whose history changed
	// restarts. The floor is a ceiling confirmed before any ID below it was
	// handed out, so nothing more is needed: default 0, at most MaxFenceGap.
	FenceGap int64
	// CeilingLease is how long a raise of a shard's ceiling should last at
	// the rate its counter grows: it is raised that far ahead of a block's
	// end, so ceilings are written rarely and a shard keeps serving while a
	// ceiling copy's master fails over (detection, promotion and the resync
	// of a replica, which WAIT needs). A restored counter skips up to a
	// lease. Default DefaultCeilingLease; the lease is at least MinLease
	// (and 64 blocks) and at most MaxLease sequence numbers.
	CeilingLease time.Duration
	// MaxID is the largest ID handed out. Default and upper bound
	// DefaultMaxID (2^53-1): IDs stay exact in JavaScript, and so does the
	// arithmetic of the reservation script (Lua numbers are doubles).
	MaxID int64
	// UnsafeDefences weakens the protection against repeated IDs:
	// AllDefences (the zero value) unless a negative control says otherwise.
	// It is client.Config.UnsafeDefences, under the same name.
	UnsafeDefences Defences
	// Deprecated: use UnsafeDefences (the same setting, named as in
	// client.Config); read only when UnsafeDefences is AllDefences. It goes
	// in the next release.
	Defences Defences
}

// WithDefaults returns o with its zero values replaced by the defaults.
func (o Options) WithDefaults() Options {
	if o.AckTimeout == 0 {
		o.AckTimeout = DefaultAckTimeout
	}
	if o.MaxID == 0 {
		o.MaxID = DefaultMaxID
	}
	if o.CeilingLease == 0 {
		o.CeilingLease = DefaultCeilingLease
	}
	if o.UnsafeDefences == AllDefences {
		o.UnsafeDefences = o.Defences
	}
	o.Defences = o.UnsafeDefences
	if o.UnsafeDefences == NoDefences {
		o.AckReplicas = -1
	}
	return o
}

// Validate reports the first option out of its bounds.
func (o Options) Validate() error {
	switch {
	case o.AckReplicas < -1:
		return fmt.Errorf("AckReplicas %d: want -1, 0 or a replica count", o.AckReplicas)
	case o.AckTimeout < 0 || o.AckTimeout > 10*time.Second:
		return fmt.Errorf("AckTimeout %v: want 0 (default %v) up to 10s", o.AckTimeout, DefaultAckTimeout)
	case o.FenceGap < 0 || o.FenceGap > MaxFenceGap:
		return fmt.Errorf("FenceGap %d: want 0 (default) up to 2^40", o.FenceGap)
	case o.CeilingLease < 0 || o.CeilingLease > 24*time.Hour:
		return fmt.Errorf("CeilingLease %v: want 0 (default %v) up to 24h", o.CeilingLease, DefaultCeilingLease)
	case o.MaxID < 0 || o.MaxID > DefaultMaxID:
		return fmt.Errorf("MaxID %d: want 0 (default 2^53-1) or a positive value up to 2^53-1", o.MaxID)
	case o.UnsafeDefences < AllDefences || o.UnsafeDefences > NoDefences:
		return fmt.Errorf("UnsafeDefences %d: want AllDefences, LegacyDefences or NoDefences", o.UnsafeDefences)
	case o.Defences < AllDefences || o.Defences > NoDefences:
		return fmt.Errorf("Defences %d: want AllDefences, LegacyDefences or NoDefences", o.Defences)
	}
	return nil
}

// waitFor is the replica count sent with WAIT: 0 means every live replica
// of the topology, -1 none.
func (o Options) waitFor() int {
	if o.UnsafeDefences == NoDefences {
		return -1
	}
	return o.AckReplicas
}
