package graph

import (
	"slices"
	"testing"

	pb "github.com/critlab/critlab/models/onnxpb"
)

// TestNormalize: opset-18 reduce axes and uneven Split num_outputs take
// their opset-17 form; SAME auto_pad becomes explicit pads, asymmetric on a
// Conv a Pad node before it; shapes stay as they were.
func TestNormalize(t *testing.T) {
	b := newTB()
	x := b.in("x", -1, 3, 9, 9)
	b.node("ReduceMean", []string{x, b.ints("axes", 2, 3)}, []string{"mean"}, Int("keepdims", 1))
	b.node("Split", []string{b.in("c", 10)}, []string{"q0", "q1", "q2"}, Int("num_outputs", 3))
	b.node("Conv", []string{x, b.w("w", 4, 3, 2, 2)}, []string{"conv"}, Str("auto_pad", "SAME_UPPER"), Ints("strides", 2, 2))
	b.node("MaxPool", []string{x}, []string{"pool"}, Str("auto_pad", "SAME_LOWER"), Ints("kernel_shape", 3, 3))
	g := b.G
	before, err := InferShapes(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := Normalize(g, 18, nil); err != nil {
		t.Fatal(err)
	}
	byOut := map[string]*pb.NodeProto{}
	var ops []string
	for _, n := range g.Node {
		byOut[n.Output[0]] = n
		ops = append(ops, n.GetOpType())
	}
	if want := []string{"ReduceMean", "Split", "Pad", "Conv", "MaxPool"}; !slices.Equal(ops, want) {
		t.Fatalf("ops %v, want %v", ops, want)
	}
	if n := byOut["mean"]; len(n.Input) != 1 || !slices.Equal(AttrInts(n, "axes", nil), []int64{2, 3}) {
		t.Errorf("ReduceMean inputs %v, axes %v", n.Input, AttrInts(n, "axes", nil))
	}
	split := byOut["q0"]
	if Attr(split, "num_outputs") != nil || len(split.Input) != 2 {
		t.Fatalf("Split attributes %v, inputs %v", split.Attribute, split.Input)
	}
	for _, in := range g.Initializer {
		if in.GetName() == split.Input[1] {
			if v, _ := Int64s(in); !slices.Equal(v, []int64{4, 4, 2}) {
				t.Errorf("split sizes %v, want [4 4 2]", v)
			}
		}
	}
	// SAME_UPPER, 9 -> 5 with a 2×2 kernel, stride 2: total pad 1, at the end.
	conv := byOut["conv"]
	if got := AttrInts(conv, "pads", nil); !slices.Equal(got, []int64{0, 0, 0, 0}) || Attr(conv, "auto_pad") != nil {
		t.Errorf("Conv pads %v, auto_pad %v", got, Attr(conv, "auto_pad"))
	}
	if pad := g.Node[2]; pad.Output[0] != conv.Input[0] || pad.Input[0] != x {
		t.Errorf("Pad %v -> %v does not feed the Conv (input %v)", pad.Input, pad.Output, conv.Input)
	}
	// SAME_LOWER with a 3×3 kernel, stride 1: symmetric pads stay on the pool.
	if got := AttrInts(byOut["pool"], "pads", nil); !slices.Equal(got, []int64{1, 1, 1, 1}) {
		t.Errorf("MaxPool pads %v, want [1 1 1 1]", got)
	}
	after, err := InferShapes(g, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"mean", "q0", "q1", "q2", "conv", "pool"} {
		if !slices.Equal(before[v].Dims, after[v].Dims) {
			t.Errorf("%s: dims %v before, %v after", v, before[v].Dims, after[v].Dims)
		}
	}
}
