package main

import "fmt"

// portSpan hands out disjoint blocks of test ports from its range, in the
// order asked for: every cluster or node of this package's tests takes its
// block here, so no two tests share a port whichever runs first or
// together. Ports taken are data ports; a node's cluster bus is +10000.
type portSpan struct{ next, last int }

// take returns the first of n consecutive free ports.
func (p *portSpan) take(n int) int {
	if p.next+n-1 > p.last {
		panic(fmt.Sprintf("cmd/shardseq tests: no %d ports left in the package's range", n))
	}
	first := p.next
	p.next += n
	return first
}

// The package's range: 7760-7789 of the range it shares with the server's
// tests (ARCHITECTURE.md, "Ports in tests"). TestNextTLSACL's messages name
// its nodes' ports (7760 and 7762), so they take the first blocks.
var ports = &portSpan{next: 7760, last: 7789}

// clusterPorts is what a cluster of 3 masters with a replica each takes.
const clusterPorts = 6

// The ports of every test cluster and node of the package, one block each.
// They are package variables initialised in this order, so the blocks are
// the same in every run.
var (
	portTLSMaster  = ports.take(2) // TLS, then plain TCP for the setup
	portTLSReplica = ports.take(2)
	portServe      = ports.take(clusterPorts)
	portNamespace  = ports.take(clusterPorts)
)
