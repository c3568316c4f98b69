package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/internal/stall"
)

// unsafeDefences reads SHARDSEQ_UNSAFE_DEFENCES, a deliberately undocumented
// switch for the negative controls of the integration tests: "legacy" (the
// fence from the counter's own value, repairs only in Open) or "none" (a
// naive INCR generator). Either also turns time order off, since levelling
// the shards pulls a rewound counter up and would hide what the control
// must show. Both repeat IDs after some faults; serve logs an error at start
// while one is set.
func unsafeDefences(log *slog.Logger) (client.Config, error) {
	picker, err := unsafePicker(log)
	if err != nil {
		return client.Config{}, err
	}
	if err := unsafeStalls(log); err != nil {
		return client.Config{}, err
	}
	v := os.Getenv("SHARDSEQ_UNSAFE_DEFENCES")
	var d client.Defences
	switch v {
	case "":
		return client.Config{Breaker: client.BreakerConfig{Picker: picker}}, nil
	case "legacy":
		d = client.LegacyDefences
	case "none":
		d = client.NoDefences
	default:
		return client.Config{}, fmt.Errorf("SHARDSEQ_UNSAFE_DEFENCES=%q: want legacy or none, or unset it (it exists only for tests and repeats IDs)", v)
	}
	log.Error("SHARDSEQ_UNSAFE_DEFENCES is set: this server WILL hand out IDs twice after some faults; it exists only for negative-control tests", "defences", v)
	return client.Config{UnsafeDefences: d, OrderWindow: -1, Breaker: client.BreakerConfig{Picker: picker}}, nil
}

// unsafePicker reads SHARDSEQ_UNSAFE_PICKER, the negative control of the
// picker: "sequential" walks every shard in turn, each learning its master's
// fault again at the cost of an attempt (callers fail together while one
// master's replica lags).
func unsafePicker(log *slog.Logger) (failover.Picker, error) {
	switch v := os.Getenv("SHARDSEQ_UNSAFE_PICKER"); v {
	case "":
		return failover.PickPerMaster, nil
	case "sequential":
		log.Error("SHARDSEQ_UNSAFE_PICKER=sequential: every shard of a failing master costs callers an attempt; it exists only for negative-control tests")
		return failover.PickSequential, nil
	default:
		return 0, fmt.Errorf("SHARDSEQ_UNSAFE_PICKER=%q: want sequential, or unset it (it exists only for tests)", v)
	}
}

// unsafeStalls reads SHARDSEQ_UNSAFE_STALLS, the negative control of stall
// detection: "ignore" takes every timeout at face value, so a reservation or
// probe that timed out while the process was stopped counts against its
// master (and callers get spare IDs, out of order, after the stop).
func unsafeStalls(log *slog.Logger) error {
	switch v := os.Getenv("SHARDSEQ_UNSAFE_STALLS"); v {
	case "":
		return nil
	case "ignore":
		log.Error("SHARDSEQ_UNSAFE_STALLS=ignore: timeouts that passed while this process was stopped count against Redis; it exists only for negative-control tests")
		stall.Disable()
		return nil
	default:
		return fmt.Errorf("SHARDSEQ_UNSAFE_STALLS=%q: want ignore, or unset it (it exists only for tests)", v)
	}
}
