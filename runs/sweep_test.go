package runs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/golden"
	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
)

func tinySweep() runs.SweepSpec {
	base := tinyConfig()
	base.Deficits = nil
	base.LRSchedule, base.Momentum = "exp", 0.9
	return runs.SweepSpec{Name: "t", Base: base, Seeds: []int64{0, 1}}
}

func ids(p runs.Plan) []string {
	var out []string
	for _, r := range p.Runs {
		out = append(out, r.ID)
	}
	return out
}

func TestSweepPlan(t *testing.T) {
	tests := []struct {
		name    string
		edit    func(*runs.SweepSpec)
		want    []string
		wantErr string
	}{
		{"removal after", func(s *runs.SweepSpec) {
			s.Seeds = nil
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{4, 0, 2}, After: 3,
				Controls: runs.Controls{VFlip: true, LRRestart: true}}
		}, []string{"removal-T000-s0", "removal-T002-s0", "removal-T004-s0", "control-vflip-T004-s0", "control-lr-restart-T004-s0"}, ""},
		{"removal branch", func(s *runs.SweepSpec) {
			s.Seeds = []int64{5}
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 4}, Total: 6, Branch: true}
		}, []string{"trunk-s5", "removal-T000-s5", "removal-T002-s5", "removal-T004-s5"}, ""},
		{"window with shared baseline", func(s *runs.SweepSpec) {
			s.Seeds = nil
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, Total: 6}
			s.Window = &runs.WindowSpec{Deficit: "blur", Length: 2, Onsets: []int{0, 3}, Total: 6}
		}, []string{"removal-T000-s0", "removal-T002-s0", "window-S003-s0"}, ""},
		{"window branch shares removal's baseline", func(s *runs.SweepSpec) {
			s.Seeds = nil
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2}, Total: 6}
			s.Window = &runs.WindowSpec{Deficit: "blur", Length: 2, Onsets: []int{0, 3}, Total: 6, Branch: true}
		}, []string{"removal-T000-s0", "removal-T002-s0", "window-S003-s0"}, ""},
		{"window branch with cosine", func(s *runs.SweepSpec) {
			s.Base.LRSchedule = "cosine"
			s.Window = &runs.WindowSpec{Deficit: "blur", Length: 2, Onsets: []int{3}, Total: 6, Branch: true}
		}, []string{"baseline-s0", "window-S003-s0", "baseline-s1", "window-S003-s1"}, ""},
		{"finetune", func(s *runs.SweepSpec) {
			s.Seeds = nil
			s.Finetune = &runs.FinetuneSpec{Deficit: "blur", Pretrain: []int{2}, Epochs: 3}
		}, []string{"scratch-s0", "pretrain-P002-s0", "finetune-P002-s0"}, ""},
		{"seeds", func(s *runs.SweepSpec) {
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{1}, After: 2}
		}, []string{"removal-T001-s0", "removal-T001-s1"}, ""},
		{"nothing", func(s *runs.SweepSpec) {}, nil, "nothing to run"},
		{"after and total", func(s *runs.SweepSpec) {
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{1}, After: 2, Total: 4}
		}, nil, "exactly one of after"},
		{"point past total", func(s *runs.SweepSpec) {
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{4}, Total: 4}
		}, nil, "leaves no sharp epoch"},
		{"duplicate points", func(s *runs.SweepSpec) {
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{1, 1}, After: 2}
		}, nil, "distinct"},
		{"window too late", func(s *runs.SweepSpec) {
			s.Window = &runs.WindowSpec{Deficit: "blur", Length: 4, Onsets: []int{4}}
		}, nil, "does not fit"},
		{"branch with cosine", func(s *runs.SweepSpec) {
			s.Base.LRSchedule = "cosine"
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{2, 4}, After: 3, Branch: true}
		}, nil, "cannot start from the trunk"},
		{"controls at every point, one trunk per deficit", func(s *runs.SweepSpec) {
			s.Seeds = nil
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 4}, After: 3, Restart: true, Branch: true,
				Controls: runs.Controls{At: "all", VFlip: true, Noise: true, Sham: true, SameEpochs: true}}
		}, []string{"trunk-s0", "removal-T000-s0", "removal-T002-s0", "removal-T004-s0",
			"trunk-vflip-s0", "control-vflip-T002-s0", "control-vflip-T004-s0",
			"trunk-noise-s0", "control-noise-T002-s0", "control-noise-T004-s0",
			"trunk-sham-s0", "control-sham-T002-s0", "control-sham-T004-s0",
			"reference-same-epochs-T004-s0", "reference-same-epochs-T002-s0"}, ""},
		{"lr restart with its sham at the last point", func(s *runs.SweepSpec) {
			s.Seeds = nil
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 4}, After: 3, Branch: true,
				Controls: runs.Controls{Sham: true, LRRestart: true}}
		}, []string{"trunk-s0", "removal-T000-s0", "removal-T002-s0", "removal-T004-s0",
			"trunk-sham-s0", "control-sham-T004-s0", "control-lr-restart-T004-s0", "control-sham-lr-restart-T004-s0"}, ""},
		{"controls at one point without branching", func(s *runs.SweepSpec) {
			s.Seeds = nil
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 4}, After: 3,
				Controls: runs.Controls{At: "one", Noise: true, Sham: true, SameEpochs: true}}
		}, []string{"removal-T000-s0", "removal-T002-s0", "removal-T004-s0", "control-noise-T004-s0", "control-sham-T004-s0",
			"reference-same-epochs-T004-s0"}, ""},
		{"window controls at every onset", func(s *runs.SweepSpec) {
			s.Seeds = nil
			s.Window = &runs.WindowSpec{Deficit: "blur", Length: 2, Onsets: []int{0, 3}, Total: 6, Branch: true,
				Controls: runs.Controls{At: "all", VFlip: true, Noise: true, Sham: true, LRRestart: true}}
		}, []string{"baseline-s0", "window-S000-s0", "window-S003-s0",
			"window-control-vflip-S000-s0", "window-control-vflip-S003-s0", "window-control-noise-S000-s0", "window-control-noise-S003-s0",
			"window-control-sham-S000-s0", "window-control-sham-S003-s0", "window-control-lr-restart-S000-s0", "window-control-lr-restart-S003-s0",
			"window-control-sham-lr-restart-S000-s0", "window-control-sham-lr-restart-S003-s0"}, ""},
		{"controls at a bad place", func(s *runs.SweepSpec) {
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{2}, After: 3, Controls: runs.Controls{At: "last", Sham: true}}
		}, nil, `controls at "last": want one (the default) or all`},
		{"lr-restart control in a restarted sweep", func(s *runs.SweepSpec) {
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{2}, After: 3, Restart: true, Controls: runs.Controls{LRRestart: true}}
		}, nil, "already restarts"},
		{"same epochs with total", func(s *runs.SweepSpec) {
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{2}, Total: 5, Controls: runs.Controls{SameEpochs: true}}
		}, nil, "same_epochs needs after"},
		{"same epochs in a window sweep", func(s *runs.SweepSpec) {
			s.Window = &runs.WindowSpec{Deficit: "blur", Length: 2, Onsets: []int{0}, Total: 6, Controls: runs.Controls{SameEpochs: true}}
		}, nil, "same_epochs is for removal sweeps"},
		{"same epochs branch with cosine", func(s *runs.SweepSpec) {
			s.Base.LRSchedule = "cosine"
			s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 4}, After: 3, Branch: true,
				Controls: runs.Controls{At: "all", SameEpochs: true}}
		}, nil, "cannot start from the trunk"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := tinySweep()
			tc.edit(&s)
			p, err := s.Plan("sw")
			if tc.wantErr != "" {
				if !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(p); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("runs %v, want %v\n%s", got, tc.want, p.Describe())
			}
		})
	}
}

