package main

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/internal/lab/localcluster"
	"github.com/shardseq/shardseq/server"
)

// redisFlags are the flags of every command that talks to Redis (serve,
// next, bench, verify): where the cluster is (--redis, a redis:// or
// rediss:// URL or a host:port list, parsed by cluster.ParseURL), the ACL
// user and its password (read from a file, never given on the command line
// where ps shows it), and TLS. There is no flag to skip certificate
// verification.
type redisFlags struct {
	redis                     string
	user, passwordFile        string
	useTLS                    bool
	caFile, certFile, keyFile string
}

// redisEnv maps the flags to their environment variables.
var redisEnv = map[string]string{
	"redis": "SHARDSEQ_REDIS", "redis-user": "SHARDSEQ_REDIS_USER", "redis-password-file": "SHARDSEQ_REDIS_PASSWORD_FILE",
	"redis-tls": "SHARDSEQ_REDIS_TLS", "redis-ca-file": "SHARDSEQ_REDIS_CA_FILE",
	"redis-cert-file": "SHARDSEQ_REDIS_CERT_FILE", "redis-key-file": "SHARDSEQ_REDIS_KEY_FILE",
}

// redisUsage is the help of the flags, for the commands' Usage.
const redisUsage = `Redis (flags win over environment variables; see README "Security"):
  --redis ADDR              the cluster: redis://[user[:password]@]host:port[?addr=host:port...],
                            rediss://... (TLS) or host:port[,host:port...] (env SHARDSEQ_REDIS)
  --redis-user U            Redis ACL user (env SHARDSEQ_REDIS_USER; or the URL's user)
  --redis-password-file F   file holding its password (env SHARDSEQ_REDIS_PASSWORD_FILE); a
                            password in the URL belongs in SHARDSEQ_REDIS, not on the command line
  --redis-tls               TLS to Redis, certificates verified (env SHARDSEQ_REDIS_TLS; or rediss://)
  --redis-ca-file F         CA of the Redis certificates; implies --redis-tls (env SHARDSEQ_REDIS_CA_FILE)
  --redis-cert-file F, --redis-key-file F
                            client certificate for tls-auth-clients (env SHARDSEQ_REDIS_CERT_FILE, _KEY_FILE)
`

func (r *redisFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.redis, "redis", "", "Redis Cluster: a redis:// or rediss:// URL, or seeds host:port[,host:port...] (env SHARDSEQ_REDIS)")
	fs.StringVar(&r.user, "redis-user", "", "Redis ACL user (env SHARDSEQ_REDIS_USER; default: the URL's, or the default user)")
	fs.StringVar(&r.passwordFile, "redis-password-file", "", "file holding the Redis password (env SHARDSEQ_REDIS_PASSWORD_FILE)")
	fs.BoolVar(&r.useTLS, "redis-tls", false, "connect to Redis with TLS, verifying its certificate (env SHARDSEQ_REDIS_TLS)")
	fs.StringVar(&r.caFile, "redis-ca-file", "", "CA certificates (PEM) that sign the Redis nodes' certificates; implies --redis-tls (env SHARDSEQ_REDIS_CA_FILE; default: the system's)")
	fs.StringVar(&r.certFile, "redis-cert-file", "", "client certificate (PEM) for Redis nodes with tls-auth-clients; implies --redis-tls (env SHARDSEQ_REDIS_CERT_FILE)")
	fs.StringVar(&r.keyFile, "redis-key-file", "", "private key of --redis-cert-file (env SHARDSEQ_REDIS_KEY_FILE)")
}

// localClusterDir is where 'shardseq cluster up' keeps a local cluster
// unless told otherwise (--dir).
const localClusterDir = ".run/cluster"

// useLocal sets --redis to the addresses of the local cluster in
// localClusterDir when its state file is there and one of its nodes
// accepts connections, says so on stderr, and reports whether it did: a
// command run next to 'shardseq cluster up' (or 'make run') needs no --redis.
func (r *redisFlags) useLocal(stderr io.Writer) bool {
	lc, err := localcluster.Open(localClusterDir)
	if err != nil {
		return false
	}
	addrs := lc.Addrs()
	for _, a := range addrs {
		conn, err := net.DialTimeout("tcp", a, 300*time.Millisecond)
		if err == nil {
			conn.Close()
			r.redis = strings.Join(addrs, ",")
			fmt.Fprintf(stderr, "shardseq: no --redis or SHARDSEQ_REDIS: using the local cluster in %s (%s)\n", localClusterDir, r.redis)
			return true
		}
	}
	return false
}

// onCommandLine returns the first of the flags given on the command line
// (fs visits those set by applyEnv too: fromEnv tells them apart), or "".
func (r *redisFlags) onCommandLine(fs *flag.FlagSet, fromEnv map[string]string) string {
	var first string
	fs.Visit(func(f *flag.Flag) {
		_, isRedis := redisEnv[f.Name]
		_, viaEnv := fromEnv[f.Name]
		if isRedis && !viaEnv && first == "" {
			first = "--" + f.Name
		}
	})
	return first
}

// redisConn is what the flags resolve to: the connection settings of
// cluster.Config (Addrs, Username, Password, TLSConfig), and a warning for
// the log when a password was given where ps shows it.
type redisConn struct {
	cluster.Config
	warning string
}

// clientConfig copies the connection settings into a client.Config.
func (rc redisConn) clientConfig(c client.Config) client.Config {
	c.Addrs, c.Username, c.Password, c.TLS = rc.Addrs, rc.Username, rc.Password, rc.TLSConfig
	return c
}

