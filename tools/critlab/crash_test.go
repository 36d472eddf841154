package main

// Crash tests: the real critlab binary, killed (SIGKILL, through
// internal/failpoint) at every write step of an epoch's end, resumes to
// the Parquet, kept checkpoints and model of an uninterrupted run.

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/internal/failpoint"
	"github.com/critlab/critlab/internal/oracle"
	"github.com/critlab/critlab/internal/tbevent"
	"github.com/critlab/critlab/runs"
)

// crashBinary builds critlab into a temporary folder, or skips without
// ONNX Runtime.
func crashBinary(t *testing.T) string {
	t.Helper()
	rt, err := harness.Open(harness.RuntimeOptions{Threads: 1})
	if errors.Is(err, harness.ErrNoLibrary) {
		oracle.Missing(t, "crash tests need ONNX Runtime: %v (run `make setup`)", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	rt.Close()
	bin := filepath.Join(t.TempDir(), "critlab")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// critlabAt runs the binary in dir with a failpoint ("" for none) and
// reports whether the failpoint killed it.
func critlabAt(t *testing.T, bin, dir, point string, args ...string) (killed bool) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), failpoint.Env+"="+point)
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if st, ok := exit.Sys().(syscall.WaitStatus); ok && st.Signaled() && st.Signal() == syscall.SIGKILL && point != "" {
			return true
		}
	}
	if err != nil {
		t.Fatalf("critlab %s (failpoint %q): %v\n%s", strings.Join(args, " "), point, err, out)
	}
	return false
}

// tinyTrain is a run of well under a second: width 0.25 on 16×16 images.
var tinyTrain = []string{"--model", "small", "--width", "0.25", "--data", "synthetic:train=64,test=32,size=16,mix=0.5",
	"--batch-size", "32", "--lr", "0.05", "--threads", "1", "--seed", "3", "-q"}

// comparableMetrics reads metrics rows without the wall-clock columns.
func comparableMetrics(t *testing.T, path string) []runs.MetricsRow {
	t.Helper()
	rows, err := runs.ReadMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		rows[i].EpochSeconds, rows[i].ImagesPerSec = 0, 0
	}
	return rows
}

// checkRunDir compares a resumed run directory with an uninterrupted one:
// metrics, kept checkpoints and model bit for bit, every epoch's log line,
// no temporary file left.
func checkRunDir(t *testing.T, got, want string, epochs int, kept []int) {
	t.Helper()
	if g, w := comparableMetrics(t, filepath.Join(got, runs.MetricsFile)), comparableMetrics(t, filepath.Join(want, runs.MetricsFile)); !reflect.DeepEqual(g, w) {
		t.Errorf("%s: metrics differ from the uninterrupted run:\n%+v\nwant\n%+v", got, g, w)
	}
	files := []string{runs.ModelFile}
	for _, e := range kept {
		files = append(files, filepath.Join(runs.CheckpointDir, filepath.Base(runs.CheckpointPath("", e))))
	}
	for _, f := range files {
		g, err1 := os.ReadFile(filepath.Join(got, f))
		w, err2 := os.ReadFile(filepath.Join(want, f))
		if err1 != nil || err2 != nil || !bytes.Equal(g, w) {
			t.Errorf("%s: %s differs from the uninterrupted run's (%v, %v)", got, f, err1, err2)
		}
	}
	log, _ := os.ReadFile(filepath.Join(got, runs.LogFile))
	for e := 0; e < epochs; e++ {
		if !strings.Contains(string(log), fmt.Sprintf("epoch %d/%d ", e, epochs)) {
			t.Errorf("%s: log.txt has no line for epoch %d:\n%s", got, e, log)
		}
	}
	if g, w := tensorBoardSteps(t, got), tensorBoardSteps(t, want); !reflect.DeepEqual(g, w) {
		t.Errorf("%s: TensorBoard events differ from the uninterrupted run's:\n%v\nwant\n%v", got, g, w)
	}
	for _, d := range []string{got, filepath.Join(got, runs.CheckpointDir)} {
		temps, _ := filepath.Glob(filepath.Join(d, ".*.tmp*"))
		if len(temps) > 0 {
			t.Errorf("temporary files left: %v", temps)
		}
	}
}

// tensorBoardSteps returns tag -> steps of a run's TensorBoard events, in
// reading order, and the value at each step for tags that are not wall
// clock.
func tensorBoardSteps(t *testing.T, dir string) map[string][]string {
	t.Helper()
	events, err := tbevent.ReadDir(filepath.Join(dir, runs.TensorBoardDir))
	if err != nil {
		t.Fatal(err)
	}
	steps := map[string][]string{}
	for _, e := range events {
		for _, s := range e.Scalars {
			p := fmt.Sprint(e.Step)
			if s.Tag != "images_per_sec" && s.Tag != "epoch_seconds" {
				p += fmt.Sprintf("=%v", s.Value)
			}
			steps[s.Tag] = append(steps[s.Tag], p)
		}
	}
	return steps
}

