package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sweep --dry-run makes the checks of the real sweep, and sweep and
// report refuse flags they would otherwise ignore or replace by a default;
// nothing is written either way.
func TestSweepAndReportRefuseBadFlags(t *testing.T) {
	dir := t.TempDir()
	spec := filepath.Join(dir, "s.yaml")
	if err := os.WriteFile(spec, []byte(testSweep), 0o644); err != nil {
		t.Fatal(err)
	}
	badDeficit := filepath.Join(dir, "blurr.yaml")
	if err := os.WriteFile(badDeficit, []byte(strings.ReplaceAll(testSweep, "deficit: blur", "deficit: blurr")), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "sw")
	sweep := func(cfg string, args ...string) []string {
		return append([]string{"sweep", "--config", cfg, "--out", out}, args...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"dry run, unknown deficit", sweep(badDeficit, "--dry-run"), `unknown deficit "blurr"`},
		{"dry run, unknown model", sweep(spec, "--dry-run", "--model", "nosuch"), `unknown model "nosuch"`},
		{"dry run, negative width", sweep(spec, "--dry-run", "--width", "-1"), "width -1"},
		{"dry run, negative subset", sweep(spec, "--dry-run", "--subset", "-5"), "subset -5"},
		{"dry run, bad device", sweep(spec, "--dry-run", "--device", "gpu"), `device "gpu"`},
		{"dry run, bad executor", sweep(spec, "--dry-run", "--executor", "bogus"), `--executor "bogus"`},
		{"slurm flag without slurm", sweep(spec, "--partition", "p"), "add --executor slurm"},
		{"requeue without slurm", sweep(spec, "--requeue"), "--requeue is a setting of the slurm executor"},
		{"time with plan executor", sweep(spec, "--executor", "plan", "--time", "1:00:00"), "--time is a setting of the slurm executor"},
		{"negative jobs", sweep(spec, "--jobs", "-4"), "--jobs -4"},
		{"negative cores", sweep(spec, "--cores", "-4"), "--cores -4"},
		{"negative threads", sweep(spec, "--threads", "-3"), "--threads -3"},
		{"repeated seed", sweep(spec, "--seeds", "1,1,1"), "seed 1 twice"},
		{"seed in a range and a list", sweep(spec, "--seeds", "0-4,2"), "seed 2 twice"},
		{"report margin NaN", []string{"report", "--margin", "NaN", dir}, "--margin NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, _, err := runRuns(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one with %q; stdout:\n%s", err, tc.want, stdout)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s was written", out)
			}
		})
	}
}
