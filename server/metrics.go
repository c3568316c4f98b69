package server

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/sony/gobreaker/v2"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/failover"
	"github.com/shardseq/shardseq/internal/version"
)

// Reservation results, the values of the result label of
// shardseq_reservations_total.
const (
	resultOK            = "ok"
	resultNotReplicated = "not_replicated"
	resultTimeout       = "timeout"
	resultError         = "error"
)

// metrics is the server's own Prometheus registry (no global state) and the
// instruments fed by the reservation Observer and the HTTP middleware. The
// per-shard gauges and the counters the shard registry keeps already are
// read at scrape time by shardCollector.
type metrics struct {
	reg *prometheus.Registry

	reservations   *prometheus.CounterVec   // namespace, shard, result
	ackFailures    *prometheus.CounterVec   // namespace, shard
	reserveSeconds *prometheus.HistogramVec // namespace
	httpRequests   *prometheus.CounterVec   // method, route, code
	httpSeconds    *prometheus.HistogramVec // method, route
	rpcRequests    *prometheus.CounterVec   // procedure, code
	evictions      *prometheus.CounterVec   // reason: idle, lru
	closeGaps      prometheus.Counter
	created        prometheus.Counter
	createsLimited prometheus.Counter
	next           failover.Observer // the template's own Observer, if any
}

func newMetrics(s *Server, next failover.Observer) *metrics {
	reg := prometheus.NewRegistry()
	f := promauto.With(reg)
	m := &metrics{reg: reg, next: next}
	m.reservations = f.NewCounterVec(prometheus.CounterOpts{
		Name: "shardseq_reservations_total",
		Help: "Block reservations by shard and result: ok, not_replicated (the replicas did not confirm), timeout (the shard did not answer in time) or error.",
	}, []string{"namespace", "shard", "result"})
	m.ackFailures = f.NewCounterVec(prometheus.CounterOpts{
		Name: "shardseq_replication_ack_failures_total",
		Help: "Reservations discarded because the replicas did not confirm them (WAIT fell short).",
	}, []string{"namespace", "shard"})
	m.reserveSeconds = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "shardseq_reservation_duration_seconds",
		Help:    "Time of one block reservation on one shard, script and replication acknowledgement included, successful or not.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
	}, []string{"namespace"})
	m.httpRequests = f.NewCounterVec(prometheus.CounterOpts{
		Name: "shardseq_http_requests_total",
		Help: "HTTP requests by method, route pattern and status code.",
	}, []string{"method", "route", "code"})
	m.httpSeconds = f.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "shardseq_http_request_duration_seconds",
		Help:    "Time to answer an HTTP request, by method and route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"method", "route"})
	m.rpcRequests = f.NewCounterVec(prometheus.CounterOpts{
		Name: "shardseq_rpc_requests_total",
		Help: "Calls of shardseq.v1.ShardseqService by procedure and gRPC status code (ok for success), whatever the protocol (gRPC, gRPC-Web, Connect); calls refused for their token are not counted here.",
	}, []string{"procedure", "code"})
	bi := version.Get()
	f.NewGauge(prometheus.GaugeOpts{
		Name:        "shardseq_build_info",
		Help:        "Always 1; the labels tell the version, commit and Go version of this build.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.GoVersion},
	}).Set(1)
	f.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shardseq_namespaces_open",
		Help: "Namespaces this server keeps open (at most --max-namespaces; unused ones close after --namespace-idle).",
	}, func() float64 { return float64(s.pool.count()) })
	m.evictions = f.NewCounterVec(prometheus.CounterOpts{
		Name: "shardseq_namespace_evictions_total",
		Help: "Namespaces this server closed: idle (unused for --namespace-idle) or lru (the least recently used, to open another past --max-namespaces).",
	}, []string{"reason"})
	for _, r := range []string{reasonIdle, reasonLRU} {
		m.evictions.WithLabelValues(r)
	}
	m.closeGaps = f.NewCounter(prometheus.CounterOpts{
		Name: "shardseq_namespace_close_gap_ids_total",
		Help: "IDs reserved but never handed out, dropped when a namespace closed (idle, evicted or deleted): gaps, never handed out by anyone.",
	})
	m.created = f.NewCounter(prometheus.CounterOpts{
		Name: "shardseq_namespaces_created_total",
		Help: "Namespaces this server created on their first request (--create-namespaces auto).",
	})
	m.createsLimited = f.NewCounter(prometheus.CounterOpts{
		Name: "shardseq_namespace_creations_refused_total",
		Help: "Requests for a new namespace refused (429) past the creation bound (--namespace-create-rate, --namespace-create-burst).",
	})
	reg.MustRegister(&shardCollector{s: s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Reserved implements failover.Observer.
func (m *metrics) Reserved(ns string, i int, ids int64, took time.Duration, err error) {
	sh := strconv.Itoa(i)
	result := resultOK
	switch {
	case err == nil:
	case errors.Is(err, client.ErrNotReplicated):
		result = resultNotReplicated
		m.ackFailures.WithLabelValues(ns, sh).Inc()
	case errors.Is(err, failover.ErrShardTimeout), errors.Is(err, context.DeadlineExceeded):
		result = resultTimeout
	default:
		result = resultError
	}
	m.reservations.WithLabelValues(ns, sh, result).Inc()
	m.reserveSeconds.WithLabelValues(ns).Observe(took.Seconds())
	if m.next != nil {
		m.next.Reserved(ns, i, ids, took, err)
	}
}

// closedNamespace counts a namespace closed for reason and the IDs its
// close dropped.
func (m *metrics) closedNamespace(reason string, gaps int64) {
	if reason == reasonIdle || reason == reasonLRU {
		m.evictions.WithLabelValues(reason).Inc()
	}
	if gaps > 0 {
		m.closeGaps.Add(float64(gaps))
	}
}

// handler serves /metrics from the server's registry.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		Registry:          m.reg, // promhttp's own error counter
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: false,
		Timeout:           10 * time.Second,
	})
}

