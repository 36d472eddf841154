package runs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/dirlock"
	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
)

// branchedSweep has runs that branch from a trunk (removal) and start from
// another run's model (finetune).
func branchedSweep() runs.SweepSpec {
	s := tinySweep()
	s.Seeds = []int64{0}
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 3}, After: 2, Branch: true}
	s.Finetune = &runs.FinetuneSpec{Deficit: "blur", Pretrain: []int{2}, Epochs: 3}
	return s
}

func readSweep(t *testing.T, dir string) []runs.SweepRow {
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

func TestRunLockedDirectory(t *testing.T) {
	dir := t.TempDir()
	l, err := dirlock.Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release()
	_, err = runs.Run(context.Background(), tinyConfig(), dir, runs.Options{Backend: &runstest.Backend{}})
	if !errors.Is(err, dirlock.ErrLocked) || !strings.Contains(err.Error(), "PID "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("Run in a locked directory: %v, want ErrLocked naming PID %d", err, os.Getpid())
	}
	if _, err := os.Stat(filepath.Join(dir, runs.ConfigFile)); err == nil {
		t.Error("Run wrote config.yaml into a locked directory")
	}
	_, err = runs.RunSweep(context.Background(), branchedSweep(), dir, runs.SweepOptions{Backend: &runstest.Backend{}})
	if !errors.Is(err, dirlock.ErrLocked) {
		t.Fatalf("RunSweep in a locked directory: %v, want ErrLocked", err)
	}
}

// A sweep moved elsewhere (here: renamed, with its old path gone) resumes
// with nothing retrained, and after deleting some runs retrains only those,
// to the same sweep.parquet.
func TestSweepMovedAndPartlyDeleted(t *testing.T) {
	spec := branchedSweep()
	b := &runstest.Backend{}
	first := filepath.Join(t.TempDir(), "first")
	if _, err := runs.RunSweep(context.Background(), spec, first, runs.SweepOptions{Backend: b, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	want := readSweep(t, first)
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(first, moved); err != nil {
		t.Fatal(err)
	}
	steps := b.Steps.Load()
	res, err := runs.RunSweep(context.Background(), spec, moved, runs.SweepOptions{Backend: b, Jobs: 1})
	if err != nil {
		t.Fatalf("resume after the move: %v", err)
	}
	if n := b.Steps.Load() - steps; n != 0 {
		t.Errorf("resume after the move trained %d steps, want 0", n)
	}
	for id, r := range res.Results {
		if r.Status != runs.Skipped {
			t.Errorf("%s: %s after the move, want skipped", id, r.Status)
		}
	}
	// A branch, its parent's unneeded files and a finetune run go.
	for _, p := range []string{"removal-T003-s0", "finetune-P002-s0", "trunk-s0/model.onnx"} {
		if err := os.RemoveAll(filepath.Join(moved, p)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runs.RunSweep(context.Background(), spec, moved, runs.SweepOptions{Backend: b, Jobs: 2}); err != nil {
		t.Fatalf("resume after deleting runs: %v", err)
	}
	if got := readSweep(t, moved); !reflect.DeepEqual(got, want) {
		t.Errorf("sweep.parquet after move, delete and resume differs from the first:\n%v\nwant\n%v", got, want)
	}
}

// A resume that cannot finish every run keeps the rows sweep.parquet had.
func TestSweepResumeNeverShrinksParquet(t *testing.T) {
	spec := branchedSweep()
	dir := filepath.Join(t.TempDir(), "sw")
	b := &runstest.Backend{}
	if _, err := runs.RunSweep(context.Background(), spec, dir, runs.SweepOptions{Backend: b}); err != nil {
		t.Fatal(err)
	}
	want := readSweep(t, dir)
	// The branch loses its run directory and its parent the checkpoint it
	// needs: the branch fails on resume.
	for _, p := range []string{"removal-T003-s0", runs.CheckpointPath("trunk-s0", 3)} {
		if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := runs.RunSweep(context.Background(), spec, dir, runs.SweepOptions{Backend: b}); err == nil {
		t.Fatal("resume without the parent's checkpoint succeeded")
	}
	if got := readSweep(t, dir); !reflect.DeepEqual(got, want) {
		t.Errorf("sweep.parquet changed on a partial resume: %d rows, want %d", len(got), len(want))
	}
}

// Run directories written when sweeps stored parents as typed
// (runs-out/NAME/trunk-s0) resume and are skipped without retraining.
func TestSweepLegacyParentPaths(t *testing.T) {
	spec := branchedSweep()
	old := filepath.Join(t.TempDir(), "old")
	plan, err := spec.Plan(old)
	if err != nil {
		t.Fatal(err)
	}
	b := &runstest.Backend{}
	for _, r := range plan.Runs { // as the old RunSweep did
		cfg := r.Config
		if cfg.BranchFrom != "" {
			cfg.BranchFrom = filepath.Join(old, cfg.BranchFrom)
		}
		if cfg.InitFrom != "" {
			cfg.InitFrom = filepath.Join(old, cfg.InitFrom)
		}
		if _, err := runs.Run(context.Background(), cfg, filepath.Join(old, r.ID), runs.Options{Backend: b, RunID: r.ID}); err != nil {
			t.Fatal(err)
		}
	}
	// One legacy branch is unfinished: it resumes from its own checkpoint.
	if err := os.Remove(filepath.Join(old, "removal-T003-s0", runs.ModelFile)); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(old, moved); err != nil {
		t.Fatal(err)
	}
	steps := b.Steps.Load()
	res, err := runs.RunSweep(context.Background(), spec, moved, runs.SweepOptions{Backend: b})
	if err != nil {
		t.Fatalf("resume of a legacy sweep: %v", err)
	}
	if n := b.Steps.Load() - steps; n != 0 {
		t.Errorf("legacy resume trained %d steps, want 0", n)
	}
	if s := res.Results["removal-T003-s0"].Status; s != runs.Resumed {
		t.Errorf("unfinished legacy branch: %s, want resumed", s)
	}
	for _, r := range res.Rows {
		if want := plannedHash(t, plan, r.RunID); r.ConfigHash != want {
			t.Fatalf("%s: config hash %s, want the relocatable %s", r.RunID, r.ConfigHash, want)
		}
	}
}

func plannedHash(t *testing.T, plan runs.Plan, id string) string {
	for _, r := range plan.Runs {
		if r.ID == id {
			return r.Config.Hash()
		}
	}
	t.Fatalf("no planned run %s", id)
	return ""
}

// The thread count a run started with is kept on resume; asking for
// another is refused.
func TestRunKeepsThreads(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig()
	cfg.Threads = 3
	ctx, cancel := context.WithCancel(context.Background())
	b := &runstest.Backend{OnStep: func(n int64) {
		if n == 10 {
			cancel()
		}
	}}
	if _, err := runs.Run(ctx, cfg, dir, runs.Options{Backend: b}); !errors.Is(err, context.Canceled) {
		t.Fatalf("first attempt: %v", err)
	}
	cfg.Threads = 2
	_, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: &runstest.Backend{}})
	if !errors.Is(err, runs.ErrConfigChanged) || !strings.Contains(err.Error(), "--threads 3") {
		t.Fatalf("resume with other threads: %v, want ErrConfigChanged with a --threads 3 hint", err)
	}
	cfg.Threads = 0
	res, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: &runstest.Backend{}, Threads: 5})
	if err != nil || res.Status != runs.Resumed {
		t.Fatalf("resume with threads unset: %v", err)
	}
	if got, _ := runs.LoadConfig(filepath.Join(dir, runs.ConfigFile), runs.Config{}); got.Threads != 3 {
		t.Errorf("config.yaml threads %d, want 3", got.Threads)
	}
}

// A run that finished no epoch does not block a corrected command; --force
// removes only what critlab wrote.
func TestRunStartsOverCleanly(t *testing.T) {
	dir := t.TempDir()
	cfg := tinyConfig()
	typo := cfg
	typo.LR = 50
	if err := os.WriteFile(filepath.Join(dir, runs.ConfigFile), typo.YAML(), 0o644); err != nil {
		t.Fatal(err)
	}
	mustRun(t, cfg, dir, &runstest.Backend{})

	mine := []string{"notes.txt", filepath.Join(runs.CheckpointDir, "mine.ckpt.bak")}
	for _, p := range mine {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg.Seed = 7
	if _, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: &runstest.Backend{}, Force: true}); err != nil {
		t.Fatal(err)
	}
	for _, p := range mine {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("--force removed %s, which critlab did not write: %v", p, err)
		}
	}
}

