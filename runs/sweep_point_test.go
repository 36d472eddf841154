package runs_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/critlab/critlab/internal/dirlock"
	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
)

// pointSweep has a trunk and three runs that start from it.
func pointSweep() runs.SweepSpec {
	s := tinySweep()
	s.Seeds = []int64{0}
	s.Removal = &runs.RemovalSpec{Deficit: "blur", Points: []int{0, 2, 4}, After: 2, Branch: true,
		Controls: runs.Controls{LRRestart: true}}
	return s
}

// sweepMetrics reads sweep.parquet as text, without the timing columns,
// which no two runs share.
func sweepMetrics(t *testing.T, dir string) []string {
	t.Helper()
	rows, err := runs.ReadSweep(filepath.Join(dir, runs.SweepFile))
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		loss, acc := *r.TestLoss, *r.TestAcc
		r.EpochSeconds, r.ImagesPerSec, r.TestLoss, r.TestAcc = 0, 0, nil, nil
		out[i] = fmt.Sprintf("%+v test %v %v", r, loss, acc)
	}
	return out
}

func states(points []runs.PointStatus) string {
	var s []string
	for _, p := range points {
		s = append(s, fmt.Sprintf("%s:%s:%d/%d", p.ID, p.State, p.Epoch, p.Epochs))
	}
	return strings.Join(s, " ")
}

// Running every point on its own (what scheduler jobs do) and collecting
// gives the sweep.parquet of RunSweep.
func TestRunPointMatchesRunSweep(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	local, points := filepath.Join(root, "local"), filepath.Join(root, "points")
	if _, err := runs.RunSweep(ctx, pointSweep(), local, runs.SweepOptions{Backend: &runstest.Backend{}, Jobs: 2, Cores: 2}); err != nil {
		t.Fatal(err)
	}

	b := &runstest.Backend{}
	plan, err := runs.PrepareSweep(pointSweep(), points, b, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(ids(plan)); got != "[trunk-s0 removal-T000-s0 removal-T002-s0 removal-T004-s0 control-lr-restart-T004-s0]" {
		t.Fatalf("plan %s", got)
	}
	st, err := runs.SweepStatus(points, nil)
	if err != nil || states(st) != "trunk-s0:planned:0/4 removal-T000-s0:planned:0/2 removal-T002-s0:planned:0/4 removal-T004-s0:planned:0/6 control-lr-restart-T004-s0:planned:0/6" {
		t.Fatalf("status before: %v %s", err, states(st))
	}
	// A branched point before its trunk: refused, also after a wait.
	_, err = runs.RunPoint(ctx, points, 2, runs.PointOptions{Backend: b, Wait: 10 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "starts from trunk-s0, not finished yet") {
		t.Fatalf("point before its trunk: %v", err)
	}
	if _, err := runs.RunPoint(ctx, points, 5, runs.PointOptions{Backend: b}); err == nil || !strings.Contains(err.Error(), "runs 0 to 4, not 5") {
		t.Fatalf("index out of range: %v", err)
	}
	if _, err := runs.CollectSweep(points); err == nil || !strings.Contains(err.Error(), "5 of 5 runs not finished") {
		t.Fatalf("collect before any run: %v", err)
	}
	for i := range plan.Runs {
		res, err := runs.RunPoint(ctx, points, i, runs.PointOptions{Backend: b, Threads: 1})
		if err != nil || res.Status != runs.Trained {
			t.Fatalf("point %d: %v", i, err)
		}
	}
	steps := b.Steps.Load()
	if res, err := runs.RunPoint(ctx, points, 0, runs.PointOptions{Backend: b}); err != nil || res.Status != runs.Skipped || b.Steps.Load() != steps {
		t.Fatalf("second run of a point: %v, status %v", err, res.Status)
	}
	if _, err := runs.CollectSweep(points); err != nil {
		t.Fatal(err)
	}
	got, want := sweepMetrics(t, points), sweepMetrics(t, local)
	if len(want) != 22 || len(got) != len(want) {
		t.Fatalf("%d rows, RunSweep %d, want 22", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d differs from RunSweep's\n got %s\nwant %s", i, got[i], want[i])
		}
	}
	st, _ = runs.SweepStatus(points, nil)
	if states(st) != "trunk-s0:finished:4/4 removal-T000-s0:finished:2/2 removal-T002-s0:finished:4/4 removal-T004-s0:finished:6/6 control-lr-restart-T004-s0:finished:6/6" {
		t.Fatalf("status after: %s", states(st))
	}
}

// SweepStatus tells a run stopped by a signal from a failed one, and
// reports what a scheduler says of live jobs.
func TestSweepStatus(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "sw")
	if _, err := runs.PrepareSweep(pointSweep(), dir, &runstest.Backend{}, 1); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := runs.RunPoint(cancelled, dir, 1, runs.PointOptions{Backend: &runstest.Backend{}}); err == nil {
		t.Fatal("cancelled point finished")
	}
	os.WriteFile(filepath.Join(dir, "removal-T002-s0", runs.LogFile), []byte("2026-01-01 00:00:00 stopped: load checkpoint: disk on fire\n"), 0o644)
	jobs := map[string]runs.Job{
		"trunk-s0":                   {ID: "7_0", State: runs.PointRunning},
		"removal-T004-s0":            {ID: "8_3", State: runs.PointQueued, Reason: "Dependency"},
		"control-lr-restart-T004-s0": {ID: "8_4", Log: filepath.Join(t.TempDir(), "none.out")},
	}
	st, err := runs.SweepStatus(dir, jobs)
	if err != nil {
		t.Fatal(err)
	}
	want := "trunk-s0:running:0/4 removal-T000-s0:stopped:0/2 removal-T002-s0:failed:0/4 removal-T004-s0:queued:0/6 control-lr-restart-T004-s0:planned:0/6"
	if states(st) != want || st[2].Detail != "load checkpoint: disk on fire" || st[3].Detail != "Dependency" || st[0].Job != "7_0" {
		t.Fatalf("status\n got %s %+v\nwant %s", states(st), st, want)
	}
	var out strings.Builder
	if err := runs.WriteStatus(&out, st); err != nil || !strings.Contains(out.String(), "5 runs: 1 running, 1 queued, 1 stopped, 1 failed, 1 planned") {
		t.Fatalf("table:\n%s", out.String())
	}
	// A run that a local process trains (it holds the run's lock) is
	// running, whatever the scheduler knows.
	lock, err := dirlock.Acquire(filepath.Join(dir, "removal-T000-s0"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	if st, _ = runs.SweepStatus(dir, jobs); st[1].State != runs.PointRunning || st[1].Detail != fmt.Sprintf("PID %d", os.Getpid()) {
		t.Fatalf("locked run: %+v, want running with this PID", st[1])
	}
}