func TestSweepPlanDetails(t *testing.T) {
	s := tinySweep()
	s.Seeds = nil
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 4}, After: 3, Branch: true,
		Controls: runs.Controls{VFlip: true, LRRestart: true}}
	s.Window = &runs.WindowSpec{Deficit: "blur", Length: 2, Onsets: []int{1}, Total: 3, Branch: true,
		Controls: runs.Controls{VFlip: true, LRRestart: true}}
	p, err := s.Plan("sw")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]runs.PlannedRun{}
	for _, r := range p.Runs {
		byID[r.ID] = r
	}
	trunk := byID["trunk-s0"].Config
	if trunk.Epochs != 4 || trunk.DeficitWindows() != "blur:0-4" || !reflect.DeepEqual(trunk.KeepCheckpoints, []int{2, 4}) {
		t.Errorf("trunk %+v", trunk)
	}
	r2 := byID["removal-T002-s0"]
	if r2.Config.Epochs != 5 || r2.Config.BranchFrom != "trunk-s0" || r2.Config.BranchEpoch != 2 || !reflect.DeepEqual(r2.After, []string{"trunk-s0"}) {
		t.Errorf("removal T2 %+v", r2)
	}
	r0 := byID["removal-T000-s0"]
	want := []runs.Label{{Variant: "removal", Point: 0}, {Variant: "baseline", Point: -1}}
	if r0.Config.BranchFrom != "" || r0.Config.Epochs != 3 || !reflect.DeepEqual(r0.Labels, want) || !reflect.DeepEqual(r0.Config.KeepCheckpoints, []int{1}) {
		t.Errorf("removal T0 %+v", r0)
	}
	if w1 := byID["window-S001-s0"]; w1.Config.BranchFrom != "removal-T000-s0" || w1.Config.BranchEpoch != 1 || !reflect.DeepEqual(w1.After, []string{"removal-T000-s0"}) {
		t.Errorf("window S1 %+v", w1)
	}
	if c := byID["control-vflip-T004-s0"].Config; c.DeficitWindows() != "vflip:0-4" || c.Epochs != 7 {
		t.Errorf("vflip control %+v", c)
	}
	wv := byID["window-control-vflip-S001-s0"]
	if c := wv.Config; c.DeficitWindows() != "vflip:1-3" || c.BranchFrom != "removal-T000-s0" || c.BranchEpoch != 1 ||
		!reflect.DeepEqual(wv.Labels, []runs.Label{{Variant: runs.VariantWindowVFlip, Point: 1}}) {
		t.Errorf("window vflip control %+v", wv)
	}
	if c := byID["window-control-lr-restart-S001-s0"].Config; !c.RestartAtDeficitEnd || c.LearningRate(3) != c.LR || c.DeficitWindows() != "blur:1-3" {
		t.Errorf("window lr-restart control %+v", c)
	}
	if c := byID["control-lr-restart-T004-s0"].Config; !c.RestartAtDeficitEnd || c.LearningRate(4) != c.LR || c.BranchFrom != "trunk-s0" || c.BranchEpoch != 4 {
		t.Errorf("lr-restart control %+v", c)
	}
	if !strings.Contains(p.Describe(), "removal@0 baseline@-1") {
		t.Errorf("describe:\n%s", p.Describe())
	}
}

