package harness_test

// Gradient checks of the compiler's rules against central finite
// differences: every case is a small forward graph whose op under test reads
// parameters (initializers), so CompileGrad returns the gradient of the loss
// with respect to the op's inputs. For each parameter p and a random
// direction v the analytic directional derivative <grad_p, v> (accumulated
// in float64) must match (L(p+hv) - L(p-hv)) / 2h.

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/critlab/critlab/models/zoo"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

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
	w := n.param("head.w", 0.5/math.Sqrt(float64(features)), classes, features)
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
		et := graph.Float
		for _, o := range m.Graph.Output {
			if o.GetName() == n {
				_, et = graph.Dims(o)
			}
		}
		v := n + "_1"
		b.NodeNamed("Reshape", []string{n, b.ConstInt64s(1)}, []string{v})
		b.Output(v, et, 1)
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
	// deep suits whole deep nets, whose curvature needs a smaller step.
	deep = tol{h: 2e-3, rel: 5e-3, abs: 1e-4, rich: true}
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
	loss, grads := g.run(t, vals)
	// The float32 loss carries absolute noise ~1e-7·loss; scale the floor.
	abs := tl.abs * math.Max(1, math.Abs(loss))
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
			if math.Abs(an-fd) > tl.rel*math.Max(math.Abs(an), math.Abs(fd))+abs || math.IsNaN(an) {
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
	rt := openRuntime(t)
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

// paramAway adds a parameter whose entries keep |v| >= gap (kinks of
// ReLU-like ops at 0 stay out of finite-difference reach).
func (n *net) paramAway(name string, gap float64, dims ...int64) string {
	data := make([]float32, graph.NumElements(dims))
	for i := range data {
		v := n.rng.NormFloat64()
		data[i] = float32(math.Copysign(gap+math.Abs(v), v))
	}
	return n.b.Param(name, dims, data)
}

// paramSpaced adds a parameter holding a random permutation of values
// spaced step apart (no ties or near-ties for MaxPool).
func (n *net) paramSpaced(name string, step float64, dims ...int64) string {
	k := graph.NumElements(dims)
	data := make([]float32, k)
	for i, p := range n.rng.Perm(int(k)) {
		data[i] = float32((float64(p) - float64(k)/2) * step)
	}
	return n.b.Param(name, dims, data)
}

// paramPos adds a parameter with entries in [lo, lo+1).
func (n *net) paramPos(name string, lo float64, dims ...int64) string {
	data := make([]float32, graph.NumElements(dims))
	for i := range data {
		data[i] = float32(lo + n.rng.Float64())
	}
	return n.b.Param(name, dims, data)
}

// in returns images + x, so the op's input is a parameter with the
// images' symbolic batch dimension.
func (n *net) in(x string) string { return n.b.Op("Add", []string{n.x, x}) }

// features is the product of dims after the batch.
func features(dims ...int64) int64 { return graph.NumElements(dims[1:]) }

// gradCase is one rule's gradient check: a forward graph over images of
// shape dims (zeros when zero is set, so parameters alone set the op's
// input) and the tolerance that suits its kinks.
type gradCase struct {
	name  string
	dims  []int64
	zero  bool
	tl    tol
	build func(n *net) *pb.ModelProto
}

func convCase(name string, x, w []int64, outDims []int64, attrs ...*pb.AttributeProto) gradCase {
	return gradCase{name: name, dims: x, tl: smooth, build: func(n *net) *pb.ModelProto {
		in := n.in(n.param("x", 1, x...))
		y := n.b.Op("Conv", []string{in, n.param("w", 0.4, w...), n.param("b", 0.3, w[0])}, attrs...)
		return n.head(y, 3, features(outDims...))
	}}
}

func gemmCase(name string, ta, tb bool, bDims, cDims []int64, alpha, beta float32) gradCase {
	return gradCase{name: name, dims: []int64{2, 5}, tl: smooth, build: func(n *net) *pb.ModelProto {
		a := n.in(n.param("a", 1, 1, 5))
		if ta {
			a = n.b.Op("Transpose", []string{a}, graph.Ints("perm", 1, 0))
		}
		ins := []string{a, n.param("bmat", 0.5, bDims...)}
		if cDims != nil {
			ins = append(ins, n.param("c", 0.5, cDims...))
		}
		y := n.b.Op("Gemm", ins, graph.Int("transA", b2i(ta)), graph.Int("transB", b2i(tb)), graph.Flt("alpha", alpha), graph.Flt("beta", beta))
		n.b.NodeNamed("Identity", []string{y}, []string{"out"})
		n.b.Output("out", graph.Float, -1, 3)
		return n.b.Model()
	}}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// unary builds op(x) -> head over [2,3,4,4] with x from mk (images are
// zeros, so x alone sets the input).
func unary(name string, tl tol, mk func(n *net) string, op string, attrs ...*pb.AttributeProto) gradCase {
	return gradCase{name: name, dims: []int64{2, 3, 4, 4}, zero: true, tl: tl, build: func(n *net) *pb.ModelProto {
		y := n.b.Op(op, []string{n.in(mk(n))}, attrs...)
		return n.head(y, 3, 48)
	}}
}

func binary(op string, bDims []int64, positive bool) gradCase {
	return gradCase{name: fmt.Sprintf("%s/%v", op, bDims), dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
		x := n.in(n.param("x", 1, 1, 3, 4, 4))
		var b string
		if positive {
			b = n.paramPos("b", 1, bDims...)
		} else {
			b = n.param("b", 1, bDims...)
		}
		y := n.b.Op(op, []string{x, b})
		return n.head(y, 3, 48)
	}}
}

func gradCases() []gradCase {
	x4 := []int64{2, 3, 6, 6}
	pads1 := graph.Ints("pads", 1, 1, 1, 1)
	k3 := graph.Ints("kernel_shape", 3, 3)
	s2 := graph.Ints("strides", 2, 2)
	std := func(n *net) string { return n.param("x", 1, 1, 3, 4, 4) }
	away := func(n *net) string { return n.paramAway("x", 0.2, 2, 3, 4, 4) }
	pos := func(n *net) string { return n.paramPos("x", 0.5, 2, 3, 4, 4) }
	cs := []gradCase{
		convCase("Conv/basic", x4, []int64{4, 3, 3, 3}, []int64{2, 4, 6, 6}, pads1),
		convCase("Conv/stride2", []int64{2, 3, 7, 7}, []int64{4, 3, 3, 3}, []int64{2, 4, 4, 4}, pads1, s2),
		convCase("Conv/stride2-remainder", []int64{2, 3, 8, 8}, []int64{4, 3, 3, 3}, []int64{2, 4, 3, 3}, s2),
		convCase("Conv/asymmetric-pads", x4, []int64{4, 3, 3, 3}, []int64{2, 4, 8, 5}, graph.Ints("pads", 2, 0, 2, 1)),
		convCase("Conv/same-upper-stride2", []int64{2, 3, 7, 7}, []int64{4, 3, 4, 4}, []int64{2, 4, 4, 4}, graph.Str("auto_pad", "SAME_UPPER"), s2),
		convCase("Conv/same-lower", []int64{2, 3, 5, 5}, []int64{4, 3, 2, 2}, []int64{2, 4, 5, 5}, graph.Str("auto_pad", "SAME_LOWER")),
		convCase("Conv/valid", x4, []int64{4, 3, 3, 3}, []int64{2, 4, 4, 4}, graph.Str("auto_pad", "VALID")),
		convCase("Conv/dilation2", x4, []int64{4, 3, 3, 3}, []int64{2, 4, 6, 6}, graph.Ints("pads", 2, 2, 2, 2), graph.Ints("dilations", 2, 2)),
		convCase("Conv/dilation2-stride2", []int64{2, 3, 9, 9}, []int64{4, 3, 3, 3}, []int64{2, 4, 4, 4}, pads1, s2, graph.Ints("dilations", 2, 2)),
		convCase("Conv/depthwise", x4, []int64{3, 1, 3, 3}, []int64{2, 3, 6, 6}, pads1, graph.Int("group", 3)),
		convCase("Conv/depthwise-mult2-stride2", []int64{2, 3, 7, 7}, []int64{6, 1, 3, 3}, []int64{2, 6, 4, 4}, pads1, s2, graph.Int("group", 3)),
		convCase("Conv/grouped", []int64{2, 4, 5, 5}, []int64{6, 2, 3, 3}, []int64{2, 6, 5, 5}, pads1, graph.Int("group", 2)),
		// Kernel taps that meet only padding (the gradient of the live taps
		// alone, padded back): 1×1 maps, a stride-2 window, one axis only.
		convCase("Conv/dead-taps-1x1-map", []int64{2, 3, 1, 1}, []int64{4, 3, 3, 3}, []int64{2, 4, 1, 1}, pads1),
		convCase("Conv/dead-taps-stride2", []int64{2, 3, 2, 2}, []int64{4, 3, 3, 3}, []int64{2, 4, 1, 1}, pads1, s2),
		convCase("Conv/dead-taps-one-axis", []int64{2, 3, 5, 1}, []int64{4, 3, 3, 3}, []int64{2, 4, 5, 1}, pads1),
		convCase("Conv/dead-taps-depthwise", []int64{2, 4, 1, 1}, []int64{4, 1, 3, 3}, []int64{2, 4, 1, 1}, pads1, graph.Int("group", 4)),
		// Output maps of at most 4 pixels train as one MatMul over the batch
		// (compiler's convMatMul), input gradients too.
		convCase("Conv/small-map-2x2", []int64{2, 3, 2, 2}, []int64{4, 3, 3, 3}, []int64{2, 4, 2, 2}, pads1),
		convCase("Conv/small-map-dilation2-stride2", []int64{2, 3, 5, 5}, []int64{4, 3, 3, 3}, []int64{2, 4, 2, 2}, pads1, s2, graph.Ints("dilations", 2, 2)),
		convCase("Conv/small-map-asymmetric-pads", []int64{2, 3, 2, 3}, []int64{4, 3, 2, 2}, []int64{2, 4, 2, 2}, graph.Ints("pads", 1, 0, 0, 0)),
		convCase("Conv/1x1-stride2", x4, []int64{4, 3, 1, 1}, []int64{2, 4, 3, 3}, s2),
		convCase("Conv/1d", []int64{2, 3, 9}, []int64{4, 3, 3}, []int64{2, 4, 9}, graph.Ints("pads", 1, 1)),
		{name: "ConvTranspose/stride2", dims: []int64{2, 4, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("ConvTranspose", []string{n.in(n.param("x", 1, 1, 4, 4, 4)), n.param("w", 0.4, 4, 3, 3, 3), n.param("b", 0.3, 3)},
				pads1, s2, graph.Ints("output_padding", 1, 1))
			return n.head(y, 3, 3*8*8)
		}},
		{name: "ConvTranspose/grouped", dims: []int64{2, 4, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("ConvTranspose", []string{n.in(n.param("x", 1, 1, 4, 4, 4)), n.param("w", 0.4, 4, 2, 3, 3)},
				pads1, graph.Int("group", 2))
			return n.head(y, 3, 4*4*4)
		}},
		gemmCase("Gemm/plain", false, false, []int64{5, 3}, []int64{3}, 0.7, 1.3),
		gemmCase("Gemm/transB", false, true, []int64{3, 5}, []int64{1, 3}, 1, 1),
		gemmCase("Gemm/transA", true, false, []int64{5, 3}, []int64{2, 3}, 1.5, 0.5),
		gemmCase("Gemm/transAB", true, true, []int64{3, 5}, nil, 1, 1),
		{name: "MatMul/2d", dims: []int64{2, 5}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("MatMul", []string{n.in(n.param("a", 1, 1, 5)), n.param("bmat", 0.5, 5, 3)})
			n.b.NodeNamed("Identity", []string{y}, []string{"out"})
			n.b.Output("out", graph.Float, -1, 3)
			return n.b.Model()
		}},
		{name: "MatMul/batched-broadcast", dims: []int64{2, 2, 4, 5}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("MatMul", []string{n.in(n.param("a", 1, 1, 2, 4, 5)), n.param("bmat", 0.5, 2, 5, 3)})
			y = n.b.Op("MatMul", []string{y, n.param("c", 0.5, 3, 2)})
			return n.head(y, 3, 2*4*2)
		}},
		binary("Add", []int64{3, 1, 1}, false),
		binary("Add", []int64{1}, false),
		binary("Sub", []int64{4}, false),
		binary("Sub", []int64{2, 3, 4, 4}, false),
		binary("Mul", []int64{3, 1, 1}, false),
		binary("Mul", []int64{1, 3, 4, 4}, false),
		binary("Div", []int64{3, 1, 4}, true),
		binary("Div", []int64{1}, true),
		{name: "Sum/Where/Neg", dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			x := n.in(n.param("x", 1, 1, 3, 4, 4))
			s := n.b.Op("Sum", []string{x, n.param("a", 1, 3, 1, 1), n.param("b", 1, 4)})
			cond := n.b.Op("Greater", []string{n.x, n.b.ConstFloat(0)})
			w := n.b.Op("Where", []string{cond, s, n.b.Op("Neg", []string{n.param("c", 1, 1, 4)})})
			return n.head(w, 3, 48)
		}},
		unary("Relu", kinked, away, "Relu"),
		unary("LeakyRelu", kinked, away, "LeakyRelu", graph.Flt("alpha", 0.1)),
		unary("Sigmoid", smooth, std, "Sigmoid"),
		unary("Tanh", smooth, std, "Tanh"),
		unary("Exp", smooth, std, "Exp"),
		unary("Log", smooth, pos, "Log"),
		unary("Sqrt", smooth, pos, "Sqrt"),
		unary("Reciprocal", smooth, pos, "Reciprocal"),
		unary("Identity", smooth, std, "Identity"),
		unary("Abs", kinked, away, "Abs"),
		unary("Erf", smooth, std, "Erf"),
		unary("Softplus", smooth, std, "Softplus"),
		unary("Elu", kinked, away, "Elu", graph.Flt("alpha", 0.7)),
		{name: "HardSigmoid", dims: []int64{2, 3, 4, 4}, zero: true, tl: kinked, build: func(n *net) *pb.ModelProto {
			// αx+β = 0.25x+0.5 crosses 0 and 1 at x = -2, 2: spaced values avoid both.
			y := n.b.Op("HardSigmoid", []string{n.in(n.paramSpaced("x", 0.07, 2, 3, 4, 4))}, graph.Flt("alpha", 0.25))
			return n.head(y, 3, 48)
		}},
		{name: "HardSwish", dims: []int64{2, 3, 4, 4}, zero: true, tl: kinked, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("HardSwish", []string{n.in(n.paramSpaced("x", 0.13, 2, 3, 4, 4))}) // kinks at ±3
			return n.head(y, 3, 48)
		}},
		{name: "PRelu", dims: []int64{2, 3, 4, 4}, zero: true, tl: kinked, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("PRelu", []string{n.in(n.paramAway("x", 0.2, 2, 3, 4, 4)), n.param("slope", 0.3, 3, 1, 1)})
			return n.head(y, 3, 48)
		}},
		{name: "Pow", dims: []int64{2, 3, 4, 4}, zero: true, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("Pow", []string{n.in(n.paramPos("x", 0.5, 2, 3, 4, 4)), n.paramPos("e", 0.5, 3, 1, 1)})
			return n.head(y, 3, 48)
		}},
		unary("Dropout", smooth, std, "Dropout"),
		unary("Softmax/axis1", smooth, std, "Softmax", graph.Int("axis", 1)),
		unary("LogSoftmax/axis-1", smooth, std, "LogSoftmax", graph.Int("axis", -1)),
		{name: "Clip/min-max", dims: []int64{2, 3, 4, 4}, zero: true, tl: kinked, build: func(n *net) *pb.ModelProto {
			x := n.in(n.paramSpaced("x", 0.07, 2, 3, 4, 4)) // values ±3.36, none within 0.035 of ±1
			y := n.b.Op("Clip", []string{x, n.b.ConstFloat(-1), n.b.ConstFloat(1)})
			return n.head(y, 3, 48)
		}},
		{name: "Clip/min-only", dims: []int64{2, 3, 4, 4}, zero: true, tl: kinked, build: func(n *net) *pb.ModelProto {
			x := n.in(n.paramSpaced("x", 0.07, 2, 3, 4, 4))
			y := n.b.Op("Clip", []string{x, n.b.ConstFloat(0.5)})
			return n.head(y, 3, 48)
		}},
		{name: "MaxPool/overlapping", dims: []int64{2, 3, 7, 7}, zero: true, tl: kinked, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("MaxPool", []string{n.in(n.paramSpaced("x", 0.05, 2, 3, 7, 7))}, k3, s2, pads1)
			return n.head(y, 3, 3*4*4)
		}},
		{name: "MaxPool/2x2-ceil", dims: []int64{2, 3, 7, 7}, zero: true, tl: kinked, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("MaxPool", []string{n.in(n.paramSpaced("x", 0.05, 2, 3, 7, 7))}, graph.Ints("kernel_shape", 2, 2), s2, graph.Int("ceil_mode", 1))
			return n.head(y, 3, 3*4*4)
		}},
		{name: "AveragePool/exclude-pad", dims: []int64{2, 3, 7, 7}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("AveragePool", []string{n.in(n.param("x", 1, 1, 3, 7, 7))}, k3, s2, pads1)
			return n.head(y, 3, 3*4*4)
		}},
		{name: "AveragePool/include-pad", dims: []int64{2, 3, 7, 7}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("AveragePool", []string{n.in(n.param("x", 1, 1, 3, 7, 7))}, k3, s2, pads1, graph.Int("count_include_pad", 1))
			return n.head(y, 3, 3*4*4)
		}},
		{name: "AveragePool/2x2", dims: []int64{2, 3, 6, 6}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("AveragePool", []string{n.in(n.param("x", 1, 1, 3, 6, 6))}, graph.Ints("kernel_shape", 2, 2), s2)
			return n.head(y, 3, 3*3*3)
		}},
		{name: "GlobalAveragePool", dims: []int64{2, 3, 5, 5}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("GlobalAveragePool", []string{n.in(n.param("x", 1, 1, 3, 5, 5))})
			return n.head(y, 3, 3)
		}},
		{name: "BatchNormalization/4d", dims: []int64{4, 3, 3, 3}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("BatchNormalization", []string{n.in(n.param("x", 1, 4, 3, 3, 3)), n.param("scale", 1, 3), n.param("bias", 1, 3),
				n.paramVals("rm", []int64{3}, []float32{0.1, 0.2, 0.3}), n.paramVals("rv", []int64{3}, []float32{1, 2, 3})}, graph.Flt("epsilon", 1e-3))
			return n.head(n.b.Op("Tanh", []string{y}), 3, 27)
		}},
		{name: "BatchNormalization/2d", dims: []int64{4, 5}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("BatchNormalization", []string{n.in(n.param("x", 1, 4, 5)), n.param("scale", 1, 5), n.param("bias", 1, 5),
				n.paramVals("rm", []int64{5}, make([]float32, 5)), n.paramVals("rv", []int64{5}, []float32{1, 1, 1, 1, 1})})
			return n.head(n.b.Op("Tanh", []string{y}), 3, 5)
		}},
		{name: "Flatten/Reshape/Transpose", dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			x := n.b.Op("Flatten", []string{n.in(std(n))}, graph.Int("axis", 2)) // [6, 16]
			x = n.b.Op("Reshape", []string{x, n.b.ConstInt64s(2, 3, 16)})
			x = n.b.Op("Transpose", []string{x}, graph.Ints("perm", 0, 2, 1))
			x = n.b.Op("Mul", []string{x, n.param("m", 1, 16, 3)})
			return n.head(x, 3, 48)
		}},
		{name: "Reshape/torch-shape-chain", dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			x := n.in(std(n))
			s := n.b.Op("Shape", []string{x})
			n0 := n.b.Op("Gather", []string{s, n.b.Op("Constant", nil, graph.TensorAttr("value", graph.Int64Tensor("", nil, []int64{0})))}, graph.Int("axis", 0))
			u := n.b.Op("Unsqueeze", []string{n0, n.b.ConstInt64s(0)})
			c := n.b.Op("Concat", []string{u, n.b.ConstInt64s(-1)}, graph.Int("axis", 0))
			c = n.b.Op("Cast", []string{c}, graph.Int("to", int64(graph.Int64)))
			y := n.b.Op("Reshape", []string{x, c})
			y = n.b.Op("Mul", []string{y, n.param("m", 1, 48)})
			w := n.param("head.w", 0.2, 48, 3)
			o := n.b.Op("MatMul", []string{y, w})
			n.b.NodeNamed("Identity", []string{o}, []string{"out"})
			n.b.Output("out", graph.Float, -1, 3)
			return n.b.Model()
		}},
		{name: "Squeeze/Unsqueeze/Cast", dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			x := n.b.Op("Unsqueeze", []string{n.in(std(n)), n.b.ConstInt64s(2)})
			x = n.b.Op("Cast", []string{x}, graph.Int("to", int64(graph.Float)))
			x = n.b.Op("Mul", []string{x, n.param("m", 1, 3, 1, 4, 4)})
			x = n.b.Op("Squeeze", []string{x, n.b.ConstInt64s(2)})
			return n.head(x, 3, 48)
		}},
		{name: "Concat", dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			a := n.in(std(n))
			b := n.b.Op("Mul", []string{n.x, n.param("b", 1, 1, 1, 4, 4)}) // [N,3,4,4]
			c := n.b.Op("Concat", []string{a, b, n.b.Op("Tanh", []string{a})}, graph.Int("axis", 1))
			return n.head(c, 3, 9*16)
		}},
		{name: "Split/partly-used", dims: []int64{2, 5, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			x := n.in(n.param("x", 1, 1, 5, 4, 4))
			outs := n.b.Node("Split", []string{x, n.b.ConstInt64s(2, 1, 2)}, 3, graph.Int("axis", 1))
			y := n.b.Op("Add", []string{outs[0], n.b.Op("Mul", []string{outs[2], outs[2]})})
			return n.head(y, 3, 32)
		}},
		{name: "Slice/steps", dims: []int64{2, 3, 9, 8}, tl: smooth, build: func(n *net) *pb.ModelProto {
			x := n.in(n.param("x", 1, 1, 3, 9, 8))
			// rows 1,3,5,7 ; cols 6,3 (negative step) ; channels 1: (negative start)
			y := n.b.Op("Slice", []string{x, n.b.ConstInt64s(1, 6, -2), n.b.ConstInt64s(8, 0, 100), n.b.ConstInt64s(2, 3, 1), n.b.ConstInt64s(2, -3, 1)})
			return n.head(y, 3, 2*4*2)
		}},
		{name: "Pad/constant", dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			x := n.in(std(n))
			y := n.b.Op("Pad", []string{x, n.b.ConstInt64s(0, 0, 1, -1, 0, 0, 2, 0), n.b.ConstFloat(0.5)})
			y = n.b.Op("Mul", []string{y, n.param("m", 1, 3, 7, 3)})
			return n.head(y, 3, 3*7*3)
		}},
		{name: "ReduceMean/ReduceSum", dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			x := n.in(std(n))
			a := n.b.Op("ReduceMean", []string{x}, graph.Ints("axes", 2, 3), graph.Int("keepdims", 0)) // [N,3]
			s := n.b.Op("ReduceSum", []string{n.b.Op("Tanh", []string{x}), n.b.ConstInt64s(1)})        // [N,1,4,4]
			s = n.b.Op("Flatten", []string{s})
			y := n.b.Op("Concat", []string{a, s}, graph.Int("axis", 1))
			return n.head(y, 3, 19)
		}},
		{name: "opset18/ReduceMean-axes-input/Split-num_outputs", dims: []int64{2, 4, 3, 3}, tl: smooth, build: func(n *net) *pb.ModelProto {
			x := n.in(n.param("x", 1, 1, 4, 3, 3))
			parts := n.b.Node("Split", []string{x}, 2, graph.Int("axis", 1), graph.Int("num_outputs", 2))
			a := n.b.Op("ReduceMean", []string{parts[0], n.b.ConstInt64s(2, 3)}, graph.Int("keepdims", 0)) // [N,2]
			c := n.b.Op("Flatten", []string{n.b.Op("Tanh", []string{parts[1]})})                           // [N,18]
			m := n.head(n.b.Op("Concat", []string{a, c}, graph.Int("axis", 1)), 3, 20)
			v := int64(18)
			m.OpsetImport[0].Version = &v
			return m
		}},
		{name: "Gather/float-axis1-repeats-negative", dims: []int64{2, 5, 3}, tl: smooth, build: func(n *net) *pb.ModelProto {
			x := n.in(n.param("x", 1, 1, 5, 3))
			n.b.G.Initializer = append(n.b.G.Initializer, graph.Int64Tensor("gidx", []int64{2, 2}, []int64{4, 0, -1, 2}))
			y := n.b.Op("Gather", []string{x, "gidx"}, graph.Int("axis", 1)) // [N,2,2,3]
			return n.head(n.b.Op("Tanh", []string{y}), 3, 12)
		}},
		{name: "Gather/float-scalar-index-last-axis", dims: []int64{2, 3, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			x := n.in(n.param("x", 1, 1, 3, 4))
			n.b.G.Initializer = append(n.b.G.Initializer, graph.Int64Tensor("gidx", nil, []int64{1}))
			y := n.b.Op("Gather", []string{x, "gidx"}, graph.Int("axis", 2)) // [N,3]
			return n.head(y, 3, 3)
		}},
		{name: "LayerNormalization/last-two-axes", dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("LayerNormalization", []string{n.in(std(n)), n.param("s", 0.5, 4, 4), n.param("b", 0.5, 4, 4)}, graph.Int("axis", -2))
			return n.head(y, 3, 48)
		}},
		{name: "InstanceNormalization", dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("InstanceNormalization", []string{n.in(std(n)), n.param("s", 0.5, 3), n.param("b", 0.5, 3)}, graph.Flt("epsilon", 1e-3))
			return n.head(y, 3, 48)
		}},
		{name: "GroupNormalization/opset21", dims: []int64{2, 4, 3, 3}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("GroupNormalization", []string{n.in(n.param("x", 1, 1, 4, 3, 3)), n.param("s", 0.5, 4), n.param("b", 0.5, 4)}, graph.Int("num_groups", 2))
			m := n.head(y, 3, 36)
			v := int64(21)
			m.OpsetImport[0].Version = &v
			return m
		}},
		{name: "GroupNormalization/opset18-per-group", dims: []int64{2, 4, 3, 3}, tl: smooth, build: func(n *net) *pb.ModelProto {
			y := n.b.Op("GroupNormalization", []string{n.in(n.param("x", 1, 1, 4, 3, 3)), n.param("s", 0.5, 2), n.param("b", 0.5, 2)}, graph.Int("num_groups", 2))
			m := n.head(y, 3, 36)
			v := int64(18)
			m.OpsetImport[0].Version = &v
			return m
		}},
		{name: "Gelu/opset20-erf-and-tanh", dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			x := n.in(std(n))
			y := n.b.Op("Add", []string{n.b.Op("Gelu", []string{x}), n.b.Op("Gelu", []string{n.b.Op("Mul", []string{x, n.param("a", 1, 3, 1, 1)})}, graph.Str("approximate", "tanh"))})
			m := n.head(y, 3, 48)
			v := int64(20)
			m.OpsetImport[0].Version = &v
			return m
		}},
		{name: "SplitToSequence/chunks-read-by-SequenceAt", dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			// torch's x.split(2, dim=1) as the dynamo exporter writes it:
			// chunks of 2 and 1 channels, read at 0 and -1, swapped.
			n.b.G.Initializer = append(n.b.G.Initializer, graph.Int64Tensor("chunk", nil, []int64{2}),
				graph.Int64Tensor("first", nil, []int64{0}), graph.Int64Tensor("last", nil, []int64{-1}))
			seq := n.b.Op("SplitToSequence", []string{n.in(n.param("x", 1, 1, 3, 4, 4)), "chunk"}, graph.Int("axis", 1))
			a0, a1 := n.b.Op("SequenceAt", []string{seq, "first"}), n.b.Op("SequenceAt", []string{seq, "last"})
			return n.head(n.b.Op("Concat", []string{n.b.Op("Tanh", []string{a1}), a0}, graph.Int("axis", 1)), 3, 48)
		}},
		{name: "Expand", dims: []int64{2, 3, 4, 4}, tl: smooth, build: func(n *net) *pb.ModelProto {
			e := n.b.Op("Expand", []string{n.param("e", 1, 3, 1, 4), n.b.ConstInt64s(2, 3, 4, 4)})
			return n.head(n.b.Op("Mul", []string{n.x, e}), 3, 48)
		}},
	}
	return cs
}

