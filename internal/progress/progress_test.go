package progress

import (
	"bytes"
	"os"
	"testing"
	"time"
)

func TestFormats(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{Bar(0, 10, 10), "[----------]"},
		{Bar(5, 10, 10), "[#####-----]"},
		{Bar(12, 10, 10), "[##########]"},
		{Bar(1, 0, 4), "[####]"},
		{Duration(1400 * time.Millisecond), "1s"},
		{Duration(185 * time.Second), "3m05s"},
		{Duration(2*time.Hour + 7*time.Minute + 40*time.Second), "2h07m"},
		{ETA(100, 10), "10s"},
		{ETA(100, 0), "--"},
		{ETA(3600*3, 1), "3h00m"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// Off a terminal (a buffer, a file) the line never draws, and lines
// printed above it come through alone.
func TestQuietOffTerminal(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/log")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	for _, l := range []*Line{New(&buf, false, 0), New(f, false, 0)} {
		if l.Live() {
			t.Fatal("a buffer or a file is not a terminal")
		}
		l.Draw(true, func() string { t.Fatal("text drawn off a terminal"); return "" })
		l.Println("epoch 1")
	}
	if buf.String() != "epoch 1\n" {
		t.Errorf("buffer got %q", buf.String())
	}
}

// A live line redraws in place and is erased before a printed line.
func TestLiveRedraw(t *testing.T) {
	var buf bytes.Buffer
	l := &Line{w: &buf, live: true, every: time.Hour}
	l.Draw(true, func() string { return "a" })
	l.Draw(false, func() string { return "throttled" })
	l.Println("log")
	l.Draw(true, func() string { return "b" })
	if want := "\r\033[Ka\r\033[Klog\n\r\033[Kb"; buf.String() != want {
		t.Errorf("got %q, want %q", buf.String(), want)
	}
}
