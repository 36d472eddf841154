package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
	"github.com/urfave/cli/v2"
)

// runRuns runs the train, sweep and report commands with the fake backend.
func runRuns(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	old := newBackend
	newBackend = func(*cli.Context) runs.Backend { return &runstest.Backend{} }
	defer func() { newBackend = old }()
	return runCLI(t, args...)
}

func TestTrainCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "c.yaml")
	os.WriteFile(cfgPath, []byte("model: small\ndata: synthetic\nepochs: 9\nbatch_size: 8\nlr: 0.05\nseed: 4\n"), 0o644)
	out := filepath.Join(dir, "run")
	stdout, stderr, err := runRuns(t, "train", "--config", cfgPath, "--epochs", "6", "--deficit", "blur", "--deficit-epochs", "0-2",
		"--deficit", "vflip", "--deficit-epochs", "3:5", "--hflip=false", "--out", out, "--quiet")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	if !strings.Contains(stdout, "final test accuracy") || !strings.Contains(stderr, "epoch 5/6") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout, stderr)
	}
	state, cfg, err := runs.Inspect(out)
	if err != nil || state != runs.StateFinished {
		t.Fatalf("%v %v", state, err)
	}
	if cfg.Epochs != 6 || cfg.Seed != 4 || cfg.BatchSize != 8 || cfg.Augment.HFlip || !cfg.Augment.Crop || cfg.DeficitWindows() != "blur:0-2,vflip:3-5" {
		t.Errorf("resolved config %+v", cfg)
	}
	// The same command again (windows spelled the other way) skips the
	// finished run.
	stdout, _, err = runRuns(t, "train", "--config", cfgPath, "--epochs", "6", "--deficit", "blur", "--deficit-epochs", "0:2",
		"--deficit", "vflip", "--deficit-epochs", "3:5", "--hflip=false", "--out", out, "--quiet")
	if err != nil || !strings.Contains(stdout, "(skipped)") {
		t.Errorf("rerun: %v\n%s", err, stdout)
	}
}

func TestTrainCommandRefuses(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unpaired deficit", []string{"--deficit", "blur"}, "1 --deficit but 0 --deficit-epochs"},
		{"bad epochs", []string{"--deficit", "blur", "--deficit-epochs", "40"}, "want START-END"},
		{"overlap", []string{"--deficit", "blur", "--deficit-epochs", "0:3", "--deficit", "vflip", "--deficit-epochs", "2:4"}, "overlap"},
		{"outside", []string{"--deficit", "blur", "--deficit-epochs", "0:30"}, "end <= epochs"},
		{"unknown deficit", []string{"--deficit", "smear", "--deficit-epochs", "0:2"}, `unknown deficit "smear"`},
		{"model", []string{"--model", "nonexistent.onnx"}, "model"},
		// The model's own checks come first: a width for a model file is
		// only worth fixing once the model is there.
		{"width of a missing model", []string{"--model", "/nonexistent/net.onnx", "--width", "2"}, "model: open /nonexistent/net.onnx"},
		{"fisher every 0", []string{"--fisher", "16", "--fisher-every", "0"}, "fisher.every 0 estimate nothing"},
		{"typo in file", []string{"--config", "testdata/bad_config.yaml"}, `unknown key "epoch": did you mean "epochs"?`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "run")
			args := append([]string{"train", "--model", "small", "--data", "synthetic", "--epochs", "6", "--out", out, "--quiet"}, tc.args...)
			_, _, err := runRuns(t, args...)
			if !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrInvalidConfig with %q", err, tc.want)
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("run directory created")
			}
		})
	}
}

