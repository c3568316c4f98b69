package namespace_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/namespace"
	"github.com/shardseq/shardseq/shard"
)

const portScale = 7230

// TestCreationFlat measures what a creation costs with no namespace and
// with many (scaleNamespaces, or SHARDSEQ_SCALE_NAMESPACES): the median
// creation must stay within 50 ms and 1.5x the empty cluster's, since the
// guard against recreating a lost namespace looks its name up (index,
// traces) instead of reading every name and scanning every key. It also
// measures a page of List at that size (<= 50 ms) and Redis memory per
// namespace (used_memory of the masters), which BENCHMARKS.md projects to
// 100,000 namespaces.
func TestCreationFlat(t *testing.T) {
	if testing.Short() {
		t.Skip("fills a cluster with namespaces")
	}
	// The bounds of the issue (<= 50 ms, <= 1.5x, List <= 50 ms) hold when
	// the measurement is asked for (the chaos tag, or a size in the
	// environment); under make test other packages share the CPUs with it,
	// and only growth beyond 2.5x fails it.
	n, strict := clustertest.ScaleNamespaces(t, scaleNamespaces, scaleStrict)
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portScale})
	cl := lc.Dial(cluster.Config{})
	ctx := context.Background()
	const probes = 100

	probe := func(tag string) []time.Duration {
		out := make([]time.Duration, probes)
		for k := range out {
			t0 := time.Now()
			ns, err := namespace.Put(ctx10(t), cl, fmt.Sprintf("probe-%s-%03d", tag, k), namespace.Spec{}, 0, shard.Options{})
			out[k] = time.Since(t0)
			if err != nil || !ns.Created {
				t.Fatalf("create probe %d: %v", k, err)
			}
		}
		slices.Sort(out)
		return out
	}
	empty := probe("empty")
	if os.Getenv("SHARDSEQ_SCALE_DEBUG") != "" {
		var d []time.Duration
		for range 20 {
			t0 := time.Now()
			if _, err := namespace.FindTrace(ctx, cl, "nobody"); err != nil {
				t.Fatal(err)
			}
			d = append(d, time.Since(t0))
		}
		slices.Sort(d)
		t.Logf("trace check: median %v", d[10])
	}
	mem0 := usedMemory(t, cl)

	t0 := time.Now()
	work := make(chan int)
	var wg sync.WaitGroup
	var failed sync.Once
	for range 8 {
		wg.Go(func() {
			for k := range work {
				if _, err := namespace.Put(ctx10(t), cl, fmt.Sprintf("tenant-%06d", k), namespace.Spec{}, 0, shard.Options{}); err != nil {
					failed.Do(func() { t.Errorf("create tenant %d: %v", k, err) })
				}
			}
		})
	}
	for k := range n {
		work <- k
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	fill := time.Since(t0)
	perNS := float64(usedMemory(t, cl)-mem0) / float64(n)

	full := probe("full")
	var pages []time.Duration
	names, err := namespace.ListNamespaces(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	for k := range 50 {
		cursor := ""
		if k > 0 {
			cursor = names[k*len(names)/50]
		}
		t0 := time.Now()
		page, err := namespace.List(ctx, cl, cursor, 100)
		pages = append(pages, time.Since(t0))
		if err != nil || len(page.Namespaces) == 0 {
			t.Fatalf("list after %q: %v (%d)", cursor, err, len(page.Namespaces))
		}
		for _, info := range page.Namespaces {
			if info.State != namespace.StateActive {
				t.Fatalf("listed %s as %s", info.Name, info.State)
			}
		}
	}
	slices.Sort(pages)

	med0, medN := empty[probes/2], full[probes/2]
	t.Logf("%d namespaces (12 shards each) created in %v (8 at a time)", n, fill.Round(time.Millisecond))
	t.Logf("creation with %6d namespaces: median %v p99 %v", 0, med0.Round(10*time.Microsecond), empty[probes*99/100].Round(10*time.Microsecond))
	t.Logf("creation with %6d namespaces: median %v p99 %v (%.2fx)", n, medN.Round(10*time.Microsecond), full[probes*99/100].Round(10*time.Microsecond), float64(medN)/float64(med0))
	t.Logf("List page of 100 at %d namespaces: median %v p99 %v", n, pages[len(pages)/2].Round(10*time.Microsecond), pages[len(pages)*99/100].Round(10*time.Microsecond))
	t.Logf("Redis memory: %.0f bytes per namespace on the masters (used_memory; each replica holds as much again)", perNS)
	switch {
	case strict && (medN > 50*time.Millisecond || float64(medN) > 1.5*float64(med0)):
		t.Errorf("creation grows with the number of namespaces: median %v with %d, %v with none (want <= 50ms and <= 1.5x)", medN, n, med0)
	case float64(medN) > 2.5*float64(med0):
		t.Errorf("creation grows with the number of namespaces: median %v with %d, %v with none (want <= 2.5x under make test)", medN, n, med0)
	}
	if strict && pages[len(pages)/2] > 50*time.Millisecond {
		t.Errorf("List page median %v at %d namespaces, want <= 50ms", pages[len(pages)/2], n)
	}
}

// usedMemory sums used_memory over the masters.
func usedMemory(t *testing.T, cl *cluster.Cluster) int64 {
	t.Helper()
	var sum int64
	for _, m := range cl.Topology().Masters {
		info, err := cl.Node(m.Addr).Info(context.Background(), "memory").Result()
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(info, "\r\n") {
			if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
				b, err := strconv.ParseInt(v, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				sum += b
			}
		}
	}
	return sum
}
