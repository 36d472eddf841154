package runs

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
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
	// EpochEnd reports a finished epoch.
	EpochEnd(run string, row MetricsRow)
}

// NopProgress discards everything.
func NopProgress() Progress { return nop{} }

type nop struct{}

func (nop) Logf(string, string, ...any)                 {}
func (nop) EpochStart(string, int, int, int)            {}
func (nop) Step(string, int, float64, float64, float64) {}
func (nop) EpochEnd(string, MetricsRow)                 {}

// IsTerminal reports whether w is a character device (a terminal), where
// progress bars redraw in place.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// NewProgress returns a bar that redraws in place when w is a terminal and
// not quiet, else one line per epoch (for logs).
func NewProgress(w io.Writer, quiet bool) Progress {
	return &epochProgress{w: w, bar: !quiet && IsTerminal(w), every: 100 * time.Millisecond}
}

// epochProgress draws a bar per epoch, timm style:
//
//	removal-T4-s0 epoch 3/20 [#########-----------]  45/97 loss 1.2345 acc 0.5421 2150 img/s
//
// and, when the epoch ends, a line with the test metrics.
type epochProgress struct {
	mu     sync.Mutex
	w      io.Writer
	bar    bool
	every  time.Duration
	last   time.Time
	drawn  bool
	epoch  int
	epochs int
	steps  int
}

func (p *epochProgress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (p *epochProgress) Logf(run, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, format+"\n", args...)
}

func (p *epochProgress) EpochStart(run string, epoch, epochs, steps int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.epoch, p.epochs, p.steps = epoch, epochs, steps
	p.last = time.Time{}
}

func (p *epochProgress) Step(run string, step int, loss, acc, ips float64) {
	if !p.bar {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if step < p.steps && now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	fmt.Fprintf(p.w, "\r\033[K%s epoch %d/%d %s %*d/%d loss %.4f acc %.4f %.0f img/s",
		run, p.epoch, p.epochs, bar(step, p.steps, 20), digits(p.steps), step, p.steps, loss, acc, ips)
	p.drawn = true
}

func (p *epochProgress) EpochEnd(run string, r MetricsRow) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintln(p.w, epochLine(r, p.epochs))
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

func bar(done, total, width int) string {
	if total <= 0 {
		total = 1
	}
	n := done * width / total
	n = max(0, min(n, width))
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

func digits(n int) int { return len(fmt.Sprint(n)) }

// SweepProgress shows one bar for a whole sweep: runs done out of the
// total and the epoch each running run is in. Run events are printed as
// lines above it; per-epoch lines only when Verbose.
type SweepProgress struct {
	mu      sync.Mutex
	w       io.Writer
	bar     bool
	name    string
	total   int
	done    int
	failed  int
	running map[string]string
	last    time.Time
	drawn   bool
	start   time.Time
	// Verbose prints a line per finished epoch of every run.
	Verbose bool
}

// NewSweepProgress returns the progress of a sweep of total runs; the bar
// redraws in place when w is a terminal and not quiet.
func NewSweepProgress(w io.Writer, name string, total int, quiet bool) *SweepProgress {
	return &SweepProgress{w: w, bar: !quiet && IsTerminal(w), name: name, total: total,
		running: map[string]string{}, start: time.Now()}
}

func (p *SweepProgress) clear() {
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
}

func (p *SweepProgress) draw(force bool) {
	if !p.bar {
		return
	}
	now := time.Now()
	if !force && now.Sub(p.last) < 200*time.Millisecond {
		return
	}
	p.last = now
	ids := sortedKeys(p.running)
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		parts = append(parts, id+" "+p.running[id])
	}
	line := fmt.Sprintf("%s %s %d/%d runs %s | %s", p.name, bar(p.done, p.total, 20), p.done, p.total,
		time.Since(p.start).Round(time.Second), strings.Join(parts, " | "))
	if len(line) > 160 {
		line = line[:157] + "..."
	}
	fmt.Fprint(p.w, "\r\033[K"+line)
	p.drawn = true
}

// Logf prints a line above the bar.
func (p *SweepProgress) Logf(run, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, format+"\n", args...)
	p.draw(true)
}

// EpochStart records the epoch a run is in.
func (p *SweepProgress) EpochStart(run string, epoch, epochs, steps int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running[run] = fmt.Sprintf("e%d/%d", epoch, epochs)
	p.draw(false)
}

// Step redraws the bar now and then.
func (p *SweepProgress) Step(run string, step int, loss, acc, ips float64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(false)
}

// EpochEnd prints the epoch's line when Verbose.
func (p *SweepProgress) EpochEnd(run string, r MetricsRow) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.Verbose {
		p.clear()
		fmt.Fprintln(p.w, epochLine(r, 0))
	}
	p.draw(false)
}

// RunDone counts a finished (or failed) run.
func (p *SweepProgress) RunDone(run string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.running, run)
	p.done++
	if err != nil {
		p.failed++
	}
	p.draw(true)
}

// Finish clears the bar and prints the sweep's totals.
func (p *SweepProgress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clear()
	fmt.Fprintf(p.w, "%s: %d/%d runs done (%d failed) in %s\n", p.name, p.done, p.total, p.failed, time.Since(p.start).Round(time.Second))
}
