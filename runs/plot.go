package runs

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/critlab/critlab/internal/atomicfile"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// PlotDPI is the resolution of the PNG figures.
const PlotDPI = 200

// figure is one image: panels in a grid, a legend to their right (outside
// the data) and a caption below.
type figure struct {
	name    string
	panels  []*plot.Plot
	cols    int
	legend  []legendItem
	caption string
	// w is the width; each row of panels is rowH high.
	w, rowH vg.Length
}

type legendItem struct {
	name   string
	thumbs []plot.Thumbnailer
}

func (f *figure) addLegend(name string, thumbs ...plot.Thumbnailer) {
	f.legend = append(f.legend, legendItem{name, thumbs})
}

// textStyle is the caption and legend font.
func textStyle(size vg.Length) draw.TextStyle {
	return draw.TextStyle{Color: color.Black, Font: font.From(plot.DefaultFont, size), Handler: plot.DefaultTextHandler}
}

// draw lays the figure out on c.
func (f *figure) draw(c draw.Canvas) {
	const pad = vg.Length(6)
	sty := textStyle(9)
	var capH vg.Length
	if f.caption != "" {
		capH = sty.Height(f.caption) + 2*pad
		top := sty
		top.YAlign = draw.YTop
		c.FillText(top, vg.Point{X: c.Min.X + pad, Y: c.Min.Y + capH - pad}, f.caption)
	}
	var legW vg.Length
	if len(f.legend) > 0 {
		l := plot.NewLegend()
		l.TextStyle = sty
		l.Top, l.Left = true, true
		l.ThumbnailWidth = vg.Points(20)
		for _, it := range f.legend {
			l.Add(it.name, it.thumbs...)
			legW = max(legW, sty.Width(it.name))
		}
		legW += l.ThumbnailWidth + 3*pad
		l.Draw(draw.Crop(c, c.Size().X-legW, 0, capH, -pad))
	}
	area := draw.Crop(c, 0, -legW, capH, 0)
	cols := max(1, f.cols)
	rows := (len(f.panels) + cols - 1) / cols
	grid := make([][]*plot.Plot, rows)
	for i := range grid {
		grid[i] = make([]*plot.Plot, cols)
	}
	for i, p := range f.panels {
		grid[i/cols][i%cols] = p
	}
	tiles := draw.Tiles{Rows: rows, Cols: cols, PadX: pad, PadY: pad, PadTop: pad, PadLeft: pad, PadRight: pad, PadBottom: pad}
	canvases := plot.Align(grid, tiles, area)
	for i, p := range f.panels {
		p.Draw(canvases[i/cols][i%cols])
	}
}

// save writes the figure as PNG (PlotDPI) or SVG.
func (f *figure) save(path, format string) error {
	rows := (len(f.panels) + max(1, f.cols) - 1) / max(1, f.cols)
	h := vg.Length(rows) * f.rowH
	if f.caption != "" {
		h += textStyle(9).Height(f.caption) + 12
	}
	var c vg.CanvasWriterTo
	switch format {
	case "png":
		c = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(f.w, h), vgimg.UseDPI(PlotDPI))}
	case "svg":
		c = vgsvg.New(f.w, h)
	default:
		return fmt.Errorf("plot %s: unknown format %q", path, format)
	}
	f.draw(draw.New(c))
	var b bytes.Buffer
	if _, err := c.WriteTo(&b); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return atomicfile.Write(path, b.Bytes())
}

