package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Addrs: []string{"127.0.0.1:7000"}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("defaults must validate: %v", err)
	}
	for _, tc := range []struct {
		field string
		mod   func(*Config)
	}{
		{"Addrs", func(c *Config) { c.Addrs = nil }},
		{"Addrs", func(c *Config) { c.Addrs = []string{"no-port"} }},
		{"Namespace", func(c *Config) { c.Namespace = "bad ns" }},
		{"Namespace", func(c *Config) { c.Namespace = "a{b}" }},
		{"Shards", func(c *Config) { c.Shards = -1 }},
		{"Shards", func(c *Config) { c.Shards = 5000 }},
		{"MinBlockSize", func(c *Config) { c.MinBlockSize = -5 }},
		{"MaxBlockSize", func(c *Config) { c.MinBlockSize, c.MaxBlockSize = 500, 200 }},
		{"BlockSize", func(c *Config) { c.BlockSize = 1 << 30 }},
		{"BlockTarget", func(c *Config) { c.BlockTarget = time.Microsecond }},
		{"RefillAt", func(c *Config) { c.RefillAt = 1.5 }},
		{"MaxID", func(c *Config) { c.MaxID = 10 }},
		{"shard options", func(c *Config) { c.AckReplicas = -7 }},
		{"shard options", func(c *Config) { c.AckTimeout = time.Hour }},
		{"shard options", func(c *Config) { c.FenceGap = -9 }},
		{"shard options", func(c *Config) { c.FenceGap = 1 << 50 }},
		{"shard options", func(c *Config) { c.CeilingLease = 48 * time.Hour }},
		{"OrderWindow", func(c *Config) { c.OrderWindow = time.Millisecond }},
		{"BlockTarget", func(c *Config) { c.BlockTarget = time.Second }},
		{"Start", func(c *Config) { c.Start = -1 }},
		{"Breaker", func(c *Config) { c.Breaker.ReserveTimeout = -time.Second }},
		{"shard options", func(c *Config) { c.MaxID = 1 << 60 }},
	} {
		c := ok
		tc.mod(&c)
		err := c.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: want *ConfigError for field %s wrapping ErrInvalidConfig, got %v", tc.field, tc.field, err)
		}
	}
}

func TestNewRejectsInvalidConfigBeforeDialing(t *testing.T) {
	_, err := New(context.Background(), Config{Addrs: []string{"127.0.0.1:1"}, Shards: 0, Namespace: "{}"})
	if !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("want ErrInvalidConfig, got %v", err)
	}
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig("127.0.0.1:7000")
	if c.Namespace != "default" || c.Shards != 0 || c.BlockSize != 1000 || c.Strict || c.OrderWindow != DefaultOrderWindow || c.BlockTarget != time.Second/48 {
		t.Fatalf("unexpected defaults %+v", c)
	}
}
