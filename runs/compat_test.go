package runs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
)

// withoutEffect are settings a new run refuses (CheckNew) that run
// directories written before that check hold in their config.yaml.
func withoutEffect(t *testing.T) []struct {
	name string
	edit func(*runs.Config)
	want string
} {
	model := filepath.Join(t.TempDir(), "net.onnx")
	if err := os.WriteFile(model, []byte("a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	return []struct {
		name string
		edit func(*runs.Config)
		want string
	}{
		{"fisher every 0", func(c *runs.Config) { c.Fisher = runs.FisherConfig{Images: 16, Samples: 1} }, "fisher.every 0 estimate nothing"},
		{"lr_step of exp", func(c *runs.Config) { c.LRSchedule, c.LRStep = "exp", 3 }, "lr_step 3"},
		{"lr_decay of cosine", func(c *runs.Config) { c.LRSchedule, c.LRDecay = "cosine", 0.8587 }, "set lr_decay: 0"},
		{"width of a model file", func(c *runs.Config) { c.Model, c.Width = model, 2 }, "width 2: model " + model},
		{"warmup of all epochs", func(c *runs.Config) { c.WarmupEpochs = c.Epochs }, "warmup_epochs 6 is not below epochs 6"},
	}
}

// A run directory that holds such a setting resumes and is then skipped as
// before (dropping the setting would change its hash); a new run, or one
// forced to start over, is refused with nothing deleted.
func TestRunOldDirWithSettingWithoutEffect(t *testing.T) {
	for _, tc := range withoutEffect(t) {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tinyConfig()
			tc.edit(&cfg)
			b := &runstest.Backend{}
			fresh := filepath.Join(t.TempDir(), "run")
			if _, err := runs.Run(context.Background(), cfg, fresh, runs.Options{Backend: b}); !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("new run: err = %v, want ErrInvalidConfig with %q", err, tc.want)
			}
			if _, err := os.Stat(fresh); err == nil || b.Steps.Load() != 0 {
				t.Fatalf("new run: directory made or trained (%d steps)", b.Steps.Load())
			}

			// The directory as a version before the check left it: two
			// epochs trained (Planned skips the check, as that version did).
			dir := filepath.Join(t.TempDir(), "run")
			ctx, cancel := context.WithCancel(context.Background())
			old := &runstest.Backend{OnStep: func(n int64) {
				if n == 17 { // 8 steps an epoch
					cancel()
				}
			}}
			_, err := runs.Run(ctx, cfg, dir, runs.Options{Backend: old, Planned: true})
			cancel()
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("old run: err = %v, want context.Canceled", err)
			}

			res, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: b})
			if err != nil || res.Status != runs.Resumed || len(res.Rows) != cfg.Epochs {
				t.Fatalf("resume: err = %v, result %+v", err, res)
			}
			res, err = runs.Run(context.Background(), cfg, dir, runs.Options{Backend: b})
			if err != nil || res.Status != runs.Skipped {
				t.Fatalf("finished: err = %v, result %+v", err, res)
			}
			_, err = runs.Run(context.Background(), cfg, dir, runs.Options{Backend: b, Force: true})
			if !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("--force: err = %v, want ErrInvalidConfig with %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, runs.ModelFile)); err != nil {
				t.Fatalf("--force refused but deleted: %v", err)
			}
		})
	}
}

// A sweep directory whose runs hold such a setting is skipped as finished
// (and passes its dry run); the same sweep in a new directory is refused.
func TestRunSweepOldDirWithSettingWithoutEffect(t *testing.T) {
	for _, tc := range withoutEffect(t) {
		t.Run(tc.name, func(t *testing.T) {
			s := tinySweep()
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, Total: 6}
			tc.edit(&s.Base)
			b := &runstest.Backend{}
			if _, err := runs.RunSweep(context.Background(), s, filepath.Join(t.TempDir(), "new"), runs.SweepOptions{Backend: b}); !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("new sweep: err = %v, want ErrInvalidConfig with %q", err, tc.want)
			}

			dir := t.TempDir()
			if _, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: b}); err == nil {
				t.Fatal("new sweep in dir accepted")
			}
			s.Base.Threads = 1
			plan, err := s.Plan(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range plan.Runs { // as a version before the check left them
				if _, err := runs.Run(context.Background(), r.Config, filepath.Join(dir, r.ID), runs.Options{Backend: b, RunID: r.ID, Root: dir, Planned: true}); err != nil {
					t.Fatal(err)
				}
			}
			if err := runs.CheckPlan(plan, b); err != nil {
				t.Fatalf("dry run: %v", err)
			}
			steps := b.Steps.Load()
			res, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: b})
			if err != nil {
				t.Fatal(err)
			}
			for id, r := range res.Results {
				if r.Status != runs.Skipped {
					t.Errorf("%s: %s, want skipped", id, r.Status)
				}
			}
			if len(res.Results) != len(plan.Runs) || b.Steps.Load() != steps {
				t.Errorf("%d of %d runs, %d steps trained", len(res.Results), len(plan.Runs), b.Steps.Load()-steps)
			}
		})
	}
}

// Trunks and pretraining runs may end inside the warmup of the runs that
// continue them; a warmup that ends in no run of the sweep is refused.
func TestCheckPlanWarmupOfTrunks(t *testing.T) {
	tests := []struct {
		name   string
		warmup int
		edit   func(*runs.SweepSpec)
		want   string // "" means valid
	}{
		{"trunk", 4, func(s *runs.SweepSpec) {
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 3}, Total: 6, Branch: true}
		}, ""},
		{"pretraining", 4, func(s *runs.SweepSpec) {
			s.Finetune = &runs.FinetuneSpec{Deficit: "blur", Pretrain: []int{2}, Epochs: 6}
		}, ""},
		{"window", 4, func(s *runs.SweepSpec) {
			s.Window = &runs.WindowSpec{Deficit: "blur", Length: 2, Onsets: []int{0, 2}, Branch: true}
		}, ""},
		{"all epochs", 6, func(s *runs.SweepSpec) {
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 3}, Total: 6, Branch: true}
		}, "warmup_epochs 6 is not below epochs 6"},
		{"short run", 4, func(s *runs.SweepSpec) {
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, After: 3}
		}, "run removal-T000-s0: runs: invalid config: warmup_epochs 4 is not below epochs 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tinySweep()
			s.Base.WarmupEpochs = tc.warmup
			tc.edit(&s)
			dir := t.TempDir()
			plan, err := s.Plan(dir)
			if err != nil {
				t.Fatal(err)
			}
			err = runs.CheckPlan(plan, &runstest.Backend{})
			if tc.want != "" {
				if !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("CheckPlan = %v, want ErrInvalidConfig with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("CheckPlan: %v", err)
			}
			if _, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: &runstest.Backend{}}); err != nil {
				t.Fatalf("RunSweep: %v", err)
			}
		})
	}
}