func TestSweepPlanControlDetails(t *testing.T) {
	s := tinySweep()
	s.Seeds = nil
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 4}, After: 3, Branch: true,
		Controls: runs.Controls{At: "all", VFlip: true, Sham: true, LRRestart: true, SameEpochs: true}}
	p, err := s.Plan("sw")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]runs.PlannedRun{}
	for _, r := range p.Runs {
		byID[r.ID] = r
	}
	check := func(id, deficits string, epochs int, restart bool, from string, at int, keep []int) {
		t.Helper()
		r, ok := byID[id]
		if !ok {
			t.Fatalf("no run %s in\n%s", id, p.Describe())
		}
		c := r.Config
		if c.DeficitWindows() != deficits || c.Epochs != epochs || c.RestartAtDeficitEnd != restart ||
			c.BranchFrom != from || c.BranchEpoch != at || !reflect.DeepEqual(c.KeepCheckpoints, keep) {
			t.Errorf("%s: deficits %s epochs %d restart %v from %q@%d keep %v", id, c.DeficitWindows(), c.Epochs,
				c.RestartAtDeficitEnd, c.BranchFrom, c.BranchEpoch, c.KeepCheckpoints)
		}
	}
	check("trunk-sham-s0", "sham:0-4", 4, false, "", 0, []int{2, 4})
	check("control-sham-T002-s0", "sham:0-2", 5, false, "trunk-sham-s0", 2, nil)
	check("control-vflip-T004-s0", "vflip:0-4", 7, false, "trunk-vflip-s0", 4, nil)
	check("control-lr-restart-T002-s0", "blur:0-2", 5, true, "trunk-s0", 2, nil)
	check("control-sham-lr-restart-T002-s0", "sham:0-2", 5, true, "trunk-sham-s0", 2, nil)
	check("control-sham-lr-restart-T004-s0", "sham:0-4", 7, true, "trunk-sham-s0", 4, nil)
	// Same-epochs references: the one at 2 is the one at 4's first 5 epochs.
	check("reference-same-epochs-T004-s0", "none", 7, false, "", 0, []int{4})
	check("reference-same-epochs-T002-s0", "none", 5, false, "reference-same-epochs-T004-s0", 4, nil)
	if l := byID["trunk-sham-s0"].Labels; len(l) != 0 {
		t.Errorf("control trunk labelled %v", l)
	}

	s.Removal.Restart, s.Removal.Controls.LRRestart = true, false
	if p, err = s.Plan("sw"); err != nil {
		t.Fatal(err)
	}
	for _, r := range p.Runs {
		if !r.Config.RestartAtDeficitEnd {
			t.Errorf("%s does not restart the lr in a restarted sweep", r.ID)
		}
		if w := r.Config.Deficits; len(w) == 1 && r.Config.LearningRate(w[0].End) != r.Config.LR {
			t.Errorf("%s: lr %v at removal, want lr0", r.ID, r.Config.LearningRate(w[0].End))
		}
	}
}

