package graph

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

// ValueType is the element type and static shape of a tensor value. A
// dimension of -1 is unknown or symbolic (the batch dimension "N").
type ValueType struct {
	Elem pb.TensorProto_DataType
	Dims []int64
}

// String formats a value type as FLOAT[N,3,32,32].
func (v ValueType) String() string {
	parts := make([]string, len(v.Dims))
	for i, d := range v.Dims {
		if d < 0 {
			parts[i] = "?"
		} else {
			parts[i] = fmt.Sprint(d)
		}
	}
	return fmt.Sprintf("%v[%s]", v.Elem, strings.Join(parts, ","))
}

// Static reports whether every dimension is known.
func (v ValueType) Static() bool {
	for _, d := range v.Dims {
		if d < 0 {
			return false
		}
	}
	return true
}

// InferShapes computes the element type and shape of every value in g: graph
// inputs, initializers and every node output, in node order (g must be
// topologically sorted). inputs overrides the declared dimensions of graph
// inputs by name (-1 keeps a dimension symbolic); nil uses the declared
// dimensions.
//
// Small integer tensors whose values are known statically (Constant,
// initializers, Shape of a tensor with static dimensions, and Gather,
// Unsqueeze, Concat, Slice, Cast or arithmetic on those) are tracked by value,
// so the Shape->Gather->Unsqueeze->Concat->Reshape chains that
// torch.onnx.export writes resolve to static shapes. Symbolic dimensions are
// tracked by identity: Reshape(x, Concat(Shape(x)[0], [-1])) keeps x's batch
// dimension and computes the -1 entry.
//
// Errors name the node: `shape: node "conv3" (Conv): ...`.
func InferShapes(g *pb.GraphProto, inputs map[string][]int64) (map[string]ValueType, error) {
	st, err := inferGraph(g, inputs)
	if err != nil {
		return nil, err
	}
	out := make(map[string]ValueType, len(st.types))
	for name, vt := range st.types {
		out[name] = publicType(vt)
	}
	return out, nil
}

// InferValues is InferShapes that also returns the contents of the int64
// and int32 tensors whose every entry is known statically (initializers,
// Constant nodes and the shape arithmetic on them, up to maxTracked
// entries): the reduce axes, pads, slice bounds and reshape targets that
// the training-graph compiler reads.
func InferValues(g *pb.GraphProto, inputs map[string][]int64) (map[string]ValueType, map[string][]int64, error) {
	st, err := inferGraph(g, inputs)
	if err != nil {
		return nil, nil, err
	}
	types := make(map[string]ValueType, len(st.types))
	ints := map[string][]int64{}
	for name, vt := range st.types {
		types[name] = publicType(vt)
		if vt.Elem != pb.TensorProto_INT64 && vt.Elem != pb.TensorProto_INT32 {
			continue
		}
		if v, ok := st.knownInts(name); ok {
			ints[name] = v
		}
	}
	return types, ints, nil
}

// InferModelShapes is InferShapes on a model's graph with declared inputs.
func InferModelShapes(m *pb.ModelProto) (map[string]ValueType, error) {
	if m.GetGraph() == nil {
		return nil, fmt.Errorf("shape: model has no graph")
	}
	return InferShapes(m.Graph, nil)
}

func publicType(vt ValueType) ValueType {
	dims := make([]int64, len(vt.Dims))
	for i, d := range vt.Dims {
		if d < 0 {
			d = -1
		}
		dims[i] = d
	}
	return ValueType{Elem: vt.Elem, Dims: dims}
}

// Internally a dimension is >= 0 when known, -1 when unknown, and <= -2 for a
// named symbol: two dimensions with the same symbol are equal.
const unknownDim int64 = -1

// ival is one element of a statically tracked integer tensor: known (sym == 0)
// with value v, or unknown, equal to the dimension code sym (-1: anonymous).
type ival struct {
	v   int64
	sym int64
}

func (x ival) known() bool { return x.sym == 0 }

// maxTracked bounds the number of elements whose values are tracked.
const maxTracked = 4096

type shapeState struct {
	types  map[string]ValueType
	vals   map[string][]ival    // integer (or bool, or integral float) values
	fvals  map[string][]float64 // small float constants
	isInit map[string]bool      // true constant initializers (not graph inputs)
	syms   map[string]int64
	next   int64
	seqs   map[string][]ValueType // SplitToSequence outputs: the chunks
}

func newShapeState() *shapeState {
	return &shapeState{
		types:  map[string]ValueType{},
		vals:   map[string][]ival{},
		fvals:  map[string][]float64{},
		isInit: map[string]bool{},
		syms:   map[string]int64{},
		next:   -2,
		seqs:   map[string][]ValueType{},
	}
}

func (st *shapeState) symbol(name string) int64 {
	if s, ok := st.syms[name]; ok {
		return s
	}
	s := st.fresh()
	st.syms[name] = s
	return s
}

func (st *shapeState) fresh() int64 {
	s := st.next
	st.next--
	return s
}

// nodeLabel names a node for error messages.
func nodeLabel(n *pb.NodeProto, i int) string {
	name := n.GetName()
	if name == "" {
		name = fmt.Sprintf("#%d", i)
		if len(n.Output) > 0 {
			name = fmt.Sprintf("#%d -> %s", i, n.Output[0])
		}
	}
	return fmt.Sprintf("node %q (%s)", name, n.GetOpType())
}

func inferGraph(g *pb.GraphProto, inputs map[string][]int64) (*shapeState, error) {
	if g == nil {
		return nil, fmt.Errorf("shape: nil graph")
	}
	st := newShapeState()
	declared := map[string]bool{}
	for _, in := range g.Input {
		declared[in.GetName()] = true
	}
	for name := range inputs {
		if !declared[name] {
			return nil, fmt.Errorf("shape: input override %q: the graph has no such input", name)
		}
	}
	for _, t := range g.Initializer {
		name := t.GetName()
		st.types[name] = ValueType{Elem: pb.TensorProto_DataType(t.GetDataType()), Dims: append([]int64{}, t.Dims...)}
		if declared[name] {
			continue // an input with a default: not constant
		}
		st.isInit[name] = true
		st.loadValues(name, t)
	}
	for _, in := range g.Input {
		name := in.GetName()
		tt := in.GetType().GetTensorType()
		if tt == nil {
			return nil, fmt.Errorf("shape: input %q is not a tensor", name)
		}
		vt := ValueType{Elem: pb.TensorProto_DataType(tt.GetElemType())}
		var decl []int64
		if tt.Shape != nil {
			for i, d := range tt.Shape.Dim {
				switch dv := d.Value.(type) {
				case *pb.TensorShapeProto_Dimension_DimValue:
					decl = append(decl, dv.DimValue)
				case *pb.TensorShapeProto_Dimension_DimParam:
					decl = append(decl, st.symbol(dv.DimParam))
				default:
					decl = append(decl, st.symbol(fmt.Sprintf("%s:%d", name, i)))
				}
			}
		} else if init, ok := st.types[name]; ok {
			decl = init.Dims
		} else if _, ok := inputs[name]; !ok {
			return nil, fmt.Errorf("shape: input %q declares no shape; declare its dims or pass them in inputs", name)
		}
		if ov, ok := inputs[name]; ok {
			if tt.Shape != nil && len(ov) != len(decl) {
				return nil, fmt.Errorf("shape: input override %q: rank %d, the graph declares rank %d %v", name, len(ov), len(decl), publicType(ValueType{Dims: decl}).Dims)
			}
			dims := make([]int64, len(ov))
			for i, d := range ov {
				switch {
				case d >= 0:
					dims[i] = d
				case i < len(decl) && decl[i] < 0:
					dims[i] = decl[i]
				default:
					dims[i] = st.symbol(fmt.Sprintf("%s:%d", name, i))
				}
			}
			decl = dims
		}
		vt.Dims = decl
		st.types[name] = vt
	}
	for i, n := range g.Node {
		if err := st.inferNode(n); err != nil {
			return nil, fmt.Errorf("shape: %s: %w", nodeLabel(n, i), err)
		}
	}
	return st, nil
}

// loadValues records the values of a small integer or float tensor.
func (st *shapeState) loadValues(name string, t *pb.TensorProto) {
	if t.GetDataLocation() == pb.TensorProto_EXTERNAL || NumElements(t.Dims) > maxTracked {
		return
	}
	switch pb.TensorProto_DataType(t.GetDataType()) {
	case pb.TensorProto_INT64, pb.TensorProto_INT32:
		if v, err := Int64s(t); err == nil && int64(len(v)) == NumElements(t.Dims) {
			st.vals[name] = knownVals(v)
		}
	case pb.TensorProto_FLOAT:
		if v, err := Floats(t); err == nil {
			f := make([]float64, len(v))
			for i, x := range v {
				f[i] = float64(x)
			}
			st.fvals[name] = f
		}
	case pb.TensorProto_DOUBLE:
		if int64(len(t.DoubleData)) == NumElements(t.Dims) {
			st.fvals[name] = append([]float64{}, t.DoubleData...)
		}
	case pb.TensorProto_BOOL:
		if v, err := boolValues(t); err == nil {
			st.vals[name] = knownVals(v)
		}
	}
}

func boolValues(t *pb.TensorProto) ([]int64, error) {
	n := NumElements(t.Dims)
	out := make([]int64, 0, n)
	if len(t.RawData) > 0 {
		for _, b := range t.RawData {
			out = append(out, int64(b&1))
		}
	} else {
		for _, v := range t.Int32Data {
			out = append(out, int64(v&1))
		}
	}
	if int64(len(out)) != n {
		return nil, fmt.Errorf("tensor %q: %d bool values for shape %v", t.GetName(), len(out), t.Dims)
	}
	return out, nil
}

func knownVals(v []int64) []ival {
	out := make([]ival, len(v))
	for i, x := range v {
		out[i] = ival{v: x}
	}
	return out
}

// ---- node inference ----

