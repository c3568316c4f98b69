package cluster

import (
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// This file turns the replies of CLUSTER SHARDS and CLUSTER NODES into
// masters. It does no I/O, so the parsing is tested on captured replies.

// mastersFromShards converts CLUSTER SHARDS. A shard without slots whose
// master is failed is a dead ex-master that lost its slots to a promoted
// replica; it is left out. Valkey 8 lists such an ex-master in the shard of
// the replica that replaced it, with role master too: the shard's master is
// the one not failed, and a failed ex-master beside it is left out as well.
func mastersFromShards(shards []redis.ClusterShard, useTLS bool) []Master {
	var out []Master
	for _, sh := range shards {
		var m Master
		found := false
		var replicas []Node
		for _, n := range sh.Nodes {
			node := Node{ID: n.ID, Addr: shardNodeAddr(n, useTLS), Failed: n.Health == "fail" || n.Health == "failed"}
			switch {
			case n.Role != "master":
				replicas = append(replicas, node)
			case !found || m.Failed && !node.Failed:
				node.Master = true
				m.Node = node
				found = true
			}
		}
		if !found {
			continue
		}
		m.Replicas = replicas
		for _, r := range sh.Slots {
			m.Slots = append(m.Slots, [2]int{int(r.Start), int(r.End)})
		}
		if len(m.Slots) == 0 && m.Failed {
			continue
		}
		out = append(out, m)
	}
	return out
}

// deadFromShards lists the failed master-role nodes of CLUSTER SHARDS that
// mastersFromShards left out (Topology.Down), sorted by address.
func deadFromShards(shards []redis.ClusterShard, masters []Master, useTLS bool) []Node {
	kept := map[string]bool{}
	for _, m := range masters {
		kept[m.ID] = true
	}
	var out []Node
	for _, sh := range shards {
		for _, n := range sh.Nodes {
			if n.Role == "master" && (n.Health == "fail" || n.Health == "failed") && !kept[n.ID] {
				out = append(out, Node{ID: n.ID, Addr: shardNodeAddr(n, useTLS), Failed: true})
			}
		}
	}
	return sortedNodes(out)
}

// deadFromNodes lists what mastersFromNodes leaves out as dead ex-masters:
// masters flagged failed that serve no slot.
func deadFromNodes(text string) []Node {
	lines, _ := ParseNodeLines(text) // mastersFromNodes parsed it without error
	var out []Node
	for _, n := range lines {
		if n.Has("master") && !n.Has("handshake") && !n.Has("noaddr") && len(n.Slots) == 0 && n.failed() {
			out = append(out, Node{ID: n.ID, Addr: n.Addr, Failed: true})
		}
	}
	return sortedNodes(out)
}

func sortedNodes(ns []Node) []Node {
	slices.SortFunc(ns, func(a, b Node) int { return strings.Compare(a.Addr, b.Addr) })
	return ns
}

func shardNodeAddr(n redis.Node, useTLS bool) string {
	host := n.Endpoint
	if host == "" || host == "?" {
		host = n.IP
	}
	port := n.Port
	if useTLS && n.TLSPort != 0 {
		port = n.TLSPort
	}
	return net.JoinHostPort(host, strconv.FormatInt(port, 10))
}

// NodeLine is one line of CLUSTER NODES: one node as the answering node sees
// it. Flags are Redis's own ("myself", "master", "slave", "fail", "fail?",
// "handshake", "noaddr", ...).
type NodeLine struct {
	ID, Addr string
	MasterID string // of a replica; empty for a master
	Flags    []string
	LinkUp   bool     // the cluster bus link is "connected"
	Slots    [][2]int // inclusive ranges, as listed
}

// Has reports whether the line carries flag.
func (n NodeLine) Has(flag string) bool { return slices.Contains(n.Flags, flag) }

// failed: flagged fail or pfail, or (not myself) the bus link is down.
func (n NodeLine) failed() bool {
	return n.Has("fail") || n.Has("fail?") || n.Has("noaddr") || (!n.Has("myself") && !n.LinkUp)
}

// ParseNodeLines parses CLUSTER NODES output:
// <id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link> <slot> ...
// Importing/migrating markers ("[slot->-id]") are skipped.
func ParseNodeLines(text string) ([]NodeLine, error) {
	var out []NodeLine
	for line := range strings.Lines(text) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("cluster: malformed CLUSTER NODES line %q", strings.TrimSpace(line))
		}
		addr := f[1]
		if i := strings.IndexAny(addr, "@,"); i >= 0 {
			addr = addr[:i]
		}
		n := NodeLine{ID: f[0], Addr: addr, Flags: strings.Split(f[2], ","), LinkUp: f[7] == "connected"}
		if f[3] != "-" {
			n.MasterID = f[3]
		}
		for _, s := range f[8:] {
			if strings.HasPrefix(s, "[") {
				continue
			}
			lo, hi, isRange := strings.Cut(s, "-")
			a, err1 := strconv.Atoi(lo)
			b := a
			var err2 error
			if isRange {
				b, err2 = strconv.Atoi(hi)
			}
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("cluster: malformed slot %q in CLUSTER NODES", s)
			}
			n.Slots = append(n.Slots, [2]int{a, b})
		}
		out = append(out, n)
	}
	return out, nil
}

// ParseNodes builds a topology from the text of CLUSTER NODES as one node
// sees it, failure flags included: what that node believes, which during a
// failover can differ from node to node.
func ParseNodes(text string) (*Topology, error) {
	ms, err := mastersFromNodes(text)
	if err != nil {
		return nil, err
	}
	return NewTopology(ms, 0)
}

// mastersFromNodes converts CLUSTER NODES output, with the same rule as
// mastersFromShards for dead slot-less masters. Nodes still in handshake or
// without an address are left out.
func mastersFromNodes(text string) ([]Master, error) {
	lines, err := ParseNodeLines(text)
	if err != nil {
		return nil, err
	}
	idx := map[string]int{}
	var out []Master
	for _, n := range lines {
		if !n.Has("master") || n.Has("handshake") || n.Has("noaddr") {
			continue
		}
		if len(n.Slots) == 0 && n.failed() {
			continue
		}
		idx[n.ID] = len(out)
		out = append(out, Master{Node: Node{ID: n.ID, Addr: n.Addr, Master: true, Failed: n.failed()}, Slots: n.Slots})
	}
	for _, n := range lines {
		if !n.Has("slave") || n.Has("handshake") || n.Has("noaddr") {
			continue
		}
		if i, ok := idx[n.MasterID]; ok {
			// A replica only suspected (fail?, or a link down as seen from
			// here) can still be promoted, so writes wait for it, as
			// CLUSTER SHARDS (health "online") and the scripts' count of
			// promotable replicas have it; only the cluster's verdict, fail,
			// leaves it out.
			out[i].Replicas = append(out[i].Replicas, Node{ID: n.ID, Addr: n.Addr, Failed: n.Has("fail")})
		}
	}
	return out, nil
}
