package cluster

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestConfigValidate(t *testing.T) {
	ok := Config{Addrs: []string{"127.0.0.1:7000"}}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		field string
		c     Config
	}{
		{"Addrs", Config{}},
		{"Addrs", Config{Addrs: []string{"nohost"}}},
		{"Addrs", Config{Addrs: []string{"h:0"}}},
		{"DialTimeout", Config{Addrs: ok.Addrs, DialTimeout: -1}},
		{"ReadTimeout", Config{Addrs: ok.Addrs, ReadTimeout: -time.Second}},
		{"PoolSize", Config{Addrs: ok.Addrs, PoolSize: -2}},
		{"RefreshInterval", Config{Addrs: ok.Addrs, RefreshInterval: -2}},
	} {
		err := tt.c.Validate()
		var ce *ConfigError
		if !errors.As(err, &ce) || !errors.Is(err, ErrInvalidConfig) || ce.Field != tt.field {
			t.Errorf("%+v: err = %v, want *ConfigError for %s", tt.c, err, tt.field)
		}
	}
	if err := (Config{Addrs: ok.Addrs, RefreshInterval: -1}).Validate(); err != nil {
		t.Errorf("RefreshInterval -1 must mean disabled: %v", err)
	}
}

// A CLUSTER NODES reply captured from Redis 7.0.15 just after the master on
// :7101 was killed and its replica :7104 promoted.
const nodesFixture = `a1f0b0c0d0e0f0a1b2c3d4e5f6a7b8c9d0e1f201 127.0.0.1:7100@17100 myself,master - 0 1700000000000 1 connected 0-5460
b2f0b0c0d0e0f0a1b2c3d4e5f6a7b8c9d0e1f202 127.0.0.1:7101@17101 master,fail - 1700000000000 1700000000000 2 disconnected
c3f0b0c0d0e0f0a1b2c3d4e5f6a7b8c9d0e1f203 127.0.0.1:7102@17102 master - 0 1700000000000 3 connected 10923-16383 [16000->-b2f0b0c0d0e0f0a1b2c3d4e5f6a7b8c9d0e1f202]
d4f0b0c0d0e0f0a1b2c3d4e5f6a7b8c9d0e1f204 127.0.0.1:7103@17103 slave a1f0b0c0d0e0f0a1b2c3d4e5f6a7b8c9d0e1f201 0 1700000000000 1 connected
e5f0b0c0d0e0f0a1b2c3d4e5f6a7b8c9d0e1f205 127.0.0.1:7104@17104,host5 master - 0 1700000000000 7 connected 5461-10922
f6f0b0c0d0e0f0a1b2c3d4e5f6a7b8c9d0e1f206 127.0.0.1:7105@17105 slave,fail? c3f0b0c0d0e0f0a1b2c3d4e5f6a7b8c9d0e1f203 0 1700000000000 3 connected
`

