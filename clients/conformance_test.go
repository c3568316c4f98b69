//go:build integration

// Package clients holds the conformance suite of the thin clients (Python
// in clients/python, Java in clients/java) and of the lease API itself: real
// client processes of every language against a real `shardseq serve` on a
// real cluster, through a server restart and a master failover.
package clients

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shardseq/shardseq/internal/lab/clustertest"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
)

// Ports of this package: the cluster 7900-7905 (bus ports +10000), the
// server 7940, and 7941 where nothing listens.
const (
	portCluster = 7900
	portServe   = 7940
	portDown    = 7941
)

const (
	token     = "conformance-token-0123456789"
	window    = time.Second // the server's order window (serve's default)
	namespace = "conf"
	gone      = "conf-gone"
)

// javaLate is the Java client's stated tolerance: next() reads the clock
// once every 64 IDs of a lease (ShardseqClient.DEFAULT_CLOCK_CHECK, Go's
// staleCheck) and its refill thread retires a lease at its deadline, so
// after a stall at most 63 IDs of a lease past its time are handed out
// (one thread per driver). Python and the Go lease caller check every ID.
const javaLate = 63

// toolchain reports whether the named programs are installed. A missing
// one skips its language, but fails under CI=true, where .ci/run must have
// installed it.
func toolchain(t *testing.T, lang string, progs ...string) bool {
	t.Helper()
	for _, p := range progs {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s client: %s not found (CI=true: it must be installed)", lang, p)
			}
			t.Logf("%s client skipped: %s not found", lang, p)
			return false
		}
	}
	return true
}

// idRec is an ID a client handed out, with when (its process's monotonic
// clock, microseconds) the call started and returned.
type idRec struct {
	id         int64
	start, end int64
}

// leaseRec is a lease a client received: its IDs, its deadline on the
// process's clock (-1: none) and how many IDs the process had handed out
// when it arrived.
type leaseRec struct {
	first, step, count, deadline int64
	arrived                      int
}

func (l leaseRec) contains(id int64) bool {
	return id >= l.first && id < l.first+l.count*l.step && (id-l.first)%l.step == 0
}

// proc is one client: a process of a driver speaking the protocol of
// clients/python/tests/conformance_driver.py, or the Go lease caller.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	ids    []idRec
	leases []leaseRec
	errs   []string
	bad    []string // lines not in the protocol
	done   chan struct{}
	pauses []int // indexes into ids of the first ID after each SIGSTOP
	late   int   // IDs of a lease the client may hand out after its time (its tolerance)
}

func (p *proc) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ids)
}

func (p *proc) addLease(l leaseRec) {
	p.mu.Lock()
	defer p.mu.Unlock()
	l.arrived = len(p.ids)
	p.leases = append(p.leases, l)
}

func (p *proc) addID(r idRec) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ids = append(p.ids, r)
}

// parse reads the driver's lines until it exits.
func (p *proc) parse(r io.Reader) {
	defer close(p.done)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		nums := func(k int) []int64 {
			if len(f) != k+1 {
				return nil
			}
			out := make([]int64, k)
			for i := range k {
				v, err := strconv.ParseInt(f[i+1], 10, 64)
				if err != nil {
					return nil
				}
				out[i] = v
			}
			return out
		}
		switch f[0] {
		case "L":
			if v := nums(4); v != nil {
				p.addLease(leaseRec{first: v[0], step: v[1], count: v[2], deadline: v[3]})
				continue
			}
		case "I":
			if v := nums(3); v != nil {
				p.addID(idRec{id: v[0], start: v[1], end: v[2]})
				continue
			}
		case "E":
			p.mu.Lock()
			p.errs = append(p.errs, strings.TrimPrefix(sc.Text(), "E "))
			p.mu.Unlock()
			continue
		case "D":
			continue
		}
		p.mu.Lock()
		p.bad = append(p.bad, sc.Text())
		p.mu.Unlock()
	}
}

