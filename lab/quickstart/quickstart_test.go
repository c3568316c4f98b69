//go:build integration

package quickstart_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// Ports of this test's cluster: 7830-7835 (bus ports +10000); the lab
// module's tests use 7800-7849.
const portQuickstart = 7830

const (
	readme = "../../README.md"
	// shards is N of a namespace created on first use by `make run`
	// (the Makefile's SHARDS, the server's default).
	shards = 12
	// smallSeq bounds the sequence numbers of a new namespace's first
	// answers: "the first IDs are a few dozen" (8 x 12 + 11 = 107).
	smallSeq = 8
)

// step is one `$ ...` line of the block and the output shown under it.
type step struct {
	cmd   string
	shown []string
}

// quickStart returns the steps of the first ```sh block under
// "## Quick start", and the section's text.
func quickStart(t *testing.T, doc string) ([]step, string) {
	t.Helper()
	_, sec, ok := strings.Cut(doc, "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no ## Quick start")
	}
	if i := strings.Index(sec, "\n## "); i >= 0 {
		sec = sec[:i]
	}
	_, block, ok := strings.Cut(sec, "```sh\n")
	if !ok {
		t.Fatal("Quick start has no ```sh block")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("Quick start's block is not closed")
	}
	var steps []step
	for _, line := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		if cmd, ok := strings.CutPrefix(line, "$ "); ok {
			steps = append(steps, step{cmd: cmd})
			continue
		}
		if len(steps) == 0 {
			t.Fatalf("Quick start: output %q before any command", line)
		}
		steps[len(steps)-1].shown = append(steps[len(steps)-1].shown, line)
	}
	return steps, sec
}

// curl is a curl command line of the block, as an HTTP request.
type curl struct {
	method, url string
}

// parseCurl reads the curl calls the README may show: curl [-s] [-XPOST |
// -X POST] URL [# comment], the URL maybe in single quotes. Anything else
// fails the test, so that a README change is run, not skipped.
func parseCurl(t *testing.T, cmd, base string) curl {
	t.Helper()
	if i := strings.Index(cmd, " #"); i >= 0 {
		cmd = cmd[:i]
	}
	f := strings.Fields(cmd)
	c := curl{method: http.MethodGet}
	for i := 1; i < len(f); i++ {
		switch a := f[i]; {
		case a == "-s":
		case a == "-X" && i+1 < len(f):
			c.method, i = f[i+1], i+1
		case strings.HasPrefix(a, "-X"):
			c.method = a[2:]
		case strings.HasPrefix(a, "-"):
			t.Fatalf("Quick start: curl option %q: teach the test what it means", a)
		case c.url == "":
			c.url = strings.Trim(a, "'")
		default:
			t.Fatalf("Quick start: %q: two URLs", cmd)
		}
	}
	rest, ok := strings.CutPrefix(c.url, "localhost:8080")
	if !ok {
		t.Fatalf("Quick start: %q: the test expects localhost:8080 (`make run`)", cmd)
	}
	c.url = base + rest
	return c
}

// idAnswer is the answer of POST /v1/ids.
type idAnswer struct {
	Namespace string  `json:"namespace"`
	IDs       []int64 `json:"ids"`
}

// shape is what the README promises of an answer and what must hold both
// for the output it shows and for a real run: the same members of the same
// JSON types, and for IDs the documented pattern.
func shape(t *testing.T, what string, body []byte) (map[string]string, *idAnswer) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%s: not a JSON object: %v: %s", what, err, body)
	}
	kinds := map[string]string{}
	for k, v := range m {
		kinds[k] = fmt.Sprintf("%T", v)
	}
	if _, ok := m["ids"]; !ok {
		return kinds, nil
	}
	var a idAnswer
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&a); err != nil {
		t.Fatalf("%s: %v: %s", what, err, body)
	}
	return kinds, &a
}

// errorer is what pattern needs of a test, so that its negative control
// can count the errors.
type errorer interface {
	Helper()
	Errorf(format string, args ...any)
}

// errCount counts Errorf calls.
type errCount struct{ n int }

func (*errCount) Helper()                 { /* nothing to mark */ }
func (e *errCount) Errorf(string, ...any) { e.n++ }

