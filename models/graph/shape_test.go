package graph

import (
	"github.com/critlab/critlab/internal/pyenv"

	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	pb "github.com/critlab/critlab/models/onnxpb"
)

// tb wraps a Builder with helpers for small test graphs.
type tb struct{ *Builder }

func newTB() tb { return tb{NewBuilder("test")} }

func (t tb) in(name string, dims ...int64) string { return t.Input(name, Float, dims...) }

func (t tb) w(name string, dims ...int64) string {
	return t.Param(name, dims, make([]float32, NumElements(dims)))
}

func (t tb) ints(name string, vals ...int64) string {
	t.Reserve(name)
	t.G.Initializer = append(t.G.Initializer, Int64Tensor(name, []int64{int64(len(vals))}, vals))
	return name
}

func (t tb) scalar(name string, v int64) string {
	t.Reserve(name)
	t.G.Initializer = append(t.G.Initializer, Int64Tensor(name, nil, []int64{v}))
	return name
}

// node appends a node named after its first output.
func (t tb) node(op string, ins []string, outs []string, attrs ...*pb.AttributeProto) {
	n := t.NodeNamed(op, ins, outs, attrs...)
	name := outs[0]
	n.Name = &name
}

// shapeCase is one graph for TestInferShapes; cases with an opset are also
// checked against ONNX's own shape inference.
type shapeCase struct {
	name   string
	opset  int64 // > 0: valid at this opset, cross-checked with onnx
	build  func(t tb)
	inputs map[string][]int64
	want   map[string][]int64
	elem   map[string]pb.TensorProto_DataType
	err    string
	// onnxDiffers names values where onnx's shape inference is known to
	// disagree with ONNX Runtime and PyTorch (and so with InferShapes).
	onnxDiffers []string
}

