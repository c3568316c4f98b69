package shard

// MaxShards bounds N. More shards than masters buys nothing, and the placement
// search and the namespace record grow with N.
const MaxShards = 1024

// ValidShards reports whether n may be the shard count N of a namespace: 1 to
// MaxShards. It is the one statement of that rule; settings where 0 means "a
// default" check n != 0 && !ValidShards(n).
func ValidShards(n int) bool { return n >= 1 && n <= MaxShards }

// DefaultMaxID keeps every ID exactly representable as a float64, so that
// JavaScript and JSON decoders that use doubles read IDs unchanged.
const DefaultMaxID int64 = 1<<53 - 1

// ID returns the ID of sequence number seq of shard i of n.
func ID(seq int64, i, n int) int64 { return seq*int64(n) + int64(i) }

// Decode returns the shard and sequence number that issued id in a namespace
// of n shards.
func Decode(id int64, n int) (i int, seq int64) {
	return int(id % int64(n)), id / int64(n)
}

// MaxSeq is the largest sequence number shard i of n may hand out without an
// ID above maxID.
func MaxSeq(i, n int, maxID int64) int64 { return (maxID - int64(i)) / int64(n) }

// firstSeq is the first sequence number of shard i of n whose ID is at
// least start (and at least 1).
func firstSeq(start int64, i, n int) int64 {
	s := (start - int64(i) + int64(n) - 1) / int64(n)
	return max(s, 1)
}
