package server

import (
	"bytes"
	"crypto/rand"
	"embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/internal/human"
	"github.com/shardseq/shardseq/internal/version"
)

//go:embed templates/*.html
var templateFS embed.FS

// The page stays small with any number of namespaces: a summary first,
// then at most pageRows namespaces per page (those with unhealthy shards
// first), and shard tables only of the namespace picked (?namespace=), of
// at most maxPageNamespaces namespaces with unhealthy shards, or of every
// namespace when there are no more than maxPageNamespaces.
const (
	maxPageNamespaces = 8
	pageRows          = 50
)

// maxErrorShown bounds a shard's last error on the page; the whole text is
// in its tooltip and in /v1/shards.
const maxErrorShown = 240

var pageTemplate = template.Must(template.New("page.html").Funcs(template.FuncMap{
	"num":     formatNum,
	"slots":   formatSlots,
	"rate":    formatRate,
	"ago":     formatAgo,
	"dur":     formatDur,
	"percent": human.Percent,
	"plural": func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	},
	"ms":       func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) },
	"short":    func(id string) string { return id[:min(8, len(id))] },
	"secs":     func(ms int64) string { return strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64) },
	"add":      func(a, b int) int { return a + b },
	"actSlots": func() string { return actSlots },
	"action":   formatAction,
	"trunc": func(s string) string {
		if len(s) <= maxErrorShown {
			return s
		}
		return strings.ToValidUTF8(s[:maxErrorShown], "") + "…"
	},
}).ParseFS(templateFS, "templates/*.html"))

type pageData struct {
	Nonce       string
	Now         time.Time
	RefreshMs   int64
	Healthy     int
	Total       int
	Status      string // ok, degraded, down
	Cluster     clusterJSON
	Open        int      // namespaces open
	Degraded    int      // namespaces with some shards unhealthy
	Down        int      // namespaces with no healthy shard
	Breakers    []stateN // shards by breaker state
	Namespaces  []nsView // the rows of this page
	Page        int      // from 1
	Pages       int
	First       int      // number of the first row shown, from 1
	Tables      []nsView // namespaces whose shard tables are shown
	Selected    string
	Missing     bool // Selected is not open
	Hidden      int  // namespaces whose tables are not shown
	SampleEvery time.Duration
	Window      time.Duration
	Masters     []masterView // the cluster's masters, with what to do about each
	DownNodes   []downView   // dead ex-masters: down, their slots taken over
	Colocated   []colocJSON  // shards whose keys share a master, at most maxColocShown
	ColocMore   int          // colocated shards not shown
	ReadAt      time.Time    // when the topology was last read (Cluster.UpdatedAt: last changed)
	Version     string       // internal/version
	Uptime      time.Duration
}

// masterView is a master of the cluster table, with the action suggested
// when it or a replica is down, or when it has no replica.
type masterView struct {
	masterJSON
	Action string
}

// downView is a node the cluster still lists, flagged failed, that serves
// no slot any more: a killed master whose replica took over.
type downView struct {
	Addr, ID string
	Action   string
}

// Suggested actions, one per unhealthy state. They say what the system does
// by itself first, then what a person can check.
const (
	actMasterDown  = "master down: its replica should be promoted within node-timeout; if not, check `shardseq cluster status`"
	actNoReplica   = "master down and no replica: its slots stay unserved until it is back; restart the node, then give it a replica"
	actReplicaDown = "replica down: the master has no standby while it is; restart the node (it rejoins as a replica)"
	actExMaster    = "down: a replica took over its slots; restart the node (it rejoins as a replica) or remove it with CLUSTER FORGET"
	actLonely      = "no replica: a failure of this master leaves its slots unserved; add a replica"
	actOpen        = "breaker open: reservations on this shard's master failed; the other shards hand out IDs meanwhile and it is retried after a pause; if it stays open, check `shardseq cluster status`"
	actHalfOpen    = "breaker half-open: trying the master again; healthy after a reservation succeeds"
	actUnhealthy   = "its master is unreachable or the last reservation failed: the other shards hand out IDs meanwhile; if the master is down, its replica should be promoted within node-timeout; if not, check `shardseq cluster status`"
	actSlots       = "slots missing: no master serves some slots, and writes to them fail; check `shardseq cluster status`"
)

