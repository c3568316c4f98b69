package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/server"
)

// StatusCommand prints the shard table of a running server (GET /v1/shards)
// in a terminal.
type StatusCommand struct {
	Main *Main
}

var statusEnv = map[string]string{"server": "SHARDSEQ_SERVER", "token-file": "SHARDSEQ_TOKEN_FILE", "ca-file": "SHARDSEQ_CA_FILE"}

// statusResponse is what status reads of GET /v1/shards.
type statusResponse struct {
	Shards     []client.ShardStatus `json:"shards"`
	Namespaces int                  `json:"namespaces"`
	Healthy    int                  `json:"healthy"`
	Total      int                  `json:"total"`
	Cluster    struct {
		Covered    bool   `json:"covered"`
		Generation uint64 `json:"generation"`
		Masters    []struct {
			Addr     string   `json:"addr"`
			Failed   bool     `json:"failed"`
			Slots    [][2]int `json:"slots"`
			Replicas []struct {
				Addr   string `json:"addr"`
				Failed bool   `json:"failed"`
			} `json:"replicas"`
		} `json:"masters"`
	} `json:"cluster"`
	// Colocated is nil when the server does not report it (older than
	// this field), empty when no shard's keys share a master.
	Colocated []statusColocation `json:"colocated"`
}

// statusColocation is a shard whose keys share a master, as /v1/shards
// reports it.
type statusColocation struct {
	Namespace string   `json:"namespace"`
	Shard     int      `json:"shard"`
	Master    string   `json:"master"`
	Keys      []string `json:"keys"`
	Slots     []int    `json:"slots"`
	Move      []int    `json:"move"`
	Action    string   `json:"action"` // the server's wording, the health page's
}

