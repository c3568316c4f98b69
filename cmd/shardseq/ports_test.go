package main

import "fmt"

// portBlocks hands out this package's test ports in blocks of blockPorts,
// in the order asked for: every cluster or node set of its tests takes its
// own block here, so no two tests share a port whichever runs first or
// together. Ports are data ports; a node's cluster bus is +10000. Whole
// blocks keep each test's ports where its expected messages name them
// (772x, 7760).
type portBlocks struct{ next, last int }

// blockPorts is one block: a cluster of up to 10 nodes, or TLS nodes with
// their plain setup ports.
const blockPorts = 20

// block returns the first port of the next free block.
func (p *portBlocks) block() int {
	if p.next+blockPorts-1 > p.last {
		panic(fmt.Sprintf("cmd/shardseq tests: no block of %d ports left in the package's range", blockPorts))
	}
	first := p.next
	p.next += blockPorts
	return first
}

// The package's range: 7720-7789 of the range it shares with the server's
// tests (ARCHITECTURE.md, "Ports in tests").
var ports = &portBlocks{next: 7720, last: 7789}

// The ports of every test cluster and node set of the package, one block
// each. They are package variables initialised in this order, so the blocks
// are the same in every run.
var (
	portServe     = ports.block() // 7720: TestServeEndToEnd's status names it
	portNamespace = ports.block()
	portTLS       = ports.block() // 7760: TestNextTLSACL's messages name it
	// Each TLS node takes its TLS port and the next (plain TCP for the setup).
	portTLSMaster, portTLSReplica = portTLS, portTLS + 2
)