// in returns the type of input i, or an error if it is missing.
func (st *shapeState) in(n *pb.NodeProto, i int) (ValueType, error) {
	if i >= len(n.Input) || n.Input[i] == "" {
		return ValueType{}, fmt.Errorf("input %d is required", i)
	}
	vt, ok := st.types[n.Input[i]]
	if _, seq := st.seqs[n.Input[i]]; seq && !ok {
		return ValueType{}, sequenceRefusal("input %d %q is a sequence", i, n.Input[i])
	}
	if !ok {
		return ValueType{}, fmt.Errorf("input %d %q is not defined before this node (graph not topologically sorted, or a missing initializer)", i, n.Input[i])
	}
	return vt, nil
}

// ins returns the types of the first k inputs, all required. The error names
// the first missing or undefined one, as in does.
func (st *shapeState) ins(n *pb.NodeProto, k int) ([]ValueType, error) {
	vts := make([]ValueType, k)
	for i := range vts {
		vt, err := st.in(n, i)
		if err != nil {
			return nil, err
		}
		vts[i] = vt
	}
	return vts, nil
}

// optIn returns the type of optional input i and whether it is present.
func (st *shapeState) optIn(n *pb.NodeProto, i int) (ValueType, bool, error) {
	if i >= len(n.Input) || n.Input[i] == "" {
		return ValueType{}, false, nil
	}
	vt, err := st.in(n, i)
	return vt, err == nil, err
}

// intInput returns the statically known values of input i (all known), or
// ok=false.
func (st *shapeState) intInput(n *pb.NodeProto, i int) ([]int64, bool) {
	if i >= len(n.Input) || n.Input[i] == "" {
		return nil, false
	}
	return st.knownInts(n.Input[i])
}

// knownInts returns the values of name when every entry is known.
func (st *shapeState) knownInts(name string) ([]int64, bool) {
	v, ok := st.vals[name]
	if !ok {
		return nil, false
	}
	out := make([]int64, len(v))
	for j, x := range v {
		if !x.known() {
			return nil, false
		}
		out[j] = x.v
	}
	return out, true
}

func (st *shapeState) set(n *pb.NodeProto, i int, elem pb.TensorProto_DataType, dims []int64) {
	if i < len(n.Output) && n.Output[i] != "" {
		st.types[n.Output[i]] = ValueType{Elem: elem, Dims: dims}
	}
}

func (st *shapeState) setVals(n *pb.NodeProto, i int, v []ival) {
	if i < len(n.Output) && n.Output[i] != "" && v != nil && len(v) <= maxTracked {
		st.vals[n.Output[i]] = v
	}
}

func (st *shapeState) inVals(n *pb.NodeProto, i int) ([]ival, bool) {
	if i >= len(n.Input) || n.Input[i] == "" {
		return nil, false
	}
	v, ok := st.vals[n.Input[i]]
	return v, ok
}