func shapeCases() []shapeCase {
	const N = -1
	big := int64(math.MaxInt64)
	return []shapeCase{
		{
			name:  "conv pad 1",
			opset: 17,
			build: func(t tb) {
				t.node("Conv", []string{t.in("x", N, 3, 32, 32), t.w("w", 16, 3, 3, 3), t.w("b", 16)}, []string{"y"}, Ints("pads", 1, 1, 1, 1))
			},
			want: map[string][]int64{"y": {N, 16, 32, 32}, "w": {16, 3, 3, 3}},
		},
		{
			name:  "conv stride 2 dilation 2 group 3",
			opset: 17,
			build: func(t tb) {
				t.node("Conv", []string{t.in("x", N, 6, 33, 20), t.w("w", 12, 2, 3, 3)}, []string{"y"},
					Ints("strides", 2, 2), Ints("dilations", 2, 1), Int("group", 3), Ints("pads", 0, 1, 0, 1))
			},
			want: map[string][]int64{"y": {N, 12, 15, 10}},
		},
		{
			name:  "conv auto_pad same_upper",
			opset: 17,
			build: func(t tb) {
				t.node("Conv", []string{t.in("x", N, 3, 33, 33), t.w("w", 8, 3, 3, 3)}, []string{"y"},
					Ints("strides", 2, 2), Str("auto_pad", "SAME_UPPER"))
			},
			want: map[string][]int64{"y": {N, 8, 17, 17}},
		},
		{
			name: "conv channel mismatch names node",
			build: func(t tb) {
				t.node("Conv", []string{t.in("x", N, 4, 8, 8), t.w("w", 8, 3, 3, 3)}, []string{"conv3"})
			},
			err: `shape: node "conv3" (Conv): input "x" has 4 channels but weight "w" expects 3`,
		},
		{
			name:  "conv transpose output_padding",
			opset: 17,
			build: func(t tb) {
				t.node("ConvTranspose", []string{t.in("x", N, 16, 16, 16), t.w("w", 16, 8, 3, 3)}, []string{"y"},
					Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1), Ints("output_padding", 1, 1))
			},
			want: map[string][]int64{"y": {N, 8, 32, 32}},
		},
		{
			name:  "conv transpose output_shape and group",
			opset: 17,
			build: func(t tb) {
				t.node("ConvTranspose", []string{t.in("x", N, 4, 7, 7), t.w("w", 4, 3, 4, 4)}, []string{"y"},
					Ints("strides", 2, 2), Int("group", 2), Ints("output_shape", 15, 14))
			},
			want: map[string][]int64{"y": {N, 6, 15, 14}},
		},
		{
			name:  "conv transpose auto_pad same",
			opset: 17,
			build: func(t tb) {
				t.node("ConvTranspose", []string{t.in("x", N, 4, 7, 5), t.w("w", 4, 2, 3, 3)}, []string{"y"},
					Ints("strides", 2, 3), Str("auto_pad", "SAME_UPPER"))
			},
			want: map[string][]int64{"y": {N, 2, 14, 15}},
		},
		{
			name:  "gemm transB and bias",
			opset: 17,
			build: func(t tb) {
				t.node("Gemm", []string{t.in("x", N, 512), t.w("w", 10, 512), t.w("b", 10)}, []string{"y"}, Int("transB", 1))
			},
			want: map[string][]int64{"y": {N, 10}},
		},
		{
			name: "gemm mismatch",
			build: func(t tb) {
				t.node("Gemm", []string{t.in("x", N, 512), t.w("w", 10, 256)}, []string{"fc"}, Int("transB", 1))
			},
			err: `node "fc" (Gemm): inner dimensions differ`,
		},
		{
			name:  "matmul batched and 1-D",
			opset: 17,
			build: func(t tb) {
				t.node("MatMul", []string{t.in("a", 2, 1, 3, 4), t.w("b", 5, 4, 6)}, []string{"y"})
				t.node("MatMul", []string{t.w("v", 4), t.w("m", 4, 6)}, []string{"vm"})
				t.node("MatMul", []string{t.w("m2", 3, 4), t.w("v2", 4)}, []string{"mv"})
			},
			want: map[string][]int64{"y": {2, 5, 3, 6}, "vm": {6}, "mv": {3}},
		},
		{
			name:  "elementwise broadcasting",
			opset: 17,
			build: func(t tb) {
				x := t.in("x", N, 16, 8, 8)
				t.node("Add", []string{x, t.w("b", 16, 1, 1)}, []string{"add"})
				t.node("Sub", []string{"add", t.w("s", 1)}, []string{"sub"})
				t.node("Mul", []string{t.w("m", 8), "sub"}, []string{"mul"})
				t.node("Div", []string{"mul", t.ConstFloat(2)}, []string{"div"})
				t.node("Pow", []string{"div", t.ConstFloat(2)}, []string{"pow"})
				for _, op := range []string{"Sqrt", "Neg", "Exp", "Log", "Abs", "Reciprocal", "Relu", "Sigmoid", "Tanh"} {
					t.node(op, []string{"pow"}, []string{strings.ToLower(op)})
				}
				t.node("LeakyRelu", []string{"pow"}, []string{"leaky"}, Flt("alpha", 0.1))
				t.node("Clip", []string{"pow", t.ConstFloat(0), t.ConstFloat(6)}, []string{"clip"})
				t.node("Sum", []string{"pow", "add", t.w("c", 8, 1)}, []string{"sum"})
			},
			want: map[string][]int64{"add": {N, 16, 8, 8}, "mul": {N, 16, 8, 8}, "div": {N, 16, 8, 8}, "relu": {N, 16, 8, 8}, "clip": {N, 16, 8, 8}, "sum": {N, 16, 8, 8}},
		},
		{
			name: "broadcast mismatch",
			build: func(t tb) {
				t.node("Add", []string{t.in("x", N, 16, 8, 8), t.w("b", 3, 1, 1)}, []string{"bad"})
			},
			err: `node "bad" (Add): cannot broadcast`,
		},
		{
			name:  "max pool with indices and ceil mode",
			opset: 17,
			build: func(t tb) {
				x := t.in("x", N, 8, 32, 32)
				t.node("MaxPool", []string{x}, []string{"p", "idx"}, Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1))
				t.node("MaxPool", []string{x}, []string{"pc"}, Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1), Int("ceil_mode", 1))
				t.node("MaxPool", []string{t.in("z", N, 1, 4, 5)}, []string{"pz"}, Ints("kernel_shape", 2, 2), Ints("strides", 3, 3), Ints("pads", 1, 1, 1, 1), Int("ceil_mode", 1))
				t.node("AveragePool", []string{x}, []string{"avg"}, Ints("kernel_shape", 2, 2), Ints("strides", 2, 2))
				t.node("GlobalAveragePool", []string{x}, []string{"gap"})
			},
			// onnx (1.23) infers 3×3 for pz; ONNX Runtime 1.29 and PyTorch drop
			// the window that would start in the trailing padding: 2×2.
			onnxDiffers: []string{"pz"},
			want:        map[string][]int64{"p": {N, 8, 16, 16}, "idx": {N, 8, 16, 16}, "pc": {N, 8, 17, 17}, "pz": {N, 1, 2, 2}, "avg": {N, 8, 16, 16}, "gap": {N, 8, 1, 1}},
			elem:        map[string]pb.TensorProto_DataType{"idx": Int64, "p": Float},
		},
		{
			name:  "batch norm inference and training",
			opset: 17,
			build: func(t tb) {
				x := t.in("x", N, 8, 4, 4)
				ps := []string{x, t.w("g", 8), t.w("b", 8), t.w("m", 8), t.w("v", 8)}
				t.node("BatchNormalization", ps, []string{"bn"})
				t.node("BatchNormalization", ps, []string{"bnt", "rm", "rv"}, Int("training_mode", 1))
			},
			want: map[string][]int64{"bn": {N, 8, 4, 4}, "bnt": {N, 8, 4, 4}, "rm": {8}, "rv": {8}},
		},
		{
			name: "batch norm wrong channels",
			build: func(t tb) {
				t.node("BatchNormalization", []string{t.in("x", N, 8, 4, 4), t.w("g", 4), t.w("b", 4), t.w("m", 4), t.w("v", 4)}, []string{"bn1"})
			},
			err: `node "bn1" (BatchNormalization): scale "g" has 4 entries for 8 channels`,
		},
		{
			name:  "flatten reshape transpose",
			opset: 17,
			build: func(t tb) {
				x := t.in("x", N, 512, 1, 1)
				t.node("Flatten", []string{x}, []string{"flat"})
				t.node("Flatten", []string{x}, []string{"flat0"}, Int("axis", 0))
				t.node("Reshape", []string{x, t.ints("s", 0, -1)}, []string{"r1"})
				t.node("Reshape", []string{x, t.ints("s2", -1, 256)}, []string{"r2"})
				t.node("Reshape", []string{t.in("y", 2, 3, 4), t.ints("s3", 4, 0, -1)}, []string{"r3"})
				t.node("Transpose", []string{x}, []string{"tr"}, Ints("perm", 0, 2, 3, 1))
				t.node("Transpose", []string{"y"}, []string{"trd"})
			},
			want: map[string][]int64{"flat": {N, 512}, "flat0": {1, -1}, "r1": {N, 512}, "r2": {-1, 256}, "r3": {4, 3, 2}, "tr": {N, 1, 1, 512}, "trd": {4, 3, 2}},
		},
		{
			name: "reshape size mismatch",
			build: func(t tb) {
				t.node("Reshape", []string{t.in("y", 2, 3, 4), t.ints("s", 5, -1)}, []string{"rs"})
			},
			err: `node "rs" (Reshape): cannot reshape [2 3 4] to [5,-1]`,
		},
		{
			name:  "pytorch flatten chain",
			opset: 17,
			build: func(t tb) {
				x := t.in("x", N, 64, 4, 4)
				t.node("Shape", []string{x}, []string{"shape"})
				t.node("Gather", []string{"shape", t.scalar("zero", 0)}, []string{"batch"}, Int("axis", 0))
				t.node("Unsqueeze", []string{"batch", t.ints("axes0", 0)}, []string{"batch1"})
				t.node("Concat", []string{"batch1", t.ints("minus1", -1)}, []string{"target"}, Int("axis", 0))
				t.node("Reshape", []string{x, "target"}, []string{"flat"})
				// Gather of a static entry and arithmetic on it.
				t.node("Gather", []string{"shape", t.scalar("one", 1)}, []string{"c"}, Int("axis", 0))
				t.node("Mul", []string{"c", t.scalar("sixteen", 16)}, []string{"k"})
				t.node("Unsqueeze", []string{"k", "axes0"}, []string{"k1"})
				t.node("Concat", []string{"batch1", "k1"}, []string{"target2"}, Int("axis", 0))
				t.node("Reshape", []string{x, "target2"}, []string{"flat2"})
			},
			want: map[string][]int64{"shape": {4}, "batch": {}, "batch1": {1}, "target": {2}, "flat": {N, 1024}, "flat2": {N, 1024}},
			elem: map[string]pb.TensorProto_DataType{"shape": Int64, "flat": Float},
		},
		{
			name:  "concat split",
			opset: 18,
			build: func(t tb) {
				a := t.in("a", N, 3, 8)
				t.node("Concat", []string{a, t.in("b", N, 5, 8)}, []string{"cat"}, Int("axis", 1))
				t.node("Concat", []string{a, a}, []string{"cat2"}, Int("axis", -1))
				t.node("Split", []string{"cat", t.ints("sp", 2, 6)}, []string{"s0", "s1"}, Int("axis", 1))
				t.node("Split", []string{t.in("c", 10)}, []string{"q0", "q1", "q2"}, Int("num_outputs", 3))
			},
			want: map[string][]int64{"cat": {N, 8, 8}, "cat2": {N, 3, 16}, "s0": {N, 2, 8}, "s1": {N, 6, 8}, "q0": {4}, "q1": {4}, "q2": {2}},
		},
		{
			name: "split does not sum",
			build: func(t tb) {
				t.node("Split", []string{t.in("c", 10), t.ints("sp", 2, 3)}, []string{"sp0", "sp1"})
			},
			err: `node "sp0" (Split): split [2 3] sums to 5`,
		},
		{
			name:  "slice",
			opset: 18,
			build: func(t tb) {
				x := t.in("x", N, 10, 12)
				t.node("Slice", []string{x, t.ints("st", 2), t.ints("en", -2), t.ints("ax", 1)}, []string{"s1"})
				t.node("Slice", []string{x, t.ints("st2", -1), t.ints("en2", -big), t.ints("ax2", 2), t.ints("sp2", -1)}, []string{"rev"})
				t.node("Slice", []string{x, t.ints("st3", 8), t.ints("en3", 2), t.ints("ax3", 1), t.ints("sp3", -2)}, []string{"s3"})
				t.node("Slice", []string{x, t.ints("st4", 0, 1), t.ints("en4", big, 100), t.ints("ax4", 0, 1), t.ints("sp4", 1, 3)}, []string{"s4"})
				t.node("Shape", []string{x}, []string{"shp"})
				t.node("Slice", []string{"shp", t.ints("st5", 1), t.ints("en5", big)}, []string{"hw"})
				t.node("Reshape", []string{t.in("y", 120), "hw"}, []string{"y2"})
			},
			want: map[string][]int64{"s1": {N, 6, 12}, "rev": {N, 10, 12}, "s3": {N, 3, 12}, "s4": {N, 3, 12}, "hw": {2}, "y2": {10, 12}},
		},
		{
			name:  "pad",
			opset: 18,
			build: func(t tb) {
				x := t.in("x", N, 3, 32, 32)
				t.node("Pad", []string{x, t.ints("p", 0, 0, 4, 4, 0, 0, 4, 4)}, []string{"p1"})
				t.node("Pad", []string{x, t.ints("pa", 1, 1, 2, 2), "", t.ints("axes", 2, 3)}, []string{"p3"})
			},
			want: map[string][]int64{"p1": {N, 3, 40, 40}, "p3": {N, 3, 35, 35}},
		},
		{
			name:  "reductions",
			opset: 17,
			build: func(t tb) {
				x := t.in("x", N, 8, 4, 4)
				t.node("ReduceMean", []string{x}, []string{"m1"}, Ints("axes", 2, 3))
				t.node("ReduceMean", []string{x}, []string{"m2"}, Ints("axes", -1), Int("keepdims", 0))
				t.node("ReduceSum", []string{x, t.ints("ax", 0, 2, 3)}, []string{"s1"}, Int("keepdims", 0))
				t.node("ReduceSum", []string{x}, []string{"s2"})
				t.node("ReduceSum", []string{x}, []string{"s3"}, Int("noop_with_empty_axes", 1))
				t.node("ReduceMax", []string{x}, []string{"mx"}, Int("keepdims", 0))
				t.node("ArgMax", []string{x}, []string{"am"}, Int("axis", 1), Int("keepdims", 0))
			},
			want: map[string][]int64{"m1": {N, 8, 1, 1}, "m2": {N, 8, 4}, "s1": {8}, "s2": {1, 1, 1, 1}, "s3": {N, 8, 4, 4}, "mx": {}, "am": {N, 4, 4}},
			elem: map[string]pb.TensorProto_DataType{"am": Int64},
		},
		{
			name:  "gather squeeze unsqueeze",
			opset: 17,
			build: func(t tb) {
				x := t.in("x", N, 10, 6)
				t.node("Gather", []string{x, t.ints("i", 0, 3, 5)}, []string{"g"}, Int("axis", 2))
				t.node("Gather", []string{t.w("emb", 100, 16), t.Input("tok", Int64, N, 7)}, []string{"e"})
				t.node("Unsqueeze", []string{x, t.ints("ua", 1, -1)}, []string{"u"})
				t.node("Squeeze", []string{"u", t.ints("sa", 1)}, []string{"sq"})
				t.node("Squeeze", []string{t.in("z", 1, 3, 1)}, []string{"sq2"})
				t.node("Squeeze", []string{"u", t.ints("sa3", -1)}, []string{"sq3"})
			},
			want: map[string][]int64{"g": {N, 10, 3}, "e": {N, 7, 16}, "u": {N, 1, 10, 6, 1}, "sq": {N, 10, 6, 1}, "sq2": {3}, "sq3": {N, 1, 10, 6}},
		},
		{
			name:  "constants cast expand where",
			opset: 17,
			build: func(t tb) {
				x := t.in("x", N, 4, 5)
				t.node("Constant", nil, []string{"c"}, TensorAttr("value", Int64Tensor("", []int64{3}, []int64{2, 4, 5})))
				t.node("Constant", nil, []string{"cf"}, Flt("value_float", 1.5))
				t.node("Constant", nil, []string{"ci"}, Ints("value_ints", 1, 2))
				t.node("ConstantOfShape", []string{"c"}, []string{"zeros"})
				t.node("ConstantOfShape", []string{"c"}, []string{"ones"}, TensorAttr("value", Int64Tensor("", []int64{1}, []int64{1})))
				t.node("Shape", []string{x}, []string{"sx"})
				t.node("ConstantOfShape", []string{"sx"}, []string{"zx"})
				t.node("Cast", []string{x}, []string{"xi"}, Int("to", int64(Int64)))
				t.node("Equal", []string{"xi", t.scalar("k", 3)}, []string{"eq"})
				t.node("Less", []string{x, "cf"}, []string{"lt"})
				t.node("Greater", []string{x, "cf"}, []string{"gt"})
				t.node("Not", []string{"lt"}, []string{"nlt"})
				t.node("And", []string{"nlt", "gt"}, []string{"and"})
				t.node("Expand", []string{t.w("b", 5), t.ints("es", 3, 1, 5)}, []string{"ex"})
				t.node("Expand", []string{x, "c"}, []string{"ex2"})
				t.node("Where", []string{"eq", x, t.ConstFloat(0)}, []string{"wh"})
			},
			want: map[string][]int64{"c": {3}, "cf": {}, "ci": {2}, "zeros": {2, 4, 5}, "ones": {2, 4, 5}, "zx": {N, 4, 5}, "xi": {N, 4, 5}, "eq": {N, 4, 5}, "lt": {N, 4, 5}, "and": {N, 4, 5}, "ex": {3, 1, 5}, "ex2": {2, 4, 5}, "wh": {N, 4, 5}},
			elem: map[string]pb.TensorProto_DataType{"zeros": Float, "ones": Int64, "xi": Int64, "eq": Bool, "and": Bool, "wh": Float, "cf": Float},
		},
		{
			name:  "scatter gather elements onehot range tile",
			opset: 17,
			build: func(t tb) {
				x := t.in("x", N, 10)
				lbl := t.Input("labels", Int64, N)
				t.node("Unsqueeze", []string{lbl, t.ints("a1", 1)}, []string{"l1"})
				t.node("GatherElements", []string{x, "l1"}, []string{"ge"}, Int("axis", 1))
				t.node("ScatterElements", []string{x, "l1", "ge"}, []string{"se"}, Int("axis", 1))
				t.node("OneHot", []string{lbl, t.scalar("depth", 10), t.Param("ov", []int64{2}, []float32{0, 1})}, []string{"oh"})
				t.node("OneHot", []string{lbl, "depth", "ov"}, []string{"oh0"}, Int("axis", 0))
				t.node("Range", []string{t.scalar("r0", 2), t.scalar("r1", 11), t.scalar("r2", 3)}, []string{"rg"})
				t.node("Range", []string{t.ConstFloat(0), t.ConstFloat(1), t.ConstFloat(0.25)}, []string{"rf"})
				t.node("Tile", []string{x, t.ints("rep", 1, 3)}, []string{"tl"})
				t.node("RandomUniformLike", []string{x}, []string{"ru"})
				t.node("Dropout", []string{x}, []string{"dr", "mask"})
				t.node("Softmax", []string{x}, []string{"sm"}, Int("axis", 1))
				t.node("LogSoftmax", []string{x}, []string{"lsm"})
				t.node("Identity", []string{x}, []string{"id"})
				t.node("Einsum", []string{x, t.w("ew", 10, 4)}, []string{"es"}, Str("equation", "bi,ij->bj"))
				t.node("Einsum", []string{t.w("ea", 2, 3, 4), t.w("eb", 2, 4, 5)}, []string{"eb2"}, Str("equation", "...ij,...jk"))
			},
			want: map[string][]int64{"l1": {N, 1}, "ge": {N, 1}, "se": {N, 10}, "oh": {N, 10}, "oh0": {10, N}, "rg": {3}, "rf": {4}, "tl": {N, 30}, "ru": {N, 10}, "dr": {N, 10}, "mask": {N, 10}, "sm": {N, 10}, "lsm": {N, 10}, "id": {N, 10}, "es": {N, 4}, "eb2": {2, 3, 5}},
			elem: map[string]pb.TensorProto_DataType{"mask": Bool, "rg": Int64, "oh": Float},
		},
		{
			name:  "compiler helper ops",
			opset: 17,
			build: func(t tb) {
				x := t.in("x", N, 4, 5, 5)
				t.node("CumSum", []string{x, t.scalar("ax", 1)}, []string{"cs"})
				t.node("EyeLike", []string{t.w("m", 4, 6)}, []string{"eye"})
				t.node("NonZero", []string{x}, []string{"nz"})
				t.node("RandomUniform", nil, []string{"ru"}, Ints("shape", 2, 3))
				t.node("RandomNormal", nil, []string{"rn"}, Ints("shape", 7), Int("dtype", int64(pb.TensorProto_DOUBLE)))
				t.node("InstanceNormalization", []string{x, t.w("s", 4), t.w("b", 4)}, []string{"in"})
				t.node("LRN", []string{x}, []string{"lrn"}, Int("size", 3))
				t.node("LayerNormalization", []string{x, t.w("g", 5)}, []string{"ln", "lnm", "lnv"}, Int("axis", -1))
			},
			want: map[string][]int64{"cs": {N, 4, 5, 5}, "eye": {4, 6}, "nz": {4, -1}, "ru": {2, 3}, "rn": {7}, "in": {N, 4, 5, 5}, "lrn": {N, 4, 5, 5}, "ln": {N, 4, 5, 5}, "lnm": {N, 4, 5, 1}},
			elem: map[string]pb.TensorProto_DataType{"nz": Int64, "rn": pb.TensorProto_DOUBLE, "ru": Float},
		},
		{
			name:  "opset 10 attribute forms",
			opset: 10,
			build: func(t tb) {
				x := t.in("x", N, 8, 6)
				t.node("Unsqueeze", []string{x}, []string{"u"}, Ints("axes", 0, 3))
				t.node("Squeeze", []string{"u"}, []string{"sq"}, Ints("axes", 0))
				t.node("Split", []string{x}, []string{"a0", "a1"}, Int("axis", 1), Ints("split", 2, 6))
				t.node("Split", []string{x}, []string{"h0", "h1"}, Int("axis", 1))
				t.node("ReduceSum", []string{x}, []string{"rs"}, Ints("axes", 1), Int("keepdims", 0))
				t.node("Pad", []string{x}, []string{"p"}, Ints("pads", 0, 1, 2, 0, 3, 4))
			},
			want: map[string][]int64{"u": {1, N, 8, 1, 6}, "sq": {N, 8, 1, 6}, "a0": {N, 2, 6}, "a1": {N, 6, 6}, "h0": {N, 4, 6}, "h1": {N, 4, 6}, "rs": {N, 6}, "p": {N, 12, 12}},
		},
		{
			name:  "opset 9 slice attributes",
			opset: 9,
			build: func(t tb) {
				t.node("Slice", []string{t.in("x", N, 10, 12)}, []string{"s"}, Ints("starts", 1, -5), Ints("ends", 3, big), Ints("axes", 2, 1))
			},
			want: map[string][]int64{"s": {N, 5, 2}},
		},
		{
			name: "input override",
			build: func(t tb) {
				t.node("Relu", []string{t.in("x", N, 3, 32, 32)}, []string{"y"})
				t.node("Shape", []string{"y"}, []string{"s"})
				t.node("ConstantOfShape", []string{"s"}, []string{"z"})
			},
			inputs: map[string][]int64{"x": {8, 3, 16, 16}},
			want:   map[string][]int64{"y": {8, 3, 16, 16}, "z": {8, 3, 16, 16}},
		},
		{
			name:   "override of unknown input",
			build:  func(t tb) { t.node("Relu", []string{t.in("x", N, 3)}, []string{"y"}) },
			inputs: map[string][]int64{"images": {8, 3}},
			err:    `input override "images": the graph has no such input`,
		},
		{
			name:  "undefined input",
			build: func(t tb) { t.node("Relu", []string{"nowhere"}, []string{"r"}) },
			err:   `node "r" (Relu): input 0 "nowhere" is not defined before this node`,
		},
		{
			name:  "missing second input",
			build: func(t tb) { t.node("Add", []string{t.in("x", N, 3)}, []string{"y"}) },
			err:   `node "y" (Add): input 1 is required`,
		},
		{
			name: "first bad input reported",
			build: func(t tb) {
				t.node("Where", []string{t.in("c", N, 3), "nowhere", ""}, []string{"y"})
			},
			err: `node "y" (Where): input 1 "nowhere" is not defined before this node`,
		},
		{
			name:  "unsupported op",
			build: func(t tb) { t.node("LSTM", []string{t.in("x", N, 3)}, []string{"lstm"}) },
			err:   `node "lstm" (LSTM): unsupported op "LSTM"`,
		},
	}
}