// TestGradCasesCoverRules: every op type the compiler differentiates
// appears in some gradient-check case, so a new rule cannot land unchecked.
func TestGradCasesCoverRules(t *testing.T) {
	seen := map[string]bool{}
	for i, c := range gradCases() {
		for _, n := range c.build(newNet(uint64(100+i), c.dims...)).Graph.Node {
			seen[n.GetOpType()] = true
		}
	}
	ops := compiler.Differentiable()
	if len(ops) == 0 {
		t.Fatal("compiler.Differentiable() is empty")
	}
	for _, op := range ops {
		if !compiler.HasRule(op) {
			t.Errorf("%s: differentiable but not in compiler.Supported()", op)
		}
		if !seen[op] {
			t.Errorf("%s has a gradient rule but no case in gradCases()", op)
		}
	}
	// Ops written out in others (CastLike, a Cast, is checked by the
	// exporter fixtures).
	for _, op := range graph.RewrittenOps {
		if !seen[op] && op != "CastLike" {
			t.Errorf("%s is trained through its rewrite but has no case in gradCases()", op)
		}
	}
}

// TestGradRules checks every gradient rule against finite differences;
// Conv and ConvTranspose cases run with each weight-gradient method.
func TestGradRules(t *testing.T) {
	rt := openRuntime(t)
	methods := map[compiler.WeightGradMethod]string{
		compiler.WeightGradConv: "wg-conv", compiler.WeightGradIm2col: "wg-im2col", compiler.WeightGradOffsets: "wg-offsets",
	}
	for i, c := range gradCases() {
		variants := []compiler.WeightGradMethod{compiler.WeightGradAuto}
		if strings.HasPrefix(c.name, "Conv") {
			variants = []compiler.WeightGradMethod{compiler.WeightGradConv, compiler.WeightGradIm2col, compiler.WeightGradOffsets}
		}
		for _, wg := range variants {
			name := c.name
			if wg != compiler.WeightGradAuto {
				name += "/" + methods[wg]
			}
			t.Run(name, func(t *testing.T) {
				n := newNet(uint64(100+i), c.dims...)
				m := c.build(n)
				var images harness.Tensor
				if c.zero {
					images = harness.Tensor{Shape: c.dims, F32: make([]float32, graph.NumElements(c.dims))}
				} else {
					images = randTensor(n.rng, 1, c.dims...)
				}
				checkGrad(t, rt, m, compiler.Options{WeightGrad: wg}, images, 3, c.tl)
			})
		}
	}
}