func (st *shapeState) inferNode(n *pb.NodeProto) error {
	if d := n.GetDomain(); d != "" && d != "ai.onnx" {
		return fmt.Errorf("domain %q is not supported; critlab handles standard ONNX ops only", d)
	}
	op := n.GetOpType()
	switch op {
	case "Identity":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		st.set(n, 0, x.Elem, x.Dims)
		if v, ok := st.inVals(n, 0); ok {
			st.setVals(n, 0, v)
		}
		if f, ok := st.fvals[n.Input[0]]; ok {
			st.fvals[n.Output[0]] = f
		}
		return nil
	case "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Sqrt", "Neg", "Exp", "Log", "Abs",
		"Reciprocal", "Softmax", "LogSoftmax", "Erf", "Floor", "Ceil", "Round", "Sign",
		"Elu", "Selu", "Celu", "Softplus", "Softsign", "HardSigmoid", "HardSwish", "Gelu",
		"Sin", "Cos", "Clip", "Shrink", "ThresholdedRelu", "Mish", "CumSum", "LRN",
		"InstanceNormalization", "GroupNormalization":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		if op == "Softmax" || op == "LogSoftmax" {
			if _, err := normAxis(AttrInt(n, "axis", -1), len(x.Dims)); err != nil {
				return err
			}
		}
		st.set(n, 0, x.Elem, x.Dims)
		if op == "Neg" || op == "Abs" {
			if v, ok := st.intInput(n, 0); ok {
				out := make([]ival, len(v))
				for i, a := range v {
					if op == "Neg" {
						a = -a
					} else if a < 0 {
						a = -a
					}
					out[i] = ival{v: a}
				}
				st.setVals(n, 0, out)
			}
		}
		return nil
	case "Not", "IsNaN", "IsInf":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		st.set(n, 0, Bool, x.Dims)
		if op == "Not" {
			if v, ok := st.intInput(n, 0); ok {
				out := make([]ival, len(v))
				for i, a := range v {
					if a == 0 {
						out[i] = ival{v: 1}
					}
				}
				st.setVals(n, 0, out)
			}
		}
		return nil
	case "Add", "Sub", "Mul", "Div", "Pow", "Mod", "PRelu", "BitShift",
		"Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor":
		in, err := st.ins(n, 2)
		if err != nil {
			return err
		}
		a, b := in[0], in[1]
		dims, err := broadcast(a.Dims, b.Dims)
		if err != nil {
			return err
		}
		elem := a.Elem
		switch op {
		case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "And", "Or", "Xor":
			elem = Bool
		}
		st.set(n, 0, elem, dims)
		st.binaryValues(n, op, a, b, dims)
		return nil
	case "Sum", "Max", "Min", "Mean":
		if len(n.Input) == 0 {
			return fmt.Errorf("needs at least one input")
		}
		first, err := st.in(n, 0)
		if err != nil {
			return err
		}
		dims := first.Dims
		for i := 1; i < len(n.Input); i++ {
			x, err := st.in(n, i)
			if err != nil {
				return err
			}
			if dims, err = broadcast(dims, x.Dims); err != nil {
				return err
			}
		}
		st.set(n, 0, first.Elem, dims)
		if len(n.Input) == 2 && (op == "Max" || op == "Min") {
			b, _ := st.in(n, 1)
			st.binaryValues(n, op, first, b, dims)
		}
		return nil
	case "Where":
		in, err := st.ins(n, 3)
		if err != nil {
			return err
		}
		c, x, y := in[0], in[1], in[2]
		dims, err := broadcast(c.Dims, x.Dims)
		if err == nil {
			dims, err = broadcast(dims, y.Dims)
		}
		if err != nil {
			return err
		}
		st.set(n, 0, x.Elem, dims)
		st.whereValues(n, c, x, y, dims)
		return nil
	case "Cast":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		to := Attr(n, "to")
		if to == nil {
			return fmt.Errorf("attribute \"to\" is required")
		}
		elem := pb.TensorProto_DataType(to.GetI())
		st.set(n, 0, elem, x.Dims)
		st.castValues(n, elem)
		return nil
	case "CastLike":
		in, err := st.ins(n, 2)
		if err != nil {
			return err
		}
		x, t := in[0], in[1]
		st.set(n, 0, t.Elem, x.Dims)
		st.castValues(n, t.Elem)
		return nil
	case "Dropout":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		st.set(n, 0, x.Elem, x.Dims)
		st.set(n, 1, Bool, x.Dims)
		return nil
	case "RandomUniform", "RandomNormal":
		shape := Attr(n, "shape")
		if shape == nil {
			return fmt.Errorf("attribute shape is required")
		}
		st.set(n, 0, pb.TensorProto_DataType(AttrInt(n, "dtype", int64(Float))), append([]int64{}, shape.Ints...))
		return nil
	case "NonZero":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		st.set(n, 0, Int64, []int64{int64(len(x.Dims)), unknownDim})
		return nil
	case "RandomUniformLike", "RandomNormalLike", "Bernoulli", "EyeLike":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		elem := x.Elem
		if a := Attr(n, "dtype"); a != nil {
			elem = pb.TensorProto_DataType(a.GetI())
		}
		st.set(n, 0, elem, x.Dims)
		return nil
	case "Conv":
		return st.inferConv(n)
	case "ConvTranspose":
		return st.inferConvTranspose(n)
	case "Gemm":
		return st.inferGemm(n)
	case "MatMul":
		in, err := st.ins(n, 2)
		if err != nil {
			return err
		}
		a, b := in[0], in[1]
		dims, err := matmulDims(a.Dims, b.Dims)
		if err != nil {
			return err
		}
		st.set(n, 0, a.Elem, dims)
		return nil
	case "MaxPool", "AveragePool", "LpPool":
		return st.inferPool(n)
	case "GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		if len(x.Dims) < 3 {
			return fmt.Errorf("input %q has rank %d, want N×C×spatial (rank >= 3)", n.Input[0], len(x.Dims))
		}
		dims := append([]int64{}, x.Dims[:2]...)
		for range x.Dims[2:] {
			dims = append(dims, 1)
		}
		st.set(n, 0, x.Elem, dims)
		return nil
	case "BatchNormalization":
		return st.inferBatchNorm(n)
	case "LayerNormalization":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		axis, err := normAxis(AttrInt(n, "axis", -1), len(x.Dims))
		if err != nil {
			return err
		}
		st.set(n, 0, x.Elem, x.Dims)
		stat := append([]int64{}, x.Dims...)
		for i := axis; i < len(stat); i++ {
			stat[i] = 1
		}
		elem := pb.TensorProto_DataType(AttrInt(n, "stash_type", int64(Float)))
		st.set(n, 1, elem, stat)
		st.set(n, 2, elem, stat)
		return nil
	case "Flatten":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		axis := AttrInt(n, "axis", 1)
		if axis < 0 {
			axis += int64(len(x.Dims))
		}
		if axis < 0 || axis > int64(len(x.Dims)) {
			return fmt.Errorf("axis %d out of range for rank %d", AttrInt(n, "axis", 1), len(x.Dims))
		}
		st.set(n, 0, x.Elem, []int64{prodDims(x.Dims[:axis]), prodDims(x.Dims[axis:])})
		if v, ok := st.inVals(n, 0); ok {
			st.setVals(n, 0, v)
		}
		return nil
	case "Reshape":
		return st.inferReshape(n)
	case "Transpose":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		r := len(x.Dims)
		perm := AttrInts(n, "perm", nil)
		if perm == nil {
			for i := r - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		if len(perm) != r {
			return fmt.Errorf("perm %v has %d entries for an input of rank %d", perm, len(perm), r)
		}
		seen := make([]bool, r)
		dims := make([]int64, r)
		for i, p := range perm {
			if p < 0 || p >= int64(r) || seen[p] {
				return fmt.Errorf("perm %v is not a permutation of 0..%d", perm, r-1)
			}
			seen[p] = true
			dims[i] = x.Dims[p]
		}
		st.set(n, 0, x.Elem, dims)
		return nil
	case "Concat":
		return st.inferConcat(n)
	case "Split":
		return st.inferSplit(n)
	case "SplitToSequence":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		split, known := st.intInput(n, 1)
		rank := 0
		if len(n.Input) > 1 && n.Input[1] != "" {
			s, err := st.in(n, 1)
			if err != nil {
				return err
			}
			rank = len(s.Dims)
		}
		sizes, axis, squeeze, err := splitToSequenceSizes(n, x.Dims, split, known, rank)
		if err != nil {
			return err
		}
		chunks := make([]ValueType, len(sizes))
		for j, s := range sizes {
			dims := slices.Clone(x.Dims)
			if dims[axis] = s; squeeze {
				dims = slices.Delete(dims, axis, axis+1)
			}
			chunks[j] = ValueType{Elem: x.Elem, Dims: dims}
		}
		if len(n.Output) != 1 {
			return fmt.Errorf("want one output, has %d", len(n.Output))
		}
		st.seqs[n.Output[0]] = chunks
		return nil
	case "SequenceAt":
		if len(n.Input) != 2 {
			return fmt.Errorf("want a sequence and an index, has %d inputs", len(n.Input))
		}
		chunks, ok := st.seqs[n.Input[0]]
		if !ok {
			return fmt.Errorf("input 0 %q is not a sequence of a SplitToSequence node before this one", n.Input[0])
		}
		idx, known := st.intInput(n, 1)
		j, err := sequenceIndex(idx, known, n.Input[1], len(chunks))
		if err != nil {
			return err
		}
		st.set(n, 0, chunks[j].Elem, chunks[j].Dims)
		return nil
	case "Slice":
		return st.inferSlice(n)
	case "Pad":
		return st.inferPad(n)
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL1",
		"ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceSumSquare":
		return st.inferReduce(n)
	case "ArgMax", "ArgMin":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		axis, err := normAxis(AttrInt(n, "axis", 0), len(x.Dims))
		if err != nil {
			return err
		}
		keep := AttrInt(n, "keepdims", 1) != 0
		var dims []int64
		for i, d := range x.Dims {
			if i == axis {
				if keep {
					dims = append(dims, 1)
				}
				continue
			}
			dims = append(dims, d)
		}
		st.set(n, 0, Int64, dims)
		return nil
	case "Shape":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		r := int64(len(x.Dims))
		start, end := AttrInt(n, "start", 0), AttrInt(n, "end", r)
		start, end = clampRange(start, r), clampRange(end, r)
		if end < start {
			end = start
		}
		var v []ival
		for _, d := range x.Dims[start:end] {
			if d >= 0 {
				v = append(v, ival{v: d})
			} else {
				v = append(v, ival{sym: d})
			}
		}
		st.set(n, 0, Int64, []int64{end - start})
		if v == nil {
			v = []ival{}
		}
		st.setVals(n, 0, v)
		return nil
	case "Size":
		x, err := st.in(n, 0)
		if err != nil {
			return err
		}
		st.set(n, 0, Int64, []int64{})
		p := prodDims(x.Dims)
		if p >= 0 {
			st.setVals(n, 0, []ival{{v: p}})
		} else {
			st.setVals(n, 0, []ival{{sym: p}})
		}
		return nil
	case "Gather":
		return st.inferGather(n)
	case "GatherElements":
		in, err := st.ins(n, 2)
		if err != nil {
			return err
		}
		x, idx := in[0], in[1]
		if len(idx.Dims) != len(x.Dims) {
			return fmt.Errorf("indices rank %d differs from data rank %d", len(idx.Dims), len(x.Dims))
		}
		if _, err := normAxis(AttrInt(n, "axis", 0), len(x.Dims)); err != nil {
			return err
		}
		st.set(n, 0, x.Elem, idx.Dims)
		return nil
	case "ScatterElements", "ScatterND", "Scatter":
		in, err := st.ins(n, 3)
		if err != nil {
			return err
		}
		x := in[0]
		st.set(n, 0, x.Elem, x.Dims)
		return nil
	case "Unsqueeze":
		return st.inferUnsqueeze(n)
	case "Squeeze":
		return st.inferSqueeze(n)
	case "Constant":
		return st.inferConstant(n)
	case "ConstantOfShape":
		return st.inferConstantOfShape(n)
	case "Expand":
		in, err := st.ins(n, 2)
		if err != nil {
			return err
		}
		x, s := in[0], in[1]
		if len(s.Dims) != 1 {
			return fmt.Errorf("shape input %q must be 1-D, has dims %v", n.Input[1], publicType(s).Dims)
		}
		target := st.dimsFromValues(n, 1, s)
		dims, err := broadcastExpand(x.Dims, target)
		if err != nil {
			return err
		}
		st.set(n, 0, x.Elem, dims)
		return nil
	case "Tile":
		in, err := st.ins(n, 2)
		if err != nil {
			return err
		}
		x := in[0]
		dims := make([]int64, len(x.Dims))
		rep, ok := st.intInput(n, 1)
		if ok && len(rep) != len(x.Dims) {
			return fmt.Errorf("repeats has %d entries for an input of rank %d", len(rep), len(x.Dims))
		}
		for i, d := range x.Dims {
			switch {
			case !ok:
				dims[i] = unknownDim
			case rep[i] == 1:
				dims[i] = d
			case d < 0:
				dims[i] = unknownDim
			default:
				dims[i] = d * rep[i]
			}
		}
		st.set(n, 0, x.Elem, dims)
		return nil
	case "OneHot":
		return st.inferOneHot(n)
	case "Range":
		return st.inferRange(n)
	case "Einsum":
		return st.inferEinsum(n)
	case "SoftmaxCrossEntropyLoss", "NegativeLogLikelihoodLoss":
		in, err := st.ins(n, 2)
		if err != nil {
			return err
		}
		x, lbl := in[0], in[1]
		if AttrString(n, "reduction", "mean") == "none" {
			st.set(n, 0, x.Elem, lbl.Dims)
		} else {
			st.set(n, 0, x.Elem, []int64{})
		}
		st.set(n, 1, x.Elem, x.Dims)
		return nil
	}
	return fmt.Errorf("unsupported op %q; shape inference knows: %s", op, strings.Join(ShapeOps(), ", "))
}

// ShapeOps lists the op types InferShapes handles.
func ShapeOps() []string {
	ops := []string{
		"Abs", "Add", "And", "ArgMax", "ArgMin", "AveragePool", "BatchNormalization", "Bernoulli", "BitShift",
		"Cast", "CastLike", "Ceil", "Celu", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv",
		"ConvTranspose", "Cos", "CumSum", "Div", "Dropout", "Einsum", "Elu", "Equal", "Erf", "Exp", "Expand", "EyeLike",
		"Flatten", "Floor", "Gather", "GatherElements", "Gelu", "GroupNormalization", "Gemm", "GlobalAveragePool",
		"GlobalLpPool", "GlobalMaxPool", "Greater", "GreaterOrEqual", "HardSigmoid", "HardSwish",
		"Identity", "InstanceNormalization", "IsInf", "IsNaN", "LRN", "LayerNormalization", "LeakyRelu", "Less", "LessOrEqual", "Log",
		"LogSoftmax", "LpPool", "MatMul", "Max", "MaxPool", "Mean", "Min", "Mish", "Mod", "Mul", "Neg",
		"NegativeLogLikelihoodLoss", "NonZero", "Not", "OneHot", "Or", "PRelu", "Pad", "Pow", "RandomNormal", "RandomNormalLike",
		"RandomUniform", "RandomUniformLike", "Range", "Reciprocal", "ReduceL1", "ReduceL2", "ReduceLogSum",
		"ReduceLogSumExp", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum",
		"ReduceSumSquare", "Relu", "Reshape", "Round", "Scatter", "ScatterElements", "ScatterND", "Selu",
		"SequenceAt", "Shape", "Shrink", "Sigmoid", "Sign", "Sin", "Size", "Slice", "Softmax", "SoftmaxCrossEntropyLoss",
		"Softplus", "Softsign", "Split", "SplitToSequence", "Sqrt", "Squeeze", "Sub", "Sum", "Tanh", "ThresholdedRelu",
		"Tile", "Transpose", "Unsqueeze", "Where", "Xor",
	}
	sort.Strings(ops)
	return ops
}

// ---- dimension helpers ----

func normAxis(a int64, rank int) (int, error) {
	if a < -int64(rank) || a >= int64(rank) {
		return 0, fmt.Errorf("axis %d out of range for rank %d", a, rank)
	}
	if a < 0 {
		a += int64(rank)
	}
	return int(a), nil
}

func clampRange(i, r int64) int64 {
	if i < 0 {
		i += r
	}
	if i < 0 {
		return 0
	}
	if i > r {
		return r
	}
	return i
}

