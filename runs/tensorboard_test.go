package runs_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/pyenv"
	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
)

// tensorboardScalars reads a logdir with TensorBoard's own
// EventAccumulator and returns tag -> the (step, value) pairs it shows.
func tensorboardScalars(t *testing.T, dir string) map[string][][2]float64 {
	t.Helper()
	py := pyenv.Require(t, "tensorboard")
	script := `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
print(json.dumps({tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}))
`
	out, err := exec.Command(py, "-c", script, dir).Output()
	if err != nil {
		t.Fatalf("tensorboard reader: %v", err)
	}
	var got map[string][][2]float64
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("tensorboard reader output %q: %v", out, err)
	}
	return got
}

// tensorboardRuns returns the runs TensorBoard finds under a logdir, each
// as "RUN:N" with N its train/loss points, sorted. The multiplexer reads
// scalars as TensorBoard's web app does (simple values become tensors).
func tensorboardRuns(t *testing.T, logdir string) []string {
	t.Helper()
	py := pyenv.Require(t, "tensorboard")
	script := `
import sys
from tensorboard.backend.event_processing.plugin_event_multiplexer import EventMultiplexer
m = EventMultiplexer()
m.AddRunsFromDirectory(sys.argv[1])
m.Reload()
for run in sorted(m.Runs()):
    print("%s:%d" % (run, len(m.Tensors(run, "train/loss"))))
`
	var stderr strings.Builder
	cmd := exec.Command(py, "-c", script, logdir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tensorboard multiplexer: %v\n%s", err, stderr.String())
	}
	return strings.Fields(string(out))
}

// wantScalars is what TensorBoard should show for a run's rows and Fisher
// traces, without the wall-clock tags.
func wantScalars(rows []runs.MetricsRow, fisher []runs.FisherRow) map[string][][2]float64 {
	want := map[string][][2]float64{}
	add := func(tag string, step int32, v float64) {
		want[tag] = append(want[tag], [2]float64{float64(step), float64(float32(v))})
	}
	total := map[int32]float64{}
	for _, f := range fisher {
		if f.Layer == runs.FisherTotal {
			total[f.Epoch] = f.Trace
		}
	}
	for _, r := range rows {
		add("train/loss", r.Epoch, r.TrainLoss)
		add("train/acc", r.Epoch, r.TrainAcc)
		add("lr", r.Epoch, r.LR)
		if r.TestAcc != nil {
			add("test/loss", r.Epoch, *r.TestLoss)
			add("test/acc", r.Epoch, *r.TestAcc)
		}
		if r.FisherTrace != nil {
			add("fisher/trace", r.Epoch, *r.FisherTrace)
		}
		for _, f := range fisher {
			if f.Epoch == r.Epoch && f.Layer != runs.FisherTotal {
				add("fisher/share/"+f.Layer, r.Epoch, f.Trace/total[f.Epoch])
			}
		}
	}
	return want
}

// checkTensorBoard compares what TensorBoard reads in a run's tb folder
// with its metrics: every epoch once (no step twice after a resume), the
// values of metrics.parquet and fisher.parquet, and positive wall-clock
// tags.
func checkTensorBoard(t *testing.T, dir string, epochs int) {
	t.Helper()
	rows, err := runs.ReadMetrics(filepath.Join(dir, runs.MetricsFile))
	if err != nil {
		t.Fatal(err)
	}
	fisher, err := runs.ReadFisher(filepath.Join(dir, runs.FisherFile))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	got := tensorboardScalars(t, filepath.Join(dir, runs.TensorBoardDir))
	for _, tag := range []string{"images_per_sec", "epoch_seconds"} {
		pts := got[tag]
		if len(pts) != epochs {
			t.Errorf("%s: %s has %d points, want %d: %v", dir, tag, len(pts), epochs, pts)
		}
		for i, p := range pts {
			if p[0] != float64(i) || !(p[1] > 0) {
				t.Errorf("%s: %s point %d is %v", dir, tag, i, p)
			}
		}
		delete(got, tag)
	}
	for _, pts := range got { // JSON carries TensorBoard's float32 as doubles
		for i := range pts {
			pts[i][1] = float64(float32(pts[i][1]))
		}
	}
	if want := wantScalars(rows, fisher); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: TensorBoard shows\n%v\nwant\n%v", dir, got, want)
	}
}

func TestRunWritesTensorBoard(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	cfg := tinyConfig()
	cfg.Fisher = runs.FisherConfig{Images: 16, Samples: 1, Every: 2}
	mustRun(t, cfg, dir, &runstest.Backend{})
	checkTensorBoard(t, dir, cfg.Epochs)
	got := tensorboardScalars(t, filepath.Join(dir, runs.TensorBoardDir))
	// The per-layer shares of each measured epoch sum to one.
	sums := map[float64]float64{}
	for tag, pts := range got {
		if len(tag) > len("fisher/share/") && tag[:len("fisher/share/")] == "fisher/share/" {
			for _, p := range pts {
				sums[p[0]] += p[1]
			}
		}
	}
	if len(sums) != 4 {
		t.Errorf("fisher shares at %d epochs, want 4: %v", len(sums), sums)
	}
	for step, s := range sums {
		if math.Abs(s-1) > 1e-5 {
			t.Errorf("fisher shares of epoch %v sum to %v", step, s)
		}
	}
}

// A run stopped at any step and resumed shows each epoch once in
// TensorBoard, with the values of an uninterrupted run; --force starts the
// event files over.
func TestRunTensorBoardResume(t *testing.T) {
	cfg := tinyConfig()
	cfg.Fisher = runs.FisherConfig{Images: 16, Samples: 1, Every: 2}
	for _, killAt := range []int64{9, 20, 33, 45} { // 8 steps per epoch
		t.Run(fmt.Sprint(killAt), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			ctx, cancel := context.WithCancel(context.Background())
			b := &runstest.Backend{OnStep: func(n int64) {
				if n == killAt {
					cancel()
				}
			}}
			_, err := runs.Run(ctx, cfg, dir, runs.Options{Backend: b})
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			mustRun(t, cfg, dir, &runstest.Backend{})
			checkTensorBoard(t, dir, cfg.Epochs)
		})
	}
	dir := filepath.Join(t.TempDir(), "run")
	mustRun(t, cfg, dir, &runstest.Backend{})
	if _, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: &runstest.Backend{}, Force: true}); err != nil {
		t.Fatal(err)
	}
	checkTensorBoard(t, dir, cfg.Epochs)
}
