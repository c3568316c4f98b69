package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/shardseq/shardseq/client"
)

// unsafeDefences reads SHARDSEQ_UNSAFE_DEFENCES, a deliberately undocumented
// switch for the negative controls of the integration tests: "legacy" (the
// fence from the counter's own value, repairs only in Open) or "none" (a
// naive INCR generator). Either also turns time order off, since levelling
// the shards pulls a rewound counter up and would hide what the control
// must show. Both repeat IDs after some faults; serve logs an error at start
// while one is set.
func unsafeDefences(log *slog.Logger) (client.Config, error) {
	v := os.Getenv("SHARDSEQ_UNSAFE_DEFENCES")
	var d client.Defences
	switch v {
	case "":
		return client.Config{}, nil
	case "legacy":
		d = client.LegacyDefences
	case "none":
		d = client.NoDefences
	default:
		return client.Config{}, fmt.Errorf("SHARDSEQ_UNSAFE_DEFENCES=%q: want legacy or none, or unset it (it exists only for tests and repeats IDs)", v)
	}
	log.Error("SHARDSEQ_UNSAFE_DEFENCES is set: this server WILL hand out IDs twice after some faults; it exists only for negative-control tests", "defences", v)
	return client.Config{UnsafeDefences: d, OrderWindow: -1}, nil
}
