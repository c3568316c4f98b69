package server

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/shardseq/shardseq/failover"
)

// render executes the page's main part on d, as ?fragment=1 does.
func render(t *testing.T, d pageData) string {
	t.Helper()
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, "page.html", d); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

// A page of made-up data: no cluster needed to check what the page says.
func samplePage(now time.Time) pageData {
	cl := clusterJSON{Covered: true, Generation: 7, UpdatedAt: now.Add(-4 * time.Minute), Masters: []masterJSON{
		{nodeJSON: nodeJSON{"127.0.0.1:7001", "aaaaaaaaaaaa", true}, Replicas: []nodeJSON{{"127.0.0.1:7004", "dddddddd", false}}, Slots: [][2]int{{0, 5460}}},
		{nodeJSON: nodeJSON{"127.0.0.1:7002", "bbbbbbbbbbbb", false}, Replicas: []nodeJSON{{"127.0.0.1:7005", "eeeeeeee", false}}, Slots: [][2]int{{5461, 10922}}},
		{nodeJSON: nodeJSON{"127.0.0.1:7003", "cccccccccccc", false}, Replicas: []nodeJSON{}, Slots: [][2]int{{10923, 16383}}},
	}}
	shards, healthy, total := shardViews([]failover.ShardStatus{
		{Namespace: "orders", Index: 0, Node: "127.0.0.1:7001", State: "open", LastError: "dial tcp: connection refused", LastErrorAt: now, Reservations: 3, LatencyMs: 1.25, BlockSize: 12000},
		{Namespace: "orders", Index: 1, Node: "127.0.0.1:7002", State: "closed", Healthy: true, BlockSize: 1000},
	})
	ns := nsView{Name: "orders", Healthy: healthy, Total: total, Shards: shards, Issued: 1234567,
		N: 2, Start: 1000000, Strict: true, Used: 0.0012345, UsedKnown: true}
	return pageData{Now: now, RefreshMs: 5000, Cluster: cl, Masters: mastersOf(cl),
		DownNodes: []downView{{Addr: "127.0.0.1:7006", ID: "ffffffffffff", Action: actExMaster}},
		ReadAt:    now.Add(-2 * time.Second), Version: "v1.2.3", Uptime: 3*time.Hour + 5*time.Minute,
		SampleEvery: 5 * time.Second, Window: 10 * time.Minute, Open: 1, Namespaces: []nsView{ns}, Tables: []nsView{ns},
		Page: 1, Pages: 1, First: 1, Status: "degraded"}
}

func TestPageShows(t *testing.T) {
	now := time.Now()
	body := render(t, samplePage(now))
	for _, want := range []string{
		// A killed node that lost its slots stays on the page, down, with an action.
		`data-node="127.0.0.1:7006" data-state="down"`,
		"a replica took over its slots; restart the node",
		// A master flagged failed: down, with the action for it.
		`data-node="127.0.0.1:7001" data-state="down"`,
		"master down: its replica should be promoted within node-timeout; if not, check <code>shardseq cluster status</code>",
		// No replica: a warning with its action.
		"no replica: a failure of this master leaves its slots unserved",
		// An open breaker's action in the shard row.
		"breaker open: reservations on this shard",
		// Settings and space used (three significant digits, as the CLI).
		`data-settings="orders">N 2 · start 1` + "\u202f000\u202f000 · strict<",
		`data-used="orders">0.123%<`,
		// Version and uptime.
		`data-summary="version" title="shardseq version">v1.2.3<`, `data-summary="uptime">up 3 h 5 min<`,
		// Durations for people.
		"Rate, last 10 min<", "sampled every 5 s over the last 10 min",
		// Block sizes grouped as IDs are.
		">12\u202f000<", ">1\u202f234\u202f567<",
		// The age of the last read, not of the last change.
		"topology read 2 s ago · generation 7, last changed 4 min ago",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"10m0s", "5s over", "read 4m ago", "`"} {
		if strings.Contains(body, bad) {
			t.Errorf("page has %q", bad)
		}
	}
	// Latency: 1.2 for the shard that reserved, "—" for the one that never did.
	row1 := body[strings.Index(body, `data-shard="orders/1"`):]
	row1 = row1[:strings.Index(row1, "</tr>")]
	if strings.Contains(row1, ">0.0<") || !strings.Contains(row1, `title="no reservation yet">—<`) {
		t.Errorf("latency of a shard that never reserved: %s", row1)
	}
	if strings.Contains(row1, "data-action") {
		t.Errorf("healthy shard with an action: %s", row1)
	}
}

