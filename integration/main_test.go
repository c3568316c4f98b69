//go:build integration

package integration

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

type discardLogger struct{}

func (discardLogger) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	// go-redis logs every refused dial; during fault tests that is noise, and
	// the tests assert on outcomes instead.
	redis.SetLogger(discardLogger{})
	dir, err := os.MkdirTemp("", "shardseq-it-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}