// prodDims multiplies dims: known when all are, the symbol when exactly one
// symbolic dimension is multiplied by ones, unknown otherwise.
func prodDims(dims []int64) int64 {
	p := int64(1)
	var sym int64
	nUnknown := 0
	for _, d := range dims {
		if d < 0 {
			nUnknown++
			sym = d
			continue
		}
		p *= d
	}
	switch {
	case nUnknown == 0:
		return p
	case p == 0:
		return 0
	case nUnknown == 1 && p == 1:
		return sym
	}
	return unknownDim
}

// mergeDim combines two dimensions that must be equal.
func mergeDim(a, b int64) (int64, error) {
	switch {
	case a >= 0 && b >= 0:
		if a != b {
			return 0, fmt.Errorf("dimension %d does not match %d", a, b)
		}
		return a, nil
	case a >= 0:
		return a, nil
	case b >= 0:
		return b, nil
	case a == b:
		return a, nil
	case a <= -2:
		return a, nil
	}
	return b, nil
}

// broadcast applies numpy (multidirectional) broadcasting.
func broadcast(a, b []int64) ([]int64, error) {
	r := len(a)
	if len(b) > r {
		r = len(b)
	}
	out := make([]int64, r)
	for i := 0; i < r; i++ {
		da, db := int64(1), int64(1)
		if j := i - (r - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (r - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		case da >= 0 && db >= 0:
			if da != db {
				return nil, fmt.Errorf("cannot broadcast dims %v and %v (axis %d: %d vs %d)", publicType(ValueType{Dims: a}).Dims, publicType(ValueType{Dims: b}).Dims, i, da, db)
			}
			out[i] = da
		case da >= 0:
			out[i] = da // db unknown: it must be 1 or da
		case db >= 0:
			out[i] = db
		case da == db:
			out[i] = da
		default:
			out[i] = unknownDim
		}
	}
	return out, nil
}

// broadcastExpand is broadcast for Expand, where a target entry may be unknown.
func broadcastExpand(x, target []int64) ([]int64, error) {
	return broadcast(x, target)
}

func matmulDims(a, b []int64) ([]int64, error) {
	if len(a) == 0 || len(b) == 0 {
		return nil, fmt.Errorf("MatMul inputs must not be scalars (dims %v and %v)", a, b)
	}
	aa, bb := a, b
	if len(a) == 1 {
		aa = []int64{1, a[0]}
	}
	if len(b) == 1 {
		bb = []int64{b[0], 1}
	}
	k1, k2 := aa[len(aa)-1], bb[len(bb)-2]
	if k1 >= 0 && k2 >= 0 && k1 != k2 {
		return nil, fmt.Errorf("inner dimensions differ: %v × %v (%d vs %d)", publicType(ValueType{Dims: a}).Dims, publicType(ValueType{Dims: b}).Dims, k1, k2)
	}
	batch, err := broadcast(aa[:len(aa)-2], bb[:len(bb)-2])
	if err != nil {
		return nil, err
	}
	out := batch
	if len(a) > 1 {
		out = append(out, aa[len(aa)-2])
	}
	if len(b) > 1 {
		out = append(out, bb[len(bb)-1])
	}
	return out, nil
}

// spatialAttr returns an INTS attribute of length n, or def repeated.
func spatialAttr(n *pb.NodeProto, name string, k int, def int64) ([]int64, error) {
	v := AttrInts(n, name, nil)
	if v == nil {
		v = make([]int64, k)
		for i := range v {
			v[i] = def
		}
		return v, nil
	}
	if len(v) != k {
		return nil, fmt.Errorf("attribute %s=%v has %d entries, want %d (one per spatial axis)", name, v, len(v), k)
	}
	return v, nil
}

// windowParams reads kernel-window attributes shared by Conv and the pools.
type windowParams struct {
	kernel, strides, dilations, pads []int64
	autoPad                          string
}

func readWindow(n *pb.NodeProto, kernel []int64, k int) (windowParams, error) {
	var w windowParams
	var err error
	w.kernel = kernel
	if w.strides, err = spatialAttr(n, "strides", k, 1); err != nil {
		return w, err
	}
	if w.dilations, err = spatialAttr(n, "dilations", k, 1); err != nil {
		return w, err
	}
	if w.pads, err = spatialAttr(n, "pads", 2*k, 0); err != nil {
		return w, err
	}
	w.autoPad = AttrString(n, "auto_pad", "NOTSET")
	for i := 0; i < k; i++ {
		if w.strides[i] <= 0 || w.dilations[i] <= 0 || w.kernel[i] <= 0 {
			return w, fmt.Errorf("kernel %v, strides %v and dilations %v must be positive", w.kernel, w.strides, w.dilations)
		}
		if w.pads[i] < 0 || w.pads[i+k] < 0 {
			return w, fmt.Errorf("pads %v must not be negative", w.pads)
		}
	}
	switch w.autoPad {
	case "NOTSET", "VALID", "SAME_UPPER", "SAME_LOWER", "":
	default:
		return w, fmt.Errorf("auto_pad %q is not one of NOTSET, VALID, SAME_UPPER, SAME_LOWER", w.autoPad)
	}
	return w, nil
}

// outDim is the output length of a sliding window along one axis.
func (w windowParams) outDim(i int, in int64, k int, ceil bool) (int64, error) {
	if in < 0 {
		return unknownDim, nil
	}
	s := w.strides[i]
	eff := (w.kernel[i]-1)*w.dilations[i] + 1
	switch w.autoPad {
	case "SAME_UPPER", "SAME_LOWER":
		return (in + s - 1) / s, nil
	case "VALID":
		if in < eff {
			return 0, fmt.Errorf("spatial axis %d: input %d is smaller than the kernel extent %d", i, in, eff)
		}
		return (in-eff)/s + 1, nil
	}
	padded := in + w.pads[i] + w.pads[i+k]
	if padded < eff {
		return 0, fmt.Errorf("spatial axis %d: padded input %d is smaller than the kernel extent %d", i, padded, eff)
	}
	if !ceil {
		return (padded-eff)/s + 1, nil
	}
	out := (padded-eff+s-1)/s + 1
	// PyTorch and ONNX Runtime: the last window must start inside the input
	// or the leading padding.
	if (out-1)*s >= in+w.pads[i] {
		out--
	}
	return out, nil
}

func (st *shapeState) inferConv(n *pb.NodeProto) error {
	in, err := st.ins(n, 2)
	if err != nil {
		return err
	}
	x, w := in[0], in[1]
	if len(x.Dims) < 3 {
		return fmt.Errorf("input %q has rank %d, want N×C×spatial", n.Input[0], len(x.Dims))
	}
	if len(w.Dims) != len(x.Dims) {
		return fmt.Errorf("weight %q has rank %d, input rank %d", n.Input[1], len(w.Dims), len(x.Dims))
	}
	k := len(x.Dims) - 2
	group := AttrInt(n, "group", 1)
	if group <= 0 {
		return fmt.Errorf("group %d must be positive", group)
	}
	if x.Dims[1] >= 0 && w.Dims[1] >= 0 && x.Dims[1] != w.Dims[1]*group {
		return fmt.Errorf("input %q has %d channels but weight %q expects %d (weight dims %v, group %d)",
			n.Input[0], x.Dims[1], n.Input[1], w.Dims[1]*group, w.Dims, group)
	}
	kernel := AttrInts(n, "kernel_shape", nil)
	if kernel == nil {
		kernel = w.Dims[2:]
	}
	if len(kernel) != k {
		return fmt.Errorf("kernel_shape %v has %d entries, want %d", kernel, len(kernel), k)
	}
	for i, kd := range kernel {
		if kd < 0 {
			return fmt.Errorf("weight %q has unknown spatial dims %v", n.Input[1], publicType(w).Dims)
		}
		if w.Dims[2+i] >= 0 && w.Dims[2+i] != kd {
			return fmt.Errorf("kernel_shape %v differs from weight dims %v", kernel, w.Dims)
		}
	}
	wp, err := readWindow(n, kernel, k)
	if err != nil {
		return err
	}
	if b, ok, err := st.optIn(n, 2); err != nil {
		return err
	} else if ok && (len(b.Dims) != 1 || (b.Dims[0] >= 0 && w.Dims[0] >= 0 && b.Dims[0] != w.Dims[0])) {
		return fmt.Errorf("bias %q has dims %v, want [%d]", n.Input[2], publicType(b).Dims, w.Dims[0])
	}
	dims := []int64{x.Dims[0], w.Dims[0]}
	for i := 0; i < k; i++ {
		d, err := wp.outDim(i, x.Dims[2+i], k, false)
		if err != nil {
			return err
		}
		dims = append(dims, d)
	}
	st.set(n, 0, x.Elem, dims)
	return nil
}

func (st *shapeState) inferConvTranspose(n *pb.NodeProto) error {
	in, err := st.ins(n, 2)
	if err != nil {
		return err
	}
	x, w := in[0], in[1]
	if len(x.Dims) < 3 || len(w.Dims) != len(x.Dims) {
		return fmt.Errorf("input rank %d and weight rank %d: want equal ranks >= 3", len(x.Dims), len(w.Dims))
	}
	k := len(x.Dims) - 2
	group := AttrInt(n, "group", 1)
	if group <= 0 {
		return fmt.Errorf("group %d must be positive", group)
	}
	if x.Dims[1] >= 0 && w.Dims[0] >= 0 && x.Dims[1] != w.Dims[0] {
		return fmt.Errorf("input %q has %d channels but weight %q has %d input channels (dims %v)", n.Input[0], x.Dims[1], n.Input[1], w.Dims[0], w.Dims)
	}
	kernel := AttrInts(n, "kernel_shape", nil)
	if kernel == nil {
		kernel = w.Dims[2:]
	}
	if len(kernel) != k {
		return fmt.Errorf("kernel_shape %v has %d entries, want %d", kernel, len(kernel), k)
	}
	for _, kd := range kernel {
		if kd < 0 {
			return fmt.Errorf("weight %q has unknown spatial dims", n.Input[1])
		}
	}
	wp, err := readWindow(n, kernel, k)
	if err != nil {
		return err
	}
	outPad, err := spatialAttr(n, "output_padding", k, 0)
	if err != nil {
		return err
	}
	for i := range outPad {
		if outPad[i] < 0 || (outPad[i] >= wp.strides[i] && outPad[i] >= wp.dilations[i]) {
			return fmt.Errorf("output_padding %v must be smaller than strides %v or dilations %v", outPad, wp.strides, wp.dilations)
		}
	}
	m := unknownDim
	if w.Dims[1] >= 0 {
		m = w.Dims[1] * group
	}
	dims := []int64{x.Dims[0], m}
	if os := AttrInts(n, "output_shape", nil); os != nil {
		if len(os) == k+2 {
			os = os[2:]
		}
		if len(os) != k {
			return fmt.Errorf("output_shape %v has %d entries, want %d", os, len(os), k)
		}
		return st.setDims(n, x.Elem, append(dims, os...))
	}
	for i := 0; i < k; i++ {
		in := x.Dims[2+i]
		if in < 0 {
			dims = append(dims, unknownDim)
			continue
		}
		s := wp.strides[i]
		switch wp.autoPad {
		case "SAME_UPPER", "SAME_LOWER":
			dims = append(dims, in*s)
			continue
		}
		pads := wp.pads[i] + wp.pads[i+k]
		if wp.autoPad == "VALID" {
			pads = 0
		}
		d := s*(in-1) + outPad[i] + (kernel[i]-1)*wp.dilations[i] + 1 - pads
		if d <= 0 {
			return fmt.Errorf("spatial axis %d: output length %d is not positive", i, d)
		}
		dims = append(dims, d)
	}
	return st.setDims(n, x.Elem, dims)
}

func (st *shapeState) setDims(n *pb.NodeProto, elem pb.TensorProto_DataType, dims []int64) error {
	st.set(n, 0, elem, dims)
	return nil
}

func (st *shapeState) inferGemm(n *pb.NodeProto) error {
	in, err := st.ins(n, 2)
	if err != nil {
		return err
	}
	a, b := in[0], in[1]
	if len(a.Dims) != 2 || len(b.Dims) != 2 {
		return fmt.Errorf("inputs must be 2-D, have dims %v and %v (insert a Flatten before Gemm)", publicType(a).Dims, publicType(b).Dims)
	}
	m, ka := a.Dims[0], a.Dims[1]
	if AttrInt(n, "transA", 0) != 0 {
		m, ka = ka, m
	}
	kb, nn := b.Dims[0], b.Dims[1]
	if AttrInt(n, "transB", 0) != 0 {
		kb, nn = nn, kb
	}
	if ka >= 0 && kb >= 0 && ka != kb {
		return fmt.Errorf("inner dimensions differ: A %v (transA=%d) has K=%d, B %v (transB=%d) has K=%d",
			a.Dims, AttrInt(n, "transA", 0), ka, b.Dims, AttrInt(n, "transB", 0), kb)
	}
	dims := []int64{m, nn}
	if c, ok, err := st.optIn(n, 2); err != nil {
		return err
	} else if ok {
		bd, err := broadcast(dims, c.Dims)
		if err != nil {
			return fmt.Errorf("input C %q: %w", n.Input[2], err)
		}
		if len(bd) != 2 || (bd[0] >= 0 && m >= 0 && bd[0] != m) || (bd[1] >= 0 && nn >= 0 && bd[1] != nn) {
			return fmt.Errorf("input C %q with dims %v does not broadcast to %v", n.Input[2], publicType(c).Dims, publicType(ValueType{Dims: dims}).Dims)
		}
	}
	st.set(n, 0, a.Elem, dims)
	return nil
}

func (st *shapeState) inferPool(n *pb.NodeProto) error {
	x, err := st.in(n, 0)
	if err != nil {
		return err
	}
	if len(x.Dims) < 3 {
		return fmt.Errorf("input %q has rank %d, want N×C×spatial", n.Input[0], len(x.Dims))
	}
	k := len(x.Dims) - 2
	kernel := AttrInts(n, "kernel_shape", nil)
	if len(kernel) != k {
		return fmt.Errorf("kernel_shape %v: want %d entries", kernel, k)
	}
	wp, err := readWindow(n, kernel, k)
	if err != nil {
		return err
	}
	ceil := AttrInt(n, "ceil_mode", 0) != 0
	dims := append([]int64{}, x.Dims[:2]...)
	for i := 0; i < k; i++ {
		d, err := wp.outDim(i, x.Dims[2+i], k, ceil)
		if err != nil {
			return err
		}
		dims = append(dims, d)
	}
	st.set(n, 0, x.Elem, dims)
	if n.GetOpType() == "MaxPool" {
		st.set(n, 1, Int64, dims)
	}
	return nil
}

func (st *shapeState) inferBatchNorm(n *pb.NodeProto) error {
	x, err := st.in(n, 0)
	if err != nil {
		return err
	}
	if len(x.Dims) < 2 {
		return fmt.Errorf("input %q has rank %d, want N×C and more dims", n.Input[0], len(x.Dims))
	}
	c := x.Dims[1]
	names := []string{"scale", "B", "input_mean", "input_var"}
	var statElem pb.TensorProto_DataType
	for i, nm := range names {
		p, err := st.in(n, i+1)
		if err != nil {
			return fmt.Errorf("%s: %w", nm, err)
		}
		if len(p.Dims) != 1 {
			return fmt.Errorf("%s %q has dims %v, want [C] = [%d]", nm, n.Input[i+1], publicType(p).Dims, c)
		}
		if c, err = mergeDim(c, p.Dims[0]); err != nil {
			return fmt.Errorf("%s %q has %d entries for %d channels", nm, n.Input[i+1], p.Dims[0], x.Dims[1])
		}
		if i == 2 {
			statElem = p.Elem
		}
	}
	st.set(n, 0, x.Elem, x.Dims)
	for i := 1; i < len(n.Output); i++ {
		st.set(n, i, statElem, []int64{c})
	}
	return nil
}

func (st *shapeState) inferReshape(n *pb.NodeProto) error {
	x, err := st.in(n, 0)
	if err != nil {
		return err
	}
	var target []ival
	if s := AttrInts(n, "shape", nil); s != nil && len(n.Input) < 2 {
		target = knownVals(s) // opset 1-4
	} else {
		s, err := st.in(n, 1)
		if err != nil {
			return err
		}
		if len(s.Dims) != 1 {
			return fmt.Errorf("shape input %q must be 1-D, has dims %v", n.Input[1], publicType(s).Dims)
		}
		v, ok := st.inVals(n, 1)
		if !ok {
			if s.Dims[0] < 0 {
				return fmt.Errorf("shape input %q has unknown length; cannot infer the output rank", n.Input[1])
			}
			dims := make([]int64, s.Dims[0])
			for i := range dims {
				dims[i] = unknownDim
			}
			st.set(n, 0, x.Elem, dims)
			return nil
		}
		target = v
	}
	dims, err := reshapeDims(x.Dims, target, AttrInt(n, "allowzero", 0) != 0)
	if err != nil {
		return err
	}
	st.set(n, 0, x.Elem, dims)
	if v, ok := st.inVals(n, 0); ok {
		st.setVals(n, 0, v)
	}
	return nil
}

// reshapeDims resolves a Reshape target against the input dims.
func reshapeDims(in []int64, target []ival, allowZero bool) ([]int64, error) {
	out := make([]int64, len(target))
	infer := -1
	for i, t := range target {
		switch {
		case !t.known():
			out[i] = t.sym
		case t.v == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("target %v copies dimension %d (0) but the input has rank %d", ivalString(target), i, len(in))
			}
			out[i] = in[i]
		case t.v == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("target %v has more than one -1", ivalString(target))
			}
			infer = i
		case t.v < 0:
			return nil, fmt.Errorf("target %v has invalid entry %d", ivalString(target), t.v)
		default:
			out[i] = t.v
		}
	}
	// Cancel symbols common to both sides, then compare the known products.
	inRest, outRest := cancelSymbols(in, out, infer)
	pin, pout := prodDims(inRest), prodDims(outRest)
	if infer >= 0 {
		switch {
		case pin >= 0 && pout > 0:
			if pin%pout != 0 {
				return nil, fmt.Errorf("cannot reshape %v to %v: %d elements are not a multiple of %d", publicType(ValueType{Dims: in}).Dims, ivalString(target), pin, pout)
			}
			out[infer] = pin / pout
		case pout == 1 && pin < 0:
			out[infer] = pin
		default:
			out[infer] = unknownDim
		}
		return out, nil
	}
	if pin >= 0 && pout >= 0 && pin != pout {
		return nil, fmt.Errorf("cannot reshape %v (%d elements) to %v (%d elements)", publicType(ValueType{Dims: in}).Dims, pin, ivalString(target), pout)
	}
	return out, nil
}

