package runs

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/critlab/critlab/internal/atomicfile"

	"gonum.org/v1/gonum/stat"
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
	for _, fam := range []struct{ name, title, xlabel, sym, variant, controls string }{
		{"removal", "Deficit removal", "epoch T the deficit is removed", "T", VariantRemoval, "control-"},
		{"window", "Deficit window", "window onset (epoch)", "S", VariantWindow, "window-control-"},
		{"finetune", "Fine-tuning after deficit pretraining", "deficit pretraining epochs", "P", VariantFinetune, ""},
	} {
		f, err := r.diffFigure(fam.name, fam.title, fam.xlabel, fam.sym, fam.variant, fam.controls)
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
		if f := r.fisherSharesFigure(); f != nil {
			out = append(out, f)
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

// numTicks puts labels at a round step (1, 2 or 5 times a power of ten)
// that gives every axis 4 to 7 of them, so that panels of one figure
// read alike, with unlabelled minor ticks between; labels carry no
// trailing zeros ("25", not "25.00").
var numTicks = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	raw := (hi - lo) / 7
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step, minor := 10*mag, 5.0
	for _, m := range []struct{ mult, minor float64 }{{1, 2}, {2, 2}, {5, 5}} {
		if m.mult*mag >= raw {
			step, minor = m.mult*mag, m.minor
			break
		}
	}
	dec := max(0, int(-math.Floor(math.Log10(step/minor)+1e-9)))
	var ts []plot.Tick
	for k := math.Ceil(lo / step * minor); k <= math.Floor(hi/step*minor); k++ {
		v := k * step / minor
		t := plot.Tick{Value: v}
		if math.Mod(k, minor) == 0 {
			t.Label = strconv.FormatFloat(v, 'f', dec, 64)
			if strings.Contains(t.Label, ".") {
				t.Label = strings.TrimRight(strings.TrimRight(t.Label, "0"), ".")
			}
			if t.Label == "-0" {
				t.Label = "0"
			}
		}
		ts = append(ts, t)
	}
	return ts
})