func TestInferShapes(t *testing.T) {
	for _, tc := range shapeCases() {
		t.Run(tc.name, func(t *testing.T) {
			b := newTB()
			tc.build(b)
			got, err := InferShapes(b.G, tc.inputs)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for name, dims := range tc.want {
				vt, ok := got[name]
				if !ok {
					t.Errorf("%s: missing", name)
					continue
				}
				if !slices.Equal(vt.Dims, dims) {
					t.Errorf("%s: dims %v, want %v", name, vt.Dims, dims)
				}
			}
			for name, elem := range tc.elem {
				if got[name].Elem != elem {
					t.Errorf("%s: elem %v, want %v", name, got[name].Elem, elem)
				}
			}
		})
	}
}

func TestValueTypeString(t *testing.T) {
	v := ValueType{Elem: Float, Dims: []int64{-1, 3, 32, 32}}
	if got, want := v.String(), "FLOAT[?,3,32,32]"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if v.Static() {
		t.Error("Static() = true with a symbolic dim")
	}
}

// onnxShapeScript runs strict ONNX shape inference (with data propagation)
// on each model and prints, per model, the dims onnx infers for every value
// (-1 for a symbolic or unknown dim), or the error.
const onnxShapeScript = `
import json, sys, onnx
from onnx import shape_inference
out = {}
for path in sys.argv[1:]:
    try:
        m = onnx.load(path)
        inf = shape_inference.infer_shapes(m, check_type=True, strict_mode=True, data_prop=True)
        onnx.checker.check_model(inf)
        dims = {}
        for vi in list(inf.graph.value_info) + list(inf.graph.output):
            t = vi.type.tensor_type
            if t.HasField("shape"):
                dims[vi.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        out[path] = {"dims": dims}
    except Exception as e:
        out[path] = {"error": str(e)}
print(json.dumps(out))
`