// figures builds every figure the report's data supports.
func (r *Report) figures() ([]*figure, error) {
	var out []*figure
	for _, fam := range []struct{ name, title, xlabel, variant, controls string }{
		{"removal", "Deficit removal", "epoch T the deficit is removed", VariantRemoval, "control-"},
		{"window", "Deficit window", "window onset (epoch)", VariantWindow, "window-control-"},
		{"finetune", "Fine-tuning after deficit pretraining", "deficit pretraining epochs", VariantFinetune, ""},
	} {
		f, err := r.diffFigure(fam.name, fam.title, fam.xlabel, fam.variant, fam.controls)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", fam.name, err)
		}
		if f != nil {
			out = append(out, f)
		}
	}
	f, err := r.seriesFigure("curves", "test accuracy %", false, func(rs RunSummary) plotter.XYs {
		var xys plotter.XYs
		for _, m := range rs.Rows {
			if a, ok := testAcc(m); ok {
				xys = append(xys, plotter.XY{X: float64(m.Epoch + 1), Y: 100 * a})
			}
		}
		return xys
	})
	if err != nil {
		return nil, fmt.Errorf("plot curves: %w", err)
	}
	out = append(out, f)
	if len(r.Fisher) > 0 {
		f, err := r.seriesFigure("fisher", "Tr F (log scale)", true, func(rs RunSummary) plotter.XYs {
			var xys plotter.XYs
			for _, fr := range r.Fisher[rs.RunID] {
				if fr.Layer == FisherTotal && fr.Trace > 0 {
					xys = append(xys, plotter.XY{X: float64(fr.Epoch + 1), Y: fr.Trace})
				}
			}
			return xys
		})
		if err != nil {
			return nil, fmt.Errorf("plot fisher: %w", err)
		}
		out = append(out, f)
		for _, id := range sortedKeys(r.Fisher) {
			if f := r.fisherSharesFigure(id); f != nil {
				out = append(out, f)
			}
		}
	}
	return out, nil
}

// Colors: the Okabe-Ito palette, distinguishable with colour blindness,
// one per variant in report order.
var palette = []color.Color{
	color.RGBA{0, 114, 178, 255}, color.RGBA{213, 94, 0, 255}, color.RGBA{0, 158, 115, 255},
	color.RGBA{204, 121, 167, 255}, color.RGBA{230, 159, 0, 255}, color.RGBA{86, 180, 233, 255},
	color.RGBA{120, 80, 30, 255}, color.RGBA{0, 0, 0, 255},
}

var shapes = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.PyramidGlyph{}, draw.BoxGlyph{}, draw.CrossGlyph{}, draw.PlusGlyph{}, draw.SquareGlyph{}}

var refColor = color.Gray{Y: 110}

// variantColors gives each variant of the report one colour.
func (r *Report) variantColors() map[string]color.Color {
	cs := map[string]color.Color{}
	for _, p := range r.Points {
		if _, ok := cs[p.Variant]; !ok && p.Variant != VariantBaseline && p.Variant != VariantTrunk {
			cs[p.Variant] = palette[len(cs)%(len(palette)-1)]
		}
	}
	cs[VariantBaseline] = palette[len(palette)-1]
	return cs
}

// numTicks labels ticks without trailing zeros ("25", not "25.00").
var numTicks = plot.TickerFunc(func(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	labelled := 0
	for _, t := range ts {
		if t.Label != "" {
			labelled++
		}
	}
	for i := range ts {
		// Too few labels to read values off: label the minor ticks too.
		if ts[i].Label != "" || labelled < 4 {
			ts[i].Label = strconv.FormatFloat(ts[i].Value, 'f', -1, 64)
		}
	}
	return ts
})

func newPanel(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = 11
	p.X.Label.Text, p.Y.Label.Text = x, y
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font.Size = 10
		a.Tick.Label.Font.Size = 9
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = numTicks, numTicks
	p.Add(plotter.NewGrid())
	return p
}

