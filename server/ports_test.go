package server

import "fmt"

// portSpan hands out disjoint blocks of test ports from its ranges, in the
// order asked for: every cluster or node of this package's tests takes its
// block here, so no two tests share a port whichever runs first or
// together. Ports taken are data ports; a node's cluster bus is +10000.
type portSpan struct {
	ranges [][2]int // inclusive, tried in order
	next   int      // next free port in ranges[0]
}

func newPortSpan(ranges ...[2]int) *portSpan {
	return &portSpan{ranges: ranges, next: ranges[0][0]}
}

// take returns the first of n consecutive free ports.
func (p *portSpan) take(n int) int {
	for len(p.ranges) > 0 {
		if p.next+n-1 <= p.ranges[0][1] {
			first := p.next
			p.next += n
			return first
		}
		p.ranges = p.ranges[1:]
		if len(p.ranges) > 0 {
			p.next = p.ranges[0][0]
		}
	}
	panic(fmt.Sprintf("server tests: no %d ports left in the package's range", n))
}

// The package's ranges: 7400-7449, 7700-7719 of the range it shares with
// cmd/shardseq, and 7450-7469 (ARCHITECTURE.md, "Ports in tests").
var ports = newPortSpan([2]int{7400, 7449}, [2]int{7700, 7719}, [2]int{7450, 7469})

// clusterPorts is what a cluster of 3 masters with a replica each takes.
const clusterPorts = 6

// The ports of every test cluster and node of the package, one block each.
// They are package variables initialised in this order, so the blocks are
// the same in every run.
var (
	portServer        = ports.take(clusterPorts)
	portLifecycle     = ports.take(clusterPorts)
	portFreeze        = ports.take(clusterPorts)
	portBench         = ports.take(clusterPorts)
	portIdleBench     = ports.take(clusterPorts)
	portIdleTest      = ports.take(clusterPorts)
	portNamespaces    = ports.take(clusterPorts)
	portFloodExplicit = ports.take(clusterPorts)
	portRedisTLS      = ports.take(2) // TLS, then plain TCP for the setup
	portOps           = ports.take(clusterPorts)
	portGrow          = ports.take(clusterPorts + 2) // and a master added later, with its replica
	portRPC           = ports.take(clusterPorts)     // TestRPC, then BenchmarkRPC (tests end before benchmarks start)
	portColocated     = ports.take(clusterPorts)
	portReopen        = ports.take(clusterPorts)
)
