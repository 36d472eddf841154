package ortbackend_test

// End-to-end tests with the real backend: ONNX Runtime through harness, the
// zoo's small model and the synthetic data set. They skip when the ONNX
// Runtime library is missing (run `make setup`).

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/harness/ortbackend"
	"github.com/critlab/critlab/internal/oracle"
	"github.com/critlab/critlab/internal/pyenv"
	"github.com/critlab/critlab/models/graph"
	"github.com/critlab/critlab/models/zoo"
	"github.com/critlab/critlab/runs"
)

// ortBackendOrSkip returns the real backend, or skips without ORT.
func ortBackendOrSkip(t *testing.T) runs.Backend {
	t.Helper()
	rt, err := harness.Open(harness.RuntimeOptions{Threads: 1})
	if errors.Is(err, harness.ErrNoLibrary) {
		oracle.Missing(t, "end-to-end test needs ONNX Runtime: %v (run `make setup` or set %s)", err, harness.LibraryEnv)
	}
	if err != nil {
		t.Fatal(err)
	}
	rt.Close()
	return ortbackend.New(ortbackend.Options{})
}

// e2eConfig is a run of a few seconds: the small model at width 0.25 on
// 16×16 synthetic images.
func e2eConfig() runs.Config {
	c := runs.Default()
	c.Model, c.Width = "small", 0.25
	c.Data = "synthetic:train=192,test=96,size=16,mix=0.5"
	c.Epochs, c.BatchSize, c.LR = 3, 32, 0.05
	c.Threads = 1
	c.Deficits = []runs.Window{{Deficit: "blur:size=4", Start: 0, End: 1}}
	return c
}

func TestE2ESweepParquetReport(t *testing.T) {
	backend := ortBackendOrSkip(t)
	dir := filepath.Join(t.TempDir(), "sweep")
	base := e2eConfig()
	base.Deficits = nil
	spec := runs.SweepSpec{Name: "e2e", Base: base, Seeds: []int64{0},
		Removal:  &runs.RemovalSpec{Deficit: "blur:size=4", Points: []int{0, 2}, After: 2, Branch: true},
		Finetune: &runs.FinetuneSpec{Deficit: "blur:size=4", Pretrain: []int{1}, Epochs: 2}}
	res, err := runs.RunSweep(context.Background(), spec, dir, runs.SweepOptions{Backend: backend, Jobs: 2, Cores: 2})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := runs.ReadSweep(filepath.Join(dir, runs.SweepFile))
	if err != nil {
		t.Fatal(err)
	}
	// trunk (2 epochs) + T0 (2, also the scratch run) + T2 (4) + pretraining (1)
	// + fine-tuning (2) rows.
	perRun := map[string]int{}
	for _, r := range rows {
		perRun[r.RunID]++
		if r.TestAcc == nil || *r.TestAcc < 0 || *r.TestAcc > 1 || r.TrainLoss <= 0 || r.ImagesPerSec <= 0 || r.Sweep != "e2e" || r.ConfigHash == "" {
			t.Errorf("row %+v", r)
		}
	}
	if want := map[string]int{"trunk-s0": 2, "removal-T000-s0": 4, "removal-T002-s0": 4, "pretrain-P001-s0": 1, "finetune-P001-s0": 2}; !reflect.DeepEqual(perRun, want) {
		t.Fatalf("rows per run %v, want %v", perRun, want)
	}
	for id := range res.Results {
		if _, err := graph.Load(filepath.Join(dir, id, runs.ModelFile)); err != nil {
			t.Errorf("exported model: %v", err)
		}
	}
	{
		py := pyenv.Require(t, "pyarrow")
		script := `
import sys, pyarrow.parquet as pq, pyarrow as pa
t = pq.read_table(sys.argv[1])
types = {f.name: f.type for f in t.schema}
assert types["epoch"] == pa.int32() and types["seed"] == pa.int64() and types["point"] == pa.int32(), types
assert types["test_acc"] == pa.float64() and types["variant"] == pa.string(), types
assert t.num_rows == 13, t.num_rows
assert set(t.column("variant").to_pylist()) == {"trunk", "removal", "scratch", "pretrain", "finetune"}
print("ok")
`
		out, err := exec.Command(py, "-c", script, filepath.Join(dir, runs.SweepFile)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "ok") {
			t.Errorf("pyarrow: %v\n%s", err, out)
		}
	}
	rep, err := runs.LoadReport(dir)
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	rep.WriteTable(&table)
	if !strings.Contains(table.String(), "e2e: 5 runs") || !regexp.MustCompile(`(?m)^removal +2 +1 `).MatchString(table.String()) {
		t.Errorf("table:\n%s", table.String())
	}
	if err := rep.WriteFiles(); err != nil {
		t.Fatal(err)
	}
	logText, _ := os.ReadFile(filepath.Join(dir, "finetune-P001-s0", runs.LogFile))
	if !strings.Contains(string(logText), "initialised from "+filepath.Join(dir, "pretrain-P001-s0", runs.ModelFile)) {
		t.Errorf("fine-tuning log:\n%s", logText)
	}
	for _, f := range []string{"removal.png", "removal.svg", "finetune.png", "curves.png", "curves.svg", "summary.csv"} {
		data, err := os.ReadFile(filepath.Join(dir, runs.ReportDir, f))
		if err != nil || len(data) == 0 {
			t.Errorf("%s: %v", f, err)
		}
		if strings.HasSuffix(f, ".png") && !strings.HasPrefix(string(data), "\x89PNG") {
			t.Errorf("%s is not a PNG", f)
		}
		if strings.HasSuffix(f, ".svg") && !strings.Contains(string(data), "<svg") {
			t.Errorf("%s is not an SVG", f)
		}
	}
}

