package chaos

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
)

// counterReader sums the namespace's counters, to tell what a fault cost in
// sequence numbers. A nil reader, or one that cannot read every counter,
// answers -1.
type counterReader struct {
	cl   *cluster.Cluster
	keys []string
}

func newCounterReader(ctx context.Context, seeds []string, shards []failover.ShardStatus) *counterReader {
	cl, err := cluster.Dial(ctx, cluster.Config{Addrs: seeds, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return nil
	}
	r := &counterReader{cl: cl}
	for _, s := range shards {
		r.keys = append(r.keys, s.Key)
	}
	return r
}

func (r *counterReader) sum(ctx context.Context) int64 {
	if r == nil {
		return -1
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var total int64
	for _, k := range r.keys {
		v, err := r.cl.ClusterClient().HGet(ctx, k, "seq").Int64()
		if err != nil {
			return -1
		}
		total += v
	}
	return total
}

func (r *counterReader) Close() {
	if r != nil {
		_ = r.cl.Close()
	}
}