// start runs a driver; its stdout is parsed, its stderr goes to the test's.
func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	p := &proc{name: name, done: make(chan struct{})}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Stderr = os.Stderr
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	go p.parse(out)
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			_ = p.cmd.Process.Signal(syscall.SIGCONT)
			_ = p.cmd.Process.Kill()
			_ = p.cmd.Wait()
		}
	})
	return p
}

// stop closes the driver's stdin (it stops taking IDs and exits) and waits.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if p.cmd == nil { // the Go caller: its context ends it
		<-p.done
		return
	}
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		t.Errorf("%s did not exit 30s after its stdin closed", p.name)
		_ = p.cmd.Process.Kill()
	}
	if err := p.cmd.Wait(); err != nil {
		t.Errorf("%s: %v", p.name, err)
	}
}

// once runs a driver in mode once and returns its error line ("" if none).
func once(t *testing.T, name string, args ...string) string {
	t.Helper()
	p := start(t, name, args...)
	p.stop(t)
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) == 0 {
		return ""
	}
	return p.errs[0]
}

// pauseGap is how long the slow clients are stopped (SIGSTOP), past their
// leases' time (0.4 s).
const pauseGap = 1500 * time.Millisecond

// check holds one client's record to the lease rules: every ID from a
// lease it had received, asked for before that lease's deadline; order
// within the window; after each pause, IDs from leases received after it
// (all but at most p.late, the client's stated tolerance, as per lease).
func (p *proc) check(t *testing.T, all map[int64]string) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.bad) > 0 {
		t.Errorf("%s: lines outside the protocol: %q", p.name, p.bad[:min(len(p.bad), 5)])
	}
	byShard := map[int64][]leaseRec{} // by first mod step
	for _, l := range p.leases {
		byShard[l.first%l.step] = append(byShard[l.first%l.step], l)
	}
	for _, ls := range byShard {
		sort.Slice(ls, func(i, j int) bool { return ls[i].first < ls[j].first })
	}
	var step int64
	if len(p.leases) > 0 {
		step = p.leases[0].step
	}
	problems := 0
	report := func(format string, args ...any) {
		if problems++; problems <= 10 {
			t.Errorf("%s: "+format, append([]any{p.name}, args...)...)
		}
	}
	leaseOf := func(id int64) (leaseRec, bool) {
		if step == 0 {
			return leaseRec{}, false
		}
		ls := byShard[id%step]
		i := sort.Search(len(ls), func(i int) bool { return ls[i].first > id }) - 1
		if i < 0 || !ls[i].contains(id) {
			return leaseRec{}, false
		}
		return ls[i], true
	}
	// Order: an ID asked for more than the window after another returned
	// is larger. One thread per driver: the IDs are in call order.
	j, top := 0, int64(0)
	late := map[int64]int{} // IDs asked for after their lease's time, by the lease's first ID
	for k, r := range p.ids {
		if prev, dup := all[r.id]; dup {
			report("ID %d handed out again (first by %s)", r.id, prev)
		}
		all[r.id] = p.name
		l, ok := leaseOf(r.id)
		switch {
		case !ok:
			report("ID %d from no lease it received", r.id)
		case l.arrived > k:
			report("ID %d handed out before its lease arrived", r.id)
		case l.deadline >= 0 && r.start >= l.deadline:
			if late[l.first]++; late[l.first] > p.late {
				report("ID %d asked for %dus after its lease's time ended (%d such IDs of the lease; tolerance %d)",
					r.id, r.start-l.deadline, late[l.first], p.late)
			}
		}
		for j < k && p.ids[j].end < r.start-window.Microseconds() {
			top = max(top, p.ids[j].id)
			j++
		}
		if r.id <= top {
			report("ID %d asked for more than %v after %d returned, and not above it", r.id, window, top)
		}
	}
	for _, g := range p.pauses {
		if g >= len(p.ids) {
			report("no ID after the pause")
			continue
		}
		old := 0 // IDs after the pause from leases received before it
		for _, r := range p.ids[g:] {
			// The driver writes an ID's line after taking it: one taken just
			// before SIGSTOP is read after SIGCONT. It was asked for before
			// the pause (1.5 s), so within half of that of the last line
			// read before SIGCONT.
			if g > 0 && r.start < p.ids[g-1].start+pauseGap.Microseconds()/2 {
				continue
			}
			if l, ok := leaseOf(r.id); ok && l.arrived < g {
				old++
			}
		}
		if old > p.late {
			report("%d IDs after the pause (the first %d) from leases received before it, tolerance %d", old, p.ids[g].id, p.late)
		}
	}
}

