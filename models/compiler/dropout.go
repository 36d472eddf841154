package compiler

import (
	"fmt"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

// DropoutInput is the prefix of the train graph's dropout inputs
// (TrainGraph.Dropouts): each holds uniform [0, 1) draws shaped like the
// input of one Dropout node with a nonzero ratio (batch first), from which
// the step's mask is made. ONNX random ops cannot be seeded per step, so the
// trainer draws them from the run's seed and every step stays a
// deterministic function of its inputs.
const DropoutInput = "dropout.u"

// Dropout is one Dropout node of a train graph: its uniform input (Dims with
// -1 for the batch) and its ratio.
type Dropout struct {
	Input string
	Dims  []int64
	Ratio float32
}

// maskDropouts rewrites every Dropout node of p with a nonzero ratio into
// y = x · (u < 1-ratio) / (1-ratio), u a new graph input (PyTorch's
// inverted dropout; the gradient follows from Mul's rule), and recomputes
// p.info. Eval graphs keep Dropout as the identity.
func maskDropouts(p *prepared, b *graph.Builder) ([]Dropout, error) {
	var out []Dropout
	var nodes []*pb.NodeProto
	inputs := map[string][]int64{Images: p.imageDims}
	read := map[string]bool{p.logits: true}
	for _, n := range p.g.Node {
		for _, in := range n.Input {
			read[in] = true
		}
	}
	for _, n := range p.g.Node {
		if n.GetOpType() != "Dropout" {
			nodes = append(nodes, n)
			continue
		}
		ratio, err := dropoutRatio(p, n)
		if err != nil {
			return nil, err
		}
		if len(n.Output) > 1 && read[n.Output[1]] {
			return nil, fmt.Errorf("%w: node %q (Dropout): its mask output is used", ErrUnsupported, n.GetName())
		}
		if ratio == 0 {
			nodes = append(nodes, n)
			continue
		}
		x := n.Input[0]
		dims := dimsOf(p.info, x)
		if len(dims) == 0 || mulDims(dims[1:]) < 0 {
			return nil, fmt.Errorf("%w: node %q (Dropout): input %q has dims %v, want a batch and static others", ErrUnsupported, n.GetName(), x, dims)
		}
		d := Dropout{Input: b.Fresh(DropoutInput), Dims: append([]int64{-1}, dims[1:]...), Ratio: ratio}
		inputs[d.Input] = d.Dims
		out = append(out, d)
		keep := b.Fresh(n.GetName() + "_keep")
		mask := b.Fresh(n.GetName() + "_mask")
		scaled := b.Fresh(n.GetName() + "_scaled")
		nodes = append(nodes,
			&pb.NodeProto{OpType: proto.String("Less"), Name: proto.String(keep), Input: []string{d.Input, b.ConstFloat(1 - ratio)}, Output: []string{keep}},
			&pb.NodeProto{OpType: proto.String("Cast"), Name: proto.String(mask), Input: []string{keep}, Output: []string{mask}, Attribute: []*pb.AttributeProto{graph.Int("to", int64(graph.Float))}},
			&pb.NodeProto{OpType: proto.String("Mul"), Name: proto.String(scaled), Input: []string{mask, b.ConstFloat(1 / (1 - ratio))}, Output: []string{scaled}},
			&pb.NodeProto{OpType: proto.String("Mul"), Name: n.Name, Input: []string{x, scaled}, Output: []string{n.Output[0]}})
	}
	if len(out) == 0 {
		return nil, nil
	}
	p.g.Node = nodes
	for _, d := range out {
		p.g.Input = append(p.g.Input, graph.ValueInfo(d.Input, graph.Float, d.Dims...))
	}
	info, err := shapesOf(p.g, inputs)
	if err != nil {
		return nil, fmt.Errorf("compile: dropout: %w", err)
	}
	p.info = info
	return out, nil
}

// dropoutRatio is n's ratio: its constant second input, 0.5 when absent.
func dropoutRatio(p *prepared, n *pb.NodeProto) (float32, error) {
	if len(n.Input) < 2 || n.Input[1] == "" {
		return 0.5, nil
	}
	var v []float32
	if t := p.init[n.Input[1]]; t != nil {
		v, _ = graph.Floats(t)
	}
	for _, c := range p.g.Node {
		if c.GetOpType() == "Constant" && len(c.Output) == 1 && c.Output[0] == n.Input[1] {
			if a := graph.Attr(c, "value"); a != nil {
				v, _ = graph.Floats(a.GetT())
			}
		}
	}
	if len(v) != 1 || v[0] < 0 || v[0] >= 1 {
		return 0, fmt.Errorf("%w: node %q (Dropout): ratio %q is not a constant in [0, 1)", ErrUnsupported, n.GetName(), n.Input[1])
	}
	return v[0], nil
}