// TestInferShapesMatchesONNX compares InferShapes with onnx's shape inference
// on every case that is valid at a stated opset.
func TestInferShapesMatchesONNX(t *testing.T) {
	py := pyenv.Require(t, "onnx", "numpy")
	dir := t.TempDir()
	var paths []string
	ours := map[string]map[string]ValueType{}
	names := map[string]string{}
	for i, tc := range shapeCases() {
		if tc.opset == 0 || tc.err != "" || tc.inputs != nil {
			continue
		}
		b := newTB()
		tc.build(b)
		got, err := InferShapes(b.G, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		m := NewModel(b.G, tc.opset)
		if tc.opset >= 18 {
			m.IrVersion = ptr(int64(9))
		}
		p := filepath.Join(dir, fmt.Sprintf("case%02d.onnx", i))
		if err := Save(p, m); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
		for _, v := range tc.onnxDiffers {
			delete(got, v)
		}
		ours[p] = got
		names[p] = tc.name
	}
	var stderr bytes.Buffer
	cmd := exec.Command(py, append([]string{"-c", onnxShapeScript}, paths...)...)
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v\n%s", err, stderr.String())
	}
	var res map[string]struct {
		Dims  map[string][]int64
		Error string
	}
	if err := json.Unmarshal(stdout, &res); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	compared := 0
	defer func() { t.Logf("%d values compared in %d graphs", compared, len(paths)) }()
	for _, p := range paths {
		r := res[p]
		if r.Error != "" {
			t.Errorf("%s: onnx rejects the graph: %s", names[p], r.Error)
			continue
		}
		for name, dims := range r.Dims {
			vt, ok := ours[p][name]
			if !ok {
				continue // a known difference
			}
			compared++
			if !agrees(vt.Dims, dims) {
				t.Errorf("%s: %s: InferShapes %v, onnx %v", names[p], name, vt.Dims, dims)
			}
		}
	}
}

