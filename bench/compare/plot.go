package main

import (
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/weir-io/weir/bench/harness"
)

// sideColors: weir (side A) in blue, the peer in orange.
var sideColors = [2]color.Color{color.RGBA{31, 119, 180, 255}, color.RGBA{255, 127, 14, 255}}

// plot writes throughput.svg (median records/s of both sides, one panel
// per comparison) and latency.svg (the latency distribution of each
// side's median-p99 run, one panel per comparison that measures latency).
func (d *driver) plot() error {
	var bars, cdfs []*plot.Plot
	for _, c := range d.done {
		if c.metric.higherBetter {
			p, err := barPlot(c)
			if err != nil {
				return err
			}
			bars = append(bars, p)
		}
		if c.a.runs[0].Results.CDF != nil || c.b.runs[0].Results.CDF != nil {
			p, err := cdfPlot(c)
			if err != nil {
				return err
			}
			cdfs = append(cdfs, p)
		}
	}
	if err := writeTiles(filepath.Join(d.cfg.out, "throughput"), bars); err != nil {
		return err
	}
	return writeTiles(filepath.Join(d.cfg.out, "latency"), cdfs)
}

func barPlot(c *comparison) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = c.name
	p.Y.Label.Text = "records/s (median)"
	p.Y.Min = 0
	p.Y.Tick.Marker = countTicks{}
	for i, s := range []*side{c.a, c.b} {
		b, err := plotter.NewBarChart(plotter.Values{median(s.runs, throughput.value)}, vg.Points(28))
		if err != nil {
			return nil, err
		}
		b.Color, b.LineStyle.Width = sideColors[i], 0
		b.Offset = vg.Points(float64(2*i-1) * 15)
		p.Add(b)
		p.Legend.Add(s.label, b)
	}
	p.Legend.Top = true
	p.NominalX("")
	return p, nil
}

// nines maps a percentile to -log10(1-p): 90% → 1, 99% → 2, 99.9% → 3.
func nines(p float64) float64 { return -math.Log10(1 - p/100) }

func cdfPlot(c *comparison) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = c.name + " latency"
	if kind := c.a.runs[0].Results.LatencyKind; kind != "" {
		p.Title.Text = c.name + ": " + kind
	}
	p.Y.Label.Text = "ms (log)"
	p.X.Label.Text = "percentile"
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, logTicks{}
	p.X.Tick.Marker = plot.ConstantTicks([]plot.Tick{{Value: 0, Label: "0"}, {Value: nines(50), Label: "50"},
		{Value: 1, Label: "90"}, {Value: 2, Label: "99"}, {Value: 3, Label: "99.9"}, {Value: 4, Label: "99.99"}})
	for i, s := range []*side{c.a, c.b} {
		cdf := medianCDF(s.runs)
		if cdf == nil {
			continue
		}
		var xys plotter.XYs
		for _, pt := range cdf {
			if pt.P < 100 { // the maximum is at infinity on this axis
				xys = append(xys, plotter.XY{X: nines(pt.P), Y: max(pt.Ms, 0.001)})
			}
		}
		l, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		l.Color, l.Width = sideColors[i], vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(s.label, l)
	}
	// Bottom right: below the curves, which rise to the right.
	return p, nil
}

// medianCDF is the distribution of the run whose p99 is the median.
func medianCDF(runs []harness.Run) []harness.Percentile {
	m := median(runs, p99.value)
	best := -1
	for i, r := range runs {
		if r.Results.CDF != nil && (best < 0 || math.Abs(p99.value(r)-m) < math.Abs(p99.value(runs[best])-m)) {
			best = i
		}
	}
	if best < 0 {
		return nil
	}
	return runs[best].Results.CDF
}

// writeTiles draws plots in a grid of three columns into base.svg and
// base.png (for viewers without SVG).
func writeTiles(base string, plots []*plot.Plot) error {
	if len(plots) == 0 {
		return nil
	}
	const cols = 3
	rows := (len(plots) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, p := range plots {
		grid[i/cols][i%cols] = p
	}
	w, h := vg.Points(300*cols), vg.Points(240*float64(rows))
	t := draw.Tiles{Rows: rows, Cols: cols, PadX: vg.Points(12), PadY: vg.Points(12),
		PadTop: vg.Points(6), PadBottom: vg.Points(6), PadLeft: vg.Points(6), PadRight: vg.Points(6)}
	for _, img := range []interface {
		vg.CanvasSizer
		io.WriterTo
	}{vgsvg.New(w, h), vgimg.PngCanvas{Canvas: vgimg.New(w, h)}} {
		canvases := plot.Align(grid, t, draw.New(img))
		for i := range grid {
			for j, p := range grid[i] {
				if p != nil {
					p.Draw(canvases[i][j])
				}
			}
		}
		ext := ".svg"
		if _, ok := img.(vgimg.PngCanvas); ok {
			ext = ".png"
		}
		if err := writeFile(base+ext, img); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(path string, w io.WriterTo) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := w.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// countTicks are the default ticks labelled with k and M.
type countTicks struct{}

func (countTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = num(ts[i].Value)
		}
	}
	return ts
}

// logTicks label 1, 2 and 5 times every power of ten in range, so that a
// range within one decade still has labels.
type logTicks struct{}

func (logTicks) Ticks(min, max float64) []plot.Tick {
	var ts []plot.Tick
	for e := math.Floor(math.Log10(min)); e <= math.Ceil(math.Log10(max)); e++ {
		for _, m := range []float64{1, 2, 5} {
			if v := m * math.Pow(10, e); v >= min && v <= max {
				ts = append(ts, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'g', -1, 64)})
			}
		}
	}
	return ts
}
