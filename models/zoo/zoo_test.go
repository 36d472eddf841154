package zoo

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

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

func build(t *testing.T, name string, o Options) *pb.ModelProto {
	t.Helper()
	m, err := Build(name, o)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestNames(t *testing.T) {
	if got, want := Names(), []string{"allcnn", "resnet18", "small"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		err  string
	}{
		{"vgg", Options{}, `unknown model "vgg"`},
		{"small", Options{Width: -1}, "width -1 must be in (0, 64]"},
		{"small", Options{Width: math.NaN()}, "width NaN"},
		{"small", Options{Classes: -3}, "classes -3"},
		{"small", Options{ImageSize: 2}, "image size 2"},
	}
	for _, tc := range tests {
		t.Run(tc.err, func(t *testing.T) {
			_, err := Build(tc.name, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want containing %q", err, tc.err)
			}
		})
	}
}

// Exact sizes: the numbers quoted in doc.go and the report.
func TestSizes(t *testing.T) {
	tests := []struct {
		name            string
		width           float64
		params, buffers int64
		flops           int64
	}{
		{"allcnn", 1, 1_621_374, 2_708, 690_513_792},
		{"allcnn", 0.25, 102_966, 692, 44_343_168},
		{"resnet18", 1, 11_173_962, 9_600, 1_112_270_848},
		{"resnet18", 0.25, 701_466, 2_400, 70_449_664},
		{"small", 1, 141_034, 640, 30_231_040},
		{"small", 0.25, 9_346, 160, 2_249_344},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s/w%g", tc.name, tc.width), func(t *testing.T) {
			if testing.Short() && tc.name == "resnet18" && tc.width == 1 {
				t.Skip("11M parameters")
			}
			s, err := graph.Stats(build(t, tc.name, Options{Width: tc.width}))
			if err != nil {
				t.Fatal(err)
			}
			if s.Params != tc.params || s.Buffers != tc.buffers || s.FLOPs != tc.flops {
				t.Errorf("params %d buffers %d FLOPs %d, want %d %d %d", s.Params, s.Buffers, s.FLOPs, tc.params, tc.buffers, tc.flops)
			}
			if len(s.Unknown) != 0 {
				t.Errorf("nodes without FLOPs: %v", s.Unknown)
			}
		})
	}
}

func TestShapes(t *testing.T) {
	for _, name := range Names() {
		for _, o := range []Options{
			{Width: 0.25},
			{Width: 0.5, Classes: 100},
			{Width: 0.3, ImageSize: 24, Classes: 7},
			{Width: 1, ImageSize: 40},
		} {
			t.Run(fmt.Sprintf("%s/%+v", name, o), func(t *testing.T) {
				if testing.Short() && name == "resnet18" && o.Width == 1 {
					t.Skip("11M parameters")
				}
				m := build(t, name, o)
				o = o.withDefaults()
				s := int64(o.ImageSize)
				types, err := graph.InferShapes(m.Graph, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := types["logits"]; !slices.Equal(got.Dims, []int64{-1, int64(o.Classes)}) || got.Elem != graph.Float {
					t.Errorf("logits %v, want FLOAT[?,%d]", got, o.Classes)
				}
				types, err = graph.InferShapes(m.Graph, map[string][]int64{"images": {5, 3, s, s}})
				if err != nil {
					t.Fatal(err)
				}
				if got := types["logits"].Dims; !slices.Equal(got, []int64{5, int64(o.Classes)}) {
					t.Errorf("logits dims %v with a batch of 5", got)
				}
				in, _ := graph.Dims(m.Graph.Input[0])
				if m.Graph.Input[0].GetName() != "images" || !slices.Equal(in, []int64{-1, 3, s, s}) {
					t.Errorf("input %s %v", m.Graph.Input[0].GetName(), in)
				}
			})
		}
	}
}

func TestWidthRounding(t *testing.T) {
	m := build(t, "allcnn", Options{Width: 0.3})
	want := map[string][]int64{
		"conv1.weight":    {29, 3, 3, 3},  // round(28.8)
		"conv3.weight":    {58, 29, 3, 3}, // round(57.6)
		"conv9.weight":    {10, 58, 1, 1}, // classes unchanged
		"bn9.running_var": {10},
	}
	for _, init := range m.Graph.Initializer {
		if w, ok := want[init.GetName()]; ok {
			if !slices.Equal(init.Dims, w) {
				t.Errorf("%s dims %v, want %v", init.GetName(), init.Dims, w)
			}
			delete(want, init.GetName())
		}
	}
	if len(want) > 0 {
		t.Errorf("missing %v", want)
	}
	tiny := build(t, "small", Options{Width: 0.001})
	if d := tiny.Graph.Initializer[0].Dims; d[0] != 1 {
		t.Errorf("width 0.001: conv1 has %d channels, want max(1, ·) = 1", d[0])
	}
}

func TestPyTorchNames(t *testing.T) {
	tests := []struct {
		name      string
		nParams   int // trainable tensors
		nBuffers  int
		wantNames []string
	}{
		{"resnet18", 62, 40, []string{"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer1.1.bn2.bias",
			"layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_var", "layer4.1.conv2.weight", "fc.weight", "fc.bias"}},
		{"allcnn", 36, 18, []string{"conv1.weight", "conv1.bias", "bn1.weight", "conv9.weight", "bn9.running_mean"}},
		{"small", 17, 10, []string{"conv1.weight", "bn5.running_var", "fc.weight", "fc.bias"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := build(t, tc.name, Options{Width: 0.25})
			var names []string
			for _, init := range m.Graph.Initializer {
				names = append(names, init.GetName())
			}
			for _, w := range tc.wantNames {
				if !slices.Contains(names, w) {
					t.Errorf("no initializer %q", w)
				}
			}
			s, err := graph.Stats(m)
			if err != nil {
				t.Fatal(err)
			}
			if s.ParamTensors != tc.nParams || s.BufferTensors != tc.nBuffers {
				t.Errorf("%d parameter and %d buffer tensors, want %d and %d", s.ParamTensors, s.BufferTensors, tc.nParams, tc.nBuffers)
			}
			if len(names) != tc.nParams+tc.nBuffers {
				t.Errorf("%d initializers, want only parameters and buffers (%d)", len(names), tc.nParams+tc.nBuffers)
			}
		})
	}
}

func TestDeterminism(t *testing.T) {
	enc := func(name string, o Options) []byte {
		b, err := graph.Marshal(build(t, name, o))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			o := Options{Width: 0.25, Seed: 7}
			a, b := enc(name, o), enc(name, o)
			if !bytes.Equal(a, b) {
				t.Error("two builds with one seed differ")
			}
			o.Seed = 8
			if bytes.Equal(a, enc(name, o)) {
				t.Error("seeds 7 and 8 give the same model")
			}
		})
	}
}

