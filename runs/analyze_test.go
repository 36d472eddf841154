package runs_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/pyenv"
	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
)

// TestAnalyzeScriptMatchesReport runs tools/analyze.py (polars, pandas,
// scipy) on a tiny sweep of three seeds and checks that its table gives
// the same final and last-K accuracy, reference, paired difference, t-
// interval and n per variant and point, and the same warnings, as
// critlab report. The window baseline is longer than removal point 0, so
// the two references differ.
func TestAnalyzeScriptMatchesReport(t *testing.T) {
	py := pyenv.Require(t, "pyarrow", "pandas", "polars", "scipy")
	dir := analyzeSweep(t)
	rep, err := runs.LoadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(t.TempDir(), "table.csv")
	out, err := exec.Command(py, filepath.Join("..", "tools", "analyze.py"), dir, "--csv", table).CombinedOutput()
	if err != nil {
		t.Fatalf("analyze.py: %v\n%s", err, out)
	}
	if n := compareTable(t, rep, table); n != 5 {
		t.Fatalf("compared %d points, want 5 (baseline, removal 0 and 3, window 1, control-vflip 3)", n)
	}
	var report bytes.Buffer
	if err := rep.WriteTable(&report); err != nil {
		t.Fatal(err)
	}
	got, want := warningLines(string(out)), warningLines(report.String())
	if len(want) == 0 || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("analyze.py warnings:\n%s\nreport's:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// warningLines are a table's warning lines, sorted (analyze.py orders
// variants by name, the report in its own order).
func warningLines(table string) []string {
	var lines []string
	for _, l := range strings.Split(table, "\n") {
		if strings.HasPrefix(l, "warning: ") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines
}

// TestNotebookMatchesReport executes tools/critical_period.ipynb (nbclient)
// on a tiny sweep: its table agrees with critlab report, its figures are
// inline PNGs, and without a sweep it stops with a message.
func TestNotebookMatchesReport(t *testing.T) {
	py := pyenv.Require(t, "pyarrow", "pandas", "polars", "scipy", "matplotlib", "nbclient", "nbformat", "ipykernel")
	dir := analyzeSweep(t)
	rep, err := runs.LoadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	const run = `import sys, nbformat, nbclient
nb = nbformat.read(sys.argv[1], as_version=4)
try:
    nbclient.NotebookClient(nb, timeout=300, resources={"metadata": {"path": sys.argv[2]}}).execute()
except nbclient.exceptions.CellExecutionError as e:
    print(e); sys.exit(3)
pngs = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
print("inline figures:", pngs)
`
	nb, err := filepath.Abs(filepath.Join("..", "tools", "critical_period.ipynb"))
	if err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(t.TempDir(), "table.csv")
	cmd := exec.Command(py, "-c", run, nb, filepath.Join("..", "tools"))
	cmd.Env = append(os.Environ(), "CRITLAB_SWEEP="+dir, "CRITLAB_TABLE_CSV="+table)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "inline figures: 2") {
		t.Fatalf("notebook: %v\n%s", err, out)
	}
	if n := compareTable(t, rep, table); n != 5 {
		t.Fatalf("compared %d points, want 5", n)
	}
	cmd = exec.Command(py, "-c", run, nb, filepath.Join("..", "tools"))
	cmd.Env = append(os.Environ(), "CRITLAB_SWEEP=")
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "set SWEEP") {
		t.Fatalf("notebook without a sweep: %v\n%s", err, out)
	}
}

// analyze.py picks each point's reference as ReferenceFor does, on a sweep
// with controls at every point that brings every kind of reference.
func TestAnalyzeScriptReferencesMatchReport(t *testing.T) {
	py := pyenv.Require(t, "pyarrow", "pandas", "polars", "scipy")
	dir := filepath.Join(t.TempDir(), "sw")
	s := tinySweep()
	s.Seeds = []int64{0, 1, 2}
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 3}, After: 3, Branch: true,
		Controls: runs.Controls{At: "all", VFlip: true, Sham: true, LRRestart: true, SameEpochs: true}}
	s.Window = &runs.WindowSpec{Deficit: "blur", Length: 1, Onsets: []int{1, 2}, Total: 5,
		Controls: runs.Controls{Sham: true, LRRestart: true}}
	if _, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: &runstest.Backend{}, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	rep, err := runs.LoadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(t.TempDir(), "table.csv")
	if out, err := exec.Command(py, filepath.Join("..", "tools", "analyze.py"), dir, "--csv", table).CombinedOutput(); err != nil {
		t.Fatalf("analyze.py: %v\n%s", err, out)
	}
	if n, want := compareTable(t, rep, table), len(rep.Points)-1; n != want { // all but the trunk
		t.Fatalf("compared %d points, want %d", n, want)
	}
	refs := map[string]bool{}
	for _, p := range rep.Points {
		refs[p.Reference] = true
	}
	for _, ref := range []string{"control-sham@2", "reference-same-epochs@3", "control-sham-lr-restart@2", "removal@0",
		"window-control-sham@1", "window-control-sham-lr-restart@1", "baseline"} {
		if !refs[ref] {
			t.Errorf("no point compared with %s (%v)", ref, refs)
		}
	}
}

