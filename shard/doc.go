// Package shard is one shard of a namespace: the step-offset arithmetic of its
// IDs, and the reservation protocol that hands out blocks of them with
// replication acknowledgement and failover fencing (reserve, claim, raise,
// repair), over the Redis scripts in lua/ (reserve.lua, ceiling.lua, and
// prelude.lua, which every script of shardseq starts with).
//
// Shard i of a namespace with N shards hands out only IDs congruent to i mod N:
// ID = seq*N + i for seq = 1, 2, 3... Two shards can never produce the same ID,
// so shards need no coordination with each other. A Shard knows its keys, its
// index and N, given to New; the namespace that holds the record of those lives
// in package namespace, above this one.
package shard