// TestPatternCanFail is the negative control of pattern: what the README
// showed before (a new namespace starting at 2281), an answer after the
// pause that is not above the ones before, and an ID twice.
func TestPatternCanFail(t *testing.T) {
	ans := func(ids ...int64) *idAnswer { return &idAnswer{Namespace: "orders", IDs: ids} }
	good := []*idAnswer{ans(13, 25, 37, 49, 14), ans(26), ans(400)}
	paused := []bool{false, false, true}
	var e errCount
	pattern(&e, "good", good, paused)
	if e.n != 0 {
		t.Fatalf("pattern refused the documented pattern: %d errors", e.n)
	}
	for name, bad := range map[string][]*idAnswer{
		"a new namespace far from its start": {ans(2281, 2293), ans(26), ans(4000)},
		"not above after the pause":          {ans(13, 25), ans(26), ans(14)},
		"an ID twice":                        {ans(13, 25), ans(25), ans(400)},
	} {
		e = errCount{}
		pattern(&e, name, bad, paused)
		if e.n == 0 {
			t.Errorf("%s: pattern saw nothing wrong", name)
		}
	}
}

// pattern checks a transcript of ID answers (shown or real) against "What
// the numbers look like": a new namespace's first answers, before any
// pause, are small sequence numbers of few shards; an answer asked for a
// second or more after the previous one arrived holds only larger IDs; no
// ID comes twice.
func pattern(t errorer, what string, answers []*idAnswer, pausedBefore []bool) {
	t.Helper()
	seen := map[int64]bool{}
	var highest int64
	paused := false
	for i, a := range answers {
		if a == nil {
			continue
		}
		paused = paused || pausedBefore[i]
		for _, id := range a.IDs {
			if id < 1 || seen[id] {
				t.Errorf("%s: answer %d: ID %d not positive, or twice", what, i+1, id)
			}
			seen[id] = true
			if _, seq := client.Decode(id, shards); !paused && seq > smallSeq {
				t.Errorf("%s: answer %d: ID %d is sequence %d of its shard: a new namespace's first IDs should be a few dozen (sequence at most %d)", what, i+1, id, seq, smallSeq)
			}
		}
		if pausedBefore[i] && slices.Min(a.IDs) <= highest {
			t.Errorf("%s: answer %d, asked for a second after the one before arrived, holds %d, not above the %d before", what, i+1, slices.Min(a.IDs), highest)
		}
		highest = max(highest, slices.Max(a.IDs))
	}
}