// formatAction escapes a suggested action and sets `commands` as code.
func formatAction(a string) template.HTML {
	parts := strings.Split(template.HTMLEscapeString(a), "`")
	var b strings.Builder
	for k, p := range parts {
		if k%2 == 1 && k < len(parts)-1 {
			b.WriteString("<code>" + p + "</code>")
		} else {
			if k%2 == 1 {
				b.WriteString("`")
			}
			b.WriteString(p)
		}
	}
	return template.HTML(b.String())
}

// mastersOf adds the suggested actions to the cluster's masters.
func mastersOf(c clusterJSON) []masterView {
	out := make([]masterView, 0, len(c.Masters))
	for _, m := range c.Masters {
		mv := masterView{masterJSON: m}
		replicaUp := slices.ContainsFunc(m.Replicas, func(r nodeJSON) bool { return !r.Failed })
		switch {
		case m.Failed && replicaUp:
			mv.Action = actMasterDown
		case m.Failed:
			mv.Action = actNoReplica
		case slices.ContainsFunc(m.Replicas, func(r nodeJSON) bool { return r.Failed }):
			mv.Action = actReplicaDown
		case len(m.Replicas) == 0:
			mv.Action = actLonely
		}
		out = append(out, mv)
	}
	return out
}

// downOf is the dead ex-masters of top, as the page shows them.
func downOf(top *cluster.Topology) []downView {
	var out []downView
	for _, n := range top.Down {
		out = append(out, downView{Addr: n.Addr, ID: n.ID, Action: actExMaster})
	}
	return out
}

// maxColocShown bounds the rows of shards whose keys share a master: a
// reshard can affect many shards of many namespaces at once.
const maxColocShown = 8

// colocatedOf lists the open namespaces' shards whose keys share a master,
// at most maxColocShown of them, and how many more there are.
func (s *Server) colocatedOf() (shown []colocJSON, more int) {
	all := s.colocated(s.Namespaces())
	if len(all) > maxColocShown {
		return all[:maxColocShown], len(all) - maxColocShown
	}
	return all, 0
}

// colocAction is what to do about one shard whose keys share a master: the
// page's text and the action of /v1/shards (and so of shardseq status).
func colocAction(name string, co client.Colocation) string {
	return fmt.Sprintf("namespace %s, %s (then every key of the shard is on its own master again). "+
		"IDs are still handed out, but a rewind of this master can now lose the ceiling its copies keep. "+
		"Move a slot with `CLUSTER SETSLOT <slot> IMPORTING`/`MIGRATING`, `MIGRATE` and `CLUSTER SETSLOT <slot> NODE`, "+
		"or undo the reshard with `redis-cli --cluster reshard`; see docs/CORRECTNESS.md", name, co)
}

// stateN is how many shards have their breaker in State.
type stateN struct {
	State string
	N     int
}

type nsView struct {
	Name       string
	Healthy    int
	Total      int
	Issued     uint64
	Growth     float64 // ID space spent per ID handed out (client.Economy.Growth); 0 before any
	OutOfOrder uint64  // IDs handed out from spares during outages
	Rate       float64 // IDs/s over the last minute
	Spark      string  // SVG polyline points
	SparkMax   float64
	HasSamples bool
	Shards     []shardView
	N          int     // the namespace's shard count
	Start      int64   // its first ID
	Strict     bool    // a reservation per ID, no order window
	Used       float64 // fraction of the ID space below the highest ID handed out
	UsedKnown  bool    // an ID was handed out since the namespace opened
}

