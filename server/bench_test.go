package server

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// BenchmarkHandleIDs measures the handler alone (no network): one ID, and a
// batch of 100, per request, from parallel callers.
func BenchmarkHandleIDs(b *testing.B) {
	lc := clustertest.Start(b, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portBench})
	s := newServer(b, Config{Cluster: lc.Dial(cluster.Config{}), Shards: 6})
	h := s.Handler()
	for _, tc := range []struct{ name, target string }{{"count=1", "/v1/ids/bench"}, {"count=100", "/v1/ids/bench?count=100"}} {
		target := tc.target
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodPost, target, nil)
				for pb.Next() {
					rec := httptest.NewRecorder()
					h.ServeHTTP(rec, req)
					if rec.Code != http.StatusOK {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
				}
			})
		})
	}
}
