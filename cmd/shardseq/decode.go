package main

import (
	"context"
	"fmt"
	"strconv"

	"github.com/shardseq/shardseq/client"
)

// DecodeCommand prints which shard issued an ID and its sequence number.
type DecodeCommand struct {
	Main *Main
}

// Run decodes the ID given as the only argument.
func (c *DecodeCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("decode")
	shards := fs.Int("shards", client.DefaultShards, "shards of the namespace that issued the ID (env SHARDSEQ_SHARDS)")
	pos, err := parseFlags(fs, args, c.Usage)
	if err != nil {
		return err
	}
	fromEnv, err := applyEnv(fs, c.Main.Getenv, map[string]string{"shards": "SHARDSEQ_SHARDS"})
	if err != nil {
		return err
	}
	if err := checkShards(fromEnv, *shards); err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageErrorf("want exactly one ID, got %d arguments", len(pos))
	}
	id, err := strconv.ParseInt(pos[0], 10, 64)
	if err != nil || id <= 0 {
		return usageErrorf("%q is not an ID (a positive 64-bit integer)", pos[0])
	}
	i, seq := client.Decode(id, *shards)
	fmt.Fprintf(c.Main.Stdout, "id %d: shard %d of %d, sequence %d\n", id, i, *shards, seq)
	return nil
}

// Usage prints the help of decode.
func (c *DecodeCommand) Usage() {
	fmt.Fprintf(c.Main.Stdout, `Usage: shardseq decode ID [--shards N]

Prints the shard that issued ID and its sequence number: ID = sequence*N + shard.

Flags:
  --shards N   shards of the namespace that issued the ID (env SHARDSEQ_SHARDS; default %d)
`, client.DefaultShards)
}