type shardView struct {
	failover.ShardStatus
	Class  string // ok, warn, bad: the row's colour
	Health string // healthy, unhealthy
	Action string // what to do when unhealthy
}

const sparkW, sparkH = 160.0, 28.0

// nsSum is one open namespace in the page's summary.
type nsSum struct {
	name            string
	e               *nsEntry
	healthy, shards int
}

// pageData gathers what the page shows. The summary is one read of the
// registry; live counters and rates are read only for the namespaces shown.
func (s *Server) pageData(selected string, page int) pageData {
	d := pageData{Now: time.Now(), RefreshMs: s.cfg.PageRefresh.Milliseconds(), Selected: selected, SampleEvery: s.rates.every,
		Window: s.rates.every * time.Duration(s.rates.keep)}
	top := s.cfg.Cluster.Topology()
	d.Cluster, d.DownNodes, d.ReadAt = clusterOf(top), downOf(top), s.cfg.Cluster.ReadAt()
	d.Masters = mastersOf(d.Cluster)
	d.Colocated, d.ColocMore = s.colocatedOf()
	d.Version, d.Uptime = version.Get().Version, time.Since(s.started)
	all := s.summarize(&d)
	if selected != "" {
		k := slices.IndexFunc(all, func(sum nsSum) bool { return sum.name == selected })
		if k < 0 {
			d.Missing = true
			return d
		}
		nv := s.namespaceRow(all[k], true)
		d.Namespaces, d.Tables, d.Page, d.Pages, d.First = []nsView{nv}, []nsView{nv}, 1, 1, 1
		return d
	}
	d.Pages = max((len(all)+pageRows-1)/pageRows, 1)
	d.Page = min(max(page, 1), d.Pages)
	lo := (d.Page - 1) * pageRows
	shown := all[lo:min(lo+pageRows, len(all))]
	d.First = lo + 1
	for _, sum := range shown {
		d.Namespaces = append(d.Namespaces, s.namespaceRow(sum, false))
	}
	// Shard tables: every namespace when there are few, else those with
	// unhealthy shards (they sort first), up to maxPageNamespaces.
	for _, sum := range all {
		switch {
		case len(d.Tables) >= maxPageNamespaces:
			d.Hidden++
		case len(all) <= maxPageNamespaces || sum.healthy < sum.shards:
			d.Tables = append(d.Tables, s.namespaceRow(sum, true))
		default:
			d.Hidden++
		}
	}
	return d
}

// summarize fills the summary of d (shards healthy, namespaces open,
// degraded and down, breakers, status) from one read of the registry, as
// the shard tables show them, and returns the open namespaces, problems
// first: no healthy shard, then fewest healthy; then by name.
func (s *Server) summarize(d *pageData) []nsSum {
	rows, _ := s.reg.List("")
	type count struct{ healthy, total int }
	counts := map[string]*count{}
	states := map[string]int{}
	for _, name := range s.Namespaces() {
		counts[name] = &count{}
	}
	for _, row := range rows {
		c := counts[row.Namespace]
		if c == nil {
			continue // a closing namespace's last reservation may write its row late
		}
		c.total++
		if row.Healthy {
			c.healthy++
		}
		states[row.State]++
	}
	var all []nsSum
	for name, c := range counts {
		e := s.pool.entry(name)
		if e == nil {
			continue // closed meanwhile
		}
		sum := nsSum{name: name, e: e, healthy: c.healthy, shards: c.total}
		all = append(all, sum)
		d.Healthy += sum.healthy
		d.Total += sum.shards
		switch {
		case sum.healthy == 0:
			d.Down++
		case sum.healthy < sum.shards:
			d.Degraded++
		}
	}
	d.Open = len(all)
	for _, state := range breakerStates {
		d.Breakers = append(d.Breakers, stateN{State: state, N: states[state]})
	}
	switch {
	case d.Total > 0 && d.Healthy == d.Total && d.Cluster.Covered && d.Cluster.failed() == 0 && len(d.DownNodes) == 0 && len(d.Colocated) == 0:
		d.Status = "ok"
	case d.Healthy > 0:
		d.Status = "degraded"
	default:
		d.Status = "down"
	}
	slices.SortStableFunc(all, func(a, b nsSum) int {
		pa, pb := float64(a.healthy)/float64(max(a.shards, 1)), float64(b.healthy)/float64(max(b.shards, 1))
		switch {
		case pa < pb:
			return -1
		case pa > pb:
			return 1
		}
		return strings.Compare(a.name, b.name)
	})
	return all
}

