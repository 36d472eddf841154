package harness

import (
	"errors"
	"strings"
	"testing"
)

// The messages are ONNX Runtime 1.29's, as critlab doctor printed them
// (docs/cuda.md).
func TestCUDAHint(t *testing.T) {
	tests := []struct {
		name, msg, want string
	}{
		{"cpu build", "CUDA execution provider is not enabled in this build.", "without CUDA"},
		{"no providers", "Failed to load library /x/libonnxruntime_providers_shared.so with error: /x/libonnxruntime_providers_shared.so: cannot open shared object file: No such file or directory", "must sit beside"},
		{"no cublas", "Failed to load library /x/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file: No such file or directory", "LD_LIBRARY_PATH"},
		{"no driver", "Failed to load library /x/libonnxruntime_providers_cuda.so with error: libcuda.so.1: cannot open shared object file: No such file or directory", "NVIDIA driver"},
		{"no gpu", `Failed to parse provider option "device_id": CUDA failure 100: no CUDA-capable device is detected`, "no usable GPU"},
		{"other", "something else", "must be a CUDA build"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := cudaHint(errors.New(tc.msg), "/x/libonnxruntime.so"); !strings.Contains(got, tc.want) {
				t.Errorf("cudaHint(%q) = %q, want it to contain %q", tc.msg, got, tc.want)
			}
		})
	}
}
