package runs_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
)

// fakeSlurm puts sbatch, squeue and scancel scripts first on PATH: sbatch
// logs its arguments (one job a line) and prints ids from 101, squeue
// prints the file queue, scancel logs its arguments. It returns the
// directory that holds the logs and the queue.
func fakeSlurm(t *testing.T) string {
	dir := t.TempDir()
	scripts := map[string]string{
		"sbatch":  `n=$(cat "$D/n" 2>/dev/null || echo 100); n=$((n+1)); echo $n >"$D/n"; echo "$n $*" >>"$D/sbatch.log"; echo "$n;cluster"`,
		"squeue":  `cat "$D/queue" 2>/dev/null; true`,
		"scancel": `echo "$*" >>"$D/scancel.log"`,
	}
	for name, body := range scripts {
		script := "#!/bin/sh\nD=" + dir + "\n" + body + "\n"
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	return dir
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// submitted returns, per job line of the fake sbatch's log, the id and
// the arguments that the test checks.
func submitted(t *testing.T, fake string, from int) []string {
	var out []string
	for _, line := range readLines(t, filepath.Join(fake, "sbatch.log"))[from:] {
		var keep []string
		for _, f := range strings.Fields(line) {
			for _, p := range []string{"--array=", "--dependency=", "--kill-on-invalid-dep", "--cpus-per-task=", "--gres=", "--partition=", "--requeue", "--signal=", "--account=", "run-point", "collect"} {
				if strings.HasPrefix(f, p) {
					keep = append(keep, f)
				}
			}
		}
		id, _, _ := strings.Cut(line, " ")
		out = append(out, id+" "+strings.Join(keep, " "))
	}
	return out
}

func TestSubmitSweep(t *testing.T) {
	fake := fakeSlurm(t)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "sw")
	spec := pointSweep()
	spec.Base.Threads = 0 // taken from cpus
	spec.Slurm = &runs.SlurmSpec{Partition: "gpu", CPUs: 4, GPUs: 1, Requeue: true, Binary: "/opt/critlab", Args: []string{"--account=lab"}}
	b := &runstest.Backend{}
	sub, err := runs.SubmitSweep(ctx, spec, dir, runs.SlurmOptions{Backend: b, Throttle: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Independent runs in one array; the three that start from the trunk
	// in one array after exactly the trunk's task; the collector after all.
	run := "--partition=gpu --cpus-per-task=4 --gres=gpu:1 --requeue --signal=B:USR1@120 --account=lab"
	want := []string{
		"101 " + run + " --array=0,1 run-point --requeue",
		"102 " + run + " --array=2,3,4%2 --dependency=afterok:101_0 --kill-on-invalid-dep=yes run-point --requeue",
		"103 --partition=gpu --account=lab --dependency=afterany:101:102 collect",
	}
	if got := submitted(t, fake, 0); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("sbatch calls\n got %q\nwant %q", got, want)
	}
	if sub.Submitted != 5 || sub.Collect != "103" || sub.Jobs["removal-T004-s0"] != "102_3" {
		t.Errorf("submission %+v", sub)
	}
	log := readLines(t, filepath.Join(fake, "sbatch.log"))[0]
	if !strings.Contains(log, "--wrap=exec /opt/critlab sweep run-point "+dir+" --requeue") {
		t.Errorf("job command: %s", log)
	}
	cfg, err := runs.LoadConfig(filepath.Join(dir, "removal-T002-s0", runs.ConfigFile), runs.Config{})
	if err != nil || cfg.Threads != 4 {
		t.Errorf("run config written at submission: %v, threads %d", err, cfg.Threads)
	}

	// Again while the jobs live: nothing submitted twice, a new collector
	// after the live jobs. The independent point finished meanwhile.
	if _, err := runs.RunPoint(ctx, dir, 1, runs.PointOptions{Backend: b}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(fake, "queue"), []byte("101_0|RUNNING|None\n102_2|PENDING|Dependency\n102_3|PENDING|Dependency\n102_4|PENDING|Dependency\n"), 0o644)
	sub, err = runs.SubmitSweep(ctx, spec, dir, runs.SlurmOptions{Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	if got := submitted(t, fake, 3); len(got) != 1 || got[0] != "104 --partition=gpu --account=lab --dependency=afterany:101_0:102_2:102_3:102_4 collect" || sub.Submitted != 0 || sub.Finished != 1 {
		t.Fatalf("second submission: %q, %+v", got, sub)
	}
	jobs, err := runs.SlurmJobs(ctx, dir)
	if err != nil || jobs["trunk-s0"].State != runs.PointRunning || jobs["removal-T002-s0"].Reason != "Dependency" || jobs["removal-T000-s0"].State != "" {
		t.Fatalf("jobs %v %+v", err, jobs)
	}

	// The trunk's job died: its dependents wait forever. A third
	// submission cancels them and submits the four runs again.
	os.WriteFile(filepath.Join(fake, "queue"), []byte("102_2|PENDING|DependencyNeverSatisfied\n102_3|PENDING|DependencyNeverSatisfied\n102_4|PENDING|DependencyNeverSatisfied\n"), 0o644)
	if _, err := runs.SubmitSweep(ctx, spec, dir, runs.SlurmOptions{Backend: b}); err != nil {
		t.Fatal(err)
	}
	want = []string{
		"105 " + run + " --array=0 run-point --requeue",
		"106 " + run + " --array=2,3,4 --dependency=afterok:105_0 --kill-on-invalid-dep=yes run-point --requeue",
		"107 --partition=gpu --account=lab --dependency=afterany:105:106 collect",
	}
	if got := submitted(t, fake, 4); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("third submission\n got %q\nwant %q", got, want)
	}
	if got := readLines(t, filepath.Join(fake, "scancel.log")); len(got) != 1 || got[0] != "102_2 102_3 102_4" {
		t.Errorf("scancel %q", got)
	}
}
