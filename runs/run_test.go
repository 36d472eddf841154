package runs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
)

func tinyConfig() runs.Config {
	c := runs.Default()
	c.Model, c.Data = "small", "synthetic"
	c.Epochs, c.BatchSize, c.LR = 6, 8, 0.05
	c.Threads = 1 // what config.yaml records
	c.Deficits = []runs.Window{{Deficit: "blur", Start: 0, End: 3}}
	return c
}

// comparable strips the wall-clock columns.
func comparable(rows []runs.MetricsRow) []runs.MetricsRow {
	out := append([]runs.MetricsRow(nil), rows...)
	for i := range out {
		out[i].EpochSeconds, out[i].ImagesPerSec = 0, 0
	}
	return out
}

func mustRun(t *testing.T, cfg runs.Config, dir string, b runs.Backend) *runs.Result {
	t.Helper()
	res, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestRunWritesRunDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r1")
	cfg := tinyConfig()
	res := mustRun(t, cfg, dir, &runstest.Backend{})
	if res.Status != runs.Trained || len(res.Rows) != cfg.Epochs {
		t.Fatalf("status %s, %d rows", res.Status, len(res.Rows))
	}
	for _, f := range []string{"config.yaml", "run.json", "metrics.parquet", "model.onnx", "log.txt", "checkpoints/latest.ckpt"} {
		if st, err := os.Stat(filepath.Join(dir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	prov, err := runs.ReadProvenance(dir)
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if prov.Critlab == "" || prov.Host != host || prov.Threads != 1 || prov.Start == "" || prov.End < prov.Start || prov.Attempts != 1 {
		t.Errorf("run.json %+v", prov)
	}
	if meta, ok, err := runs.ParquetMetadata(filepath.Join(dir, "metrics.parquet"), runs.ProvenanceMetadataKey); err != nil || !ok || !strings.Contains(meta, `"end":"`+prov.End+`"`) {
		t.Errorf("metrics.parquet provenance %q (%v, %v), want run.json's", meta, ok, err)
	}
	rows, err := runs.ReadMetrics(filepath.Join(dir, "metrics.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows, res.Rows) {
		t.Fatalf("metrics.parquet differs from the result")
	}
	for i, r := range rows {
		want := "none"
		if i < 3 {
			want = "blur"
		}
		if r.Epoch != int32(i) || r.Deficit != want || r.RunID != "r1" || r.DeficitStart != 0 || r.DeficitEnd != 3 ||
			r.DeficitWindows != "blur:0-3" || r.ConfigHash != cfg.Hash() || r.Model != "small" || r.Dataset != "synthetic" {
			t.Errorf("row %d: %+v", i, r)
		}
		if r.TestAcc == nil || *r.TestAcc < 0 || *r.TestAcc > 1 || r.TrainAcc < 0 || r.TrainAcc > 1 || r.ImagesPerSec <= 0 {
			t.Errorf("row %d: accuracies or throughput out of range: %+v", i, r)
		}
	}
	meta, ok, err := runs.ParquetMetadata(filepath.Join(dir, "metrics.parquet"), runs.ConfigMetadataKey)
	if err != nil || !ok || meta != string(cfg.YAML()) {
		t.Errorf("config metadata: %v %v %q", ok, err, meta)
	}
	state, back, err := runs.Inspect(dir)
	if err != nil || state != runs.StateFinished || back.Hash() != cfg.Hash() {
		t.Errorf("Inspect: %v %v %v", state, err, back.Hash())
	}
	logText, _ := os.ReadFile(filepath.Join(dir, "log.txt"))
	if !strings.Contains(string(logText), "epoch 5/6") || !strings.Contains(string(logText), "finished 6 epochs") {
		t.Errorf("log.txt:\n%s", logText)
	}
}

func TestRunFinishedIsSkippedOrForced(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig()
	b := &runstest.Backend{}
	first := mustRun(t, cfg, dir, b)
	steps := b.Steps.Load()

	res := mustRun(t, cfg, dir, b)
	if res.Status != runs.Skipped || b.Steps.Load() != steps || !reflect.DeepEqual(res.Rows, first.Rows) {
		t.Fatalf("second run: status %s, %d extra steps", res.Status, b.Steps.Load()-steps)
	}

	changed := cfg
	changed.Seed = 3
	if _, err := runs.Run(context.Background(), changed, dir, runs.Options{Backend: b}); !errors.Is(err, runs.ErrConfigChanged) {
		t.Fatalf("changed config: err = %v, want ErrConfigChanged", err)
	}
	res, err := runs.Run(context.Background(), changed, dir, runs.Options{Backend: b, Force: true})
	if err != nil || res.Status != runs.Trained || res.Rows[0].Seed != 3 {
		t.Fatalf("forced: %v %+v", err, res)
	}
}

// A run killed mid-epoch resumes from its last checkpoint to the same
// metrics as an uninterrupted run.
func TestRunResumeIsExact(t *testing.T) {
	cfg := tinyConfig()
	cfg.Momentum = 0.9
	cfg.LRSchedule = "exp"
	want := mustRun(t, cfg, filepath.Join(t.TempDir(), "run"), &runstest.Backend{}).Rows

	for _, killAt := range []int64{1, 8, 9, 19, 20, 45} { // 8 steps per epoch
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
			t.Fatalf("kill at %d: err = %v, want context.Canceled", killAt, err)
		}
		kept, err := runs.ReadMetrics(filepath.Join(dir, "metrics.parquet"))
		if done := int((killAt - 1) / 8); done > 0 && (err != nil || len(kept) != done) {
			t.Fatalf("kill at step %d: %d epochs kept (%v), want %d", killAt, len(kept), err, done)
		}
		res, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: &runstest.Backend{}})
		if err != nil {
			t.Fatal(err)
		}
		if killAt > 8 && res.Status != runs.Resumed {
			t.Errorf("kill at %d: status %s", killAt, res.Status)
		}
		if !reflect.DeepEqual(comparable(res.Rows), comparable(want)) {
			t.Fatalf("kill at step %d: resumed metrics differ\n got %+v\nwant %+v", killAt, comparable(res.Rows), comparable(want))
		}
	}
}

func TestRunRefusesBadConfigBeforeTraining(t *testing.T) {
	tests := []struct {
		name string
		edit func(*runs.Config)
		want string
	}{
		{"unknown deficit", func(c *runs.Config) { c.Deficits[0].Deficit = "smear" }, `unknown deficit "smear"`},
		{"window outside", func(c *runs.Config) { c.Deficits[0].End = 7 }, "end <= epochs"},
		{"overlap", func(c *runs.Config) {
			c.Deficits = append(c.Deficits, runs.Window{Deficit: "vflip", Start: 2, End: 4})
		}, "overlap"},
		{"unreadable model", func(c *runs.Config) { c.Model = "/nonexistent/net.onnx" }, "model"},
		{"image size", func(c *runs.Config) { c.Model = "wide" }, "takes 32×32"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tinyConfig()
			tc.edit(&cfg)
			dir := filepath.Join(t.TempDir(), "run")
			b := &runstest.Backend{}
			_, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: b})
			if !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig with %q", err, tc.want)
			}
			if b.Steps.Load() != 0 {
				t.Error("trained before refusing")
			}
			if _, err := os.Stat(dir); err == nil {
				t.Error("run directory created")
			}
		})
	}
}