func floats(t *testing.T, m *pb.ModelProto, name string) ([]float32, []int64) {
	t.Helper()
	for _, init := range m.Graph.Initializer {
		if init.GetName() == name {
			v, err := graph.Floats(init)
			if err != nil {
				t.Fatal(err)
			}
			return v, init.Dims
		}
	}
	t.Fatalf("no initializer %q", name)
	return nil, nil
}

// TestInit checks PyTorch's default initialisation statistically: values in
// U(-b, b) with b = 1/sqrt(fan_in) have mean 0 (sd b/sqrt(3n)), variance b²/3,
// and reach close to ±b.
func TestInit(t *testing.T) {
	m := build(t, "allcnn", Options{Width: 0.5, Seed: 3})
	r := build(t, "resnet18", Options{Width: 0.25, Seed: 3})
	tests := []struct {
		m     *pb.ModelProto
		name  string
		fanIn float64
	}{
		{m, "conv1.weight", 27},
		{m, "conv1.bias", 27},
		{m, "conv4.weight", 96 * 9},
		{m, "conv4.bias", 96 * 9},
		{m, "conv8.weight", 96},
		{r, "layer3.0.downsample.0.weight", 32},
		{r, "fc.weight", 128},
		{r, "fc.bias", 128},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, _ := floats(t, tc.m, tc.name)
			b := 1 / math.Sqrt(tc.fanIn)
			n := float64(len(v))
			var sum, sq, lo, hi float64
			for _, x := range v {
				f := float64(x)
				if math.Abs(f) > b {
					t.Fatalf("value %g outside ±%g", f, b)
				}
				sum += f
				sq += f * f
				lo, hi = math.Min(lo, f), math.Max(hi, f)
			}
			mean := sum / n
			if sd := b / math.Sqrt(3*n); math.Abs(mean) > 4*sd {
				t.Errorf("mean %g, more than 4 sd (%g) from 0", mean, sd)
			}
			variance := sq/n - mean*mean
			// Var of the sample variance of U(-b,b): (b^4/5 - b^4/9)/n.
			if sd := b * b * math.Sqrt((1.0/5-1.0/9)/n); math.Abs(variance-b*b/3) > 4*sd {
				t.Errorf("variance %g, want %g ± %g", variance, b*b/3, 4*sd)
			}
			if n >= 100 && (hi < 0.9*b || lo > -0.9*b) {
				t.Errorf("range [%g, %g] does not approach ±%g", lo, hi, b)
			}
		})
	}
	for _, bn := range []struct {
		name string
		want float32
	}{{"bn3.weight", 1}, {"bn3.bias", 0}, {"bn3.running_mean", 0}, {"bn3.running_var", 1}} {
		v, _ := floats(t, m, bn.name)
		for _, x := range v {
			if x != bn.want {
				t.Fatalf("%s holds %g, want %g", bn.name, x, bn.want)
			}
		}
	}
	for _, n := range m.Graph.Node {
		if n.GetOpType() == "BatchNormalization" {
			if e, mo := graph.AttrFloat(n, "epsilon", 0), graph.AttrFloat(n, "momentum", 0); e != 1e-5 || mo != 0.9 || len(n.Input) != 5 || len(n.Output) != 1 {
				t.Fatalf("%s: epsilon %g momentum %g, %d inputs %d outputs", n.GetName(), e, mo, len(n.Input), len(n.Output))
			}
		}
	}
}

