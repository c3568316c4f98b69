package main

import (
	"strings"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/server"
)

// TestServeSettingsFlags: serve's namespace and client settings, from flags
// and from the environment; a bad value fails before any connection with a
// message naming the flag (or the variable) and the accepted values.
func TestServeSettingsFlags(t *testing.T) {
	base := []string{"serve", "--redis", "h:1"}
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"idle negative", nil, []string{"--namespace-idle", "-1s"}, "--namespace-idle=-1s: want at least 10ms"},
		{"idle tiny", nil, []string{"--namespace-idle", "1ms"}, "--namespace-idle=1ms"},
		{"idle not a duration", nil, []string{"--namespace-idle", "soon"}, "namespace-idle"},
		{"idle env", map[string]string{"SHARDSEQ_NAMESPACE_IDLE": "-5m"}, nil, "environment variable SHARDSEQ_NAMESPACE_IDLE=-5m0s"},
		{"create mode", nil, []string{"--create-namespaces", "lazy"}, `--create-namespaces="lazy": want auto or explicit`},
		{"create mode env", map[string]string{"SHARDSEQ_CREATE_NAMESPACES": "never"}, nil, "SHARDSEQ_CREATE_NAMESPACES"},
		{"create rate zero", nil, []string{"--namespace-create-rate", "0"}, "--namespace-create-rate=0: want a rate per second above 0"},
		{"create rate negative", nil, []string{"--namespace-create-rate", "-2"}, "or -1 for no bound"},
		{"create rate huge", nil, []string{"--namespace-create-rate", "1e9"}, "--namespace-create-rate=1e+09"},
		{"create rate not a number", map[string]string{"SHARDSEQ_NAMESPACE_CREATE_RATE": "fast"}, nil, "SHARDSEQ_NAMESPACE_CREATE_RATE"},
		{"create burst zero", nil, []string{"--namespace-create-burst", "0"}, "--namespace-create-burst=0: want 1 to 1000000"},
		{"request timeout zero", nil, []string{"--request-timeout", "0s"}, "--request-timeout=0s: want 10ms to 1m"},
		{"request timeout long", nil, []string{"--request-timeout", "2h"}, "--request-timeout=2h0m0s"},
		{"block target too long", nil, []string{"--block-target", "2s"}, "--block-target=2s: want 1ms to 400ms"},
		{"block target negative", nil, []string{"--block-target", "-1ms"}, "--block-target=-1ms"},
		{"block target env", map[string]string{"SHARDSEQ_BLOCK_TARGET": "1h"}, nil, "environment variable SHARDSEQ_BLOCK_TARGET=1h0m0s"},
		{"min block zero", nil, []string{"--min-block", "0"}, "--min-block=0: want 1 to 16777216"},
		{"max block below min", nil, []string{"--min-block", "500", "--max-block", "100"}, "--max-block=100: want --min-block (500) to 16777216"},
		{"max block huge", nil, []string{"--max-block", "99999999"}, "--max-block=99999999"},
		{"ack replicas", nil, []string{"--ack-replicas", "-2"}, "--ack-replicas=-2: want a replica count"},
		{"ack replicas env", map[string]string{"SHARDSEQ_ACK_REPLICAS": "1000"}, nil, "environment variable SHARDSEQ_ACK_REPLICAS=1000"},
		{"ack timeout zero", nil, []string{"--ack-timeout", "0s"}, "--ack-timeout=0s: want 1ms to 500ms"},
		{"ack timeout long", nil, []string{"--ack-timeout", "2s"}, "--ack-timeout=2s"},
		{"hold for negative", nil, []string{"--hold-for", "-1s"}, "--hold-for=-1s: want 0 (no spares) to 1m"},
		{"hold for long", map[string]string{"SHARDSEQ_HOLD_FOR": "2m"}, nil, "environment variable SHARDSEQ_HOLD_FOR=2m0s"},
		{"strict not a bool", map[string]string{"SHARDSEQ_STRICT": "sometimes"}, nil, "SHARDSEQ_STRICT"},
	}
	for _, tt := range tests {
		_, stderr, code := run(t, tt.env, append(append([]string{}, base...), tt.args...)...)
		if code != 2 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s: exit %d, stderr %q; want 2 and %q", tt.name, code, stderr, tt.want)
		}
	}

	// Defaults, then every setting from the environment, then flags over it.
	parse := func(env map[string]string, args ...string) serveConfig {
		t.Helper()
		cfg, err := (&ServeCommand{Main: &Main{Getenv: func(k string) string { return env[k] }}}).parse(append([]string{"--redis", "h:1"}, args...))
		if err != nil {
			t.Fatalf("parse %v %v: %v", env, args, err)
		}
		return cfg
	}
	var def server.Config
	d := parse(nil)
	d.settings.apply(&def)
	if def.NamespaceIdle != server.DefaultNamespaceIdle || def.CreateNamespaces != server.CreateAuto || def.CreateRate != server.DefaultCreateRate ||
		def.CreateBurst != server.DefaultCreateBurst || def.RequestTimeout != server.DefaultRequestTimeout ||
		def.Client.Strict || def.Client.BlockTarget != 0 || def.Client.MinBlockSize != client.DefaultMinBlockSize || def.Client.MaxBlockSize != client.DefaultMaxBlockSize ||
		def.Client.BlockSize != client.DefaultBlockSize || def.Client.AckReplicas != 0 || def.Client.AckTimeout != 250*time.Millisecond || def.Client.Addrs != nil ||
		def.Client.HoldFor != client.DefaultHoldFor {
		t.Errorf("defaults: %+v", def)
	}
	env := map[string]string{"SHARDSEQ_NAMESPACE_IDLE": "0", "SHARDSEQ_CREATE_NAMESPACES": "explicit", "SHARDSEQ_NAMESPACE_CREATE_RATE": "-1",
		"SHARDSEQ_NAMESPACE_CREATE_BURST": "7", "SHARDSEQ_REQUEST_TIMEOUT": "3s", "SHARDSEQ_BLOCK_TARGET": "50ms", "SHARDSEQ_MIN_BLOCK": "2000",
		"SHARDSEQ_MAX_BLOCK": "4000", "SHARDSEQ_STRICT": "true", "SHARDSEQ_ACK_REPLICAS": "1", "SHARDSEQ_ACK_TIMEOUT": "100ms",
		"SHARDSEQ_HOLD_FOR": "0"}
	var got server.Config
	e := parse(env)
	e.settings.apply(&got)
	if got.NamespaceIdle != -1 || got.CreateNamespaces != server.CreateExplicit || got.CreateRate != -1 || got.CreateBurst != 7 ||
		got.RequestTimeout != 3*time.Second || !got.Client.Strict || got.Client.BlockTarget != 50*time.Millisecond ||
		got.Client.MinBlockSize != 2000 || got.Client.MaxBlockSize != 4000 || got.Client.BlockSize != 2000 ||
		got.Client.AckReplicas != 1 || got.Client.AckTimeout != 100*time.Millisecond || got.Client.HoldFor != -1 {
		t.Errorf("from the environment: %+v", got)
	}
	f := parse(env, "--namespace-idle", "90s", "--create-namespaces", "auto", "--max-block", "1500", "--min-block", "10", "--strict=false")
	f.settings.apply(&got)
	if got.NamespaceIdle != 90*time.Second || got.CreateNamespaces != server.CreateAuto || got.Client.MaxBlockSize != 1500 ||
		got.Client.MinBlockSize != 10 || got.Client.BlockSize != 10 || got.Client.Strict {
		t.Errorf("flags over the environment: %+v", got)
	}
}
