package graph

import (
	"fmt"
	"sort"

	pb "github.com/critlab/critlab/models/onnxpb"
)

// TensorInfo names a graph input or output and its type (-1: symbolic dim).
type TensorInfo struct {
	Name string
	ValueType
}

// OpCount is one entry of an op histogram.
type OpCount struct {
	Op    string
	Count int
	FLOPs int64 // per image, summed over the op's nodes
}

// Summary describes a model: what Stats returns.
type Summary struct {
	Inputs, Outputs []TensorInfo
	// Params counts the elements of trainable floating-point initializers:
	// every float initializer that is not a BatchNormalization running
	// statistic. ParamTensors counts the tensors.
	Params       int64
	ParamTensors int
	// Buffers counts the elements of BatchNormalization running means and
	// variances (inputs 3 and 4); BufferTensors counts the tensors.
	Buffers       int64
	BufferTensors int
	// FLOPs per image: see Stats for the convention.
	FLOPs int64
	// Ops is the op histogram, most frequent first (ties by name).
	Ops []OpCount
	// Unknown lists nodes whose FLOPs could not be counted because a
	// dimension other than the batch is unknown (their FLOPs count as 0).
	Unknown []string
}

// Stats summarises m: inputs and outputs with their dims, parameter and
// buffer counts, FLOPs per image and the op histogram.
//
// FLOPs convention (per image: a batch of 1, or the total divided by a static
// batch size):
//
//   - Conv, ConvTranspose, Gemm, MatMul, Einsum: 2 FLOPs per multiply-add
//     (Conv: 2·N·Cout·Hout·Wout·(Cin/group)·kh·kw; ConvTranspose the same over
//     its input positions; Gemm: 2·M·N·K). Bias additions are not counted,
//     as in fvcore or ptflops multiply-add counts doubled.
//   - Pools and reductions (MaxPool, AveragePool, GlobalAveragePool,
//     ReduceMean...): 1 per input element read.
//   - Every other computing op (BatchNormalization, Relu, Add, Softmax...):
//     1 per output element.
//   - Shape and data-movement ops (Reshape, Flatten, Transpose, Concat,
//     Slice, Gather, Identity, Dropout, Constant, Cast...): 0.
func Stats(m *pb.ModelProto) (Summary, error) {
	var s Summary
	if m.GetGraph() == nil {
		return s, fmt.Errorf("stats: model has no graph")
	}
	g := m.Graph
	types, err := InferShapes(g, nil)
	if err != nil {
		return s, fmt.Errorf("stats: %w", err)
	}
	isInit := map[string]bool{}
	for _, t := range g.Initializer {
		isInit[t.GetName()] = true
	}
	for _, in := range g.Input {
		if !isInit[in.GetName()] {
			s.Inputs = append(s.Inputs, TensorInfo{in.GetName(), types[in.GetName()]})
		}
	}
	for _, o := range g.Output {
		s.Outputs = append(s.Outputs, TensorInfo{o.GetName(), types[o.GetName()]})
	}

	running := map[string]bool{}
	for _, n := range g.Node {
		if n.GetOpType() == "BatchNormalization" {
			for i := 3; i < 5 && i < len(n.Input); i++ {
				running[n.Input[i]] = true
			}
		}
	}
	for _, t := range g.Initializer {
		if !isFloat(pb.TensorProto_DataType(t.GetDataType())) {
			continue
		}
		n := NumElements(t.Dims)
		if running[t.GetName()] {
			s.Buffers += n
			s.BufferTensors++
		} else {
			s.Params += n
			s.ParamTensors++
		}
	}

	// FLOPs: infer with a batch of one where the batch is symbolic.
	batch := int64(1)
	over := map[string][]int64{}
	for _, in := range s.Inputs {
		dims := append([]int64{}, in.Dims...)
		if len(dims) > 0 {
			if dims[0] < 0 {
				dims[0] = 1
			} else if len(over) == 0 && dims[0] > 0 {
				batch = dims[0]
			}
		}
		over[in.Name] = dims
	}
	one, err := InferShapes(g, over)
	if err != nil {
		return s, fmt.Errorf("stats: with a batch of 1: %w", err)
	}
	hist := map[string]*OpCount{}
	for i, n := range g.Node {
		op := n.GetOpType()
		c := hist[op]
		if c == nil {
			c = &OpCount{Op: op}
			hist[op] = c
		}
		c.Count++
		f, ok := nodeFLOPs(n, one)
		if !ok {
			s.Unknown = append(s.Unknown, nodeLabel(n, i))
			continue
		}
		c.FLOPs += f
		s.FLOPs += f
	}
	if batch > 1 {
		s.FLOPs /= batch
		for _, c := range hist {
			c.FLOPs /= batch
		}
	}
	for _, c := range hist {
		s.Ops = append(s.Ops, *c)
	}
	sort.Slice(s.Ops, func(i, j int) bool {
		if s.Ops[i].Count != s.Ops[j].Count {
			return s.Ops[i].Count > s.Ops[j].Count
		}
		return s.Ops[i].Op < s.Ops[j].Op
	})
	return s, nil
}

