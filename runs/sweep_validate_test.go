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

// Spec settings a sweep cannot honour are refused with a message naming
// them, never dropped or merged.
func TestSweepPlanRefusesWhatItWouldDrop(t *testing.T) {
	removal := func(r runs.RemovalSpec) func(*runs.SweepSpec) {
		return func(s *runs.SweepSpec) { s.Removal = &r }
	}
	window := func(w runs.WindowSpec) func(*runs.SweepSpec) {
		return func(s *runs.SweepSpec) { s.Window = &w }
	}
	straight := removal(runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, After: 2})
	for _, tc := range []struct {
		name string
		edit []func(*runs.SweepSpec)
		want string
	}{
		{"base deficits", []func(*runs.SweepSpec){straight, func(s *runs.SweepSpec) {
			s.Base.Deficits = []runs.Window{{Deficit: "blur", Start: 0, End: 2}}
		}}, "removal.deficit"},
		{"base keep_checkpoints", []func(*runs.SweepSpec){straight, func(s *runs.SweepSpec) { s.Base.KeepCheckpoints = []int{2} }}, "keep_checkpoints"},
		{"base branch_from", []func(*runs.SweepSpec){straight, func(s *runs.SweepSpec) { s.Base.BranchFrom, s.Base.BranchEpoch = "x", 1 }}, "branch_from"},
		{"init_from with branch", []func(*runs.SweepSpec){
			removal(runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, After: 2, Branch: true}),
			func(s *runs.SweepSpec) { s.Base.InitFrom = "m.onnx" }}, "branch: false"},
		{"init_from with window branch", []func(*runs.SweepSpec){
			window(runs.WindowSpec{Deficit: "blur", Length: 1, Onsets: []int{1}, Branch: true}),
			func(s *runs.SweepSpec) { s.Base.InitFrom = "m.onnx" }}, "branch: false"},
		{"init_from with finetune", []func(*runs.SweepSpec){func(s *runs.SweepSpec) {
			s.Finetune = &runs.FinetuneSpec{Deficit: "blur", Pretrain: []int{2}, Epochs: 2}
			s.Base.InitFrom = "m.onnx"
		}}, "drop base.init_from"},
		{"negative after", []func(*runs.SweepSpec){removal(runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, After: -3, Total: 20})}, "after -3"},
		{"negative removal total", []func(*runs.SweepSpec){removal(runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, After: 2, Total: -5})}, "total -5"},
		{"controls without a point > 0", []func(*runs.SweepSpec){removal(runs.RemovalSpec{Deficit: "blur", Points: []int{0}, After: 2,
			Controls: runs.Controls{VFlip: true}})}, "drop the controls"},
		{"negative window total", []func(*runs.SweepSpec){window(runs.WindowSpec{Deficit: "blur", Length: 1, Onsets: []int{1}, Total: -5})}, "total -5"},
		{"duplicate onsets", []func(*runs.SweepSpec){window(runs.WindowSpec{Deficit: "blur", Length: 1, Onsets: []int{0, 0, 5}})}, "onset 0 twice"},
		{"duplicate pretrain", []func(*runs.SweepSpec){func(s *runs.SweepSpec) {
			s.Finetune = &runs.FinetuneSpec{Deficit: "blur", Pretrain: []int{5, 5}, Epochs: 2}
		}}, "5 epochs twice"},
		{"duplicate seeds", []func(*runs.SweepSpec){straight, func(s *runs.SweepSpec) { s.Seeds = []int64{1, 1} }}, "seed 1 twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tinySweep()
			for _, e := range tc.edit {
				e(&s)
			}
			_, err := s.Plan(t.TempDir())
			if !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Plan err = %v, want ErrInvalidConfig naming %q", err, tc.want)
			}
		})
	}
}