// serve runs `shardseq serve` on portServe until the test ends or kill.
type serve struct {
	t    *testing.T
	bin  string
	args []string
	cmd  *exec.Cmd
}

func (s *serve) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	s.cmd.Stdout, s.cmd.Stderr = os.Stderr, os.Stderr
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	cmd := s.cmd
	s.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	clustertest.Eventually(s.t, 60*time.Second, func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", portServe))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
}

// restart kills the server (kill -9: whatever it held is a gap) and starts
// a new process on the same port.
func (s *serve) restart() {
	s.t.Helper()
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.start()
}

// call sends one request to the server with tok ("" none) and returns the
// status and the body.
func call(t *testing.T, method, path, tok, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", portServe, path), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// goLeases is the Go caller of the lease API: leases of 200 IDs, handed out
// (10 a millisecond) only while less than valid_ms has passed since the
// request was sent; failed requests retried with backoff.
func goLeases(ctx context.Context, p *proc) {
	defer close(p.done)
	epoch := time.Now()
	us := func(t time.Time) int64 { return t.Sub(epoch).Microseconds() }
	backoff := 50 * time.Millisecond
	hc := &http.Client{Timeout: 5 * time.Second}
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, "POST", fmt.Sprintf("http://127.0.0.1:%d/v1/leases/%s?count=200", portServe, namespace), nil)
		req.Header.Set("Authorization", "Bearer "+token)
		sent := time.Now()
		resp, err := hc.Do(req)
		var l struct {
			First, Step, Count, ValidMS int64
			Limited                     bool
		}
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				err = fmt.Errorf("%d %s", resp.StatusCode, body)
			} else if err = json.Unmarshal(body, &struct {
				First   *int64 `json:"first"`
				Step    *int64 `json:"step"`
				Count   *int64 `json:"count"`
				ValidMS *int64 `json:"valid_ms"`
				Limited *bool  `json:"limited"`
			}{&l.First, &l.Step, &l.Count, &l.ValidMS, &l.Limited}); err == nil && !l.Limited {
				err = errors.New("lease without a time limit from a server with an order window")
			}
		}
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(backoff): // retry with backoff: the server may be restarting
			}
			backoff = min(2*backoff, 2*time.Second)
			continue
		}
		backoff = 50 * time.Millisecond
		deadline := sent.Add(time.Duration(l.ValidMS) * time.Millisecond)
		p.addLease(leaseRec{first: l.First, step: l.Step, count: l.Count, deadline: us(deadline)})
		for k := int64(0); k < l.Count && ctx.Err() == nil; k++ {
			start := time.Now()
			if !start.Before(deadline) {
				break // the rest are gaps
			}
			p.addID(idRec{id: l.First + k*l.Step, start: us(start), end: us(time.Now())})
			if k%10 == 9 {
				time.Sleep(time.Millisecond) // pace: about 10 IDs a millisecond, as the drivers
			}
		}
	}
}

