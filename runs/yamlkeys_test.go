package runs_test

import (
	"os"
	"strings"
	"testing"

	"github.com/critlab/critlab/runs"
)

// A config.yaml written before train_subset became subset (a real run
// directory's, with its hash in the directory name) keeps its hash, so the
// run resumes; written again it says subset and still hashes the same.
func TestLegacyRunConfigKeepsItsHash(t *testing.T) {
	data, err := os.ReadFile("testdata/legacy_run_config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const want = "4aecccd60b61099c"
	cfg, err := runs.ParseConfig(data, runs.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.TrainSubset != 500 || cfg.Hash() != want {
		t.Fatalf("legacy config: subset %d hash %s, want 500 and %s", cfg.TrainSubset, cfg.Hash(), want)
	}
	out := string(cfg.YAML())
	if !strings.Contains(out, "\nsubset: 500\n") || strings.Contains(out, "train_subset") {
		t.Errorf("written config:\n%s", out)
	}
	again, err := runs.ParseConfig([]byte(out), runs.Config{})
	if err != nil || again.Hash() != want {
		t.Errorf("rewritten config: hash %s (%v), want %s", again.Hash(), err, want)
	}
}

func TestConfigKeysInPlainWords(t *testing.T) {
	tests := []struct {
		yaml string
		want string // "" means accepted
	}{
		{"subset: 100\n", ""},
		{"train_subset: 100\n", ""},
		{"subset: 100\ntrain_subset: 100\n", "key subset given twice"},
		{"epoch: 3\n", `line 1: unknown key "epoch": did you mean "epochs"?`},
		{"model: small\nbatchsize: 3\n", `line 2: unknown key "batchsize": did you mean "batch_size"?`},
		{"fisher:\n  image: 3\n", `unknown key "fisher.image": did you mean "fisher.images"?`},
		{"deficits:\n  - {deficit: blur, start: 0, stop: 2}\n", `unknown key "deficits.stop": the keys under deficits are deficit, end, start`},
		{"augment:\n  zzzzzz: true\n", `unknown key "augment.zzzzzz": the keys under augment are crop, hflip`},
	}
	for _, tc := range tests {
		cfg, err := runs.ParseConfig([]byte(tc.yaml), runs.Default())
		if tc.want == "" {
			if err != nil || cfg.TrainSubset != 100 {
				t.Errorf("%q: subset %d, %v", tc.yaml, cfg.TrainSubset, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "runs.") && !strings.HasPrefix(err.Error(), "runs: invalid config") {
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}

func TestSweepKeysOldSpellings(t *testing.T) {
	s, err := runs.ParseSweep([]byte("workers: 3\nbase:\n  train_subset: 64\n  batch_size: 32\n"))
	if err != nil || s.Jobs != 3 || s.Base.TrainSubset != 64 {
		t.Fatalf("old spellings: jobs %d subset %d, %v", s.Jobs, s.Base.TrainSubset, err)
	}
	if _, err := runs.ParseSweep([]byte("job: 3\n")); err == nil || !strings.Contains(err.Error(), `did you mean "jobs"?`) {
		t.Errorf("err = %v", err)
	}
	if _, err := runs.ParseSweep([]byte("base:\n  epoc: 3\n")); err == nil || !strings.Contains(err.Error(), `unknown key "base.epoc": did you mean "base.epochs"?`) {
		t.Errorf("err = %v", err)
	}
}

// yaml.v3 decodes 10.9 into an int field as 10; a fraction for a
// whole-number key is refused instead, in run configs and sweep specs
// alike, while a whole number written as a float decodes exactly.
func TestWholeNumberKeysRefuseFractions(t *testing.T) {
	tests := []struct {
		sweep bool
		yaml  string
		want  string // error substring; "" means accepted
	}{
		{false, "epochs: 10.9\n", "line 1: epochs 10.9 is not a whole number"},
		{false, "seed: 1.5\n", "seed 1.5 is not a whole number"},
		{false, "model: small\nsubset: 2500.7\n", "line 2: subset 2500.7 is not a whole number"},
		{false, "train_subset: 2500.7\n", "subset 2500.7 is not a whole number"},
		{false, "fisher: {images: 10, samples: 1, every: 0.5}\n", "fisher.every 0.5 is not a whole number"},
		{false, "keep_checkpoints: [4, 8.5]\n", "keep_checkpoints 8.5 is not a whole number"},
		{false, "deficits:\n  - {deficit: blur, start: 0, end: 2.5}\n", "line 2: deficits.end 2.5 is not a whole number"},
		{false, "epochs: .nan\n", "epochs .nan is not a whole number"},
		{false, "epochs: 10.0\n", ""},
		{false, "epochs: 1e1\n", ""},
		{false, "lr: 0.5\nepochs: 10\n", ""},
		{true, "removal: {deficit: blur, points: [0, 5.7], after: 3}\n", "line 1: removal.points 5.7 is not a whole number"},
		{true, "seeds: [0, 1.5]\n", "seeds 1.5 is not a whole number"},
		{true, "jobs: 2.5\n", "jobs 2.5 is not a whole number"},
		{true, "base:\n  epochs: 10.9\n", "base.epochs 10.9 is not a whole number"},
		{true, "base:\n  epochs: 10\nremoval: {deficit: blur, points: [0, 5], after: 3}\n", ""},
	}
	for _, tc := range tests {
		var err error
		epochs := 0
		if tc.sweep {
			var s runs.SweepSpec
			s, err = runs.ParseSweep([]byte(tc.yaml))
			epochs = s.Base.Epochs
		} else {
			var cfg runs.Config
			cfg, err = runs.ParseConfig([]byte(tc.yaml), runs.Default())
			epochs = cfg.Epochs
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.yaml, err)
		case tc.want == "" && epochs != 10:
			t.Errorf("%q: epochs %d, want 10", tc.yaml, epochs)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: err = %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