// killAt wraps a backend so that the trainer's n-th step cancels ctx.
type killAt struct {
	runs.Backend
	n      int64
	cancel context.CancelFunc
	steps  atomic.Int64
}

type killTrainer struct {
	runs.Trainer
	k *killAt
}

func (k *killAt) Open(ctx context.Context, cfg runs.Config) (runs.Trainer, runs.Data, error) {
	tr, d, err := k.Backend.Open(ctx, cfg)
	return &killTrainer{tr, k}, d, err
}

func (t *killTrainer) Step(x []float32, y []int64, lr float32) (float32, int64, error) {
	if t.k.steps.Add(1) == t.k.n {
		t.k.cancel()
	}
	return t.Trainer.Step(x, y, lr)
}

// SeedEpoch passes the epoch on, so dropout masks restart as unwrapped.
func (t *killTrainer) SeedEpoch(epoch int) {
	if s, ok := t.Trainer.(runs.EpochSeeder); ok {
		s.SeedEpoch(epoch)
	}
}

// dropoutModel writes a linear classifier of 16×16 images with Dropout(0.5)
// on its inputs.
func dropoutModel(t *testing.T) string {
	b := graph.NewBuilder("dropout")
	x := b.Input("images", graph.Float, -1, 3, 16, 16)
	f := b.Op("Flatten", []string{x}, graph.Int("axis", 1))
	d := b.Op("Dropout", []string{f, b.ConstFloat(0.5)})
	w := make([]float32, 768*10)
	for i := range w {
		w[i] = float32((i*7919)%201-100) * 1e-4
	}
	b.NodeNamed("Gemm", []string{d, b.Param("fc.weight", []int64{768, 10}, w), b.Param("fc.bias", []int64{10}, make([]float32, 10))}, []string{"logits"})
	b.Output("logits", graph.Float, -1, 10)
	path := filepath.Join(t.TempDir(), "dropout.onnx")
	if err := graph.Save(path, b.Model()); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestE2EKilledRunResumesExactly(t *testing.T) {
	backend := ortBackendOrSkip(t)
	sgd := e2eConfig()
	sgd.Threads = 2
	// AdamW's moments and step count must come back from the checkpoint.
	adamw := sgd
	adamw.Optimizer, adamw.Momentum, adamw.LR, adamw.WarmupEpochs, adamw.GradClip = "adamw", 0, 0.002, 2, 1
	adamw.ParamGroups = []runs.ParamGroup{{Match: "fc.*", LRScale: new(10.0), WeightDecay: new(0.0)}}
	// Dropout masks must restart where the uninterrupted run drew them.
	dropout := sgd
	dropout.Model, dropout.Width, dropout.Data = dropoutModel(t), 1, "synthetic:train=192,test=96,size=16,mix=0.5,classes=10"
	for name, cfg := range map[string]runs.Config{"sgd": sgd, "adamw": adamw, "dropout": dropout} {
		t.Run(name, func(t *testing.T) { killAndResume(t, backend, cfg) })
	}
}

func killAndResume(t *testing.T, backend runs.Backend, cfg runs.Config) {
	straight, err := runs.Run(context.Background(), cfg, filepath.Join(t.TempDir(), "straight"), runs.Options{Backend: backend})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "killed")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, err = runs.Run(ctx, cfg, dir, runs.Options{Backend: &killAt{Backend: backend, n: 6 + 3, cancel: cancel}}) // 6 steps an epoch: mid epoch 1
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("killed run: err = %v", err)
	}
	if kept, err := runs.ReadMetrics(filepath.Join(dir, runs.MetricsFile)); err != nil || len(kept) != 1 {
		t.Fatalf("killed run kept %d epochs (%v), want 1", len(kept), err)
	}
	resumed, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: backend})
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Status != runs.Resumed {
		t.Errorf("status %s", resumed.Status)
	}
	strip := func(rows []runs.MetricsRow) []runs.MetricsRow {
		out := append([]runs.MetricsRow(nil), rows...)
		for i := range out {
			out[i].EpochSeconds, out[i].ImagesPerSec, out[i].RunID = 0, 0, ""
		}
		return out
	}
	if !reflect.DeepEqual(strip(resumed.Rows), strip(straight.Rows)) {
		t.Fatalf("resumed metrics differ from an uninterrupted run\n got %+v\nwant %+v", strip(resumed.Rows), strip(straight.Rows))
	}
}

