package localcluster

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
)

// Persistence is what a node writes to disk and loads when it starts.
type Persistence string

// The persistence modes users run.
const (
	// PersistNone: save "" and appendonly no. A replica still writes the
	// dump.rdb of every full sync (repl-diskless-load stays "disabled", the
	// default), and a restart loads it: a node "without persistence" that
	// restarts can come back with minutes-old data, not empty.
	PersistNone Persistence = "none"
	// PersistRDB: Debian's save lines (Redis's default): a snapshot after
	// 3600 s and 1 change, 300 s and 100 changes, 60 s and 10,000 changes.
	PersistRDB Persistence = "rdb"
	// PersistAOF: appendonly yes, appendfsync everysec; a restart loads the
	// AOF, losing up to a second of writes on a crash.
	PersistAOF Persistence = "aof"
)

// Engine is the Redis-compatible server a cluster runs.
type Engine string

// The engines shardseq is tested with.
const (
	EngineRedis  Engine = "redis"  // redis-server 7.0 (Debian bookworm)
	EngineValkey Engine = "valkey" // valkey-server 8.0 (bookworm-backports)
)

func (e Engine) server() string { return string(e) + "-server" }
func (e Engine) cli() string    { return string(e) + "-cli" }

func (e Engine) installHint() string {
	if e == EngineValkey {
		return "apt-get install -t bookworm-backports valkey-server valkey-tools (Debian 12)"
	}
	return "apt-get install redis-server (Debian)"
}

// Installed reports whether the engine's server binary is in PATH, with
// the install hint when it is not.
func (e Engine) Installed() error {
	if _, err := exec.LookPath(e.server()); err != nil {
		return fmt.Errorf("%w: %s not in PATH; install it: %s", ErrRedisNotInstalled, e.server(), e.installHint())
	}
	return nil
}

// EngineFromEnv is the engine SHARDSEQ_ENGINE names (default redis).
func EngineFromEnv() Engine {
	if e := Engine(os.Getenv("SHARDSEQ_ENGINE")); e != "" {
		return e
	}
	return EngineRedis
}

// timingArgs are the only settings that differ from Redis's defaults, all for
// speed or for serving through a failover, none of them hiding a fault:
//
//   - cluster-node-timeout (Config.NodeTimeout, default 2 s instead of 15 s):
//     failovers in seconds, so tests can afford many of them;
//   - repl-diskless-sync-delay 0 (default 5): a full sync starts at once
//     instead of waiting 5 s for more replicas;
//   - cluster-require-full-coverage no (default yes) unless
//     Config.FullCoverage: the masters that still have their slots keep
//     serving while one shard fails over, which is what lets the other shards
//     serve (shardseq recommends it, README). With FullCoverage the nodes run
//     Redis's default, as most users do, and every master answers CLUSTERDOWN
//     while any slot is uncovered.
//
// Persistence (save, appendonly), repl-diskless-load (disabled: replicas
// write dump.rdb on every full sync) and everything else stay at the
// defaults, so restarts load what production nodes would load.
func (c Config) timingArgs() []string {
	return []string{
		"--cluster-node-timeout", strconv.FormatInt(c.NodeTimeout.Milliseconds(), 10),
		"--repl-diskless-sync-delay", "0",
		"--cluster-require-full-coverage", yesNo(c.FullCoverage),
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// FullCoverageEnv names the environment variable that turns
// Config.FullCoverage on where a Config leaves it off: "yes" runs the nodes
// at Redis's default (cluster-require-full-coverage yes), "no" or unset
// keeps the recommended "no".
const FullCoverageEnv = "SHARDSEQ_FULL_COVERAGE"

// FullCoverageFromEnv reads FullCoverageEnv: true for "yes", false for "no"
// or unset, and an error naming the variable for anything else.
func FullCoverageFromEnv() (bool, error) {
	switch v := os.Getenv(FullCoverageEnv); v {
	case "yes":
		return true, nil
	case "", "no":
		return false, nil
	default:
		return false, fmt.Errorf("%s=%q: want yes or no", FullCoverageEnv, v)
	}
}

// persistenceArgs are the command-line settings of each Persistence mode.
func (p Persistence) args() []string {
	switch p {
	case PersistRDB:
		return []string{"--save", "3600 1 300 100 60 10000", "--appendonly", "no"}
	case PersistAOF:
		return []string{"--appendonly", "yes", "--appendfsync", "everysec"}
	default:
		return []string{"--save", "", "--appendonly", "no"}
	}
}
