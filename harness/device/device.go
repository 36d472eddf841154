// Package device names where critlab computes: the execution provider and
// device index ("cpu", "cuda", "cuda:N") and the CUDA provider settings a
// run pins. It is pure Go, so configs that mention a device (runs.Config)
// build and validate without ONNX Runtime or cgo; harness turns them into
// ORT session options.
package device

import (
	"fmt"
	"strconv"
	"strings"
)

// Device is an execution provider and device index.
type Device struct {
	Kind  string // "cpu" or "cuda"
	Index int
}

func (d Device) String() string {
	if d.Kind == "cuda" {
		return fmt.Sprintf("cuda:%d", d.Index)
	}
	return "cpu"
}

// Parse reads "cpu", "cuda" or "cuda:N"; empty means cpu.
func Parse(s string) (Device, error) {
	switch {
	case s == "" || s == "cpu":
		return Device{Kind: "cpu"}, nil
	case s == "cuda":
		return Device{Kind: "cuda"}, nil
	case strings.HasPrefix(s, "cuda:"):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "cuda:"))
		if err != nil || n < 0 {
			return Device{}, fmt.Errorf("device %q: want cpu, cuda or cuda:N", s)
		}
		return Device{Kind: "cuda", Index: n}, nil
	}
	return Device{}, fmt.Errorf("device %q: want cpu, cuda or cuda:N", s)
}

// CUDAOptions are the CUDA provider settings critlab pins and records, since
// they change speed and reproducibility.
type CUDAOptions struct {
	// ConvAlgoSearch is cuDNN's algorithm search: EXHAUSTIVE, HEURISTIC or
	// DEFAULT (ORT's default is EXHAUSTIVE).
	ConvAlgoSearch string `yaml:"conv_algo_search,omitempty"`
	// TF32 allows TensorFloat-32 matmuls and convolutions (faster, ~1e-3
	// relative error); off by default for exactness.
	TF32 bool `yaml:"tf32,omitempty"`
	// MemLimitBytes caps the provider's arena (0: no limit).
	MemLimitBytes int64 `yaml:"mem_limit_bytes,omitempty"`
	// Deterministic asks cuDNN for deterministic algorithms.
	Deterministic bool `yaml:"deterministic,omitempty"`
}
