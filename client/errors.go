package client

import (
	"errors"
	"fmt"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// Errors of New, Next and NextN. Match them with errors.Is: they are the
// lower packages' sentinels under new names, so this package is the only
// one to import. Next and NextN fail only with ErrNoHealthyShard (wrapping
// every shard's own error, so errors.Is finds ErrCeilingLost, ErrFenced, ...
// in it too), ErrClosed or the context's error; New fails with the others.
var (
	// ErrInvalidConfig is wrapped by every *ConfigError.
	ErrInvalidConfig = errors.New("client: invalid config")
	// ErrClosed: the client was closed.
	ErrClosed = errors.New("client: closed")

	// ErrUnreachable: no seed or known node of the cluster answered.
	ErrUnreachable = cluster.ErrUnreachable
	// ErrNotCluster: a seed answered but is a standalone Redis (shardseq
	// needs cluster-enabled yes) or refuses the CLUSTER commands.
	ErrNotCluster = cluster.ErrNotCluster

	// ErrInvalidNamespace: the name breaks the namespace rule
	// (NamespaceRule); its text states the rule.
	ErrInvalidNamespace = namespace.ErrInvalidNamespace
	// ErrShardCountMismatch: the namespace exists with another shard count.
	ErrShardCountMismatch = shard.ErrShardCountMismatch
	// ErrSettingsMismatch: the namespace exists with another Start (or, for
	// PutNamespace, another strict mode).
	ErrSettingsMismatch = namespace.ErrSettingsMismatch
	// ErrNamespaceNotFound: NoCreate is set and the namespace does not exist.
	ErrNamespaceNotFound = namespace.ErrNamespaceNotFound
	// ErrNamespaceDeleted: NoCreate is set and the namespace was deleted
	// (DeleteNamespace); it matches ErrNamespaceNotFound too.
	ErrNamespaceDeleted = namespace.ErrNamespaceDeleted
	// ErrNamespaceLost: the namespace's record is gone but traces of it are
	// left; it is not created anew, which could repeat IDs.
	ErrNamespaceLost = namespace.ErrNamespaceLost
	// ErrCreating: another process's creation of the namespace is
	// unfinished and may still write keys for a few seconds (it stalled or
	// crashed); the namespace is used only after that. Try again.
	ErrCreating = namespace.ErrCreating
	// ErrCreationLate: this process stalled past its creation's deadline;
	// the write was refused. Open the namespace again.
	ErrCreationLate = shard.ErrCreationLate
	// ErrUnsafeRedis: a master is configured so that IDs could repeat (an
	// eviction policy that deletes keys, CLUSTER REPLICAS refused); the
	// error says what to change.
	ErrUnsafeRedis = shard.ErrUnsafeRedis
	// ErrBadRecord: a value stored under shardseq's keys is not what
	// shardseq writes.
	ErrBadRecord = shard.ErrBadRecord

	// ErrNoHealthyShard: every shard failed; nothing was handed out.
	ErrNoHealthyShard = failover.ErrNoHealthyShard
	// ErrStalled: this process was stopped (SIGSTOP, a paused VM, a starved
	// CPU) past the call's deadline; nothing was handed out, and no master
	// is held at fault. It comes with context.DeadlineExceeded (the
	// caller's deadline passed during the stop) or with ErrNoHealthyShard
	// (reservations were stopped again and again). Try again.
	ErrStalled = failover.ErrStalled
	// ErrShardTimeout: a shard did not answer within
	// Breaker.AttemptTimeout (a frozen master, a vanished host).
	ErrShardTimeout = failover.ErrShardTimeout
	// ErrNotReplicated: a reservation was not confirmed by the replicas in
	// AckTimeout; its IDs were not handed out.
	ErrNotReplicated = shard.ErrNotReplicated
	// ErrCeilingLost: a shard's counter lost its history and no trusted copy
	// of its ceiling is left; that shard refuses, the others serve.
	ErrCeilingLost = shard.ErrCeilingLost
	// ErrCounterMissing: a counter and every copy of its ceiling are gone
	// (LegacyDefences only; with AllDefences it is ErrCeilingLost).
	ErrCounterMissing = shard.ErrCounterMissing
	// ErrCounterRegressed: a counter returned a value at or below one it
	// returned before; the block was refused.
	ErrCounterRegressed = shard.ErrCounterRegressed
	// ErrFenced: another history of the shard's counter owns it now (a
	// promotion raced the reservation); the block was not relied on.
	ErrFenced = shard.ErrFenced
	// ErrExhausted: the shard reached MaxID.
	ErrExhausted = shard.ErrExhausted
	// ErrRedirect: a key was still redirected (MOVED, ASK) after several
	// tries, during a slot migration.
	ErrRedirect = shard.ErrRedirect
)

// ConfigError names the field of a Config that is out of bounds, or that
// is given twice (URL and Addrs, Username, Password or TLS).
type ConfigError struct {
	Field string
	Value any
	Err   error
}

func (e *ConfigError) Error() string {
	return fmt.Sprintf("client: config %s=%v: %v", e.Field, e.Value, e.Err)
}

// Unwrap lets errors.Is match both ErrInvalidConfig and the cause.
func (e *ConfigError) Unwrap() []error { return []error{ErrInvalidConfig, e.Err} }

// NodeError is a failure on one Redis master; Addr is that master's address.
// errors.As finds it in the errors of this package, for instance around
// ErrNotReplicated when a master has no replica confirming its writes.
type NodeError = shard.NodeError
