package server_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"

	"connectrpc.com/connect"

	shardseqv1 "github.com/shardseq/shardseq/api/gen/shardseq/v1"
	"github.com/shardseq/shardseq/api/gen/shardseq/v1/shardseqv1connect"
)

// Example_gRPC takes IDs over gRPC from `shardseq serve` on localhost:8080
// with connect-go's client: gRPC over HTTP/2 without TLS (with --tls-cert,
// an https:// URL and a Transport trusting the server's CA instead).
// connect.WithGRPCWeb(), or no option (the Connect protocol, HTTP/1.1 too),
// reach the same handlers.
func Example_gRPC() {
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true) // gRPC's HTTP/2 "prior knowledge" on a plain port
	ids := shardseqv1connect.NewShardseqServiceClient(&http.Client{Transport: &http.Transport{Protocols: &h2c}},
		"http://localhost:8080", connect.WithGRPC())

	req := connect.NewRequest(&shardseqv1.TakeIdsRequest{Namespace: "orders", Count: 5})
	req.Header().Set("Authorization", "Bearer "+"<a token of --token-file>") // only with --token-file
	res, err := ids.TakeIds(context.Background(), req)
	if err != nil {
		// A gRPC status code, and the HTTP API's error code in an ErrorDetail.
		var ce *connect.Error
		if errors.As(err, &ce) {
			for _, d := range ce.Details() {
				if v, _ := d.Value(); v != nil {
					if ed, ok := v.(*shardseqv1.ErrorDetail); ok {
						log.Fatalf("%v (%s, retry after %ds): %s", ce.Code(), ed.GetCode(), ed.GetRetryAfterSeconds(), ce.Message())
					}
				}
			}
		}
		log.Fatal(err)
	}
	fmt.Println(res.Msg.GetIds())
}