// cancelSymbols removes named symbols that appear on both sides (out's entry
// skip, the -1 to infer, is left out).
func cancelSymbols(in, out []int64, skip int) ([]int64, []int64) {
	count := map[int64]int{}
	for _, d := range in {
		if d <= -2 {
			count[d]++
		}
	}
	matched := map[int64]int{}
	var outRest []int64
	for i, d := range out {
		if i == skip {
			continue
		}
		if d <= -2 && count[d] > matched[d] {
			matched[d]++
			continue
		}
		outRest = append(outRest, d)
	}
	var inRest []int64
	for _, d := range in {
		if d <= -2 && matched[d] > 0 {
			matched[d]--
			continue
		}
		inRest = append(inRest, d)
	}
	return inRest, outRest
}

func ivalString(v []ival) string {
	parts := make([]string, len(v))
	for i, x := range v {
		if x.known() {
			parts[i] = fmt.Sprint(x.v)
		} else {
			parts[i] = "?"
		}
	}
	return "[" + strings.Join(parts, ",") + "]"
}

func (st *shapeState) inferConcat(n *pb.NodeProto) error {
	if len(n.Input) == 0 {
		return fmt.Errorf("needs at least one input")
	}
	first, err := st.in(n, 0)
	if err != nil {
		return err
	}
	if Attr(n, "axis") == nil {
		return fmt.Errorf("attribute \"axis\" is required")
	}
	axis, err := normAxis(AttrInt(n, "axis", 0), len(first.Dims))
	if err != nil {
		return err
	}
	dims := append([]int64{}, first.Dims...)
	allVals := true
	var parts [][]ival
	var partDims [][]int64
	for i := range n.Input {
		x, err := st.in(n, i)
		if err != nil {
			return err
		}
		if len(x.Dims) != len(dims) {
			return fmt.Errorf("input %d %q has rank %d, input 0 has rank %d", i, n.Input[i], len(x.Dims), len(dims))
		}
		for j := range dims {
			if j == axis {
				if i > 0 {
					if dims[j] >= 0 && x.Dims[j] >= 0 {
						dims[j] += x.Dims[j]
					} else {
						dims[j] = unknownDim
					}
				}
				continue
			}
			d, err := mergeDim(dims[j], x.Dims[j])
			if err != nil {
				return fmt.Errorf("input %d %q: axis %d: %w", i, n.Input[i], j, err)
			}
			dims[j] = d
		}
		v, ok := st.inVals(n, i)
		if !ok || !(ValueType{Dims: x.Dims}).Static() {
			allVals = false
		}
		parts = append(parts, v)
		partDims = append(partDims, x.Dims)
	}
	st.set(n, 0, first.Elem, dims)
	if allVals && (ValueType{Dims: dims}).Static() {
		outer := prodDims(dims[:axis])
		inner := prodDims(dims[axis+1:])
		var out []ival
		for o := int64(0); o < outer; o++ {
			for p, v := range parts {
				chunk := partDims[p][axis] * inner
				out = append(out, v[o*chunk:(o+1)*chunk]...)
			}
		}
		if out == nil {
			out = []ival{}
		}
		st.setVals(n, 0, out)
	}
	return nil
}

