package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/shardseq/shardseq/client"
)

// A client for the "orders" namespace with 12 shards on a local cluster
// (`shardseq cluster up` prints its addresses).
func ExampleNew() {
	ctx := context.Background()
	c, err := client.New(ctx, client.Config{
		Addrs:     []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"},
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
