package harness

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/oracle"
)

// The messages are ONNX Runtime 1.29's, as critlab doctor printed them
// (docs/cuda.md).
func TestCUDAHint(t *testing.T) {
	tests := []struct {
		name, msg, want string
	}{
		{"cpu build", "CUDA execution provider is not enabled in this build.", "without CUDA"},
		{"no providers", "Failed to load library /x/libonnxruntime_providers_shared.so with error: /x/libonnxruntime_providers_shared.so: cannot open shared object file: No such file or directory", "no CUDA provider beside it"},
		{"no cublas", "Failed to load library /x/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file: No such file or directory", "LD_LIBRARY_PATH"},
		{"no driver", "Failed to load library /x/libonnxruntime_providers_cuda.so with error: libcuda.so.1: cannot open shared object file: No such file or directory", "NVIDIA driver"},
		{"no gpu", `Failed to parse provider option "device_id": CUDA failure 100: no CUDA-capable device is detected`, "no usable GPU"},
		{"other", "something else", "must be a CUDA build"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cudaHint(errors.New(tc.msg), "/x/libonnxruntime.so"); !strings.Contains(got, tc.want) || !strings.HasSuffix(got, "docs/cuda.md describes it") {
				t.Errorf("cudaHint(%q) = %q, want it to contain %q", tc.msg, got, tc.want)
			}
		})
	}
}

// TestCUDAWithoutProvider asks for CUDA from a library without a CUDA
// provider beside it (the CPU build `make setup` installs): Open refuses
// before anything is built, and the doctor says the same, each pointing to
// docs/cuda.md.
func TestCUDAWithoutProvider(t *testing.T) {
	lib, err := FindLibrary("")
	if err != nil {
		oracle.Missing(t, "ONNX Runtime missing (run `make setup`): %v", err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(lib), "libonnxruntime_providers_shared.so")); err == nil {
		t.Skipf("%s has a CUDA provider beside it", lib)
	}
	for _, dev := range []string{"cuda", "cuda:1"} {
		rt, err := Open(RuntimeOptions{Device: dev, Threads: 1})
		if err == nil {
			rt.Close()
			t.Fatalf("Open(%s) with %s: no error", dev, lib)
		}
		want := "device " + dev
		if dev == "cuda" {
			want = "device cuda:0"
		}
		msg := err.Error()
		if !errors.Is(err, ErrNoCUDA) || !strings.HasPrefix(msg, want+": CUDA unavailable: Failed to load library") ||
			strings.Contains(msg, "onnxruntime_src") || !strings.Contains(msg, "make setup-cuda") || !strings.Contains(msg, "docs/cuda.md") {
			t.Errorf("Open(%s): %v", dev, err)
		}
	}
	// The doctor: the CPU works, the CUDA line is the reason's first line
	// and the error carries the hint.
	rep, err := Diagnose(RuntimeOptions{Device: "cuda", Threads: 1})
	if !errors.Is(err, ErrNoCUDA) || !strings.Contains(err.Error(), "docs/cuda.md") {
		t.Fatalf("Diagnose: %v", err)
	}
	if len(rep.Providers) != 2 || !rep.Providers[0].OK || rep.Providers[1].OK ||
		!strings.HasPrefix(rep.Providers[1].Status, "FAILED: device cuda:0: CUDA unavailable") || strings.Contains(rep.Providers[1].Status, "\n") {
		t.Errorf("Diagnose providers %+v", rep.Providers)
	}
	// The environment went with the failed Opens: the CPU still opens.
	rt, err := Open(RuntimeOptions{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	rt.Close()
}