func TestRunSweep(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sw")
	s := tinySweep()
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 3}, After: 3, Controls: runs.Controls{VFlip: true}}
	s.Finetune = &runs.FinetuneSpec{Deficit: "blur", Pretrain: []int{2}, Epochs: 3}
	b := &runstest.Backend{}
	res, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: b, Jobs: 3, Cores: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Jobs != 3 || res.Threads != 1 {
		t.Errorf("workers %d threads %d", res.Jobs, res.Threads)
	}
	rows, err := runs.ReadSweep(filepath.Join(dir, "sweep.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range rows {
		count[r.Variant+"/"+r.RunID]++
		if r.Sweep != "t" {
			t.Fatalf("sweep column %q", r.Sweep)
		}
	}
	want := map[string]int{
		"removal/removal-T000-s0": 3, "removal/removal-T000-s1": 3, "scratch/removal-T000-s0": 3, "scratch/removal-T000-s1": 3,
		"removal/removal-T003-s0": 6, "removal/removal-T003-s1": 6,
		"control-vflip/control-vflip-T003-s0": 6, "control-vflip/control-vflip-T003-s1": 6,
		"pretrain/pretrain-P002-s0": 2, "pretrain/pretrain-P002-s1": 2,
		"finetune/finetune-P002-s0": 3, "finetune/finetune-P002-s1": 3,
	}
	if !reflect.DeepEqual(count, want) {
		t.Fatalf("rows per variant/run %v\nwant %v", count, want)
	}
	cfg, err := runs.LoadConfig(filepath.Join(dir, "removal-T003-s1", "config.yaml"), runs.Config{})
	if err != nil || cfg.Threads != 1 || cfg.Seed != 1 {
		t.Errorf("run config: %v %+v", err, cfg)
	}
	// TensorBoard on the sweep directory shows each run apart, with
	// every epoch of it (a branch's copied ones included).
	var wantRuns []string
	for k, n := range want {
		if r := fmt.Sprintf("%s/tb:%d", k[strings.Index(k, "/")+1:], n); !slices.Contains(wantRuns, r) {
			wantRuns = append(wantRuns, r)
		}
	}
	sort.Strings(wantRuns)
	if got := tensorboardRuns(t, dir); !reflect.DeepEqual(got, wantRuns) {
		t.Errorf("TensorBoard runs %v, want %v", got, wantRuns)
	}

	// A second sweep skips everything.
	steps := b.Steps.Load()
	if _, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: b, Jobs: 2, Cores: 2}); err != nil {
		t.Fatal(err)
	}
	if b.Steps.Load() != steps {
		t.Errorf("rerun trained %d steps", b.Steps.Load()-steps)
	}
}

