package compiler

import (
	"github.com/critlab/critlab/internal/pyenv"

	"errors"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

// tinyNet is conv-BN-relu-maxpool-conv-GAP-flatten-gemm with input "input".
func tinyNet(t testing.TB) *pb.ModelProto {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	p := func(b *graph.Builder, name string, dims ...int64) string {
		d := make([]float32, graph.NumElements(dims))
		for i := range d {
			d[i] = float32(rng.NormFloat64() * 0.1)
		}
		return b.Param(name, dims, d)
	}
	b := graph.NewBuilder("tiny")
	x := b.Input("input", graph.Float, -1, 3, 8, 8)
	c1 := b.Op("Conv", []string{x, p(b, "c1.w", 4, 3, 3, 3), p(b, "c1.b", 4)}, graph.Ints("pads", 1, 1, 1, 1))
	bn := b.Op("BatchNormalization", []string{c1, p(b, "bn.w", 4), p(b, "bn.b", 4), p(b, "bn.rm", 4), p(b, "bn.rv", 4)})
	r := b.Op("Relu", []string{bn})
	mp := b.Op("MaxPool", []string{r}, graph.Ints("kernel_shape", 3, 3), graph.Ints("strides", 2, 2), graph.Ints("pads", 1, 1, 1, 1))
	c2 := b.Op("Conv", []string{mp, p(b, "c2.w", 6, 4, 3, 3)}, graph.Ints("pads", 1, 1, 1, 1), graph.Ints("strides", 2, 2))
	g := b.Op("GlobalAveragePool", []string{c2})
	f := b.Op("Flatten", []string{g})
	y := b.Op("Gemm", []string{f, p(b, "fc.w", 5, 6), p(b, "fc.b", 5)}, graph.Int("transB", 1))
	b.Output(y, graph.Float, -1, 5)
	return b.Model()
}

func names(vis []*pb.ValueInfoProto) []string {
	var out []string
	for _, v := range vis {
		out = append(out, v.GetName())
	}
	return out
}

func TestCompileTrainContract(t *testing.T) {
	m := tinyNet(t)
	opts := DefaultOptions()
	opts.Freeze = []string{"c2.*"}
	tg, err := CompileTrain(m, opts)
	if err != nil {
		t.Fatal(err)
	}
	wantIn := []string{"c1.w", "c1.b", "bn.w", "bn.b", "fc.w", "fc.b",
		"c1.w.mom", "c1.b.mom", "bn.w.mom", "bn.b.mom", "fc.w.mom", "fc.b.mom",
		"bn.rm", "bn.rv", Images, Labels, LR}
	if got := names(tg.Model.Graph.Input); !slices.Equal(got, wantIn) {
		t.Errorf("inputs %v\nwant %v", got, wantIn)
	}
	if got := tg.InputNames(); !slices.Equal(got, wantIn) {
		t.Errorf("InputNames %v", got)
	}
	var wantOut []string
	for _, n := range wantIn[:14] {
		wantOut = append(wantOut, n+".next")
	}
	wantOut = append(wantOut, Loss, Correct)
	if got := names(tg.Model.Graph.Output); !slices.Equal(got, wantOut) {
		t.Errorf("outputs %v\nwant %v", got, wantOut)
	}
	if !slices.Equal(tg.Frozen, []string{"c2.w"}) {
		t.Errorf("frozen %v", tg.Frozen)
	}
	inits := map[string]bool{}
	for _, x := range tg.Model.Graph.Initializer {
		inits[x.GetName()] = true
	}
	if !inits["c2.w"] || inits["c1.w"] || inits["bn.rm"] {
		t.Errorf("frozen params must stay initializers, others must not: %v", inits)
	}
	if graph.ModelOpset(tg.Model) != 17 {
		t.Errorf("opset %d", graph.ModelOpset(tg.Model))
	}
	for _, n := range tg.Model.Graph.Node {
		if n.GetOpType() == "BatchNormalization" {
			// Only the per-channel affine maps the compiler emits: inference
			// form (one output), mean 0, variance + epsilon = 1.
			if len(n.Output) != 1 || graph.AttrInt(n, "training_mode", 0) != 0 || graph.AttrFloat(n, "epsilon", 0) != affineEps {
				t.Errorf("train graph has BatchNormalization node %q that is not an affine map", n.GetName())
			}
		}
		if n.GetDomain() != "" {
			t.Errorf("node %q in domain %q", n.GetName(), n.GetDomain())
		}
		if graph.AttrString(n, "auto_pad", "NOTSET") != "NOTSET" {
			t.Errorf("node %q uses auto_pad", n.GetName())
		}
	}
}

func TestCompileEvalContract(t *testing.T) {
	eg, err := CompileEval(tinyNet(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"c1.w", "c1.b", "bn.w", "bn.b", "c2.w", "fc.w", "fc.b", "bn.rm", "bn.rv", Images, Labels}
	if got := names(eg.Model.Graph.Input); !slices.Equal(got, want) {
		t.Errorf("inputs %v, want %v", got, want)
	}
	if got := eg.InputNames(); !slices.Equal(got, want) {
		t.Errorf("InputNames %v", got)
	}
	if got := names(eg.Model.Graph.Output); !slices.Equal(got, []string{Loss, Correct, Logits}) {
		t.Errorf("outputs %v", got)
	}
	bn := 0
	for _, n := range eg.Model.Graph.Node {
		if n.GetOpType() == "BatchNormalization" {
			bn++
		}
	}
	if bn != 1 {
		t.Errorf("eval graph has %d BatchNormalization nodes, want the inference one", bn)
	}
}

func TestNoRuleNamesNode(t *testing.T) {
	b := graph.NewBuilder("t")
	x := b.Input("input", graph.Float, -1, 4)
	w := b.Param("w", []int64{4, 3}, make([]float32, 12))
	y := b.Op("MatMul", []string{x, w})
	b.NodeNamed("Selu", []string{y}, []string{"odd"})
	b.G.Node[len(b.G.Node)-1].Name = ptr("my_selu")
	b.Output("odd", graph.Float, -1, 3)
	_, err := CompileTrain(b.Model(), Options{})
	if !errors.Is(err, ErrNoRule) || !strings.Contains(err.Error(), "my_selu") || !strings.Contains(err.Error(), "(Selu)") {
		t.Fatalf("err = %v, want ErrNoRule naming node my_selu and op Selu", err)
	}
	// Off the gradient path (only the input feeds it) it is fine.
	b2 := graph.NewBuilder("t")
	x2 := b2.Input("input", graph.Float, -1, 4)
	h := b2.Op("Selu", []string{x2})
	y2 := b2.Op("MatMul", []string{h, b2.Param("w", []int64{4, 3}, make([]float32, 12))})
	b2.Output(y2, graph.Float, -1, 3)
	if _, err := CompileTrain(b2.Model(), Options{}); err != nil {
		t.Fatalf("op before every parameter: %v", err)
	}
}

func TestPrunesUnneededBackward(t *testing.T) {
	// With every conv frozen, the graph must not compute conv gradients.
	m := tinyNet(t)
	tg, err := CompileTrain(m, Options{Freeze: []string{"c*", "bn.*"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range tg.Model.Graph.Node {
		switch n.GetOpType() {
		case "ConvTranspose", "ScatterElements":
			t.Errorf("frozen features still backpropagate: node %q (%s)", n.GetName(), n.GetOpType())
		}
	}
	for i, l := range tg.Provenance {
		if strings.HasPrefix(l, "grad:Conv") {
			t.Errorf("frozen convs still get gradients: node %q (%s) labelled %s", tg.Model.Graph.Node[i].GetName(), tg.Model.Graph.Node[i].GetOpType(), l)
		}
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{
		{LabelSmoothing: 1}, {LabelSmoothing: -0.1}, {Momentum: 1}, {Nesterov: true},
		{WeightDecay: -1}, {Freeze: []string{"["}},
		{Optimizer: AdamW, Momentum: 0.9}, {Optimizer: Adam, Nesterov: true}, {Optimizer: 7},
		{Optimizer: Adam, Beta1: 1}, {Optimizer: Adam, Beta2: -0.5}, {Optimizer: Adam, Eps: -1}, {GradClip: -1},
		{Groups: []ParamGroup{{Match: "fc.*"}}}, {Groups: []ParamGroup{{Match: "[", LRScale: 1}}},
		{Groups: []ParamGroup{{Match: "fc.*", LRScale: 1, WeightDecay: new(float32(-1))}}},
	} {
		if o.Validate() == nil {
			t.Errorf("%+v: no error", o)
		}
	}
	if err := DefaultOptions().Validate(); err != nil {
		t.Error(err)
	}
	if _, err := CompileTrain(tinyNet(t), Options{Freeze: []string{"nope.*"}}); err == nil {
		t.Error("freeze pattern matching nothing accepted")
	}
	if _, err := CompileTrain(tinyNet(t), Options{Freeze: []string{"fc.*"}, Groups: []ParamGroup{{Match: "fc.*", LRScale: 10}}}); err == nil {
		t.Error("param group matching only frozen parameters accepted")
	}
}

// TestAdamStates checks the state tensors of Adam graphs: both moments of
// every trained parameter, then the step count, each with its .next output.
func TestAdamStates(t *testing.T) {
	tg, err := CompileTrain(tinyNet(t), Options{Optimizer: AdamW, WeightDecay: 0.01, GradClip: 1, Freeze: []string{"c2.*", "c1.*", "bn.*"},
		Groups: []ParamGroup{{Match: "fc.b", LRScale: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"fc.w.exp_avg", "fc.b.exp_avg", "fc.w.exp_avg_sq", "fc.b.exp_avg_sq", StepCount}
	var got []string
	for _, s := range tg.States {
		got = append(got, s.Name)
		if s.Next != s.Name+".next" {
			t.Errorf("%s: next %q", s.Name, s.Next)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
	if d := tg.States[len(tg.States)-1].Dims; !slices.Equal(d, []int64{1}) {
		t.Errorf("step count dims %v, want [1]", d)
	}
}

func TestHasRule(t *testing.T) {
	for _, op := range []string{"Conv", "BatchNormalization", "MaxPool", "Gemm", "Shape", "Gather", "Unsqueeze", "Cast", "Constant"} {
		if !HasRule(op) {
			t.Errorf("HasRule(%s) = false", op)
		}
	}
	if HasRule("Selu") {
		t.Error("HasRule(Selu) = true")
	}
	if s := Supported(); !slices.IsSorted(s) || !slices.Contains(s, "Conv") {
		t.Errorf("Supported() = %v", s)
	}
}

// TestOnnxChecker runs the Python onnx checker (full_check) on compiled
// graphs when the project's venv is present.
func TestOnnxChecker(t *testing.T) {
	py := pyenv.Require(t, "onnx")
	dir := t.TempDir()
	m := tinyNet(t)
	tg, err := CompileTrain(m, Options{Momentum: 0.9, Nesterov: true, WeightDecay: 1e-4, LabelSmoothing: 0.1})
	if err != nil {
		t.Fatal(err)
	}
	eg, err := CompileEval(m)
	if err != nil {
		t.Fatal(err)
	}
	adam, err := CompileTrain(m, Options{Optimizer: AdamW, WeightDecay: 0.01, GradClip: 1, Groups: []ParamGroup{{Match: "fc.*", LRScale: 10}}})
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for name, mm := range map[string]*pb.ModelProto{"train": tg.Model, "eval": eg.Model, "adamw": adam.Model} {
		f := filepath.Join(dir, name+".onnx")
		if err := graph.Save(f, mm); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	script := "import onnx, sys\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(f), full_check=True)\n"
	out, err := exec.Command(py, append([]string{"-c", script}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("onnx checker: %v\n%s", err, out)
	}
}

// TestExplicitSymmetricPads: auto_pad and asymmetric Conv pads in the
// forward graph become explicit symmetric pads (plus a Pad node) in every
// compiled graph.
func TestExplicitSymmetricPads(t *testing.T) {
	b := graph.NewBuilder("pads")
	x := b.Input("input", graph.Float, -1, 3, 7, 7)
	w1 := b.Param("w1", []int64{4, 3, 4, 4}, make([]float32, 4*3*16))
	y := b.Op("Conv", []string{x, w1}, graph.Str("auto_pad", "SAME_UPPER"), graph.Ints("strides", 2, 2)) // pads 1,1 / 2,2
	w2 := b.Param("w2", []int64{4, 4, 3, 3}, make([]float32, 4*4*9))
	y = b.Op("Conv", []string{y, w2}, graph.Ints("pads", 0, 1, 2, 1))
	y = b.Op("MaxPool", []string{y}, graph.Ints("kernel_shape", 2, 2), graph.Str("auto_pad", "SAME_LOWER"))
	y = b.Op("GlobalAveragePool", []string{y})
	y = b.Op("Flatten", []string{y})
	y = b.Op("Gemm", []string{y, b.Param("fc", []int64{4, 2}, make([]float32, 8))})
	b.Output(y, graph.Float, -1, 2)
	m := b.Model()
	tg, err := CompileTrain(m, Options{})
	if err != nil {
		t.Fatal(err)
	}
	eg, err := CompileEval(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range []*pb.GraphProto{tg.Model.Graph, eg.Model.Graph} {
		pads := 0
		for _, n := range g.Node {
			if graph.AttrString(n, "auto_pad", "NOTSET") != "NOTSET" || graph.Attr(n, "output_shape") != nil {
				t.Errorf("node %q (%s) keeps auto_pad/output_shape", n.GetName(), n.GetOpType())
			}
			if n.GetOpType() == "Pad" {
				pads++
			}
			if op := n.GetOpType(); op == "Conv" || op == "ConvTranspose" {
				p := graph.AttrInts(n, "pads", nil)
				for i := 0; i < len(p)/2; i++ {
					if p[i] != p[i+len(p)/2] {
						t.Errorf("node %q (%s) has asymmetric pads %v", n.GetName(), op, p)
					}
				}
			}
		}
		if pads == 0 {
			t.Error("no Pad node for the asymmetric pads")
		}
	}
}

// TestMalformedModels: broken forward graphs give errors, never panics.
func TestMalformedModels(t *testing.T) {
	mk := func(edit func(m *pb.ModelProto)) *pb.ModelProto {
		m := tinyNet(t)
		edit(m)
		return m
	}
	cases := map[string]*pb.ModelProto{
		"nil graph": {},
		"no output": mk(func(m *pb.ModelProto) { m.Graph.Output = nil }),
		"two inputs": mk(func(m *pb.ModelProto) {
			m.Graph.Input = append(m.Graph.Input, graph.ValueInfo("extra", graph.Float, -1, 3))
		}),
		"missing weight":     mk(func(m *pb.ModelProto) { m.Graph.Initializer = m.Graph.Initializer[1:] }),
		"stat not init":      mk(func(m *pb.ModelProto) { m.Graph.Node[1].Input[3] = m.Graph.Node[0].Output[0] }),
		"wrong weight rank":  mk(func(m *pb.ModelProto) { m.Graph.Initializer[0].Dims = []int64{4, 27} }),
		"opset 9":            mk(func(m *pb.ModelProto) { v := int64(9); m.OpsetImport[0].Version = &v }),
		"custom domain":      mk(func(m *pb.ModelProto) { d := "com.example"; m.Graph.Node[2].Domain = &d }),
		"bad pads":           mk(func(m *pb.ModelProto) { m.Graph.Node[0].Attribute = []*pb.AttributeProto{graph.Ints("pads", 1, 1)} }),
		"unknown auto_pad":   mk(func(m *pb.ModelProto) { m.Graph.Node[0].Attribute = []*pb.AttributeProto{graph.Str("auto_pad", "ODD")} }),
		"dangling input":     mk(func(m *pb.ModelProto) { m.Graph.Node[3].Input[0] = "nowhere" }),
		"training-form BN":   mk(func(m *pb.ModelProto) { m.Graph.Node[1].Output = append(m.Graph.Node[1].Output, "rm_out") }),
		"empty node outputs": mk(func(m *pb.ModelProto) { m.Graph.Node[2].Output = nil }),
		"parameter named lr": mk(func(m *pb.ModelProto) {
			old := m.Graph.Initializer[0].GetName()
			m.Graph.Initializer[0].Name = proto.String(LR)
			for _, n := range m.Graph.Node {
				for i, in := range n.Input {
					if in == old {
						n.Input[i] = LR
					}
				}
			}
		}),
	}
	for name, m := range cases {
		t.Run(name, func(t *testing.T) {
			_, err1 := CompileTrain(m, DefaultOptions())
			_, err2 := CompileEval(m)
			_, err3 := CompileFisher(m)
			if err1 == nil || err2 == nil || err3 == nil {
				t.Errorf("no error: train %v, eval %v, fisher %v", err1, err2, err3)
			}
			for _, err := range []error{err1, err2, err3} {
				if errors.Is(err, ErrInternal) {
					t.Errorf("internal error (panic): %v", err)
				}
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestInPlace(t *testing.T) {
	sgd := DefaultOptions()
	sgd.Momentum, sgd.Nesterov, sgd.WeightDecay = 0.9, true, 1e-4
	adam := Options{Optimizer: Adam, WeightDecay: 0.01}
	// AdamW's update reads the decayed copy of a parameter, not the
	// parameter, and clipping changes nothing: parameters stay out.
	adamw := Options{Optimizer: AdamW, WeightDecay: 0.01, GradClip: 1}
	for _, tc := range []struct {
		name string
		o    Options
		want []string // sorted
	}{
		{"sgd momentum nesterov", sgd, []string{"bn.b.mom", "bn.rm", "bn.rv", "bn.w.mom", "c1.b.mom", "c1.w.mom", "c2.w.mom", "fc.b.mom", "fc.w.mom"}},
		// The first moment's update reads it (m + (1-β₁)(g - m)): two
		// buffers. The step count's one reader is its increment, which
		// an Identity copies to its next value.
		{"adam", adam, []string{"bn.b.exp_avg_sq", "bn.rm", "bn.rv", "bn.w.exp_avg_sq", "c1.b.exp_avg_sq", "c1.w.exp_avg_sq",
			"c2.w.exp_avg_sq", "fc.b.exp_avg_sq", "fc.w.exp_avg_sq", StepCount}},
		{"adamw with clipping", adamw, []string{"bn.b.exp_avg_sq", "bn.rm", "bn.rv", "bn.w.exp_avg_sq", "c1.b.exp_avg_sq", "c1.w.exp_avg_sq",
			"c2.w.exp_avg_sq", "fc.b.exp_avg_sq", "fc.w.exp_avg_sq", StepCount}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tg, err := CompileTrain(tinyNet(t), tc.o)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for name := range tg.InPlace() {
				got = append(got, name)
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("InPlace %v\nwant %v", got, tc.want)
			}
		})
	}
	// A parameter read after the node writing its next value is not in
	// place: an extra reader of c1.w.mom that nothing waits for.
	tg, err := CompileTrain(tinyNet(t), sgd)
	if err != nil {
		t.Fatal(err)
	}
	tg.Model.Graph.Node = append(tg.Model.Graph.Node, &pb.NodeProto{OpType: proto.String("Identity"), Input: []string{"c1.w.mom"}, Output: []string{"late"}})
	if tg.InPlace()["c1.w.mom"] {
		t.Error("c1.w.mom has a reader that may run after its update, yet InPlace allows it")
	}
	// The same through a view: ORT's Reshape shares its input's buffer.
	tg, err = CompileTrain(tinyNet(t), sgd)
	if err != nil {
		t.Fatal(err)
	}
	tg.Model.Graph.Node = append(tg.Model.Graph.Node,
		&pb.NodeProto{OpType: proto.String("Flatten"), Input: []string{"bn.rm"}, Output: []string{"view"}},
		&pb.NodeProto{OpType: proto.String("Neg"), Input: []string{"view"}, Output: []string{"late"}})
	if tg.InPlace()["bn.rm"] {
		t.Error("bn.rm has a reader of a view of it that may run after its update, yet InPlace allows it")
	}
}

func TestSmallMapConvAsMatMul(t *testing.T) {
	// tinyNet's c1 runs on 8×8 maps (a Conv), c2 with stride 2 on 4×4 to a
	// 2×2 map (im2col over the batch and one MatMul, see convMatMul).
	tg, err := CompileTrain(tinyNet(t), DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]int{}
	for i, n := range tg.Model.Graph.Node {
		if tg.Provenance[i] == "fwd:Conv" {
			ops[n.GetOpType()]++
		}
	}
	if ops["Conv"] != 1 || ops["MatMul"] != 1 {
		t.Errorf("forward Conv nodes by op %v: want c1 as one Conv and c2 as one MatMul", ops)
	}
}
