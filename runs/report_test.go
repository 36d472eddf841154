package runs_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/golden"
	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
)

// CheckImage fails unless path is a non-empty PNG or SVG file.
func checkImage(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	switch filepath.Ext(path) {
	case ".png":
		if !bytes.HasPrefix(data, []byte("\x89PNG\r\n\x1a\n")) || len(data) < 1000 {
			t.Errorf("%s: not a PNG (%d bytes)", path, len(data))
		}
	case ".svg":
		if !bytes.Contains(data[:min(len(data), 200)], []byte("<svg")) || !bytes.HasSuffix(bytes.TrimSpace(data), []byte("</svg>")) {
			t.Errorf("%s: not an SVG", path)
		}
	}
}

func TestReportSweep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sw")
	s := tinySweep()
	s.Name = "golden"
	s.Base.Fisher = runs.FisherConfig{Images: 8, Samples: 1, Every: 2}
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 4}, Total: 6,
		Controls: runs.Controls{VFlip: true, LRRestart: true}}
	s.Window = &runs.WindowSpec{Deficit: "blur", Length: 2, Onsets: []int{1, 3}, Total: 6}
	s.Finetune = &runs.FinetuneSpec{Deficit: "blur", Pretrain: []int{2}, Epochs: 6}
	if _, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: &runstest.Backend{}, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	rep, err := runs.LoadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "report_sweep_table.golden", table.Bytes())
	golden.Check(t, "report_sweep_summary_csv.golden", rep.PointsCSV())

	base, ok := rep.Point(runs.VariantBaseline, -1)
	if ref, name := rep.Reference(runs.VariantWindow, 1); !ok || base.N != 2 || math.Abs(ref-base.FinalMean) > 0 || name != runs.VariantBaseline {
		t.Fatalf("baseline %+v, window reference %v %q", base, ref, name)
	}
	if len(rep.Fisher) == 0 {
		t.Fatal("no fisher rows")
	}
	if err := rep.WriteFiles(); err != nil {
		t.Fatal(err)
	}
	want := []string{"summary.csv", "runs.csv", "removal.png", "removal.svg", "window.png", "window.svg",
		"finetune.png", "curves.svg", "fisher.png", "fisher-layers.png", "fisher-layers.svg"}
	have := map[string]bool{}
	for _, f := range rep.Files {
		have[filepath.Base(f)] = true
		checkImage(t, f)
	}
	for _, w := range want {
		if !have[w] {
			t.Errorf("no %s among %v", w, rep.Files)
		}
	}
	if len(rep.Files) != len(have) {
		t.Errorf("files of one name twice (a figure per run?): %v", rep.Files)
	}
	if got := filepath.Base(rep.MainPlot()); got != "removal.png" {
		t.Errorf("main plot %q", got)
	}
}

func TestReportRunDirAndFolderOfRuns(t *testing.T) {
	root := t.TempDir()
	cfg := tinyConfig()
	mustRun(t, cfg, filepath.Join(root, "a"), &runstest.Backend{})
	cfg.Seed = 1
	cfg.Deficits = nil
	mustRun(t, cfg, filepath.Join(root, "b"), &runstest.Backend{})

	rep, err := runs.LoadReport(filepath.Join(root, "a"))
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	rep.WriteTable(&table)
	golden.Check(t, "report_run_table.golden", table.Bytes())
	if err := rep.WriteFiles(); err != nil {
		t.Fatal(err)
	}
	// One run has no reference to pair with: the learning curves only.
	if filepath.Base(rep.MainPlot()) != "curves.png" {
		t.Errorf("files %v", rep.Files)
	}

	rep, err = runs.LoadReport(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Points) != 2 || rep.Points[0].Variant != "baseline" || rep.Points[1].Variant != "removal" || rep.Points[1].Point != 3 {
		t.Fatalf("points %+v", rep.Points)
	}
	if _, err := runs.LoadReport(t.TempDir()); err == nil || !strings.Contains(err.Error(), "HINT") {
		t.Fatalf("empty dir: %v", err)
	}
}

