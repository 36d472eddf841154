package harness

import (
	"fmt"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// sessionOptions builds ORT session options for the runtime's device.
func (r *Runtime) sessionOptions() (*ort.SessionOptions, error) {
	so, err := ort.NewSessionOptions()
	if err != nil {
		return nil, fmt.Errorf("session options: %w", err)
	}
	fail := func(what string, err error) (*ort.SessionOptions, error) {
		so.Destroy()
		return nil, fmt.Errorf("session options: %s: %w", what, err)
	}
	if err := so.SetIntraOpNumThreads(r.opts.Threads); err != nil {
		return fail("intra-op threads", err)
	}
	// ORT's CPU arena keeps freed blocks for reuse instead of returning them
	// to the system: measured (docs/compiler-performance.md) 1.25× the
	// images per CPU-second on the small model (the allocator without it
	// spends a fifth of the epoch in the kernel) and 1.15× on allcnn; with
	// the memory pattern off (below) its peak RSS is no higher than the
	// allocator's without it.
	if err := so.SetCpuMemArena(r.opts.MemArena); err != nil {
		return fail("memory arena", err)
	}
	// With the arena on, ORT's memory pattern (one block per run sized by
	// the first run's trace) comes on top of the arena's chunks from that
	// first run, which the arena keeps: vgg11_bn at 224 px, batch 8, peaked
	// at 9.4 GiB with both and 6.3 GiB without the pattern, allcnn at
	// batch 128 1.54 -> 0.82 GiB (0.96 without the arena), at the same
	// step time within the machine's noise (docs/performance.md). The
	// floats are the same either way.
	if r.opts.MemArena {
		if err := so.SetMemPattern(false); err != nil {
			return fail("memory pattern", err)
		}
		// The process's one arena (registerArena), not one per session.
		if err := so.AddSessionConfigEntry("session.use_env_allocators", "1"); err != nil {
			return fail("shared memory arena", err)
		}
	}
	// Spinning workers burn the cores they wait on: a run on 2 threads
	// beside other work used 1.6× the CPU time per epoch spinning, and ran
	// 2× slower on a loaded machine (docs/compiler-performance.md).
	if err := so.AddSessionConfigEntry("session.intra_op.allow_spinning", boolFlag(r.opts.Spin)); err != nil {
		return fail("thread spinning", err)
	}
	if err := so.SetInterOpNumThreads(1); err != nil {
		return fail("inter-op threads", err)
	}
	if r.device.Kind == "cuda" {
		co, err := r.cudaOptions()
		if err != nil {
			so.Destroy()
			return nil, err
		}
		defer co.Destroy()
		if err := so.AppendExecutionProviderCUDA(co); err != nil {
			return fail("CUDA provider", r.cudaError(err))
		}
		if r.opts.CUDA.Deterministic {
			if err := so.AddSessionConfigEntry("session.use_deterministic_compute", "1"); err != nil {
				return fail("deterministic compute", err)
			}
		}
	}
	return so, nil
}

// cudaOptions makes the CUDA provider options of the runtime's device.
// Their Update loads libonnxruntime_providers_cuda.so and asks CUDA for the
// device count, so most set-up faults surface here (Open calls it first).
func (r *Runtime) cudaOptions() (*ort.CUDAProviderOptions, error) {
	co, err := ort.NewCUDAProviderOptions()
	if err != nil {
		return nil, r.cudaError(err)
	}
	c := r.opts.CUDA
	algo := c.ConvAlgoSearch
	if algo == "" {
		algo = "EXHAUSTIVE"
	}
	m := map[string]string{
		"device_id":                    strconv.Itoa(r.device.Index),
		"cudnn_conv_algo_search":       algo,
		"use_tf32":                     boolFlag(c.TF32),
		"cudnn_conv_use_max_workspace": "1",
	}
	if c.MemLimitBytes > 0 {
		m["gpu_mem_limit"] = strconv.FormatInt(c.MemLimitBytes, 10)
	}
	if err := co.Update(m); err != nil {
		co.Destroy()
		return nil, r.cudaError(err)
	}
	return co, nil
}

// cudaError says that the device cannot be used, with ONNX Runtime's reason
// (less its source location) and the fix.
func (r *Runtime) cudaError(err error) error {
	msg := err.Error()
	if _, after, ok := strings.Cut(msg, "] : 1 : FAIL : "); ok {
		msg = after
	}
	return fmt.Errorf("device %s: %w: %s%s", r.device, ErrNoCUDA, msg, cudaHint(err, r.lib))
}

// cudaHint names the fix for the usual reasons the CUDA provider does not
// load (docs/cuda.md shows each message).
func cudaHint(err error, lib string) string {
	msg := err.Error()
	var hint string
	switch {
	case strings.Contains(msg, "not enabled in this build"):
		hint = fmt.Sprintf("%s is an ONNX Runtime build without CUDA; run `make setup-cuda` and set %s=.deps/onnxruntime-cuda/libonnxruntime.so", lib, LibraryEnv)
	case strings.Contains(msg, "providers_shared.so: cannot open"), strings.Contains(msg, "providers_cuda.so: cannot open"):
		hint = fmt.Sprintf("%s has no CUDA provider beside it (libonnxruntime_providers_shared.so, libonnxruntime_providers_cuda.so): run `make setup-cuda` and set %s=.deps/onnxruntime-cuda/libonnxruntime.so", lib, LibraryEnv)
	case strings.Contains(msg, "libcuda.so.1: cannot open"):
		hint = "libcuda.so.1 comes with the NVIDIA driver (>= 580 for CUDA 13): is there a GPU and a driver (nvidia-smi)?"
	case strings.Contains(msg, "cannot open shared object file"):
		hint = "a CUDA library is missing: LD_LIBRARY_PATH must hold the CUDA 13 runtime, cuBLAS, cuRAND and cuDNN 9, e.g. a PyTorch environment's: export LD_LIBRARY_PATH=$(tools/setup_cuda.sh --ld-path)"
	case strings.Contains(msg, "CUDA failure 100"), strings.Contains(msg, "CUDA failure 35"):
		hint = "CUDA finds no usable GPU: check nvidia-smi, CUDA_VISIBLE_DEVICES and the driver (>= 580 for CUDA 13)"
	default:
		hint = fmt.Sprintf("the library %s must be a CUDA build of ONNX Runtime with libonnxruntime_providers_cuda.so beside it, and CUDA/cuDNN libraries on LD_LIBRARY_PATH", lib)
	}
	return "\n---> HINT: " + hint + "; `critlab doctor --device cuda` checks the set-up, docs/cuda.md describes it"
}

func boolFlag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}
