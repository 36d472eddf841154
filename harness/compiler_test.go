package harness_test

// Checks of compiled train-step graphs against hand computations in Go: the
// SGD variants, BatchNorm running statistics, the loss with label
// smoothing, and the correct count.

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// bnHeadNet: images [N,3,2,2] -> BatchNormalization (momentum attr m) ->
// Flatten -> Gemm(w [12,4] , b [4]) logits.
func bnHeadNet(seed uint64, m float32) *pb.ModelProto {
	n := newNet(seed, 4, 3, 2, 2)
	x := n.b.Op("BatchNormalization", []string{n.x, n.param("bn.weight", 1, 3), n.param("bn.bias", 1, 3),
		n.param("bn.running_mean", 1, 3), n.paramPos("bn.running_var", 0.5, 3)}, graph.Flt("momentum", m), graph.Flt("epsilon", 1e-5))
	f := n.b.Op("Flatten", []string{x})
	y := n.b.Op("Gemm", []string{f, n.param("fc.weight", 0.3, 12, 4), n.param("fc.bias", 0.3, 4)})
	n.b.NodeNamed("Identity", []string{y}, []string{"out"})
	n.b.Output("out", graph.Float, -1, 4)
	return n.b.Model()
}

// runGraph runs model m with inputs by name and returns outputs by name;
// scalar outputs come back as 1-element vectors.
func runGraph(t *testing.T, rt *harness.Runtime, m *pb.ModelProto, inNames []string, ins map[string]harness.Tensor, outNames []string, scalars ...string) map[string]harness.Tensor {
	t.Helper()
	vec := withVectors(m, scalars...)
	// Scalar inputs travel as 1-element vectors too.
	inNames = slices.Clone(inNames)
	for i, n := range inNames {
		if x, ok := ins[n]; ok && len(x.Shape) == 0 {
			vectorInput(m, n)
			inNames[i] = n + "_1"
			ins[n+"_1"] = harness.Tensor{Shape: []int64{1}, F32: x.F32, I64: x.I64}
		}
	}
	var outs []string
	for _, o := range outNames {
		if !slices.Contains(scalars, o) {
			outs = append(outs, o)
		}
	}
	outs = append(outs, vec...)
	data, err := graph.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	s, err := rt.NewSession(data, inNames, outs)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var in []harness.Tensor
	for _, n := range inNames {
		x, ok := ins[n]
		if !ok {
			t.Fatalf("no value for input %q", n)
		}
		in = append(in, x)
	}
	res, err := s.Run(in)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]harness.Tensor{}
	for i, o := range outs {
		got[o] = res[i]
	}
	for _, sc := range scalars {
		got[sc] = got[sc+"_1"]
	}
	return got
}

// vectorInput replaces scalar graph input name by a 1-element vector input
// name_1 reshaped to the scalar.
func vectorInput(m *pb.ModelProto, name string) {
	g := m.Graph
	for _, in := range g.Input {
		if in.GetName() == name {
			_, et := graph.Dims(in)
			*in = *graph.ValueInfo(name+"_1", et, 1)
		}
	}
	b := graph.Wrap(g)
	shape := b.Fresh(name + "_scalar_shape")
	g.Initializer = append(g.Initializer, graph.Int64Tensor(shape, []int64{0}, nil))
	r := b.NodeNamed("Reshape", []string{name + "_1", shape}, []string{name})
	g.Node = append([]*pb.NodeProto{r}, g.Node[:len(g.Node)-1]...)
}

func closeTo(t *testing.T, what string, got, want []float32, tol float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if d := math.Abs(float64(got[i] - want[i])); d > tol*math.Max(1, math.Abs(float64(want[i]))) || math.IsNaN(float64(got[i])) {
			t.Errorf("%s[%d] = %v, want %v", what, i, got[i], want[i])
			return
		}
	}
}

