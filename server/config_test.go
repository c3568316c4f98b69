package server

import (
	"errors"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
)

// TestConfigClientTemplate: a namespace client template the client would
// refuse is refused by Validate, as a *ConfigError naming the client's
// field, and still matches client.ErrInvalidConfig.
func TestConfigClientTemplate(t *testing.T) {
	cfg := Config{Cluster: &cluster.Cluster{}, Client: client.Config{AckTimeout: time.Second}}
	err := cfg.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) || ce.Field != "Client.AckTimeout" || !errors.Is(err, ErrInvalidConfig) || !errors.Is(err, client.ErrInvalidConfig) {
		t.Fatalf("ack timeout past the attempt: %v, want a *ConfigError on Client.AckTimeout", err)
	}
	cfg.Client.Breaker.AttemptTimeout = 2 * time.Second
	if err := cfg.Validate(); err != nil {
		t.Fatalf("ack timeout within the attempt: %v", err)
	}
}
