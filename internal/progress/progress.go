// Package progress owns critlab's one progress line: a status line that
// redraws in place on a terminal and stays quiet anywhere else (logs,
// pipes, tests), with the bar, duration and ETA formats every command
// shares.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// IsTerminal reports whether w is a terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Line is a status line on w. It draws only when live (w is a terminal and
// the caller did not ask for quiet); Println prints above it either way.
// A Line is not safe for concurrent use: its owner locks.
type Line struct {
	w     io.Writer
	live  bool
	every time.Duration
	last  time.Time
	drawn bool
}

// New returns the status line of w, redrawn at most every interval.
func New(w io.Writer, quiet bool, every time.Duration) *Line {
	return &Line{w: w, live: !quiet && IsTerminal(w), every: every}
}

// Live reports whether the line draws.
func (l *Line) Live() bool { return l.live }

// Draw redraws the line with text() when live and the interval has passed
// (or force); text is not called otherwise.
func (l *Line) Draw(force bool, text func() string) {
	if !l.live {
		return
	}
	now := time.Now()
	if !force && now.Sub(l.last) < l.every {
		return
	}
	l.last = now
	fmt.Fprint(l.w, "\r\033[K"+text())
	l.drawn = true
}

// Clear erases the drawn line.
func (l *Line) Clear() {
	if l.drawn {
		fmt.Fprint(l.w, "\r\033[K")
		l.drawn = false
	}
}

// Println prints s as a line of its own above the status line (which the
// next Draw puts back).
func (l *Line) Println(s string) {
	l.Clear()
	fmt.Fprintln(l.w, s)
}

// Bar is a bar of width cells, done of total filled: [#####-----].
func Bar(done, total, width int) string {
	if total <= 0 {
		total = 1
	}
	n := max(0, min(done*width/total, width))
	return "[" + strings.Repeat("#", n) + strings.Repeat("-", width-n) + "]"
}

// Duration formats d to the second, short: 45s, 3m05s, 2h07m.
func Duration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// ETA is the time left for left units of work at rate units per second,
// "--" while the rate is unknown.
func ETA(left, rate float64) string {
	if rate <= 0 || left < 0 {
		return "--"
	}
	return Duration(time.Duration(left / rate * float64(time.Second)))
}