// A run branched from a parent's checkpoint equals the straight run.
func TestRunBranch(t *testing.T) {
	root := t.TempDir()
	parent := tinyConfig()
	parent.Momentum, parent.LRSchedule = 0.9, "exp"
	parent.Epochs = 5
	parent.Deficits[0].End = 5
	parent.KeepCheckpoints = []int{2, 3}
	mustRun(t, parent, filepath.Join(root, "parent"), &runstest.Backend{})

	straight := parent
	straight.Epochs, straight.Deficits[0].End, straight.KeepCheckpoints = 7, 3, nil
	straight.Deficits = []runs.Window{{Deficit: "blur", Start: 0, End: 3}}
	want := mustRun(t, straight, filepath.Join(root, "T3"), &runstest.Backend{}).Rows

	branch := straight
	branch.BranchFrom, branch.BranchEpoch = filepath.Join(root, "parent"), 3
	b := &runstest.Backend{}
	got := mustRun(t, branch, filepath.Join(root, "T3b"), b)
	if b.Steps.Load() != 4*8 {
		t.Errorf("branch took %d steps, want %d", b.Steps.Load(), 4*8)
	}
	for i := range want {
		want[i].RunID, want[i].ConfigHash = "T3b", branch.Hash()
	}
	if !reflect.DeepEqual(comparable(got.Rows), comparable(want)) {
		t.Fatalf("branched metrics differ\n got %+v\nwant %+v", comparable(got.Rows), comparable(want))
	}

	bad := branch
	bad.LR = 0.01
	if _, err := runs.Run(context.Background(), bad, filepath.Join(root, "bad"), runs.Options{Backend: &runstest.Backend{}}); err == nil || !strings.Contains(err.Error(), "lr") {
		t.Fatalf("incompatible branch: err = %v", err)
	}
}