// Branching (removal points and the lr-restart control from the trunk,
// windows from the baseline) gives the metrics of training every run
// from scratch, in fewer steps, also when only some epochs are evaluated
// (a branch must not keep the evaluation of its parent's last epoch).
// Controls at every point train the same metrics from their trunks (one
// per deficit kind) and the same-epochs references from the longest one as
// from scratch, in fewer epochs.
func TestRunSweepControlsBranchMatchStraight(t *testing.T) {
	for _, every := range []int{0, 3} {
		t.Run(fmt.Sprintf("eval_every=%d", every), func(t *testing.T) {
			root := t.TempDir()
			read := func(branch bool) map[string][]runs.MetricsRow {
				s := tinySweep()
				s.Seeds = []int64{2}
				s.Base.EvalEvery = every
				s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 4}, After: 2, Branch: branch,
					Controls: runs.Controls{At: "all", VFlip: true, Sham: true, LRRestart: true, SameEpochs: true}}
				// Epochs trained straight: removal 2+4+6, each of vflip, sham,
				// lr restart and sham lr restart 4+6, same-epochs 4+6;
				// branched: trunk 4 and removal 3×2, vflip and sham trunks 4
				// and 2×2 each, the lr restarts 2×2 each, same-epochs 6+1.
				return sweepMetricsByLabel(t, s, filepath.Join(root, map[bool]string{true: "branch", false: "straight"}[branch]), map[bool]int64{false: 62 * 8, true: 41 * 8}[branch], branch)
			}
			straight, branched := read(false), read(true)
			if len(straight) != 13 || !reflect.DeepEqual(straight, branched) {
				t.Fatalf("branched sweep differs from straight one\n got %+v\nwant %+v", branched, straight)
			}
		})
	}
}

func TestRunSweepBranchMatchesStraight(t *testing.T) {
	for _, every := range []int{0, 3} {
		t.Run(fmt.Sprintf("eval_every=%d", every), func(t *testing.T) {
			root := t.TempDir()
			read := func(branch bool) map[string][]runs.MetricsRow {
				s := tinySweep()
				s.Seeds = []int64{2}
				s.Base.EvalEvery = every
				s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 4}, After: 2, Branch: branch,
					Controls: runs.Controls{LRRestart: true}}
				s.Window = &runs.WindowSpec{Deficit: "blur", Length: 2, Onsets: []int{0, 2, 3}, Total: 6, Branch: branch}
				// Epochs trained: removal 2+4+6, lr restart 6, baseline and
				// windows 4×6 straight; trunk 4, removal 3×2, lr restart 2,
				// baseline 6, windows 6+4+3 branched.
				return sweepMetricsByLabel(t, s, filepath.Join(root, map[bool]string{true: "branch", false: "straight"}[branch]), map[bool]int64{false: 42 * 8, true: 31 * 8}[branch], branch)
			}
			straight, branched := read(false), read(true)
			if len(straight) != 8 || !reflect.DeepEqual(straight, branched) {
				t.Fatalf("branched sweep differs from straight one\n got %+v\nwant %+v", branched, straight)
			}
			for key, rows := range straight {
				for _, r := range rows {
					due := every == 0 || (r.Epoch+1)%int32(every) == 0 || int(r.Epoch) == len(rows)-1
					if (r.TestAcc != nil) != due || (r.TestLoss != nil) != due {
						t.Errorf("%s epoch %d of %d: evaluated %v, want %v", key, r.Epoch, len(rows), r.TestAcc != nil, due)
					}
				}
			}
		})
	}
}