// namespaceRow is the row of one namespace, with its shard table if shards.
func (s *Server) namespaceRow(sum nsSum, shards bool) nsView {
	nv := nsView{Name: sum.name, Healthy: sum.healthy, Total: sum.shards, Issued: sum.e.issued.Load()}
	econ := sum.e.c.Economy()
	nv.Growth, nv.OutOfOrder = econ.Growth(), uint64(max(econ.OutOfOrder, 0))
	points := s.rates.rates(sum.name)
	nv.HasSamples = len(points) > 0
	nv.Rate = recent(points, s.rates.every, time.Minute)
	nv.Spark, nv.SparkMax = sparkline(points, s.rates.keep-1)
	nv.N, nv.Start, nv.Strict = sum.e.c.ShardCount(), sum.e.c.Start(), sum.e.c.Strict()
	_, nv.UsedKnown = sum.e.head.leftRatio()
	nv.Used = sum.e.head.usedFraction()
	if shards {
		nv.Shards, nv.Healthy, nv.Total = shardViews(sum.e.c.Shards())
	}
	return nv
}

// shardViews turns shard rows into the page's, and counts the healthy ones.
func shardViews(rows []failover.ShardStatus) (out []shardView, healthy, total int) {
	for _, st := range rows {
		sv := shardView{ShardStatus: st, Class: "ok", Health: "healthy"}
		switch {
		case !st.Healthy && st.State == "closed":
			sv.Class, sv.Health, sv.Action = "warn", "unhealthy", actUnhealthy
		case !st.Healthy && st.State == "half-open":
			sv.Class, sv.Health, sv.Action = "bad", "unhealthy", actHalfOpen
		case !st.Healthy:
			sv.Class, sv.Health, sv.Action = "bad", "unhealthy", actOpen
		}
		out = append(out, sv)
		total++
		if st.Healthy {
			healthy++
		}
	}
	return out, healthy, total
}

// sparkline returns the points of an SVG polyline of the rates scaled to
// sparkW x sparkH, right-aligned on a window of slots points, and the
// largest rate.
func sparkline(points []ratePoint, slots int) (string, float64) {
	if len(points) == 0 {
		return "", 0
	}
	hi := 0.0
	for _, p := range points {
		hi = math.Max(hi, p.PerSec)
	}
	slots = max(slots, len(points), 2)
	var b strings.Builder
	for k, p := range points {
		x := sparkW * float64(slots-len(points)+k) / float64(slots-1)
		y := sparkH - 1
		if hi > 0 {
			y = 1 + (sparkH-2)*(1-p.PerSec/hi)
		}
		if k > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%.1f,%.1f", x, y)
	}
	return b.String(), hi
}

func formatSlots(rs [][2]int) string {
	if len(rs) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		if r[0] == r[1] {
			parts = append(parts, strconv.Itoa(r[0]))
		} else {
			parts = append(parts, strconv.Itoa(r[0])+"-"+strconv.Itoa(r[1]))
		}
	}
	if len(parts) > 4 {
		parts = append(slices.Clip(parts[:3]), fmt.Sprintf("+%d ranges", len(parts)-3))
	}
	return strings.Join(parts, ", ")
}

