package main

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
)

// runCLI runs `critlab ARGS...` as main would and returns what it wrote.
func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	err = run(context.Background(), &o, &e, append([]string{"critlab"}, args...))
	return o.String(), e.String(), err
}

func TestHoistFlags(t *testing.T) {
	cmds := newApp().Commands
	tests := []struct {
		in, want []string
	}{
		{[]string{"critlab", "export", "ck.ckpt", "-o", "x.onnx", "--model", "m.onnx"},
			[]string{"critlab", "export", "-o", "x.onnx", "--model", "m.onnx", "ck.ckpt"}},
		{[]string{"critlab", "model", "build", "small", "--width=0.5", "-o", "s.onnx"},
			[]string{"critlab", "model", "build", "--width=0.5", "-o", "s.onnx", "small"}},
		// a boolean flag takes no value: the argument after it stays positional
		{[]string{"critlab", "data", "fetch", "--force", "cifar10", "--dir", "d"},
			[]string{"critlab", "data", "fetch", "--force", "--dir", "d", "cifar10"}},
		{[]string{"critlab", "report", "dir", "--", "-odd"},
			[]string{"critlab", "report", "dir", "--", "-odd"}},
		{[]string{"critlab", "--help"}, []string{"critlab", "--help"}},
	}
	for _, tc := range tests {
		if got := hoistFlags(cmds, tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("hoistFlags(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// The entry points a new user tries first answer in one line (or the
// command's help), and a typo names the nearest command or flag.
func TestHelpVersionAndDidYouMean(t *testing.T) {
	tests := []struct {
		args    []string
		out     string // in stdout
		errText string // the whole error, "" for none
	}{
		{args: []string{"--version"}, out: "critlab version dev"},
		{args: []string{"version"}, out: "critlab dev"},
		{args: []string{"help"}, out: "COMMANDS:"},
		{args: []string{"help", "train"}, out: "critlab train - train one run"},
		{args: []string{"trian"}, errText: `unknown command "trian"; did you mean "train"? (see critlab --help)`},
		{args: []string{"help", "trian"}, errText: `unknown command "trian"; did you mean "train"? (see critlab --help)`},
		{args: []string{"data", "fetsh"}, errText: `unknown command "data fetsh"; did you mean "fetch"? (see critlab data --help)`},
		{args: []string{"train", "--bacth-size", "3"}, errText: "train: unknown flag --bacth-size; did you mean --batch-size? (see critlab train --help)"},
		{args: []string{"--bogus"}, errText: "unknown flag --bogus; did you mean --version? (see critlab --help)"},
		{args: []string{"model", "build", "--widht", "2"}, errText: "model build: unknown flag --widht; did you mean --width? (see critlab model build --help)"},
		{args: []string{"data", "info", "--per-clas", "2"}, errText: "data info: unknown flag --per-clas; did you mean --per-class? (see critlab data info --help)"},
		{args: []string{"sweep", "status", "--bogus-flag"}, errText: "sweep status: unknown flag --bogus-flag (see critlab sweep status --help)"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, stderr, err := runCLI(t, tt.args...)
			if tt.errText != "" {
				if err == nil || err.Error() != tt.errText {
					t.Fatalf("error %v, want %q", err, tt.errText)
				}
				if out != "" || stderr != "" {
					t.Errorf("printed more than the one-line error: %q %q", out, stderr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, tt.out) {
				t.Errorf("stdout %q lacks %q", out, tt.out)
			}
		})
	}
}