// TestQuickStart runs README.md's Quick start against `shardseq serve` on a
// real cluster, and checks that what the README shows has the shape of
// what comes back. It logs the real transcript in the README's format.
func TestQuickStart(t *testing.T) {
	raw, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	steps, section := quickStart(t, string(raw))
	if len(steps) < 3 {
		t.Fatalf("Quick start shows %d commands", len(steps))
	}

	lc := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portQuickstart})
	bin := build(t)
	listen := freeAddr(t)
	serve(t, bin, lc.Addrs(), listen)
	base := "http://" + listen

	hc := &http.Client{Timeout: 10 * time.Second}
	var transcript strings.Builder
	var shownAnswers, realAnswers []*idAnswer
	var pausedBefore []bool
	curls := 0
	for _, st := range steps {
		paused := false
		var out []byte
		ran := false
		for _, part := range strings.Split(st.cmd, ";") {
			part = strings.TrimSpace(part)
			f := strings.Fields(part)
			switch {
			case len(f) == 2 && f[0] == "sleep":
				secs, err := strconv.ParseFloat(f[1], 64)
				if err != nil {
					t.Fatalf("Quick start: %q", part)
				}
				// Not a synchronisation: the pause the README shows, so
				// that the next answer is asked for a window later.
				time.Sleep(time.Duration(secs * float64(time.Second)))
				paused = paused || secs >= 1
			case len(f) > 0 && f[0] == "curl":
				c := parseCurl(t, part, base)
				req, err := http.NewRequest(c.method, c.url, nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", part, err)
				}
				out, err = io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("%s: %d %s", part, resp.StatusCode, out)
				}
				out = bytes.TrimRight(out, "\n")
				ran, curls = true, curls+1
			case part == "make cluster-down" || strings.HasPrefix(part, "make cluster-down "):
				// The test's cluster is stopped when the test ends.
			default:
				t.Fatalf("Quick start: %q: teach the test to run it", part)
			}
		}
		fmt.Fprintf(&transcript, "$ %s\n", st.cmd)
		if !ran {
			continue
		}
		what := "Quick start: " + st.cmd
		realKinds, realIDs := shape(t, what+" (real)", out)
		if len(st.shown) == 0 {
			continue // shown without output: it ran and answered JSON
		}
		fmt.Fprintf(&transcript, "%s\n", out)
		if len(st.shown) != 1 {
			t.Fatalf("%s: shows %d lines of output, the test reads one JSON line", what, len(st.shown))
		}
		shownKinds, shownIDs := shape(t, what+" (shown)", []byte(st.shown[0]))
		if !reflect.DeepEqual(shownKinds, realKinds) {
			t.Errorf("%s: shows members %v, a real run answers %v", what, shownKinds, realKinds)
		}
		if (shownIDs == nil) != (realIDs == nil) {
			t.Fatalf("%s: shown %s, real %s", what, st.shown[0], out)
		}
		if shownIDs != nil {
			if shownIDs.Namespace != realIDs.Namespace || len(shownIDs.IDs) != len(realIDs.IDs) {
				t.Errorf("%s: shows %s, a real run answers %s", what, st.shown[0], out)
			}
			shownAnswers, realAnswers = append(shownAnswers, shownIDs), append(realAnswers, realIDs)
			pausedBefore = append(pausedBefore, paused)
		}
	}
	t.Logf("the Quick start's block from this run:\n%s", transcript.String())
	if curls == 0 || len(realAnswers) < 2 || !slices.Contains(pausedBefore, true) {
		t.Fatalf("Quick start: %d curl calls, %d ID answers shown, a pause %v: the test expects answers before and after a pause", curls, len(realAnswers), pausedBefore)
	}
	pattern(t, "README's Quick start", shownAnswers, pausedBefore)
	pattern(t, "a real run", realAnswers, pausedBefore)

	// "What the numbers look like" quotes the shown IDs: each must be in
	// the block's output.
	shown := map[string]bool{}
	for _, a := range shownAnswers {
		for _, id := range a.IDs {
			shown[strconv.FormatInt(id, 10)] = true
		}
	}
	_, numbers, ok := strings.Cut(string(raw), "\n### What the numbers look like\n")
	if !ok {
		t.Fatal("README.md has no ### What the numbers look like")
	}
	numbers, _, _ = strings.Cut(numbers, "\n- **Gaps**")
	quoted := regexp.MustCompile("`([0-9]+)((?:, [0-9]+)*)`").FindAllStringSubmatch(numbers, -1)
	if len(quoted) == 0 {
		t.Fatal("What the numbers look like quotes no IDs of the Quick start")
	}
	for _, q := range quoted {
		for _, n := range strings.Split(q[1]+q[2], ", ") {
			if n != "1" && !shown[n] { // 1: the default start
				t.Errorf("What the numbers look like quotes %s, which the Quick start does not show", n)
			}
		}
	}

	// The section's decode example, run with the real binary.
	dec := regexp.MustCompile("`bin/shardseq (decode [^`]+)` \\(`([^`]+)`\\)").FindStringSubmatch(section)
	if dec == nil {
		t.Fatal("Quick start shows no `bin/shardseq decode ...` (`...`) example")
	}
	out, err := exec.Command(bin, strings.Fields(dec[1])...).CombinedOutput()
	if got := strings.TrimSpace(string(out)); err != nil || got != dec[2] {
		t.Errorf("shardseq %s: %q %v, README shows %q", dec[1], got, err, dec[2])
	}
}

// build builds the real binary into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shardseq")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/shardseq/shardseq/cmd/shardseq")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serve runs `shardseq serve` as `make run` does (its other settings the
// defaults), until the test ends; the test stops it by PID.
func serve(t *testing.T, bin string, addrs []string, listen string) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--redis", strings.Join(addrs, ","), "--listen", listen,
		"--shards", strconv.Itoa(shards), "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	clustertest.Eventually(t, 60*time.Second, func() error {
		resp, err := http.Get("http://" + listen + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
}
