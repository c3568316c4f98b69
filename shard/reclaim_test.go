package shard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

const portReclaim = 7950

// TestZombieClaimDoesNotFenceForGood (issue 19, item 4): the counter's
// master is killed (kill -9), its replica R is promoted and the live client
// restores the counter there (copies claimed at epoch E for R). Then a
// zombie claims both copies at E+1 for its own identity, and raises them, and
// never restores (what an old master restarted behind a blocked bus port
// does when a stale client reserves there: the claim is ceiling.lua's own,
// run here with the zombie's identity; its restore fails for want of a
// replica, so the counter on R is untouched). R's counter keeps its history
// and never fences again, so before the fix every raise was refused for
// good. Now the refused history restores itself above the claim: its next
// block starts above everything the zombie confirmed, and the copies belong
// to R again. The negative control switches that restore off: the shard
// stays fenced.
func TestZombieClaimDoesNotFenceForGood(t *testing.T) {
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portReclaim})
	cl := lc.Dial(cluster.Config{})
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		return c
	}

	// Two shards (the control and the fixed one), each with its counter on
	// one master and a ceiling copy on each of the other two.
	keys, shards, handed := twoShards(t, cl, "reclaim", ctx)

	// kill -9 the counters' master; its replica R is promoted, and the live
	// client restores each counter on R (epoch E, owner R).
	old := lc.KillMaster(keys[0][0])
	lc.WaitPromoted(old, 30*time.Second)
	lc.Start(old) // it rejoins as R's replica, so R's writes can be confirmed
	lc.WaitHealthy(30 * time.Second)
	for _, s := range shards {
		clustertest.Eventually(t, 20*time.Second, func() error {
			b, err := s.Reserve(ctx(), 100, 0)
			if err == nil {
				handed = max(handed, b.Hi)
			}
			return err
		})
		// The restore is what the promotion must cause: the counter's
		// epoch moved past the first history's (1). (FenceCount can miss
		// it: a restore written on R before R's replica resynced fails its
		// acknowledgement, and the next reservation finds it done.)
		if e, err := cl.ClusterClient().HGet(ctx(), s.Key, "epoch").Int64(); err != nil || e < 2 {
			t.Fatalf("%s: the promotion did not fence the counter (epoch %d, %v)", s.Key, e, err)
		}
	}

	// The zombie's claim, for an identity that is not R's, one epoch above
	// the copies', then a raise well above anything R confirmed.
	zombieV := handed + 1<<24
	for _, s := range shards {
		reps, errs := s.onCopies(ctx(), ceilingArgs{Op: ceilRead})
		e := int64(0)
		for c, r := range reps {
			if errs[c] != nil {
				t.Fatalf("read %s: %v", s.CeilingKeys[c], errs[c])
			}
			e = max(e, r.Epoch)
		}
		for _, a := range []ceilingArgs{{Op: ceilClaim, Epoch: e + 1, Expect: "zombie-identity"}, {Op: ceilRaise, Epoch: e + 1, Value: zombieV}} {
			reps, errs := s.onCopies(ctx(), a)
			for c, r := range reps {
				if errs[c] != nil || r.Stale {
					t.Fatalf("zombie %s on %s: %+v %v", a.Op, s.CeilingKeys[c], r, errs[c])
				}
			}
		}
	}
	// A block large enough to need a raise of the ceiling.
	const big = 1 << 22

	t.Run("NegativeControl", func(t *testing.T) {
		noReclaim.Store(true)
		defer noReclaim.Store(false)
		s := shards[0]
		for range 3 {
			if b, err := s.Reserve(ctx(), big, 0); !errors.Is(err, ErrFenced) {
				t.Fatalf("without the restore above a foreign claim: block %d..%d, err %v; want ErrFenced", b.Lo, b.Hi, err)
			}
		}
	})
	for i, s := range shards {
		t.Run("Recovers"+strconv.Itoa(i), func(t *testing.T) {
			b, err := s.Reserve(ctx(), big, 0)
			if err != nil {
				t.Fatalf("the live history after a zombie's claim: %v", err)
			}
			if b.Lo <= zombieV {
				t.Fatalf("block %d..%d starts at or below %d, which the zombie's history confirmed", b.Lo, b.Hi, zombieV)
			}
			reps, errs := s.onCopies(ctx(), ceilingArgs{Op: ceilRead})
			for c, r := range reps {
				if errs[c] != nil || r.Owner == "zombie-identity" || r.V < b.Hi {
					t.Fatalf("copy %s after the restore: %+v %v", s.CeilingKeys[c], r, errs[c])
				}
			}
			// And it keeps serving with no further restore.
			fences := s.FenceCount.Load()
			if _, err := s.Reserve(ctx(), big, 0); err != nil || s.FenceCount.Load() != fences {
				t.Fatalf("next reservation: %v (fences %d -> %d)", err, fences, s.FenceCount.Load())
			}
		})
	}
}