// diffFigure plots the paired difference of final accuracy against each
// point's reference for a variant and its controls (the variants named
// with the controls prefix), nil without the variant.
func (r *Report) diffFigure(name, title, xlabel, variant, controls string) (*figure, error) {
	series := []string{variant}
	if controls != "" {
		for _, p := range r.Points {
			if strings.HasPrefix(p.Variant, controls) && (len(series) == 1 || series[len(series)-1] != p.Variant) {
				series = append(series, p.Variant)
			}
		}
	}
	var xs []float64
	refs, ns := map[string]bool{}, map[int]bool{}
	for _, p := range r.Points {
		if p.Variant == variant && p.Diff.N > 0 {
			xs = append(xs, float64(p.Point))
		}
	}
	if len(xs) == 0 {
		return nil, nil
	}
	x0, x1 := xs[0], xs[len(xs)-1]
	span := max(x1-x0, 1)
	p := newPanel(title, xlabel, "Δ final test accuracy (points)")
	f := &figure{name: name, panels: []*plot.Plot{p}, cols: 1, w: 7 * vg.Inch, rowH: 4 * vg.Inch}
	cs := r.variantColors()
	lo, hi := 0.0, 0.0
	for si, v := range series {
		var means, seeds plotter.XYs
		var bars errBars
		off := float64(si) * 0.035 * span
		for _, ps := range r.Points {
			if ps.Variant != v || ps.Diff.N == 0 {
				continue
			}
			refs[ps.Reference], ns[ps.Diff.N] = true, true
			x := float64(ps.Point) + off
			means = append(means, plotter.XY{X: x, Y: 100 * ps.Diff.Mean})
			for _, d := range ps.Diff.Diffs {
				seeds = append(seeds, plotter.XY{X: x, Y: 100 * d})
				lo, hi = min(lo, 100*d), max(hi, 100*d)
			}
			if ps.Diff.HasInterval() {
				bars.XYs = append(bars.XYs, plotter.XY{X: x, Y: 100 * ps.Diff.Mean})
				bars.YErrors = append(bars.YErrors, struct{ Low, High float64 }{100 * (ps.Diff.Mean - ps.Diff.Low), 100 * (ps.Diff.High - ps.Diff.Mean)})
				lo, hi = min(lo, 100*ps.Diff.Low), max(hi, 100*ps.Diff.High)
			}
		}
		if len(means) == 0 {
			continue
		}
		c, shape := cs[v], shapes[si%len(shapes)]
		var thumbs []plot.Thumbnailer
		if v == variant && len(means) > 1 {
			l, err := plotter.NewLine(means)
			if err != nil {
				return nil, err
			}
			l.LineStyle.Color, l.LineStyle.Width = c, vg.Points(1.5)
			p.Add(l)
			thumbs = append(thumbs, l)
		}
		if len(bars.XYs) > 0 {
			eb, err := plotter.NewYErrorBars(bars)
			if err != nil {
				return nil, err
			}
			eb.LineStyle.Color, eb.LineStyle.Width = c, vg.Points(1.2)
			p.Add(eb)
		}
		sc, err := plotter.NewScatter(seeds)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(2), Shape: draw.RingGlyph{}}
		mc, err := plotter.NewScatter(means)
		if err != nil {
			return nil, err
		}
		mc.GlyphStyle = draw.GlyphStyle{Color: c, Radius: vg.Points(4), Shape: shape}
		p.Add(sc, mc)
		f.addLegend(v+" (mean)", append(thumbs, mc)...)
		if si == len(series)-1 {
			f.addLegend("single seeds", &plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: color.Black, Radius: vg.Points(2), Shape: draw.RingGlyph{}}})
		}
	}
	zero, err := plotter.NewLine(plotter.XYs{{X: x0 - 0.08*span, Y: 0}, {X: x1 + 0.12*span, Y: 0}})
	if err != nil {
		return nil, err
	}
	zero.LineStyle.Color, zero.LineStyle.Dashes = refColor, []vg.Length{vg.Points(4), vg.Points(3)}
	p.Add(zero)
	f.addLegend("reference ("+strings.Join(sortedKeys(refs), ", ")+")", zero)
	// Explicit ranges so that the shifted controls and the bars stay inside.
	p.X.Min, p.X.Max = x0-0.08*span, x1+0.12*span
	pad := 0.08 * max(hi-lo, 1)
	p.Y.Min, p.Y.Max = lo-pad, hi+pad
	f.caption = diffCaption(intKeys(ns))
	return f, nil
}

// diffCaption says what the markers and bars are and over how many seeds.
func diffCaption(ns []int) string {
	few := ns[0] < MinIntervalN
	s := fmt.Sprintf("Δ = final (last-epoch) test accuracy minus the reference run of the same seed; filled: mean over n = %s seeds; rings: single seeds.", joinInts(ns))
	if few {
		return s + fmt.Sprintf("\nNo confidence interval where n < %d. Bars, where drawn: %.0f%% t-interval of the paired mean.", MinIntervalN, 100*Confidence)
	}
	return s + fmt.Sprintf("\nBars: %.0f%% t-interval of the paired mean.", 100*Confidence)
}

// errBars are points with asymmetric y errors.
type errBars struct {
	plotter.XYs
	plotter.YErrors
}

// band is the mean over seeds of a (variant, point)'s series, with the
// range over seeds, at the x values every seed has.
type band struct{ mean, low, high plotter.XYs }

