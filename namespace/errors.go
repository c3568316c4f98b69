package namespace

import (
	"errors"

	"github.com/shardseq/shardseq/shard"
)

// Errors of this package. Match them with errors.Is. Their messages keep the
// "shard:" prefix they had before this package was split from shard (issue
// 20 settles prefixes for all packages at once).
var (
	// ErrSettingsMismatch: the namespace exists with other settings (its
	// start, its strict mode) than the ones asked for.
	ErrSettingsMismatch = errors.New("shard: namespace settings mismatch")
	// ErrNamespaceLost: the namespace has no record left, but keys of it
	// (counters, ceilings, an index entry) exist: its record was lost with
	// its masters' data. It is never created anew, which could repeat IDs.
	ErrNamespaceLost = errors.New("shard: namespace record lost")
	// ErrNamespaceNotFound: the namespace does not exist and creating it was
	// not allowed.
	ErrNamespaceNotFound = errors.New("shard: namespace not found")
	// ErrNamespaceDeleted: the namespace was retired by Delete and was not
	// to be recreated (Settings.NoCreate). It wraps ErrNamespaceNotFound:
	// to a caller that may not create, a deleted namespace is one that does
	// not exist.
	ErrNamespaceDeleted error = &kindOf{"shard: namespace deleted", ErrNamespaceNotFound}
	// ErrCannotPlace: the keys of a new namespace could not be placed on
	// the masters serving slots (none serves any, or a search for a hash
	// tag gave up). Nothing is written.
	ErrCannotPlace = errors.New("shard: cannot place the namespace's keys")
	// ErrCreating: another process's creation of the namespace is
	// unfinished and may still write keys (it stalled or crashed within its
	// deadline, seconds): the namespace is not used until that deadline has
	// passed. Try again.
	ErrCreating = errors.New("shard: namespace being created by another process")
)

// Errors of package shard that this package returns about a namespace as a
// whole, here too so that callers of this package need not import shard.
var (
	// ErrShardCountMismatch: the namespace exists in Redis with another N.
	ErrShardCountMismatch = shard.ErrShardCountMismatch
	// ErrBadRecord: a value stored in Redis is not what shardseq writes.
	ErrBadRecord = shard.ErrBadRecord
)

// kindOf is a sentinel that is also a kind of another one (errors.Is matches
// both), with a message of its own.
type kindOf struct {
	msg    string
	parent error
}

func (e *kindOf) Error() string { return e.msg }
func (e *kindOf) Unwrap() error { return e.parent }
