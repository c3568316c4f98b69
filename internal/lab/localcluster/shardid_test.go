package localcluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The workaround for valkey-io/valkey#2171 gives a replica its master's
// shard-id, and only when the node refused its nodes.conf.
func TestAlignShardIDs(t *testing.T) {
	conf := strings.Join([]string{
		"aaaa 127.0.0.1:7001@17001,,shard-id=s1 myself,slave bbbb 0 0 3 connected",
		"bbbb 127.0.0.1:7000@17000,,shard-id=s2 master - 0 0 3 connected 0-16383",
		"vars currentEpoch 3 lastVoteEpoch 0",
	}, "\n")
	for _, tc := range []struct {
		name, log string
		want      bool
	}{
		{"refused", "# Unrecoverable error: corrupted cluster config file \"aaaa ...\"\n", true},
		{"not refused", "* Ready to accept connections\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "nodes.conf"), []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "redis.log"), []byte(tc.log), 0o644); err != nil {
				t.Fatal(err)
			}
			if got := alignShardIDs(dir); got != tc.want {
				t.Fatalf("alignShardIDs = %v, want %v", got, tc.want)
			}
			b, _ := os.ReadFile(filepath.Join(dir, "nodes.conf"))
			fixed := strings.Contains(string(b), "shard-id=s2 myself,slave")
			if fixed != tc.want {
				t.Fatalf("nodes.conf after: %s", b)
			}
		})
	}
}
