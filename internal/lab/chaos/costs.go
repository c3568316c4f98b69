package chaos

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"
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

// ceilingsAhead says which shard's confirmed ceiling (mirrored) is not
// above the highest counter of the namespace ("" when none, or when the
// reader cannot tell: nil).
func (r *counterReader) ceilingsAhead(ctx context.Context) string {
	if r == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	seqs := make([]int64, len(r.keys))
	ceilings := make([]int64, len(r.keys))
	var top int64
	for i, k := range r.keys {
		v, err := r.cl.ClusterClient().HMGet(ctx, k, "seq", "mirrored").Result()
		if err != nil {
			return fmt.Sprintf("counter %s: %v", k, err)
		}
		for j, p := range []*int64{&seqs[i], &ceilings[i]} {
			if str, ok := v[j].(string); ok {
				*p, _ = strconv.ParseInt(str, 10, 64)
			}
		}
		top = max(top, seqs[i])
	}
	for i, k := range r.keys {
		if ceilings[i] <= top {
			return fmt.Sprintf("shard %d (%s): confirmed ceiling %d not above the highest counter %d", i, k, ceilings[i], top)
		}
	}
	return ""
}

func (r *counterReader) Close() {
	if r != nil {
		_ = r.cl.Close()
	}
}