// TestConformance: Go (the lease API), Python and Java clients at once
// against one server on one cluster, through a server restart, a master
// failover and a client paused past its lease's time; then the documented
// errors of each.
func TestConformance(t *testing.T) {
	began := time.Now()
	phase := func(what string) { t.Logf("%5.1fs %s", time.Since(began).Seconds(), what) }
	py := toolchain(t, "Python", "python3")
	java := toolchain(t, "Java", "javac", "java")
	tmp := t.TempDir()

	// The binary, as the integration tests build it; the Java classes.
	bin := filepath.Join(tmp, "shardseq")
	build := exec.Command("go", "build", "-o", bin, "../cmd/shardseq")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	classes := filepath.Join(tmp, "classes")
	if java {
		srcs, _ := filepath.Glob("java/src/main/java/io/shardseq/*.java")
		tests, _ := filepath.Glob("java/src/test/java/io/shardseq/*.java")
		javac := exec.Command("javac", append([]string{"-d", classes}, append(srcs, tests...)...)...)
		if out, err := javac.CombinedOutput(); err != nil {
			t.Fatalf("javac: %v\n%s", err, out)
		}
	}
	pyDriver, _ := filepath.Abs("python/tests/conformance_driver.py")
	pyCmd := func(args ...string) []string { return append([]string{"python3", "-u", pyDriver}, args...) }
	javaCmd := func(args ...string) []string {
		return append([]string{"java", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", classes, "io.shardseq.ConformanceDriver"}, args...)
	}

	phase("built")
	c := clustertest.Start(t, localcluster.Config{Masters: 3, Replicas: 1, BasePort: portCluster})
	tokens := filepath.Join(tmp, "tokens")
	if err := os.WriteFile(tokens, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// No spares (--hold-for 0): while a master fails over, a spare hands out
	// IDs below ones already answered, by design and counted
	// (shardseq_ids_out_of_order_total, TestOrder_OneServerFaults); this
	// suite holds the clients to the order rule without exceptions.
	srv := &serve{t: t, bin: bin, args: []string{"serve", "--redis", strings.Join(c.Addrs(), ","),
		"--listen", fmt.Sprintf("127.0.0.1:%d", portServe), "--shards", "6", "--log-level", "warn",
		"--token-file", tokens, "--create-namespaces", "explicit", "--hold-for", "0"}}
	srv.start()
	for _, r := range []struct {
		method, path string
		want         int
	}{
		{"PUT", "/v1/namespaces/" + namespace, 201},
		{"PUT", "/v1/namespaces/" + gone, 201},
		{"DELETE", "/v1/namespaces/" + gone, 204},
	} {
		if code, body := call(t, r.method, r.path, token, ""); code != r.want {
			t.Fatalf("%s %s: %d %s", r.method, r.path, code, body)
		}
	}

	phase("cluster and server up")
	base := fmt.Sprintf("http://127.0.0.1:%d", portServe)
	var procs, slow []*proc
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	goCaller := &proc{name: "go-lease-api", done: make(chan struct{})}
	go goLeases(ctx, goCaller)
	procs = append(procs, goCaller)
	if py {
		procs = append(procs, start(t, "python-run", pyCmd("run", base, namespace, token)...))
		slow = append(slow, start(t, "python-slow", pyCmd("slow", base, namespace, token)...))
	}
	if java {
		jr := start(t, "java-run", javaCmd("run", base, namespace, token)...)
		js := start(t, "java-slow", javaCmd("slow", base, namespace, token)...)
		jr.late, js.late = javaLate, javaLate
		procs = append(procs, jr)
		slow = append(slow, js)
	}
	procs = append(procs, slow...)

	// progress waits until every client handed out n more IDs.
	progress := func(what string, n int) {
		t.Helper()
		from := make([]int, len(procs))
		for i, p := range procs {
			from[i] = p.count()
		}
		clustertest.Eventually(t, 45*time.Second, func() error {
			for i, p := range procs {
				if p.count() < from[i]+n {
					return fmt.Errorf("%s: %s handed out %d IDs since, want %d", what, p.name, p.count()-from[i], n)
				}
			}
			return nil
		})
	}
	progress("start", 500)

	phase("clients running")
	// Paused past the lease's time (0.4 s): nothing from the old lease after
	// (Java: at most javaLate IDs).
	for _, p := range slow {
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(pauseGap) // the pause itself, not a synchronisation
	for _, p := range slow {
		p.mu.Lock()
		p.pauses = append(p.pauses, len(p.ids))
		p.mu.Unlock()
		if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}
	progress("after the pause", 300)

	phase("paused and resumed")
	srv.restart()
	progress("after a server restart", 500)

	phase("server restarted")
	code, body := call(t, "GET", "/v1/shards?namespace="+namespace, token, "")
	var shards struct {
		Shards []struct {
			Key string `json:"key"`
		} `json:"shards"`
	}
	if err := json.Unmarshal(body, &shards); code != 200 || err != nil || len(shards.Shards) == 0 {
		t.Fatalf("GET /v1/shards: %d %v %s", code, err, body)
	}
	old := c.KillMaster(shards.Shards[0].Key)
	c.WaitPromoted(old, 30*time.Second)
	progress("after a master failover", 500)

	phase("master failed over")
	cancel()
	for _, p := range procs {
		p.stop(t)
	}
	all := map[int64]string{}
	total := 0
	for _, p := range procs {
		p.check(t, all)
		total += len(p.ids)
		t.Logf("%s: %d IDs from %d leases; errors: %q", p.name, len(p.ids), len(p.leases), p.errs[:min(len(p.errs), 3)])
	}
	t.Logf("%d IDs in all, no repeat: %v", total, len(all) == total)

	phase("checked")
	// The documented errors, in every language.
	type errCase struct {
		name       string
		args       []string // mode once: server, namespace, token, retry_for
		code       string
		status     string
		minElapsed int // ms
		contains   []string
	}
	down := fmt.Sprintf("http://127.0.0.1:%d", portDown)
	cases := []errCase{
		{"bad token", []string{base, namespace, "wrong-token-0123456789", "5"}, "unauthorized", "401", 0, nil},
		{"deleted namespace", []string{base, gone, token, "5"}, "namespace_deleted", "404", 0, nil},
		{"server down", []string{down, namespace, token, "1.5"}, "unavailable", "0", 1500, []string{down, "failed attempts"}},
	}
	for _, lang := range []struct {
		name string
		on   bool
		cmd  func(...string) []string
	}{{"python", py, pyCmd}, {"java", java, javaCmd}} {
		if !lang.on {
			continue
		}
		for _, ec := range cases {
			line := once(t, lang.name+" "+ec.name, lang.cmd(append([]string{"once"}, ec.args...)...)...)
			f := strings.SplitN(line, " ", 4)
			if len(f) < 4 || f[0] != ec.code || f[1] != ec.status {
				t.Errorf("%s, %s: error %q, want code %s status %s", lang.name, ec.name, line, ec.code, ec.status)
				continue
			}
			if el, _ := strconv.Atoi(f[2]); el < ec.minElapsed || el > ec.minElapsed+5000 {
				t.Errorf("%s, %s: gave up after %dms, want %dms and a little more (retrying meanwhile)", lang.name, ec.name, el, ec.minElapsed)
			}
			if ec.code == "unavailable" {
				// Backoff from 50ms doubling to 2s: a handful of attempts in 1.5s, not a flood.
				var n int
				if _, err := fmt.Sscanf(f[3][strings.Index(f[3], "(")+1:], "%d failed attempts", &n); err != nil || n < 2 || n > 12 {
					t.Errorf("%s, %s: %d attempts (%v) in %q: want 2 to 12", lang.name, ec.name, n, err, f[3])
				}
			}
			for _, s := range ec.contains {
				if !strings.Contains(f[3], s) {
					t.Errorf("%s, %s: message %q does not say %q", lang.name, ec.name, f[3], s)
				}
			}
		}
	}
	for _, r := range []struct {
		path, tok string
		status    int
		code      string
	}{
		{"/v1/leases/" + namespace + "?count=10", "wrong-token-0123456789", 401, "unauthorized"},
		{"/v1/leases/" + gone + "?count=10", token, 404, "namespace_deleted"},
	} {
		status, body := call(t, "POST", r.path, r.tok, "")
		var e struct{ Code string }
		_ = json.Unmarshal(body, &e)
		if status != r.status || e.Code != r.code {
			t.Errorf("go, POST %s: %d %s, want %d %s", r.path, status, body, r.status, r.code)
		}
	}
	phase("errors checked")
}
