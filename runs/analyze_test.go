package runs_test

import (
	"context"
	"encoding/csv"
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/pyenv"
	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
)

// TestAnalyzeScriptMatchesReport runs tools/analyze.py (pandas and polars)
// on a tiny sweep and checks that its table gives the same final accuracy
// and change per variant and point as critlab report. The window baseline
// is longer than removal point 0, so the two references differ.
func TestAnalyzeScriptMatchesReport(t *testing.T) {
	py := pyenv.Require(t, "pyarrow", "pandas", "polars")
	dir := filepath.Join(t.TempDir(), "sw")
	s := tinySweep()
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 3}, After: 3, Controls: runs.Controls{VFlip: true}}
	s.Window = &runs.WindowSpec{Deficit: "blur", Length: 1, Onsets: []int{1}, Total: 5}
	if _, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: &runstest.Backend{}, Workers: 2}); err != nil {
		t.Fatal(err)
	}
	rep, err := runs.LoadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	table := filepath.Join(t.TempDir(), "table.csv")
	out, err := exec.Command(py, filepath.Join("..", "tools", "analyze.py"), dir, "--csv", table).CombinedOutput()
	if err != nil {
		t.Fatalf("analyze.py: %v\n%s", err, out)
	}
	f, err := os.Open(table)
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
	checked := 0
	for _, r := range recs[1:] {
		point, _ := strconv.Atoi(r[col["point"]])
		want, ok := rep.Point(r[col["variant"]], point)
		if !ok {
			continue // analyze.py also lists the trunk
		}
		got, err := strconv.ParseFloat(r[col["acc_mean"]], 64)
		if err != nil || math.Abs(got-want.FinalMean) > 1e-9 {
			t.Errorf("%s %d: analyze.py %v (%v), report %v", r[col["variant"]], point, got, err, want.FinalMean)
		}
		delta, err := strconv.ParseFloat(r[col["delta"]], 64)
		if err != nil || math.Abs(delta-want.Change) > 1e-9 {
			t.Errorf("%s %d: analyze.py change %v (%v), report %v (vs %s)", r[col["variant"]], point, delta, err, want.Change, want.Reference)
		}
		checked++
	}
	if checked != 5 {
		t.Fatalf("compared %d points, want 5 (baseline, removal 0 and 3, window 1, control-vflip 3)", checked)
	}
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
