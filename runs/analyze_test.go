package runs_test

import (
	"context"
	"encoding/csv"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/critlab/critlab/internal/pyenv"
	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
)

// TestAnalyzeScriptMatchesReport runs tools/analyze.py (pandas and polars)
// on a tiny sweep and checks that its table gives the same final accuracy
// per variant and point as critlab report.
func TestAnalyzeScriptMatchesReport(t *testing.T) {
	py := pyenv.Require(t, "pyarrow", "pandas", "polars")
	dir := filepath.Join(t.TempDir(), "sw")
	s := tinySweep()
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 3}, After: 3, Controls: runs.Controls{VFlip: true}}
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
		checked++
	}
	if checked != 3 {
		t.Fatalf("compared %d points, want 3 (removal 0, 3 and control-vflip 3)", checked)
	}
}