// formatNum writes an integer (uint64, int64 or int) with thin thousands
// separators, so that IDs, counts and block sizes read alike.
func formatNum(v any) string {
	var s string
	switch n := v.(type) {
	case uint64:
		s = strconv.FormatUint(n, 10)
	case int64:
		s = strconv.FormatInt(n, 10)
	case int:
		s = strconv.Itoa(n)
	default:
		s = fmt.Sprint(v)
	}
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	if len(s) <= 3 {
		return sign + s
	}
	var b strings.Builder
	pre := len(s) % 3
	if pre > 0 {
		b.WriteString(s[:pre])
	}
	for k := pre; k < len(s); k += 3 {
		if b.Len() > 0 {
			b.WriteString("\u202f")
		}
		b.WriteString(s[k : k+3])
	}
	return sign + b.String()
}

func formatRate(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'f', 1, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(v/1e3, 'f', 0, 64) + "k"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'f', 1, 64) + "k"
	case v >= 10 || v == 0:
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return strconv.FormatFloat(v, 'f', 1, 64)
}

func formatAgo(t time.Time) string {
	if t.IsZero() || t.Unix() <= 0 {
		return "never"
	}
	d := time.Since(t)
	switch {
	case d < time.Second:
		return "just now"
	case d < 48*time.Hour:
		return formatDur(d.Truncate(time.Second)) + " ago"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// formatDur writes a duration for people: "250 ms", "5 s", "2.5 s",
// "10 min", "4 min 30 s", "3 h 5 min", "2 d 3 h". Two units at most: the
// page shows ages and windows, not timings.
func formatDur(d time.Duration) string {
	unit := func(v int64, u string) string { return strconv.FormatInt(v, 10) + " " + u }
	two := func(hi int64, hu string, lo int64, lu string) string {
		if lo == 0 {
			return unit(hi, hu)
		}
		return unit(hi, hu) + " " + unit(lo, lu)
	}
	switch {
	case d < 0:
		return "-" + formatDur(-d)
	case d < time.Second:
		return unit(d.Milliseconds(), "ms")
	case d < time.Minute:
		return strconv.FormatFloat(d.Round(100*time.Millisecond).Seconds(), 'f', -1, 64) + " s"
	case d < time.Hour:
		s := int64(d.Round(time.Second) / time.Second)
		return two(s/60, "min", s%60, "s")
	case d < 48*time.Hour:
		m := int64(d.Round(time.Minute) / time.Minute)
		return two(m/60, "h", m%60, "min")
	}
	h := int64(d.Round(time.Hour) / time.Hour)
	return two(h/24, "d", h%24, "h")
}

// handleUI serves the shard-health page, or with ?fragment=1 only its
// <main> part, which the page's script fetches every few seconds.
func (s *Server) handleUI(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	selected := q.Get("namespace")
	if selected != "" && !client.ValidNamespace(selected) {
		writeError(w, errBadNamespace)
		return
	}
	page := 1
	if q.Has("page") {
		n, ok := parsePositive(q.Get("page"), math.MaxInt32)
		if !ok {
			writeParamError(w, &paramError{"page must be an integer from 1 (past the last page: the last)"})
			return
		}
		page = n
	}
	var nonceBytes [16]byte
	_, _ = rand.Read(nonceBytes[:])
	d := s.pageData(selected, page)
	d.Nonce = base64.StdEncoding.EncodeToString(nonceBytes[:])
	name := "page.html"
	if q.Get("fragment") == "1" {
		name = "main"
	}
	var buf bytes.Buffer
	if err := pageTemplate.ExecuteTemplate(&buf, name, d); err != nil {
		s.log.Error("rendering the health page", "err", err)
		writeError(w, fmt.Errorf("server: rendering the health page: %w", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'nonce-"+d.Nonce+"'; script-src 'nonce-"+d.Nonce+
		"'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(buf.Bytes())
	}
}
