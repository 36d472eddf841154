package runs

import (
	"bytes"
	"strings"
	"testing"
)

// The sweep's ETA is the epochs left at the mean measured epoch time,
// workers at a time; off a terminal only the lines print.
func TestSweepProgressETA(t *testing.T) {
	var buf bytes.Buffer
	p := NewSweepProgress(&buf, "demo", 3, false)
	plan := Plan{Runs: []PlannedRun{
		{ID: "a", Config: Config{Epochs: 10}},
		{ID: "b", Config: Config{Epochs: 10}},
		{ID: "c", Config: Config{Epochs: 10, BranchEpoch: 6}}, // trains 4
	}}
	p.begin(plan, 2)
	if got := p.eta(); got != "--" {
		t.Errorf("ETA before any epoch %q, want --", got)
	}
	p.EpochStart("a", 0, 10, 5)
	p.EpochEnd("a", MetricsRow{RunID: "a", EpochSeconds: 4}, 500)
	// 23 epochs left at 4 s, 2 at a time.
	if got := p.eta(); got != "46s" {
		t.Errorf("ETA %q, want 46s", got)
	}
	// A resumed run starts at its epoch: only its remaining epochs count.
	p.EpochStart("b", 8, 10, 5)
	if got := p.eta(); got != "30s" {
		t.Errorf("ETA after b resumed at 8 %q, want 30s (9+2+4 epochs)", got)
	}
	p.RunDone("c", nil)
	if got := p.eta(); got != "22s" {
		t.Errorf("ETA after c skipped %q, want 22s (9+2 epochs)", got)
	}
	p.Finish()
	out := buf.String()
	if strings.Contains(out, "\r") || strings.Count(out, "\n") != 1 ||
		!strings.HasPrefix(out, "demo: 1/3 runs done (0 failed) in 0s; trained 1 epochs here, ") || !strings.HasSuffix(out, " img/s\n") {
		t.Errorf("output off a terminal %q", out)
	}
}

// A run's progress off a terminal is one line per epoch.
func TestRunProgressLines(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf, false)
	acc := 0.5
	p.Logf("r", "r: started")
	p.EpochStart("r", 0, 2, 3)
	for s := 1; s <= 3; s++ {
		p.Step("r", s, 1, 0.5, 100)
	}
	p.EpochEnd("r", MetricsRow{RunID: "r", Deficit: "none", TestLoss: &acc, TestAcc: &acc, EpochSeconds: 1.5, ImagesPerSec: 100}, 150)
	want := "r: started\nr epoch 0/2 [none] lr 0 | train loss 0.0000 acc 0.0000 | test loss 0.5000 acc 0.5000 | 1.5s 100 img/s\n"
	if buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}
