package client_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
)

// The examples that need a Redis Cluster have no Output comment: they
// compile but do not run in `go test`. `shardseq cluster up` starts a local
// cluster on 127.0.0.1:7000-7005.

// A client for the "orders" namespace with 12 shards on a local cluster.
func ExampleNew() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{
		URL:       "redis://127.0.0.1:7000", // any node; the rest is discovered
		Namespace: "orders",
		Shards:    12,
	})
	if errors.Is(err, client.ErrShardCountMismatch) {
		log.Fatal("orders was created with another shard count: ", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	id, err := c.Next(ctx)
	if err != nil {
		log.Fatal(err) // only when no shard at all can serve
	}
	fmt.Println(id > 0)
}

// A hardened cluster: TLS with a private CA, an ACL user from the URL, its
// password from a secret file, more seeds as addr parameters.
func ExampleNew_url() {
	pem, err := os.ReadFile("/etc/shardseq/redis-ca.pem")
	if err != nil {
		log.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	password, err := os.ReadFile("/run/secrets/redis-password")
	if err != nil {
		log.Fatal(err)
	}
	c, err := client.New(context.Background(), client.Config{
		URL:       "rediss://shardseq@redis-0.internal:6379?addr=redis-1.internal:6379&addr=redis-2.internal:6379",
		Password:  strings.TrimSpace(string(password)),
		TLS:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		Namespace: "orders",
	})
	if err != nil {
		log.Fatal(err) // a password both in URL and Password is a *client.ConfigError
	}
	defer c.Close()
}

// A batch of IDs costs no round trip per ID: they come from reserved blocks.
func ExampleClient_NextN() {
	ctx := context.Background()
	c, err := client.New(ctx, client.DefaultConfig("127.0.0.1:7000"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	ids, err := c.NextN(ctx, 100)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(ids))
}

// Next fails only when no shard can serve; the error wraps every shard's
// own error, so errors.Is finds the cause.
func ExampleClient_Next() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c, err := client.New(ctx, client.Config{URL: "redis://127.0.0.1:7000", Namespace: "invoices"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	id, err := c.Next(ctx)
	switch {
	case errors.Is(err, client.ErrNoHealthyShard) && errors.Is(err, client.ErrCeilingLost):
		log.Fatal("a shard lost its counter and every trusted ceiling; see the README: ", err)
	case errors.Is(err, client.ErrNoHealthyShard):
		log.Fatal("no shard can serve (masters down, replicas not acknowledging): ", err)
	case err != nil:
		log.Fatal(err) // the context ended, or the client was closed
	}
	fmt.Println(id)
}

// Strict mode reserves every ID with its own replicated round trip, so no ID
// is ever held in memory; a crash loses nothing but never repeats either.
func ExampleConfig_strict() {
	cfg := client.DefaultConfig("127.0.0.1:7000")
	cfg.Namespace, cfg.Strict = "invoices", true
	c, err := client.New(context.Background(), cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, s := range c.Shards() {
		fmt.Println(s.Index, s.Node, s.State)
	}
}

// tracer stands for an instrumentation hook such as redisotel's: it sees
// every command shardseq sends.
type tracer struct{}

func (tracer) DialHook(next redis.DialHook) redis.DialHook { return next }
func (tracer) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		log.Printf("redis %s: %v", cmd.Name(), err)
		return err
	}
}
func (tracer) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// NewRedisClient makes every go-redis client of the connection: the place
// for hooks (redisotel.InstrumentTracing(rc) works the same), a custom
// Dialer or a CredentialsProvider. The client closes what it made.
func ExampleConfig_newRedisClient() {
	c, err := client.New(context.Background(), client.Config{
		URL: "redis://127.0.0.1:7000",
		NewRedisClient: func(opt *redis.Options) *redis.Client {
			opt.ClientName = "shardseq-orders" // shown by CLIENT LIST
			rc := redis.NewClient(opt)
			rc.AddHook(tracer{})
			return rc
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
}

// Clients of several namespaces can share one connection (cluster.Dial) and
// one shard registry. The connection is the caller's: close it after them.
func ExampleConfig_shared() {
	ctx := context.Background()
	conn, err := cluster.Dial(ctx, cluster.Config{URL: "redis://127.0.0.1:7000"})
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	reg := client.NewRegistry()
	for _, ns := range []string{"orders", "users"} {
		c, err := client.New(ctx, client.Config{Cluster: conn, Registry: reg, Namespace: ns})
		if err != nil {
			log.Fatal(err)
		}
		defer c.Close()
	}
	rows, _ := reg.List("users")
	fmt.Println(len(rows))
}

func ExampleDefaultConfig() {
	cfg := client.DefaultConfig("127.0.0.1:7000")
	fmt.Println(cfg.Namespace, cfg.BlockSize, cfg.OrderWindow, cfg.Strict)
	// Output: default 4 1s false
}

func ExampleConfig_Validate() {
	err := client.Config{URL: "redis://app:pw@127.0.0.1:7000", Password: "pw"}.Validate()
	var ce *client.ConfigError
	fmt.Println(errors.As(err, &ce), ce.Field)
	fmt.Println(client.Config{URL: "redis://127.0.0.1:7000", OrderWindow: -1}.Validate())
	// Output:
	// true Password
	// <nil>
}

func ExampleConfigError() {
	_, err := client.New(context.Background(), client.Config{URL: "redis://127.0.0.1:7000", Shards: 5000})
	var ce *client.ConfigError
	if errors.As(err, &ce) {
		fmt.Println(ce.Field, ce.Value)
	}
	// Output: Shards 5000
}

func ExampleConfigError_Error() {
	err := client.Config{URL: "http://127.0.0.1:7000"}.Validate()
	fmt.Println(err)
	// Output: client: config URL=http://127.0.0.1:7000: unknown scheme "http://": want redis://[user[:password]@]host[:port][?addr=host:port...], rediss://... (TLS) or host:port[,host:port...]
}

func ExampleConfigError_Unwrap() {
	err := client.Config{URL: "redis://127.0.0.1:7000", Namespace: "a{b}"}.Validate()
	fmt.Println(errors.Is(err, client.ErrInvalidConfig), errors.Is(err, client.ErrInvalidNamespace))
	// Output: true true
}

func ExampleValidateNamespace() {
	fmt.Println(client.ValidateNamespace("orders-2026"))
	fmt.Println(client.ValidateNamespace("orders:{eu}"))
	// Output:
	// <nil>
	// shard: invalid namespace: want 1 to 64 characters of A-Z a-z 0-9 _ . -: "orders:{eu}"
}

// An ID tells which shard issued it, and its place in that shard's counter.
func ExampleDecode() {
	shardIndex, seq := client.Decode(73, 12)
	fmt.Println(shardIndex, seq)
	// Output: 1 6
}

func ExampleNewRegistry() {
	reg := client.NewRegistry()
	rows, changed := reg.List("orders") // empty until a client reports to it
	fmt.Println(len(rows), changed != nil)
	// Output: 0 true
}

func ExampleClient_Namespace() {
	c, err := client.New(context.Background(), client.Config{URL: "redis://127.0.0.1:7000", Namespace: "orders"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.Namespace())
}

// ShardCount is the N stored with the namespace: with Shards 0 a client
// takes whatever the namespace was created with.
func ExampleClient_ShardCount() {
	c, err := client.New(context.Background(), client.Config{URL: "redis://127.0.0.1:7000", Namespace: "orders"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.ShardCount())
}

// Start continues above an older generator's IDs.
func ExampleClient_Start() {
	c, err := client.New(context.Background(), client.Config{URL: "redis://127.0.0.1:7000", Namespace: "legacy", Start: 1_000_000})
	if errors.Is(err, client.ErrSettingsMismatch) {
		log.Fatal("legacy exists with another start: ", err)
	}
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.Start())
}

// The block size follows the rate at which IDs are taken.
func ExampleClient_BlockSize() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{URL: "redis://127.0.0.1:7000"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for range 100_000 {
		if _, err := c.Next(ctx); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(c.BlockSize())
}

func ExampleClient_Shards() {
	c, err := client.New(context.Background(), client.Config{URL: "redis://127.0.0.1:7000"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, s := range c.Shards() {
		if !s.Healthy {
			fmt.Printf("shard %d on %s: breaker %s, last error %s\n", s.Index, s.Node, s.State, s.LastError)
		}
	}
}

// Healthy backs a readiness probe: how many shards serve.
func ExampleClient_Healthy() {
	c, err := client.New(context.Background(), client.Config{URL: "redis://127.0.0.1:7000"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	fmt.Println(c.Healthy() == c.ShardCount())
}

// The registry can be watched: List returns the rows and a channel closed at
// the next change.
func ExampleClient_Registry() {
	c, err := client.New(context.Background(), client.Config{URL: "redis://127.0.0.1:7000", Namespace: "orders"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	rows, changed := c.Registry().List("orders")
	fmt.Println(len(rows))
	select {
	case <-changed:
		fmt.Println("a shard's health changed")
	case <-time.After(time.Second):
	}
}

// Close drops the IDs still buffered (gaps, never handed out by anyone) and
// closes the connection the client opened.
func ExampleClient_Close() {
	c, err := client.New(context.Background(), client.Config{URL: "redis://127.0.0.1:7000"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Next(context.Background()); err != nil {
		log.Fatal(err)
	}
	if err := c.Close(); err != nil {
		log.Print(err)
	}
	_, err = c.Next(context.Background())
	fmt.Println(errors.Is(err, client.ErrClosed))
}

// Discarded counts the gaps: IDs reserved but never handed out.
func ExampleClient_Discarded() {
	c, err := client.New(context.Background(), client.Config{URL: "redis://127.0.0.1:7000"})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Next(context.Background()); err != nil {
		log.Fatal(err)
	}
	_ = c.Close()
	fmt.Println(c.Discarded())
}
