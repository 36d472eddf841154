package main

import (
	"bytes"
	"context"
	"slices"
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