func TestRunFisherAndInitFrom(t *testing.T) {
	root := t.TempDir()
	cfg := tinyConfig()
	cfg.Fisher = runs.FisherConfig{Images: 16, Samples: 1, Every: 2}
	res := mustRun(t, cfg, filepath.Join(root, "a"), &runstest.Backend{})
	// Every 2nd epoch (1, 3, 5) and the last before the blur window ends (2).
	for _, r := range res.Rows {
		if has := r.FisherTrace != nil; has != (r.Epoch%2 == 1 || r.Epoch == 2) {
			t.Errorf("epoch %d: fisher %v", r.Epoch, r.FisherTrace)
		}
	}
	fr, err := runs.ReadFisher(filepath.Join(root, "a", "fisher.parquet"))
	if err != nil || len(fr) != 4*4 || fr[0].Layer != "total" || fr[0].Epoch != 1 {
		t.Fatalf("fisher rows %v %+v", err, fr)
	}

	ft := tinyConfig()
	ft.Deficits = nil
	ft.InitFrom = filepath.Join(root, "a")
	ft.Freeze = []string{"layer0"}
	res2 := mustRun(t, ft, filepath.Join(root, "b"), &runstest.Backend{})
	if *res2.Rows[0].TestLoss == *res.Rows[0].TestLoss {
		t.Error("fine-tuned run starts like the scratch run")
	}
}

func TestRunDiverges(t *testing.T) {
	cfg := tinyConfig()
	cfg.LR = 1e6
	_, err := runs.Run(context.Background(), cfg, t.TempDir(), runs.Options{Backend: &runstest.Backend{}})
	if !errors.Is(err, runs.ErrDiverged) || !strings.Contains(err.Error(), "step") {
		t.Fatalf("err = %v, want ErrDiverged naming the step", err)
	}
}

// A branch that trains no epoch of its own still evaluates its last epoch,
// which its parent skipped (eval_every), as a straight run does.
func TestRunBranchAtLastEpochEvaluates(t *testing.T) {
	root := t.TempDir()
	parent := tinyConfig()
	parent.Deficits, parent.EvalEvery, parent.KeepCheckpoints = nil, 4, []int{5}
	mustRun(t, parent, filepath.Join(root, "parent"), &runstest.Backend{})

	child := parent
	child.Epochs, child.KeepCheckpoints = 5, nil
	straight := mustRun(t, child, filepath.Join(root, "straight"), &runstest.Backend{})
	child.BranchFrom, child.BranchEpoch = filepath.Join(root, "parent"), 5
	branched := mustRun(t, child, filepath.Join(root, "branched"), &runstest.Backend{})

	strip := func(rows []runs.MetricsRow) []runs.MetricsRow {
		out := comparable(rows)
		for i := range out {
			out[i].ConfigHash, out[i].RunID = "", ""
		}
		return out
	}
	if got, want := strip(branched.Rows), strip(straight.Rows); !reflect.DeepEqual(got, want) {
		t.Fatalf("branch at its last epoch:\n got %+v\nwant %+v", got, want)
	}
	if last := branched.Rows[4]; last.TestAcc == nil {
		t.Fatal("last epoch not evaluated")
	}
	// TensorBoard shows the parent's epochs and the branch's evaluation.
	checkTensorBoard(t, filepath.Join(root, "branched"), 5)
}
