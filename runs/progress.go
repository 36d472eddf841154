package runs

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/critlab/critlab/internal/progress"
)

// Progress receives a run's progress. Implementations must be safe for
// concurrent use: sweeps train several runs at once.
type Progress interface {
	// Logf reports an event (resume, skip, finish) of a run.
	Logf(run, format string, args ...any)
	// EpochStart announces an epoch of steps training steps.
	EpochStart(run string, epoch, epochs, steps int)
	// Step reports the running means of the epoch after a step.
	Step(run string, step int, loss, acc, imagesPerSec float64)
	// EpochEnd reports a finished epoch that trained on images images.
	EpochEnd(run string, row MetricsRow, images int)
}

// NopProgress discards everything.
func NopProgress() Progress { return nop{} }

type nop struct{}

func (nop) Logf(string, string, ...any)                 {}
func (nop) EpochStart(string, int, int, int)            {}
func (nop) Step(string, int, float64, float64, float64) {}
func (nop) EpochEnd(string, MetricsRow, int)            {}

// NewProgress returns the progress of one run: a bar that redraws in place
// when w is a terminal and not quiet, and a line per finished epoch.
func NewProgress(w io.Writer, quiet bool) Progress {
	return &epochProgress{line: progress.New(w, quiet, 100*time.Millisecond)}
}

// epochProgress draws a bar per epoch, timm style, with the run's elapsed
// time and the time left (the epochs left at the mean measured epoch time):
//
//	small-cifar10-s0 epoch 3/20 [#########-----------]  45/97 loss 1.2345 acc 0.5421 2150 img/s 1m05s elapsed, ETA 6m40s
//
// and, when the epoch ends, a line with the test metrics.
type epochProgress struct {
	mu         sync.Mutex
	line       *progress.Line
	t0         time.Time // first epoch's start
	epochT0    time.Time
	epoch      int
	epochs     int
	steps      int
	epochSecs  float64 // sum over the epochs finished here
	epochsDone int
}

func (p *epochProgress) Logf(run, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line.Println(fmt.Sprintf(format, args...))
}

func (p *epochProgress) EpochStart(run string, epoch, epochs, steps int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.epoch, p.epochs, p.steps = epoch, epochs, steps
	p.epochT0 = time.Now()
	if p.t0.IsZero() {
		p.t0 = p.epochT0
	}
}

func (p *epochProgress) Step(run string, step int, loss, acc, ips float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line.Draw(step == p.steps, func() string {
		// The epoch's remaining steps at its step rate, then the epochs
		// left at the mean epoch time (evaluation included) once known.
		stepRate := float64(step) / max(time.Since(p.epochT0).Seconds(), 1e-9)
		perEpoch := float64(p.steps) / max(stepRate, 1e-9)
		if p.epochsDone > 0 {
			perEpoch = p.epochSecs / float64(p.epochsDone)
		}
		left := float64(p.steps-step)/max(stepRate, 1e-9) + float64(p.epochs-p.epoch-1)*perEpoch
		return fmt.Sprintf("%s epoch %d/%d %s %*d/%d loss %.4f acc %.4f %.0f img/s %s elapsed, ETA %s",
			run, p.epoch, p.epochs, progress.Bar(step, p.steps, 20), digits(p.steps), step, p.steps, loss, acc, ips,
			progress.Duration(time.Since(p.t0)), progress.ETA(left, 1))
	})
}

func (p *epochProgress) EpochEnd(run string, r MetricsRow, images int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.epochSecs += r.EpochSeconds
	p.epochsDone++
	p.line.Println(epochLine(r, p.epochs))
}

// epochLine is the one-line summary of an epoch.
func epochLine(r MetricsRow, epochs int) string {
	of := ""
	if epochs > 0 {
		of = fmt.Sprintf("/%d", epochs)
	}
	return fmt.Sprintf("%s epoch %d%s [%s] lr %.4g | train loss %.4f acc %.4f | %s | %.1fs %.0f img/s",
		r.RunID, r.Epoch, of, r.Deficit, r.LR, r.TrainLoss, r.TrainAcc, testColumns(r), r.EpochSeconds, r.ImagesPerSec)
}

// testColumns formats an epoch's test metrics, absent when the epoch was
// not evaluated (Config.EvalEvery).
func testColumns(r MetricsRow) string {
	if r.TestLoss == nil || r.TestAcc == nil {
		return "test not evaluated"
	}
	return fmt.Sprintf("test loss %.4f acc %.4f", *r.TestLoss, *r.TestAcc)
}