func TestRunSweepRefusesBadRunsBeforeTraining(t *testing.T) {
	s := tinySweep()
	s.Removal = &runs.RemovalSpec{Deficit: "smear", Points: []int{0, 2}, After: 2}
	b := &runstest.Backend{}
	dir := filepath.Join(t.TempDir(), "sw")
	_, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: b})
	if !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), "smear") || b.Steps.Load() != 0 {
		t.Fatalf("err = %v after %d steps", err, b.Steps.Load())
	}
	if _, err := os.Stat(dir); err == nil {
		t.Error("sweep directory created")
	}
}

func TestRunSweepFailureDoesNotStopOthers(t *testing.T) {
	s := tinySweep()
	s.Seeds = nil
	s.Finetune = &runs.FinetuneSpec{Deficit: "blur", Pretrain: []int{2}, Epochs: 2}
	b := &runstest.Backend{}
	dir := filepath.Join(t.TempDir(), "sw")
	// A file where the pretraining run's folder should be makes it fail.
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pretrain-P002-s0"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: b, Jobs: 1})
	if err == nil || !strings.Contains(err.Error(), "needs pretrain-P002-s0, which failed") {
		t.Fatalf("err = %v", err)
	}
	var done []string
	for id := range res.Results {
		done = append(done, id)
	}
	sort.Strings(done)
	if !reflect.DeepEqual(done, []string{"scratch-s0"}) {
		t.Fatalf("finished %v", done)
	}
}

func TestParseSweep(t *testing.T) {
	spec := `
name: demo
seeds: [0, 1]
workers: 2
base:
  model: small
  epochs: 4
  deficits: [{deficit: blur, start: 0, end: 1}]
removal: {deficit: blur, points: [0, 2], after: 3, branch: true, controls: {vflip: true}}
window: {deficit: blur, length: 1, onsets: [1]}
finetune: {deficit: blur, pretrain: [2], epochs: 3}
`
	s, err := runs.ParseSweep([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "demo" || s.Jobs != 2 || len(s.Seeds) != 2 || s.Base.Model != "small" || s.Base.Epochs != 4 ||
		s.Base.LR != runs.Default().LR || !s.Removal.Branch || !s.Removal.Controls.VFlip || s.Window.Length != 1 || s.Finetune.Epochs != 3 {
		t.Fatalf("parsed %+v", s)
	}
	back, err := runs.ParseSweep(s.YAML())
	if err != nil || !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip: %v\n%+v\n%+v", err, back, s)
	}
	for _, bad := range []string{"nme: x\n", "base: {epoch: 3}\n", "removal: {deficit: blur, point: [1]}\n"} {
		if _, err := runs.ParseSweep([]byte(bad)); !errors.Is(err, runs.ErrInvalidConfig) {
			t.Errorf("ParseSweep(%q) err = %v", bad, err)
		}
	}
}

// Every preset in configs/ parses and plans.
func TestPresets(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "configs", "*.yaml"))
	if len(paths) == 0 {
		t.Fatal("no presets in ../configs")
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			s, err := runs.LoadSweep(p)
			if err != nil {
				t.Fatal(err)
			}
			plan, err := s.Plan("out")
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range plan.Runs {
				cfg := r.Config
				if len(r.After) > 0 {
					cfg.InitFrom, cfg.BranchFrom, cfg.BranchEpoch = "", "", 0
				}
				if err := cfg.Validate(); err != nil {
					t.Errorf("%s: %v", r.ID, err)
				}
			}
		})
	}
}

