// Package browser tests the health page of the server in a real headless
// Chromium (chromedp), while a master is killed and started again. It is in
// the lab module so that chromedp never reaches the product's module.
package browser_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/server"
)

// Ports of the browser test's cluster: 7810-7815 (bus ports +10000); the lab
// module's tests use 7800-7849.
const portBrowser = 7810

// chromium finds a Chromium or Chrome binary. Without one the test is
// skipped, except in CI (CI=true), where .ci/run installs Debian's chromium
// and a missing browser is a failure.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("no chromium in PATH, and CI=true: the health page must be tested in a real browser (apt-get install chromium)")
	}
	t.Skip("no chromium in PATH: skipping the browser test of the health page (Debian: apt-get install chromium)")
	return ""
}

// artifacts is where the test keeps its screenshots: $SHARDSEQ_ARTIFACTS,
// or the test's temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("SHARDSEQ_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestHealthPageBrowser loads the health page in headless Chromium, kills
// the master of one shard and watches the page mark that shard unhealthy,
// then restarts the node and watches it recover, all through the page's own
// periodic refresh.
func TestHealthPageBrowser(t *testing.T) {
	bin := chromium(t)
	dir := artifacts(t)
	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portBrowser})
	cl := lc.Dial(cluster.Config{})
	s, err := server.New(server.Config{Cluster: cl, Shards: 6, Client: client.Config{Strict: true},
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		SampleEvery: 250 * time.Millisecond, SampleWindow: 5 * time.Second, PageRefresh: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()

	actx, cancel := chromedp.NewExecAllocator(context.Background(), append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.WindowSize(1366, 900),
		chromedp.UserDataDir(t.TempDir()))...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancel = context.WithTimeout(ctx, 80*time.Second)
	defer cancel()

	// Traffic: bounded bursts of single-ID requests, so every shard's
	// breaker sees its master (strict mode: a reservation per ID).
	h := s.Handler()
	traffic := func(n int) {
		for range n {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1/ids/default", nil))
		}
	}
	traffic(30)

	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", path)
	}
	healthyAttr := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(sel), "data-healthy"))
		if err != nil {
			t.Fatalf("reading %s: %v", sel, err)
		}
		return v.Value
	}
	// waitRow polls the page (refreshed by its own script) until the row
	// says healthy == want, driving traffic meanwhile.
	waitRow := func(sel, want string, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for healthyAttr(sel) != want {
			if time.Now().After(deadline) {
				shot("health-timeout.png")
				t.Fatalf("%s: data-healthy still %q after %v, want %q", sel, healthyAttr(sel), within, want)
			}
			traffic(6)
			time.Sleep(200 * time.Millisecond)
		}
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate(hs.URL+"/"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-shard="default/5"]`)),
	); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	eval := func(js string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	str := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}
	// What the page says besides the shards (issue 20): settings and space
	// used, version and uptime, durations for people, the topology's age.
	checkTexts := func() {
		t.Helper()
		q := func(sel string) string {
			return str(`(document.querySelector('` + sel + `')||{textContent:"(missing)"}).textContent.trim()`)
		}
		if v := q(`[data-settings="default"]`); !regexp.MustCompile(`^N 6 · start \S+ · strict$`).MatchString(v) {
			t.Errorf("settings of default: %q", v)
		}
		if v := q(`[data-used="default"]`); !regexp.MustCompile(`^(0|less than 0\.000001|[0-9.]+)%$`).MatchString(v) {
			t.Errorf("space used of default: %q", v)
		}
		if v := q(`[data-summary="version"]`); v == "" || v == "(missing)" {
			t.Errorf("version: %q", v)
		}
		if v := q(`[data-summary="uptime"]`); !regexp.MustCompile(`^up [0-9.]+ (ms|s|min)`).MatchString(v) {
			t.Errorf("uptime: %q", v)
		}
		// The cluster refreshes its topology every 5 s (cluster.Config's
		// default): the page's "read" age is of the last read, not of the
		// last change.
		if v := q(`[data-summary="topology"]`); !regexp.MustCompile(`^topology read (just now|[0-9.]+ s ago) ·`).MatchString(v) {
			t.Errorf("topology age: %q", v)
		}
		heads := str(`Array.from(document.querySelectorAll('th')).map(e => e.textContent).join('|')`)
		if !strings.Contains(heads, "Rate, last 5 s") || regexp.MustCompile(`\dm\d+s|\d+s\b`).MatchString(heads) {
			t.Errorf("table heads: %q", heads)
		}
		if main := str(`document.getElementById('main').textContent`); strings.Contains(main, "namespacesIDs") {
			t.Error(`"all namespacesIDs" runs together`)
		}
	}
	rows := eval(`document.querySelectorAll('tr[data-shard^="default/"]').length`)
	scrollW, innerW := eval(`document.documentElement.scrollWidth`), eval(`window.innerWidth`)
	if rows != 6 {
		t.Fatalf("page shows %d shard rows of default, want 6", rows)
	}
	if scrollW > innerW {
		t.Errorf("page is %dpx wide in a %dpx window: horizontal scroll", scrollW, innerW)
	}
	for i := range 6 {
		if v := healthyAttr(fmt.Sprintf(`tr[data-shard="default/%d"]`, i)); v != "true" {
			t.Errorf("shard %d: data-healthy %q at start", i, v)
		}
	}
	if title, err := chromedp.Run(ctx, chromedp.Title()); err != nil || title != "shardseq · shard health" {
		t.Errorf("title %q %v", title, err)
	}
	traffic(30)
	time.Sleep(600 * time.Millisecond) // two samples for the sparkline; not a synchronisation
	checkTexts()
	shot("health-ok.png")

	node := shardNode(t, h, 0)
	t.Logf("killing %s, master of shard 0", node)
	lc.Kill(node)
	row := `tr[data-shard="default/0"]`
	// The row's reason and action are read in one evaluation with its
	// health, so a refresh in between cannot mix two states.
	rowState := `(() => { const r = document.querySelector('` + row + `');
		if (!r || r.dataset.healthy !== "false") return "";
		const a = r.querySelector('[data-action]'); return r.querySelector('td.err').textContent.trim() + "|" + (a ? a.textContent : ""); })()`
	var unhealthy string
	for deadline := time.Now().Add(20 * time.Second); unhealthy == ""; {
		if unhealthy = str(rowState); unhealthy != "" {
			break
		}
		if time.Now().After(deadline) {
			shot("health-timeout.png")
			t.Fatalf("%s never shown unhealthy", row)
		}
		traffic(6)
		time.Sleep(200 * time.Millisecond)
	}
	reason, action, _ := strings.Cut(unhealthy, "|")
	if reason == "" || strings.HasPrefix(reason, "—") || strings.TrimSpace(action) == "" {
		t.Errorf("unhealthy shard 0 shows reason %q, action %q", reason, action)
	}
	t.Logf("page shows shard 0 unhealthy: %s", unhealthy)
	shot("health-unhealthy.png")

	// The killed node: down at once (flagged failed), and still down after
	// its replica took over its slots, when the cluster lists it only as a
	// slot-less failed node; not gone from the page.
	nodeState := `(() => { const m = document.querySelector('tr[data-master="` + node + `"]');
		const n = document.querySelector('tr[data-node="` + node + `"]');
		if (!n) return "vanished";
		const a = n.querySelector('td.action').textContent.trim();
		return (m ? "master:" : "ex-master:") + n.dataset.state + ":" + a; })()`
	var seen string
	for deadline := time.Now().Add(30 * time.Second); ; {
		seen = str(nodeState)
		if seen == "vanished" {
			shot("health-vanished.png")
			t.Fatalf("killed node %s vanished from the page", node)
		}
		if strings.HasPrefix(seen, "ex-master:") {
			break
		}
		if time.Now().After(deadline) {
			shot("health-no-failover.png")
			t.Fatalf("no failover of %s seen on the page within 30 s: %s", node, seen)
		}
		traffic(6)
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.HasPrefix(seen, "ex-master:down:") || len(seen) < len("ex-master:down:")+10 {
		t.Errorf("killed node after the failover: %q, want down with an action", seen)
	}
	t.Logf("page shows the killed node after the failover: %s", seen)
	shot("health-node-down.png")

	lc.Start(node)
	waitRow(row, "true", 45*time.Second)
	for i := range 6 { // the other shards of that node too, for the screenshot
		waitRow(fmt.Sprintf(`tr[data-shard="default/%d"]`, i), "true", 20*time.Second)
	}
	status, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.cards .v`)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("page shows shard 0 healthy again; status %q", status)
	shot("health-recovered.png")
}

// shardNode reads the node of shard i of the default namespace from
// GET /v1/shards.
func shardNode(t *testing.T, h http.Handler, i int) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/shards?namespace="+server.DefaultNamespace, nil))
	var body struct {
		Shards []failover.ShardStatus `json:"shards"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || rec.Code != http.StatusOK {
		t.Fatalf("GET /v1/shards: %d %v: %s", rec.Code, err, rec.Body)
	}
	for _, st := range body.Shards {
		if st.Index == i {
			return st.Node
		}
	}
	t.Fatalf("no shard %d in %s", i, rec.Body)
	return ""
}
