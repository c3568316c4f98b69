package baseline_test

import (
	"testing"

	"github.com/shardseq/shardseq/lab/baseline"
)

// BenchmarkBaseline measures the in-process peers from GOMAXPROCS callers
// (RunParallel); the naive Redis generators are in client's
// BenchmarkBaseline.
func BenchmarkBaseline(b *testing.B) {
	for _, g := range baseline.Generators() {
		b.Run(g.Name, func(b *testing.B) {
			next, err := g.New()
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := next(); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// TestGenerators: every baseline makes IDs.
func TestGenerators(t *testing.T) {
	for _, g := range baseline.Generators() {
		next, err := g.New()
		if err != nil {
			t.Fatalf("%s: %v", g.Name, err)
		}
		for range 10 {
			if err := next(); err != nil {
				t.Fatalf("%s: %v", g.Name, err)
			}
		}
	}
}
