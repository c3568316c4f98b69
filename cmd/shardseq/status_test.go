package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/shardseq/shardseq/client"
)

// FuzzStatusOutput: whatever a server answers, status prints one line per
// shard and never panics.
func FuzzStatusOutput(f *testing.F) {
	f.Add(`{"shards":[{"namespace":"a","index":0,"node":"n:1","state":"open","healthy":false,"last_error":"x\ny\tz"}],"cluster":{"masters":[{"addr":"n:1","slots":[[0,5]]}]}}`)
	f.Add(`{"shards":[{"last_error":"` + strings.Repeat("é", 200) + `"}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		var st statusResponse
		if json.Unmarshal([]byte(body), &st) != nil {
			return
		}
		var out bytes.Buffer
		printStatus(&out, st, "", len(body)%2 == 0)
		table := out.String()[strings.Index(out.String(), "NAMESPACE"):]
		if n := strings.Count(table, "\n"); n != len(st.Shards)+1 {
			t.Fatalf("%d shards printed on %d lines:\n%s", len(st.Shards), n, table)
		}
	})
}

func TestStatusUsage(t *testing.T) {
	if _, stderr, code := run(t, nil, "status", "--server", "ftp://x"); code != 2 || !strings.Contains(stderr, "want http://host:port") {
		t.Errorf("bad URL: %d %q", code, stderr)
	}
	for _, srv := range []string{"http://127.0.0.1:1", "127.0.0.1:1"} {
		_, stderr, code := run(t, nil, "status", "--server", srv)
		if code != 1 || !strings.Contains(stderr, "connection refused") || !strings.Contains(stderr, "no answer from http://127.0.0.1:1/v1/shards") ||
			!strings.Contains(stderr, "is 'shardseq serve' running there?") {
			t.Errorf("no server at %s: %d %q", srv, code, stderr)
		}
	}
}

// TestStatusSummary: the summary names the namespace asked about, counts
// in the singular, and --wide keeps a long error whole.
func TestStatusSummary(t *testing.T) {
	long := strings.Repeat("x", 100)
	st := statusResponse{Namespaces: 1, Healthy: 3, Total: 4, Shards: []client.ShardStatus{{Namespace: "n8", LastError: long}}}
	for _, tc := range []struct {
		ns   string
		wide bool
		want []string
	}{
		{"", false, []string{"shards: 3 of 4 healthy in 1 namespace\n", strings.Repeat("x", 69) + "…"}},
		{"n8", true, []string{"shards: 3 of 4 healthy in namespace n8 (1 open on the server)", long}},
	} {
		var out bytes.Buffer
		printStatus(&out, st, tc.ns, tc.wide)
		for _, w := range tc.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("ns %q wide %v: output lacks %q:\n%s", tc.ns, tc.wide, w, out.String())
			}
		}
	}
}
