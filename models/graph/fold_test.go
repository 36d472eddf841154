package graph

import (
	"github.com/critlab/critlab/internal/pyenv"

	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	pb "github.com/critlab/critlab/models/onnxpb"
)

// torchStyle builds a graph the way torch.onnx.export (opset 17) writes a
// small CNN whose forward ends in x.view(x.size(0), -1): Constant nodes for
// the indices, an Identity for a shared weight, and the
// Shape->Gather->Unsqueeze->Concat->Reshape chain.
func torchStyle(batch int64) *pb.ModelProto {
	r := rand.New(rand.NewPCG(1, 2))
	rnd := func(n int64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = r.Float32() - 0.5
		}
		return v
	}
	pos := func(n int64) []float32 {
		v := make([]float32, n)
		for i := range v {
			v[i] = 0.5 + r.Float32()
		}
		return v
	}
	b := NewBuilder("main_graph")
	t := tb{b}
	x := b.Input("input.1", Float, batch, 3, 8, 8)
	b.Param("conv.weight", []int64{4, 3, 3, 3}, rnd(108))
	b.Param("conv.bias", []int64{4}, rnd(4))
	b.Param("bn.weight", []int64{4}, pos(4))
	b.Param("bn.bias", []int64{4}, rnd(4))
	b.Param("bn.running_mean", []int64{4}, rnd(4))
	b.Param("bn.running_var", []int64{4}, pos(4))
	b.Param("fc.weight", []int64{10, 64}, rnd(640))
	b.Param("fc.bias", []int64{10}, rnd(10))
	t.node("Constant", nil, []string{"/Constant_3_output_0"}, TensorAttr("value", FloatTensor("", []int64{4, 4, 1, 1}, rnd(16))))
	t.node("Identity", []string{"conv.bias"}, []string{"onnx::Conv_30"}) // a shared parameter
	t.node("Conv", []string{x, "conv.weight", "conv.bias"}, []string{"/conv/Conv_output_0"}, Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1), Ints("strides", 2, 2))
	t.node("BatchNormalization", []string{"/conv/Conv_output_0", "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"}, []string{"/bn/BatchNormalization_output_0"}, Flt("epsilon", 1e-5), Flt("momentum", 0.9))
	t.node("Relu", []string{"/bn/BatchNormalization_output_0"}, []string{"/relu/Relu_output_0"})
	t.node("Conv", []string{"/relu/Relu_output_0", "/Constant_3_output_0", "onnx::Conv_30"}, []string{"/conv_1/Conv_output_0"}, Ints("kernel_shape", 1, 1))
	t.node("Shape", []string{"/conv_1/Conv_output_0"}, []string{"/Shape_output_0"})
	t.node("Constant", nil, []string{"/Constant_output_0"}, TensorAttr("value", Int64Tensor("", nil, []int64{0})))
	t.node("Gather", []string{"/Shape_output_0", "/Constant_output_0"}, []string{"/Gather_output_0"}, Int("axis", 0))
	t.node("Constant", nil, []string{"/Constant_1_output_0"}, TensorAttr("value", Int64Tensor("", []int64{1}, []int64{0})))
	t.node("Unsqueeze", []string{"/Gather_output_0", "/Constant_1_output_0"}, []string{"/Unsqueeze_output_0"})
	t.node("Constant", nil, []string{"/Constant_2_output_0"}, TensorAttr("value", Int64Tensor("", []int64{1}, []int64{-1})))
	t.node("Concat", []string{"/Unsqueeze_output_0", "/Constant_2_output_0"}, []string{"/Concat_output_0"}, Int("axis", 0))
	t.node("Reshape", []string{"/conv_1/Conv_output_0", "/Concat_output_0"}, []string{"/Reshape_output_0"})
	t.node("Gemm", []string{"/Reshape_output_0", "fc.weight", "fc.bias"}, []string{"logits"}, Flt("alpha", 1), Flt("beta", 1), Int("transB", 1))
	t.node("Identity", []string{"logits"}, []string{"output"})
	b.Output("output", Float, batch, 10)
	return b.Model()
}

func opTypes(g *pb.GraphProto) []string {
	var ops []string
	for _, n := range g.Node {
		ops = append(ops, n.GetOpType())
	}
	return ops
}

func initializer(g *pb.GraphProto, name string) *pb.TensorProto {
	for _, t := range g.Initializer {
		if t.GetName() == name {
			return t
		}
	}
	return nil
}

