package preprocessing

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progressBar writes a one-line progress bar for a transfer. On a terminal
// it redraws the line in place at most five times a second; elsewhere (logs,
// pipes) it writes a line every 10 percent.
type progressBar struct {
	w           io.Writer
	name        string
	start, done int64 // bytes present before this transfer, bytes so far (both counted in done)
	total       int64 // -1 when unknown
	t0, last    time.Time
	tty         bool
	nextPct     int
	drawn       bool
}

func newProgressBar(w io.Writer, name string, start, total int64) *progressBar {
	p := &progressBar{w: w, name: name, start: start, done: start, total: total, t0: time.Now()}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.tty = true
		}
	}
	if total > 0 {
		p.nextPct = int(100*start/total)/10*10 + 10
	}
	return p
}

func (p *progressBar) Write(b []byte) (int, error) {
	if p == nil || p.w == nil {
		return len(b), nil
	}
	p.done += int64(len(b))
	now := time.Now()
	switch {
	case p.tty:
		if now.Sub(p.last) >= 200*time.Millisecond {
			p.last = now
			fmt.Fprintf(p.w, "\r%s", p.line(now))
			p.drawn = true
		}
	case p.total > 0:
		if pct := int(100 * p.done / p.total); pct >= p.nextPct && pct < 100 {
			p.nextPct = pct/10*10 + 10
			fmt.Fprintln(p.w, p.line(now))
		}
	}
	return len(b), nil
}

// finish draws the final state and ends the line.
func (p *progressBar) finish() {
	if p == nil || p.w == nil {
		return
	}
	if p.tty {
		fmt.Fprintf(p.w, "\r%s\n", p.line(time.Now()))
	} else if p.done > p.start || p.drawn {
		fmt.Fprintln(p.w, p.line(time.Now()))
	}
}

func (p *progressBar) line(now time.Time) string {
	secs := now.Sub(p.t0).Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(p.done-p.start) / secs
	}
	if p.total <= 0 {
		return fmt.Sprintf("%s  %s  %s/s", p.name, mb(p.done), mb(int64(rate)))
	}
	frac := min(float64(p.done)/float64(p.total), 1)
	const width = 30
	n := int(frac * width)
	bar := strings.Repeat("=", n)
	if n < width {
		bar += ">" + strings.Repeat(" ", width-n-1)
	}
	eta := "--"
	if rate > 0 {
		eta = (time.Duration(float64(p.total-p.done)/rate) * time.Second).Round(time.Second).String()
	}
	return fmt.Sprintf("%s %5.1f%% [%s] %s/%s  %s/s  ETA %s", p.name, 100*frac, bar, mb(p.done), mb(p.total), mb(int64(rate)), eta)
}

func mb(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
