// Package charts draws the charts of BENCHMARKS.md from the JSON reports of
// `shardseq bench --json` (and `shardseq-lab baseline --json`): throughput by
// mode, and callers' latency over time during a fault run. It lives in the lab
// module because gonum/plot, with its fonts and PDF and LaTeX back ends, must
// not reach the product's module.
package charts

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/shardseq/shardseq/internal/lab/bench"
)

// File names written by Write.
const (
	ThroughputPNG      = "throughput.png"
	FailoverLatencyPNG = "failover-latency.png"
)

// Write writes the report's charts into dir: throughput by mode (a log scale
// bar chart) when it has results, and callers' latency over time when it has
// a fault run. It returns the files written.
func Write(r *bench.Report, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var out []string
	if len(r.Results) > 0 {
		p := filepath.Join(dir, ThroughputPNG)
		if err := plotThroughput(r, p); err != nil {
			return out, err
		}
		out = append(out, p)
	}
	if r.Fault != nil && len(r.Fault.Timeline) > 0 {
		p := filepath.Join(dir, FailoverLatencyPNG)
		if err := plotFault(r.Fault, p); err != nil {
			return out, err
		}
		out = append(out, p)
	}
	return out, nil
}

// log10Ticks labels a log10-valued axis with powers of ten.
type log10Ticks struct{ unit string }

func (t log10Ticks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for k := math.Floor(lo); k <= math.Ceil(hi); k++ {
		out = append(out, plot.Tick{Value: k, Label: bench.FormatSI(math.Pow(10, k)) + t.unit})
	}
	return out
}

func plotThroughput(r *bench.Report, path string) error {
	var vals plotter.Values
	var names []string
	for i := len(r.Results) - 1; i >= 0; i-- { // first mode on top
		x := r.Results[i]
		if x.IDsPerSec <= 0 {
			continue
		}
		vals = append(vals, math.Log10(x.IDsPerSec))
		names = append(names, fmt.Sprintf("%s (%s/s)", x.Mode, bench.FormatSI(x.IDsPerSec)))
	}
	if len(vals) == 0 {
		return nil
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("IDs per second by generator, %d CPUs (%s), same run", r.Machine.CPUs, r.Machine.CPUModel)
	p.X.Label.Text = "IDs/s (log scale)"
	bars, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return err
	}
	bars.Horizontal = true
	bars.Color = color.RGBA{R: 60, G: 110, B: 180, A: 255}
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalY(names...)
	p.X.Min = 0
	p.X.Max = math.Ceil(slicesMax(vals))
	p.X.Tick.Marker = log10Ticks{}
	p.Add(plotter.NewGrid())
	return p.Save(9*vg.Inch, vg.Length(1.2+0.35*float64(len(vals)))*vg.Inch, path)
}

func slicesMax(v plotter.Values) float64 {
	m := math.Inf(-1)
	for _, x := range v {
		m = max(m, x)
	}
	return m
}

func plotFault(f *bench.FaultReport, path string) error {
	p := plot.New()
	load := "flat out"
	if f.Rate > 0 {
		load = bench.FormatSI(f.Rate) + " IDs/s in all"
	}
	p.Title.Text = fmt.Sprintf("Segment-mode callers (%d, %s) while master %s is killed: latency per 100ms", f.Concurrency, load, f.Master)
	p.X.Label.Text = "seconds since start"
	p.Y.Label.Text = "latency (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = durTicks{}
	series := []struct {
		name string
		get  func(bench.Window) float64
		col  color.Color
	}{
		{"p50", func(w bench.Window) float64 { return w.P50us }, color.RGBA{G: 140, A: 255}},
		{"p99", func(w bench.Window) float64 { return w.P99us }, color.RGBA{R: 30, G: 80, B: 200, A: 255}},
		{"max", func(w bench.Window) float64 { return w.MaxUs }, color.RGBA{R: 200, G: 40, B: 40, A: 255}},
	}
	lo, hi := math.Inf(1), 0.0
	for _, s := range series {
		var pts plotter.XYs
		for _, w := range f.Timeline {
			if w.Calls == 0 {
				continue
			}
			v := math.Max(s.get(w), 0.01)
			pts = append(pts, plotter.XY{X: w.From, Y: v})
			lo, hi = math.Min(lo, v), math.Max(hi, v)
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = s.col
		l.Width = vg.Points(1.2)
		p.Add(l)
		p.Legend.Add(s.name, l)
	}
	if hi == 0 {
		return nil
	}
	p.Y.Min, p.Y.Max = lo/2, hi*40
	var errPts plotter.XYs
	for _, w := range f.Timeline {
		if w.Errors > 0 {
			errPts = append(errPts, plotter.XY{X: w.From, Y: hi * 2})
		}
	}
	if len(errPts) > 0 {
		sc, err := plotter.NewScatter(errPts)
		if err != nil {
			return err
		}
		sc.Color = color.RGBA{R: 220, A: 255}
		p.Add(sc)
		p.Legend.Add("caller errors", sc)
	}
	for k, ev := range []struct {
		at   float64
		name string
	}{{f.KilledAt, "master killed"}, {f.PromotedAt, "replica promoted"}, {f.RestartedAt, "old master restarted"}, {f.HealthyAt, "cluster healthy"}} {
		if ev.at <= 0 {
			continue
		}
		l, err := plotter.NewLine(plotter.XYs{{X: ev.at, Y: p.Y.Min}, {X: ev.at, Y: p.Y.Max}})
		if err != nil {
			return err
		}
		l.Color = color.Gray{Y: 120}
		l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(l)
		lab, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: ev.at, Y: p.Y.Max / math.Pow(2.2, float64(k+1))}}, Labels: []string{" " + ev.name}})
		if err != nil {
			return err
		}
		lab.TextStyle[0].Font.Size = vg.Points(8)
		p.Add(lab)
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p.Save(10*vg.Inch, 5*vg.Inch, path)
}

// durTicks labels a microsecond axis at powers of ten.
type durTicks struct{}

func (durTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for k := math.Floor(math.Log10(lo)); k <= math.Ceil(math.Log10(hi)); k++ {
		v := math.Pow(10, k)
		if v >= lo && v <= hi {
			out = append(out, plot.Tick{Value: v, Label: bench.FormatMicros(v)})
		}
	}
	return out
}
