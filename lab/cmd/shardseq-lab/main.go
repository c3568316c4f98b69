// Command shardseq-lab runs what the product's binary leaves out: the
// in-process baselines (snowflake, sonyflake, uuid v7, xid) measured as
// `shardseq bench` measures segment mode, and the charts of BENCHMARKS.md
// drawn from the JSON reports of both.
//
//	shardseq-lab baseline [--duration 5s] [--concurrency N] [--json]
//	shardseq-lab report [--plot DIR] [--json] REPORT.json...
//	shardseq-lab bare [--listen 127.0.0.1:8090]
//
// bare serves POST /v1/ids/{namespace} as `shardseq serve` answers it, from
// an atomic counter: the baseline of scripts/http-vs-bare.sh (issue 22).
//
// For example, the side-by-side table and its chart:
//
//	bin/shardseq bench --launch --json > redis.json
//	(cd lab && go run ./cmd/shardseq-lab baseline --json) > baseline.json
//	(cd lab && go run ./cmd/shardseq-lab report --plot ../docs/bench ../redis.json ../baseline.json)
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shardseq/shardseq/internal/lab/bench"
	"github.com/shardseq/shardseq/lab/bare"
	"github.com/shardseq/shardseq/lab/baseline"
	"github.com/shardseq/shardseq/lab/charts"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintf(os.Stderr, "shardseq-lab: %v\n", err)
		os.Exit(1)
	}
}

const usage = `usage: shardseq-lab baseline [--duration 5s] [--concurrency N] [--json]
       shardseq-lab report [--plot DIR] [--json] REPORT.json...
       shardseq-lab bare [--listen 127.0.0.1:8090]`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return errors.New("no command given")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	switch args[0] {
	case "baseline":
		var cfg bench.Config
		fs.DurationVar(&cfg.Duration, "duration", 5*time.Second, "how long each generator runs")
		fs.IntVar(&cfg.Concurrency, "concurrency", 0, "callers per generator (default GOMAXPROCS)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		cfg.Progress = stderr
		rep, err := bench.RunGenerators(ctx, cfg, baseline.Generators())
		if rep != nil {
			err = errors.Join(err, write(rep, *asJSON, stdout))
		}
		return err
	case "report":
		dir := fs.String("plot", "", "write PNG charts into this directory")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() == 0 {
			return errors.New("report: name at least one JSON report (shardseq bench --json, shardseq-lab baseline --json)")
		}
		rep, err := readReports(fs.Args())
		if err != nil {
			return err
		}
		if *dir != "" {
			files, err := charts.Write(rep, *dir)
			for _, f := range files {
				fmt.Fprintf(stderr, "wrote %s\n", f)
			}
			if err != nil {
				return err
			}
		}
		return write(rep, *asJSON, stdout)
	case "bare":
		addr := fs.String("listen", "127.0.0.1:8090", "HTTP listen address")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			return err
		}
		log := slog.New(slog.NewTextHandler(stderr, nil))
		log.Info("bare handler listening", "addr", ln.Addr().String())
		return bare.Serve(ctx, ln, log)
	}
	fmt.Fprintln(stderr, usage)
	return fmt.Errorf("unknown command %q", args[0])
}

func write(rep *bench.Report, asJSON bool, w io.Writer) error {
	if asJSON {
		return rep.WriteJSON(w)
	}
	return rep.WriteTable(w)
}

// readReports merges reports into one: results in the order given, compared
// with the segment mode of any of them; the machine, cluster and fault run
// of the first report that has them.
func readReports(paths []string) (*bench.Report, error) {
	var out *bench.Report
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r bench.Report
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: not a bench report: %w", p, err)
		}
		if out == nil {
			out = &r
			continue
		}
		out.Results = append(out.Results, r.Results...)
		if out.Machine.Redis == "" && r.Machine.Redis != "" {
			out.Machine = r.Machine
		}
		if out.Cluster == "" {
			out.Cluster = r.Cluster
		}
		if out.Fault == nil {
			out.Fault = r.Fault
		}
	}
	out.SetVsSegment()
	return out, nil
}
