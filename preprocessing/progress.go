package preprocessing

import (
	"fmt"
	"io"
	"time"

	"github.com/critlab/critlab/internal/progress"
)

// progressBar is the progress line of a transfer. On a terminal it redraws
// in place at most five times a second; elsewhere (logs, pipes) it writes
// a line every 10 percent.
type progressBar struct {
	line        *progress.Line
	name        string
	start, done int64 // bytes present before this transfer, bytes so far (both counted in done)
	total       int64 // -1 when unknown
	t0          time.Time
	nextPct     int
}

func newProgressBar(w io.Writer, name string, start, total int64) *progressBar {
	p := &progressBar{line: progress.New(w, false, 200*time.Millisecond), name: name, start: start, done: start, total: total, t0: time.Now()}
	if total > 0 {
		p.nextPct = int(100*start/total)/10*10 + 10
	}
	return p
}

func (p *progressBar) Write(b []byte) (int, error) {
	if p == nil {
		return len(b), nil
	}
	p.done += int64(len(b))
	switch {
	case p.line.Live():
		p.line.Draw(false, p.text)
	case p.total > 0:
		if pct := int(100 * p.done / p.total); pct >= p.nextPct && pct < 100 {
			p.nextPct = pct/10*10 + 10
			p.line.Println(p.text())
		}
	}
	return len(b), nil
}

// finish prints the final state as a line of its own.
func (p *progressBar) finish() {
	if p != nil && (p.line.Live() || p.done > p.start) {
		p.line.Println(p.text())
	}
}

func (p *progressBar) text() string {
	secs := time.Since(p.t0).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(p.done-p.start) / secs
	}
	if p.total <= 0 {
		return fmt.Sprintf("%s  %s  %s/s  %s", p.name, mb(p.done), mb(int64(rate)), progress.Duration(time.Since(p.t0)))
	}
	frac := min(float64(p.done)/float64(p.total), 1)
	return fmt.Sprintf("%s %5.1f%% %s %s/%s  %s/s  %s elapsed, ETA %s", p.name, 100*frac,
		progress.Bar(int(frac*1000), 1000, 30), mb(p.done), mb(p.total), mb(int64(rate)),
		progress.Duration(time.Since(p.t0)), progress.ETA(float64(p.total-p.done), rate))
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
