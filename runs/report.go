package runs

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/critlab/critlab/internal/atomicfile"
)

// FinalEpochs is how many last epochs the final accuracy averages.
const FinalEpochs = 5

// ReportDir is the folder, inside a run or sweep directory, that report
// files go to.
const ReportDir = "report"

// FinalAccuracy is the mean test accuracy of the last FinalEpochs
// evaluated rows (fewer when the run has fewer); 0 without any.
func FinalAccuracy(rows []MetricsRow) float64 {
	var s float64
	n := 0
	for i := len(rows) - 1; i >= 0 && n < FinalEpochs; i-- {
		if a := rows[i].TestAcc; a != nil {
			s += *a
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return s / float64(n)
}

// BestAccuracy is the highest test accuracy of the evaluated rows.
func BestAccuracy(rows []MetricsRow) float64 {
	var b float64
	for _, r := range rows {
		if r.TestAcc != nil {
			b = max(b, *r.TestAcc)
		}
	}
	return b
}

// RunSummary is one run of a report under one label.
type RunSummary struct {
	RunID    string
	Variant  string
	Point    int
	Seed     int64
	Epochs   int
	Deficits string
	// Final is the mean test accuracy of the last FinalEpochs epochs, Best
	// the highest.
	Final, Best float64
	Rows        []MetricsRow
}

// PointSummary aggregates the seeds of one (variant, point).
type PointSummary struct {
	Variant string
	Point   int
	N       int
	Seeds   []int64
	// Means and sample standard deviations (NaN for one seed) over seeds.
	FinalMean, FinalStd, BestMean, BestStd float64
	// Change is FinalMean minus the reference's (see Report.Reference);
	// NaN without one.
	Change float64
	// Reference names the point Change is relative to: removal@0,
	// baseline or scratch; empty without one.
	Reference string
}

// Report summarises a run or sweep directory.
type Report struct {
	Name string
	Dir  string
	Runs []RunSummary
	// Points are sorted by variant (baseline, removal, window, controls,
	// pretrain, finetune, scratch) then point.
	Points []PointSummary
	// Fisher holds each run's fisher.parquet rows, by run id.
	Fisher map[string][]FisherRow
	// Files are the files WriteFiles wrote.
	Files []string
}

var variantOrder = map[string]int{
	VariantBaseline: 0, VariantRemoval: 1, VariantWindow: 2, VariantVFlip: 3, VariantLRRestart: 4,
	VariantWindowVFlip: 5, VariantWindowLRRestart: 6,
	VariantPretrain: 7, VariantFinetune: 8, VariantScratch: 9, VariantTrunk: 10,
}

// LoadReport reads a sweep directory (sweep.parquet, else every
// */metrics.parquet below it) or a run directory (metrics.parquet) and
// summarises it. Runs read from metrics.parquet files are labelled from
// their deficits: none -> baseline (point -1), a first window starting
// at 0 -> removal at its end, any other -> window at its onset.
func LoadReport(dir string) (*Report, error) {
	var rows []SweepRow
	name := filepath.Base(filepath.Clean(dir))
	sweepPath := filepath.Join(dir, SweepFile)
	metricsPath := filepath.Join(dir, MetricsFile)
	var runDirs []string
	switch {
	case exists(sweepPath):
		r, err := ReadSweep(sweepPath)
		if err != nil {
			return nil, err
		}
		rows = r
		if len(rows) > 0 && rows[0].Sweep != "" {
			name = rows[0].Sweep
		}
		seen := map[string]bool{}
		for _, r := range rows {
			if !seen[r.RunID] {
				seen[r.RunID] = true
				runDirs = append(runDirs, filepath.Join(dir, r.RunID))
			}
		}
	case exists(metricsPath):
		m, err := ReadMetrics(metricsPath)
		if err != nil {
			return nil, err
		}
		rows = labelRows(m, "")
		runDirs = []string{dir}
	default:
		matches, _ := filepath.Glob(filepath.Join(dir, "*", MetricsFile))
		if len(matches) == 0 {
			return nil, fmt.Errorf("report %s: no %s, %s or */%s\n---> HINT: give a run directory or a sweep directory", dir, SweepFile, MetricsFile, MetricsFile)
		}
		sort.Strings(matches)
		for _, p := range matches {
			m, err := ReadMetrics(p)
			if err != nil {
				return nil, err
			}
			rows = append(rows, labelRows(m, name)...)
			runDirs = append(runDirs, filepath.Dir(p))
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("report %s: no finished epochs yet", dir)
	}
	rep := Summarize(name, rows)
	rep.Dir = dir
	rep.Fisher = map[string][]FisherRow{}
	for _, d := range runDirs {
		fr, err := readParquet[FisherRow](filepath.Join(d, FisherFile), true)
		if err != nil {
			return nil, err
		}
		if len(fr) > 0 {
			rep.Fisher[fr[0].RunID] = fr
		}
	}
	return rep, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return !errors.Is(err, fs.ErrNotExist)
}

// labelRows gives metrics rows the variant and point their deficits imply.
func labelRows(rows []MetricsRow, sweep string) []SweepRow {
	out := make([]SweepRow, len(rows))
	for i, m := range rows {
		variant, point := VariantBaseline, -1
		switch {
		case m.DeficitStart == 0:
			variant, point = VariantRemoval, int(m.DeficitEnd)
		case m.DeficitStart > 0:
			variant, point = VariantWindow, int(m.DeficitStart)
		}
		out[i] = sweepRow(m, sweep, variant, point)
	}
	return out
}

// Summarize computes the per-run and per-point summaries of sweep rows.
func Summarize(name string, rows []SweepRow) *Report {
	type key struct {
		run, variant string
		point        int32
	}
	byRun := map[key][]MetricsRow{}
	var order []key
	for _, r := range rows {
		k := key{r.RunID, r.Variant, r.Point}
		if _, ok := byRun[k]; !ok {
			order = append(order, k)
		}
		byRun[k] = append(byRun[k], r.Metrics())
	}
	rep := &Report{Name: name}
	for _, k := range order {
		ms := byRun[k]
		sort.Slice(ms, func(i, j int) bool { return ms[i].Epoch < ms[j].Epoch })
		rep.Runs = append(rep.Runs, RunSummary{
			RunID: k.run, Variant: k.variant, Point: int(k.point), Seed: ms[0].Seed, Epochs: len(ms),
			Deficits: ms[0].DeficitWindows, Final: FinalAccuracy(ms), Best: BestAccuracy(ms), Rows: ms,
		})
	}
	sort.SliceStable(rep.Runs, func(i, j int) bool {
		a, b := rep.Runs[i], rep.Runs[j]
		if a.Variant != b.Variant {
			return lessVariant(a.Variant, b.Variant)
		}
		if a.Point != b.Point {
			return a.Point < b.Point
		}
		return a.Seed < b.Seed
	})
	for i := 0; i < len(rep.Runs); {
		j := i
		var final, best []float64
		ps := PointSummary{Variant: rep.Runs[i].Variant, Point: rep.Runs[i].Point}
		for ; j < len(rep.Runs) && rep.Runs[j].Variant == ps.Variant && rep.Runs[j].Point == ps.Point; j++ {
			final = append(final, rep.Runs[j].Final)
			best = append(best, rep.Runs[j].Best)
			ps.Seeds = append(ps.Seeds, rep.Runs[j].Seed)
		}
		ps.N = len(final)
		ps.FinalMean, ps.FinalStd = meanStd(final)
		ps.BestMean, ps.BestStd = meanStd(best)
		rep.Points = append(rep.Points, ps)
		i = j
	}
	for i := range rep.Points {
		p := &rep.Points[i]
		ref, name := rep.Reference(p.Variant)
		p.Change, p.Reference = p.FinalMean-ref, name
	}
	return rep
}

// Reference is the mean final accuracy a variant's change is measured
// against, and its name. Removal points and their controls compare with
// removal point 0, which has the same number of sharp epochs after the
// deficit; windows and the rest with the baseline, which has their length;
// each falls back to the other. Fine-tuning compares with scratch.
func (r *Report) Reference(variant string) (float64, string) {
	order := []Label{{VariantBaseline, -1}, {VariantRemoval, 0}}
	switch variant {
	case VariantRemoval, VariantVFlip, VariantLRRestart:
		order = []Label{{VariantRemoval, 0}, {VariantBaseline, -1}}
	case VariantFinetune, VariantScratch:
		order = []Label{{VariantScratch, 0}}
	}
	for _, l := range order {
		if ps, ok := r.Point(l.Variant, l.Point); ok {
			if l.Variant == VariantBaseline {
				return ps.FinalMean, VariantBaseline
			}
			return ps.FinalMean, fmt.Sprintf("%s@%d", l.Variant, l.Point)
		}
	}
	return math.NaN(), ""
}

func lessVariant(a, b string) bool {
	oa, oka := variantOrder[a]
	ob, okb := variantOrder[b]
	switch {
	case oka && okb:
		return oa < ob
	case oka != okb:
		return oka
	}
	return a < b
}

// Point returns the summary of a (variant, point).
func (r *Report) Point(variant string, point int) (PointSummary, bool) {
	for _, p := range r.Points {
		if p.Variant == variant && p.Point == point {
			return p, true
		}
	}
	return PointSummary{}, false
}

// meanStd returns the mean and the sample standard deviation (NaN for
// fewer than two values).
func meanStd(xs []float64) (float64, float64) {
	var s float64
	for _, x := range xs {
		s += x
	}
	mean := s / float64(len(xs))
	if len(xs) < 2 {
		return mean, math.NaN()
	}
	var ss float64
	for _, x := range xs {
		ss += (x - mean) * (x - mean)
	}
	return mean, math.Sqrt(ss / float64(len(xs)-1))
}

// pct formats an accuracy in [0,1] as a percentage, "-" for NaN.
func pct(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return strconv.FormatFloat(100*x, 'f', 2, 64)
}

// pm formats mean ± std in percent; just the mean for one seed.
func pm(mean, std float64) string {
	if math.IsNaN(std) {
		return pct(mean)
	}
	return pct(mean) + " ± " + pct(std)
}

// WriteTable prints the per-point summary table.
func (r *Report) WriteTable(w io.Writer) error {
	var b bytes.Buffer
	n := countRuns(r.Runs)
	fmt.Fprintf(&b, "%s: %d run%s; final = mean test accuracy of the last %d epochs; mean ± std over seeds\n", r.Name, n, plural(n), FinalEpochs)
	head := []string{"variant", "point", "seeds", "final acc %", "best acc %", "change %", "vs"}
	table := [][]string{head}
	for _, p := range r.Points {
		if p.Variant == VariantTrunk {
			continue
		}
		change, ref := "-", "-"
		if !math.IsNaN(p.Change) {
			change, ref = fmt.Sprintf("%+.2f", 100*p.Change), p.Reference
		}
		table = append(table, []string{p.Variant, strconv.Itoa(p.Point), strconv.Itoa(p.N), pm(p.FinalMean, p.FinalStd), pm(p.BestMean, p.BestStd), change, ref})
	}
	writeAligned(&b, table)
	_, err := w.Write(b.Bytes())
	return err
}

func countRuns(rs []RunSummary) int {
	seen := map[string]bool{}
	for _, r := range rs {
		seen[r.RunID] = true
	}
	return len(seen)
}

// writeAligned writes columns padded to their widths, the first column
// left-aligned and the others right-aligned.
func writeAligned(w io.Writer, table [][]string) {
	widths := make([]int, len(table[0]))
	for _, row := range table {
		for i, c := range row {
			widths[i] = max(widths[i], len([]rune(c)))
		}
	}
	for _, row := range table {
		var parts []string
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-len([]rune(c)))
			if i == 0 {
				parts = append(parts, c+pad)
			} else {
				parts = append(parts, pad+c)
			}
		}
		fmt.Fprintln(w, strings.TrimRight(strings.Join(parts, "  "), " "))
	}
}

// csvFloat formats a number for CSV, empty for NaN.
func csvFloat(x float64) string {
	if math.IsNaN(x) {
		return ""
	}
	return strconv.FormatFloat(x, 'g', 10, 64)
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// PointsCSV is the per-point summary as CSV.
func (r *Report) PointsCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"sweep", "variant", "point", "n", "seeds", "final_acc_mean", "final_acc_std", "best_acc_mean", "best_acc_std", "change", "reference"})
	for _, p := range r.Points {
		seeds := make([]string, len(p.Seeds))
		for i, s := range p.Seeds {
			seeds[i] = strconv.FormatInt(s, 10)
		}
		w.Write([]string{r.Name, p.Variant, strconv.Itoa(p.Point), strconv.Itoa(p.N), strings.Join(seeds, " "),
			csvFloat(p.FinalMean), csvFloat(p.FinalStd), csvFloat(p.BestMean), csvFloat(p.BestStd), csvFloat(p.Change), p.Reference})
	}
	w.Flush()
	return b.Bytes()
}

