package graph

import (
	"encoding/binary"
	"fmt"

	pb "github.com/critlab/critlab/models/onnxpb"
)

// foldable lists the ops FoldConstants replaces by an initializer when all
// their outputs are statically known. They are all deterministic and cheap:
// the shape arithmetic that torch.onnx.export writes.
var foldable = map[string]bool{
	"Shape": true, "Size": true, "Gather": true, "Unsqueeze": true, "Squeeze": true,
	"Concat": true, "Cast": true, "CastLike": true, "Slice": true, "Reshape": true, "Flatten": true,
	"Add": true, "Sub": true, "Mul": true, "Div": true, "Mod": true, "Neg": true, "Abs": true,
	"Min": true, "Max": true, "Equal": true, "Less": true, "Greater": true, "LessOrEqual": true,
	"GreaterOrEqual": true, "Not": true, "And": true, "Or": true, "Xor": true, "Where": true,
	"ConstantOfShape": true, "Range": true,
}

// FoldConstants simplifies m's graph in place:
//
//   - Constant nodes become initializers;
//   - Identity nodes are removed (their consumers read the input directly),
//     except where the Identity produces a graph output;
//   - shape-only subgraphs (Shape of a tensor with static dims, and Gather,
//     Unsqueeze, Squeeze, Concat, Cast, Slice, arithmetic... on known values)
//     become initializers;
//   - a Reshape whose target is only partly known, such as
//     Concat(Unsqueeze(Gather(Shape(x), 0)), [-1]) with a symbolic batch
//     dimension, gets a constant target that keeps the batch dynamic:
//     [0, -1] or [-1, K];
//   - nodes and initializers nothing uses any more are removed.
//
// It never folds through values that depend on the symbolic batch size,
// leaves BatchNormalization and every other compute node alone, and keeps
// initializers shared between nodes as they are. Graph outputs keep their
// names and producers.
func FoldConstants(m *pb.ModelProto) error {
	if m.GetGraph() == nil {
		return fmt.Errorf("fold: model has no graph")
	}
	g := m.Graph
	st, err := inferGraph(g, nil)
	if err != nil {
		return fmt.Errorf("fold: %w", err)
	}
	isOutput := map[string]bool{}
	for _, o := range g.Output {
		isOutput[o.GetName()] = true
	}
	b := Wrap(g)
	alias := map[string]string{}
	resolve := func(name string) string {
		for {
			a, ok := alias[name]
			if !ok {
				return name
			}
			name = a
		}
	}
	var nodes []*pb.NodeProto
	for i, n := range g.Node {
		for j, in := range n.Input {
			n.Input[j] = resolve(in)
		}
		op := n.GetOpType()
		if n.GetDomain() != "" && n.GetDomain() != "ai.onnx" {
			nodes = append(nodes, n)
			continue
		}
		switch {
		case op == "Constant" && len(n.Output) == 1 && !isOutput[n.Output[0]]:
			t, err := constantTensor(n)
			if err != nil {
				return fmt.Errorf("fold: %s: %w", nodeLabel(n, i), err)
			}
			g.Initializer = append(g.Initializer, t)
			continue
		case op == "Identity" && len(n.Input) == 1 && len(n.Output) == 1 && !isOutput[n.Output[0]]:
			alias[n.Output[0]] = n.Input[0]
			continue
		case foldable[op] && !anyOutput(n, isOutput):
			if ts, ok := st.foldedTensors(n); ok {
				g.Initializer = append(g.Initializer, ts...)
				continue
			}
		}
		if op == "Reshape" && len(n.Input) == 2 {
			if target, ok := st.staticReshapeTarget(n); ok {
				name := b.Fresh(n.Output[0] + "_shape")
				g.Initializer = append(g.Initializer, Int64Tensor(name, []int64{int64(len(target))}, target))
				n.Input[1] = name
			}
		}
		nodes = append(nodes, n)
	}
	for _, o := range g.Output {
		if a := resolve(o.GetName()); a != o.GetName() {
			return fmt.Errorf("fold: internal error: graph output %q aliased to %q", o.GetName(), a)
		}
	}
	g.Node = nodes
	removeDead(g)
	return nil
}

func anyOutput(n *pb.NodeProto, isOutput map[string]bool) bool {
	for _, o := range n.Output {
		if isOutput[o] {
			return true
		}
	}
	return false
}

// foldedTensors returns initializers for every output of n when all are
// statically known.
func (st *shapeState) foldedTensors(n *pb.NodeProto) ([]*pb.TensorProto, bool) {
	var out []*pb.TensorProto
	for _, name := range n.Output {
		if name == "" {
			continue
		}
		vt, ok := st.types[name]
		if !ok || !vt.Static() {
			return nil, false
		}
		t, ok := st.constTensor(name, vt)
		if !ok {
			return nil, false
		}
		out = append(out, t)
	}
	return out, len(out) > 0
}