// Each family's change is measured against its own no-deficit point:
// removal points against removal point 0 (same sharp epochs after the
// deficit), windows against the baseline (same length), fine-tuning
// against scratch; removal point 0 and the baseline stand in for each
// other.
func TestReportReference(t *testing.T) {
	pts := func(ps ...runs.PointSummary) *runs.Report { return &runs.Report{Points: ps} }
	base := runs.PointSummary{Variant: runs.VariantBaseline, Point: -1, FinalMean: 0.6}
	rem0 := runs.PointSummary{Variant: runs.VariantRemoval, Point: 0, FinalMean: 0.5}
	scratch := runs.PointSummary{Variant: runs.VariantScratch, Point: 0, FinalMean: 0.4}
	tests := []struct {
		rep     *runs.Report
		variant string
		want    float64
		name    string
	}{
		{pts(base, rem0, scratch), runs.VariantRemoval, 0.5, "removal@0"},
		{pts(base, rem0), runs.VariantLRRestart, 0.5, "removal@0"},
		{pts(base, rem0), runs.VariantVFlip, 0.5, "removal@0"},
		{pts(base, rem0), runs.VariantWindow, 0.6, "baseline"},
		{pts(base, rem0), runs.VariantWindowVFlip, 0.6, "baseline"},
		{pts(base), runs.VariantRemoval, 0.6, "baseline"},
		{pts(rem0), runs.VariantWindow, 0.5, "removal@0"},
		{pts(base, scratch), runs.VariantFinetune, 0.4, "scratch@0"},
	}
	for _, tc := range tests {
		got, name := tc.rep.Reference(tc.variant, 4)
		if got != tc.want || name != tc.name {
			t.Errorf("%s over %d points: %v %q, want %v %q", tc.variant, len(tc.rep.Points), got, name, tc.want, tc.name)
		}
	}
	if got, name := pts(base).Reference(runs.VariantFinetune, 2); !math.IsNaN(got) || name != "" {
		t.Errorf("finetune without scratch: %v %q, want NaN", got, name)
	}
}

// A sweep writes its runs' Fisher rows beside sweep.parquet, so its two
// Parquet files, copied without the run directories, report the same.
func TestSweepFisherParquet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sw")
	s := tinySweep()
	s.Base.Fisher = runs.FisherConfig{Images: 8, Samples: 1, Every: 2}
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, After: 4, Controls: runs.Controls{VFlip: true}}
	res, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: &runstest.Backend{}, Jobs: 2})
	if err != nil {
		t.Fatal(err)
	}
	var want []runs.FisherRow
	for _, r := range res.Plan.Runs {
		fr, err := runs.ReadFisher(filepath.Join(dir, r.ID, runs.FisherFile))
		if err != nil || len(fr) == 0 {
			t.Fatalf("run %s: %d fisher rows, %v", r.ID, len(fr), err)
		}
		want = append(want, fr...)
	}
	got, err := runs.ReadFisher(filepath.Join(dir, runs.FisherFile))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("sweep fisher.parquet: %d rows, want the runs' %d in plan order", len(got), len(want))
	}
	copied := filepath.Join(t.TempDir(), "copy")
	if err := os.MkdirAll(copied, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{runs.SweepFile, runs.FisherFile} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(copied, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a, err := runs.LoadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := runs.LoadReport(copied)
	if err != nil {
		t.Fatal(err)
	}
	if len(b.Fisher) != len(res.Plan.Runs) || len(a.Fisher) != len(b.Fisher) {
		t.Fatalf("fisher runs: copy %d, sweep %d, planned %d", len(b.Fisher), len(a.Fisher), len(res.Plan.Runs))
	}
	for id, rows := range a.Fisher {
		if !slices.Equal(rows, b.Fisher[id]) {
			t.Errorf("run %s: the copy's fisher rows differ", id)
		}
	}
}

// The sweep's fisher.parquet merges as sweep.parquet does: runs this
// attempt finished from their directories, the others from the file; with
// no rows left it is removed, never left stale.
func TestWriteSweepFisherMerges(t *testing.T) {
	dir := t.TempDir()
	row := func(id string, tr float64) runs.FisherRow {
		return runs.FisherRow{RunID: id, Epoch: 1, Layer: runs.FisherTotal, Trace: tr}
	}
	write := func(path string, rows ...runs.FisherRow) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := runs.WriteFisher(path, rows, tinyConfig()); err != nil {
			t.Fatal(err)
		}
	}
	sweepFisher := filepath.Join(dir, runs.FisherFile)
	write(sweepFisher, row("a", 1), row("b", 2))
	write(filepath.Join(dir, "a", runs.FisherFile), row("a", 10)) // a was trained again
	write(filepath.Join(dir, "b", runs.FisherFile), row("b", 20)) // b's directory changed, b not finished now
	rows := []runs.SweepRow{{RunID: "a"}, {RunID: "b"}}
	if err := runs.WriteSweepFisher(dir, rows, map[string]bool{"a": true}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := runs.ReadFisher(sweepFisher)
	if err != nil {
		t.Fatal(err)
	}
	if want := []runs.FisherRow{row("a", 10), row("b", 2)}; !slices.Equal(got, want) {
		t.Fatalf("merged %v, want %v", got, want)
	}
	// a trained again without Fisher and b gone from the sweep: nothing left.
	if err := os.Remove(filepath.Join(dir, "a", runs.FisherFile)); err != nil {
		t.Fatal(err)
	}
	if err := runs.WriteSweepFisher(dir, rows[:1], map[string]bool{"a": true}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(sweepFisher); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stale %s left: %v", sweepFisher, err)
	}
}
