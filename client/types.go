package client

import (
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

// ShardStatus is the health of one shard, as Client.Shards, the server's
// GET /v1/shards and its health page report it: the node serving it, the
// breaker's State ("closed", "half-open" or "open"), whether it is Healthy,
// counters of reservations, failures, IDs issued and fences (history
// changes survived), the current block size, the latency of the last
// reservation and the last error with its time.
type ShardStatus = failover.ShardStatus

// BreakerConfig tunes the per-shard circuit breakers (Config.Breaker):
// Failures in a row that open a breaker (default 2), OpenFor (default 1s),
// AttemptTimeout of one reservation on one shard (default 750ms) and
// ReserveTimeout over every shard one call tries (default 1s).
type BreakerConfig = failover.BreakerConfig

// Observer learns the outcome and latency of every reservation
// (Config.Observer), for metrics: its Reserved(namespace, shard, ids, took,
// err) is called on the reserving goroutine, so keep it cheap.
type Observer = failover.Observer

// Registry holds the health of every shard of the clients that share it
// (Config.Registry), for a status page: List(namespace) returns the rows
// and a channel closed at the next change, ByState(state) the shards in a
// breaker state, WaitChange waits for one.
type Registry = failover.Registry

// NewRegistry returns an empty shard registry to share between clients.
func NewRegistry() *Registry { return failover.NewRegistry() }

// The namespace rule: NamespacePattern is the regular expression a
// namespace matches, NamespaceRule says it in words. A name has no braces or
// colons, so it cannot break the hash tag or another namespace's keys.
const (
	NamespacePattern = namespace.NamespacePattern
	NamespaceRule    = namespace.NamespaceRule
)

// ValidNamespace reports whether name may name a namespace (NamespaceRule).
func ValidNamespace(name string) bool { return namespace.ValidNamespace(name) }

// ValidateNamespace returns nil when name may name a namespace, else an
// error wrapping ErrInvalidNamespace that quotes the name and the rule.
func ValidateNamespace(name string) error { return namespace.ValidateNamespace(name) }

// MaxShards is the largest shard count N of a namespace.
const MaxShards = shard.MaxShards

// ValidShards reports whether n may be the shard count N of a namespace: 1
// to MaxShards. It is the one statement of that rule.
func ValidShards(n int) bool { return shard.ValidShards(n) }

// Decode returns the shard that issued id and its sequence number in that
// shard, for a namespace of shards shards: id = seq*shards + shard.
func Decode(id int64, shards int) (shardIndex int, seq int64) { return shard.Decode(id, shards) }