// keysOnMasters returns n sets of keys {counter, copy 0, copy 1}, each on
// three distinct masters, the counters all on one master.
func keysOnMasters(t *testing.T, cl *cluster.Cluster, n int) [][]string {
	t.Helper()
	topo := cl.Topology()
	masterOf := func(key string) string {
		m, ok := topo.MasterForSlot(cluster.Slot(key))
		if !ok {
			t.Fatalf("no master for %s", key)
		}
		return m.Addr
	}
	var byMaster = map[string][]string{}
	for k := 0; len(byMaster) < 3 || minLen(byMaster) < 3*n; k++ {
		key := fmt.Sprintf("shardseq:{reclaim%d}:k", k)
		m := masterOf(key)
		byMaster[m] = append(byMaster[m], key)
	}
	var masters []string
	for m := range byMaster {
		masters = append(masters, m)
	}
	out := make([][]string, n)
	for i := range out {
		out[i] = []string{byMaster[masters[0]][i], byMaster[masters[1]][i], byMaster[masters[2]][i]}
	}
	return out
}

func minLen(m map[string][]string) int {
	n := -1
	for _, v := range m {
		if n < 0 || len(v) < n {
			n = len(v)
		}
	}
	return n
}

// portZombie: a cluster of 9 nodes (3 masters, 2 replicas each), 7990-7998.
const portZombie = 7990

// stalePin is the router of a client whose topology predates a failover:
// the counter key still goes to the old master (and its listed replicas),
// every other key where the live cluster sends it.
type stalePin struct {
	*cluster.Cluster
	key  string
	old  cluster.Master
	node *redis.Client // to old.Addr
}

func (p stalePin) MasterForKey(key string) (cluster.Master, *redis.Client, error) {
	if key == p.key {
		return p.old, p.node, nil
	}
	return p.Cluster.MasterForKey(key)
}

