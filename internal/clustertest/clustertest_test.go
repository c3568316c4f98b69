package clustertest_test

import (
	"context"
	"testing"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/clustertest"
)

// Ports of this package's tests: 7150-7159.
func TestStart(t *testing.T) {
	var pids []int
	t.Run("cluster", func(t *testing.T) {
		lc := clustertest.Start(t, cluster.LocalConfig{Masters: 3, Replicas: -1, BasePort: 7150})
		c, err := cluster.Dial(context.Background(), cluster.Config{Addrs: lc.Addrs(), RefreshInterval: -1})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if top := c.Topology(); !top.Covered() || len(top.Masters) != 3 {
			t.Fatalf("topology %+v", top.Masters)
		}
		for _, n := range lc.Nodes() {
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
