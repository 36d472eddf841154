package main

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critlab/critlab/models/graph"
)

var updateModelGolden = flag.Bool("update-model", false, "rewrite testdata/model_*.golden")

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
			path := filepath.Join("testdata", tc.golden)
			if *updateModelGolden {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestModelBuildInspectGolden -update-model)", err)
			}
			if got != string(want) {
				t.Errorf("inspect output differs from %s (-update-model rewrites it)\ngot:\n%s\nwant:\n%s", path, got, want)
			}
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
