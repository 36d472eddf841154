package runs

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// The estimate counts a branch's own epochs only and takes its rate from
// the sweep's trained epochs first, bench.json second.
func TestEstimatePlan(t *testing.T) {
	dir := t.TempDir()
	plan := Plan{Dir: dir, Runs: []PlannedRun{
		{ID: "trunk", Config: Config{Model: "small", Width: 1, Epochs: 10, TrainSubset: 100}},
		{ID: "branch", Config: Config{Model: "small", Width: 1, Epochs: 10, BranchEpoch: 4, TrainSubset: 100}},
	}}
	size := func(c Config) int { return c.TrainSubset }
	bench := filepath.Join(dir, "bench.json")

	e := EstimatePlan(plan, size, 2, bench)
	if e.Epochs != 16 || e.Images != 1600 || e.Wall != 0 {
		t.Errorf("nothing measured: got %+v, want 16 epochs, 1600 images, no wall time", e)
	}

	if err := os.WriteFile(bench, []byte(`{"models":[{"model":"allcnn","width":1,"train_step":{"images_per_sec":1}},
		{"model":"small","width":1,"train_step":{"images_per_sec":400}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if e := EstimatePlan(plan, size, 2, bench); e.Wall != 4*time.Second {
		t.Errorf("from bench.json: wall %v, want 4s (1600 images at 400 img/s)", e.Wall)
	}

	if err := os.MkdirAll(filepath.Join(dir, "trunk"), 0o755); err != nil {
		t.Fatal(err)
	}
	rows := []MetricsRow{{RunID: "trunk", EpochSeconds: 2}, {RunID: "trunk", Epoch: 1, EpochSeconds: 4}}
	if err := WriteMetrics(filepath.Join(dir, "trunk", MetricsFile), rows, Config{}); err != nil {
		t.Fatal(err)
	}
	// 16 epochs at 3 s, 2 at a time.
	if e := EstimatePlan(plan, size, 2, bench); e.Wall != 24*time.Second {
		t.Errorf("from the sweep's epochs: wall %v, want 24s", e.Wall)
	}
}
