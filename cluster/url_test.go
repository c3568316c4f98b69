package cluster

import (
	"crypto/tls"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		in       string
		addrs    []string
		user, pw string
		tls      bool
	}{
		{in: "127.0.0.1:7000", addrs: []string{"127.0.0.1:7000"}},
		{in: " a:1 , b:2 ,", addrs: []string{"a:1", "b:2"}},
		{in: "a:1,a:1,b:2", addrs: []string{"a:1", "b:2"}},
		{in: "[::1]:7000,h:7001", addrs: []string{"[::1]:7000", "h:7001"}},
		{in: "redis://h:7000", addrs: []string{"h:7000"}},
		{in: "redis://h", addrs: []string{"h:6379"}},
		{in: "REDIS://h:1", addrs: []string{"h:1"}},
		{in: "redis://h:1/", addrs: []string{"h:1"}},
		{in: "redis://h:1/0", addrs: []string{"h:1"}},
		{in: "redis://[::1]:7000?addr=[::2]:7001", addrs: []string{"[::1]:7000", "[::2]:7001"}},
		{in: "rediss://app:s3cret@h1:7000?addr=h2:7001&addr=h3:7002", addrs: []string{"h1:7000", "h2:7001", "h3:7002"}, user: "app", pw: "s3cret", tls: true},
		{in: "rediss://app@h1:7000?addr=h1:7000", addrs: []string{"h1:7000"}, user: "app", tls: true},
		{in: "redis://:requirepass@h:1", addrs: []string{"h:1"}, pw: "requirepass"},
		{in: "redis://u:p%40ss%2Fw@h:1", addrs: []string{"h:1"}, user: "u", pw: "p@ss/w"},
		{in: "redis://u:@h:1", addrs: []string{"h:1"}, user: "u"},
	} {
		cfg, err := ParseURL(tc.in)
		if err != nil {
			t.Errorf("ParseURL(%q): %v", tc.in, err)
			continue
		}
		if !slices.Equal(cfg.Addrs, tc.addrs) || cfg.Username != tc.user || cfg.Password != tc.pw || (cfg.TLSConfig != nil) != tc.tls {
			t.Errorf("ParseURL(%q) = addrs %q user %q password %q TLS %v; want %q %q %q %v",
				tc.in, cfg.Addrs, cfg.Username, cfg.Password, cfg.TLSConfig != nil, tc.addrs, tc.user, tc.pw, tc.tls)
		}
		if c := cfg.TLSConfig; c != nil && (c.MinVersion != tls.VersionTLS12 || c.InsecureSkipVerify || c.ServerName != "") {
			t.Errorf("ParseURL(%q): TLS %+v, want TLS 1.2+, verified against each node's address", tc.in, c)
		}
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty: want redis://"},
		{"   ", "empty"},
		{"localhost", `"localhost" is not host:port`},
		{"h:99999", "port from 1 to 65535"},
		{":7000", "port from 1 to 65535"},
		{",,", "no address given"},
		{"a:1,redis://b:2", "a URL goes alone"},
		{"http://h:1", `unknown scheme "http://": want redis://`},
		{"unix:///tmp/redis.sock", "not a unix socket"},
		{"valkey://h:1", "Valkey takes redis:// and rediss://"},
		{"redis://", "no host: want redis://host:port"},
		{"rediss://:sekrit-pw@:7000", "no host: want rediss://host:port"},
		{"redis://h:0", `port "0": want 1 to 65535`},
		{"redis://h:99999", `port "99999"`},
		{"redis://h:abc", "not a valid URL"},
		{"redis://h:1/3", `path "/3": a Redis Cluster has database 0 only`},
		{"redis://h:1?dial_timeout=3s&pool_size=9", "unsupported query parameter dial_timeout, pool_size: only addr=host:port"},
		{"redis://h:1?addr=h2", `addr=h2: "h2" is not host:port`},
		{"redis://h:1?addr=", `addr=: "" is not host:port`},
		{"redis://h:1?addr=%zz", "query"},
		{"redis://h:1#frag", "fragment"},
		{"redis://u:sekrit-pw@h:1/5", "database 0"},
		{"redis://u:sekrit-pw@h:1?read_timeout=1", "unsupported query parameter read_timeout"},
		{"redis://u:sek%zzrit-pw@h:1", "the password is not valid in a URL: percent-encode it"},
		{"redis://u:sekrit/pw@h:1", "the password is not valid in a URL"},
		{"app:sekrit-pw@h:6379", "xxxxx@h:6379: a user or password goes in a URL, redis://user:password@host:port"},
		{"//:sekrit-pw@h", "a user or password goes in a URL"},
	} {
		_, err := ParseURL(tc.in)
		var ue *URLError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseURL(%q) = %v, want a *URLError containing %q", tc.in, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), "sekrit") || strings.Contains(err.Error(), "zzrit") {
			t.Errorf("ParseURL(%q): the error shows the password: %v", tc.in, err)
		}
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"redis://u:pw@h:1":          "redis://u:xxxxx@h:1",
		"rediss://:pw@h:1?addr=h:2": "rediss://:xxxxx@h:1?addr=h:2",
		"redis://u:p/w?x@h":         "redis://u:xxxxx@h",
		"redis://u@h:1":             "redis://u@h:1",
		"redis://h:1":               "redis://h:1",
		"h:1,h:2":                   "h:1,h:2",
		"h:1,u:pw@h:2":              "h:1,xxxxx@h:2",
	} {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolve(t *testing.T) {
	ca := &tls.Config{MinVersion: tls.VersionTLS13}
	for _, tc := range []struct {
		name  string
		cfg   Config
		field string // the *ConfigError's, or "" for success
		check func(Config) bool
	}{
		{"no URL", Config{Addrs: []string{"a:1"}}, "", func(c Config) bool { return slices.Equal(c.Addrs, []string{"a:1"}) }},
		{"list", Config{URL: "a:1,b:2"}, "", func(c Config) bool { return len(c.Addrs) == 2 && c.URL == "" }},
		{"user from the URL, password from the field", Config{URL: "rediss://app@h:1", Password: "pw"}, "",
			func(c Config) bool { return c.Username == "app" && c.Password == "pw" && c.TLSConfig != nil }},
		{"user from the field, password from the URL", Config{URL: "redis://:pw@h:1", Username: "app"}, "",
			func(c Config) bool { return c.Username == "app" && c.Password == "pw" && c.TLSConfig == nil }},
		{"rediss takes the caller's TLS", Config{URL: "rediss://h:1", TLSConfig: ca}, "", func(c Config) bool { return c.TLSConfig == ca }},
		{"a list takes TLS", Config{URL: "h:1", TLSConfig: ca}, "", func(c Config) bool { return c.TLSConfig == ca }},
		{"bad URL", Config{URL: "http://h:1"}, "URL", nil},
		{"Addrs too", Config{URL: "redis://h:1", Addrs: []string{"h:1"}}, "Addrs", nil},
		{"two users", Config{URL: "redis://app@h:1", Username: "other"}, "Username", nil},
		{"two passwords", Config{URL: "redis://app:pw@h:1", Password: "pw2"}, "Password", nil},
		{"TLS with redis://", Config{URL: "redis://h:1", TLSConfig: ca}, "TLSConfig", nil},
	} {
		got, err := tc.cfg.Resolve()
		var ce *ConfigError
		switch {
		case tc.field == "" && (err != nil || !tc.check(got)):
			t.Errorf("%s: Resolve() = %+v, %v", tc.name, got, err)
		case tc.field != "" && (!errors.As(err, &ce) || ce.Field != tc.field || !errors.Is(err, ErrInvalidConfig)):
			t.Errorf("%s: Resolve() error %v, want a *ConfigError for %s", tc.name, err, tc.field)
		case tc.field != "" && strings.Contains(err.Error(), "pw"):
			t.Errorf("%s: the error shows the password: %v", tc.name, err)
		}
		if tc.field != "" {
			if verr := tc.cfg.Validate(); !errors.As(verr, &ce) || ce.Field != tc.field {
				t.Errorf("%s: Validate() = %v, want the same *ConfigError", tc.name, verr)
			}
		}
	}
}

// FuzzParseRedisURL: no input makes ParseURL panic; what it accepts is a
// valid seed list that Resolve and Validate accept too, and what it refuses
// never quotes the password.
func FuzzParseRedisURL(f *testing.F) {
	for _, s := range []string{
		"127.0.0.1:7000,127.0.0.1:7001", "redis://h:1", "rediss://app:s3cret-password@h:7000?addr=h2:7001&addr=h3:7002",
		"redis://:pw@[::1]:1/0", "redis://u:p%40ss@h", "http://h:1", "redis://h:1?dial_timeout=3", "redis://u:sekrit/pw@h:1",
		"redis://u:sek%zzrit@h:1", "redis://h:1#x", "a:1,,b:2", "redis://@:0",
		"//:00000000@", "redis://]", "A://:password@", "//:passwor,@", // found by fuzzing
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfg, err := ParseURL(s)
		if err != nil {
			var ue *URLError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseURL(%q): %T %v, want a *URLError", s, err, err)
			}
			// A URL's password never shows (a list has none: an item
			// with an @ is refused without being quoted).
			scheme, _, isURL := strings.Cut(strings.TrimSpace(s), "://")
			if u, perr := url.Parse(strings.TrimSpace(s)); isURL && isScheme(scheme) && perr == nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && secretLike(pw) && strings.Count(s, pw) == 1 && strings.Contains(err.Error(), pw) {
					t.Fatalf("ParseURL(%q): the error shows the password: %v", s, err)
				}
			}
			return
		}
		if len(cfg.Addrs) == 0 {
			t.Fatalf("ParseURL(%q): no error and no address", s)
		}
		for _, a := range cfg.Addrs {
			if err := checkAddr(a); err != nil {
				t.Fatalf("ParseURL(%q): address %v", s, err)
			}
		}
		if err := (Config{URL: s}).Validate(); err != nil {
			t.Fatalf("ParseURL(%q) accepts it but Validate says %v", s, err)
		}
	})
}

// secretLike reports a password the fuzz test can look for in a message: 8
// or more letters and digits, both kinds, which no fixed text of the
// messages contains.
func secretLike(pw string) bool {
	var letters, digits int
	for _, r := range pw {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			letters++
		default:
			return false
		}
	}
	return len(pw) >= 8 && letters > 0 && digits > 0
}
