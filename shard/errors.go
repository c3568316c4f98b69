package shard

import "errors"

// Errors of this package. Match them with errors.Is. The errors of a
// namespace as a whole (not found, deleted, lost, its settings) are in
// package namespace.
var (
	// ErrShardCountMismatch: the namespace exists in Redis with another N.
	// Two values of N would overlap residue classes and repeat IDs.
	ErrShardCountMismatch = errors.New("shard: shard count mismatch")
	// ErrNotReplicated: the write did not reach the replicas in time, so it
	// was not relied on (a block discarded).
	ErrNotReplicated = errors.New("shard: not replicated")
	// ErrCounterMissing: a counter and every copy of its ceiling are gone
	// (LegacyDefences only; see ErrCeilingLost).
	ErrCounterMissing = errors.New("shard: counter lost")
	// ErrCeilingLost: a counter's history changed and no copy of its
	// ceiling is both reachable and trusted, so there is no floor it could
	// safely continue above. The shard refuses; the others serve.
	ErrCeilingLost = errors.New("shard: no trusted ceiling")
	// ErrFenced: another node's history owns the shard now (its ceiling
	// copies were claimed with a newer epoch); the write was not relied on.
	ErrFenced = errors.New("shard: fenced by a newer history")
	// ErrCounterRegressed: a counter returned a value at or below one it
	// returned before; the block is refused.
	ErrCounterRegressed = errors.New("shard: counter moved backwards")
	// ErrExhausted: the shard reached the largest ID it may hand out.
	ErrExhausted = errors.New("shard: ID space exhausted")
	// ErrUnsafeRedis: a master is configured so that IDs could repeat (an
	// eviction policy that deletes keys without a trace, CLUSTER REPLICAS
	// refused); the error says what to change.
	ErrUnsafeRedis = errors.New("shard: unsafe Redis configuration")
	// ErrBadRecord: a value stored in Redis is not what shardseq writes.
	ErrBadRecord = errors.New("shard: unexpected data in Redis")
	// ErrCreationLate: a creation's write reached its master after the
	// creation's deadline (the creator stalled); nothing was written. Other
	// processes may have finished the creation and used the namespace
	// since, so a key found absent then may have been lost, not never
	// written: writing it at its first value could repeat IDs.
	ErrCreationLate = errors.New("shard: creation past its deadline")
	// ErrRedirect: the key moved; the caller should reload the topology.
	ErrRedirect = errors.New("shard: key moved")
)

// NodeError is a failure on one master: the counter's, or a ceiling copy's.
// Addr lets the failover layer charge what concerns the whole master (a
// timeout, a write its replicas did not confirm, CLUSTERDOWN) to that master,
// so every shard on it steps aside, whichever shard's call found it.
type NodeError struct {
	Addr string
	Err  error
}

func (e *NodeError) Error() string { return e.Err.Error() }
func (e *NodeError) Unwrap() error { return e.Err }

// onNode wraps err as a NodeError of addr (nil stays nil).
func onNode(addr string, err error) error {
	if err == nil || addr == "" {
		return err
	}
	return &NodeError{Addr: addr, Err: err}
}