// instrument counts every request by its method and route pattern (never the
// raw path or method: a namespace or a scanner's random paths and methods
// would make the labels unbounded).
// It must wrap the ServeMux: the mux sets r.Pattern on the request it is
// given, which is the one this middleware sees after ServeHTTP returns.
func (m *metrics) instrument(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		defer func() {
			route := r.Pattern
			if route == "" || route == "/" {
				route = "other"
			}
			method := methodLabel(r.Method)
			m.httpRequests.WithLabelValues(method, route, strconv.Itoa(sw.code)).Inc()
			m.httpSeconds.WithLabelValues(method, route).Observe(time.Since(start).Seconds())
		}()
		h.ServeHTTP(sw, r)
	})
}

// methodLabel is the method label of a request: a method of RFC 9110, or
// "other" (a method is any token a client sends).
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return m
	}
	return "other"
}

// statusWriter remembers the status code written.
type statusWriter struct {
	http.ResponseWriter
	code  int
	wrote bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.code, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

// Flush passes flushes on: connect-go refuses a streaming RPC (the health
// service's Watch) on a writer without it.
func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// shardCollector reads every shard row at scrape time, so these series are
// exactly what /v1/shards and the health page show.
type shardCollector struct{ s *Server }

var (
	descIssued = prometheus.NewDesc("shardseq_ids_issued_total",
		"IDs this server handed to callers, by namespace.", []string{"namespace"}, nil)
	descBreaker = prometheus.NewDesc("shardseq_breaker_state",
		"Circuit breaker of a shard: 1 for its current state (closed, half-open or open), 0 for the others.", []string{"namespace", "shard", "state"}, nil)
	descHealthy = prometheus.NewDesc("shardseq_shard_healthy",
		"1 when the shard serves (breaker closed and last reservation good), 0 otherwise.", []string{"namespace", "shard"}, nil)
	descFences = prometheus.NewDesc("shardseq_fence_events_total",
		"Failover fences: the counter jumped forward because another node (a promoted replica, a restarted master) served it.", []string{"namespace", "shard"}, nil)
	descBlock = prometheus.NewDesc("shardseq_block_size",
		"Size of the last block of IDs reserved on the shard.", []string{"namespace", "shard"}, nil)
	descSpaceLeft = prometheus.NewDesc("shardseq_namespace_space_left_ratio",
		"Fraction of the namespace's ID space (its start to the largest ID, 2^53-1 by default) above the highest ID this server handed out since it opened the namespace. Absent until one was.",
		[]string{"namespace"}, nil)
	descSkipped = prometheus.NewDesc("shardseq_id_space_skipped_total",
		"ID space the namespace's client skipped, by reason: retired (left in blocks the order window retired), closed (held when the namespace closed), levelled (a block started at the namespace's level), fenced (a counter restored above its ceiling). Compare with shardseq_ids_issued_total.",
		[]string{"namespace", "reason"}, nil)
	descColocated = prometheus.NewDesc("shardseq_shard_keys_colocated",
		"1 when two of the shard's keys (its counter and its two ceiling copies) sit on one master, as a reshard can leave them: a rewind of that master can then lose the ceiling the copies keep. Move the slots the health page and the log name. 0 otherwise.",
		[]string{"namespace", "shard"}, nil)
	descSpareCover = prometheus.NewDesc("shardseq_spare_cover_seconds",
		"How long the spare blocks the server holds for the namespace would carry its callers through an outage of every shard, at the rate IDs are handed out: about --hold-for once stocked, less after an outage until reservations succeed again. 0 while the rate is not known.",
		[]string{"namespace"}, nil)
	descOutOfOrder = prometheus.NewDesc("shardseq_ids_out_of_order_total",
		"IDs handed out from spare blocks while no reservation could succeed: unique, but possibly below IDs handed out before (outside the order window's promise).",
		[]string{"namespace"}, nil)
)

func (c *shardCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descIssued, descBreaker, descHealthy, descFences, descBlock, descSpaceLeft, descSkipped, descOutOfOrder, descSpareCover, descColocated} {
		ch <- d
	}
}