// agrees reports whether our dims match onnx's, where onnx may know less
// (-1) than InferShapes, which tracks symbolic dimensions through Reshape.
func agrees(ours, onnx []int64) bool {
	if len(ours) != len(onnx) {
		return false
	}
	for i := range ours {
		if onnx[i] >= 0 && ours[i] != onnx[i] {
			return false
		}
	}
	return true
}

func ExampleInferShapes() {
	b := NewBuilder("net")
	x := b.Input("images", Float, -1, 3, 32, 32)
	w := b.Param("conv1.weight", []int64{16, 3, 3, 3}, make([]float32, 16*27))
	y := b.Op("Conv", []string{x, w}, Ints("pads", 1, 1, 1, 1), Ints("strides", 2, 2))
	types, err := InferShapes(b.G, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(types[y])
	types, _ = InferShapes(b.G, map[string][]int64{"images": {8, 3, 64, 64}})
	fmt.Println(types[y].Dims)
	// Output:
	// FLOAT[?,16,16,16]
	// [8 16 32 32]
}

// TestShapeOpsListed checks that ShapeOps and inferNode agree.
func TestShapeOpsListed(t *testing.T) {
	for _, op := range ShapeOps() {
		n := &pb.NodeProto{OpType: ptr(op), Name: ptr("n"), Output: []string{"y"}}
		err := newShapeState().inferNode(n)
		if err != nil && strings.Contains(err.Error(), "unsupported op") {
			t.Errorf("%s is listed in ShapeOps but inferNode rejects it", op)
		}
	}
}