func TestPageTexts(t *testing.T) {
	d := samplePage(time.Now())
	d.Selected = "orders"
	if body := render(t, d); !strings.Contains(body, `<a href="/">all namespaces</a> · IDs issued`) {
		t.Error(`"all namespaces" runs into "IDs issued"`)
	}
	// Ten healthy namespaces, no shard table shown: not "10 more".
	d = samplePage(time.Now())
	d.Tables, d.Hidden, d.Open = nil, 10, 10
	body := render(t, d)
	if strings.Contains(body, "more namespaces") || !strings.Contains(body, "Shards of the 10 namespaces, all healthy: pick one") {
		t.Errorf("hidden note: %s", body[strings.Index(body, `data-summary="hidden"`)-20:])
	}
	d = samplePage(time.Now())
	d.Hidden = 1
	if body := render(t, d); !strings.Contains(body, "Shards of 1 more namespace:") {
		t.Error("hidden note with one table shown and one hidden")
	}
}

func TestFormatDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		250 * time.Millisecond:          "250 ms",
		5 * time.Second:                 "5 s",
		2500 * time.Millisecond:         "2.5 s",
		10 * time.Minute:                "10 min",
		4*time.Minute + 30*time.Second:  "4 min 30 s",
		time.Hour:                       "1 h",
		3*time.Hour + 5*time.Minute:     "3 h 5 min",
		50 * time.Hour:                  "2 d 2 h",
		59*time.Minute + 59*time.Second: "59 min 59 s",
	} {
		if got := formatDur(d); got != want {
			t.Errorf("formatDur(%v) = %q, want %q", d, got, want)
		}
	}
	if got := formatAgo(time.Now().Add(-4 * time.Minute)); got != "4 min ago" {
		t.Errorf("formatAgo: %q", got)
	}
	if got := formatAgo(time.Time{}); got != "never" {
		t.Errorf("formatAgo(zero): %q", got)
	}
}

func TestFormatNum(t *testing.T) {
	if formatNum(int64(-12000)) != "-12\u202f000" || formatNum(1000) != "1\u202f000" || formatNum(uint64(999)) != "999" {
		t.Errorf("formatNum: %q %q", formatNum(int64(-12000)), formatNum(1000))
	}
}

func TestActions(t *testing.T) {
	ms := mastersOf(clusterJSON{Masters: []masterJSON{
		{nodeJSON: nodeJSON{Addr: "a", Failed: true}, Replicas: []nodeJSON{{Addr: "r"}}},
		{nodeJSON: nodeJSON{Addr: "b", Failed: true}, Replicas: []nodeJSON{{Addr: "r", Failed: true}}},
		{nodeJSON: nodeJSON{Addr: "c"}, Replicas: []nodeJSON{{Addr: "r", Failed: true}}},
		{nodeJSON: nodeJSON{Addr: "d"}},
		{nodeJSON: nodeJSON{Addr: "e"}, Replicas: []nodeJSON{{Addr: "r"}}},
	}})
	want := []string{actMasterDown, actNoReplica, actReplicaDown, actLonely, ""}
	for k, m := range ms {
		if m.Action != want[k] {
			t.Errorf("master %s: action %q, want %q", m.Addr, m.Action, want[k])
		}
	}
	sv, _, _ := shardViews([]failover.ShardStatus{{State: "closed", Healthy: true}, {State: "closed"}, {State: "half-open"}, {State: "open"}})
	for k, want := range []string{"", actUnhealthy, actHalfOpen, actOpen} {
		if sv[k].Action != want {
			t.Errorf("shard %d (%s healthy %v): action %q, want %q", k, sv[k].State, sv[k].Healthy, sv[k].Action, want)
		}
	}
}
