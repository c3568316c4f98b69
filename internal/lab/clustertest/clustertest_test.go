package clustertest_test

import (
	"testing"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// Ports of this package's tests: 7150-7159.
func TestStart(t *testing.T) {
	var pids []int
	t.Run("cluster", func(t *testing.T) {
		c := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: -1, BasePort: 7150})
		cl := c.Dial(cluster.Config{RefreshInterval: -1})
		if top := cl.Topology(); !top.Covered() || len(top.Masters) != 3 {
			t.Fatalf("topology %+v", top.Masters)
		}
		for _, n := range c.Local().Nodes() {
			pids = append(pids, n.PID)
		}
	})
	// The subtest's Cleanup closed the cluster.
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("pid %d alive after the test ended", pid)
		}
	}
}
