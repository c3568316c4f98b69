package server_test

import (
	"context"
	"log"
	"net/http"

	"github.com/shardseq/shardseq/client"
	"github.com/shardseq/shardseq/cluster"
	"github.com/shardseq/shardseq/server"
)

// Example serves IDs of every namespace on :8080 from one Redis Cluster
// connection, as `shardseq serve` does.
func Example() {
	ctx := context.Background()
	cl, err := cluster.Dial(ctx, cluster.Config{Addrs: []string{"127.0.0.1:7000"}})
	if err != nil {
		log.Fatal(err) // cluster.ErrUnreachable, cluster.ErrNotCluster, ...
	}
	defer cl.Close()

	srv, err := server.New(server.Config{
		Cluster: cl,
		Shards:  12,                               // N of every namespace
		Client:  client.Config{BlockSize: 10_000}, // template of each namespace's client
	})
	if err != nil {
		log.Fatal(err) // e.g. client.ErrShardCountMismatch for "default"
	}
	defer srv.Close()

	// curl -XPOST 'localhost:8080/v1/ids/orders?count=5'
	hs := server.NewHTTPServer(":8080", srv.Handler(), nil)
	if err := hs.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
}