func (c *shardCollector) Collect(ch chan<- prometheus.Metric) {
	for _, name := range c.s.Namespaces() {
		e := c.s.pool.entry(name)
		if e == nil {
			continue
		}
		if left, ok := e.head.leftRatio(); ok {
			ch <- prometheus.MustNewConstMetric(descSpaceLeft, prometheus.GaugeValue, left, name)
		}
		colocated := map[int]bool{}
		for _, co := range e.c.Colocated() {
			colocated[co.Shard] = true
		}
		for _, st := range e.c.Shards() {
			sh := strconv.Itoa(st.Index)
			ch <- prometheus.MustNewConstMetric(descColocated, prometheus.GaugeValue, boolValue(colocated[st.Index]), name, sh)
			for _, state := range breakerStates {
				ch <- prometheus.MustNewConstMetric(descBreaker, prometheus.GaugeValue, boolValue(st.State == state), name, sh, state)
			}
			ch <- prometheus.MustNewConstMetric(descHealthy, prometheus.GaugeValue, boolValue(st.Healthy), name, sh)
			ch <- prometheus.MustNewConstMetric(descFences, prometheus.CounterValue, float64(st.FenceEvents), name, sh)
			ch <- prometheus.MustNewConstMetric(descBlock, prometheus.GaugeValue, float64(st.BlockSize), name, sh)
		}
		ch <- prometheus.MustNewConstMetric(descIssued, prometheus.CounterValue, float64(e.issued.Load()), name)
		econ := e.c.Economy()
		for _, r := range []struct {
			reason string
			n      int64
		}{{"retired", econ.Retired}, {"closed", econ.Closed}, {"levelled", econ.Levelled}, {"fenced", econ.Fenced}} {
			ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(r.n), name, r.reason)
		}
		ch <- prometheus.MustNewConstMetric(descOutOfOrder, prometheus.CounterValue, float64(econ.OutOfOrder), name)
		ch <- prometheus.MustNewConstMetric(descSpareCover, prometheus.GaugeValue, e.c.SpareCover().Seconds(), name)
	}
}

// breakerStates are the values of the state label of shardseq_breaker_state:
// one series each, so that sum by (state) counts the shards in each.
var breakerStates = []string{gobreaker.StateClosed.String(), gobreaker.StateHalfOpen.String(), gobreaker.StateOpen.String()}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