func TestTrainPrintConfig(t *testing.T) {
	stdout, _, err := runRuns(t, "train", "--model", "small", "--lr", "0.1", "--deficit", "blur:size=4,up=linear", "--deficit-epochs", "0:40", "--print-config")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := runs.ParseConfig([]byte(stdout), runs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Model != "small" || cfg.LR != 0.1 || cfg.Epochs != 160 || cfg.DeficitWindows() != "blur:size=4,up=linear:0-40" {
		t.Errorf("config %+v", cfg)
	}
}

// --print-config checks the config first (without the model or the data)
// and prints nothing for a bad one; the refusals name the fix.
func TestTrainPrintConfigRefuses(t *testing.T) {
	tests := []struct {
		name string
		yaml string // --config file, if any
		args []string
		want string // error substring; "" means printed
		note string // in stderr
	}{
		{"fisher without every", "fisher: {images: 500, samples: 1}\n", nil, "set fisher.every", ""},
		{"--fisher alone", "", []string{"--fisher", "500"}, "", ""},
		{"--fisher-every 0", "", []string{"--fisher", "500", "--fisher-every", "0"}, "set fisher.every", ""},
		{"width of a file", "", []string{"--model", "m.onnx", "--width", "0.5"}, "width 0.5: model m.onnx is not a zoo model", ""},
		{"step without decay", "", []string{"--lr-schedule", "step", "--lr-step", "30"}, "lr_schedule step would keep lr_decay 0.97, the factor of the exp schedule it replaces: set --lr-decay", ""},
		{"step over exp file", "lr_schedule: exp\nlr_decay: 0.9\n", []string{"--lr-schedule", "step", "--lr-step", "30"}, "set --lr-decay", ""},
		{"step without decay in file", "lr_schedule: step\nlr_step: 30\n", nil, "set lr_decay", ""},
		{"step with decay", "", []string{"--lr-schedule", "step", "--lr-step", "30", "--lr-decay", "0.1"}, "", ""},
		{"step file, flag period", "lr_schedule: step\nlr_step: 30\nlr_decay: 0.5\n", []string{"--lr-schedule", "step", "--lr-step", "10"}, "", ""},
		{"lr_step of exp", "", []string{"--lr-step", "30"}, "lr_step 30: only the step schedule reads it", ""},
		{"decay of cosine", "", []string{"--lr-schedule", "cosine", "--lr-decay", "0.5"}, "the cosine schedule has no decay factor", ""},
		{"cosine", "", []string{"--lr-schedule", "cosine"}, "", ""},
		{"cosine over exp file", "lr_schedule: exp\nlr_decay: 0.8587\n", []string{"--lr-schedule", "cosine"}, "lr_decay 0.8587: the cosine schedule has no decay factor (exp and step do): set lr_decay: 0 (--lr-decay 0)", ""},
		{"cosine over exp file, decay 0", "lr_schedule: exp\nlr_decay: 0.8587\n", []string{"--lr-schedule", "cosine", "--lr-decay", "0"}, "", ""},
		{"warmup", "", []string{"--epochs", "5", "--warmup-epochs", "5"}, "warmup_epochs 5 is not below epochs 5", ""},
		{"none: window", "", []string{"--deficit", "none:", "--deficit-epochs", "0-4"}, `empty deficit "none:"`, ""},
		{"tiny sigma", "", []string{"--deficit", "gauss:sigma=1e-20", "--deficit-epochs", "0-4"}, "gauss sigma 1e-20", ""},
		{"epochs 10.9", "epochs: 10.9\n", nil, "epochs 10.9 is not a whole number", ""},
		{"window outside", "", []string{"--epochs", "3", "--deficit", "blur", "--deficit-epochs", "0-4"}, "end <= epochs", ""},
		{"restart without window", "", []string{"--restart-at-deficit-end"}, "", "NOTE: restart_at_deficit_end has no effect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"train", "--model", "small", "--data", "cifar10:/nonexistent", "--print-config"}
			if tc.yaml != "" {
				path := filepath.Join(t.TempDir(), "c.yaml")
				if err := os.WriteFile(path, []byte(tc.yaml), 0o644); err != nil {
					t.Fatal(err)
				}
				args = append(args, "--config", path)
			}
			stdout, stderr, err := runRuns(t, append(args, tc.args...)...)
			if tc.want == "" {
				if err != nil || !strings.Contains(stdout, "model: ") || !strings.Contains(stderr, tc.note) {
					t.Fatalf("err = %v\nstdout:\n%s\nstderr:\n%s", err, stdout, stderr)
				}
				return
			}
			if !errors.Is(err, runs.ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) || stdout != "" {
				t.Fatalf("err = %v, want ErrInvalidConfig with %q; stdout %q", err, tc.want, stdout)
			}
		})
	}
}