// logTicks labels an axis of log10 values with the powers of ten inside
// its range (and 2 and 5 times them when it spans less than two decades),
// minor ticks at the other multiples. Log panels plot log10 on a linear
// axis: gonum's LogScale places the axis label's glyph box as on a linear
// scale, which pushed the data down from the title.
var logTicks = plot.TickerFunc(func(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	dense := hi-lo < 2
	var ts []plot.Tick
	for e := math.Floor(lo); e <= math.Ceil(hi); e++ {
		for m := 1.0; m < 10; m++ {
			v := math.Log10(m) + e
			if v < lo || v > hi {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || dense && (m == 2 || m == 5) {
				t.Label = strconv.FormatFloat(m*math.Pow(10, e), 'g', -1, 64)
			}
			ts = append(ts, t)
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

// diffPanel holds the points of a difference figure compared with one
// kind of reference: a fixed run (removal@0, the baseline) or a variant at
// each point's own point (control-sham at the same T).
type diffPanel struct {
	// ref names the reference ("control-sham at the same T"), refVariant
	// its run ("control-sham"), why what it shares with the arms.
	ref, refVariant, why string
	samePoint            bool
	points               []PointSummary
}

// diffPanels sorts a family's points with a reference into panels, one per
// kind of reference, those at the same point first: each panel's zero line
// is then one reference. A point that is its own reference (removal@0)
// anchors its variant's line where that variant has other points in its
// panel and is dropped elsewhere.
func (r *Report) diffPanels(series []string, sym string) []*diffPanel {
	in := map[string]bool{}
	for _, v := range series {
		in[v] = true
	}
	avail := func(l Label) bool { _, ok := r.Point(l.Variant, l.Point); return ok }
	var panels []*diffPanel
	byRef := map[string]*diffPanel{}
	var self []PointSummary
	for _, p := range r.Points {
		if !in[p.Variant] || p.Diff.N == 0 {
			continue
		}
		ref, rule := referenceOf(Label{p.Variant, p.Point}, avail)
		if ref == (Label{p.Variant, p.Point}) {
			self = append(self, p)
			continue
		}
		key := ref.String()
		if rule.samePoint {
			key = fmt.Sprintf("%s at the same %s", rule.variant, sym)
		}
		dp := byRef[key]
		name := ref.String()
		if rule.samePoint {
			name = rule.variant
		}
		if dp == nil {
			dp = &diffPanel{ref: key, why: rule.why, refVariant: name, samePoint: rule.samePoint}
			byRef[key] = dp
			panels = append(panels, dp)
		}
		dp.points = append(dp.points, p)
	}
	for _, p := range self {
		if dp := byRef[p.Reference]; dp != nil && slices.ContainsFunc(dp.points, func(q PointSummary) bool { return q.Variant == p.Variant }) {
			dp.points = append(dp.points, p)
		}
	}
	sort.SliceStable(panels, func(i, j int) bool { return panels[i].samePoint && !panels[j].samePoint })
	for _, dp := range panels {
		sort.SliceStable(dp.points, func(i, j int) bool {
			a, b := dp.points[i], dp.points[j]
			if a.Variant != b.Variant {
				return slices.Index(series, a.Variant) < slices.Index(series, b.Variant)
			}
			return a.Point < b.Point
		})
	}
	return panels
}

// diffFigure plots the paired difference of final accuracy against each
// point's reference for a variant and its controls (the variants named
// with the controls prefix), one panel per kind of reference (see
// diffPanels); nil without the variant. sym names the point on the x
// axis ("T").
func (r *Report) diffFigure(name, title, xlabel, sym, variant, controls string) (*figure, error) {
	series := []string{variant}
	if controls != "" {
		for _, p := range r.Points {
			if strings.HasPrefix(p.Variant, controls) && !slices.Contains(series, p.Variant) {
				series = append(series, p.Variant)
			}
		}
	}
	var xs []float64
	for _, p := range r.Points {
		if p.Variant == variant && p.Diff.N > 0 {
			xs = append(xs, float64(p.Point))
		}
	}
	panels := r.diffPanels(series, sym)
	if len(xs) == 0 || len(panels) == 0 {
		return nil, nil
	}
	x0, x1 := xs[0], xs[len(xs)-1]
	span := max(x1-x0, 1)
	f := &figure{name: name, cols: len(panels), w: 7*vg.Inch + vg.Length(len(panels)-1)*4.5*vg.Inch, rowH: 4 * vg.Inch}
	cs := r.variantColors()
	ns := map[int]bool{}
	inLegend := map[string]bool{}
	var legend []legendItem
	var notes []string
	for pi, dp := range panels {
		ptitle := title
		if len(panels) > 1 {
			tag := fmt.Sprintf("(%c)", 'a'+pi)
			ptitle = fmt.Sprintf("%s against %s", tag, dp.ref)
			var vs []string
			for _, p := range dp.points {
				if !slices.Contains(vs, p.Variant) {
					vs = append(vs, p.Variant)
				}
			}
			notes = append(notes, fmt.Sprintf("%s %s minus %s, same seed (%s); %s is the zero line.", tag, andList(vs), dp.ref, dp.why, dp.refVariant))
		}
		p := newPanel(ptitle, xlabel, "Δ final test accuracy (points)")
		lo, hi := 0.0, 0.0
		refs := map[string]bool{}
		col := 0
		for si, v := range series {
			var means, seeds plotter.XYs
			var bars errBars
			off := float64(col) * 0.035 * span
			for _, ps := range dp.points {
				if ps.Variant != v {
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
			col++
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
			if !inLegend[v] {
				inLegend[v] = true
				legend = append(legend, legendItem{v + " (mean)", append(thumbs, mc)})
			}
		}
		zero, err := plotter.NewLine(plotter.XYs{{X: x0 - 0.08*span, Y: 0}, {X: x1 + 0.12*span, Y: 0}})
		if err != nil {
			return nil, err
		}
		zero.LineStyle.Color, zero.LineStyle.Dashes = refColor, []vg.Length{vg.Points(4), vg.Points(3)}
		p.Add(zero)
		if len(panels) == 1 {
			f.addLegend("reference ("+strings.Join(sortedKeys(refs), ", ")+")", zero)
		} else {
			f.addLegend(fmt.Sprintf("zero line (%c): %s", 'a'+pi, dp.ref), zero)
		}
		// Explicit ranges so that the shifted controls and the bars stay
		// inside, and the panels share the x axis.
		p.X.Min, p.X.Max = x0-0.08*span, x1+0.12*span
		pad := 0.08 * max(hi-lo, 1)
		p.Y.Min, p.Y.Max = lo-pad, hi+pad
		f.panels = append(f.panels, p)
	}
	legend = append(legend, legendItem{"single seeds", []plot.Thumbnailer{&plotter.Scatter{GlyphStyle: draw.GlyphStyle{Color: color.Black, Radius: vg.Points(2), Shape: draw.RingGlyph{}}}}})
	f.legend = append(legend, f.legend...)
	f.caption = diffCaption(intKeys(ns))
	if len(notes) > 0 {
		f.caption = strings.Join(notes, "\n") + "\n" + f.caption
	}
	return f, nil
}

// andList joins names as "a", "a and b", "a, b and c".
func andList(xs []string) string {
	if len(xs) < 2 {
		return strings.Join(xs, "")
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
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
		m := stat.Mean(vals[x], nil)
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
		b := seedBand(ss)
		if logY {
			for _, xys := range []plotter.XYs{b.mean, b.low, b.high} {
				for i := range xys {
					xys[i].Y = math.Log10(xys[i].Y)
				}
			}
		}
		return b
	}
	cs := r.variantColors()
	f := &figure{name: name, w: 10 * vg.Inch, rowH: 2.4 * vg.Inch}
	var panels []*plot.Plot
	ylo, yhi, xhi := math.Inf(1), math.Inf(-1), 0.0
	shifted := false
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
		title := labelText(l)
		ref, hasRef := r.pointNamed(ps.Reference)
		hasRef = hasRef && (ref.Variant != ps.Variant || ref.Point != ps.Point)
		if hasRef {
			title += "\nvs " + ps.Reference
		}
		p := newPanel(title, "epochs trained", ylabel)
		if logY {
			p.Y.Tick.Marker = logTicks
		}
		for _, s := range deficitSpans(byLabel[l][0].Rows) {
			p.Add(shade{s[0], s[1]})
		}
		if hasRef {
			rb := bandOf(Label{ref.Variant, ref.Point})
			// A shorter reference (removal@0 for a sham at T: the sharp
			// epochs after removal) ends where the arm ends, so that the gap
			// at the right edge is the paired Δ.
			if n, m := len(rb.mean), len(b.mean); n > 0 && m > 0 && rb.mean[n-1].X < b.mean[m-1].X {
				rb = rb.shift(b.mean[m-1].X - rb.mean[n-1].X)
				shifted = true
			}
			if _, err := addBand(p, rb, refColor, vg.Points(1)); err != nil {
				return nil, err
			}
			ylo, yhi, xhi = bandRange(rb, ylo, yhi, xhi)
		}
		line, err := addBand(p, b, cs[ps.Variant], vg.Points(1.5))
		if err != nil {
			return nil, err
		}
		ylo, yhi, xhi = bandRange(b, ylo, yhi, xhi)
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
	// One scale for all panels: the arms compare at a glance and every
	// panel gets the same ticks.
	for _, p := range panels {
		p.X.Min, p.X.Max = 0, xhi
		p.Y.Min, p.Y.Max = ylo, yhi
	}
	refLine := &plotter.Line{LineStyle: draw.LineStyle{Color: refColor, Width: vg.Points(1)}}
	f.addLegend("its reference", refLine)
	f.addLegend("deficit epochs", &plotter.Polygon{Color: deficitShade})
	f.panels, f.cols = panels, min(4, len(panels))
	f.w = vg.Length(min(4, len(panels)))*2.5*vg.Inch + 1.5*vg.Inch
	f.caption = fmt.Sprintf("Lines: mean over n = %s seeds at the epochs every seed evaluated; bands: range over the seeds; grey: the reference the panel's Δ is paired with (vs).", joinInts(intKeys(ns)))
	if shifted {
		f.caption += "\nA reference with fewer epochs than its arm is drawn shifted right to end with it: the final epochs are the pair Δ compares."
	}
	return f, nil
}

// bandRange widens the y range lo..hi and the largest x xhi to b's.
func bandRange(b band, lo, hi, xhi float64) (float64, float64, float64) {
	for i := range b.low {
		lo, hi, xhi = min(lo, b.low[i].Y), max(hi, b.high[i].Y), max(xhi, b.low[i].X)
	}
	return lo, hi, xhi
}

// shift is the band moved by dx along x.
func (b band) shift(dx float64) band {
	var out band
	for i := range b.mean {
		out.mean = append(out.mean, plotter.XY{X: b.mean[i].X + dx, Y: b.mean[i].Y})
		out.low = append(out.low, plotter.XY{X: b.low[i].X + dx, Y: b.low[i].Y})
		out.high = append(out.high, plotter.XY{X: b.high[i].X + dx, Y: b.high[i].Y})
	}
	return out
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

// fisherSharesFigure is each layer's share of Tr F vs epoch: a panel per
// variant and point, a line per layer, the mean over the seeds. One figure
// for the sweep rather than one per run: a per-run figure of every run of a
// six-seed sweep is a hundred images nobody compares; fisher.parquet keeps
// each run's values.
func (r *Report) fisherSharesFigure() *figure {
	// shares[label][layer] is one series per run; layers keep the order
	// fisher.parquet lists them in.
	shares := map[Label]map[string][]plotter.XYs{}
	var layers []string
	known := map[string]bool{}
	runsOf := map[Label][]RunSummary{}
	for _, rs := range r.Runs {
		l := Label{rs.Variant, rs.Point}
		runsOf[l] = append(runsOf[l], rs)
		total := map[int32]float64{}
		for _, f := range r.Fisher[rs.RunID] {
			if f.Layer == FisherTotal {
				total[f.Epoch] = f.Trace
			}
		}
		byLayer := map[string]plotter.XYs{}
		for _, f := range r.Fisher[rs.RunID] {
			if t := total[f.Epoch]; f.Layer != FisherTotal && t > 0 {
				byLayer[f.Layer] = append(byLayer[f.Layer], plotter.XY{X: float64(f.Epoch + 1), Y: f.Trace / t})
				if !known[f.Layer] {
					known[f.Layer] = true
					layers = append(layers, f.Layer)
				}
			}
		}
		if len(byLayer) == 0 {
			continue
		}
		if shares[l] == nil {
			shares[l] = map[string][]plotter.XYs{}
		}
		for name, xys := range byLayer {
			sort.Slice(xys, func(a, b int) bool { return xys[a].X < xys[b].X })
			shares[l][name] = append(shares[l][name], xys)
		}
	}
	if len(layers) == 0 {
		return nil
	}
	f := &figure{name: "fisher-layers", rowH: 2.6 * vg.Inch}
	var panels []*plot.Plot
	yhi, xhi := 0.0, 0.0
	ns := map[int]bool{}
	inLegend := map[string]bool{}
	for _, ps := range r.Points {
		l := Label{ps.Variant, ps.Point}
		if ps.Variant == VariantTrunk || shares[l] == nil {
			continue
		}
		p := newPanel(labelText(l), "epochs trained", "share of Tr F")
		for _, s := range deficitSpans(runsOf[l][0].Rows) {
			p.Add(shade{s[0], s[1]})
		}
		for i, name := range layers {
			series := shares[l][name]
			if len(series) == 0 {
				continue
			}
			b := seedBand(series)
			line, err := plotter.NewLine(b.mean)
			if err != nil {
				continue
			}
			line.LineStyle.Color, line.LineStyle.Width = palette[i%len(palette)], vg.Points(1.5)
			line.LineStyle.Dashes = dashes[i/len(palette)%len(dashes)]
			p.Add(line)
			if !inLegend[name] {
				inLegend[name] = true
				f.addLegend(name, line)
			}
			ns[len(series)] = true
			for _, xy := range b.mean {
				yhi, xhi = max(yhi, xy.Y), max(xhi, xy.X)
			}
		}
		panels = append(panels, p)
	}
	if len(panels) == 0 {
		return nil
	}
	for _, p := range panels {
		p.X.Min, p.X.Max = 0, xhi
		p.Y.Min, p.Y.Max = 0, yhi
	}
	f.addLegend("deficit epochs", &plotter.Polygon{Color: deficitShade})
	f.panels, f.cols = panels, min(4, len(panels))
	f.w = vg.Length(min(4, len(panels)))*2.5*vg.Inch + 1.5*vg.Inch
	f.caption = fmt.Sprintf("Each layer's share of the Fisher trace Tr F, the mean over n = %s seeds at the epochs every seed estimated it.", joinInts(intKeys(ns)))
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