func (st *shapeState) inferSplit(n *pb.NodeProto) error {
	x, err := st.in(n, 0)
	if err != nil {
		return err
	}
	axis, err := normAxis(AttrInt(n, "axis", 0), len(x.Dims))
	if err != nil {
		return err
	}
	nOut := len(n.Output)
	d := x.Dims[axis]
	var sizes []int64
	if split, ok := st.intInput(n, 1); ok {
		sizes = split
	} else if len(n.Input) > 1 && n.Input[1] != "" {
		if _, err := st.in(n, 1); err != nil {
			return err
		}
		sizes = nil // unknown split sizes
		for i := 0; i < nOut; i++ {
			sizes = append(sizes, unknownDim)
		}
	} else if a := AttrInts(n, "split", nil); a != nil {
		sizes = a
	} else {
		parts := AttrInt(n, "num_outputs", int64(nOut))
		if parts != int64(nOut) {
			return fmt.Errorf("num_outputs=%d but the node has %d outputs", parts, nOut)
		}
		if parts <= 0 {
			return fmt.Errorf("no outputs")
		}
		for i := int64(0); i < parts; i++ {
			switch {
			case d < 0:
				sizes = append(sizes, unknownDim)
			case Attr(n, "num_outputs") != nil:
				// opset 18: ceil-sized chunks, the last one smaller.
				chunk := (d + parts - 1) / parts
				s := chunk
				if rem := d - chunk*i; rem < chunk {
					s = rem
				}
				if s < 0 {
					s = 0
				}
				sizes = append(sizes, s)
			default:
				if d%parts != 0 {
					return fmt.Errorf("axis %d of length %d does not split evenly into %d outputs; give split sizes", axis, d, parts)
				}
				sizes = append(sizes, d/parts)
			}
		}
	}
	if len(sizes) != nOut {
		return fmt.Errorf("split %v has %d entries for %d outputs", sizes, len(sizes), nOut)
	}
	total := int64(0)
	known := true
	for _, s := range sizes {
		if s < 0 {
			known = false
			continue
		}
		total += s
	}
	if known && d >= 0 && total != d {
		return fmt.Errorf("split %v sums to %d, axis %d has length %d", sizes, total, axis, d)
	}
	for i, s := range sizes {
		dims := append([]int64{}, x.Dims...)
		dims[axis] = s
		st.set(n, i, x.Elem, dims)
	}
	return nil
}

func (st *shapeState) inferSlice(n *pb.NodeProto) error {
	x, err := st.in(n, 0)
	if err != nil {
		return err
	}
	r := len(x.Dims)
	var starts, ends, axes, steps []int64
	known := true
	if len(n.Input) == 1 {
		starts, ends, axes = AttrInts(n, "starts", nil), AttrInts(n, "ends", nil), AttrInts(n, "axes", nil)
		if starts == nil || ends == nil {
			return fmt.Errorf("attributes starts and ends are required (opset < 10)")
		}
	} else {
		for i := 1; i < len(n.Input) && i < 5; i++ {
			if n.Input[i] == "" {
				continue
			}
			if _, err := st.in(n, i); err != nil {
				return err
			}
		}
		var ok bool
		if starts, ok = st.intInput(n, 1); !ok {
			known = false
		}
		if ends, ok = st.intInput(n, 2); !ok {
			known = false
		}
		if len(n.Input) > 3 && n.Input[3] != "" {
			if axes, ok = st.intInput(n, 3); !ok {
				known = false
			}
		}
		if len(n.Input) > 4 && n.Input[4] != "" {
			if steps, ok = st.intInput(n, 4); !ok {
				known = false
			}
		}
	}
	if !known {
		dims := append([]int64{}, x.Dims...)
		if axes != nil {
			for _, a := range axes {
				if ax, err := normAxis(a, r); err == nil {
					dims[ax] = unknownDim
				}
			}
		} else {
			for i := range dims {
				dims[i] = unknownDim
			}
		}
		st.set(n, 0, x.Elem, dims)
		return nil
	}
	if len(starts) != len(ends) {
		return fmt.Errorf("starts %v and ends %v differ in length", starts, ends)
	}
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if steps == nil {
		for range starts {
			steps = append(steps, 1)
		}
	}
	if len(axes) != len(starts) || len(steps) != len(starts) {
		return fmt.Errorf("starts %v, ends %v, axes %v and steps %v must have equal lengths", starts, ends, axes, steps)
	}
	dims := append([]int64{}, x.Dims...)
	type sl struct{ start, step, n int64 }
	plan := make([]sl, r)
	for i := range plan {
		plan[i] = sl{0, 1, x.Dims[i]}
	}
	seen := make([]bool, r)
	for i := range starts {
		ax, err := normAxis(axes[i], r)
		if err != nil {
			return err
		}
		if seen[ax] {
			return fmt.Errorf("axes %v repeats axis %d", axes, ax)
		}
		seen[ax] = true
		if steps[i] == 0 {
			return fmt.Errorf("steps %v contains 0", steps)
		}
		d := x.Dims[ax]
		if d < 0 {
			if starts[i] == 0 && steps[i] == 1 && ends[i] >= math.MaxInt32 {
				continue // whole axis
			}
			dims[ax] = unknownDim
			plan[ax].n = unknownDim
			continue
		}
		start, length := sliceAxis(d, starts[i], ends[i], steps[i])
		dims[ax] = length
		plan[ax] = sl{start, steps[i], length}
	}
	st.set(n, 0, x.Elem, dims)
	if v, ok := st.inVals(n, 0); ok && r == 1 && dims[0] >= 0 {
		out := make([]ival, 0, dims[0])
		for j := int64(0); j < dims[0]; j++ {
			out = append(out, v[plan[0].start+j*plan[0].step])
		}
		st.setVals(n, 0, out)
	}
	return nil
}

// sliceAxis applies ONNX Slice clamping to one axis of length d and returns
// the first index and the number of elements.
func sliceAxis(d, start, end, step int64) (int64, int64) {
	if start < 0 {
		start += d
	}
	if end < 0 {
		end += d
	}
	if step > 0 {
		start = min(max(start, 0), d)
		end = min(max(end, 0), d)
		if end <= start {
			return start, 0
		}
		return start, (end - start + step - 1) / step
	}
	start = min(max(start, 0), d-1)
	end = min(max(end, -1), d-1)
	if end >= start {
		return start, 0
	}
	return start, (start - end + (-step) - 1) / (-step)
}

func (st *shapeState) inferPad(n *pb.NodeProto) error {
	x, err := st.in(n, 0)
	if err != nil {
		return err
	}
	r := len(x.Dims)
	var pads []int64
	if p := AttrInts(n, "pads", nil); p != nil && len(n.Input) < 2 {
		pads = p
	} else {
		if _, err := st.in(n, 1); err != nil {
			return err
		}
		p, ok := st.intInput(n, 1)
		if !ok {
			dims := make([]int64, r)
			for i := range dims {
				dims[i] = unknownDim
			}
			st.set(n, 0, x.Elem, dims)
			return nil
		}
		pads = p
	}
	axes := make([]int64, r)
	for i := range axes {
		axes[i] = int64(i)
	}
	if len(n.Input) > 3 && n.Input[3] != "" {
		a, ok := st.intInput(n, 3)
		if !ok {
			return fmt.Errorf("axes input %q is not a constant", n.Input[3])
		}
		axes = a
	}
	k := len(axes)
	if len(pads) != 2*k {
		return fmt.Errorf("pads %v has %d entries, want %d (begin and end for %d axes)", pads, len(pads), 2*k, k)
	}
	dims := append([]int64{}, x.Dims...)
	for i, a := range axes {
		ax, err := normAxis(a, r)
		if err != nil {
			return err
		}
		if dims[ax] < 0 {
			if pads[i] != 0 || pads[i+k] != 0 {
				dims[ax] = unknownDim
			}
			continue
		}
		dims[ax] += pads[i] + pads[i+k]
		if dims[ax] < 0 {
			return fmt.Errorf("pads %v make axis %d negative", pads, ax)
		}
	}
	st.set(n, 0, x.Elem, dims)
	return nil
}