func TestE2ERefusesBadConfigs(t *testing.T) {
	backend := ortBackendOrSkip(t)
	wrongSize := filepath.Join(t.TempDir(), "small32.onnx")
	m, err := zoo.Build("small", zoo.Options{Width: 0.25, ImageSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	if err := graph.Save(wrongSize, m); err != nil {
		t.Fatal(err)
	}
	garbage := filepath.Join(t.TempDir(), "garbage.onnx")
	os.WriteFile(garbage, []byte("not a model"), 0o644)
	tests := []struct {
		name string
		edit func(*runs.Config)
		want string
	}{
		{"unknown deficit", func(c *runs.Config) { c.Deficits[0].Deficit = "smear" }, "smear"},
		{"window outside", func(c *runs.Config) { c.Deficits[0].End = 4 }, "end <= epochs"},
		{"overlap", func(c *runs.Config) { c.Deficits = append(c.Deficits, runs.Window{Deficit: "vflip", Start: 0, End: 2}) }, "overlap"},
		{"missing model", func(c *runs.Config) { c.Model = filepath.Join(t.TempDir(), "none.onnx") }, "no such file"},
		{"unreadable model", func(c *runs.Config) { c.Model = garbage }, "model"},
		{"unknown zoo model", func(c *runs.Config) { c.Model = "alexnet" }, "neither a zoo model"},
		{"image size", func(c *runs.Config) { c.Model = wrongSize }, "images are 3×16×16"},
		{"unknown data", func(c *runs.Config) { c.Data = "mnist" }, "mnist"},
		{"subset too large", func(c *runs.Config) { c.TrainSubset = 1000 }, "larger than the 192 training images"},
		{"blur larger than the images", func(c *runs.Config) { c.Deficits[0].Deficit = "blur:size=4096" }, "blur size 4096 is larger than the 16×16 images"},
		{"blur short form", func(c *runs.Config) { c.Deficits[0].Deficit = "blur:17" }, "blur size 17 is larger than the 16×16 images"},
		{"batch larger than the training set", func(c *runs.Config) { c.BatchSize = 193 }, "batch_size 193 is larger than the 192 training images"},
		{"batch larger than the subset", func(c *runs.Config) { c.TrainSubset, c.BatchSize = 64, 65 }, "subset 64 is smaller than batch_size 65"},
		{"fisher images beyond the training set", func(c *runs.Config) { c.Fisher = runs.FisherConfig{Images: 193, Samples: 1, Every: 1} }, "fisher.images 193 is more than the 192 training images"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := e2eConfig()
			tc.edit(&cfg)
			dir := filepath.Join(t.TempDir(), "run")
			_, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: backend})
			if !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want runs.ErrInvalidConfig with %q", err, tc.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Error("run directory created")
			}
		})
	}
}