// init_from and freeze in base make every run a fine-tuning run of that
// model (a relative init_from made absolute: the runs resolve relative
// paths against the sweep directory).
func TestSweepPlanBaseInitFromAndFreeze(t *testing.T) {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		spec func(*runs.SweepSpec)
	}{
		{"removal", func(s *runs.SweepSpec) {
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, After: 2, Controls: runs.Controls{VFlip: true}}
		}},
		{"window", func(s *runs.SweepSpec) { s.Window = &runs.WindowSpec{Deficit: "blur", Length: 1, Onsets: []int{1, 2}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tinySweep()
			tc.spec(&s)
			s.Base.InitFrom, s.Base.Freeze = "pre/model.onnx", []string{"conv1.*"}
			plan, err := s.Plan(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range plan.Runs {
				if r.Config.InitFrom != filepath.Join(wd, "pre/model.onnx") || len(r.Config.Freeze) != 1 || r.Config.Freeze[0] != "conv1.*" {
					t.Errorf("run %s: init_from %q, freeze %v", r.ID, r.Config.InitFrom, r.Config.Freeze)
				}
			}
		})
	}
}

// Negative parallelism is refused, not replaced by the default.
func TestRunSweepRefusesNegativeParallelism(t *testing.T) {
	for _, opts := range []runs.SweepOptions{{Jobs: -4}, {Cores: -4}} {
		s := tinySweep()
		s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, After: 2}
		b := &runstest.Backend{}
		opts.Backend = b
		dir := filepath.Join(t.TempDir(), "sw")
		_, err := runs.RunSweep(context.Background(), s, dir, opts)
		if !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), "-4") || b.Steps.Load() != 0 {
			t.Errorf("jobs %d, cores %d: err = %v after %d steps", opts.Jobs, opts.Cores, err, b.Steps.Load())
		}
		if _, err := os.Stat(dir); err == nil {
			t.Error("sweep directory created")
		}
	}
}

// A fine-tuning sweep trains: every run initialises from base init_from.
func TestRunSweepBaseInitFrom(t *testing.T) {
	tmp := t.TempDir()
	pre := filepath.Join(tmp, "pre")
	mustRun(t, tinyConfig(), pre, &runstest.Backend{})
	s := tinySweep()
	s.Seeds = nil
	s.Base.InitFrom = pre
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, After: 2}
	dir := filepath.Join(tmp, "sw")
	res, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: &runstest.Backend{}, Jobs: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Plan.Runs {
		log, err := os.ReadFile(filepath.Join(dir, r.ID, "log.txt"))
		if err != nil || !strings.Contains(string(log), "initialised from "+filepath.Join(pre, "model.onnx")) {
			t.Errorf("run %s did not initialise from %s (%v):\n%s", r.ID, pre, err, log)
		}
	}
}

// A sweep whose base is a model file with a width is refused before any
// run starts, as train refuses it.
func TestCheckPlanRefusesWidthOfModelFile(t *testing.T) {
	s := tinySweep()
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, After: 2}
	model := filepath.Join(t.TempDir(), "net.onnx")
	if err := os.WriteFile(model, []byte("a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Base.Model, s.Base.Width = model, 0.5
	plan, err := s.Plan(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	err = runs.CheckPlan(plan, &runstest.Backend{})
	if !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), "width 0.5: model "+model) {
		t.Fatalf("CheckPlan err = %v, want the width refused", err)
	}
}

// sweep.yaml holds a relative base init_from absolute, so the sweep read
// back from another directory plans the same runs.
func TestSweepYAMLInitFromAbsolute(t *testing.T) {
	s := tinySweep()
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, After: 2}
	s.Base.InitFrom = "pre/model.onnx"
	dir := t.TempDir()
	want, err := s.Plan(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := s.YAML()
	t.Chdir(t.TempDir())
	back, err := runs.ParseSweep(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := back.Plan(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got.Runs {
		if r.Config.InitFrom != want.Runs[i].Config.InitFrom || r.Config.Hash() != want.Runs[i].Config.Hash() {
			t.Errorf("run %s: init_from %q read back elsewhere, planned %q", r.ID, r.Config.InitFrom, want.Runs[i].Config.InitFrom)
		}
	}
}
