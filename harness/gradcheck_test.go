package harness_test

// Gradient checks of the compiler's rules against central finite
// differences: every case is a small forward graph whose op under test reads
// parameters (initializers), so CompileGrad returns the gradient of the loss
// with respect to the op's inputs. For each parameter p and a random
// direction v the analytic directional derivative <grad_p, v> (accumulated
// in float64) must match (L(p+hv) - L(p-hv)) / 2h.

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// compilerRuntime opens ORT with two threads or skips the test.
func compilerRuntime(t testing.TB) *harness.Runtime {
	t.Helper()
	rt, err := harness.Open(harness.RuntimeOptions{Threads: 2})
	if errors.Is(err, harness.ErrNoLibrary) {
		t.Skipf("ONNX Runtime missing (run `make setup`): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// net helps build test graphs with random parameters.
type net struct {
	b   *graph.Builder
	rng *rand.Rand
	x   string // images input
}

func newNet(seed uint64, imageDims ...int64) *net {
	b := graph.NewBuilder("t")
	dims := append([]int64{-1}, imageDims[1:]...)
	x := b.Input("input", graph.Float, dims...)
	return &net{b: b, rng: rand.New(rand.NewPCG(seed, 7)), x: x}
}

// param adds a random normal parameter scaled by s.
func (n *net) param(name string, s float64, dims ...int64) string {
	data := make([]float32, graph.NumElements(dims))
	for i := range data {
		data[i] = float32(n.rng.NormFloat64() * s)
	}
	return n.b.Param(name, dims, data)
}

// paramVals adds a parameter with given values.
func (n *net) paramVals(name string, dims []int64, data []float32) string {
	return n.b.Param(name, dims, data)
}

// head flattens x (batch first) and maps it to classes logits with a
// random linear layer, then finishes the model.
func (n *net) head(x string, classes int64, features int64) *pb.ModelProto {
	f := n.b.Op("Flatten", []string{x}, graph.Int("axis", 1))
	w := n.param("head.w", 1/math.Sqrt(float64(features)), classes, features)
	y := n.b.Op("Gemm", []string{f, w}, graph.Int("transB", 1))
	n.b.NodeNamed("Identity", []string{y}, []string{"out"})
	n.b.Output("out", graph.Float, -1, classes)
	return n.b.Model()
}

// modelValues returns the float initializers of m by name.
func modelValues(t testing.TB, m *pb.ModelProto) map[string][]float32 {
	t.Helper()
	vals := map[string][]float32{}
	for _, x := range m.Graph.Initializer {
		if pb.TensorProto_DataType(x.GetDataType()) != graph.Float {
			continue
		}
		v, err := graph.Floats(x)
		if err != nil {
			t.Fatal(err)
		}
		vals[x.GetName()] = v
	}
	return vals
}

// gradRunner runs a CompileGrad graph with parameter values from a map.
type gradRunner struct {
	tg     *compiler.TrainGraph
	s      *harness.Session
	images harness.Tensor
	labels harness.Tensor
}

func newGradRunner(t testing.TB, rt *harness.Runtime, m *pb.ModelProto, opts compiler.Options, images harness.Tensor, labels []int64) *gradRunner {
	t.Helper()
	tg, err := compiler.CompileGrad(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	outs := withVectors(tg.Model, compiler.Loss)
	for _, p := range tg.Params {
		outs = append(outs, p.Next)
	}
	data, err := graph.Marshal(tg.Model)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.NewSession(data, tg.InputNames(), outs)
	if err != nil {
		t.Fatalf("session: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return &gradRunner{tg: tg, s: s, images: images, labels: harness.Tensor{Shape: []int64{int64(len(labels))}, I64: labels}}
}

// run returns the loss and the gradients by parameter name.
func (g *gradRunner) run(t testing.TB, vals map[string][]float32) (float64, map[string][]float32) {
	t.Helper()
	var ins []harness.Tensor
	for _, l := range [][]compiler.Tensor{g.tg.Params, g.tg.Stats} {
		for _, p := range l {
			ins = append(ins, harness.Tensor{Shape: p.Dims, F32: vals[p.Name]})
		}
	}
	ins = append(ins, g.images, g.labels)
	outs, err := g.s.Run(ins)
	if err != nil {
		t.Fatal(err)
	}
	grads := map[string][]float32{}
	for i, p := range g.tg.Params {
		grads[p.Name] = outs[i+1].F32
	}
	return float64(outs[0].F32[0]), grads
}

// withVectors adds outputs "<name>_1" holding the scalars names as
// 1-element vectors (Session.Run copies out only tensors of rank >= 1) and
// returns their names.
func withVectors(m *pb.ModelProto, names ...string) []string {
	b := graph.Wrap(m.Graph)
	var outs []string
	for _, n := range names {
		v := n + "_1"
		b.NodeNamed("Reshape", []string{n, b.ConstInt64s(1)}, []string{v})
		b.Output(v, graph.Float, 1)
		outs = append(outs, v)
	}
	return outs
}

func randTensor(rng *rand.Rand, s float64, dims ...int64) harness.Tensor {
	data := make([]float32, graph.NumElements(dims))
	for i := range data {
		data[i] = float32(rng.NormFloat64() * s)
	}
	return harness.Tensor{Shape: dims, F32: data}
}

// tol sets the finite-difference step and the accepted error
// |analytic - fd| <= rel·max(|analytic|, |fd|) + abs. The loss is float32,
// so the noise floor is about 1e-7·loss/h; steps must stay below the
// distance to the nearest kink (ReLU, MaxPool switches).
// Richardson extrapolation (rich) removes the h² truncation term of smooth
// graphs at the price of more rounding noise.
type tol struct {
	h, rel, abs float64
	rich        bool
}

// smooth suits graphs without kinks; kinked suits op tests whose inputs are
// kept away from kinks by construction.
var (
	smooth = tol{h: 1e-2, rel: 2e-3, abs: 1e-4, rich: true}
	kinked = tol{h: 1e-3, rel: 5e-3, abs: 5e-4}
)

// checkGrad compares analytic and finite-difference directional
// derivatives for every parameter of m.
func checkGrad(t *testing.T, rt *harness.Runtime, m *pb.ModelProto, opts compiler.Options, images harness.Tensor, classes int64, tl tol) {
	t.Helper()
	rng := rand.New(rand.NewPCG(11, 13))
	n := images.Shape[0]
	labels := make([]int64, n)
	for i := range labels {
		labels[i] = rng.Int64N(classes)
	}
	g := newGradRunner(t, rt, m, opts, images, labels)
	vals := modelValues(t, m)
	_, grads := g.run(t, vals)
	if len(g.tg.Params) == 0 {
		t.Fatal("no parameters to check")
	}
	for _, p := range g.tg.Params {
		for trial := range 2 {
			v := make([]float64, len(vals[p.Name]))
			for i := range v {
				v[i] = rng.NormFloat64()
			}
			var an float64
			for i, gi := range grads[p.Name] {
				an += float64(gi) * v[i]
			}
			h := tl.h
			orig := vals[p.Name]
			eval := func(sign float64) float64 {
				pert := make([]float32, len(orig))
				for i := range pert {
					pert[i] = float32(float64(orig[i]) + sign*h*v[i])
				}
				vals[p.Name] = pert
				l, _ := g.run(t, vals)
				return l
			}
			// Richardson extrapolation of central differences at h and h/2
			// cancels the h² truncation term.
			fd := (eval(1) - eval(-1)) / (2 * h)
			if tl.rich {
				fd = (4*(eval(0.5)-eval(-0.5))/h - fd) / 3
			}
			vals[p.Name] = orig
			if math.Abs(an-fd) > tl.rel*math.Max(math.Abs(an), math.Abs(fd))+tl.abs || math.IsNaN(an) {
				t.Errorf("%s (trial %d): analytic %.6g, finite difference %.6g", p.Name, trial, an, fd)
			} else if testing.Verbose() {
				t.Logf("%s: analytic %.6g, finite difference %.6g", p.Name, an, fd)
			}
		}
	}
}

// TestGradWholeModel checks a tiny conv net with BatchNorm (training
// form) end to end: a smooth variant with tight tolerances and the usual
// ReLU/MaxPool one, whose kinks force a small step and a looser bound.
func TestGradWholeModel(t *testing.T) {
	rt := compilerRuntime(t)
	for _, variant := range []string{"tanh-avgpool", "relu-maxpool"} {
		t.Run(variant, func(t *testing.T) {
			nt := newNet(1, 2, 3, 8, 8)
			b := nt.b
			act := func(x string) string {
				if variant == "tanh-avgpool" {
					return b.Op("Tanh", []string{x})
				}
				return b.Op("Relu", []string{x})
			}
			bn := func(x, name string, c int64) string {
				ones := make([]float32, c)
				for i := range ones {
					ones[i] = 1
				}
				return b.Op("BatchNormalization", []string{x, nt.param(name+".weight", 0.5, c), nt.param(name+".bias", 0.5, c),
					nt.paramVals(name+".running_mean", []int64{c}, make([]float32, c)), nt.paramVals(name+".running_var", []int64{c}, ones)},
					graph.Flt("epsilon", 1e-5), graph.Flt("momentum", 0.9))
			}
			w1 := nt.param("conv1.weight", 0.3, 4, 3, 3, 3)
			x := b.Op("Conv", []string{nt.x, w1, nt.param("conv1.bias", 0.1, 4)}, graph.Ints("pads", 1, 1, 1, 1))
			x = act(bn(x, "bn1", 4))
			if variant == "tanh-avgpool" {
				x = b.Op("AveragePool", []string{x}, graph.Ints("kernel_shape", 3, 3), graph.Ints("strides", 2, 2), graph.Ints("pads", 1, 1, 1, 1))
			} else {
				x = b.Op("MaxPool", []string{x}, graph.Ints("kernel_shape", 3, 3), graph.Ints("strides", 2, 2), graph.Ints("pads", 1, 1, 1, 1))
			}
			w2 := nt.param("conv2.weight", 0.3, 6, 4, 3, 3)
			x = b.Op("Conv", []string{x, w2}, graph.Ints("pads", 1, 1, 1, 1), graph.Ints("strides", 2, 2))
			x = act(bn(x, "bn2", 6))
			x = b.Op("GlobalAveragePool", []string{x})
			m := nt.head(x, 5, 6)
			images := randTensor(nt.rng, 1, 4, 3, 8, 8)
			tl := smooth
			if variant == "relu-maxpool" {
				tl = tol{h: 3e-4, rel: 3e-2, abs: 1e-3}
			}
			checkGrad(t, rt, m, compiler.Options{}, images, 5, tl)
		})
	}
}
