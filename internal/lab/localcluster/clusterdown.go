package localcluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shardseq/shardseq/cluster"
)

// DownSpell is what ClusterDown measured, from the kill of the master.
type DownSpell struct {
	// Master is the node killed; Replica the one promoted by hand.
	Master, Replica string
	// Flagged is when a running node first flagged Master "fail";
	// Promoted when the cluster saw Replica serving its slots.
	Flagged, Promoted time.Duration
	// MastersDown is how many other masters answered cluster_state:fail
	// during the hold: all of them with Config.FullCoverage (a real
	// cluster-wide CLUSTERDOWN), none without.
	MastersDown, OtherMasters int
}

func (d DownSpell) String() string {
	return fmt.Sprintf("%s killed, flagged fail after %v, %s promoted by hand after %v; %d of %d other masters in cluster_state:fail meanwhile",
		d.Master, d.Flagged.Round(time.Millisecond), d.Replica, d.Promoted.Round(time.Millisecond), d.MastersDown, d.OtherMasters)
}

// ClusterDown makes a real spell without a master for one shard: every
// replica of master is set cluster-replica-no-failover yes (CONFIG SET), the
// master is killed -9, and once a running node flags it "fail" the shard
// stays without a master for hold; then its first replica takes over by
// CLUSTER FAILOVER FORCE, the replicas are set back to
// cluster-replica-no-failover no, and the old master is started again (it
// rejoins as a replica) until the cluster is healthy. With
// Config.FullCoverage every other master answers CLUSTERDOWN during the
// hold: the cluster-wide outage a failover causes at Redis's defaults, made
// as long as hold. Without a deadline on ctx it gives up after two minutes.
func (lc *Cluster) ClusterDown(ctx context.Context, master string, hold time.Duration) (DownSpell, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
	}
	d := DownSpell{Master: master}
	replicas, err := lc.ReplicasOf(ctx, master)
	if err != nil {
		return d, err
	}
	if len(replicas) == 0 {
		return d, fmt.Errorf("cluster: %s has no replica to promote", master)
	}
	masters, err := lc.Masters(ctx)
	if err != nil {
		return d, err
	}
	d.Replica = replicas[0]
	noFailover := func(ctx context.Context, v string) error {
		var errs []error
		for _, r := range replicas {
			if err := lc.client(r).ConfigSet(ctx, "cluster-replica-no-failover", v).Err(); err != nil {
				errs = append(errs, fmt.Errorf("cluster: CONFIG SET cluster-replica-no-failover %s on %s: %w", v, r, err))
			}
		}
		return errors.Join(errs...)
	}
	if err := noFailover(ctx, "yes"); err != nil {
		return d, err
	}
	restored := false
	defer func() {
		if !restored {
			// The replicas must not stay unable to fail over after an error.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = noFailover(rctx, "no")
		}
	}()
	t0 := time.Now()
	if err := lc.Kill(master); err != nil {
		return d, err
	}
	if err := poll(ctx, master+" flagged fail", func() error { return lc.flaggedFail(ctx, master) }); err != nil {
		return d, err
	}
	d.Flagged = time.Since(t0)
	// The hold is the fault's intended duration; meanwhile count the masters
	// that refuse (cluster_state:fail), polling until all do or the hold ends.
	end := time.Now().Add(hold)
	down := map[string]bool{}
	for _, m := range masters {
		if m != master {
			d.OtherMasters++
		}
	}
	for time.Now().Before(end) && len(down) < d.OtherMasters {
		for _, m := range masters {
			if m == master || down[m] {
				continue
			}
			if ci, err := lc.client(m).ClusterInfo(ctx).Result(); err == nil && infoMap(ci)["cluster_state"] == "fail" {
				down[m] = true
			}
		}
		wait := time.NewTimer(25 * time.Millisecond)
		select {
		case <-ctx.Done():
			wait.Stop()
			return d, ctx.Err()
		case <-wait.C:
		}
	}
	d.MastersDown = len(down)
	if rest := time.Until(end); rest > 0 {
		t := time.NewTimer(rest)
		select {
		case <-ctx.Done():
			t.Stop()
			return d, ctx.Err()
		case <-t.C:
		}
	}
	if err := lc.FailoverForce(ctx, d.Replica); err != nil {
		return d, err
	}
	if err := lc.WaitPromoted(ctx, master); err != nil {
		return d, err
	}
	d.Promoted = time.Since(t0)
	if err := noFailover(ctx, "no"); err != nil {
		return d, err
	}
	restored = true
	if err := lc.Start(master); err != nil {
		return d, err
	}
	if err := lc.WaitHealthy(ctx); err != nil {
		return d, err
	}
	lc.cfg.logf("cluster: ClusterDown: %s", d)
	return d, nil
}

// flaggedFail returns nil once a running node other than addr flags addr
// "fail" (not only "fail?") in CLUSTER NODES.
func (lc *Cluster) flaggedFail(ctx context.Context, addr string) error {
	for _, n := range lc.running() {
		if n.Addr == addr {
			continue
		}
		text, err := lc.client(n.Addr).ClusterNodes(ctx).Result()
		if err != nil {
			continue
		}
		lines, err := cluster.ParseNodeLines(text)
		if err != nil {
			return err
		}
		for _, l := range lines {
			if l.Addr == addr && l.Has("fail") {
				return nil
			}
		}
	}
	return fmt.Errorf("no running node flags %s fail yet", addr)
}