func digits(n int) int { return len(fmt.Sprint(n)) }

// SweepProgress shows one bar for a whole sweep: runs and epochs done out
// of the total, elapsed time, the time left and the epoch each running run
// is in. Run events are printed as lines above it; per-epoch lines only
// when Verbose.
type SweepProgress struct {
	mu      sync.Mutex
	line    *progress.Line
	name    string
	total   int
	done    int
	failed  int
	running map[string]string
	start   time.Time
	// left is the epochs each run has still to train (see begin).
	left    map[string]int
	workers int
	// epochs, images, epochSecs: the epochs finished in this process, the
	// images they trained on and the sum of their times.
	epochs    int
	images    int64
	epochSecs float64
	// Verbose prints a line per finished epoch of every run.
	Verbose bool
}

// NewSweepProgress returns the progress of a sweep of total runs; the bar
// redraws in place when w is a terminal and not quiet.
func NewSweepProgress(w io.Writer, name string, total int, quiet bool) *SweepProgress {
	return &SweepProgress{line: progress.New(w, quiet, 200*time.Millisecond), name: name, total: total,
		running: map[string]string{}, left: map[string]int{}, workers: 1, start: time.Now()}
}

// begin records the plan's epochs to train and the runs trained at once,
// which the ETA needs.
func (p *SweepProgress) begin(plan Plan, workers int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.workers = max(1, workers)
	for _, r := range plan.Runs {
		p.left[r.ID] = r.Config.Epochs - r.Config.BranchEpoch
	}
}

// eta is the sweep's time left: the epochs left, trained workers at a time
// at the mean epoch time measured so far.
func (p *SweepProgress) eta() string {
	if p.epochs == 0 {
		return "--"
	}
	left := 0
	for _, n := range p.left {
		left += n
	}
	return progress.ETA(float64(left)*p.epochSecs/float64(p.epochs), float64(p.workers))
}

func (p *SweepProgress) draw(force bool) {
	p.line.Draw(force, func() string {
		ids := sortedKeys(p.running)
		parts := make([]string, 0, len(ids))
		for _, id := range ids {
			parts = append(parts, id+" "+p.running[id])
		}
		line := fmt.Sprintf("%s %s %d/%d runs %s elapsed, ETA %s | %s", p.name, progress.Bar(p.done, p.total, 20), p.done, p.total,
			progress.Duration(time.Since(p.start)), p.eta(), strings.Join(parts, " | "))
		if len(line) > 160 {
			line = line[:157] + "..."
		}
		return line
	})
}

// Logf prints a line above the bar.
func (p *SweepProgress) Logf(run, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.line.Println(fmt.Sprintf(format, args...))
	p.draw(true)
}

// EpochStart records the epoch a run is in.
func (p *SweepProgress) EpochStart(run string, epoch, epochs, steps int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[run] = fmt.Sprintf("e%d/%d", epoch, epochs)
	p.left[run] = epochs - epoch
	p.draw(false)
}

// Step redraws the bar now and then.
func (p *SweepProgress) Step(run string, step int, loss, acc, ips float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(false)
}

// EpochEnd counts the epoch, and prints its line when Verbose.
func (p *SweepProgress) EpochEnd(run string, r MetricsRow, images int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.epochs++
	p.images += int64(images)
	p.epochSecs += r.EpochSeconds
	p.left[run] = max(0, p.left[run]-1)
	if p.Verbose {
		p.line.Println(epochLine(r, 0))
	}
	p.draw(false)
}

// RunDone counts a finished (or failed) run.
func (p *SweepProgress) RunDone(run string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, run)
	p.left[run] = 0
	p.done++
	if err != nil {
		p.failed++
	}
	p.draw(true)
}

// Finish clears the bar and prints the sweep's totals: runs, wall time,
// and the epochs and images trained in this process.
func (p *SweepProgress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	wall := time.Since(p.start)
	p.line.Println(fmt.Sprintf("%s: %d/%d runs done (%d failed) in %s; trained %d epochs here, %.0f img/s",
		p.name, p.done, p.total, p.failed, progress.Duration(wall), p.epochs, float64(p.images)/max(wall.Seconds(), 1e-9)))
}