func seedBand(series []plotter.XYs) band {
	count := map[float64]int{}
	vals := map[float64][]float64{}
	for _, s := range series {
		for _, p := range s {
			count[p.X]++
			vals[p.X] = append(vals[p.X], p.Y)
		}
	}
	var xs []float64
	for x, c := range count {
		if c == len(series) {
			xs = append(xs, x)
		}
	}
	sort.Float64s(xs)
	var b band
	for _, x := range xs {
		m, _ := meanStd(vals[x])
		lo, hi := vals[x][0], vals[x][0]
		for _, v := range vals[x] {
			lo, hi = min(lo, v), max(hi, v)
		}
		b.mean = append(b.mean, plotter.XY{X: x, Y: m})
		b.low = append(b.low, plotter.XY{X: x, Y: lo})
		b.high = append(b.high, plotter.XY{X: x, Y: hi})
	}
	return b
}

// addBand draws a band's range as a translucent polygon and its mean as
// a line; the line is returned for the legend.
func addBand(p *plot.Plot, b band, c color.Color, width vg.Length) (*plotter.Line, error) {
	if len(b.mean) == 0 {
		return nil, nil
	}
	if len(b.mean) > 1 {
		poly := append(plotter.XYs{}, b.high...)
		for i := len(b.low) - 1; i >= 0; i-- {
			poly = append(poly, b.low[i])
		}
		pg, err := plotter.NewPolygon(poly)
		if err != nil {
			return nil, err
		}
		r, g, bl, _ := c.RGBA()
		pg.Color = color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8), 60}
		pg.LineStyle.Width = 0
		p.Add(pg)
	}
	l, err := plotter.NewLine(b.mean)
	if err != nil {
		return nil, err
	}
	l.LineStyle.Color, l.LineStyle.Width = c, width
	p.Add(l)
	return l, nil
}

// deficitSpans are the [start, end) epoch spans of a run's deficit epochs.
func deficitSpans(rows []MetricsRow) [][2]float64 {
	var spans [][2]float64
	for _, m := range rows {
		if m.Deficit == "none" {
			continue
		}
		e := float64(m.Epoch)
		if n := len(spans); n > 0 && spans[n-1][1] == e {
			spans[n-1][1] = e + 1
		} else {
			spans = append(spans, [2]float64{e, e + 1})
		}
	}
	return spans
}

var deficitShade = color.NRGBA{R: 120, G: 120, B: 120, A: 45}

// seriesFigure draws one panel per (variant, point) but the trunk: the
// mean over seeds of series(run) with the range over seeds as a band,
// its reference's likewise in grey, and the deficit epochs shaded.
func (r *Report) seriesFigure(name, ylabel string, logY bool, series func(RunSummary) plotter.XYs) (*figure, error) {
	byLabel := map[Label][]RunSummary{}
	for _, rs := range r.Runs {
		l := Label{rs.Variant, rs.Point}
		byLabel[l] = append(byLabel[l], rs)
	}
	bandOf := func(l Label) band {
		var ss []plotter.XYs
		for _, rs := range byLabel[l] {
			if s := series(rs); len(s) > 0 {
				ss = append(ss, s)
			}
		}
		return seedBand(ss)
	}
	cs := r.variantColors()
	f := &figure{name: name, w: 10 * vg.Inch, rowH: 2.4 * vg.Inch}
	var panels []*plot.Plot
	ylo, yhi := math.Inf(1), math.Inf(-1)
	ns := map[int]bool{}
	seenVariant := map[string]bool{}
	for _, ps := range r.Points {
		if ps.Variant == VariantTrunk {
			continue
		}
		l := Label{ps.Variant, ps.Point}
		b := bandOf(l)
		if len(b.mean) == 0 {
			continue
		}
		p := newPanel(labelText(l), "epochs trained", ylabel)
		if logY {
			p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
		}
		for _, s := range deficitSpans(byLabel[l][0].Rows) {
			p.Add(shade{s[0], s[1]})
		}
		ref, hasRef := r.pointNamed(ps.Reference)
		if hasRef && ref.Variant != ps.Variant || hasRef && ref.Point != ps.Point {
			rb := bandOf(Label{ref.Variant, ref.Point})
			if _, err := addBand(p, rb, refColor, vg.Points(1)); err != nil {
				return nil, err
			}
			ylo, yhi = bandRange(rb, ylo, yhi)
		}
		line, err := addBand(p, b, cs[ps.Variant], vg.Points(1.5))
		if err != nil {
			return nil, err
		}
		ylo, yhi = bandRange(b, ylo, yhi)
		ns[ps.N] = true
		if !seenVariant[ps.Variant] {
			seenVariant[ps.Variant] = true
			f.addLegend(ps.Variant, line)
		}
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil, nil
	}
	for _, p := range panels {
		p.X.Min = 0
		if !logY {
			p.Y.Min, p.Y.Max = ylo, yhi
		}
	}
	refLine := &plotter.Line{LineStyle: draw.LineStyle{Color: refColor, Width: vg.Points(1)}}
	f.addLegend("its reference", refLine)
	f.addLegend("deficit epochs", &plotter.Polygon{Color: deficitShade})
	f.panels, f.cols = panels, min(4, len(panels))
	f.w = vg.Length(min(4, len(panels)))*2.5*vg.Inch + 1.5*vg.Inch
	f.caption = fmt.Sprintf("Lines: mean over n = %s seeds at the epochs every seed evaluated; bands: range over the seeds.", joinInts(intKeys(ns)))
	return f, nil
}

