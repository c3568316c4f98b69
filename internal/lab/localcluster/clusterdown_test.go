package localcluster

import (
	"context"
	"slices"
	"testing"
	"time"
)

// portDown is TestClusterDown's first port (6 nodes: 7142-7147).
const portDown = 7142

func TestFullCoverageArgs(t *testing.T) {
	for _, tc := range []struct {
		full bool
		env  string
		want string
		bad  bool
	}{
		{false, "", "no", false},
		{true, "", "yes", false},
		{false, "yes", "yes", false},
		{false, "no", "no", false},
		{true, "no", "yes", false}, // the field wins over the environment
		{false, "maybe", "", true},
	} {
		t.Setenv(FullCoverageEnv, tc.env)
		c, err := (Config{Dir: "x", BasePort: 7100, FullCoverage: tc.full, ServerBin: "/bin/true"}).withDefaults()
		if tc.bad {
			if err == nil {
				t.Errorf("%s=%q: want an error", FullCoverageEnv, tc.env)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		args := c.timingArgs()
		i := slices.Index(args, "--cluster-require-full-coverage")
		if i < 0 || args[i+1] != tc.want {
			t.Errorf("FullCoverage=%v %s=%q: args %v, want --cluster-require-full-coverage %s", tc.full, FullCoverageEnv, tc.env, args, tc.want)
		}
	}
}

// ClusterDown makes a real cluster-wide outage with full coverage: every
// other master answers cluster_state:fail while the shard has no master,
// its replica is promoted by hand after the hold (not before: it was told
// not to fail over), the old master is back as a replica, and the replicas
// may fail over again afterwards.
func TestClusterDown(t *testing.T) {
	requireRedis(t)
	t.Setenv(FullCoverageEnv, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lc, err := Start(ctx, Config{BasePort: portDown, Dir: t.TempDir(), FullCoverage: true, Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer lc.Close()
	masters, err := lc.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := masters[0]
	const hold = 2 * time.Second
	d, err := lc.ClusterDown(ctx, m, hold)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", d)
	if d.OtherMasters != len(masters)-1 || d.MastersDown != d.OtherMasters {
		t.Errorf("%d of %d other masters in cluster_state:fail; want all: full coverage makes the outage cluster-wide", d.MastersDown, d.OtherMasters)
	}
	if d.Flagged <= 0 || d.Promoted < d.Flagged+hold {
		t.Errorf("flagged after %v, promoted after %v: the shard must stay without a master for %v after the flag", d.Flagged, d.Promoted, hold)
	}
	after, err := lc.Masters(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(after, m) || !slices.Contains(after, d.Replica) {
		t.Errorf("masters after: %v; want %s promoted in place of %s", after, d.Replica, m)
	}
	v, err := lc.client(d.Replica).ConfigGet(ctx, "cluster-replica-no-failover").Result()
	if err != nil || v["cluster-replica-no-failover"] != "no" {
		t.Errorf("cluster-replica-no-failover on %s after the fault: %v %v; want no", d.Replica, v, err)
	}
}