// TestSGDUpdate checks p.next and p.mom.next of every optimizer variant
// against the update computed in Go from CompileGrad's gradients.
func TestSGDUpdate(t *testing.T) {
	rt := openRuntime(t)
	m := bnHeadNet(3, 0.9)
	vals := modelValues(t, m)
	rng := rand.New(rand.NewPCG(5, 5))
	images := randTensor(rng, 1, 4, 3, 2, 2)
	labels := harness.Tensor{Shape: []int64{4}, I64: []int64{0, 3, 1, 3}}
	const lr = 0.3

	gg, err := compiler.CompileGrad(m, compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ins := map[string]harness.Tensor{compiler.Images: images, compiler.Labels: labels, compiler.LR: {Shape: []int64{}, F32: []float32{lr}}}
	for _, l := range [][]compiler.Tensor{gg.Params, gg.Stats} {
		for _, p := range l {
			ins[p.Name] = harness.Tensor{Shape: p.Dims, F32: vals[p.Name]}
			// Momentum buffers mid-training: nonzero.
			ins[p.Name+".mom"] = randTensor(rng, 0.5, p.Dims...)
		}
	}
	grads := runGraph(t, rt, gg.Model, gg.InputNames(), ins, gg.OutputNames()[:len(gg.Params)])

	for _, c := range []struct {
		name string
		o    compiler.Options
	}{
		{"sgd", compiler.Options{}},
		{"weight-decay", compiler.Options{WeightDecay: 0.1}},
		{"momentum", compiler.Options{Momentum: 0.9}},
		{"nesterov-no-decay-on-bias", compiler.Options{Momentum: 0.8, Nesterov: true, WeightDecay: 0.05, NoDecayOnBiasAndNorm: true}},
		{"frozen", compiler.Options{Momentum: 0.5, WeightDecay: 0.01, Freeze: []string{"bn.*"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tg, err := compiler.CompileTrain(m, c.o)
			if err != nil {
				t.Fatal(err)
			}
			if c.o.Momentum == 0 && len(tg.States) != 0 {
				t.Errorf("plain SGD has state tensors %v", tg.States)
			}
			out := runGraph(t, rt, tg.Model, tg.InputNames(), ins, tg.OutputNames(), compiler.Loss, compiler.Correct)
			trained := 0
			for _, p := range gg.Params {
				if slices.Contains(tg.Frozen, p.Name) {
					continue
				}
				trained++
				pv, g := vals[p.Name], grads[p.Name+".grad"].F32
				mom := ins[p.Name+".mom"].F32
				wantP := make([]float32, len(pv))
				wantM := make([]float32, len(pv))
				for i := range pv {
					gi := float64(g[i])
					if c.o.WeightDecay != 0 && !(c.o.NoDecayOnBiasAndNorm && len(p.Dims) <= 1) {
						gi += float64(c.o.WeightDecay) * float64(pv[i])
					}
					upd := gi
					if c.o.Momentum != 0 {
						buf := float64(c.o.Momentum)*float64(mom[i]) + gi
						wantM[i] = float32(buf)
						upd = buf
						if c.o.Nesterov {
							upd = gi + float64(c.o.Momentum)*buf
						}
					}
					wantP[i] = float32(float64(pv[i]) - lr*upd)
				}
				closeTo(t, p.Name+".next", out[p.Name+".next"].F32, wantP, 1e-5)
				if c.o.Momentum != 0 {
					closeTo(t, p.Name+".mom.next", out[p.Name+".mom.next"].F32, wantM, 1e-5)
				}
			}
			if len(tg.Params) != trained {
				t.Errorf("%d trained params, want %d", len(tg.Params), trained)
			}
		})
	}
}

// TestBatchNormRunningStats checks the running statistics update
// (momentum attribute 0.8: running = 0.8·running + 0.2·batch, unbiased
// variance) and that the train graph normalises with the biased batch
// variance (the loss of a model whose head reads the BN output).
func TestBatchNormRunningStats(t *testing.T) {
	rt := openRuntime(t)
	const mom = 0.8
	m := bnHeadNet(4, mom)
	vals := modelValues(t, m)
	rng := rand.New(rand.NewPCG(6, 6))
	images := randTensor(rng, 2, 4, 3, 2, 2)
	for i := range images.F32 {
		images.F32[i] += float32(i % 3) // channel-dependent offsets
	}
	labels := []int64{1, 0, 2, 3}
	tg, err := compiler.CompileTrain(m, compiler.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ins := map[string]harness.Tensor{compiler.Images: images, compiler.Labels: {Shape: []int64{4}, I64: labels}, compiler.LR: {Shape: []int64{}, F32: []float32{0}}}
	for _, l := range [][]compiler.Tensor{tg.Params, tg.Stats} {
		for _, p := range l {
			ins[p.Name] = harness.Tensor{Shape: p.Dims, F32: vals[p.Name]}
		}
	}
	out := runGraph(t, rt, tg.Model, tg.InputNames(), ins, tg.OutputNames(), compiler.Loss, compiler.Correct)

	// Go reference: per-channel statistics over N, H, W.
	const n, c, hw = 4, 3, 4
	mean, biased := make([]float64, c), make([]float64, c)
	for ch := range c {
		var s float64
		for b := range n {
			for k := range hw {
				s += float64(images.F32[(b*c+ch)*hw+k])
			}
		}
		mean[ch] = s / (n * hw)
		var v float64
		for b := range n {
			for k := range hw {
				d := float64(images.F32[(b*c+ch)*hw+k]) - mean[ch]
				v += d * d
			}
		}
		biased[ch] = v / (n * hw)
	}
	wantRM, wantRV := make([]float32, c), make([]float32, c)
	for ch := range c {
		wantRM[ch] = float32(mom*float64(vals["bn.running_mean"][ch]) + (1-mom)*mean[ch])
		wantRV[ch] = float32(mom*float64(vals["bn.running_var"][ch]) + (1-mom)*biased[ch]*(n*hw)/(n*hw-1))
	}
	closeTo(t, "bn.running_mean.next", out["bn.running_mean.next"].F32, wantRM, 1e-5)
	closeTo(t, "bn.running_var.next", out["bn.running_var.next"].F32, wantRV, 1e-5)

	// Forward in training form: logits from the biased batch variance.
	gamma, beta := vals["bn.weight"], vals["bn.bias"]
	w, bias := vals["fc.weight"], vals["fc.bias"]
	var loss float64
	correct := int64(0)
	for b := range n {
		logits := make([]float64, 4)
		for j := range 4 {
			logits[j] = float64(bias[j])
		}
		for ch := range c {
			for k := range hw {
				xh := (float64(images.F32[(b*c+ch)*hw+k]) - mean[ch]) / math.Sqrt(biased[ch]+1e-5)
				y := xh*float64(gamma[ch]) + float64(beta[ch])
				for j := range 4 {
					logits[j] += y * float64(w[(ch*hw+k)*4+j])
				}
			}
		}
		loss += crossEntropy(logits, labels[b], 0) / n
		if argmax(logits) == labels[b] {
			correct++
		}
	}
	closeTo(t, "loss", out[compiler.Loss].F32, []float32{float32(loss)}, 1e-5)
	if got := out[compiler.Correct].I64[0]; got != correct {
		t.Errorf("correct = %d, want %d", got, correct)
	}
}

func crossEntropy(logits []float64, label int64, eps float64) float64 {
	mx := math.Inf(-1)
	for _, z := range logits {
		mx = math.Max(mx, z)
	}
	var s float64
	for _, z := range logits {
		s += math.Exp(z - mx)
	}
	lse := mx + math.Log(s)
	k := float64(len(logits))
	var l float64
	for j, z := range logits {
		target := eps / k
		if int64(j) == label {
			target += 1 - eps
		}
		l -= target * (z - lse)
	}
	return l
}

func argmax(v []float64) int64 {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return int64(best)
}

// TestLossLabelSmoothing compares loss and correct of train (with label
// smoothing) and eval graphs with Go on the eval graph's logits.
func TestLossLabelSmoothing(t *testing.T) {
	rt := openRuntime(t)
	n := newNet(9, 6, 5)
	y := n.b.Op("Gemm", []string{n.x, n.param("fc.weight", 1, 7, 5), n.param("fc.bias", 1, 7)}, graph.Int("transB", 1))
	n.b.NodeNamed("Identity", []string{y}, []string{"out"})
	n.b.Output("out", graph.Float, -1, 7)
	m := n.b.Model()
	vals := modelValues(t, m)
	images := randTensor(n.rng, 1, 6, 5)
	labels := []int64{0, 6, 3, 3, 1, 5}
	ins := map[string]harness.Tensor{compiler.Images: images, compiler.Labels: {Shape: []int64{6}, I64: labels}, compiler.LR: {Shape: []int64{}, F32: []float32{0.1}}}
	for name, v := range vals {
		ins[name] = harness.Tensor{Shape: map[string][]int64{"fc.weight": {7, 5}, "fc.bias": {7}}[name], F32: v}
	}
	eg, err := compiler.CompileEval(m)
	if err != nil {
		t.Fatal(err)
	}
	ev := runGraph(t, rt, eg.Model, eg.InputNames(), ins, eg.OutputNames(), compiler.Loss, compiler.Correct)
	logits := ev[compiler.Logits]
	if !slices.Equal(logits.Shape, []int64{6, 7}) {
		t.Fatalf("logits shape %v", logits.Shape)
	}
	for _, eps := range []float64{0, 0.1, 0.3} {
		var want float64
		correct := int64(0)
		for b := range 6 {
			z := make([]float64, 7)
			for j := range z {
				z[j] = float64(logits.F32[b*7+j])
			}
			want += crossEntropy(z, labels[b], eps) / 6
			if argmax(z) == labels[b] {
				correct++
			}
		}
		tg, err := compiler.CompileTrain(m, compiler.Options{LabelSmoothing: float32(eps)})
		if err != nil {
			t.Fatal(err)
		}
		tr := runGraph(t, rt, tg.Model, tg.InputNames(), ins, tg.OutputNames(), compiler.Loss, compiler.Correct)
		closeTo(t, "train loss", tr[compiler.Loss].F32, []float32{float32(want)}, 1e-5)
		if got := tr[compiler.Correct].I64[0]; got != correct {
			t.Errorf("eps %v: correct = %d, want %d", eps, got, correct)
		}
		if eps == 0 {
			closeTo(t, "eval loss", ev[compiler.Loss].F32, []float32{float32(want)}, 1e-5)
			if got := ev[compiler.Correct].I64[0]; got != correct {
				t.Errorf("eval correct = %d, want %d", got, correct)
			}
		}
	}
}

// fisherCases are the models of the Fisher gradient checks: together they
// give every op with a per-example rule a parameter input
// (TestFisherCasesCoverRules).
var fisherCases = []struct {
	name  string
	build func(seed uint64) *pb.ModelProto
}{
	// Conv with bias, BatchNormalization (inference form), an elementwise
	// parameter, a strided 1×1 Conv, Gemm with bias.
	{"conv-bn-gemm", func(seed uint64) *pb.ModelProto {
		n := newNet(seed, 3, 2, 5, 5)
		b := n.b
		x := b.Op("Conv", []string{n.x, n.param("c1.w", 0.4, 3, 2, 3, 3), n.param("c1.b", 0.2, 3)}, graph.Ints("pads", 1, 1, 1, 1))
		x = b.Op("BatchNormalization", []string{x, n.param("bn.w", 1, 3), n.param("bn.b", 0.5, 3), n.param("bn.rm", 0.2, 3), n.paramPos("bn.rv", 0.5, 3)})
		x = b.Op("Tanh", []string{x})
		x = b.Op("Mul", []string{x, n.param("scale", 1, 3, 1, 1)})
		x = b.Op("Conv", []string{x, n.param("c2.w", 0.5, 4, 3, 1, 1)}, graph.Ints("strides", 2, 2))
		x = b.Op("GlobalAveragePool", []string{x})
		x = b.Op("Flatten", []string{x})
		y := b.Op("Gemm", []string{x, n.param("fc.w", 0.7, 3, 4), n.param("fc.b", 0.3, 3)}, graph.Int("transB", 1))
		b.NodeNamed("Identity", []string{y}, []string{"out"})
		b.Output("out", graph.Float, -1, 3)
		return b.Model()
	}},
	// The other broadcasting elementwise ops with parameters broadcast
	// along different axes, and a 2-D MatMul.
	{"elementwise-matmul", func(seed uint64) *pb.ModelProto {
		n := newNet(seed, 3, 2, 5, 5)
		b := n.b
		x := b.Op("Conv", []string{n.x, n.param("c.w", 0.4, 3, 2, 3, 3)}, graph.Ints("pads", 1, 1, 1, 1))
		x = b.Op("Add", []string{x, n.param("add", 0.5, 3, 1, 1)})
		x = b.Op("Sub", []string{x, n.param("sub", 0.5, 1, 5)})
		x = b.Op("Div", []string{x, n.paramPos("div", 0.5, 3, 1, 1)})
		x = b.Op("Sum", []string{x, n.param("sum.a", 0.5, 5), n.param("sum.b", 0.5, 3, 1, 1)})
		x = b.Op("PRelu", []string{x, n.param("prelu", 0.5, 3, 1, 1)})
		x = b.Op("Where", []string{b.Op("Greater", []string{x, b.ConstFloat(0)}), x, n.param("where", 0.5, 3, 1, 1)})
		x = b.Op("Pow", []string{b.Op("Sigmoid", []string{x}), n.paramPos("pow", 0.5, 3, 1, 1)})
		x = b.Op("GlobalAveragePool", []string{x})
		x = b.Op("Flatten", []string{x})
		y := b.Op("MatMul", []string{x, n.param("mm.w", 0.7, 3, 4)})
		b.NodeNamed("Identity", []string{y}, []string{"out"})
		b.Output("out", graph.Float, -1, 4)
		return b.Model()
	}},
}

// TestFisherCasesCoverRules: every op type with a per-example rule has a
// parameter input in some Fisher case, so a new rule cannot land unchecked.
func TestFisherCasesCoverRules(t *testing.T) {
	seen := map[string]bool{}
	for i, c := range fisherCases {
		m := c.build(uint64(i))
		params := map[string]bool{}
		for _, x := range m.Graph.Initializer {
			params[x.GetName()] = true
		}
		for _, n := range m.Graph.Node {
			for _, in := range n.Input {
				seen[n.GetOpType()] = seen[n.GetOpType()] || params[in]
			}
		}
	}
	ops := compiler.PerExampleOps()
	if len(ops) == 0 {
		t.Fatal("compiler.PerExampleOps() is empty")
	}
	for _, op := range ops {
		if !seen[op] {
			t.Errorf("%s has a per-example rule but no parameter input in fisherCases", op)
		}
	}
}

// TestFisherPerExample compares the Fisher graph's per-example squared
// gradient norms of log p(label|x) with coordinate-wise central differences
// of log p computed in Go from the eval graph's logits (BatchNorm on the
// running statistics), and the batch-of-one form with the per-example one.
func TestFisherPerExample(t *testing.T) {
	rt := openRuntime(t)
	for _, c := range fisherCases {
		t.Run(c.name, func(t *testing.T) {
			m := c.build(21)
			vals := modelValues(t, m)
			rng := rand.New(rand.NewPCG(8, 8))
			const n = 3
			images := randTensor(rng, 1, n, 2, 5, 5)
			labels := []int64{2, 0, 1}

			fg, err := compiler.CompileFisher(m)
			if err != nil {
				t.Fatal(err)
			}
			if !fg.PerExample {
				t.Fatalf("%s should compile to the per-example form", c.name)
			}
			eg, err := compiler.CompileEval(m)
			if err != nil {
				t.Fatal(err)
			}
			ins := map[string]harness.Tensor{compiler.Images: images, compiler.Labels: {Shape: []int64{n}, I64: labels}}
			for _, p := range eg.Inputs {
				ins[p.Name] = harness.Tensor{Shape: p.Dims, F32: vals[p.Name]}
			}
			got := runGraph(t, rt, fg.Model, fg.InputNames(), ins, fg.OutputNames())

			fd := fdSquaredGrads(t, rt, m, vals, images, labels)
			for _, p := range fg.Params {
				want, g := fd[p.Name], got[p.Next].F32
				if len(g) != n {
					t.Fatalf("%s: %d values, want %d", p.Next, len(g), n)
				}
				for i := range n {
					if math.Abs(float64(g[i])-want[i]) > 1e-2*want[i]+1e-5 {
						t.Errorf("%s[%d] = %.6g, finite differences %.6g", p.Next, i, g[i], want[i])
					}
				}
			}

			// Batch-of-one form, example by example.
			bg, err := compiler.CompileFisherBatched(m)
			if err != nil {
				t.Fatal(err)
			}
			if bg.PerExample {
				t.Fatal("CompileFisherBatched returned the per-example form")
			}
			for i := range n {
				one := maps.Clone(ins)
				one[compiler.Images] = harness.Tensor{Shape: []int64{1, 2, 5, 5}, F32: images.F32[i*50 : (i+1)*50]}
				one[compiler.Labels] = harness.Tensor{Shape: []int64{1}, I64: labels[i : i+1]}
				res := runGraph(t, rt, bg.Model, bg.InputNames(), one, bg.OutputNames())
				for _, p := range bg.Params {
					closeTo(t, fmt.Sprintf("%s example %d", p.Next, i), res[p.Next].F32, got[p.Next].F32[i:i+1], 1e-4)
				}
			}
		})
	}
}

// TestMaxPoolTies: on a constant input every window is a tie; as in
// PyTorch the gradient of each (non-overlapping) window goes to exactly one
// element, and the total equals the sum of the output gradients.
func TestMaxPoolTies(t *testing.T) {
	rt := openRuntime(t)
	n := newNet(31, 2, 2, 4, 4)
	x := n.in(n.paramVals("x", []int64{1, 2, 4, 4}, make([]float32, 32)))
	y := n.b.Op("MaxPool", []string{x}, graph.Ints("kernel_shape", 2, 2), graph.Ints("strides", 2, 2))
	m := n.head(y, 3, 8)
	g := newGradRunner(t, rt, m, compiler.Options{Freeze: []string{"head.w"}},
		harness.Tensor{Shape: []int64{2, 2, 4, 4}, F32: make([]float32, 64)}, []int64{0, 2})
	_, grads := g.run(t, modelValues(t, m))
	dx := grads["x"] // summed over the 2 examples (x is broadcast over the batch)
	for c := range 2 {
		for wy := range 2 {
			for wx := range 2 {
				nonzero := 0
				for dy := range 2 {
					for dxx := range 2 {
						if dx[c*16+(2*wy+dy)*4+2*wx+dxx] != 0 {
							nonzero++
						}
					}
				}
				if nonzero != 1 {
					t.Errorf("channel %d window (%d,%d): %d elements got gradient, want 1 (dx %v)", c, wy, wx, nonzero, dx)
				}
			}
		}
	}
}

// BenchmarkConvWeightGrad times gradient steps of one 3×3 Conv (forward,
// global pooling as logits, weight gradient) at batch 128 with each
// weight-gradient formulation, on allcnn's layer shapes:
//
//	go test ./harness -run XXX -bench ConvWeightGrad -benchtime 3x
func BenchmarkConvWeightGrad(b *testing.B) {
	rt := openRuntime(b)
	const n = 128
	for _, l := range []struct{ ci, co, hw, s int64 }{{96, 96, 32, 1}, {96, 192, 32, 2}, {192, 192, 16, 1}, {192, 192, 8, 1}} {
		for _, wg := range []struct {
			name string
			m    compiler.WeightGradMethod
		}{{"conv", compiler.WeightGradConv}, {"im2col", compiler.WeightGradIm2col}, {"offsets", compiler.WeightGradOffsets}, {"auto", compiler.WeightGradAuto}} {
			b.Run(fmt.Sprintf("%dto%d-%dx%d-s%d/%s", l.ci, l.co, l.hw, l.hw, l.s, wg.name), func(b *testing.B) {
				nt := newNet(1, n, l.ci, l.hw, l.hw)
				y := nt.b.Op("Conv", []string{nt.x, nt.param("w", 0.05, l.co, l.ci, 3, 3)}, graph.Ints("pads", 1, 1, 1, 1), graph.Ints("strides", l.s, l.s))
				y = nt.b.Op("Flatten", []string{nt.b.Op("GlobalAveragePool", []string{y})})
				nt.b.NodeNamed("Identity", []string{y}, []string{"out"})
				nt.b.Output("out", graph.Float, -1, l.co)
				m := nt.b.Model()
				labels := make([]int64, n)
				g := newGradRunner(b, rt, m, compiler.Options{WeightGrad: wg.m}, randTensor(nt.rng, 1, n, l.ci, l.hw, l.hw), labels)
				vals := modelValues(b, m)
				g.run(b, vals)
				b.ResetTimer()
				for range b.N {
					g.run(b, vals)
				}
				ho := (l.hw-1)/l.s + 1
				flops := float64(2 * 2 * n * l.co * l.ci * 9 * ho * ho) // forward + weight gradient
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
			})
		}
	}
}