// TestResumeDataPathSpelledOtherwise: the data path is hashed as typed, and a
// resume that spells it otherwise but names the same file keeps the run
// (under the spelling it started with: config.yaml and hash unchanged);
// another file, kind or a missing one is a config change.
func TestResumeDataPathSpelledOtherwise(t *testing.T) {
	root := t.TempDir()
	t.Chdir(root)
	os.Mkdir("d", 0o755)
	for _, f := range []string{"d/x.bin", "d/y.bin"} {
		os.WriteFile(f, []byte(f), 0o644)
	}
	if err := os.Symlink("x.bin", "d/link.bin"); err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	cfg.Data = "archive:d/x.bin"
	dir := "run"
	first, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: &runstest.Backend{}})
	if err != nil {
		t.Fatal(err)
	}
	yaml, _ := os.ReadFile(filepath.Join(dir, runs.ConfigFile))
	tests := []struct {
		data string
		same bool
	}{
		{"archive:./d/x.bin", true},
		{"archive:" + filepath.Join(root, "d", "x.bin"), true},
		{"archive:d/../d/x.bin", true},
		{"archive:d/link.bin", true},
		{"d/x.bin", true}, // a bare path is an archive
		{"archive:d/y.bin", false},
		{"folder:d/x.bin", false},
		{"archive:d/missing.bin", false},
	}
	for _, tc := range tests {
		t.Run(tc.data, func(t *testing.T) {
			// Without model.onnx the run is unfinished: it resumes from latest.ckpt.
			os.Remove(filepath.Join(dir, runs.ModelFile))
			c := cfg
			c.Data = tc.data
			res, err := runs.Run(context.Background(), c, dir, runs.Options{Backend: &runstest.Backend{}})
			if !tc.same {
				if !errors.Is(err, runs.ErrConfigChanged) || !strings.Contains(err.Error(), "differs in data") {
					t.Fatalf("err = %v, want ErrConfigChanged in data", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, _ := os.ReadFile(filepath.Join(dir, runs.ConfigFile))
			if res.Status != runs.Resumed || string(got) != string(yaml) || res.Rows[0].ConfigHash != cfg.Hash() ||
				!reflect.DeepEqual(comparable(res.Rows), comparable(first.Rows)) {
				t.Errorf("status %s, hash %s (want %s), config.yaml changed: %v", res.Status, res.Rows[0].ConfigHash, cfg.Hash(), string(got) != string(yaml))
			}
		})
	}
	// A branch may spell its parent's data path otherwise too.
	child := cfg
	child.Data = "archive:./d/x.bin"
	if err := runs.BranchCompatible(cfg, child, 2); err != nil {
		t.Errorf("BranchCompatible with the data path spelled otherwise: %v", err)
	}
	child.Data = "archive:d/y.bin"
	if err := runs.BranchCompatible(cfg, child, 2); err == nil {
		t.Error("BranchCompatible with another data file: no error")
	}
}

// TestResumeChecksGraph: a run (or a branch) continues only from
// checkpoints of the training graph its critlab compiles; a refused attempt
// leaves run.json as it was; checkpoints of critlab before graph hashes
// load with a warning, and the run records the hash from then on.
func TestResumeChecksGraph(t *testing.T) {
	interrupted := func(t *testing.T, dir, hash string) runs.Config {
		t.Helper()
		cfg := tinyConfig()
		cfg.KeepCheckpoints = []int{cfg.Epochs} // for the branch below
		ctx, cancel := context.WithCancel(context.Background())
		b := &runstest.Backend{GraphHash: hash, OnStep: func(n int64) {
			if n == 10 {
				cancel()
			}
		}}
		if _, err := runs.Run(ctx, cfg, dir, runs.Options{Backend: b}); !errors.Is(err, context.Canceled) {
			t.Fatalf("first attempt: %v", err)
		}
		return cfg
	}
	resume := func(cfg runs.Config, dir, hash string, force bool) (*runs.Result, error) {
		return runs.Run(context.Background(), cfg, dir, runs.Options{Backend: &runstest.Backend{GraphHash: hash}, Force: force})
	}
	for _, tc := range []struct {
		name, started, resumed string
		force                  bool
		refused, warned        bool
	}{
		{name: "same graph", started: "g1", resumed: "g1"},
		{name: "other graph", started: "g1", resumed: "g2", refused: true},
		{name: "other graph, --force", started: "g1", resumed: "g2", force: true},
		{name: "checkpoint without hash", started: "", resumed: "g2", warned: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := interrupted(t, dir, tc.started)
			before, err := os.ReadFile(filepath.Join(dir, runs.ProvenanceFile))
			if err != nil {
				t.Fatal(err)
			}
			res, err := resume(cfg, dir, tc.resumed, tc.force)
			if tc.refused {
				if !errors.Is(err, runs.ErrGraphChanged) || !strings.Contains(err.Error(), "--force") {
					t.Fatalf("resume under another graph: %v, want ErrGraphChanged with a --force hint", err)
				}
				if after, _ := os.ReadFile(filepath.Join(dir, runs.ProvenanceFile)); string(after) != string(before) {
					t.Errorf("the refused attempt rewrote run.json:\n%s\nwas\n%s", after, before)
				}
				return
			}
			if err != nil {
				t.Fatalf("resume: %v", err)
			}
			if want := map[bool]runs.Status{false: runs.Resumed, true: runs.Trained}[tc.force]; res.Status != want {
				t.Errorf("status %s, want %s", res.Status, want)
			}
			log, _ := os.ReadFile(filepath.Join(dir, runs.LogFile))
			if got := strings.Contains(string(log), "records no training-graph hash"); got != tc.warned {
				t.Errorf("warning in log.txt: %v, want %v:\n%s", got, tc.warned, log)
			}
			if p, err := runs.ReadProvenance(dir); err != nil || p.GraphSHA256 != tc.resumed {
				t.Errorf("run.json graph hash %q (%v), want %q", p.GraphSHA256, err, tc.resumed)
			}
			// The run's checkpoints now carry the hash: a branch under
			// another graph is refused, naming the parent.
			branch := cfg
			branch.Epochs = cfg.Epochs + 1
			branch.BranchFrom, branch.BranchEpoch = dir, cfg.Epochs
			_, err = runs.Run(context.Background(), branch, t.TempDir(), runs.Options{Backend: &runstest.Backend{GraphHash: "g3"}})
			if !errors.Is(err, runs.ErrGraphChanged) || !strings.Contains(err.Error(), "remove the parent run") {
				t.Errorf("branch under another graph: %v, want ErrGraphChanged naming the parent", err)
			}
		})
	}
}
