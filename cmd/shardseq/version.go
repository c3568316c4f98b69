package main

import (
	"context"
	"fmt"
	"runtime"

	"github.com/shardseq/shardseq/internal/version"
)

// VersionCommand prints the version (stamped by `make build`, see
// internal/version).
type VersionCommand struct {
	Main *Main
}

// Run prints the version.
func (c *VersionCommand) Run(ctx context.Context, args []string) error {
	if _, err := parseFlags(newFlagSet("version"), args, c.Usage); err != nil {
		return err
	}
	if len(args) > 0 {
		return usageErrorf("takes no arguments")
	}
	fmt.Fprintf(c.Main.Stdout, "shardseq %s %s/%s\n", version.Get(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// Usage prints the help of version.
func (c *VersionCommand) Usage() {
	fmt.Fprintln(c.Main.Stdout, "Usage: shardseq version (or shardseq --version)\n\nPrints the version and commit of shardseq and the Go it was built with.")
}