// A sham window changes no image, so a sham run trains exactly as the run
// without it: metrics.parquet and model.onnx equal bit for bit but for the
// deficit columns, and for the Fisher estimate the sham adds before its
// end (the estimates both make are equal too). With the lr restarted at the sham's end it trains as a
// run whose deficit is an identity computed the long way (blur to the
// image's own size: a copy of every image, through the deficit cache),
// and as the run without deficit until the restart.
func TestE2EShamTrainsAsNoDeficit(t *testing.T) {
	backend := ortBackendOrSkip(t)
	root := t.TempDir()
	base := e2eConfig()
	base.Epochs, base.LRSchedule, base.LRDecay, base.Momentum = 4, "exp", 0.5, 0.9
	base.Fisher = runs.FisherConfig{Images: 32, Samples: 1, Every: 3} // epochs 2 and 3, and 1 with a window
	run := func(name, deficit string, restart bool) ([]runs.MetricsRow, []byte) {
		t.Helper()
		cfg := base
		cfg.Deficits, cfg.RestartAtDeficitEnd = nil, restart
		if deficit != "" {
			cfg.Deficits = []runs.Window{{Deficit: deficit, Start: 0, End: 2}}
		}
		dir := filepath.Join(root, name)
		if _, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: backend, RunID: "r"}); err != nil {
			t.Fatal(err)
		}
		rows, err := runs.ReadMetrics(filepath.Join(dir, runs.MetricsFile))
		if err != nil {
			t.Fatal(err)
		}
		model, err := os.ReadFile(filepath.Join(dir, runs.ModelFile))
		if err != nil {
			t.Fatal(err)
		}
		for i := range rows {
			rows[i].Deficit, rows[i].DeficitStart, rows[i].DeficitEnd, rows[i].DeficitWindows = "", 0, 0, ""
			rows[i].EpochSeconds, rows[i].ImagesPerSec, rows[i].ConfigHash = 0, 0, ""
			if i == 1 { // the last epoch before the window's end
				if (rows[i].FisherTrace == nil) != (deficit == "") {
					t.Errorf("%s: epoch 1 fisher %v", name, rows[i].FisherTrace)
				}
				rows[i].FisherTrace = nil
			}
		}
		return rows, model
	}
	none, noneModel := run("none", "", false)
	sham, shamModel := run("sham", "sham", false)
	if !reflect.DeepEqual(sham, none) || !bytes.Equal(shamModel, noneModel) {
		t.Fatalf("sham run differs from the run without deficit\n got %+v\nwant %+v", sham, none)
	}
	shamRestart, shamRestartModel := run("sham-restart", "sham", true)
	identity, identityModel := run("identity-restart", "blur:size=16", true)
	if !reflect.DeepEqual(shamRestart, identity) || !bytes.Equal(shamRestartModel, identityModel) {
		t.Fatalf("sham with restart differs from an identity deficit with restart\n got %+v\nwant %+v", shamRestart, identity)
	}
	for e, want := range []float64{base.LR, base.LR / 2, base.LR, base.LR / 2} {
		if got := shamRestart[e].LR; got != want {
			t.Errorf("sham with restart: epoch %d lr %v, want %v", e, got, want)
		}
	}
	if !reflect.DeepEqual(shamRestart[:2], none[:2]) || shamRestart[3].TestLoss == none[3].TestLoss {
		t.Error("sham with restart: want the run without deficit until epoch 2, then another")
	}
}

// TestE2ESweepRefusedBeforeAnyWork: a sweep whose runs the run check
// refuses is refused as a whole before any trains, without a directory.
func TestE2ESweepRefusedBeforeAnyWork(t *testing.T) {
	backend := ortBackendOrSkip(t)
	base := e2eConfig() // 192 training images of 16×16
	base.Deficits = nil
	window := func(deficit string) *runs.WindowSpec {
		return &runs.WindowSpec{Deficit: deficit, Length: 1, Onsets: []int{0, 1}}
	}
	tests := []struct {
		name string
		edit func(*runs.SweepSpec)
		want string
	}{
		{"blur larger than the images", func(s *runs.SweepSpec) { s.Window = window("blur:size=4096") }, "blur size 4096 is larger than the 16×16 images"},
		{"batch larger than the training set", func(s *runs.SweepSpec) { s.Base.BatchSize = 193 }, "batch_size 193 is larger than the 192 training images"},
		{"fisher images beyond the subset", func(s *runs.SweepSpec) {
			s.Base.TrainSubset, s.Base.Fisher = 96, runs.FisherConfig{Images: 97, Samples: 1, Every: 1}
		}, "fisher.images 97 is more than the 96 training images"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			spec := runs.SweepSpec{Name: "absurd", Base: base, Seeds: []int64{0, 1}, Window: window("vflip")}
			tc.edit(&spec)
			dir := filepath.Join(t.TempDir(), "sweep")
			_, err := runs.RunSweep(context.Background(), spec, dir, runs.SweepOptions{Backend: backend, Jobs: 1, Cores: 1})
			if !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want runs.ErrInvalidConfig with %q", err, tc.want)
			}
			if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s exists after the refusal (%v)", dir, err)
			}
		})
	}
}