// constTensor makes a tensor from a fully known tracked value.
func (st *shapeState) constTensor(name string, vt ValueType) (*pb.TensorProto, bool) {
	n := NumElements(vt.Dims)
	if v, ok := st.vals[name]; ok && int64(len(v)) == n {
		ints := make([]int64, n)
		for i, x := range v {
			if !x.known() {
				return nil, false
			}
			ints[i] = x.v
		}
		return intTensor(name, vt.Elem, vt.Dims, ints)
	}
	if f, ok := st.fvals[name]; ok && int64(len(f)) == n {
		switch vt.Elem {
		case Float:
			f32 := make([]float32, n)
			for i, x := range f {
				f32[i] = float32(x)
			}
			return FloatTensor(name, vt.Dims, f32), true
		case pb.TensorProto_DOUBLE:
			dt := int32(pb.TensorProto_DOUBLE)
			return &pb.TensorProto{Name: &name, Dims: append([]int64{}, vt.Dims...), DataType: &dt, DoubleData: append([]float64{}, f...)}, true
		}
	}
	return nil, false
}

// intTensor encodes integer values as a tensor of an integer, bool or float
// element type.
func intTensor(name string, elem pb.TensorProto_DataType, dims, v []int64) (*pb.TensorProto, bool) {
	dt := int32(elem)
	t := &pb.TensorProto{Name: &name, Dims: append([]int64{}, dims...), DataType: &dt}
	switch elem {
	case Int64:
		return Int64Tensor(name, dims, v), true
	case pb.TensorProto_INT32:
		t.RawData = make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(t.RawData[4*i:], uint32(int32(x)))
		}
	case Bool, pb.TensorProto_UINT8, pb.TensorProto_INT8:
		t.RawData = make([]byte, len(v))
		for i, x := range v {
			t.RawData[i] = byte(x)
		}
	case Float:
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		return FloatTensor(name, dims, f), true
	case pb.TensorProto_DOUBLE:
		t.DoubleData = make([]float64, len(v))
		for i, x := range v {
			t.DoubleData[i] = float64(x)
		}
	default:
		return nil, false
	}
	return t, true
}

// staticReshapeTarget returns a constant target equivalent to a Reshape's
// partly known one: symbolic dims copied from the same input axis become 0,
// one remaining unknown becomes -1.
func (st *shapeState) staticReshapeTarget(n *pb.NodeProto) ([]int64, bool) {
	if st.isInit[n.Input[1]] || AttrInt(n, "allowzero", 0) != 0 {
		return nil, false
	}
	v, ok := st.vals[n.Input[1]]
	if !ok {
		return nil, false
	}
	x, ok1 := st.types[n.Input[0]]
	y, ok2 := st.types[n.Output[0]]
	if !ok1 || !ok2 || len(y.Dims) != len(v) {
		return nil, false
	}
	allKnown := true
	for _, e := range v {
		allKnown = allKnown && e.known()
	}
	if allKnown {
		return nil, false // a plain constant; folded (or kept) as it is
	}
	target := make([]int64, len(y.Dims))
	minus := -1
	for i, d := range y.Dims {
		switch {
		case d == 0:
			return nil, false // empty tensors: 0 would mean copy
		case d > 0:
			target[i] = d
		case i < len(x.Dims) && d <= -2 && x.Dims[i] == d:
			target[i] = 0
		case minus >= 0:
			return nil, false // two unknowns we cannot express
		default:
			minus = i
			target[i] = -1
		}
	}
	if minus < 0 {
		// Keep the original -1 where there was one (a Flatten-like [0, -1]).
		for i, e := range v {
			if e.known() && e.v == -1 {
				target[i] = -1
				break
			}
		}
	}
	return target, true
}

// removeDead drops nodes whose outputs nothing reads, then initializers and
// value_info entries that no longer name a used value.
func removeDead(g *pb.GraphProto) {
	live := map[string]bool{}
	for _, o := range g.Output {
		live[o.GetName()] = true
	}
	keep := make([]bool, len(g.Node))
	for i := len(g.Node) - 1; i >= 0; i-- {
		n := g.Node[i]
		used := len(n.Output) == 0
		for _, o := range n.Output {
			used = used || live[o]
		}
		if !used {
			continue
		}
		keep[i] = true
		for _, in := range n.Input {
			live[in] = true
		}
	}
	var nodes []*pb.NodeProto
	defined := map[string]bool{}
	for i, n := range g.Node {
		if keep[i] {
			nodes = append(nodes, n)
			for _, o := range n.Output {
				defined[o] = true
			}
		}
	}
	g.Node = nodes
	isInput := map[string]bool{}
	for _, in := range g.Input {
		isInput[in.GetName()] = true
		defined[in.GetName()] = true
	}
	var inits []*pb.TensorProto
	for _, t := range g.Initializer {
		if live[t.GetName()] || isInput[t.GetName()] {
			inits = append(inits, t)
			defined[t.GetName()] = true
		}
	}
	g.Initializer = inits
	var infos []*pb.ValueInfoProto
	for _, vi := range g.ValueInfo {
		if defined[vi.GetName()] {
			infos = append(infos, vi)
		}
	}
	g.ValueInfo = infos
}