// load reads the files named by the flags, parses --redis and combines
// them: each setting from one place, so a password both in the URL and in
// --redis-password-file, two users, or TLS flags with a redis:// URL are
// errors naming both. Without --redis (optional for bench and verify) it
// returns a zero redisConn, and an error if another of the flags is set.
func (r *redisFlags) load(fromEnv map[string]string) (redisConn, error) {
	var rc redisConn
	tlsFlag := r.tlsFlag()
	if r.redis == "" {
		name := tlsFlag
		switch {
		case r.user != "":
			name = "redis-user"
		case r.passwordFile != "":
			name = "redis-password-file"
		}
		if name != "" {
			return rc, usageErrorf("%s needs --redis (or SHARDSEQ_REDIS): which cluster?", source(fromEnv, name))
		}
		return rc, nil
	}
	var password string
	if r.passwordFile != "" {
		pw, err := server.ReadSecretFile(r.passwordFile)
		if err != nil {
			return rc, usageErrorf("%s: %v", source(fromEnv, "redis-password-file"), err)
		}
		password = pw
	}
	tc, err := r.tlsConfig(fromEnv)
	if err != nil {
		return rc, err
	}
	resolved, err := cluster.Config{URL: r.redis, Username: r.user, Password: password, TLSConfig: tc}.Resolve()
	if err != nil {
		return rc, r.explain(fromEnv, tlsFlag, err)
	}
	rc.Config = resolved
	urlPassword := password == "" && resolved.Password != ""
	switch {
	case rc.Username != "" && rc.Password == "" && r.user != "":
		return rc, usageErrorf("%s needs --redis-password-file (or SHARDSEQ_REDIS_PASSWORD_FILE)", source(fromEnv, "redis-user"))
	case rc.Username != "" && rc.Password == "":
		return rc, usageErrorf("%s: the user %q needs a password: --redis-password-file (or SHARDSEQ_REDIS_PASSWORD_FILE)", source(fromEnv, "redis"), rc.Username)
	case urlPassword && fromEnv["redis"] == "":
		rc.warning = "the Redis password is in the --redis URL, where ps and the shell history show it: put it in --redis-password-file, or the URL in SHARDSEQ_REDIS"
	}
	return rc, nil
}

// tlsFlag names the first TLS flag set, or "".
func (r *redisFlags) tlsFlag() string {
	switch {
	case r.useTLS:
		return "redis-tls"
	case r.caFile != "":
		return "redis-ca-file"
	case r.certFile != "":
		return "redis-cert-file"
	case r.keyFile != "":
		return "redis-key-file"
	}
	return ""
}

// tlsConfig loads the TLS flags' files; nil when no TLS flag is set.
func (r *redisFlags) tlsConfig(fromEnv map[string]string) (*tls.Config, error) {
	if r.tlsFlag() == "" {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.caFile != "" {
		pem, err := os.ReadFile(r.caFile)
		if err != nil {
			return nil, usageErrorf("%s: %v", source(fromEnv, "redis-ca-file"), err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageErrorf("%s=%s: no PEM certificate in it", source(fromEnv, "redis-ca-file"), r.caFile)
		}
		tc.RootCAs = pool
	}
	switch {
	case r.certFile != "" && r.keyFile != "":
		cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
		if err != nil {
			return nil, usageErrorf("%s/%s: %v", source(fromEnv, "redis-cert-file"), source(fromEnv, "redis-key-file"), err)
		}
		tc.Certificates = []tls.Certificate{cert}
	case r.certFile != "" || r.keyFile != "":
		return nil, usageErrorf("--redis-cert-file and --redis-key-file go together")
	}
	return tc, nil
}

// explain turns cluster.Config.Resolve's error into one naming the flags.
func (r *redisFlags) explain(fromEnv map[string]string, tlsFlag string, err error) error {
	in := source(fromEnv, "redis")
	var ce *cluster.ConfigError
	switch {
	case !errors.As(err, &ce):
	case ce.Field == "URL":
		return usageErrorf("%s: %v", in, ce.Err)
	case ce.Field == "Username":
		return usageErrorf("%s and the user in the URL of %s: give the user in one place", source(fromEnv, "redis-user"), in)
	case ce.Field == "Password":
		return usageErrorf("%s and the password in the URL of %s: give the password in one place (the file keeps it out of ps and logs)",
			source(fromEnv, "redis-password-file"), in)
	case ce.Field == "TLSConfig":
		return usageErrorf("%s asks for TLS but %s is a redis:// URL (plain text): use rediss://", source(fromEnv, tlsFlag), in)
	}
	return usageErrorf("%s: %v", in, err)
}

// dialError explains a failure to reach Redis at addrs; nil when err is
// none of the connection failures it knows, so the caller words it.
func dialError(cmd string, addrs []string, err error) error {
	var unknownCA x509.UnknownAuthorityError
	var badCert *tls.CertificateVerificationError
	switch {
	case redis.IsAuthError(err) || redis.IsPermissionError(err):
		return fmt.Errorf("%s: Redis refused the credentials (check --redis-user and --redis-password-file or the URL's user and password, and the user's ACL): %w", cmd, err)
	case errors.As(err, &unknownCA) || errors.As(err, &badCert):
		return fmt.Errorf("%s: the TLS certificate of Redis at %s was refused (is --redis-ca-file the CA that signed it? does it name the address dialed?): %w",
			cmd, strings.Join(addrs, ","), err)
	case errors.Is(err, cluster.ErrUnreachable):
		return fmt.Errorf("%s: Redis unreachable at %v (start a local cluster with 'shardseq cluster up' or 'make run'): %w", cmd, addrs, err)
	case errors.Is(err, cluster.ErrNotCluster):
		return fmt.Errorf("%s: %v is not a Redis Cluster (shardseq needs cluster-enabled yes): %w", cmd, addrs, err)
	}
	return nil
}
