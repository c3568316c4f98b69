package cluster

import (
	"cmp"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// URLError is returned by ParseURL: Input is what was given, with any
// password replaced by "xxxxx", and Err says what is wrong with it (the
// Err of Resolve's *ConfigError for a bad Config.URL).
type URLError struct {
	Input string
	Err   error
}

func (e *URLError) Error() string {
	return fmt.Sprintf("cluster: redis address %q: %v", e.Input, e.Err)
}

func (e *URLError) Unwrap() error { return e.Err }

// urlForms is the sentence every ParseURL error ends with.
const urlForms = "want redis://[user[:password]@]host[:port][?addr=host:port...], rediss://... (TLS) or host:port[,host:port...]"

// ParseURL parses where a Redis Cluster is and how to log in to it, in one
// of the forms go-redis users and twelve-factor deployments pass around:
//
//	redis://[user[:password]@]host[:port][?addr=host:port&addr=...]
//	rediss://[user[:password]@]host[:port][?addr=host:port&addr=...]
//	host:port[,host:port...]
//
// A URL is read by go-redis's redis.ParseClusterURL: its host and every addr
// parameter are seeds, the port defaults to 6379, the user and password
// authenticate (the password alone: requirepass), and rediss:// turns TLS on
// (TLS 1.2 or later, certificates verified against the system's roots; put a
// private CA in TLSConfig.RootCAs). Each node's certificate is verified
// against the address it is dialed at, not the URL's first host: the nodes of
// a cluster are reached at the addresses the cluster announces. The path may
// only be empty or /0 (a cluster has database 0 only), and addr is the only
// query parameter: timeouts, retries and pools are shardseq's own (see
// Config). A list without a scheme is seeds only, each host:port.
//
// It returns a Config with Addrs and, from a URL, Username, Password and
// TLSConfig filled in; errors are *URLError and never show the password.
// Config.URL takes the same text, which Dial parses with this function.
func ParseURL(s string) (Config, error) {
	cfg, _, err := parseURL(s)
	return cfg, err
}

// parseURL is ParseURL that also returns the scheme: "redis", "rediss", or
// "" for a host:port list.
func parseURL(raw string) (Config, string, error) {
	s := strings.TrimSpace(raw)
	fail := func(format string, args ...any) (Config, string, error) {
		return Config{}, "", &URLError{Input: redactURL(s), Err: fmt.Errorf(format, args...)}
	}
	if s == "" {
		return fail("empty: %s", urlForms)
	}
	if scheme, _, ok := strings.Cut(s, "://"); !ok || !isScheme(scheme) {
		addrs, err := parseAddrList(s)
		if err != nil {
			return Config{}, "", &URLError{Input: redactURL(s), Err: err}
		}
		return Config{Addrs: addrs}, "", nil
	}
	u, err := url.Parse(s)
	if err != nil {
		// Report what is wrong with the URL without its password, which
		// url's errors would quote.
		if _, err = url.Parse(redactURL(s)); err == nil {
			return fail("the password is not valid in a URL: percent-encode it (%% as %%25, @ as %%40, / as %%2F, ...)")
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error repeats the input, password and all
		}
		return fail("not a valid URL (%v): %s", err, urlForms)
	}
	switch u.Scheme {
	case "redis", "rediss":
	case "unix":
		return fail("a Redis Cluster is reached over TCP, not a unix socket: %s", urlForms)
	case "valkey", "valkeys":
		return fail("unknown scheme %q: Valkey takes redis:// and rediss:// URLs too", u.Scheme+"://")
	default:
		return fail("unknown scheme %q: %s", u.Scheme+"://", urlForms)
	}
	if u.Hostname() == "" {
		return fail("no host: want %s://host:port (the port defaults to 6379)", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fail("port %q: want 1 to 65535", p)
		}
	}
	switch u.Path {
	case "", "/", "/0":
	default:
		return fail("path %q: a Redis Cluster has database 0 only; drop the path", u.Path)
	}
	if u.Fragment != "" || strings.HasSuffix(s, "#") {
		return fail("unexpected #fragment")
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return fail("query %q: %v", u.RawQuery, err)
	}
	var extra []string
	for k, vs := range q {
		if k != "addr" {
			extra = append(extra, k)
			continue
		}
		for _, v := range vs {
			if err := checkAddr(v); err != nil {
				return fail("addr=%s: %v", v, err)
			}
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return fail("unsupported query parameter %s: only addr=host:port (more seeds) is read; shardseq sets timeouts, retries and pools itself (cluster.Config, client.Config)",
			strings.Join(extra, ", "))
	}
	opt, err := redis.ParseClusterURL(s)
	if err != nil {
		return fail("%v", err) // not expected after the checks above
	}
	cfg := Config{Username: opt.Username, Password: opt.Password}
	for _, a := range opt.Addrs {
		if err := checkAddr(a); err != nil {
			return fail("%v", err)
		}
		if !slices.Contains(cfg.Addrs, a) {
			cfg.Addrs = append(cfg.Addrs, a)
		}
	}
	if u.Scheme == "rediss" {
		// Not go-redis's ServerName of the first host: every node is
		// verified against the address it is dialed at.
		cfg.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return cfg, u.Scheme, nil
}

// isScheme reports whether s is a URL scheme (RFC 3986: a letter, then
// letters, digits, +, - or .).
func isScheme(s string) bool {
	for i, r := range s {
		letter := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z'
		if !letter && (i == 0 || !(r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.')) {
			return false
		}
	}
	return s != ""
}

// parseAddrList splits a comma-separated list of host:port seeds.
func parseAddrList(s string) ([]string, error) {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if at := strings.LastIndex(a, "@"); at >= 0 {
			return nil, fmt.Errorf("xxxxx%s: a user or password goes in a URL, redis://user:password@host:port", a[at:])
		}
		if err := checkAddr(a); err != nil {
			return nil, err
		}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no address given: %s", urlForms)
	}
	return out, nil
}

// checkAddr is the one rule for a seed address: host:port, a non-empty host
// and a port from 1 to 65535.
func checkAddr(a string) error {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		if strings.Contains(a, "://") || strings.Contains(a, ":/") {
			return fmt.Errorf("%q is not host:port (a URL goes alone, not in a list)", a)
		}
		return fmt.Errorf("%q is not host:port", a)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 || host == "" {
		return fmt.Errorf("%q is not host:port with a port from 1 to 65535", a)
	}
	return nil
}

// redactURL replaces the password of a URL-looking string with "xxxxx",
// even when the string does not parse as a URL (a password with a raw / or
// ?): everything between the first colon after "://" and the last @ goes.
func redactURL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		// A list: any item with an @ may be user:password@host.
		items := strings.Split(s, ",")
		for i, it := range items {
			if at := strings.LastIndex(it, "@"); at >= 0 {
				items[i] = "xxxxx" + it[at:]
			}
		}
		return strings.Join(items, ",")
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	user, _, hasPW := strings.Cut(rest[:at], ":")
	if !hasPW {
		return s
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// Resolve returns c with URL parsed (ParseURL) into Addrs, Username,
// Password and TLSConfig, and URL cleared; Dial and Validate call it. Each
// setting comes from one place: the URL and the field both giving seeds, a
// user or a password is a *ConfigError naming the field, as is TLSConfig
// with a redis:// URL (plain text; rediss:// takes TLSConfig, e.g. for a
// private CA or a client certificate). Without URL it returns c.
func (c Config) Resolve() (Config, error) {
	if c.URL == "" {
		return c, nil
	}
	shown := redactURL(strings.TrimSpace(c.URL))
	u, scheme, err := parseURL(c.URL)
	if err != nil {
		if ue := (*URLError)(nil); errors.As(err, &ue) {
			err = ue.Err // the Value shows the URL already
		}
		return c, &ConfigError{Field: "URL", Value: shown, Err: err}
	}
	both := func(field, what string) error {
		return &ConfigError{Field: field, Value: "(set)", Err: fmt.Errorf("URL %s gives %s too: give it in one place", shown, what)}
	}
	switch {
	case len(c.Addrs) > 0:
		return c, both("Addrs", "the seed addresses")
	case c.Username != "" && u.Username != "":
		return c, both("Username", "a user")
	case c.Password != "" && u.Password != "":
		return c, both("Password", "a password")
	case c.TLSConfig != nil && scheme == "redis":
		return c, &ConfigError{Field: "TLSConfig", Value: "(set)",
			Err: fmt.Errorf("URL %s is redis:// (no TLS) but TLSConfig is set: use rediss://", shown)}
	}
	c.URL, c.Addrs = "", u.Addrs
	c.Username = cmp.Or(c.Username, u.Username)
	c.Password = cmp.Or(c.Password, u.Password)
	if c.TLSConfig == nil {
		c.TLSConfig = u.TLSConfig
	}
	return c, nil
}