// TestZombieClaimDoesNotFenceForGoodRealZombie (issue 19, item 4) is
// TestZombieClaimDoesNotFenceForGood with a real zombie. The counters'
// master M is killed (kill -9) after a save, its replica R is promoted
// (CLUSTER FAILOVER FORCE) and the live client restores each counter there
// (copies claimed at epoch E for R, confirmed by M's other replica, which
// follows R). M is then started again from its files with its cluster bus
// cut both ways (data ports open): it has no news of the failover and
// believes it is still master. Redis (clusterUpdateState) lets it serve
// from CLUSTER_WRITABLE_DELAY (2 s) after start until the other masters
// are PFAIL in its view (node-timeout, 15 s here, after its first ping)
// and it finds itself in a minority; the test polls CLUSTER INFO until M
// answers cluster_state:ok. A client with the old topology then reserves
// on M: the counter's history changed (M's identity is new after a start),
// so it claims both copies at E+1 for M's identity, and M's restore is
// never confirmed (its listed replicas follow R). After the bus is healed
// and M is demoted, R's counter still has R's identity and never fences
// again; its raises are refused by the claim for M. With reclaim the live
// client restores above the claim and serves above everything handed out;
// the negative control (reclaim off) is fenced on every attempt.
func TestZombieClaimDoesNotFenceForGoodRealZombie(t *testing.T) {
	const nodeTimeout = 15 * time.Second // Redis's default: a zombie window of about 13 s
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 2, BasePort: portZombie,
		NodeTimeout: nodeTimeout, Partitions: true, Persistence: localcluster.PersistRDB})
	cl := lc.Dial(cluster.Config{})
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		return c
	}
	t0 := time.Now()
	at := func() string { return time.Since(t0).Round(10 * time.Millisecond).String() }

	keys, shards, handed := twoShards(t, cl, "zombie", ctx)

	// The stale client's view of M, taken before the failover.
	m := lc.MasterOf(keys[0][0])
	old, ok := cl.Topology().MasterForSlot(cluster.Slot(keys[0][0]))
	if !ok || old.Addr != m || len(old.Replicas) != 2 {
		t.Fatalf("master of %s: %+v (want %s with 2 replicas)", keys[0][0], old, m)
	}
	reps := lc.ReplicasOf(m)
	r := reps[0]
	lc.Save(m) // M's files hold the counters as they are now
	lc.Kill(m)
	lc.FailoverForce(r)
	lc.WaitPromoted(m, 30*time.Second)
	if got := lc.MasterOf(keys[0][0]); got != r {
		t.Fatalf("promoted %s, want %s", got, r)
	}
	t.Logf("%s: killed M %s, promoted R %s (replicas %v)", at(), m, r, reps)
	rID := identity(t, cl, r)
	for _, s := range shards {
		clustertest.Eventually(t, 30*time.Second, func() error {
			b, err := s.Reserve(ctx(), 100, 0)
			if err == nil {
				handed = max(handed, b.Hi)
			}
			return err
		})
	}
	epochE := make([]int64, len(shards))
	for i, s := range shards {
		for c, cr := range readCopies(t, s) {
			if cr.Owner != rID {
				t.Fatalf("%s after the restore on R: owner %q, want R's %q", s.CeilingKeys[c], cr.Owner, rID)
			}
			epochE[i] = max(epochE[i], cr.Epoch)
		}
	}
	t.Logf("%s: counters restored on R (identity %s), copies at epochs %v; handed out up to %d", at(), rID, epochE, handed)

	// M restarts from its files with its cluster bus cut off from every
	// node; the stale client reserves there as soon as M serves.
	var others []string
	for _, a := range lc.Addrs() {
		if a != m {
			others = append(others, a)
		}
	}
	lc.PartitionBus(m, others...)
	lc.Start(m)
	started := time.Now()
	since := func() string { return time.Since(started).Round(10 * time.Millisecond).String() }
	// A client of its own: the pool's connections to M died with it.
	mc := redis.NewClient(&redis.Options{Addr: m, MaxRetries: -1})
	t.Cleanup(func() { _ = mc.Close() })
	state := func() string {
		c, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ci, err := mc.ClusterInfo(c).Result()
		if err != nil {
			return "error: " + err.Error()
		}
		role, err := mc.Do(c, "ROLE").Slice()
		if err != nil || len(role) == 0 {
			return fmt.Sprintf("role error: %v", err)
		}
		return fmt.Sprintf("%s role:%v", infoField(ci, "cluster_state"), role[0])
	}
	last := ""
	clustertest.Eventually(t, nodeTimeout, func() error {
		if st := state(); st != last {
			t.Logf("M %s after its start: %s", since(), st)
			last = st
		}
		if last != "ok role:master" {
			return fmt.Errorf("M answers %s", last)
		}
		return nil
	})
	mID := identity(t, cl, m)
	for i, s := range shards {
		zombie := New(Config{Router: stalePin{Cluster: cl, key: s.Key, old: old, node: mc}, Namespace: "zombie",
			Index: 0, Shards: 1, Start: 1, Key: s.Key, CeilingKeys: s.CeilingKeys})
		b, err := zombie.Reserve(ctx(), 100, 0)
		t.Logf("M %s after its start (%s): the stale client's reservation on M: block %d..%d, %v", since(), state(), b.Lo, b.Hi, err)
		if err == nil {
			t.Fatalf("the zombie's restore was confirmed: block %d..%d", b.Lo, b.Hi)
		}
		if seq, err := mc.HGet(ctx(), s.Key, "seq").Int64(); err == nil {
			t.Logf("counter %s on M: seq %d (unconfirmed)", s.Key, seq)
		}
		for c, cr := range readCopies(t, s) {
			if cr.Owner != mID || cr.Epoch != epochE[i]+1 {
				t.Fatalf("%s after the zombie's reservation: owner %q epoch %d, want M's %q at %d", s.CeilingKeys[c], cr.Owner, cr.Epoch, mID, epochE[i]+1)
			}
		}
	}
	t.Logf("copies claimed at epochs %v+1 for M's identity %s", epochE, mID)
	// How long the zombie window lasted (evidence for the timeline).
	clustertest.Eventually(t, 3*nodeTimeout, func() error {
		if st := state(); st != last {
			t.Logf("M %s after its start: %s", since(), st)
			last = st
		}
		if !strings.HasPrefix(last, "fail") {
			return fmt.Errorf("M answers %s", last)
		}
		return nil
	})

	lc.Heal()
	clustertest.Eventually(t, 4*nodeTimeout, func() error {
		if st := state(); st != last {
			t.Logf("M %s after its start (healed): %s", since(), st)
			last = st
		}
		if !strings.Contains(last, "role:slave") {
			return fmt.Errorf("M answers %s", last)
		}
		return nil
	})
	lc.WaitHealthy(4 * nodeTimeout)
	// Until R lists M as its replica and every replica it lists is online
	// and confirms its writes (M, its newest, may still be loading R's
	// data), a refusal would be a missing acknowledgement, not the fence
	// under test.
	rc := cl.Node(r)
	clustertest.Eventually(t, 4*nodeTimeout, func() error {
		id, err := rc.ClusterMyID(ctx()).Result()
		if err != nil {
			return err
		}
		listed, err := rc.Do(ctx(), "CLUSTER", "REPLICAS", id).StringSlice()
		if err != nil {
			return err
		}
		mNode, _ := lc.Local().NodeByAddr(m)
		if !strings.Contains(strings.Join(listed, "\n"), mNode.ID) {
			return fmt.Errorf("R does not list M as its replica yet: %q", listed)
		}
		info, err := rc.Info(ctx(), "replication").Result()
		if err != nil {
			return err
		}
		if c := infoField(info, "connected_slaves"); c != strconv.Itoa(len(listed)) || strings.Count(info, "state=online") != len(listed) {
			return fmt.Errorf("R lists %d replicas, connected_slaves:%s, %d online", len(listed), c, strings.Count(info, "state=online"))
		}
		var wait *redis.Cmd
		if _, err := rc.Pipelined(ctx(), func(p redis.Pipeliner) error {
			p.Set(ctx(), strings.TrimSuffix(keys[0][0], ":k")+":settle", 1, 0)
			wait = p.Do(ctx(), "WAIT", len(listed), 250)
			return nil
		}); err != nil {
			return err
		}
		if n, _ := wait.Int(); n < len(listed) {
			return fmt.Errorf("%d of the %d replicas of R confirmed a write", n, len(listed))
		}
		return nil
	})
	t.Logf("%s: M demoted, cluster healthy, every replica of R confirms", at())

	const big = 1 << 22 // a block that needs a raise of the ceiling
	// reserve retries a reservation refused for want of an acknowledgement:
	// right after M's resync, R's first writes can miss M's within the ack
	// timeout, which is not the fence under test.
	reserve := func(t *testing.T, s *Shard) (Block, error) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			b, err := s.Reserve(ctx(), big, 0)
			if !errors.Is(err, ErrNotReplicated) || time.Now().After(deadline) {
				return b, err
			}
			info, _ := cl.Node(r).Info(ctx(), "replication").Result()
			t.Logf("not replicated, again: %v (R: %s)", err, strings.Join(strings.Fields(info), " "))
		}
	}
	t.Run("NegativeControl", func(t *testing.T) {
		noReclaim.Store(true)
		defer noReclaim.Store(false)
		s := shards[0]
		for k := range 3 {
			b, err := reserve(t, s)
			if !errors.Is(err, ErrFenced) {
				t.Fatalf("without the restore above a foreign claim: block %d..%d, err %v; want ErrFenced", b.Lo, b.Hi, err)
			}
			t.Logf("attempt %d: %v", k+1, err)
		}
	})
	for i, s := range shards {
		t.Run("Recovers"+strconv.Itoa(i), func(t *testing.T) {
			b, err := reserve(t, s)
			if err != nil {
				t.Fatalf("the live history after a zombie's claim: %v", err)
			}
			if b.Lo <= handed || b.Node != r {
				t.Fatalf("block %d..%d on %s; want above %d on R %s", b.Lo, b.Hi, b.Node, handed, r)
			}
			// Only a restore claims the copies again, for R's identity
			// above the zombie's epoch.
			for c, cr := range readCopies(t, s) {
				if cr.Owner != rID || cr.Epoch <= epochE[i]+1 || cr.V < b.Hi {
					t.Fatalf("copy %s after the restore: %+v", s.CeilingKeys[c], cr)
				}
			}
			t.Logf("block %d..%d on R (handed out before: up to %d; restores %d)", b.Lo, b.Hi, handed, s.FenceCount.Load())
			fences := s.FenceCount.Load()
			if _, err := reserve(t, s); err != nil || s.FenceCount.Load() != fences {
				t.Fatalf("next reservation: %v (fences %d -> %d)", err, fences, s.FenceCount.Load())
			}
		})
	}
}

