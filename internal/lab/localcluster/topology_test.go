package localcluster

import (
	"strings"
	"testing"

	"github.com/shardseq/shardseq/cluster"
)

// CLUSTER NODES as :7100 sees it while :7101 is down, before and after its
// replica :7104 took over (Redis 7.0 format, IDs shortened).
const (
	nodesBefore = `a1 127.0.0.1:7100@17100 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7101@17101 master,fail - 0 0 2 disconnected 5461-10922
c3 127.0.0.1:7102@17102 master - 0 0 3 connected 10923-16383
e5 127.0.0.1:7104@17104 slave b2 0 0 2 connected
`
	nodesAfter = `a1 127.0.0.1:7100@17100 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7101@17101 master,fail - 0 0 2 disconnected
c3 127.0.0.1:7102@17102 master - 0 0 3 connected 10923-16383
e5 127.0.0.1:7104@17104 master - 0 0 7 connected 5461-10922
`
)

func TestPromoted(t *testing.T) {
	for _, tt := range []struct {
		name, nodes, old, why string
	}{
		{"before", nodesBefore, "127.0.0.1:7101", "still serves"},
		{"after", nodesAfter, "127.0.0.1:7101", ""},
		{"pfail owner", strings.Replace(nodesAfter, "@17104 master ", "@17104 master,fail? ", 1), "127.0.0.1:7101", "flagged failed"},
		{"uncovered", strings.Replace(nodesAfter, " 10923-16383", "", 1), "127.0.0.1:7101", "served by no master"},
	} {
		top, err := cluster.ParseNodes(tt.nodes)
		if err != nil {
			t.Fatal(err)
		}
		err = Promoted(top, tt.old)
		if (tt.why == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.why)) {
			t.Errorf("%s: Promoted = %v, want %q", tt.name, err, tt.why)
		}
	}
}
