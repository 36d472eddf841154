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

	"gonum.org/v1/gonum/stat"
)

// FinalEpochs is K, how many last evaluated epochs the secondary final
// accuracy (LastKAccuracy) averages.
const FinalEpochs = 5

// ReportDir is the folder, inside a run or sweep directory, that report
// files go to.
const ReportDir = "report"

// testAcc is an epoch's test accuracy and whether the epoch was evaluated.
func testAcc(m MetricsRow) (float64, bool) {
	if m.TestAcc == nil {
		return 0, false
	}
	return *m.TestAcc, true
}

// FinalAccuracy is the test accuracy of the last evaluated epoch, the
// primary final accuracy (the published reproductions report the last
// epoch); NaN without one.
func FinalAccuracy(rows []MetricsRow) float64 {
	for i := len(rows) - 1; i >= 0; i-- {
		if a, ok := testAcc(rows[i]); ok {
			return a
		}
	}
	return math.NaN()
}

// lastK returns the last FinalEpochs evaluated rows (fewer when the run
// has fewer), oldest first.
func lastK(rows []MetricsRow) []MetricsRow {
	var out []MetricsRow
	for i := len(rows) - 1; i >= 0 && len(out) < FinalEpochs; i-- {
		if _, ok := testAcc(rows[i]); ok {
			out = append([]MetricsRow{rows[i]}, out...)
		}
	}
	return out
}

// LastKAccuracy is the mean test accuracy of the last FinalEpochs
// evaluated epochs (fewer when the run has fewer); NaN without one.
func LastKAccuracy(rows []MetricsRow) float64 {
	k := lastK(rows)
	if len(k) == 0 {
		return math.NaN()
	}
	var s float64
	for _, r := range k {
		a, _ := testAcc(r)
		s += a
	}
	return s / float64(len(k))
}

// lastKWarning says why a run's last-K mean is not a mean of K sharp
// epochs, "" when it is.
func lastKWarning(rows []MetricsRow) string {
	k := lastK(rows)
	var deficit []string
	for _, r := range k {
		if r.Deficit != "none" {
			deficit = append(deficit, strconv.Itoa(int(r.Epoch)))
		}
	}
	var why []string
	if len(k) < FinalEpochs {
		why = append(why, fmt.Sprintf("only %d evaluated epochs, fewer than K = %d", len(k), FinalEpochs))
	}
	if len(deficit) > 0 {
		why = append(why, fmt.Sprintf("the last-%d window includes deficit epochs %s", FinalEpochs, strings.Join(deficit, ",")))
	}
	return strings.Join(why, "; ")
}

// RunSummary is one run of a report under one label.
type RunSummary struct {
	RunID    string
	Variant  string
	Point    int
	Seed     int64
	Epochs   int
	Deficits string
	// Final is the test accuracy of the last evaluated epoch, LastK the
	// mean of the last FinalEpochs evaluated epochs.
	Final, LastK float64
	// Warning says why LastK is not a mean of FinalEpochs sharp epochs;
	// empty when it is.
	Warning string
	Rows    []MetricsRow
}

// PointSummary aggregates the seeds of one (variant, point).
type PointSummary struct {
	Variant string
	Point   int
	N       int
	Seeds   []int64
	// Finals and LastKs are the runs' Final and LastK, in Seeds order.
	Finals, LastKs []float64
	// Means and sample standard deviations (NaN for one seed) over seeds.
	FinalMean, FinalStd, LastKMean float64
	// Diff and DiffLastK are the paired differences of Final and LastK
	// against the reference's runs of the same seeds (see
	// Report.Reference); N 0 without a reference.
	Diff, DiffLastK Paired
	// Reference names the point Diff is relative to: removal@0,
	// baseline or scratch@0; empty without one.
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
	// Margin, when positive, adds a TOST column to the table: are the
	// paired differences of final accuracy within ±Margin (a fraction)?
	Margin float64
	// Files are the files WriteFiles wrote.
	Files []string
}

