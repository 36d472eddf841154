package graph

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/pyenv"
	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

// sequenceGraph splits x [N,6,4,4] three ways into sequences read by
// SequenceAt: chunks of 4 along the channels (the last one of 2) read at
// 1 (an index from a Constant node after the split), -2 and 0 again;
// sizes [1,2,3] read at 2; size-1 chunks of axis 2 without the axis
// (keepdims 0) read twice at 3.
func sequenceGraph() tb {
	b := newTB()
	x := b.in("x", -1, 6, 4, 4)
	b.node("SplitToSequence", []string{x, b.scalar("four", 4)}, []string{"sa"}, Int("axis", 1))
	b.node("Constant", nil, []string{"one"}, TensorAttr("value", Int64Tensor("", nil, []int64{1})))
	b.node("SequenceAt", []string{"sa", "one"}, []string{"a1"})
	b.node("SequenceAt", []string{"sa", b.scalar("minus2", -2)}, []string{"a0"})
	b.node("SequenceAt", []string{"sa", b.scalar("zero", 0)}, []string{"a0b"})
	b.node("SplitToSequence", []string{x, b.ints("sizes", 1, 2, 3)}, []string{"sb"}, Int("axis", -3))
	b.node("SequenceAt", []string{"sb", b.scalar("two", 2)}, []string{"b2"})
	b.node("SplitToSequence", []string{x}, []string{"sc"}, Int("axis", 2), Int("keepdims", 0))
	b.node("SequenceAt", []string{"sc", b.scalar("three", 3)}, []string{"c3"})
	b.node("SequenceAt", []string{"sc", "three"}, []string{"c3b"})
	for _, o := range []struct {
		name string
		dims []int64
	}{{"a1", []int64{-1, 2, 4, 4}}, {"a0", []int64{-1, 4, 4, 4}}, {"a0b", []int64{-1, 4, 4, 4}},
		{"b2", []int64{-1, 3, 4, 4}}, {"c3", []int64{-1, 6, 4}}, {"c3b", []int64{-1, 6, 4}}} {
		b.Output(o.name, Float, o.dims...)
	}
	return b
}

// TestSplitToSequence: shape inference follows the chunks; Normalize turns
// each SplitToSequence into a Split named after its readers, leaving no
// sequence op, and the result computes what the original does (onnx's
// reference evaluator) and passes onnx.checker's full check.
func TestSplitToSequence(t *testing.T) {
	g := sequenceGraph().G
	orig := proto.Clone(g).(*pb.GraphProto)
	before, err := InferShapes(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range g.Output {
		if want, _ := Dims(o); !slices.Equal(before[o.GetName()].Dims, want) {
			t.Errorf("%s: inferred %v, want %v", o.GetName(), before[o.GetName()].Dims, want)
		}
	}
	if err := Normalize(g, 17, nil); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, n := range g.Node {
		count[n.GetOpType()]++
	}
	if count["SplitToSequence"]+count["SequenceAt"] != 0 || count["Split"] != 3 || count["Identity"] != 1 || count["Squeeze"] != 2 {
		t.Errorf("ops after Normalize: %v", count)
	}
	after, err := InferShapes(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range g.Output {
		if !slices.Equal(before[o.GetName()].Dims, after[o.GetName()].Dims) {
			t.Errorf("%s: dims %v before, %v after", o.GetName(), before[o.GetName()].Dims, after[o.GetName()].Dims)
		}
	}

	py := pyenv.Require(t, "onnx", "numpy")
	dir := t.TempDir()
	a, b := filepath.Join(dir, "seq.onnx"), filepath.Join(dir, "split.onnx")
	if err := Save(a, NewModel(orig, 17)); err != nil {
		t.Fatal(err)
	}
	if err := Save(b, NewModel(g, 17)); err != nil {
		t.Fatal(err)
	}
	script := `
import sys, numpy as np, onnx
from onnx.reference import ReferenceEvaluator
a, b = onnx.load(sys.argv[1]), onnx.load(sys.argv[2])
onnx.checker.check_model(b, full_check=True)
x = np.random.default_rng(0).standard_normal((2, 6, 4, 4)).astype(np.float32)
names = [o.name for o in a.graph.output]
ya = ReferenceEvaluator(a).run(names, {"x": x})
yb = ReferenceEvaluator(b).run(names, {"x": x})
for n, u, v in zip(names, ya, yb):
    assert u.shape == v.shape, (n, u.shape, v.shape)
    assert np.array_equal(u, v), n
print("ok")
`
	out, err := exec.Command(py, "-c", script, a, b).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("python check: %v\n%s", err, out)
	}
}

// TestSplitToSequenceRefused: what cannot become a Split is refused with
// the reason and the re-export.
func TestSplitToSequenceRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		build func(b tb, x string)
		err   string
	}{
		{"batch axis", func(b tb, x string) {
			b.node("SplitToSequence", []string{x, b.scalar("k", 1)}, []string{"s"})
			b.node("SequenceAt", []string{"s", b.scalar("i", 0)}, []string{"y"})
		}, "axis 0 has no static size"},
		{"run-time sizes", func(b tb, x string) {
			b.node("Shape", []string{x}, []string{"shape"})
			b.node("Gather", []string{"shape", b.scalar("zero", 0)}, []string{"n"})
			b.node("SplitToSequence", []string{x, "n"}, []string{"s"}, Int("axis", 1))
			b.node("SequenceAt", []string{"s", "zero"}, []string{"y"})
		}, `split "n" is computed at run time`},
		{"run-time index", func(b tb, x string) {
			b.node("SplitToSequence", []string{x, b.scalar("k", 3)}, []string{"s"}, Int("axis", 1))
			b.node("Shape", []string{x}, []string{"shape"})
			b.node("Gather", []string{"shape", b.scalar("zero", 0)}, []string{"n"})
			b.node("SequenceAt", []string{"s", "n"}, []string{"y"})
		}, `index "n" is computed at run time`},
		{"other reader", func(b tb, x string) {
			b.node("SplitToSequence", []string{x, b.scalar("k", 3)}, []string{"s"}, Int("axis", 1))
			b.node("Identity", []string{"s"}, []string{"y"})
		}, `input 0 "s" is a sequence`},
		{"sequence output", func(b tb, x string) {
			b.node("SplitToSequence", []string{x, b.scalar("k", 3)}, []string{"s"}, Int("axis", 1))
			b.node("SequenceAt", []string{"s", b.scalar("i", 0)}, []string{"y"})
			b.Output("s", Float)
		}, `its sequence "s" is a graph output`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTB()
			tc.build(b, b.in("x", -1, 6, 4, 4))
			err := Normalize(b.G, 17, nil)
			if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "---> FIX: "+ReexportHint) {
				t.Errorf("error %v, want %q and the re-export", err, tc.err)
			}
		})
	}
}
