package harness

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// Throughput is one measured rate.
type Throughput struct {
	ImagesPerSec float64 `json:"images_per_sec"`
	GFLOPs       float64 `json:"gflop_per_sec"`
	Seconds      float64 `json:"seconds"`
	Iterations   int     `json:"iterations"`
	// CPUSeconds is the process's CPU time (user and system, all threads)
	// over the Seconds timed: under other load it moves less than
	// Seconds, most of all on one thread.
	CPUSeconds float64 `json:"cpu_seconds"`
}

// BenchTrain times train steps and eval batches of a model at a batch size
// on random data, after warm-up steps. flopsPerImage is the forward cost; a
// train step is counted as 3× the forward (forward, input and weight
// gradients), the usual convention.
func BenchTrain(rt *Runtime, forward *pb.ModelProto, opts TrainerOptions, flopsPerImage float64, minTime time.Duration) (train, eval Throughput, err error) {
	tr, err := NewTrainer(rt, forward, opts)
	if err != nil {
		return train, eval, err
	}
	defer tr.Close()
	n := opts.BatchSize
	images, labels := randomBatch(tr.forward, n, tr.inDims)
	step := func() error { _, _, err := tr.Step(images, labels, 0.01); return err }
	if train, err = timeIt(step, 2, minTime); err != nil {
		return train, eval, err
	}
	train.ImagesPerSec *= float64(n)
	train.GFLOPs = train.ImagesPerSec * 3 * flopsPerImage / 1e9
	evalOnce := func() error {
		done := false
		_, err := tr.Evaluate(func() ([]float32, []int64, bool, error) {
			if done {
				return nil, nil, false, nil
			}
			done = true
			return images, labels, true, nil
		})
		return err
	}
	if eval, err = timeIt(evalOnce, 1, minTime); err != nil {
		return train, eval, err
	}
	eval.ImagesPerSec *= float64(n)
	eval.GFLOPs = eval.ImagesPerSec * flopsPerImage / 1e9
	return train, eval, nil
}

// randomBatch is n standard-normal images of dims and uniform labels over
// forward's classes, the same on every call.
func randomBatch(forward *pb.ModelProto, n int, dims []int64) ([]float32, []int64) {
	images := make([]float32, n*int(graph.NumElements(dims)))
	labels := make([]int64, n)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range images {
		images[i] = float32(rng.NormFloat64())
	}
	classes := int64(10)
	if out := forward.GetGraph().GetOutput(); len(out) > 0 {
		if dims, _ := graph.Dims(out[0]); len(dims) == 2 && dims[1] > 0 {
			classes = dims[1]
		}
	}
	for i := range labels {
		labels[i] = rng.Int64N(classes)
	}
	return images, labels
}

// BenchConv times ORT's plain forward Conv (3×3, pad 1, stride 1) of cin to
// cout channels on hw×hw images at batch n: the machine's ceiling for the
// dominant op of a CNN. It runs with ORT's default settings (memory arena
// on) whatever the runtime's, so the ceiling does not move with them.
func BenchConv(rt *Runtime, n, cin, cout, hw int64, minTime time.Duration) (Throughput, error) {
	defaults := *rt
	defaults.opts.MemArena = true
	rt = &defaults
	b := graph.NewBuilder("conv")
	x := b.Input("x", graph.Float, n, cin, hw, hw)
	w := make([]float32, cout*cin*9)
	for i := range w {
		w[i] = float32(i%7) * 0.01
	}
	b.Param("w", []int64{cout, cin, 3, 3}, w)
	b.NodeNamed("Conv", []string{x, "w"}, []string{"y"}, graph.Ints("pads", 1, 1, 1, 1), graph.Ints("kernel_shape", 3, 3))
	b.Output("y", graph.Float, n, cout, hw, hw)
	data, err := graph.Marshal(b.Model())
	if err != nil {
		return Throughput{}, err
	}
	s, err := rt.NewSession(data, []string{"x"}, []string{"y"})
	if err != nil {
		return Throughput{}, err
	}
	defer s.Close()
	in := Tensor{Shape: []int64{n, cin, hw, hw}, F32: make([]float32, n*cin*hw*hw)}
	res, err := timeIt(func() error { _, err := s.Run([]Tensor{in}); return err }, 2, minTime)
	if err != nil {
		return res, err
	}
	flops := float64(2 * n * cout * cin * 9 * hw * hw)
	res.GFLOPs = res.ImagesPerSec * flops / 1e9
	res.ImagesPerSec *= float64(n)
	return res, nil
}

// timeIt runs f warm times, then until minTime has passed (at least 3
// times), and returns calls per second in ImagesPerSec.
func timeIt(f func() error, warm int, minTime time.Duration) (Throughput, error) {
	for i := 0; i < warm; i++ {
		if err := f(); err != nil {
			return Throughput{}, err
		}
	}
	cpu0, err := cpuSeconds()
	if err != nil {
		return Throughput{}, err
	}
	start := time.Now()
	n := 0
	for n < 3 || time.Since(start) < minTime {
		if err := f(); err != nil {
			return Throughput{}, err
		}
		n++
	}
	sec := time.Since(start).Seconds()
	cpu1, err := cpuSeconds()
	if err != nil {
		return Throughput{}, err
	}
	return Throughput{ImagesPerSec: float64(n) / sec, Seconds: sec, Iterations: n, CPUSeconds: cpu1 - cpu0}, nil
}

// cpuSeconds is the process's user and system CPU time so far.
func cpuSeconds() (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9, nil
}

// PeakRSS is the process's peak resident set size in bytes (Linux VmHWM).
func PeakRSS() (int64, error) {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("peak RSS: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("peak RSS: %q: %w", line, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("peak RSS: no VmHWM in /proc/self/status")
}