// Run fetches and prints the table.
func (c *StatusCommand) Run(ctx context.Context, args []string) error {
	var (
		srv, tokenFile, caFile, ns string
		timeout                    time.Duration
		wide                       bool
		fs                         = newFlagSet("status")
	)
	fs.StringVar(&srv, "server", "http://localhost:8080", "server base URL, or host:port for http (env SHARDSEQ_SERVER)")
	fs.StringVar(&tokenFile, "token-file", "", "file of bearer tokens; the first with the scope read (or every scope) is sent (env SHARDSEQ_TOKEN_FILE)")
	fs.StringVar(&caFile, "ca-file", "", "CA certificate (PEM) of an https server (env SHARDSEQ_CA_FILE)")
	fs.StringVar(&ns, "namespace", "", "show only this namespace")
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "how long to wait for the server")
	fs.BoolVar(&wide, "wide", false, "print each shard's last error whole, not cut to 70 characters")
	pos, err := parseFlags(fs, args, c.Usage)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageErrorf("unexpected argument %q", pos[0])
	}
	fromEnv, err := applyEnv(fs, c.Main.Getenv, statusEnv)
	if err != nil {
		return err
	}
	if !strings.Contains(srv, "://") {
		srv = "http://" + srv // host:port, as people write it
	}
	u, err := url.Parse(srv)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageErrorf("%s=%q: want http://host:port or https://host:port", source(fromEnv, "server"), srv)
	}
	if timeout <= 0 {
		return usageErrorf("--timeout must be positive")
	}
	u = u.JoinPath("v1", "shards")
	if ns != "" {
		u.RawQuery = url.Values{"namespace": {ns}}.Encode()
	}
	var token string
	if tokenFile != "" {
		tokens, _, err := server.LoadTokenFile(tokenFile)
		if err != nil {
			return usageErrorf("%s: %v", source(fromEnv, "token-file"), err)
		}
		if token = readToken(tokens); token == "" {
			return usageErrorf("%s: no token in %s has the scope read (or admin, or none: every scope) that status needs", source(fromEnv, "token-file"), tokenFile)
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return usageErrorf("%s: %v", source(fromEnv, "ca-file"), err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return usageErrorf("%s=%s: no PEM certificate in it", source(fromEnv, "ca-file"), caFile)
		}
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	hc := &http.Client{Transport: tr, Timeout: timeout}
	defer hc.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("status: %w", err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("status: no answer from %s (is 'shardseq serve' running there? %s names another server): %w",
			u.Redacted(), "--server or SHARDSEQ_SERVER", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("status: reading the answer of %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &e)
		switch resp.StatusCode {
		case http.StatusUnauthorized:
			return fmt.Errorf("status: %s answered 401 (%s): pass a token with --token-file", u, e.Error)
		case http.StatusForbidden:
			return fmt.Errorf("status: %s answered 403 (%s): the token sent needs the scope read in the server's token file", u, e.Error)
		}
		return fmt.Errorf("status: %s answered %s: %s", u, resp.Status, e.Error)
	}
	var st statusResponse
	if err := json.Unmarshal(body, &st); err != nil {
		return fmt.Errorf("status: %s did not answer shard JSON: %w", u, err)
	}
	printStatus(c.Main.Stdout, st, ns, wide)
	return nil
}

// printStatus writes the cluster summary and the shard table: of namespace
// ns only when it is not "", and with whole last errors when wide.
func printStatus(w io.Writer, st statusResponse, ns string, wide bool) {
	covered := "all slots served"
	if !st.Cluster.Covered {
		covered = "SLOTS MISSING"
	}
	fmt.Fprintf(w, "cluster: %d masters, %s, topology generation %d\n", len(st.Cluster.Masters), covered, st.Cluster.Generation)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, m := range st.Cluster.Masters {
		var reps []string
		for _, r := range m.Replicas {
			reps = append(reps, oneLine(r.Addr, 0)+" "+okOr(!r.Failed, "FAILED"))
		}
		if len(reps) == 0 {
			reps = append(reps, "NO REPLICA")
		}
		var slots []string
		for _, r := range m.Slots {
			slots = append(slots, fmt.Sprintf("%d-%d", r[0], r[1]))
		}
		fmt.Fprintf(tw, "  master %s\t%s\tslots %s\treplicas %s\n", oneLine(m.Addr, 0), okOr(!m.Failed, "FAILED"), strings.Join(slots, ","), strings.Join(reps, ", "))
	}
	_ = tw.Flush()
	printColocated(w, st.Colocated)
	switch {
	case ns != "":
		fmt.Fprintf(w, "shards: %d of %d healthy in namespace %s (%d open on the server)\n\n", st.Healthy, st.Total, ns, st.Namespaces)
	case st.Namespaces == 1:
		fmt.Fprintf(w, "shards: %d of %d healthy in 1 namespace\n\n", st.Healthy, st.Total)
	default:
		fmt.Fprintf(w, "shards: %d of %d healthy in %d namespaces\n\n", st.Healthy, st.Total, st.Namespaces)
	}
	width := 70
	if wide {
		width = 0
	}
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAMESPACE\tSHARD\tNODE\tBREAKER\tHEALTH\tRESERVATIONS\tFAILURES\tIDS ISSUED\tFENCES\tBLOCK\tLATENCY\tLAST ERROR")
	for _, s := range st.Shards {
		node := oneLine(s.Node, 0)
		if node == "" {
			node = "?"
		}
		lastErr := "-"
		if s.LastError != "" {
			lastErr = oneLine(s.LastError, width)
			if !s.LastErrorAt.IsZero() {
				lastErr += " (" + time.Since(s.LastErrorAt).Round(time.Second).String() + " ago)"
			}
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%.1fms\t%s\n", oneLine(s.Namespace, 0), s.Index, node, oneLine(s.State, 0),
			okOr(s.Healthy, "UNHEALTHY"), s.Reservations, s.Failures, s.IDsIssued, s.FenceEvents, s.BlockSize, s.LatencyMs, lastErr)
	}
	_ = tw.Flush()
}

// printColocated writes the shards whose keys share a master (nothing when
// the server does not report them), one aligned row each, then what the
// server says to do about each, whole: it is the instruction.
func printColocated(w io.Writer, cs []statusColocation) {
	switch {
	case cs == nil:
		return
	case len(cs) == 0:
		fmt.Fprintln(w, "colocated: none (every shard's keys on distinct masters)")
		return
	case len(cs) == 1:
		fmt.Fprintln(w, "colocated: 1 shard with keys on one master (IDs still handed out; move the slots named)")
	default:
		fmt.Fprintf(w, "colocated: %d shards with keys on one master (IDs still handed out; move the slots named)\n", len(cs))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, c := range cs {
		var keys, move []string
		for k, key := range c.Keys {
			key = oneLine(key, 0)
			if k < len(c.Slots) {
				key += fmt.Sprintf(" (slot %d)", c.Slots[k])
			}
			keys = append(keys, key)
		}
		for _, s := range c.Move {
			move = append(move, strconv.Itoa(s))
		}
		fmt.Fprintf(tw, "  %s\tshard %d\tmaster %s\tkeys %s\tmove slot %s\n", oneLine(c.Namespace, 0), c.Shard, oneLine(c.Master, 0),
			strings.Join(keys, ", "), strings.Join(move, ","))
	}
	_ = tw.Flush()
	for _, c := range cs {
		if c.Action != "" {
			fmt.Fprintf(w, "  to do: %s\n", oneLine(c.Action, 0))
		}
	}
}

func okOr(ok bool, bad string) string {
	if ok {
		return "ok"
	}
	return bad
}

// oneLine keeps a server's text on one line of at most n runes (any length
// when n is 0): the tables must stay aligned whatever a server sends.
func oneLine(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); n > 0 && len(r) > n {
		s = string(r[:n-1]) + "…"
	}
	return s
}

// Usage prints the help of status.
func (c *StatusCommand) Usage() {
	fmt.Fprint(c.Main.Stdout, `Usage: shardseq status [--server URL] [--token-file F] [--namespace ns]

Prints the cluster and the shard table of a running server (GET /v1/shards):
the masters, the shards whose keys share a master (after a reshard) with the
slots to move, and each shard's node, breaker state, health, counters and
last error.

Flags (flags win over environment variables):
  --server URL        server base URL, or host:port for http (env SHARDSEQ_SERVER; default http://localhost:8080)
  --token-file F      bearer tokens, one per line (the server's format); the first with the scope
                      read, admin or none (every scope) is sent (env SHARDSEQ_TOKEN_FILE)
  --ca-file F         CA certificate of an https server (env SHARDSEQ_CA_FILE)
  --namespace NS      only this namespace
  --timeout D         how long to wait for the server (default 5s)
  --wide              print each shard's last error whole (the table cuts it to 70 characters)
`)
}

// readToken is the secret of the first token that may read GET /v1/shards:
// a bare one (every scope), or one with read or admin; "" if none.
func readToken(tokens []server.Token) string {
	for _, t := range tokens {
		if len(t.Scopes) == 0 || slices.Contains(t.Scopes, server.ScopeRead) || slices.Contains(t.Scopes, server.ScopeAdmin) {
			return t.Secret
		}
	}
	return ""
}
