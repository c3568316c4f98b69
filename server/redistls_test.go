package server

import (
	"context"
	"crypto/x509"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/tlstest"
)

// TestRedisTLS serves IDs from a one-node Redis Cluster reached over TLS
// only (certificate verified against the test CA), and checks that a client
// without TLS or without the CA is refused. One node without replicas keeps
// it cheap, so acknowledgement is off (AckReplicas -1): the test is about
// the TLS plumbing of cluster, shard and server, not failover. Redis 7.0
// lists a node's tls-port in CLUSTER SHARDS only with tls-cluster yes.
func TestRedisTLS(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not in PATH")
	}
	pki := tlstest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	plain := pki.StartNode(ctx, t, portRedisTLS)
	if err := plain.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, cluster.NumSlots-1).Err(); err != nil {
		t.Fatal(err)
	}
	for {
		info, _ := plain.ClusterInfo(ctx).Result()
		if strings.Contains(info, "cluster_state:ok") {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("one-node cluster not ok")
		case <-time.After(20 * time.Millisecond):
		}
	}

	tlsAddr := []string{"127.0.0.1:" + strconv.Itoa(portRedisTLS)}
	cl, err := cluster.Dial(ctx, cluster.Config{Addrs: tlsAddr, TLSConfig: pki.ClientConfig(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("Dial over TLS: %v", err)
	}
	defer cl.Close()
	if m := cl.Topology().Masters; len(m) != 1 || m[0].Addr != tlsAddr[0] {
		t.Fatalf("topology over TLS: %+v, want the TLS port", m)
	}
	s := newServer(t, Config{Cluster: cl, Shards: 3, Client: client.Config{AckReplicas: -1, Strict: true}})
	for range 6 {
		if r := do(t, s.Handler(), "POST", "/v1/ids/tls?count=2"); r.code != 200 {
			t.Fatalf("POST over Redis TLS: %d %s", r.code, r.raw)
		}
	}

	short, cancel2 := context.WithTimeout(ctx, 3*time.Second)
	defer cancel2()
	if _, err := cluster.Dial(short, cluster.Config{Addrs: tlsAddr, Logger: slog.New(slog.DiscardHandler), DialTimeout: time.Second}); err == nil {
		t.Error("a plain-text client was served on the TLS port")
	}
	untrusting := pki.ClientConfig()
	untrusting.RootCAs = x509.NewCertPool()
	if _, err := cluster.Dial(short, cluster.Config{Addrs: tlsAddr, TLSConfig: untrusting, Logger: slog.New(slog.DiscardHandler)}); err == nil ||
		!strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client not trusting the CA: %v, want a certificate error", err)
	}
}