func bandRange(b band, lo, hi float64) (float64, float64) {
	for i := range b.low {
		lo, hi = min(lo, b.low[i].Y), max(hi, b.high[i].Y)
	}
	return lo, hi
}

// shade fills the epochs [x0, x1) over the panel's full height; it takes
// no part in the axis ranges.
type shade struct{ x0, x1 float64 }

func (s shade) Plot(c draw.Canvas, p *plot.Plot) {
	tx, _ := p.Transforms(&c)
	x0, x1 := max(tx(s.x0), c.Min.X), min(tx(s.x1), c.Max.X)
	if x1 <= x0 {
		return
	}
	c.FillPolygon(deficitShade, []vg.Point{{X: x0, Y: c.Min.Y}, {X: x1, Y: c.Min.Y}, {X: x1, Y: c.Max.Y}, {X: x0, Y: c.Max.Y}})
}

func labelText(l Label) string {
	switch {
	case l.Point < 0:
		return l.Variant
	case l.Variant == VariantRemoval || strings.HasPrefix(l.Variant, "control-"):
		return fmt.Sprintf("%s at T = %d", l.Variant, l.Point)
	case strings.HasPrefix(l.Variant, "window"):
		return fmt.Sprintf("%s at %d", l.Variant, l.Point)
	}
	return fmt.Sprintf("%s %d", l.Variant, l.Point)
}

// fisherSharesFigure is each layer's share of Tr F vs epoch for one run.
func (r *Report) fisherSharesFigure(id string) *figure {
	total := map[int32]float64{}
	layers := map[string]plotter.XYs{}
	for _, f := range r.Fisher[id] {
		if f.Layer == FisherTotal {
			total[f.Epoch] = f.Trace
		}
	}
	for _, f := range r.Fisher[id] {
		if t := total[f.Epoch]; f.Layer != FisherTotal && t > 0 {
			layers[f.Layer] = append(layers[f.Layer], plotter.XY{X: float64(f.Epoch + 1), Y: f.Trace / t})
		}
	}
	if len(layers) == 0 {
		return nil
	}
	p := newPanel("Fisher trace per layer: "+id, "epochs trained", "share of Tr F")
	f := &figure{name: filepath.Join("fisher-layers", id), panels: []*plot.Plot{p}, cols: 1, w: 7 * vg.Inch, rowH: 4 * vg.Inch}
	for i, name := range sortedKeys(layers) {
		xys := layers[name]
		sort.Slice(xys, func(a, b int) bool { return xys[a].X < xys[b].X })
		line, err := plotter.NewLine(xys)
		if err != nil {
			continue
		}
		line.LineStyle.Color, line.LineStyle.Width = palette[i%len(palette)], vg.Points(1.5)
		line.LineStyle.Dashes = dashes[i/len(palette)%len(dashes)]
		p.Add(line)
		f.addLegend(name, line)
	}
	return f
}

var dashes = [][]vg.Length{nil, {vg.Points(6), vg.Points(3)}, {vg.Points(2), vg.Points(2)}}

func intKeys(m map[int]bool) []int {
	keys := make([]int, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, "/")
}