func isFloat(t pb.TensorProto_DataType) bool {
	switch t {
	case pb.TensorProto_FLOAT, pb.TensorProto_FLOAT16, pb.TensorProto_DOUBLE, pb.TensorProto_BFLOAT16:
		return true
	}
	return false
}

// zeroFLOPOps move or describe data without arithmetic.
var zeroFLOPOps = map[string]bool{
	"Reshape": true, "Flatten": true, "Transpose": true, "Concat": true, "Split": true,
	"Slice": true, "Gather": true, "GatherElements": true, "ScatterElements": true,
	"ScatterND": true, "Scatter": true, "Identity": true, "Dropout": true, "Constant": true,
	"ConstantOfShape": true, "Shape": true, "Size": true, "Squeeze": true, "Unsqueeze": true,
	"Cast": true, "CastLike": true, "Expand": true, "Tile": true, "Pad": true, "Range": true,
	"OneHot": true, "SplitToSequence": true, "SequenceAt": true,
}

// inputFLOPOps cost one FLOP per input element.
var inputFLOPOps = map[string]bool{
	"MaxPool": true, "AveragePool": true, "LpPool": true, "GlobalAveragePool": true,
	"GlobalMaxPool": true, "GlobalLpPool": true, "ArgMax": true, "ArgMin": true,
	"ReduceMean": true, "ReduceSum": true, "ReduceMax": true, "ReduceMin": true,
	"ReduceProd": true, "ReduceL1": true, "ReduceL2": true, "ReduceLogSum": true,
	"ReduceLogSumExp": true, "ReduceSumSquare": true,
}

// nodeFLOPs counts a node's FLOPs from inferred types; ok is false when a
// needed dimension is unknown.
func nodeFLOPs(n *pb.NodeProto, types map[string]ValueType) (int64, bool) {
	op := n.GetOpType()
	if zeroFLOPOps[op] {
		return 0, true
	}
	elems := func(name string) (int64, bool) {
		vt, ok := types[name]
		if !ok || !vt.Static() {
			return 0, false
		}
		return NumElements(vt.Dims), true
	}
	dims := func(i int, out bool) []int64 {
		list := n.Input
		if out {
			list = n.Output
		}
		if i >= len(list) {
			return nil
		}
		return types[list[i]].Dims
	}
	switch op {
	case "Conv":
		y, ok := elems(n.Output[0])
		w := dims(1, false)
		if !ok || !(ValueType{Dims: w}).Static() || len(w) < 2 {
			return 0, false
		}
		// y counts N·Cout·spatial; each output element needs Cin/group·k MACs.
		return 2 * y * NumElements(w[1:]), true
	case "ConvTranspose":
		x, ok := elems(n.Input[0])
		w := dims(1, false)
		if !ok || !(ValueType{Dims: w}).Static() || len(w) < 2 {
			return 0, false
		}
		// Each input element scatters into Cout/group·k outputs.
		return 2 * x * NumElements(w[1:]), true
	case "Gemm", "MatMul":
		y, ok := elems(n.Output[0])
		a := dims(0, false)
		if !ok || len(a) == 0 {
			return 0, false
		}
		k := a[len(a)-1]
		if op == "Gemm" && AttrInt(n, "transA", 0) != 0 {
			k = a[0]
		}
		if k < 0 {
			return 0, false
		}
		return 2 * y * k, true
	case "Einsum":
		// Product of every label's size: one multiply-add per combination.
		total, ok := einsumMACs(n, types)
		return 2 * total, ok
	}
	if inputFLOPOps[op] {
		return elems(n.Input[0])
	}
	var total int64
	for _, o := range n.Output {
		if o == "" {
			continue
		}
		e, ok := elems(o)
		if !ok {
			return 0, false
		}
		total += e
		if op != "Split" {
			break // count the main output only (BatchNormalization, MaxPool indices...)
		}
	}
	return total, true
}

func einsumMACs(n *pb.NodeProto, types map[string]ValueType) (int64, bool) {
	eq := AttrString(n, "equation", "")
	lhs := eq
	for i := 0; i+1 < len(eq); i++ {
		if eq[i] == '-' && eq[i+1] == '>' {
			lhs = eq[:i]
			break
		}
	}
	sizes := map[byte]int64{}
	term, ti := 0, 0
	for i := 0; i < len(lhs); i++ {
		c := lhs[i]
		switch {
		case c == ',':
			term++
			ti = 0
		case c == '.' || c == ' ':
			return 0, false // ellipsis: not counted
		default:
			if term >= len(n.Input) {
				return 0, false
			}
			d := types[n.Input[term]].Dims
			if ti >= len(d) || d[ti] < 0 {
				return 0, false
			}
			sizes[c] = d[ti]
			ti++
		}
	}
	total := int64(1)
	for _, s := range sizes {
		total *= s
	}
	return total, true
}
