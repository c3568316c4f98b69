// Package client is the shardseq library: it hands out positive int64 IDs
// that are never the same twice, also across Redis failovers, reserved in
// acknowledged blocks from the shards of a namespace on a Redis Cluster.
// It is the whole API a program needs: the other packages of the module
// are its parts, and everything of theirs a caller meets (errors, status
// types, the namespace rule) is re-exported here.
//
// # Quick start
//
//	c, err := client.New(ctx, client.Config{
//		URL:       "redis://127.0.0.1:7000", // any node of the cluster
//		Namespace: "orders",
//	})
//	if err != nil {
//		return err // e.g. client.ErrUnreachable, client.ErrShardCountMismatch
//	}
//	defer c.Close()
//	id, err := c.Next(ctx)        // one ID
//	ids, err := c.NextN(ctx, 100) // a batch
//
// A Client is safe for concurrent use; open one per namespace and process
// and share it.
//
// # Connecting
//
// Config.URL takes what go-redis users pass around:
// redis://user:password@host:port, rediss://... for TLS (certificates always
// verified), more seeds as addr=host:port parameters, or a plain
// host:port[,host:port...] list (cluster.ParseURL has every rule). Or give the
// seeds in Addrs. Username, Password and TLS may come from elsewhere (a
// secret file, a private CA) and combine with the URL, each setting in one
// place. Config.NewRedisClient makes every go-redis client of the
// connection, for a custom dialer or tracing hooks. The Client owns the
// connection it opens and closes it in Close. To share one connection
// between the clients of several namespaces, open it with cluster.Dial and
// pass it as Config.Cluster: it is then the caller's to close, after them.
//
// The cluster must run with cluster-enabled yes, at least one replica per
// master (a write no replica acknowledges is not relied on, so a master
// without one hands out nothing by default), and a maxmemory-policy that
// never evicts shardseq's keys (noeviction or volatile-*; allkeys-* is
// refused with ErrUnsafeRedis). Every key starts with "shardseq:"; the
// minimal ACL is in the README (Security).
//
// # Namespaces and shards
//
// A namespace is an independent ID space ("orders", "users"), created on
// first use unless Config.NoCreate is set; NamespaceRule says what its name
// may be and ValidateNamespace checks one. It has N shards (Config.Shards,
// DefaultShards for a new one) spread over the masters, stored with it:
// shard i hands out only IDs congruent to i mod N (Decode tells shard and
// sequence of an ID), and opening it with another N fails with
// ErrShardCountMismatch, since two values of N would repeat IDs.
// Config.Start is the smallest ID of a new namespace, to continue above an
// older generator.
//
// # Blocks, gaps and strict mode
//
// By default (segment mode) the client reserves blocks of IDs, one Lua
// script and a WAIT for every replica that could be promoted, and hands
// them out from memory: Next costs no I/O, and the next block is reserved in
// the background before the current one runs out. Block sizes adapt to the
// rate (BlockSize, MinBlockSize, MaxBlockSize, BlockTarget). IDs still held
// when a process stops are never handed out by anyone: they are gaps, not
// duplicates (Discarded counts them). Config.Strict reserves every ID, or
// every NextN batch, with its own acknowledged round trip instead: no ID is
// ever held in memory.
//
// # Order
//
// Within Config.OrderWindow (DefaultOrderWindow, 1s) IDs follow creation
// order: an ID requested more than the window after another one was handed
// out is larger than it. IDs handed out less than the window apart may be in
// any order. OrderWindow -1 gives up ordering for the fewest reservations.
//
// # Failures
//
// Each shard has a circuit breaker (Config.Breaker). A call whose shard
// fails moves on to the next shard in the same call, so Next and NextN fail
// only when no shard can serve (ErrNoHealthyShard, which wraps every
// shard's error: errors.Is finds ErrCeilingLost, ErrFenced,
// ErrNotReplicated, ErrShardTimeout, ... in it), when the context ends, or
// after Close (ErrClosed). New fails with a *ConfigError (ErrInvalidConfig)
// before any I/O, or with ErrUnreachable, ErrNotCluster, ErrShardCountMismatch,
// ErrSettingsMismatch, ErrNamespaceNotFound, ErrNamespaceLost or
// ErrUnsafeRedis. A shard whose counter lost its history continues above a
// ceiling kept on two other masters, or refuses (ErrCeilingLost) when no
// trusted copy is left: never from a rewound value.
//
// # Health
//
// Shards and Healthy report each shard's state (ShardStatus); clients that
// share a Registry (NewRegistry) report to one table, which the server's
// health page reads. An Observer learns the outcome and latency of every
// reservation, for metrics.
//
// The README and docs/CORRECTNESS.md explain how IDs stay unique through
// failovers, restarts and partitions, and what that assumes.
package client
