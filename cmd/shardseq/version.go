package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is set at build time: go build -ldflags "-X main.Version=v1.2.3".
var Version = ""

// VersionCommand prints the version.
type VersionCommand struct {
	Main *Main
}

func version() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// Run prints the version.
func (c *VersionCommand) Run(ctx context.Context, args []string) error {
	if _, err := parseFlags(newFlagSet("version"), args, c.Usage); err != nil {
		return err
	}
	if len(args) > 0 {
		return usageErrorf("takes no arguments")
	}
	fmt.Fprintf(c.Main.Stdout, "shardseq %s %s %s/%s\n", version(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}

// Usage prints the help of version.
func (c *VersionCommand) Usage() {
	fmt.Fprintln(c.Main.Stdout, "Usage: shardseq version\n\nPrints the version of shardseq and of Go it was built with.")
}