// analyzeSweep trains a tiny sweep of three seeds (so that intervals are
// given) with removal, a window and a control, evaluating every other
// epoch and the last.
func analyzeSweep(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "sw")
	s := tinySweep()
	s.Seeds = []int64{0, 1, 2}
	s.Base.EvalEvery = 2 // null test metrics on the other epochs
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 3}, After: 3, Controls: runs.Controls{VFlip: true}}
	s.Window = &runs.WindowSpec{Deficit: "blur", Length: 1, Onsets: []int{1}, Total: 5}
	if _, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: &runstest.Backend{}, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// compareTable checks a CSV table of analyze.py's against the report and
// returns how many points it compared.
func compareTable(t *testing.T, rep *runs.Report, path string) int {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil || len(recs) < 2 {
		t.Fatalf("table: %v, %d records", err, len(recs))
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	num := func(r []string, c string) float64 {
		if r[col[c]] == "" {
			return math.NaN()
		}
		v, err := strconv.ParseFloat(r[col[c]], 64)
		if err != nil {
			t.Fatalf("%s: %v", c, err)
		}
		return v
	}
	same := func(a, b float64) bool { return math.IsNaN(a) && math.IsNaN(b) || math.Abs(a-b) <= 1e-9 }
	checked := 0
	for _, r := range recs[1:] {
		point, _ := strconv.Atoi(r[col["point"]])
		want, ok := rep.Point(r[col["variant"]], point)
		if !ok || want.Variant == runs.VariantTrunk {
			continue
		}
		name := fmt.Sprintf("%s %d", want.Variant, point)
		for _, c := range []struct {
			col  string
			want float64
		}{
			{"acc_mean", want.FinalMean}, {"lastk_mean", want.LastKMean}, {"diff_mean", want.Diff.Mean},
			{"diff_low", want.Diff.Low}, {"diff_high", want.Diff.High}, {"diff_n", float64(want.Diff.N)},
			{"diff_lastk_mean", want.DiffLastK.Mean},
		} {
			if got := num(r, c.col); !same(got, c.want) {
				t.Errorf("%s: analyze.py %s %v, report %v (vs %s)", name, c.col, got, c.want, want.Reference)
			}
		}
		if got := r[col["reference"]]; got != want.Reference {
			t.Errorf("%s: analyze.py reference %q, report %q", name, got, want.Reference)
		}
		if want.Diff.N > 0 && !want.Diff.HasInterval() {
			t.Errorf("%s: %d pairs, want an interval from 3 seeds", name, want.Diff.N)
		}
		checked++
	}
	return checked
}

// TestCompareMetricsScript: tools/compare_metrics.py finds a rerun of a
// run identical and a run of another seed different.
func TestCompareMetricsScript(t *testing.T) {
	py := pyenv.Require(t, "pyarrow", "pandas")
	root := t.TempDir()
	train := func(name string, seed int64) string {
		cfg := tinyConfig()
		cfg.Seed = seed
		dir := filepath.Join(root, name)
		if _, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: &runstest.Backend{}}); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(dir, runs.MetricsFile)
	}
	a, again, other := train("a", 1), train("again", 1), train("other", 2)
	script := filepath.Join("..", "tools", "compare_metrics.py")
	if out, err := exec.Command(py, script, a, again).CombinedOutput(); err != nil || !strings.Contains(string(out), "identical") {
		t.Errorf("same config: %v\n%s", err, out)
	}
	out, err := exec.Command(py, script, a, other).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(string(out), "different") {
		t.Errorf("other seed: %v\n%s", err, out)
	}
}