func TestMastersFromNodes(t *testing.T) {
	ms, err := mastersFromNodes(nodesFixture)
	if err != nil {
		t.Fatal(err)
	}
	top, err := NewTopology(ms, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !top.Covered() || len(top.Masters) != 3 {
		t.Fatalf("covered %v masters %d: %+v", top.Covered(), len(top.Masters), top.Masters)
	}
	var got []string
	for _, m := range top.Masters {
		got = append(got, fmt.Sprintf("%s %v %v %d", m.Addr, m.Failed, m.Slots, len(m.Replicas)))
	}
	want := []string{
		"127.0.0.1:7100 false [[0 5460]] 1",
		"127.0.0.1:7104 false [[5461 10922]] 0",
		"127.0.0.1:7102 false [[10923 16383]] 1",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
	// A replica only suspected (fail?) can still be promoted: writes wait
	// for it, as CLUSTER SHARDS reports it ("online") and as the scripts
	// count promotable replicas; counting it out made WAIT return before it
	// acknowledged and the check then refuse the write.
	if r := top.Masters[2].Replicas[0]; r.Failed || r.Addr != "127.0.0.1:7105" || r.Master {
		t.Fatalf("pfail replica: %+v; want it not failed", r)
	}
	if _, err := mastersFromNodes("short line\n"); err == nil {
		t.Fatal("malformed line accepted")
	}
}

func TestMastersFromShards(t *testing.T) {
	node := func(id string, port int64, role, health string) redis.Node {
		return redis.Node{ID: id, IP: "127.0.0.1", Endpoint: "127.0.0.1", Port: port, Role: role, Health: health}
	}
	slots := []redis.SlotRange{{Start: 5461, End: 10922}}
	tests := []struct {
		name  string
		shard redis.ClusterShard
		want  string // addr failed replicas, or "" when left out
	}{
		{"master and replica", redis.ClusterShard{Slots: slots, Nodes: []redis.Node{
			node("a", 7101, "master", "online"), node("b", 7104, "replica", "online")}}, "127.0.0.1:7101 false 1"},
		{"replica listed first", redis.ClusterShard{Slots: slots, Nodes: []redis.Node{
			node("b", 7104, "replica", "online"), node("a", 7101, "master", "online")}}, "127.0.0.1:7101 false 1"},
		{"master failed, not yet replaced", redis.ClusterShard{Slots: slots, Nodes: []redis.Node{
			node("a", 7101, "master", "fail"), node("b", 7104, "replica", "online")}}, "127.0.0.1:7101 true 1"},
		// Valkey 8.0 after a failover: the dead ex-master first, with role master.
		{"promoted replica beside its failed ex-master", redis.ClusterShard{Slots: slots, Nodes: []redis.Node{
			node("a", 7101, "master", "fail"), node("b", 7104, "master", "online")}}, "127.0.0.1:7104 false 0"},
		{"promoted replica first", redis.ClusterShard{Slots: slots, Nodes: []redis.Node{
			node("b", 7104, "master", "online"), node("a", 7101, "master", "fail"), node("c", 7107, "replica", "online")}}, "127.0.0.1:7104 false 1"},
		// Redis 7.0 after a failover: the dead ex-master alone, without slots.
		{"failed ex-master without slots", redis.ClusterShard{Nodes: []redis.Node{node("a", 7101, "master", "fail")}}, ""},
		{"no master", redis.ClusterShard{Slots: slots, Nodes: []redis.Node{node("b", 7104, "replica", "online")}}, ""},
	}
	for _, tc := range tests {
		got := ""
		if ms := mastersFromShards([]redis.ClusterShard{tc.shard}, false); len(ms) == 1 {
			got = fmt.Sprintf("%s %v %d", ms[0].Addr, ms[0].Failed, len(ms[0].Replicas))
		} else if len(ms) > 1 {
			got = fmt.Sprint(ms)
		}
		if got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestIsRedirect(t *testing.T) {
	for _, tt := range []struct {
		err       error
		addr      string
		ask, isRd bool
	}{
		{nil, "", false, false},
		{errors.New("MOVED 3999 127.0.0.1:6381"), "127.0.0.1:6381", false, true}, // go-redis parses text too
		{replyErr(t, "MOVED 3999 127.0.0.1:6381"), "127.0.0.1:6381", false, true},
		{replyErr(t, "ASK 3999 127.0.0.1:6382"), "127.0.0.1:6382", true, true},
		{fmt.Errorf("wrapped: %w", replyErr(t, "MOVED 1 10.0.0.1:7000")), "10.0.0.1:7000", false, true},
		{replyErr(t, "ERR wrong number of arguments"), "", false, false},
		{redis.Nil, "", false, false},
	} {
		addr, ask, ok := IsRedirect(tt.err)
		if addr != tt.addr || ask != tt.ask || ok != tt.isRd {
			t.Errorf("IsRedirect(%v) = %q %v %v, want %q %v %v", tt.err, addr, ask, ok, tt.addr, tt.ask, tt.isRd)
		}
	}
}

func TestIsClusterDown(t *testing.T) {
	for _, msg := range []string{
		"CLUSTERDOWN The cluster is down",
		"TRYAGAIN Multiple keys request during rehashing of slot",
		"LOADING Redis is loading the dataset in memory",
		"READONLY You can't write against a read only replica.",
		"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
	} {
		err := replyErr(t, msg)
		if !IsClusterDown(err) {
			t.Errorf("IsClusterDown(%q) = false", msg)
		}
		if !IsClusterDown(fmt.Errorf("x: %w", err)) {
			t.Errorf("IsClusterDown(wrapped %q) = false", msg)
		}
	}
	for _, err := range []error{nil, errors.New("CLUSTERDOWN The cluster is down"), replyErr(t, "MOVED 1 h:1"), replyErr(t, "ERR x"), redis.Nil} {
		if IsClusterDown(err) {
			t.Errorf("IsClusterDown(%v) = true", err)
		}
	}
}

func TestServerErrorPredicates(t *testing.T) {
	for _, tt := range []struct {
		msg              string
		unknown, noClstr bool
	}{
		{"ERR unknown command 'CLUSTER', with args beginning with: 'SHARDS'", true, false},
		{"ERR unknown subcommand 'SHARDS'. Try CLUSTER HELP.", true, false},
		{"ERR Unknown subcommand or wrong number of arguments for 'SHARDS'. Try CLUSTER HELP.", true, false},
		{"ERR This instance has cluster support disabled", false, true},
		{"ERR wrong number of arguments", false, false},
	} {
		err := fmt.Errorf("wrapped: %w", replyErr(t, tt.msg))
		if got := unknownCommand(err); got != tt.unknown {
			t.Errorf("unknownCommand(%q) = %v", tt.msg, got)
		}
		if got := clusterDisabled(err); got != tt.noClstr {
			t.Errorf("clusterDisabled(%q) = %v", tt.msg, got)
		}
	}
	if unknownCommand(errors.New("ERR unknown command")) || clusterDisabled(errors.New("cluster support disabled")) {
		t.Error("an error that is not a server reply was taken for one")
	}
}

// replyErr returns the error go-redis makes of a server's error reply msg:
// a client whose connection is a pipe to a fake server that answers every
// command with -msg.
func replyErr(t *testing.T, msg string) error {
	t.Helper()
	srv, conn := net.Pipe()
	go func() {
		defer srv.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := srv.Read(buf); err != nil {
				return
			}
			if _, err := srv.Write([]byte("-" + msg + "\r\n")); err != nil {
				return
			}
		}
	}()
	rc := redis.NewClient(&redis.Options{Addr: "fake:1", Protocol: 2, DisableIdentity: true, MaxRetries: -1, PoolSize: 1,
		Dialer: func(context.Context, string, string) (net.Conn, error) { return conn, nil }})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := rc.Get(ctx, "k").Err()
	if err == nil || err.Error() != msg {
		t.Fatalf("fake server: got %v, want the reply %q", err, msg)
	}
	return err
}

// A killed master that lost its slots to a replica is left out of Masters
// but listed in Down, in both reply formats, so that it can be shown down.
func TestDeadExMasters(t *testing.T) {
	down := deadFromNodes(nodesFixture)
	if len(down) != 1 || down[0].Addr != "127.0.0.1:7101" || !down[0].Failed {
		t.Errorf("CLUSTER NODES: down %+v, want 127.0.0.1:7101", down)
	}
	node := func(id string, port int64, role, health string) redis.Node {
		return redis.Node{ID: id, IP: "127.0.0.1", Endpoint: "127.0.0.1", Port: port, Role: role, Health: health}
	}
	slots := []redis.SlotRange{{Start: 5461, End: 10922}}
	for _, tc := range []struct {
		name  string
		shard redis.ClusterShard
		want  string
	}{
		{"healthy", redis.ClusterShard{Slots: slots, Nodes: []redis.Node{
			node("a", 7101, "master", "online"), node("b", 7104, "replica", "online")}}, "[]"},
		{"master failed, not yet replaced (still a master)", redis.ClusterShard{Slots: slots, Nodes: []redis.Node{
			node("a", 7101, "master", "fail"), node("b", 7104, "replica", "online")}}, "[]"},
		{"Valkey: beside the promoted replica", redis.ClusterShard{Slots: slots, Nodes: []redis.Node{
			node("a", 7101, "master", "fail"), node("b", 7104, "master", "online")}}, "[127.0.0.1:7101]"},
		{"Redis 7: alone without slots", redis.ClusterShard{Nodes: []redis.Node{node("a", 7101, "master", "fail")}}, "[127.0.0.1:7101]"},
		{"failed replica (a master's, not down here)", redis.ClusterShard{Slots: slots, Nodes: []redis.Node{
			node("a", 7101, "master", "online"), node("b", 7104, "replica", "fail")}}, "[]"},
	} {
		shards := []redis.ClusterShard{tc.shard}
		var addrs []string
		for _, n := range deadFromShards(shards, mastersFromShards(shards, false), false) {
			addrs = append(addrs, n.Addr)
		}
		if got := fmt.Sprint(addrs); got != tc.want && !(tc.want == "[]" && len(addrs) == 0) {
			t.Errorf("%s: down %s, want %s", tc.name, got, tc.want)
		}
	}
}
