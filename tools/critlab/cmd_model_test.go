package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/golden"
	"github.com/critlab/critlab/models/graph"
)

// runModel runs `critlab model ARGS...` and returns what it wrote.
func runModel(t *testing.T, args ...string) (string, error) {
	t.Helper()
	stdout, stderr, err := runCLI(t, append([]string{"model"}, args...)...)
	return stdout + stderr, err
}

func TestModelBuildInspectGolden(t *testing.T) {
	tests := []struct {
		name   string
		build  []string
		golden string
	}{
		{"small", []string{"small", "--width", "0.25", "--seed", "1"}, "model_inspect_small.golden"},
		{"resnet18", []string{"--width", "0.25", "--classes", "100", "resnet18"}, "model_inspect_resnet18.golden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, tc.name+".onnx")
			out, err := runModel(t, append(append([]string{"build"}, tc.build...), "-o", file)...)
			if err != nil {
				t.Fatalf("build: %v\n%s", err, out)
			}
			if !strings.HasPrefix(out, "wrote "+file) {
				t.Errorf("build printed %q", out)
			}
			if _, err := graph.Load(file); err != nil {
				t.Fatal(err)
			}
			out, err = runModel(t, "inspect", file)
			if err != nil {
				t.Fatalf("inspect: %v\n%s", err, out)
			}
			got := strings.ReplaceAll(out, dir+string(filepath.Separator), "")
			golden.Check(t, tc.golden, []byte(got))
		})
	}
}

func TestModelErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.onnx")
	if err := os.WriteFile(bad, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		err  string
	}{
		{"unknown model", []string{"build", "-o", filepath.Join(dir, "x.onnx"), "vgg"}, `unknown model "vgg"`},
		{"no name", []string{"build", "-o", filepath.Join(dir, "x.onnx")}, "want one NAME argument"},
		{"no output", []string{"build", "small"}, "the output file is required"},
		{"extra argument", []string{"build", "small", "-o", filepath.Join(dir, "x.onnx"), "allcnn"}, `unexpected arguments ["allcnn"]`},
		{"bad width", []string{"build", "-o", filepath.Join(dir, "x.onnx"), "--width", "-2", "small"}, "width -2"},
		{"missing file", []string{"inspect", filepath.Join(dir, "none.onnx")}, "no such file"},
		{"not onnx", []string{"inspect", bad}, "not an ONNX model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runModel(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want containing %q\n%s", err, tc.err, out)
			}
		})
	}
}

func TestThousands(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", 11173962: "11,173,962", -1234: "-1,234"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}