var variantOrder = map[string]int{
	VariantBaseline: 0, VariantRemoval: 1, VariantSameEpochs: 2, VariantWindow: 3,
	VariantSham: 4, VariantVFlip: 5, VariantNoise: 6, VariantLRRestart: 7, VariantShamLRRestart: 8,
	VariantWindowSham: 9, VariantWindowVFlip: 10, VariantWindowNoise: 11, VariantWindowLRRestart: 12, VariantWindowShamLRRestart: 13,
	VariantPretrain: 14, VariantFinetune: 15, VariantScratch: 16, VariantTrunk: 17,
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
	if st, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("report %s: no such directory\n---> HINT: give a run directory or a sweep directory", dir)
	} else if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("report %s: not a directory\n---> HINT: give the run or sweep directory that holds it", dir)
	}
	switch {
	case exists(sweepPath):
		r, err := ReadSweep(sweepPath)
		if err != nil {
			return nil, fmt.Errorf("report: %w\n---> HINT: move %s aside and run the sweep again (critlab sweep with the same spec skips finished runs and writes it again from the run directories)", err, sweepPath)
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
			return nil, fmt.Errorf("report: %w\n---> HINT: %s", err, badMetricsHint)
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
				return nil, fmt.Errorf("report: %w\n---> HINT: %s; or move its run directory out of %s", err, badMetricsHint, dir)
			}
			rows = append(rows, labelRows(m, name)...)
			runDirs = append(runDirs, filepath.Dir(p))
		}
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("report %s: no finished epochs yet", dir)
	}
	if err := oneRunPerSeed(rows); err != nil {
		return nil, fmt.Errorf("report %s: %w", dir, err)
	}
	rep := Summarize(name, rows)
	rep.Dir = dir
	rep.Fisher = map[string][]FisherRow{}
	// A sweep's own fisher.parquet holds its runs' rows: a sweep.parquet
	// copied without the run directories still plots them.
	if sweepFisher := filepath.Join(dir, FisherFile); exists(sweepPath) && exists(sweepFisher) {
		fr, err := readParquet[FisherRow](sweepFisher, false)
		if err != nil {
			return nil, err
		}
		for _, r := range fr {
			rep.Fisher[r.RunID] = append(rep.Fisher[r.RunID], r)
		}
		return rep, nil
	}
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

// badMetricsHint is the way out of a metrics.parquet critlab cannot read.
const badMetricsHint = "a run's metrics.parquet is written by critlab train; move the file aside, or train the run again with --force"

// oneRunPerSeed refuses rows where two runs share a variant, point and
// seed: the report would average them as if they were two seeds. Loose
// run directories are labelled from their deficit windows alone, so a
// blur and a vflip removal at one epoch (or two copies of a run) collide.
func oneRunPerSeed(rows []SweepRow) error {
	type key struct {
		variant string
		point   int32
		seed    int64
	}
	first := map[key]SweepRow{}
	for _, r := range rows {
		k := key{r.Variant, r.Point, r.Seed}
		f, ok := first[k]
		if !ok {
			first[k] = r
			continue
		}
		if f.RunID != r.RunID {
			return fmt.Errorf("runs %s (deficits %s) and %s (deficits %s) are both %s@%d of seed %d; a report averages one run per seed\n---> HINT: report runs of different deficits from folders of their own, or train them as one sweep (critlab sweep), which labels its controls apart",
				f.RunID, orDefault(f.DeficitWindows, "none"), r.RunID, orDefault(r.DeficitWindows, "none"), r.Variant, r.Point, r.Seed)
		}
	}
	return nil
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
		// Loose run directories: only the metrics columns are known.
		out[i] = sweepRow(m, sweep, variant, point, Config{}, m.RunID)
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
			Deficits: ms[0].DeficitWindows, Final: FinalAccuracy(ms), LastK: LastKAccuracy(ms),
			Warning: lastKWarning(ms), Rows: ms,
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
		ps := PointSummary{Variant: rep.Runs[i].Variant, Point: rep.Runs[i].Point}
		for ; j < len(rep.Runs) && rep.Runs[j].Variant == ps.Variant && rep.Runs[j].Point == ps.Point; j++ {
			ps.Finals = append(ps.Finals, rep.Runs[j].Final)
			ps.LastKs = append(ps.LastKs, rep.Runs[j].LastK)
			ps.Seeds = append(ps.Seeds, rep.Runs[j].Seed)
		}
		ps.N = len(ps.Finals)
		ps.FinalMean, ps.FinalStd = stat.MeanStdDev(ps.Finals, nil)
		ps.LastKMean = stat.Mean(ps.LastKs, nil)
		rep.Points = append(rep.Points, ps)
		i = j
	}
	for i := range rep.Points {
		p := &rep.Points[i]
		_, name := rep.Reference(p.Variant, p.Point)
		ref, ok := rep.pointNamed(name)
		if !ok {
			p.Diff, p.DiffLastK = PairedDiff(nil, nil, nil, nil), PairedDiff(nil, nil, nil, nil)
			continue
		}
		p.Reference = name
		p.Diff = PairedDiff(p.Seeds, p.Finals, ref.Seeds, ref.Finals)
		p.DiffLastK = PairedDiff(p.Seeds, p.LastKs, ref.Seeds, ref.LastKs)
	}
	return rep
}