// TestProtocolV2Script runs tools/protocol_v2.py (Protocol v2's
// pre-registered analysis) on tiny sweeps shaped like the two v2 presets:
// its rule self-test passes, and its paired comparisons against the sham
// and the baseline agree with critlab report's.
func TestProtocolV2Script(t *testing.T) {
	py := pyenv.Require(t, "pyarrow", "pandas", "polars", "scipy")
	script := filepath.Join("..", "tools", "protocol_v2.py")
	if out, err := exec.Command(py, script, "--selftest").CombinedOutput(); err != nil || !strings.Contains(string(out), "selftest ok") {
		t.Fatalf("selftest: %v\n%s", err, out)
	}
	root := t.TempDir()
	sweep := func(name string, f func(*runs.SweepSpec)) (string, *runs.Report) {
		s := tinySweep()
		s.Seeds = []int64{0, 1, 2}
		s.Base.EvalEvery = 2
		f(&s)
		dir := filepath.Join(root, name)
		if _, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: &runstest.Backend{}, Jobs: 2}); err != nil {
			t.Fatal(err)
		}
		rep, err := runs.LoadReport(dir)
		if err != nil {
			t.Fatal(err)
		}
		return dir, rep
	}
	removal, rr := sweep("removal", func(s *runs.SweepSpec) {
		s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 3}, After: 2, Restart: true, Branch: true,
			Controls: runs.Controls{At: "all", VFlip: true, Noise: true, Sham: true}}
	})
	window, wr := sweep("window", func(s *runs.SweepSpec) {
		s.Base.LRSchedule, s.Base.LRStep, s.Base.LRDecay = "step", 4, 0.05
		s.Window = &runs.WindowSpec{Deficit: "blur", Length: 1, Onsets: []int{0, 1, 2}, Total: 5, Branch: true,
			Controls: runs.Controls{At: "all", VFlip: true}}
	})
	csvPath := filepath.Join(root, "v2.csv")
	out, err := exec.Command(py, script, removal, window, "--csv", csvPath, "--points", "2,3", "--onsets", "0,1,2").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "verdict:") {
		t.Fatalf("protocol_v2.py: %v\n%s", err, out)
	}
	f, err := os.Open(csvPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]float64{} // name -> n, mean (points)
	for _, r := range recs[1:] {
		n, _ := strconv.ParseFloat(r[3], 64)
		mean, _ := strconv.ParseFloat(r[4], 64)
		got[r[0]] = [2]float64{n, mean}
	}
	checks := []struct {
		name    string
		rep     *runs.Report
		variant string
		point   int
	}{
		{"Δblur(2)", rr, runs.VariantRemoval, 2}, {"Δblur(3)", rr, runs.VariantRemoval, 3},
		{"Δvflip(3)", rr, runs.VariantVFlip, 3}, {"Δnoise(2)", rr, runs.VariantNoise, 2},
		{"W_blur(0)", wr, runs.VariantWindow, 0}, {"W_blur(2)", wr, runs.VariantWindow, 2},
		{"W_vflip(1)", wr, runs.VariantWindowVFlip, 1},
	}
	for _, c := range checks {
		p, ok := c.rep.Point(c.variant, c.point)
		g, have := got[c.name]
		if !ok || !have {
			t.Errorf("%s: report point %v, script row %v", c.name, ok, have)
			continue
		}
		if int(g[0]) != p.Diff.N || math.Abs(g[1]-100*p.Diff.Mean) > 1e-9 {
			t.Errorf("%s: script n %v mean %v, report n %d mean %v (vs %s)", c.name, g[0], g[1], p.Diff.N, 100*p.Diff.Mean, p.Reference)
		}
	}
	if _, ok := got["W_blur(0) − W_blur(2)"]; !ok {
		t.Errorf("no timing contrast in %v", got)
	}
}
