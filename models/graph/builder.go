package graph

import (
	"fmt"
	"math"

	pb "github.com/critlab/critlab/models/onnxpb"
)

// Opset is the default-domain opset version critlab emits. 17 is the first
// with LayerNormalization and keeps ReduceMean's axes as an attribute, while
// ReduceSum takes axes as an input (since 13).
const Opset = 17

// IRVersion is the ONNX IR version of the models critlab writes (ONNX 1.12+).
const IRVersion = 8

// Element types used by critlab graphs.
const (
	Float = pb.TensorProto_FLOAT
	Int64 = pb.TensorProto_INT64
	Bool  = pb.TensorProto_BOOL
)

// Builder appends nodes, initializers, inputs and outputs to a GraphProto,
// giving every node and intermediate value a unique name.
type Builder struct {
	G       *pb.GraphProto
	used    map[string]bool
	counter int
	consts  map[string]string // constant cache: key -> value name
}

// NewBuilder starts an empty graph.
func NewBuilder(name string) *Builder {
	return Wrap(&pb.GraphProto{Name: &name})
}

// Wrap returns a builder that appends to an existing graph, reserving every
// name already in it.
func Wrap(g *pb.GraphProto) *Builder {
	b := &Builder{G: g, used: map[string]bool{}, consts: map[string]string{}}
	for _, v := range g.Input {
		b.used[v.GetName()] = true
	}
	for _, t := range g.Initializer {
		b.used[t.GetName()] = true
	}
	for _, n := range g.Node {
		b.used[n.GetName()] = true
		for _, o := range n.Output {
			b.used[o] = true
		}
	}
	return b
}

// Fresh returns an unused name starting with prefix and reserves it.
func (b *Builder) Fresh(prefix string) string {
	if !b.used[prefix] {
		b.used[prefix] = true
		return prefix
	}
	for {
		b.counter++
		n := fmt.Sprintf("%s_%d", prefix, b.counter)
		if !b.used[n] {
			b.used[n] = true
			return n
		}
	}
}

// Reserve marks a name as taken (for names chosen by the caller).
func (b *Builder) Reserve(name string) { b.used[name] = true }

// Node appends a node with nOut fresh outputs named after op and returns them.
func (b *Builder) Node(op string, inputs []string, nOut int, attrs ...*pb.AttributeProto) []string {
	outs := make([]string, nOut)
	for i := range outs {
		outs[i] = b.Fresh(op)
	}
	b.NodeNamed(op, inputs, outs, attrs...)
	return outs
}

// NodeNamed appends a node whose outputs have caller-chosen names.
func (b *Builder) NodeNamed(op string, inputs, outputs []string, attrs ...*pb.AttributeProto) *pb.NodeProto {
	name := b.Fresh("n_" + op)
	for _, o := range outputs {
		b.used[o] = true
	}
	n := &pb.NodeProto{OpType: &op, Name: &name, Input: inputs, Output: outputs, Attribute: attrs}
	b.G.Node = append(b.G.Node, n)
	return n
}

// Op appends a single-output node and returns its output name.
func (b *Builder) Op(op string, inputs []string, attrs ...*pb.AttributeProto) string {
	return b.Node(op, inputs, 1, attrs...)[0]
}

// Input declares a graph input; a negative dimension is symbolic ("N").
func (b *Builder) Input(name string, et pb.TensorProto_DataType, dims ...int64) string {
	b.used[name] = true
	b.G.Input = append(b.G.Input, ValueInfo(name, et, dims...))
	return name
}

// Output declares a graph output.
func (b *Builder) Output(name string, et pb.TensorProto_DataType, dims ...int64) {
	b.G.Output = append(b.G.Output, ValueInfo(name, et, dims...))
}

// Param adds a float32 initializer and returns its name.
func (b *Builder) Param(name string, dims []int64, data []float32) string {
	b.used[name] = true
	b.G.Initializer = append(b.G.Initializer, FloatTensor(name, dims, data))
	return name
}

// ConstInt64s returns the name of an int64 initializer holding vals (1-D);
// equal constants are shared.
func (b *Builder) ConstInt64s(vals ...int64) string {
	key := fmt.Sprint("i64", vals)
	if n, ok := b.consts[key]; ok {
		return n
	}
	n := b.Fresh("const_i64")
	b.G.Initializer = append(b.G.Initializer, Int64Tensor(n, []int64{int64(len(vals))}, vals))
	b.consts[key] = n
	return n
}

// ConstFloat returns the name of a float32 scalar initializer; equal constants
// are shared.
func (b *Builder) ConstFloat(v float32) string {
	key := fmt.Sprintf("f32 %x", math.Float32bits(v))
	if n, ok := b.consts[key]; ok {
		return n
	}
	n := b.Fresh("const_f32")
	b.G.Initializer = append(b.G.Initializer, FloatTensor(n, nil, []float32{v}))
	b.consts[key] = n
	return n
}

// Model wraps the graph in a ModelProto with critlab's opset and IR version.
func (b *Builder) Model() *pb.ModelProto { return NewModel(b.G, Opset) }

// NewModel wraps g in a ModelProto importing the default domain at opset.
func NewModel(g *pb.GraphProto, opset int64) *pb.ModelProto {
	ir := int64(IRVersion)
	producer, version, domain := "critlab", "0.1", ""
	return &pb.ModelProto{
		IrVersion:       &ir,
		ProducerName:    &producer,
		ProducerVersion: &version,
		OpsetImport:     []*pb.OperatorSetIdProto{{Domain: &domain, Version: &opset}},
		Graph:           g,
	}
}

// ValueInfo describes a tensor value; a negative dimension becomes the
// symbolic dimension "N".
func ValueInfo(name string, et pb.TensorProto_DataType, dims ...int64) *pb.ValueInfoProto {
	shape := &pb.TensorShapeProto{}
	for _, d := range dims {
		dim := &pb.TensorShapeProto_Dimension{}
		if d < 0 {
			dim.Value = &pb.TensorShapeProto_Dimension_DimParam{DimParam: "N"}
		} else {
			dim.Value = &pb.TensorShapeProto_Dimension_DimValue{DimValue: d}
		}
		shape.Dim = append(shape.Dim, dim)
	}
	elem := int32(et)
	return &pb.ValueInfoProto{
		Name: &name,
		Type: &pb.TypeProto{Value: &pb.TypeProto_TensorType{TensorType: &pb.TypeProto_Tensor{ElemType: &elem, Shape: shape}}},
	}
}

// Dims returns the static dimensions of a value info (-1 for symbolic ones)
// and its element type.
func Dims(v *pb.ValueInfoProto) ([]int64, pb.TensorProto_DataType) {
	tt := v.GetType().GetTensorType()
	var dims []int64
	for _, d := range tt.GetShape().GetDim() {
		if dv, ok := d.Value.(*pb.TensorShapeProto_Dimension_DimValue); ok {
			dims = append(dims, dv.DimValue)
		} else {
			dims = append(dims, -1)
		}
	}
	return dims, pb.TensorProto_DataType(tt.GetElemType())
}