// pointNamed returns the point a reference name (see Reference) names.
func (r *Report) pointNamed(name string) (PointSummary, bool) {
	for _, p := range r.Points {
		if name != "" && (name == p.Variant && p.Point < 0 || name == fmt.Sprintf("%s@%d", p.Variant, p.Point)) {
			return p, true
		}
	}
	return PointSummary{}, false
}

// Reference is the mean final accuracy the change of a variant's point
// is measured against, and its name (see ReferenceFor); NaN and "" without
// one.
func (r *Report) Reference(variant string, point int) (float64, string) {
	ref, _ := ReferenceFor(Label{variant, point}, func(l Label) bool {
		_, ok := r.Point(l.Variant, l.Point)
		return ok
	})
	ps, ok := r.Point(ref.Variant, ref.Point)
	if !ok {
		return math.NaN(), ""
	}
	return ps.FinalMean, ref.String()
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

// pct formats an accuracy in [0,1] as a percentage, "-" for NaN.
func pct(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return strconv.FormatFloat(100*x, 'f', 2, 64)
}

// signed formats a difference in [0,1] as signed percentage points, "-"
// for NaN.
func signed(x float64) string {
	if math.IsNaN(x) {
		return "-"
	}
	return fmt.Sprintf("%+.2f", 100*x)
}

// interval formats a paired interval in points, "n<3" without one.
func interval(p Paired) string {
	switch {
	case p.N == 0:
		return "-"
	case !p.HasInterval():
		return fmt.Sprintf("n<%d", MinIntervalN)
	}
	return fmt.Sprintf("[%s, %s]", signed(p.Low), signed(p.High))
}

// bySeed formats the per-seed differences in points.
func bySeed(p Paired) string {
	parts := make([]string, len(p.Diffs))
	for i, d := range p.Diffs {
		parts[i] = signed(d)
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}

// tableVariant reports whether a variant has a row in the table: the
// trunk only feeds the removal points.
func tableVariant(v string) bool { return v != VariantTrunk }

// WriteTable prints the per-point summary table, a note on the intervals
// and the warnings of runs whose last-K mean is not over K sharp epochs.
func (r *Report) WriteTable(w io.Writer) error {
	var b bytes.Buffer
	n := countRuns(r.Runs)
	fmt.Fprintf(&b, "%s: %d run%s\n", r.Name, n, plural(n))
	fmt.Fprintf(&b, "final = test accuracy %% of the last epoch; last-%d = mean of the last %d evaluated epochs (secondary)\n", FinalEpochs, FinalEpochs)
	fmt.Fprintf(&b, "Δ = paired difference from the reference run (vs) of the same seed, in points: mean over n seeds and its %.0f%% t-interval\n", 100*Confidence)
	few := false
	for _, p := range r.Points {
		few = few || tableVariant(p.Variant) && p.Diff.N > 0 && !p.Diff.HasInterval()
	}
	if few {
		fmt.Fprintf(&b, "n < %d: no interval is given (too few seeds to estimate the spread of Δ); \"Δ by seed\" lists the pairs\n", MinIntervalN)
	}
	head := []string{"variant", "point", "n", "final %", fmt.Sprintf("last-%d %%", FinalEpochs), "Δ final", "95% CI", fmt.Sprintf("Δ last-%d", FinalEpochs)}
	if few {
		head = append(head, "Δ by seed")
	}
	if r.Margin > 0 {
		head = append(head, fmt.Sprintf("TOST ±%.2f p", 100*r.Margin))
	}
	head = append(head, "vs")
	table := [][]string{head}
	for _, p := range r.Points {
		if !tableVariant(p.Variant) {
			continue
		}
		row := []string{p.Variant, strconv.Itoa(p.Point), strconv.Itoa(p.N), pct(p.FinalMean), pct(p.LastKMean),
			signed(p.Diff.Mean), interval(p.Diff), signed(p.DiffLastK.Mean)}
		if few {
			row = append(row, bySeed(p.Diff))
		}
		if r.Margin > 0 {
			row = append(row, tostText(TOST(p.Diff, r.Margin), p.Diff))
		}
		ref := p.Reference
		if ref == "" {
			ref = "-"
		}
		table = append(table, append(row, ref))
	}
	writeAligned(&b, table)
	if r.Margin > 0 {
		fmt.Fprintf(&b, "TOST: two one-sided t-tests that |Δ final| < %.2f points; p < 0.05 supports \"no effect larger than the margin\"\n", 100*r.Margin)
	}
	for _, line := range r.warnings() {
		fmt.Fprintln(&b, line)
	}
	_, err := w.Write(b.Bytes())
	return err
}

// warnings are the runs' last-K warnings, one line per (variant, point)
// and text: a sweep's seeds mostly share them, and one line per run would
// bury the table (runs.csv keeps them per run).
func (r *Report) warnings() []string {
	type key struct {
		label Label
		text  string
	}
	var order []key
	runs := map[key][]RunSummary{}
	for _, rs := range r.Runs {
		if rs.Warning == "" || !tableVariant(rs.Variant) {
			continue
		}
		k := key{Label{rs.Variant, rs.Point}, rs.Warning}
		if _, ok := runs[k]; !ok {
			order = append(order, k)
		}
		runs[k] = append(runs[k], rs)
	}
	var lines []string
	for _, k := range order {
		rs := runs[k]
		if len(rs) == 1 {
			lines = append(lines, fmt.Sprintf("warning: %s: %s", rs[0].RunID, k.text))
			continue
		}
		seeds := make([]string, len(rs))
		for i, s := range rs {
			seeds[i] = strconv.FormatInt(s.Seed, 10)
		}
		lines = append(lines, fmt.Sprintf("warning: %s, %d runs (seeds %s): %s", k.label, len(rs), strings.Join(seeds, ","), k.text))
	}
	return lines
}

func tostText(e Equivalence, p Paired) string {
	switch {
	case p.N == 0:
		return "-"
	case math.IsNaN(e.P):
		return fmt.Sprintf("n<%d", MinIntervalN)
	}
	return strconv.FormatFloat(e.P, 'f', 3, 64)
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

// PointsCSV is the per-point summary as CSV (accuracies as fractions;
// empty cells for NaN).
func (r *Report) PointsCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"sweep", "variant", "point", "n", "seeds", "final_acc_mean", "final_acc_std",
		fmt.Sprintf("last%d_acc_mean", FinalEpochs), "reference", "diff_n", "diff_mean", "diff_ci_low", "diff_ci_high",
		"diff_by_seed", fmt.Sprintf("diff_last%d_mean", FinalEpochs)})
	for _, p := range r.Points {
		seeds := make([]string, len(p.Seeds))
		for i, s := range p.Seeds {
			seeds[i] = strconv.FormatInt(s, 10)
		}
		diffs := make([]string, len(p.Diff.Diffs))
		for i, d := range p.Diff.Diffs {
			diffs[i] = csvFloat(d)
		}
		w.Write([]string{r.Name, p.Variant, strconv.Itoa(p.Point), strconv.Itoa(p.N), strings.Join(seeds, " "),
			csvFloat(p.FinalMean), csvFloat(p.FinalStd), csvFloat(p.LastKMean), p.Reference, strconv.Itoa(p.Diff.N),
			csvFloat(p.Diff.Mean), csvFloat(p.Diff.Low), csvFloat(p.Diff.High), strings.Join(diffs, " "), csvFloat(p.DiffLastK.Mean)})
	}
	w.Flush()
	return b.Bytes()
}

// RunsCSV is the per-run summary as CSV.
func (r *Report) RunsCSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"sweep", "run_id", "variant", "point", "seed", "epochs", "deficit_windows", "final_acc",
		fmt.Sprintf("last%d_acc", FinalEpochs), "warning"})
	for _, s := range r.Runs {
		w.Write([]string{r.Name, s.RunID, s.Variant, strconv.Itoa(s.Point), strconv.FormatInt(s.Seed, 10), strconv.Itoa(s.Epochs),
			s.Deficits, csvFloat(s.Final), csvFloat(s.LastK), s.Warning})
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
	figs, err := r.figures()
	if err != nil {
		return err
	}
	for _, f := range figs {
		for _, ext := range []string{"png", "svg"} {
			p := filepath.Join(out, f.name+"."+ext)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return fmt.Errorf("report: %w", err)
			}
			if err := f.save(p, ext); err != nil {
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
