package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/critlab/critlab/runs"
)

// TestSlurmSweep runs the demo sweep through a real Slurm cluster and
// locally, cancels the trunk's job while it trains, submits again, and
// checks that sweep.parquet is the local one, run for run and epoch for
// epoch. `make test-slurm` starts a throwaway cluster (tools/slurm-local.sh)
// and sets CRITLAB_TEST_SLURM=1, SLURM_CONF and CRITLAB_BIN (the binary the
// jobs run); CRITLAB_TEST_SLURM_SEEDS picks the seeds (default 0).
func TestSlurmSweep(t *testing.T) {
	if os.Getenv("CRITLAB_TEST_SLURM") == "" {
		t.Skip("needs a Slurm cluster: make test-slurm")
	}
	bin := os.Getenv("CRITLAB_BIN")
	if !filepath.IsAbs(bin) {
		t.Fatalf("CRITLAB_BIN=%q: want the absolute path of a critlab binary for the jobs", bin)
	}
	seeds := os.Getenv("CRITLAB_TEST_SLURM_SEEDS")
	if seeds == "" {
		seeds = "0"
	}
	root := t.TempDir()
	local, scheduled := filepath.Join(root, "local"), filepath.Join(root, "slurm")
	sweep := []string{"sweep", "--config", "../../configs/demo.yaml", "--seeds", seeds, "-q", "--no-report"}

	// Threads per run: 1 in both (2 workers on 2 cores; 1 CPU per job).
	start := time.Now()
	if _, stderr, err := runCLI(t, append(sweep, "--out", local, "-j", "2", "--cores", "2")...); err != nil {
		t.Fatalf("local sweep: %v\n%s", err, stderr)
	}
	t.Logf("local executor: %s", time.Since(start).Round(time.Second))

	start = time.Now()
	submit := append(sweep, "--out", scheduled, "--executor", "slurm", "--critlab-bin", bin, "--cpus-per-task", "1")
	if stdout, stderr, err := runCLI(t, submit...); err != nil {
		t.Fatalf("submit: %v\n%s%s", err, stdout, stderr)
	}

	// Cancel the trunk of the first seed once it has finished epochs.
	trunk := "trunk-s" + strings.Split(strings.Split(seeds, ",")[0], "-")[0]
	deadline := time.Now().Add(10 * time.Minute)
	for epochs(t, filepath.Join(scheduled, trunk)) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not reach epoch 3 in 10 minutes:\n%s", trunk, status(t, scheduled))
		}
		time.Sleep(time.Second)
	}
	jobs, err := runs.SlurmJobs(context.Background(), scheduled)
	if err != nil || jobs[trunk].State != runs.PointRunning {
		t.Fatalf("jobs: %v %+v", err, jobs)
	}
	if out, err := exec.Command("scancel", jobs[trunk].ID).CombinedOutput(); err != nil {
		t.Fatalf("scancel: %v %s", err, out)
	}
	waitForQueue(t, "critlab-demo")
	st, err := runs.SweepStatus(scheduled, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range st {
		if p.ID == trunk && (p.State != runs.PointStopped || p.Epoch < 3 || p.Epoch == p.Epochs) {
			t.Fatalf("cancelled trunk: %+v\n%s", p, status(t, scheduled))
		}
	}
	t.Logf("after scancel of %s (job %s):\n%s", trunk, jobs[trunk].ID, status(t, scheduled))

	if stdout, stderr, err := runCLI(t, submit...); err != nil {
		t.Fatalf("submit again: %v\n%s%s", err, stdout, stderr)
	}
	waitForQueue(t, "critlab-demo")
	t.Logf("slurm executor, with the cancel and resubmission: %s\n%s", time.Since(start).Round(time.Second), status(t, scheduled))
	log, _ := os.ReadFile(filepath.Join(scheduled, trunk, runs.LogFile))
	if !strings.Contains(string(log), trunk+": resumed from ") {
		t.Errorf("%s did not resume:\n%s", trunk, log)
	}
	got, want := sweepRows(t, scheduled), sweepRows(t, local)
	if len(got) != len(want) || len(want) == 0 {
		t.Fatalf("slurm sweep has %d rows, local %d\n%s", len(got), len(want), status(t, scheduled))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d differs\nslurm %s\nlocal %s", i, got[i], want[i])
		}
	}
	t.Logf("%d rows identical", len(want))
}

// epochs is the number of finished epochs in a run directory.
func epochs(t *testing.T, dir string) int {
	rows, err := runs.ReadMetrics(filepath.Join(dir, runs.MetricsFile))
	if err != nil {
		return 0
	}
	return len(rows)
}

func status(t *testing.T, dir string) string {
	jobs, err := runs.SlurmJobs(context.Background(), dir)
	if err != nil {
		return err.Error()
	}
	st, err := runs.SweepStatus(dir, jobs)
	if err != nil {
		return err.Error()
	}
	var b bytes.Buffer
	runs.WriteStatus(&b, st)
	return b.String()
}

// waitForQueue waits until squeue lists no job of that name.
func waitForQueue(t *testing.T, name string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Minute)
	for {
		out, err := exec.Command("squeue", "-h", "-n", name, "-o", "%i").Output()
		if err != nil {
			t.Fatalf("squeue: %v", err)
		}
		if len(bytes.TrimSpace(out)) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs still queued after 15 minutes:\n%s", out)
		}
		time.Sleep(2 * time.Second)
	}
}

// sweepRows reads sweep.parquet as text without the timing columns.
func sweepRows(t *testing.T, dir string) []string {
	rows, err := runs.ReadSweep(filepath.Join(dir, runs.SweepFile))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		m := r.Metrics()
		out[i] = fmt.Sprintf("%s %s %d %d %s %s %v %v %v %v %v %v %v %s", r.Variant, r.RunID, r.Point, r.Epoch, r.Deficit, r.DeficitWindows,
			r.LR, r.TrainLoss, r.TrainAcc, deref(m.TestLoss), deref(m.TestAcc), deref(r.FisherTrace), r.Seed, r.ConfigHash)
	}
	return out
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