func (st *shapeState) inferReduce(n *pb.NodeProto) error {
	x, err := st.in(n, 0)
	if err != nil {
		return err
	}
	r := len(x.Dims)
	keep := AttrInt(n, "keepdims", 1) != 0
	var axes []int64
	if a := AttrInts(n, "axes", nil); a != nil {
		axes = a
	} else if len(n.Input) > 1 && n.Input[1] != "" {
		at, err := st.in(n, 1)
		if err != nil {
			return err
		}
		a, ok := st.intInput(n, 1)
		if !ok {
			if !keep {
				if len(at.Dims) == 1 && at.Dims[0] >= 0 {
					dims := make([]int64, r-int(at.Dims[0]))
					for i := range dims {
						dims[i] = unknownDim
					}
					st.set(n, 0, x.Elem, dims)
					return nil
				}
				return fmt.Errorf("axes input %q is not a constant and keepdims=0: the output rank is unknown", n.Input[1])
			}
			dims := make([]int64, r)
			for i := range dims {
				dims[i] = unknownDim
			}
			st.set(n, 0, x.Elem, dims)
			return nil
		}
		axes = a
	}
	if len(axes) == 0 {
		if AttrInt(n, "noop_with_empty_axes", 0) != 0 {
			st.set(n, 0, x.Elem, x.Dims)
			return nil
		}
		for i := 0; i < r; i++ {
			axes = append(axes, int64(i))
		}
	}
	red := make([]bool, r)
	for _, a := range axes {
		ax, err := normAxis(a, r)
		if err != nil {
			return err
		}
		red[ax] = true
	}
	dims := []int64{}
	for i, d := range x.Dims {
		if red[i] {
			if keep {
				dims = append(dims, 1)
			}
			continue
		}
		dims = append(dims, d)
	}
	st.set(n, 0, x.Elem, dims)
	return nil
}

func (st *shapeState) inferGather(n *pb.NodeProto) error {
	in, err := st.ins(n, 2)
	if err != nil {
		return err
	}
	x, idx := in[0], in[1]
	if len(x.Dims) == 0 {
		return fmt.Errorf("data %q is a scalar", n.Input[0])
	}
	axis, err := normAxis(AttrInt(n, "axis", 0), len(x.Dims))
	if err != nil {
		return err
	}
	dims := append([]int64{}, x.Dims[:axis]...)
	dims = append(dims, idx.Dims...)
	dims = append(dims, x.Dims[axis+1:]...)
	st.set(n, 0, x.Elem, dims)
	v, okV := st.inVals(n, 0)
	ind, okI := st.intInput(n, 1)
	if !okV || !okI || !(ValueType{Dims: x.Dims}).Static() {
		return nil
	}
	d := x.Dims[axis]
	for _, i := range ind {
		if i < -d || i >= d {
			return fmt.Errorf("index %d out of range for axis %d of length %d", i, axis, d)
		}
	}
	outer, inner := prodDims(x.Dims[:axis]), prodDims(x.Dims[axis+1:])
	var out []ival
	for o := int64(0); o < outer; o++ {
		for _, i := range ind {
			if i < 0 {
				i += d
			}
			base := (o*d + i) * inner
			out = append(out, v[base:base+inner]...)
		}
	}
	if out == nil {
		out = []ival{}
	}
	st.setVals(n, 0, out)
	return nil
}

func (st *shapeState) axesFor(n *pb.NodeProto) ([]int64, bool, error) {
	if a := AttrInts(n, "axes", nil); a != nil {
		return a, true, nil
	}
	if len(n.Input) > 1 && n.Input[1] != "" {
		if _, err := st.in(n, 1); err != nil {
			return nil, false, err
		}
		a, ok := st.intInput(n, 1)
		if !ok {
			return nil, false, fmt.Errorf("axes input %q is not a constant", n.Input[1])
		}
		return a, true, nil
	}
	return nil, false, nil
}

func (st *shapeState) inferUnsqueeze(n *pb.NodeProto) error {
	x, err := st.in(n, 0)
	if err != nil {
		return err
	}
	axes, ok, err := st.axesFor(n)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("axes are required (attribute before opset 13, input since)")
	}
	r := len(x.Dims) + len(axes)
	ins := make([]bool, r)
	for _, a := range axes {
		ax, err := normAxis(a, r)
		if err != nil {
			return err
		}
		if ins[ax] {
			return fmt.Errorf("axes %v repeat axis %d", axes, ax)
		}
		ins[ax] = true
	}
	dims := make([]int64, 0, r)
	j := 0
	for i := 0; i < r; i++ {
		if ins[i] {
			dims = append(dims, 1)
		} else {
			dims = append(dims, x.Dims[j])
			j++
		}
	}
	st.set(n, 0, x.Elem, dims)
	if v, ok := st.inVals(n, 0); ok {
		st.setVals(n, 0, v)
	}
	return nil
}

func (st *shapeState) inferSqueeze(n *pb.NodeProto) error {
	x, err := st.in(n, 0)
	if err != nil {
		return err
	}
	axes, ok, err := st.axesFor(n)
	if err != nil {
		return err
	}
	r := len(x.Dims)
	drop := make([]bool, r)
	if !ok {
		for i, d := range x.Dims {
			if d < 0 {
				return fmt.Errorf("input %q dims %v: squeezing all ones needs static dims; give axes", n.Input[0], publicType(x).Dims)
			}
			drop[i] = d == 1
		}
	}
	for _, a := range axes {
		ax, err := normAxis(a, r)
		if err != nil {
			return err
		}
		if x.Dims[ax] >= 0 && x.Dims[ax] != 1 {
			return fmt.Errorf("cannot squeeze axis %d of length %d", ax, x.Dims[ax])
		}
		drop[ax] = true
	}
	dims := []int64{}
	for i, d := range x.Dims {
		if !drop[i] {
			dims = append(dims, d)
		}
	}
	st.set(n, 0, x.Elem, dims)
	if v, ok := st.inVals(n, 0); ok {
		st.setVals(n, 0, v)
	}
	return nil
}

// constantTensor returns the tensor a Constant node produces.
func constantTensor(n *pb.NodeProto) (*pb.TensorProto, error) {
	name := ""
	if len(n.Output) > 0 {
		name = n.Output[0]
	}
	if len(n.Attribute) != 1 {
		return nil, fmt.Errorf("want exactly one value attribute, have %d", len(n.Attribute))
	}
	a := n.Attribute[0]
	switch a.GetName() {
	case "value":
		if a.T == nil {
			return nil, fmt.Errorf("attribute value has no tensor")
		}
		t := cloneTensor(a.T)
		t.Name = &name
		return t, nil
	case "value_float":
		return FloatTensor(name, nil, []float32{a.GetF()}), nil
	case "value_floats":
		return FloatTensor(name, []int64{int64(len(a.Floats))}, a.Floats), nil
	case "value_int":
		return Int64Tensor(name, nil, []int64{a.GetI()}), nil
	case "value_ints":
		return Int64Tensor(name, []int64{int64(len(a.Ints))}, a.Ints), nil
	}
	return nil, fmt.Errorf("attribute %q is not supported (use value, value_float(s) or value_int(s))", a.GetName())
}

func cloneTensor(t *pb.TensorProto) *pb.TensorProto {
	return proto.Clone(t).(*pb.TensorProto)
}

func (st *shapeState) inferConstant(n *pb.NodeProto) error {
	t, err := constantTensor(n)
	if err != nil {
		return err
	}
	st.set(n, 0, pb.TensorProto_DataType(t.GetDataType()), append([]int64{}, t.Dims...))
	if len(n.Output) > 0 {
		st.loadValues(n.Output[0], t)
	}
	return nil
}

func (st *shapeState) inferConstantOfShape(n *pb.NodeProto) error {
	s, err := st.in(n, 0)
	if err != nil {
		return err
	}
	if len(s.Dims) != 1 {
		return fmt.Errorf("shape input %q must be 1-D, has dims %v", n.Input[0], publicType(s).Dims)
	}
	dims := st.dimsFromValues(n, 0, s)
	elem := Float
	var fill int64
	fillKnown := false
	if a := Attr(n, "value"); a != nil && a.T != nil {
		elem = pb.TensorProto_DataType(a.T.GetDataType())
		if elem == Int64 || elem == pb.TensorProto_INT32 {
			if v, err := Int64s(a.T); err == nil && len(v) == 1 {
				fill, fillKnown = v[0], true
			}
		}
		if elem == Bool {
			if v, err := boolValues(a.T); err == nil && len(v) == 1 {
				fill, fillKnown = v[0], true
			}
		}
	}
	st.set(n, 0, elem, dims)
	if fillKnown && (ValueType{Dims: dims}).Static() && NumElements(dims) <= maxTracked {
		out := make([]ival, NumElements(dims))
		for i := range out {
			out[i] = ival{v: fill}
		}
		st.setVals(n, 0, out)
	}
	return nil
}

// dimsFromValues turns a 1-D shape input into dims: known entries as values,
// unknown entries keep their symbol.
func (st *shapeState) dimsFromValues(n *pb.NodeProto, i int, s ValueType) []int64 {
	v, ok := st.inVals(n, i)
	if !ok {
		if s.Dims[0] < 0 {
			return nil
		}
		dims := make([]int64, s.Dims[0])
		for j := range dims {
			dims[j] = unknownDim
		}
		return dims
	}
	dims := make([]int64, len(v))
	for j, x := range v {
		if x.known() {
			dims[j] = x.v
		} else {
			dims[j] = x.sym
		}
	}
	return dims
}

