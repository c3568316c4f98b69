package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
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

	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
	httpCall := func(b *testing.B) {
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
	rpcCall := func(c shardseqv1connect.ShardseqServiceClient) func(*testing.B) {
		return func(b *testing.B) {
			res, err := c.TakeIds(context.Background(), connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: ns}))
			if err != nil {
				b.Fatal(err)
			}
			if len(res.Msg.GetIds()) != 1 {
				b.Fatalf("%v", res.Msg)
			}
		}
	}
	calls := []struct {
		name string
		call func(*testing.B)
	}{
		{"http", httpCall},
		{"grpc", rpcCall(shardseqv1connect.NewShardseqServiceClient(h2cClient(), url, connect.WithGRPC()))},
		{"connect", rpcCall(shardseqv1connect.NewShardseqServiceClient(&http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}, url))},
	}
	// callers=2: one caller per P, each waiting for its answer (latency);
	// callers=32: enough in flight to keep the server busy (throughput).
	for _, par := range []int{1, 16} {
		for _, c := range calls {
			b.Run(fmt.Sprintf("callers=%d/%s", par*runtime.GOMAXPROCS(0), c.name), func(b *testing.B) {
				b.ReportAllocs()
				b.SetParallelism(par)
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						c.call(b)
					}
				})
			})
		}
	}
}
