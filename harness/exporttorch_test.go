package harness_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/pyenv"
)

// torchPythonEnv names a Python with PyTorch (tools/requirements-torch.txt)
// for the tests that run the PyTorch side; CI has none, so they skip.
const torchPythonEnv = "CRITLAB_TORCH_PYTHON"

func torchPython(t *testing.T) string {
	t.Helper()
	py := os.Getenv(torchPythonEnv)
	if py == "" {
		t.Skipf("set %s to a Python with tools/requirements-torch.txt to run tools/export_torch.py", torchPythonEnv)
	}
	if err := pyenv.Has(py, "torch", "torchvision", "onnx"); err != nil {
		t.Fatalf("%s: %v", torchPythonEnv, err)
	}
	return py
}

// TestExportTorchErrors: an export PyTorch cannot do ends in one line on
// stderr (model, what failed, the fix, the log with the full trace), not
// in the graph dump and traceback torch.onnx.export prints; --verbose
// shows those; an export that works leaves no log behind; a StochasticDepth
// critlab cannot train with --dropout is refused in one line too.
func TestExportTorchErrors(t *testing.T) {
	py := torchPython(t)
	script, err := filepath.Abs(filepath.Join("..", "tools", "export_torch.py"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	// svdvals has no ONNX symbolic; the other net exports.
	const src = `import torch, torch.nn as nn
class Svd(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(3, 4, 3), nn.Linear(4, 10)
    def forward(self, x):
        return self.fc(torch.linalg.svdvals(self.conv(x).flatten(2)))
def bad():
    return Svd()
def good():
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
def sdbatch():
    from torchvision.ops import StochasticDepth
    return nn.Sequential(nn.Conv2d(3, 4, 3), StochasticDepth(0.2, "batch"), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))
`
	if err := os.WriteFile(filepath.Join(dir, "nets.py"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	const oneLine = "export_torch: nets.py:bad: torch.onnx.export failed: UnsupportedOperatorError: " +
		"Exporting the operator 'aten::linalg_svdvals' to ONNX opset version 17 is not supported; fix: replace that op"
	for _, tc := range []struct {
		name, module string
		verbose, ok  bool
	}{
		{"fails", "bad", false, false},
		{"fails verbose", "bad", true, false},
		{"exports", "good", false, true},
		{"batch-mode StochasticDepth", "sdbatch", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := tc.module + ".onnx"
			args := []string{script, "--module", "nets.py:" + tc.module, "-o", out}
			if tc.verbose {
				args = append(args, "--verbose")
			}
			if tc.module == "sdbatch" {
				args = append(args, "--dropout")
			}
			cmd := exec.Command(py, args...)
			cmd.Dir = dir
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			log := filepath.Join(dir, tc.module+".export.log")
			defer os.Remove(log)
			_, logErr := os.Stat(log)
			if tc.ok {
				if err != nil {
					t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
				}
				if _, err := os.Stat(filepath.Join(dir, out)); err != nil {
					t.Error(err)
				}
				if logErr == nil {
					t.Errorf("a successful export left %s", log)
				}
				return
			}
			if _, ok := err.(*exec.ExitError); !ok {
				t.Fatalf("want exit status 1, got %v", err)
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if tc.module == "sdbatch" {
				const want = "export_torch: nets.py:sdbatch: StochasticDepth 1: mode='batch' drops the whole batch at once"
				if len(lines) != 1 || !strings.HasPrefix(last, want) {
					t.Errorf("stderr\n%s\nwant one line starting\n%s", stderr.String(), want)
				}
				return
			}
			if !strings.HasPrefix(last, oneLine) {
				t.Errorf("last stderr line\n%s\nwant prefix\n%s", last, oneLine)
			}
			if tc.verbose {
				if !strings.Contains(stderr.String(), "Traceback") || logErr == nil {
					t.Errorf("--verbose: want the traceback on stderr and no log; log: %v, stderr:\n%s", logErr, stderr.String())
				}
				return
			}
			if len(lines) != 1 || stdout.Len() != 0 {
				t.Errorf("want one line on stderr and nothing on stdout, got stdout %d bytes, stderr:\n%s", stdout.Len(), stderr.String())
			}
			if !strings.HasSuffix(last, "(full trace: "+tc.module+".export.log, or rerun with --verbose)") {
				t.Errorf("the line does not name the log: %s", last)
			}
			trace, err := os.ReadFile(log)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"Traceback", "aten::linalg_svdvals", "graph("} {
				if !strings.Contains(string(trace), want) {
					t.Errorf("%s lacks %q", log, want)
				}
			}
		})
	}
}