func TestFoldConstants(t *testing.T) {
	tests := []struct {
		name       string
		batch      int64
		wantOps    []string
		wantTarget []int64
	}{
		{"symbolic batch", -1, []string{"Conv", "BatchNormalization", "Relu", "Conv", "Reshape", "Gemm", "Identity"}, []int64{0, -1}},
		{"static batch", 2, []string{"Conv", "BatchNormalization", "Relu", "Conv", "Reshape", "Gemm", "Identity"}, []int64{2, -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := torchStyle(tc.batch)
			before, err := InferModelShapes(m)
			if err != nil {
				t.Fatal(err)
			}
			if err := FoldConstants(m); err != nil {
				t.Fatal(err)
			}
			g := m.Graph
			if got := opTypes(g); !slices.Equal(got, tc.wantOps) {
				t.Errorf("ops after folding = %v, want %v", got, tc.wantOps)
			}
			var reshape *pb.NodeProto
			for _, n := range g.Node {
				if n.GetOpType() == "Reshape" {
					reshape = n
				}
			}
			target := initializer(g, reshape.Input[1])
			if target == nil {
				t.Fatalf("Reshape target %q is not an initializer", reshape.Input[1])
			}
			if v, _ := Int64s(target); !slices.Equal(v, tc.wantTarget) {
				t.Errorf("Reshape target = %v, want %v", v, tc.wantTarget)
			}
			// The Constant weight became an initializer; the Identity is gone
			// and the second conv reads the shared bias directly.
			if got, want := g.Node[3].Input, []string{"/relu/Relu_output_0", "/Constant_3_output_0", "conv.bias"}; !slices.Equal(got, want) {
				t.Errorf("second conv inputs %v, want %v", got, want)
			}
			if initializer(g, "/Constant_3_output_0") == nil {
				t.Error("Constant not turned into an initializer")
			}
			// BatchNormalization and its statistics are untouched.
			for _, name := range []string{"bn.running_mean", "bn.running_var", "conv.bias"} {
				if initializer(g, name) == nil {
					t.Errorf("initializer %q removed", name)
				}
			}
			if len(g.Initializer) != 10 {
				t.Errorf("%d initializers after folding, want 10 (8 parameters, the constant, the target)", len(g.Initializer))
			}
			after, err := InferModelShapes(m)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(after["output"].Dims, before["output"].Dims) {
				t.Errorf("output dims %v after folding, %v before", after["output"].Dims, before["output"].Dims)
			}
			if err := Validate(m); err != nil {
				t.Errorf("Validate after folding: %v", err)
			}
		})
	}
}

func TestFoldConstantsKeepsDynamicExpand(t *testing.T) {
	// zeros_like with a dynamic batch: the shape chain cannot fold and stays.
	b := NewBuilder("g")
	t2 := tb{b}
	x := b.Input("x", Float, -1, 4)
	t2.node("Shape", []string{x}, []string{"s"})
	t2.node("ConstantOfShape", []string{"s"}, []string{"z"})
	t2.node("Add", []string{x, "z"}, []string{"y"})
	b.Output("y", Float, -1, 4)
	m := b.Model()
	if err := FoldConstants(m); err != nil {
		t.Fatal(err)
	}
	if got, want := opTypes(m.Graph), []string{"Shape", "ConstantOfShape", "Add"}; !slices.Equal(got, want) {
		t.Errorf("ops = %v, want %v", got, want)
	}
}

func TestFoldConstantsPreservesOutputs(t *testing.T) {
	py := pyenv.Require(t, "onnx", "numpy")
	dir := t.TempDir()
	orig, folded := filepath.Join(dir, "orig.onnx"), filepath.Join(dir, "folded.onnx")
	if err := Save(orig, torchStyle(-1)); err != nil {
		t.Fatal(err)
	}
	m := torchStyle(-1)
	if err := FoldConstants(m); err != nil {
		t.Fatal(err)
	}
	if err := Save(folded, m); err != nil {
		t.Fatal(err)
	}
	script := `
import sys, numpy as np, onnx
from onnx.reference import ReferenceEvaluator
a, b = onnx.load(sys.argv[1]), onnx.load(sys.argv[2])
onnx.checker.check_model(b, full_check=True)
x = np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32)
ya = ReferenceEvaluator(a).run(None, {"input.1": x})[0]
yb = ReferenceEvaluator(b).run(None, {"input.1": x})[0]
assert ya.shape == (3, 10), ya.shape
np.testing.assert_allclose(ya, yb, rtol=1e-6, atol=1e-6)
print("ok")
`
	out, err := exec.Command(py, "-c", script, orig, folded).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("python check: %v\n%s", err, out)
	}
}
