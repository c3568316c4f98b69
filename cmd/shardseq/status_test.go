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
	f.Add(`{"shards":[{"index":1}],"colocated":[{"namespace":"a\nb","shard":1,"master":"n:1","keys":["k\t1","k2"],"slots":[3],"move":[4],"action":"x\ny"}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		var st statusResponse
		if json.Unmarshal([]byte(body), &st) != nil {
			return
		}
		var out bytes.Buffer
		printStatus(&out, st, "", len(body)%2 == 0)
		// The summary line, a blank line, the header, a line per shard: a
		// server's text (a namespace, an address, an action) on more lines
		// would shift the table or the lines before it.
		i := strings.Index(out.String(), "\nshards: ")
		if i < 0 {
			t.Fatalf("no summary line:\n%s", out.String())
		}
		if table := out.String()[i+1:]; strings.Count(table, "\n") != len(st.Shards)+3 {
			t.Fatalf("%d shards printed on %d lines:\n%s", len(st.Shards), strings.Count(table, "\n")-3, out.String())
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

// TestStatusColocated: the shards whose keys share a master come after the
// masters, one row each with the slots to move, then the server's action
// whole and on one line; "none" when the server reports none, nothing when
// it does not report them (an older server); the shard table stays last.
func TestStatusColocated(t *testing.T) {
	orders := statusColocation{Namespace: "orders", Shard: 0, Master: "127.0.0.1:7001", Keys: []string{"{a}:c:0", "{b}:c:0:0"},
		Slots: []int{15495, 3300}, Move: []int{3300}, Action: "namespace orders, shard 0: " + strings.Repeat("y", 100) + "\nsee docs"}
	billing := statusColocation{Namespace: "billing", Shard: 12, Master: "127.0.0.1:7002", Keys: []string{"{c}:c:0:0", "{d}:c:0:1"},
		Slots: []int{8, 9}, Move: []int{9}}
	for _, tc := range []struct {
		name  string
		co    []statusColocation
		want  []string
		never []string
	}{
		{"not reported", nil, nil, []string{"colocated"}},
		{"none", []statusColocation{}, []string{"\ncolocated: none (every shard's keys on distinct masters)\nshards: "}, []string{"to do:"}},
		{"two", []statusColocation{orders, billing}, []string{
			"\ncolocated: 2 shards with keys on one master (IDs still handed out; move the slots named)\n",
			"  orders   shard 0   master 127.0.0.1:7001  keys {a}:c:0 (slot 15495), {b}:c:0:0 (slot 3300)  move slot 3300\n",
			"  billing  shard 12  master 127.0.0.1:7002  keys {c}:c:0:0 (slot 8), {d}:c:0:1 (slot 9)       move slot 9\n",
			"  to do: namespace orders, shard 0: " + strings.Repeat("y", 100) + " see docs\nshards: ", // whole, even without --wide
		}, []string{"to do: \n"}},
		{"one", []statusColocation{billing}, []string{"\ncolocated: 1 shard with keys on one master"}, nil},
	} {
		st := statusResponse{Namespaces: 1, Total: 1, Healthy: 1, Shards: []client.ShardStatus{{Namespace: "orders"}}, Colocated: tc.co}
		var out bytes.Buffer
		printStatus(&out, st, "", false)
		got := out.String()
		for _, w := range tc.want {
			if !strings.Contains(got, w) {
				t.Errorf("%s: output lacks %q:\n%s", tc.name, w, got)
			}
		}
		for _, w := range tc.never {
			if strings.Contains(got, w) {
				t.Errorf("%s: output has %q:\n%s", tc.name, w, got)
			}
		}
		if i := strings.Index(got, "NAMESPACE"); i < 0 || strings.Count(got[i:], "\n") != 2 {
			t.Errorf("%s: the shard table is not last:\n%s", tc.name, got)
		}
	}
}

// TestStatusReadsColocated: status decodes the colocated array of
// /v1/shards: [] is none, absent is not reported.
func TestStatusReadsColocated(t *testing.T) {
	for body, want := range map[string]int{`{"colocated":[]}`: 0, `{}`: -1, `{"colocated":null}`: -1,
		`{"colocated":[{"namespace":"a","shard":2,"master":"m:1","keys":["k","l"],"slots":[1,2],"move":[2],"action":"do"}]}`: 1} {
		var st statusResponse
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		got := len(st.Colocated)
		if st.Colocated == nil {
			got = -1
		}
		if got != want {
			t.Errorf("%s: %d colocated (-1: nil), want %d", body, got, want)
		}
		if want == 1 {
			c := st.Colocated[0]
			if c.Namespace != "a" || c.Shard != 2 || c.Master != "m:1" || len(c.Keys) != 2 || len(c.Slots) != 2 || len(c.Move) != 1 || c.Action != "do" {
				t.Errorf("decoded %+v", c)
			}
		}
	}
}