// TestE2ECUDAWithoutProvider asks for CUDA from the CPU build `make setup`
// installs: the run is refused before any data or directory, pointing to
// docs/cuda.md.
func TestE2ECUDAWithoutProvider(t *testing.T) {
	backend := ortBackendOrSkip(t)
	lib, _ := harness.FindLibrary("")
	if _, err := os.Stat(filepath.Join(filepath.Dir(lib), "libonnxruntime_providers_shared.so")); err == nil {
		t.Skipf("%s has a CUDA provider beside it", lib)
	}
	cfg := e2eConfig()
	cfg.Device = "cuda"
	cfg.Data = "archive:" + filepath.Join(t.TempDir(), "missing.tar.gz") // not read: the device is checked first
	dir := filepath.Join(t.TempDir(), "run")
	_, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: backend})
	if !errors.Is(err, harness.ErrNoCUDA) || !strings.Contains(err.Error(), "docs/cuda.md") {
		t.Errorf("Run: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s exists after the refusal (%v)", dir, err)
	}
}

// corrupt overwrites 16 bytes in the middle of a file, as a bad disk would.
func corrupt(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte{0xa5}, 16), st.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// TestE2ECorruptCheckpoints: a corrupt latest.ckpt is refused with the file
// named and the earlier kept checkpoint to fall back to; following the hint
// resumes to the metrics of the straight run. A corrupt kept checkpoint
// that a branch needs is refused naming it and its parent run.
func TestE2ECorruptCheckpoints(t *testing.T) {
	backend := ortBackendOrSkip(t)
	cfg := e2eConfig()
	cfg.KeepCheckpoints = []int{1}
	dir := filepath.Join(t.TempDir(), "run")
	straight, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: backend})
	if err != nil {
		t.Fatal(err)
	}
	// Without model.onnx the run is unfinished: its resume loads latest.ckpt.
	if err := os.Remove(filepath.Join(dir, runs.ModelFile)); err != nil {
		t.Fatal(err)
	}
	latest, kept := runs.LatestCheckpointPath(dir), runs.CheckpointPath(dir, 1)
	corrupt(t, latest)
	_, err = runs.Run(context.Background(), cfg, dir, runs.Options{Backend: backend})
	if !errors.Is(err, harness.ErrCorrupt) || !strings.Contains(err.Error(), latest+": its content does not match") ||
		!strings.Contains(err.Error(), "fall back to the earlier checkpoint "+kept+": copy it over "+latest+" and run again to resume from epoch 1") {
		t.Fatalf("resume from a corrupt latest.ckpt: %v", err)
	}
	t.Logf("the resume's error:\n%v", err)
	data, err := os.ReadFile(kept)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(latest, data, 0o644); err != nil {
		t.Fatal(err)
	}
	resumed, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: backend})
	if err != nil {
		t.Fatal(err)
	}
	strip := func(rows []runs.MetricsRow) []runs.MetricsRow {
		out := append([]runs.MetricsRow(nil), rows...)
		for i := range out {
			out[i].EpochSeconds, out[i].ImagesPerSec = 0, 0
		}
		return out
	}
	if resumed.Status != runs.Resumed || !reflect.DeepEqual(strip(resumed.Rows), strip(straight.Rows)) {
		t.Fatalf("resumed (%s) from the kept checkpoint: metrics differ from the straight run\n got %+v\nwant %+v", resumed.Status, strip(resumed.Rows), strip(straight.Rows))
	}

	// A branch from the parent's corrupt epoch-1 checkpoint.
	corrupt(t, kept)
	child := cfg
	child.KeepCheckpoints, child.BranchFrom, child.BranchEpoch = nil, dir, 1
	childDir := filepath.Join(t.TempDir(), "child")
	_, err = runs.Run(context.Background(), child, childDir, runs.Options{Backend: backend})
	if !errors.Is(err, harness.ErrCorrupt) || !strings.Contains(err.Error(), kept+": its content does not match") ||
		!strings.Contains(err.Error(), "remove the parent run "+dir) {
		t.Fatalf("branch from a corrupt kept checkpoint: %v", err)
	}
	t.Logf("the branch's error:\n%v", err)
}
