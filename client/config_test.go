package client

import (
	"context"
	"crypto/tls"
	"errors"
	"strings"
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
		{"URL", func(c *Config) { c.Addrs = nil }},
		{"Addrs", func(c *Config) { c.Addrs = []string{"no-port"} }},
		{"URL", func(c *Config) { c.Addrs, c.URL = nil, "http://h:1" }},
		{"URL", func(c *Config) { c.Addrs, c.URL = nil, "redis://h:1?pool_size=3" }},
		{"Addrs", func(c *Config) { c.URL = "redis://h:1" }},
		{"Password", func(c *Config) { c.Addrs, c.URL, c.Password = nil, "redis://u:pw@h:1", "pw" }},
		{"Username", func(c *Config) { c.Addrs, c.URL, c.Username = nil, "redis://u@h:1", "v" }},
		{"TLS", func(c *Config) { c.Addrs, c.URL, c.TLS = nil, "redis://h:1", &tls.Config{} }},
		{"Namespace", func(c *Config) { c.Namespace = "bad ns" }},
		{"Namespace", func(c *Config) { c.Namespace = "a{b}" }},
		{"Shards", func(c *Config) { c.Shards = -1 }},
		{"Shards", func(c *Config) { c.Shards = 5000 }},
		{"After", func(c *Config) { c.After = -1 }},
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
		{"AckTimeout", func(c *Config) { c.AckTimeout = DefaultAttemptTimeout }},
		{"AckTimeout", func(c *Config) { c.AckTimeout, c.Breaker.AttemptTimeout = 2*time.Second, time.Second }},
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

// TestConfigAckWithinAttempt: the wait for replicas must end before the
// attempt it is part of.
func TestConfigAckWithinAttempt(t *testing.T) {
	c := Config{Addrs: []string{"127.0.0.1:7000"}, AckTimeout: time.Second, Breaker: BreakerConfig{AttemptTimeout: 2 * time.Second}}
	if err := c.Validate(); err != nil {
		t.Fatalf("ack 1s within an attempt of 2s: %v", err)
	}
	c.Breaker.AttemptTimeout = 0 // the default, 750ms
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "AttemptTimeout (750ms)") {
		t.Fatalf("ack 1s with the default attempt: %v, want a ConfigError naming the attempt timeout", err)
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
	if c.Namespace != "default" || c.Shards != 0 || c.BlockSize != DefaultBlockSize || c.MinBlockSize != 1 || c.HoldFor != DefaultHoldFor || c.Strict || c.OrderWindow != DefaultOrderWindow || c.BlockTarget != time.Second/48 {
		t.Fatalf("unexpected defaults %+v", c)
	}
}

func TestConfigURL(t *testing.T) {
	for _, c := range []Config{
		{URL: "rediss://app:pw@10.0.0.1:6379?addr=10.0.0.2:6379"},
		{URL: "rediss://app@10.0.0.1:6379", Password: "pw", TLS: &tls.Config{MinVersion: tls.VersionTLS13}},
		{URL: "10.0.0.1:6379,10.0.0.2:6379", Username: "app", Password: "pw"},
	} {
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
		cc, err := c.clusterConfig().Resolve()
		if err != nil || len(cc.Addrs) == 0 || cc.Username != "app" || cc.Password != "pw" {
			t.Errorf("%+v: cluster config %+v, %v", c, cc, err)
		}
	}
	err := Config{URL: "redis://u:sekrit@h:1/9"}.Validate()
	if !errors.Is(err, ErrInvalidConfig) || strings.Contains(err.Error(), "sekrit") || !strings.Contains(err.Error(), "database 0") {
		t.Errorf("bad URL: %v", err)
	}
}