// identity is the node's identity as the scripts see it (prelude.lua).
func identity(t *testing.T, cl *cluster.Cluster, addr string) string {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	info, err := cl.Node(addr).Info(c, "server", "replication").Result()
	if err != nil {
		t.Fatalf("INFO %s: %v", addr, err)
	}
	return infoField(info, "master_replid") + "-" + infoField(info, "run_id")
}

func infoField(info, name string) string {
	for _, l := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), name+":"); ok {
			return v
		}
	}
	return ""
}

// readCopies reads every ceiling copy of s, failing the test on an error.
func readCopies(t *testing.T, s *Shard) []ceilingReply {
	t.Helper()
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	reps, errs := s.onCopies(c, ceilingArgs{Op: ceilRead})
	for c, err := range errs {
		if err != nil {
			t.Fatalf("read %s: %v", s.CeilingKeys[c], err)
		}
	}
	return reps
}

// twoShards creates two one-shard namespaces' shards of ns (the control and
// the defended one), each with its counter on one master and a ceiling copy
// on each of the other two, and reserves 100 IDs on each; handed is the
// highest sequence number handed out.
func twoShards(t *testing.T, cl *cluster.Cluster, ns string, ctx func() context.Context) (keys [][]string, shards []*Shard, handed int64) {
	t.Helper()
	keys = keysOnMasters(t, cl, 2)
	shards = make([]*Shard, 2)
	for i := range shards {
		shards[i] = New(Config{Router: cl, Namespace: ns, Index: 0, Shards: 1, Start: 1,
			Key: keys[i][0], CeilingKeys: keys[i][1:]})
		if err := shards[i].Create(ctx(), 2000, 0); err != nil {
			t.Fatalf("create: %v", err)
		}
		b, err := shards[i].Reserve(ctx(), 100, 0)
		if err != nil {
			t.Fatalf("reserve: %v", err)
		}
		handed = max(handed, b.Hi)
	}
	return keys, shards, handed
}
