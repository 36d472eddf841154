package harness_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/zoo"
)

// CUDA against CPU. Both providers run float32 (TF32 off) and differ only by
// kernel choice and summation order (cuDNN picks convolution algorithms,
// some Winograd or FFT, whose float32 error is near 1e-5 relative). The
// tolerances are ten times that; the test logs the largest differences so
// that the first runs on a GPU can tighten them. Correct counts may differ
// where two logits nearly tie, so they are only logged.
const (
	tolCUDALoss  = 1e-4
	tolCUDAState = 1e-4
	tolCUDAMom   = 1e-3
	cudaSteps    = 5
)

// TestCUDAMatchesCPU trains zoo models for a few steps on the same batches on
// the CPU and the CUDA provider of one ONNX Runtime library and compares the
// losses and the state after the last step. It runs only when
// CRITLAB_TEST_CUDA names the device to test ("1" or "cuda" means cuda:0;
// "cpu" is a dry run of the test itself), with CRITLAB_ORT_LIB pointing at a
// CUDA build (tools/setup_cuda.sh, docs/cuda.md).
func TestCUDAMatchesCPU(t *testing.T) {
	dev := os.Getenv("CRITLAB_TEST_CUDA")
	switch dev {
	case "":
		t.Skip("set CRITLAB_TEST_CUDA=1 and CRITLAB_ORT_LIB to a CUDA build of ONNX Runtime (docs/cuda.md)")
	case "1":
		dev = "cuda"
	}
	cpu := openDevice(t, "cpu")
	gpu := openDevice(t, dev)
	tests := []struct {
		model       string
		width       float64
		size, batch int
	}{
		{"small", 0.25, 8, 32},
		{"allcnn", 0.25, 16, 16},
		{"resnet18", 0.125, 16, 16},
	}
	for _, tc := range tests {
		t.Run(tc.model, func(t *testing.T) {
			m, err := zoo.Build(tc.model, zoo.Options{Width: tc.width, Seed: 5, Classes: 10, ImageSize: tc.size})
			if err != nil {
				t.Fatal(err)
			}
			a, b := newTrainer(t, cpu, m, tc.batch), newTrainer(t, gpu, m, tc.batch)
			rng := rand.New(rand.NewPCG(11, 13))
			images := make([]float32, tc.batch*3*tc.size*tc.size)
			labels := make([]int64, tc.batch)
			for step := 1; step <= cudaSteps; step++ {
				for i := range images {
					images[i] = float32(rng.NormFloat64())
				}
				for i := range labels {
					labels[i] = rng.Int64N(10)
				}
				la, ca, err := a.Step(images, labels, 0.05)
				if err != nil {
					t.Fatalf("cpu step %d: %v", step, err)
				}
				lb, cb, err := b.Step(images, labels, 0.05)
				if err != nil {
					t.Fatalf("%s step %d: %v", dev, step, err)
				}
				rel := math.Abs(float64(la)-float64(lb)) / max(math.Abs(float64(la)), 1e-3)
				t.Logf("step %d: loss cpu %.7f %s %.7f (relative %.1e), correct %d / %d", step, la, dev, lb, rel, ca, cb)
				if rel > tolCUDALoss || math.IsNaN(rel) {
					t.Errorf("step %d: loss cpu %.8g, %s %.8g: relative difference %.2g > %g", step, la, dev, lb, rel, tolCUDALoss)
				}
			}
			pa, pb := a.Params(), b.Params()
			names := make([]string, 0, len(pa))
			for name := range pa {
				names = append(names, name)
			}
			sort.Strings(names)
			worst, worstAt := 0.0, ""
			for _, name := range names {
				got, ok := pb[name]
				if !ok || len(got) != len(pa[name]) {
					t.Errorf("%s: %s state lacks it or has another size", name, dev)
					continue
				}
				e, _ := scaledErr(got, pa[name])
				tol := tolCUDAState
				if stateClass(name) == "mom" {
					tol = tolCUDAMom
				}
				if e > tol || math.IsNaN(e) {
					t.Errorf("%s: %s differs from cpu by %.2g (scaled), tolerance %g", name, dev, e, tol)
				}
				if e > worst {
					worst, worstAt = e, name
				}
			}
			t.Logf("%d state tensors after %d steps: largest scaled difference %.1e (%s)", len(names), cudaSteps, worst, worstAt)
		})
	}
}

// openDevice opens a runtime on a device of the library harness.Open finds.
func openDevice(t *testing.T, device string) *harness.Runtime {
	t.Helper()
	rt, err := harness.Open(harness.RuntimeOptions{Threads: 2, Device: device})
	if err != nil {
		t.Fatal(fmt.Errorf("open %s: %w", device, err))
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}