// writeSteps are the failpoints of an epoch's end, in their order, and the
// rename inside every atomic write.
var writeSteps = []string{"metrics", "log", "checkpoint-kept", "checkpoint-latest", "tensorboard", "export", "rename"}

func TestCrashTrainAtEveryWriteStep(t *testing.T) {
	bin := crashBinary(t)
	work := t.TempDir()
	home := t.TempDir()
	t.Setenv("HOME", home) // ONNX Runtime's telemetry must write nothing there
	const epochs = 3
	args := append([]string{"train", "--epochs", fmt.Sprint(epochs), "--keep-checkpoints", "1,2",
		"--deficit", "blur:size=4", "--deficit-epochs", "0:1"}, tinyTrain...)
	// Every run directory is named run: the name is the run id in metrics
	// and checkpoints.
	want := filepath.Join(work, "want", "run")
	critlabAt(t, bin, work, "", append(args, "--out", want)...)
	for _, step := range writeSteps {
		for n := 1; ; n++ {
			point := fmt.Sprintf("%s:%d", step, n)
			dir := filepath.Join(work, strings.ReplaceAll(point, ":", "-"), "run")
			if !critlabAt(t, bin, work, point, append(args, "--out", dir)...) {
				if n == 1 {
					t.Errorf("failpoint %s never reached", step)
				}
				break
			}
			critlabAt(t, bin, work, "", append(args, "--out", dir)...)
			checkRunDir(t, dir, want, epochs, []int{1, 2})
			t.Logf("killed at %s, resumed: identical", point)
		}
	}
	if entries, _ := os.ReadDir(home); len(entries) > 0 {
		t.Errorf("critlab wrote into $HOME: %v", entries)
	}
}

func TestCrashBranchedSweepAtEveryWriteStep(t *testing.T) {
	bin := crashBinary(t)
	work := t.TempDir()
	spec := filepath.Join(work, "spec.yaml")
	// A trunk of 2 epochs keeping epochs 1 and 2, and the removals at 1
	// and 2 branched from it.
	os.WriteFile(spec, []byte(`name: crash
base: {model: small, width: 0.25, data: "synthetic:train=64,test=32,size=16,mix=0.5", batch_size: 32, lr: 0.05, seed: 3, threads: 1}
removal: {deficit: "blur:size=4", points: [1, 2], after: 1, branch: true}
`), 0o644)
	args := []string{"sweep", "--config", spec, "-j", "1", "-q", "--no-report"}
	want := filepath.Join(work, "want")
	critlabAt(t, bin, work, "", append(args, "--out", want)...)
	wantRows := comparableSweep(t, want)
	steps := append([]string{"sweep-parquet"}, writeSteps[:len(writeSteps)-1]...)
	for _, step := range steps {
		for n := 1; ; n++ {
			point := fmt.Sprintf("%s:%d", step, n)
			dir := filepath.Join(work, strings.ReplaceAll(point, ":", "-"))
			if !critlabAt(t, bin, work, point, append(args, "--out", dir)...) {
				if n == 1 {
					t.Errorf("failpoint %s never reached", step)
				}
				break
			}
			critlabAt(t, bin, work, "", append(args, "--out", dir)...)
			if got := comparableSweep(t, dir); !reflect.DeepEqual(got, wantRows) {
				t.Errorf("killed at %s: sweep.parquet after resume differs from the uninterrupted sweep", point)
			}
			checkRunDir(t, filepath.Join(dir, "trunk-s3"), filepath.Join(want, "trunk-s3"), 2, []int{1, 2})
			t.Logf("killed at %s, resumed: identical", point)
		}
	}

	// The finished sweep, moved and partly deleted, resumes from another
	// working directory to the same rows, retraining only what went.
	elsewhere := filepath.Join(t.TempDir(), "elsewhere")
	os.MkdirAll(elsewhere, 0o755)
	moved := filepath.Join(elsewhere, "moved")
	if err := os.Rename(want, moved); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"removal-T002-s3", "trunk-s3/model.onnx"} {
		os.RemoveAll(filepath.Join(moved, p))
	}
	critlabAt(t, bin, elsewhere, "", append(args, "--out", "moved")...)
	if got := comparableSweep(t, moved); !reflect.DeepEqual(got, wantRows) {
		t.Errorf("moved, partly deleted and resumed: sweep.parquet differs from the uninterrupted sweep")
	}
	if log, _ := os.ReadFile(filepath.Join(moved, "removal-T001-s3", runs.LogFile)); strings.Count(string(log), "branched from") != 1 {
		t.Errorf("a finished branch trained again after the move:\n%s", log)
	}
}

func comparableSweep(t *testing.T, dir string) []runs.SweepRow {
	t.Helper()
	rows, err := runs.ReadSweep(filepath.Join(dir, runs.SweepFile))
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		rows[i].EpochSeconds, rows[i].ImagesPerSec = 0, 0
	}
	return rows
}