// TestAllCNNLayout pins the layer list: BatchNorm and ReLU after every conv,
// the final 1×1 classes conv included.
func TestAllCNNLayout(t *testing.T) {
	m := build(t, "allcnn", Options{Width: 0.25})
	var ops []string
	for _, n := range m.Graph.Node {
		ops = append(ops, n.GetOpType())
	}
	want := slices.Repeat([]string{"Conv", "BatchNormalization", "Relu"}, 9)
	want = append(want, "GlobalAveragePool", "Flatten")
	if !slices.Equal(ops, want) {
		t.Errorf("ops %v\nwant %v", ops, want)
	}
	strides := []int64{1, 1, 2, 1, 1, 2, 1, 1, 1}
	kernels := []int64{3, 3, 3, 3, 3, 3, 3, 1, 1}
	for i := 0; i < 9; i++ {
		n := m.Graph.Node[3*i]
		if s, k := graph.AttrInts(n, "strides", nil)[0], graph.AttrInts(n, "kernel_shape", nil)[0]; s != strides[i] || k != kernels[i] {
			t.Errorf("%s: stride %d kernel %d, want %d %d", n.GetName(), s, k, strides[i], kernels[i])
		}
	}
}

// checkScript runs onnx.checker (full_check) and strict ONNX shape inference
// on each model and prints the inferred dims of every value as JSON; for the
// first model it also runs the reference evaluator on a batch of 2.
const checkScript = `
import json, sys, numpy as np, onnx
from onnx import shape_inference
from onnx.reference import ReferenceEvaluator
out = {}
for i, path in enumerate(sys.argv[1:]):
    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    inf = shape_inference.infer_shapes(m, check_type=True, strict_mode=True, data_prop=True)
    dims = {}
    for vi in list(inf.graph.value_info) + list(inf.graph.output):
        t = vi.type.tensor_type
        dims[vi.name] = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
    if i == 0:
        s = m.graph.input[0].type.tensor_type.shape.dim[2].dim_value
        x = np.random.default_rng(0).standard_normal((2, 3, s, s)).astype(np.float32)
        y = ReferenceEvaluator(m).run(None, {"images": x})[0]
        assert y.shape == (2, dims["logits"][1]) and np.isfinite(y).all(), y.shape
    out[path] = dims
print(json.dumps(out))
`

func TestONNXChecker(t *testing.T) {
	py := pyenv.Require(t, "onnx", "numpy")
	dir := t.TempDir()
	cases := []struct {
		name string
		o    Options
	}{
		{"small", Options{Width: 0.25, ImageSize: 16}}, // first: also evaluated
		{"small", Options{}},
		{"allcnn", Options{Width: 0.25}},
		{"allcnn", Options{Classes: 100}},
		{"resnet18", Options{Width: 0.25, ImageSize: 28, Classes: 3}},
		{"resnet18", Options{}},
	}
	var paths []string
	ours := map[string]map[string]graph.ValueType{}
	for i, c := range cases {
		m := build(t, c.name, c.o)
		p := filepath.Join(dir, fmt.Sprintf("%d_%s.onnx", i, c.name))
		if err := graph.Save(p, m); err != nil {
			t.Fatal(err)
		}
		types, err := graph.InferShapes(m.Graph, nil)
		if err != nil {
			t.Fatal(err)
		}
		ours[p] = types
		paths = append(paths, p)
	}
	cmd := exec.Command(py, append([]string{"-c", checkScript}, paths...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("onnx checker: %v\n%s", err, stderr.String())
	}
	var theirs map[string]map[string][]int64
	if err := json.Unmarshal(stdout, &theirs); err != nil {
		t.Fatalf("%v: %s", err, stdout)
	}
	for _, p := range paths {
		if len(theirs[p]) == 0 {
			t.Errorf("%s: onnx inferred nothing", p)
		}
		for name, dims := range theirs[p] {
			if got := ours[p][name].Dims; !slices.Equal(got, dims) {
				t.Errorf("%s: %s: InferShapes %v, onnx %v", filepath.Base(p), name, got, dims)
			}
		}
	}
}
