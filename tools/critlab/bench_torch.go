package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// torchvisionPrefix marks a torchvision model in --models (tv:resnet18).
const torchvisionPrefix = "tv:"

// torchBench is PyTorch's train step of a bench row's model, as
// tools/torch_bench.py measures it.
type torchBench struct {
	Torch        string  `json:"torch"`
	Threads      int     `json:"threads"`
	ImagesPerSec float64 `json:"images_per_sec"`
	StepMs       float64 `json:"step_ms"`
	Steps        int     `json:"steps"`
	Seconds      float64 `json:"seconds"`
	// CPUSeconds is the process's CPU time over Seconds (time.process_time).
	CPUSeconds float64 `json:"cpu_seconds"`
	Params     int64   `json:"params"`
	// PeakRSSBytes is the PyTorch process's peak RSS, torch's import
	// included, as critlab's includes ONNX Runtime's.
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
	LossFirst    float64 `json:"loss_first"`
	LossLast     float64 `json:"loss_last"`
	// OMPWaitPolicy is the child's OMP_WAIT_POLICY ("": PyTorch's default).
	OMPWaitPolicy string `json:"omp_wait_policy"`
}

// torchRun is how the PyTorch side runs: the interpreter, the checkout's
// tools folder, and the settings critlab's side runs with.
type torchRun struct {
	Py, Tools string
	Width     float64
	Threads   int
	MinTime   time.Duration
	// Spin is critlab's --spin: without it ONNX Runtime's idle threads
	// sleep, and PyTorch's OpenMP threads are asked to as well
	// (OMP_WAIT_POLICY=PASSIVE; on 2 shared cores PyTorch's default spinning
	// made the small model 6× slower), unless the environment sets a policy.
	Spin bool
}

// runTorchBench runs tools/torch_bench.py on sp's model, in a process of
// its own: train mode, SGD with momentum 0.9 and weight decay 5e-4 off
// biases and norms (as benchCompile), random normal images, 2 warm-up
// steps, then at least 3 steps and MinTime.
func runTorchBench(ctx context.Context, r torchRun, sp benchSpec) (*torchBench, error) {
	py, tools, width, threads, minTime := r.Py, r.Tools, r.Width, r.Threads, r.MinTime
	tmp, err := os.MkdirTemp("", "critlab-torch-bench-")
	if err != nil {
		return nil, fmt.Errorf("bench %s (PyTorch): %w", sp.Name, err)
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "torch.json")
	px := sp.ImageSize
	if px == 0 {
		px = 32
	}
	args := []string{filepath.Join(tools, "torch_bench.py"), "--device", "cpu", "--models", sp.Name,
		"--batch", fmt.Sprint(sp.Batch), "--image-size", fmt.Sprint(px), "--width", fmt.Sprint(width),
		"--threads", fmt.Sprint(threads), "--warmup", "2", "--steps", "3", "--min-time", fmt.Sprint(minTime.Seconds()),
		"--no-decay-bias-norm", "--json", out}
	var errb bytes.Buffer
	cmd := exec.CommandContext(ctx, py, args...)
	cmd.Stderr = &errb
	policy, set := os.LookupEnv("OMP_WAIT_POLICY")
	if !set && !r.Spin {
		policy = "PASSIVE"
		cmd.Env = append(os.Environ(), "OMP_WAIT_POLICY="+policy)
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("bench %s (PyTorch): %s %s: %w: %s", sp.Name, py, strings.Join(args, " "), err, lastLines(errb.String(), 5))
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return nil, fmt.Errorf("bench %s (PyTorch): %w", sp.Name, err)
	}
	var res struct {
		Torch   string       `json:"torch"`
		Threads int          `json:"threads"`
		Results []torchBench `json:"results"`
	}
	if err := json.Unmarshal(data, &res); err != nil || len(res.Results) != 1 {
		return nil, fmt.Errorf("bench %s (PyTorch): read %s: want one result (%v)", sp.Name, out, err)
	}
	t := res.Results[0]
	t.Torch, t.Threads, t.OMPWaitPolicy = res.Torch, res.Threads, policy
	if t.Threads != threads {
		return nil, fmt.Errorf("bench %s (PyTorch): ran on %d threads, asked for %d", sp.Name, t.Threads, threads)
	}
	return &t, nil
}

// exportTorchvision exports sp's torchvision model with
// tools/export_torch.py into critlab's cache (one file per model, image
// side, interpreter and version of the export scripts) and returns its path.
func exportTorchvision(ctx context.Context, errw io.Writer, py, tools string, sp benchSpec) (string, error) {
	px := sp.ImageSize
	if px == 0 {
		px = 32
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%d\x00", py, sp.Name, px)
	for _, f := range []string{"export_torch.py", "torch_models.py"} {
		data, err := os.ReadFile(filepath.Join(tools, f))
		if err != nil {
			return "", fmt.Errorf("bench %s: export: %w", sp.Name, err)
		}
		h.Write(data)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "critlab", "bench-exports")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("bench %s: export: %w", sp.Name, err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s-%dpx-%s.onnx", strings.TrimPrefix(sp.Name, torchvisionPrefix), px, hex.EncodeToString(h.Sum(nil))[:12]))
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	fmt.Fprintf(errw, "bench: export %s at %d px to %s\n", sp.Name, px, path)
	tmp := path + fmt.Sprintf(".%d.tmp.onnx", os.Getpid())
	defer os.Remove(tmp)
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, py, filepath.Join(tools, "export_torch.py"), sp.Name, "--image-size", fmt.Sprint(px), "-o", tmp)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("bench %s: export with %s: %w: %s", sp.Name, py, err, lastLines(out.String(), 5))
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("bench %s: export: %w", sp.Name, err)
	}
	return path, nil
}

// findTools returns the checkout's tools folder (the one holding
// torch_bench.py): in the working folder or a parent of it, else a parent
// of the executable's folder (bin/critlab).
func findTools() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for {
			if _, err := os.Stat(filepath.Join(dir, "tools", "torch_bench.py")); err == nil {
				return filepath.Join(dir, "tools"), nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", fmt.Errorf("bench --torch: no tools/torch_bench.py above the working folder or the executable; run critlab from its checkout")
}

// lastLines is the last n lines of s, for error messages.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