func (st *shapeState) inferOneHot(n *pb.NodeProto) error {
	in, err := st.ins(n, 3)
	if err != nil {
		return err
	}
	idx, vals := in[0], in[2]
	r := len(idx.Dims) + 1
	axis, err := normAxis(AttrInt(n, "axis", -1), r)
	if err != nil {
		return err
	}
	depth := unknownDim
	if d, ok := st.intInput(n, 1); ok && len(d) == 1 {
		depth = d[0]
	} else if f, ok := st.fvals[n.Input[1]]; ok && len(f) == 1 {
		depth = int64(f[0])
	}
	dims := append([]int64{}, idx.Dims[:axis]...)
	dims = append(dims, depth)
	dims = append(dims, idx.Dims[axis:]...)
	st.set(n, 0, vals.Elem, dims)
	return nil
}

func (st *shapeState) inferRange(n *pb.NodeProto) error {
	in, err := st.ins(n, 3)
	if err != nil {
		return err
	}
	start := in[0]
	scalar := func(i int) (float64, bool) {
		if v, ok := st.intInput(n, i); ok && len(v) == 1 {
			return float64(v[0]), true
		}
		if f, ok := st.fvals[n.Input[i]]; ok && len(f) == 1 {
			return f[0], true
		}
		return 0, false
	}
	a, ok1 := scalar(0)
	b, ok2 := scalar(1)
	d, ok3 := scalar(2)
	if !ok1 || !ok2 || !ok3 {
		st.set(n, 0, start.Elem, []int64{unknownDim})
		return nil
	}
	if d == 0 {
		return fmt.Errorf("delta is 0")
	}
	count := int64(math.Max(math.Ceil((b-a)/d), 0))
	st.set(n, 0, start.Elem, []int64{count})
	if start.Elem == Int64 || start.Elem == pb.TensorProto_INT32 {
		if count <= maxTracked {
			out := make([]ival, count)
			for i := range out {
				out[i] = ival{v: int64(a) + int64(i)*int64(d)}
			}
			st.setVals(n, 0, out)
		}
	}
	return nil
}

func (st *shapeState) inferEinsum(n *pb.NodeProto) error {
	eq := strings.ReplaceAll(AttrString(n, "equation", ""), " ", "")
	if eq == "" {
		return fmt.Errorf("attribute equation is required")
	}
	lhs, rhs, explicit := strings.Cut(eq, "->")
	terms := strings.Split(lhs, ",")
	if len(terms) != len(n.Input) {
		return fmt.Errorf("equation %q has %d operands, the node has %d inputs", eq, len(terms), len(n.Input))
	}
	sizes := map[rune]int64{}
	counts := map[rune]int{}
	var ellipsis []int64
	var elem pb.TensorProto_DataType
	for i, term := range terms {
		x, err := st.in(n, i)
		if err != nil {
			return err
		}
		elem = x.Elem
		letters := []rune(strings.ReplaceAll(term, "...", "."))
		nEll := len(x.Dims) - (len(letters) - strings.Count(term, "..."))
		if !strings.Contains(term, "...") && nEll != 0 {
			return fmt.Errorf("operand %d %q has rank %d, equation term %q has %d letters", i, n.Input[i], len(x.Dims), term, len(letters))
		}
		if nEll < 0 {
			return fmt.Errorf("operand %d %q has rank %d, too small for term %q", i, n.Input[i], len(x.Dims), term)
		}
		j := 0
		for _, c := range letters {
			if c == '.' {
				ed := x.Dims[j : j+nEll]
				b, err := broadcast(ellipsis, ed)
				if err != nil {
					return fmt.Errorf("ellipsis dims: %w", err)
				}
				ellipsis = b
				j += nEll
				continue
			}
			d, err := mergeDim(sizes[c], x.Dims[j])
			if _, seen := sizes[c]; !seen {
				d, err = x.Dims[j], nil
			}
			if err != nil {
				return fmt.Errorf("label %q: %w", string(c), err)
			}
			sizes[c] = d
			counts[c]++
			j++
		}
	}
	if !explicit {
		var letters []rune
		for c, k := range counts {
			if k == 1 {
				letters = append(letters, c)
			}
		}
		sort.Slice(letters, func(a, b int) bool { return letters[a] < letters[b] })
		rhs = string(letters)
		if ellipsis != nil {
			rhs = "..." + rhs
		}
	}
	dims := []int64{}
	for _, c := range strings.ReplaceAll(rhs, "...", ".") {
		if c == '.' {
			dims = append(dims, ellipsis...)
			continue
		}
		d, ok := sizes[c]
		if !ok {
			return fmt.Errorf("output label %q does not appear in the inputs", string(c))
		}
		dims = append(dims, d)
	}
	st.set(n, 0, elem, dims)
	return nil
}

// ---- value propagation ----

// broadcastIndex maps a flat index of out dims to a flat index of in dims
// (numpy broadcasting).
func broadcastIndex(flat int64, out, in []int64) int64 {
	idx := int64(0)
	stride := int64(1)
	off := len(out) - len(in)
	for i := len(out) - 1; i >= 0; i-- {
		c := flat % out[i]
		flat /= out[i]
		if j := i - off; j >= 0 {
			if in[j] != 1 {
				idx += c * stride
			}
			stride *= in[j]
		}
	}
	return idx
}

func (st *shapeState) binaryValues(n *pb.NodeProto, op string, a, b ValueType, dims []int64) {
	va, okA := st.inVals(n, 0)
	vb, okB := st.inVals(n, 1)
	if !okA || !okB || !(ValueType{Dims: dims}).Static() || !a.Static() || !b.Static() {
		return
	}
	total := NumElements(dims)
	if total > maxTracked {
		return
	}
	out := make([]ival, total)
	for i := range out {
		x := va[broadcastIndex(int64(i), dims, a.Dims)]
		y := vb[broadcastIndex(int64(i), dims, b.Dims)]
		if !x.known() || !y.known() {
			out[i] = ival{sym: unknownDim}
			if op == "Mul" && x.known() && x.v == 1 {
				out[i] = y
			} else if (op == "Mul" || op == "Div") && y.known() && y.v == 1 {
				out[i] = x
			} else if (op == "Add" || op == "Sub") && y.known() && y.v == 0 {
				out[i] = x
			} else if op == "Add" && x.known() && x.v == 0 {
				out[i] = y
			}
			continue
		}
		var r int64
		switch op {
		case "Add":
			r = x.v + y.v
		case "Sub":
			r = x.v - y.v
		case "Mul":
			r = x.v * y.v
		case "Div":
			if y.v == 0 {
				return
			}
			r = x.v / y.v // integer division truncates toward zero, as ONNX
		case "Mod":
			if y.v == 0 {
				return
			}
			r = x.v % y.v
			if AttrInt(n, "fmod", 0) == 0 && r != 0 && (r < 0) != (y.v < 0) {
				r += y.v
			}
		case "Max":
			r = max(x.v, y.v)
		case "Min":
			r = min(x.v, y.v)
		case "Equal":
			r = b2i(x.v == y.v)
		case "Less":
			r = b2i(x.v < y.v)
		case "Greater":
			r = b2i(x.v > y.v)
		case "LessOrEqual":
			r = b2i(x.v <= y.v)
		case "GreaterOrEqual":
			r = b2i(x.v >= y.v)
		case "And":
			r = b2i(x.v != 0 && y.v != 0)
		case "Or":
			r = b2i(x.v != 0 || y.v != 0)
		case "Xor":
			r = b2i((x.v != 0) != (y.v != 0))
		default:
			return
		}
		out[i] = ival{v: r}
	}
	st.setVals(n, 0, out)
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func (st *shapeState) whereValues(n *pb.NodeProto, c, x, y ValueType, dims []int64) {
	vc, ok1 := st.inVals(n, 0)
	vx, ok2 := st.inVals(n, 1)
	vy, ok3 := st.inVals(n, 2)
	if !ok1 || !ok2 || !ok3 || !(ValueType{Dims: dims}).Static() || !c.Static() || !x.Static() || !y.Static() {
		return
	}
	total := NumElements(dims)
	if total > maxTracked {
		return
	}
	out := make([]ival, total)
	for i := range out {
		cv := vc[broadcastIndex(int64(i), dims, c.Dims)]
		switch {
		case !cv.known():
			out[i] = ival{sym: unknownDim}
		case cv.v != 0:
			out[i] = vx[broadcastIndex(int64(i), dims, x.Dims)]
		default:
			out[i] = vy[broadcastIndex(int64(i), dims, y.Dims)]
		}
	}
	st.setVals(n, 0, out)
}

func (st *shapeState) castValues(n *pb.NodeProto, to pb.TensorProto_DataType) {
	if v, ok := st.inVals(n, 0); ok {
		switch to {
		case Bool:
			out := make([]ival, len(v))
			for i, x := range v {
				if !x.known() {
					out[i] = ival{sym: unknownDim}
				} else {
					out[i] = ival{v: b2i(x.v != 0)}
				}
			}
			st.setVals(n, 0, out)
		case pb.TensorProto_INT32:
			out := make([]ival, len(v))
			for i, x := range v {
				out[i] = x
				if x.known() {
					out[i] = ival{v: int64(int32(x.v))}
				}
			}
			st.setVals(n, 0, out)
		case pb.TensorProto_FLOAT, pb.TensorProto_DOUBLE:
			f := make([]float64, len(v))
			for i, x := range v {
				if !x.known() {
					return
				}
				f[i] = float64(x.v)
			}
			st.fvals[n.Output[0]] = f
		default:
			st.setVals(n, 0, v)
		}
		return
	}
	if f, ok := st.fvals[n.Input[0]]; ok {
		switch to {
		case Int64, pb.TensorProto_INT32:
			out := make([]ival, len(f))
			for i, x := range f {
				if math.IsNaN(x) || math.IsInf(x, 0) {
					return
				}
				out[i] = ival{v: int64(x)}
			}
			st.setVals(n, 0, out)
		case pb.TensorProto_FLOAT, pb.TensorProto_DOUBLE:
			st.fvals[n.Output[0]] = f
		}
	}
}