// TestGradZoo checks the whole compiled gradient of each zoo model at tiny
// width against finite differences, BatchNorm in training form. ReLU's kinks
// make finite differences of a deep net unreliable in float32, so each Relu
// becomes a Softplus (which has its own rule check): every other op, stride,
// residual Add and shape of the real graph stays as built.
func TestGradZoo(t *testing.T) {
	rt := openRuntime(t)
	for _, tc := range []struct {
		name  string
		width float64
		tol   tol
	}{{"allcnn", 0.04, deep}, {"resnet18", 0.05, deep}, {"small", 0.1, smooth}} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := zoo.Build(tc.name, zoo.Options{Width: tc.width, Seed: 5, Classes: 4, ImageSize: 16})
			if err != nil {
				t.Fatal(err)
			}
			relus := 0
			for _, n := range m.Graph.Node {
				if n.GetOpType() == "Relu" {
					softplus := "Softplus"
					n.OpType = &softplus
					relus++
				}
			}
			if relus == 0 {
				t.Fatal("no Relu to smooth: the zoo model changed")
			}
			// 16×16 images and batch 8 keep at least 8 values in every
			// BatchNorm's statistics (resnet18 ends at 2×2), so the loss stays
			// smooth on the finite-difference scale.
			images := randTensor(rand.New(rand.NewPCG(3, 4)), 1, 8, 3, 16, 16)
			checkGrad(t, rt, m, compiler.Options{}, images, 4, tc.tol)
		})
	}
}
