package runs

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"sort"
	"strings"

	"github.com/critlab/critlab/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

type namedPlot struct {
	name string
	p    *plot.Plot
}

// Plot size: a single-column figure.
const plotW, plotH = 6 * vg.Inch, 4 * vg.Inch

func savePlot(p *plot.Plot, path, format string) error {
	wt, err := p.WriterTo(plotW, plotH, format)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	var b bytes.Buffer
	if _, err := wt.WriteTo(&b); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfile.Write(path, b.Bytes())
}

// plots builds every plot the report's data supports.
func (r *Report) plots() ([]namedPlot, error) {
	var out []namedPlot
	add := func(name string, p *plot.Plot, err error) error {
		if err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		if p != nil {
			out = append(out, namedPlot{name, p})
		}
		return nil
	}
	if err := add(r.pointPlot("removal", "Final accuracy vs deficit removal", "epoch the deficit is removed",
		VariantRemoval, []string{VariantVFlip, VariantLRRestart})); err != nil {
		return nil, err
	}
	if err := add(r.windowPlot()); err != nil {
		return nil, err
	}
	if err := add(r.pointPlot("finetune", "Fine-tuning after deficit pretraining", "deficit pretraining epochs",
		VariantFinetune, nil)); err != nil {
		return nil, err
	}
	if err := add(r.curvesPlot()); err != nil {
		return nil, err
	}
	if len(r.Fisher) > 0 {
		if err := add(r.fisherPlot()); err != nil {
			return nil, err
		}
		for _, id := range sortedKeys(r.Fisher) {
			p, err := r.fisherSharesPlot(id)
			if err := add(filepath.Join("fisher-layers", id), p, err); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// errPoints are points with symmetric y errors.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p
}

// pointsOf returns the (point, mean final accuracy %, std %) of a variant.
func (r *Report) pointsOf(variant string, y func(PointSummary) float64) errPoints {
	var e errPoints
	for _, ps := range r.Points {
		if ps.Variant != variant {
			continue
		}
		std := ps.FinalStd
		if math.IsNaN(std) {
			std = 0
		}
		e.XYs = append(e.XYs, plotter.XY{X: float64(ps.Point), Y: y(ps)})
		e.YErrors = append(e.YErrors, struct{ Low, High float64 }{100 * std, 100 * std})
	}
	return e
}

// addSeries draws a line with points and error bars.
func addSeries(p *plot.Plot, name string, e errPoints, i int, line bool) error {
	if len(e.XYs) == 0 {
		return nil
	}
	sc, err := plotter.NewScatter(e.XYs)
	if err != nil {
		return err
	}
	sc.GlyphStyle.Color = plotutil.Color(i)
	sc.GlyphStyle.Shape = plotutil.Shape(i)
	sc.GlyphStyle.Radius = vg.Points(3)
	bars, err := plotter.NewYErrorBars(e)
	if err != nil {
		return err
	}
	bars.LineStyle.Color = plotutil.Color(i)
	p.Add(bars, sc)
	if line && len(e.XYs) > 1 {
		l, err := plotter.NewLine(e.XYs)
		if err != nil {
			return err
		}
		l.LineStyle.Color = plotutil.Color(i)
		l.LineStyle.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(name, l, sc)
	} else {
		p.Legend.Add(name, sc)
	}
	return nil
}

// addHLine draws a dashed horizontal reference line across xs.
func addHLine(p *plot.Plot, name string, y, x0, x1 float64) error {
	l, err := plotter.NewLine(plotter.XYs{{X: x0, Y: y}, {X: x1, Y: y}})
	if err != nil {
		return err
	}
	l.LineStyle.Color = color.Gray{Y: 100}
	l.LineStyle.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(l)
	p.Legend.Add(name, l)
	return nil
}

func finalPct(ps PointSummary) float64 { return 100 * ps.FinalMean }

// pointPlot is final accuracy vs point for a variant, with controls as
// extra series and the baseline (or scratch) as a dashed line.
func (r *Report) pointPlot(name, title, xlabel, variant string, controls []string) (string, *plot.Plot, error) {
	main := r.pointsOf(variant, finalPct)
	if len(main.XYs) == 0 {
		return name, nil, nil
	}
	p := newPlot(title, xlabel, fmt.Sprintf("final test accuracy %% (mean of last %d epochs)", FinalEpochs))
	// Accuracy falls with the point, and the controls sit at the last,
	// top right; bottom left is free.
	p.Legend.Top, p.Legend.Left = false, true
	if err := addSeries(p, variant, main, 0, true); err != nil {
		return name, nil, err
	}
	x0, x1 := main.XYs[0].X, main.XYs[len(main.XYs)-1].X
	if err := r.addControls(p, controls, finalPct, x1-x0); err != nil {
		return name, nil, err
	}
	// The reference as a dashed line, unless it is one of the plotted
	// points (removal point 0).
	ref, refName := r.Reference(variant)
	if !math.IsNaN(ref) && !strings.HasPrefix(refName, variant+"@") && x1 > x0 {
		if err := addHLine(p, refName, 100*ref, x0, x1); err != nil {
			return name, nil, err
		}
	}
	return name, p, nil
}

// addControls adds the control variants' points (y from each point's
// summary), shifted right by a little of the x span so that they stand
// beside the main series' point instead of over it.
func (r *Report) addControls(p *plot.Plot, controls []string, y func(PointSummary) float64, span float64) error {
	for i, c := range controls {
		e := r.pointsOf(c, y)
		for j := range e.XYs {
			e.XYs[j].X += float64(i+1) * 0.012 * span
		}
		if err := addSeries(p, c, e, i+1, false); err != nil {
			return err
		}
	}
	return nil
}

// windowPlot is the accuracy change vs window onset.
func (r *Report) windowPlot() (string, *plot.Plot, error) {
	const name = "window"
	if ref, _ := r.Reference(VariantWindow); math.IsNaN(ref) {
		return name, nil, nil
	}
	change := func(ps PointSummary) float64 { return 100 * ps.Change }
	e := r.pointsOf(VariantWindow, change)
	if len(e.XYs) == 0 {
		return name, nil, nil
	}
	length := ""
	for _, rs := range r.Runs {
		if rs.Variant == VariantWindow && len(rs.Rows) > 0 {
			length = fmt.Sprintf(" (window of %d epochs)", rs.Rows[0].DeficitEnd-rs.Rows[0].DeficitStart)
			break
		}
	}
	p := newPlot("Sensitivity to a deficit window"+length, "window onset (epoch)", "final accuracy change vs baseline (points)")
	if err := addSeries(p, VariantWindow, e, 0, true); err != nil {
		return name, nil, err
	}
	x0, x1 := e.XYs[0].X, e.XYs[len(e.XYs)-1].X
	if err := r.addControls(p, []string{VariantWindowVFlip, VariantWindowLRRestart}, change, x1-x0); err != nil {
		return name, nil, err
	}
	if x1 > x0 {
		if err := addHLine(p, "baseline", 0, x0, x1); err != nil {
			return name, nil, err
		}
	}
	return name, p, nil
}

// curvesPlot is test accuracy vs epoch for every run; runs of one
// (variant, point) share a color.
func (r *Report) curvesPlot() (string, *plot.Plot, error) {
	const name = "curves"
	p := newPlot("Learning curves", "epoch", "test accuracy %")
	p.Legend.Top, p.Legend.Left = false, false
	colors := map[Label]int{}
	seen := map[string]bool{}
	for _, rs := range r.Runs {
		if rs.Variant == VariantTrunk || seen[rs.RunID] {
			continue
		}
		seen[rs.RunID] = true
		l := Label{rs.Variant, rs.Point}
		ci, ok := colors[l]
		if !ok {
			ci = len(colors)
			colors[l] = ci
		}
		var xys plotter.XYs
		for _, m := range rs.Rows {
			if m.TestAcc != nil {
				xys = append(xys, plotter.XY{X: float64(m.Epoch), Y: 100 * *m.TestAcc})
			}
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return name, nil, err
		}
		line.LineStyle.Color = plotutil.Color(ci)
		line.LineStyle.Dashes = plotutil.Dashes(ci / len(plotutil.DefaultColors))
		p.Add(line)
		if !ok && len(colors) <= 12 {
			p.Legend.Add(labelText(l), line)
		}
	}
	return name, p, nil
}

func labelText(l Label) string {
	if l.Point < 0 {
		return l.Variant
	}
	return fmt.Sprintf("%s %d", l.Variant, l.Point)
}

// fisherPlot is Tr F vs epoch for every run.
func (r *Report) fisherPlot() (string, *plot.Plot, error) {
	const name = "fisher"
	p := newPlot("Fisher information trace", "epoch", "Tr F")
	for i, id := range sortedKeys(r.Fisher) {
		var xys plotter.XYs
		for _, f := range r.Fisher[id] {
			if f.Layer == FisherTotal {
				xys = append(xys, plotter.XY{X: float64(f.Epoch), Y: f.Trace})
			}
		}
		if len(xys) == 0 {
			continue
		}
		line, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return name, nil, err
		}
		line.LineStyle.Color = plotutil.Color(i)
		line.LineStyle.Dashes = plotutil.Dashes(i / len(plotutil.DefaultColors))
		pts.GlyphStyle.Color = plotutil.Color(i)
		pts.GlyphStyle.Shape = draw.CircleGlyph{}
		p.Add(line, pts)
		if i < 12 {
			p.Legend.Add(id, line)
		}
	}
	return name, p, nil
}

// fisherSharesPlot is each layer's share of Tr F vs epoch for one run.
func (r *Report) fisherSharesPlot(id string) (*plot.Plot, error) {
	total := map[int32]float64{}
	layers := map[string]plotter.XYs{}
	for _, f := range r.Fisher[id] {
		if f.Layer == FisherTotal {
			total[f.Epoch] = f.Trace
		}
	}
	for _, f := range r.Fisher[id] {
		if t := total[f.Epoch]; f.Layer != FisherTotal && t > 0 {
			layers[f.Layer] = append(layers[f.Layer], plotter.XY{X: float64(f.Epoch), Y: f.Trace / t})
		}
	}
	if len(layers) == 0 {
		return nil, nil
	}
	p := newPlot("Fisher trace per layer: "+id, "epoch", "share of Tr F")
	p.Legend.Left = true
	for i, name := range sortedKeys(layers) {
		xys := layers[name]
		sort.Slice(xys, func(a, b int) bool { return xys[a].X < xys[b].X })
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, err
		}
		line.LineStyle.Color = plotutil.Color(i)
		line.LineStyle.Dashes = plotutil.Dashes(i / len(plotutil.DefaultColors))
		p.Add(line)
		p.Legend.Add(name, line)
	}
	return p, nil
}