// RunsCSV is the per-run summary as CSV.
func (r *Report) RunsCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"sweep", "run_id", "variant", "point", "seed", "epochs", "deficit_windows", "final_acc", "best_acc"})
	for _, s := range r.Runs {
		w.Write([]string{r.Name, s.RunID, s.Variant, strconv.Itoa(s.Point), strconv.FormatInt(s.Seed, 10), strconv.Itoa(s.Epochs),
			s.Deficits, csvFloat(s.Final), csvFloat(s.Best)})
	}
	w.Flush()
	return b.Bytes()
}

// WriteFiles writes summary.csv, runs.csv and the plots (PNG and SVG) into
// dir/report and records them in r.Files.
func (r *Report) WriteFiles() error {
	out := filepath.Join(r.Dir, ReportDir)
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	r.Files = nil
	for name, data := range map[string][]byte{"summary.csv": r.PointsCSV(), "runs.csv": r.RunsCSV()} {
		p := filepath.Join(out, name)
		if err := atomicfile.Write(p, data); err != nil {
			return fmt.Errorf("report: %w", err)
		}
		r.Files = append(r.Files, p)
	}
	plots, err := r.plots()
	if err != nil {
		return err
	}
	for _, pl := range plots {
		for _, ext := range []string{"png", "svg"} {
			p := filepath.Join(out, pl.name+"."+ext)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("report: %w", err)
			}
			if err := savePlot(pl.p, p, ext); err != nil {
				return err
			}
			r.Files = append(r.Files, p)
		}
	}
	sort.Strings(r.Files)
	return nil
}

// MainPlot is the plot that shows the sweep's result best: final accuracy
// vs removal epoch, else accuracy change vs window onset, else the
// learning curves. Empty before WriteFiles.
func (r *Report) MainPlot() string {
	for _, name := range []string{"removal.png", "window.png", "finetune.png", "curves.png"} {
		for _, f := range r.Files {
			if filepath.Base(f) == name {
				return f
			}
		}
	}
	return ""
}