const testSweep = `
name: cli
seeds: [0, 1]
base:
  model: small
  data: synthetic
  epochs: 4
  batch_size: 8
  lr: 0.05
removal:
  deficit: blur
  points: [0, 2]
  after: 3
window:
  deficit: blur
  length: 1
  onsets: [1, 2]
  total: 3
`

func TestSweepAndReportCommands(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "s.yaml")
	os.WriteFile(spec, []byte(testSweep), 0o644)
	out := filepath.Join(dir, "sw")

	stdout, _, err := runRuns(t, "sweep", "--config", spec, "--out", out, "--seeds", "3", "--dry-run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, "sweep cli: 4 runs") || !strings.Contains(stdout, "removal-T002-s3") || strings.Contains(stdout, "-s0") {
		t.Errorf("dry run:\n%s", stdout)
	}

	stdout, stderr, err := runRuns(t, "sweep", "--config", spec, "--out", out, "--jobs", "2", "--quiet")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, want := range []string{"cli: 8 runs", "removal       2  2", "window        2  2", "no interval is given", "plot:    " + filepath.Join(out, "report", "removal.png")} {
		if !strings.Contains(stdout, want) {
			t.Errorf("sweep stdout lacks %q:\n%s", want, stdout)
		}
	}
	if !strings.Contains(stderr, "8/8 runs done (0 failed)") {
		t.Errorf("stderr:\n%s", stderr)
	}
	stdout2, _, err := runRuns(t, "report", out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stdout, strings.SplitN(stdout2, "\nplot", 2)[0]) {
		t.Errorf("report differs from the sweep's:\n%s\nvs\n%s", stdout2, stdout)
	}
	if _, _, err := runRuns(t, "report", filepath.Join(dir, "none")); err == nil {
		t.Error("report of a missing dir succeeded")
	}
	if _, _, err := runRuns(t, "sweep", "--config", "no-such-preset"); err == nil || !strings.Contains(err.Error(), "no such file or preset") {
		t.Errorf("missing preset: %v", err)
	}
}

func TestParseSeeds(t *testing.T) {
	for in, want := range map[string]string{"0": "[0]", "0,2,5": "[0 2 5]", "1-3": "[1 2 3]", "0-1, 7": "[0 1 7]"} {
		got, err := parseSeeds(in)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("parseSeeds(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
	for _, in := range []string{"", "a", "3-1", "1-2000000000", "-9223372036854775807-9223372036854775807"} {
		if _, err := parseSeeds(in); !errors.Is(err, runs.ErrInvalidConfig) {
			t.Errorf("parseSeeds(%q) err = %v", in, err)
		}
	}
}

// Presets are built into the binary: this test's working directory has no
// configs/.
func TestSweepPresetFromAnyDirectory(t *testing.T) {
	stdout, stderr, err := runRuns(t, "sweep", "--config", "demo", "--dry-run", "--out", t.TempDir())
	if err != nil || !strings.Contains(stdout, "sweep demo:") {
		t.Fatalf("preset demo: %v\n%s%s", err, stdout, stderr)
	}
	if _, _, err := runRuns(t, "sweep", "--config", "nonesuch", "--dry-run"); err == nil || !strings.Contains(err.Error(), "not found") || !strings.Contains(err.Error(), "demo") {
		t.Errorf("missing preset: %v, want not found listing the presets", err)
	}
}
