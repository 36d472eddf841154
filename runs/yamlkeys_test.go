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
