package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable writes the report for people.
func (r *Report) WriteTable(w io.Writer) error {
	m := r.Machine
	redis := ""
	if m.Redis != "" {
		redis = ", Redis " + m.Redis
	}
	fmt.Fprintf(w, "machine: %d CPUs (GOMAXPROCS %d), %s, %s, %s%s, load average at start %s\n",
		m.CPUs, m.GOMAXPROCS, m.CPUModel, m.OS, m.Go, redis, m.LoadAvg)
	if r.Cluster != "" {
		fmt.Fprintf(w, "cluster: %s\n", r.Cluster)
	}
	fmt.Fprintln(w)
	if len(r.Results) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "mode\tcallers\tIDs/s\tp50\tp99\tp99.9\tround trips/1k IDs\tvs segment\terrors\t")
		for _, x := range r.Results {
			if x.Calls == 0 && x.Note != "" {
				fmt.Fprintf(tw, "%s\t\t\t\t\t\t\t\t\t%s\n", x.Mode, x.Note)
				continue
			}
			rt := "-"
			if x.RoundTrips >= 0 {
				rt = fmt.Sprintf("%.3g", x.RoundTripsPer1k)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t\n", x.Mode, x.Concurrency, FormatSI(x.IDsPerSec),
				FormatMicros(x.P50us), FormatMicros(x.P99us), FormatMicros(x.P999us), rt, ratio(x.VsSegment), x.Errors)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w, "\nnotes:")
		for _, x := range r.Results {
			fmt.Fprintf(w, "  %-20s %s\n", x.Mode, x.Note)
		}
		fmt.Fprintf(w, "  latency is per call (one ID, or one HTTP request); in-process modes time 1 call in %d.\n", sampleEvery)
	}
	if f := r.Fault; f != nil {
		fmt.Fprintf(w, "fault: %s %s with %d segment-mode callers; killed at %.1fs, replica promoted at %.1fs, old master restarted at %.1fs, cluster healthy at %.1fs, end %.1fs\n\n",
			f.Fault, f.Master, f.Concurrency, f.KilledAt, f.PromotedAt, f.RestartedAt, f.HealthyAt, f.Seconds)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "phase\tfrom\tto\tcalls\tIDs/s\terrors\tp50\tp99\tp99.9\tmax\t")
		for _, p := range f.Phases {
			fmt.Fprintf(tw, "%s\t%.1fs\t%.1fs\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t\n", p.Name, p.From, p.To, p.Calls, FormatSI(p.IDsPerSec), p.Errors,
				FormatMicros(p.P50us), FormatMicros(p.P99us), FormatMicros(p.P999us), FormatMicros(p.MaxUs))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if f.FirstError != "" {
			fmt.Fprintf(w, "first error: %s\n", f.FirstError)
		}
		fmt.Fprintf(w, "shards after the run:\n  %s\n", strings.Join(f.Shards, "\n  "))
	}
	return nil
}

// FormatSI writes v with a k, M or G suffix (IDs/s in tables and charts).
func FormatSI(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	}
	return fmt.Sprintf("%.0f", v)
}

// FormatMicros writes a duration given in microseconds in its best unit.
func FormatMicros(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2fs", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.2fms", us/1e3)
	case us >= 1:
		return fmt.Sprintf("%.1fµs", us)
	}
	return fmt.Sprintf("%.0fns", us*1e3)
}

func ratio(r float64) string {
	switch {
	case r == 0:
		return "-"
	case r >= 10:
		return fmt.Sprintf("%.0fx", r)
	case r >= 0.01:
		return fmt.Sprintf("%.2fx", r)
	}
	return fmt.Sprintf("%.1ex", r)
}