// The presets plan the same runs with the same config hashes as when
// their results were recorded (testdata/preset_plans.golden): new sweep
// options must not change what existing presets run. Paths inside the
// sweep directory are reduced to the run id, so the golden does not depend
// on how branch_from and init_from are spelled.
func TestPresetPlansUnchanged(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "configs", "*.yaml"))
	var b strings.Builder
	for _, path := range paths {
		s, err := runs.LoadSweep(path)
		if err != nil {
			t.Fatal(err)
		}
		plan, err := s.Plan("out")
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %d runs\n", filepath.Base(path), len(plan.Runs))
		for _, r := range plan.Runs {
			cfg := r.Config
			if cfg.BranchFrom != "" {
				cfg.BranchFrom = filepath.Base(cfg.BranchFrom)
			}
			if cfg.InitFrom != "" {
				cfg.InitFrom = filepath.Base(cfg.InitFrom)
			}
			fmt.Fprintf(&b, "  %s %s %v after %v\n", r.ID, cfg.Hash(), r.Labels, r.After)
		}
	}
	golden.Check(t, "preset_plans.golden", []byte(b.String()))
}

func TestRunSweepCancelAndResume(t *testing.T) {
	s := tinySweep()
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 4}, After: 2}
	dir := filepath.Join(t.TempDir(), "sw")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	b := &runstest.Backend{OnStep: func(n int64) {
		if n == 40 {
			cancel()
		}
	}}
	_, err := runs.RunSweep(ctx, s, dir, runs.SweepOptions{Backend: b, Jobs: 2})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "run the same command again") || strings.Count(err.Error(), "canceled") != 1 {
		t.Fatalf("err = %v", err)
	}
	res, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: &runstest.Backend{}, Jobs: 2})
	if err != nil || len(res.Results) != 6 {
		t.Fatalf("resumed sweep: %v, %d runs", err, len(res.Results))
	}
	resumed := 0
	for _, r := range res.Results {
		if r.Status == runs.Resumed {
			resumed++
		}
	}
	if resumed == 0 {
		t.Error("no run resumed")
	}
}

// sweepMetricsByLabel runs s in dir on the fake backend, checks that it
// trained wantSteps steps and that trained_by names one trained epoch per
// (trainer, epoch) pair (each run itself when not branched), and returns
// the metrics of every labelled run but the trunks by variant@point, with
// the wall-clock columns and hash cleared.
func sweepMetricsByLabel(t *testing.T, s runs.SweepSpec, dir string, wantSteps int64, branch bool) map[string][]runs.MetricsRow {
	t.Helper()
	b := &runstest.Backend{}
	if _, err := runs.RunSweep(context.Background(), s, dir, runs.SweepOptions{Backend: b, Jobs: 2}); err != nil {
		t.Fatal(err)
	}
	if b.Steps.Load() != wantSteps {
		t.Errorf("branch %v: %d steps, want %d", branch, b.Steps.Load(), wantSteps)
	}
	rows, err := runs.ReadSweep(filepath.Join(dir, "sweep.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	// trained_by marks the copied epochs: each (trainer, epoch) pair is one
	// epoch the backend trained.
	trained := map[string]bool{}
	for _, r := range rows {
		trained[fmt.Sprintf("%s/%d", r.TrainedBy, r.Epoch)] = true
		if !branch && r.TrainedBy != r.RunID {
			t.Errorf("straight run %s epoch %d trained by %s", r.RunID, r.Epoch, r.TrainedBy)
		}
	}
	if int64(len(trained))*8 != b.Steps.Load() {
		t.Errorf("branch %v: %d distinct (trained_by, epoch), want %d", branch, len(trained), b.Steps.Load()/8)
	}
	out := map[string][]runs.MetricsRow{}
	for _, r := range rows {
		if r.Variant != runs.VariantTrunk {
			m := r.Metrics()
			m.EpochSeconds, m.ImagesPerSec, m.ConfigHash = 0, 0, ""
			key := fmt.Sprintf("%s@%d", r.Variant, r.Point)
			out[key] = append(out[key], m)
		}
	}
	return out
}
