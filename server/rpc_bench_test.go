package server

import (
	"context"
	"io"
	"net/http"
	"testing"

	"connectrpc.com/connect"

	shardseqv1 "github.com/shardseq/shardseq/api/gen/shardseq/v1"
	"github.com/shardseq/shardseq/api/gen/shardseq/v1/shardseqv1connect"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// BenchmarkRPC compares single-ID calls on one server over loopback
// sockets, as `shardseq serve` serves them (NewHTTPServer, no TLS):
// POST /v1/ids/{ns} over HTTP/1.1 keep-alive connections, TakeIds over gRPC
// (HTTP/2, one connection, as gRPC clients use it) and over the Connect
// protocol (HTTP/1.1). Client, server and Redis share the machine's CPUs.
// BENCHMARKS.md has the figures.
func BenchmarkRPC(b *testing.B) {
	lc := clustertest.Start(b, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portRPC})
	s := newServer(b, Config{Cluster: lc.Dial(cluster.Config{}), Shards: 6})
	url := rpcServer(b, s.Handler(), nil)
	const ns = "bench-rpc"

	b.Run("http", func(b *testing.B) {
		hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				resp, err := hc.Post(url+"/v1/ids/"+ns, "", nil)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Fatalf("%d", resp.StatusCode)
				}
			}
		})
	})
	for _, tc := range []struct {
		name string
		c    shardseqv1connect.ShardseqServiceClient
	}{
		{"grpc", shardseqv1connect.NewShardseqServiceClient(h2cClient(), url, connect.WithGRPC())},
		{"connect", shardseqv1connect.NewShardseqServiceClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}, url)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					res, err := tc.c.TakeIds(ctx, connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: ns}))
					if err != nil {
						b.Fatal(err)
					}
					if len(res.Msg.GetIds()) != 1 {
						b.Fatalf("%v", res.Msg)
					}
				}
			})
		})
	}
}
