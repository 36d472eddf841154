package graph

import (
	"fmt"
	"strings"

	pb "github.com/critlab/critlab/models/onnxpb"
)

// Normalize rewrites g in place into the forms the training-graph compiler
// emits and every execution provider accepts: nodes from opsets 18 to 20
// get their opset-17 spelling (reduce axes as attributes, Split sizes
// instead of num_outputs), and auto_pad of Conv, ConvTranspose and the
// pools becomes explicit pads, asymmetric Conv pads a Pad node before a
// symmetrically padded Conv. opset is the model's default-domain opset;
// inputs overrides input dimensions as in InferShapes.
func Normalize(g *pb.GraphProto, opset int64, inputs map[string][]int64) error {
	if err := opset17(g, opset, inputs); err != nil {
		return err
	}
	types, err := InferShapes(g, inputs)
	if err != nil {
		return err
	}
	return explicitPads(g, types)
}

// opset17 rewrites reduce axes inputs and Split num_outputs (opsets 18 to
// 20) into their opset-17 form.
func opset17(g *pb.GraphProto, opset int64, inputs map[string][]int64) error {
	if opset <= 17 {
		return nil
	}
	consts := map[string][]int64{}
	for _, t := range g.Initializer {
		if pb.TensorProto_DataType(t.GetDataType()) == Int64 {
			if v, err := Int64s(t); err == nil {
				consts[t.GetName()] = v
			}
		}
	}
	var types map[string]ValueType // inferred at the first Split with num_outputs
	for _, n := range g.Node {
		if n.GetOpType() == "Constant" && len(n.Output) == 1 {
			if a := Attr(n, "value"); a != nil && a.T != nil && pb.TensorProto_DataType(a.T.GetDataType()) == Int64 {
				if v, err := Int64s(a.T); err == nil {
					consts[n.Output[0]] = v
				}
			}
		}
		op := n.GetOpType()
		switch {
		case strings.HasPrefix(op, "Reduce") && op != "ReduceSum":
			if len(n.Input) > 1 && n.Input[1] != "" {
				axes, ok := consts[n.Input[1]]
				if !ok {
					return fmt.Errorf("node %q (%s): axes must be a constant", n.GetName(), op)
				}
				n.Input = n.Input[:1]
				n.Attribute = append(n.Attribute, Ints("axes", axes...))
			}
		case op == "Split":
			if a := Attr(n, "num_outputs"); a != nil {
				if types == nil {
					var err error
					if types, err = InferShapes(g, inputs); err != nil {
						return err
					}
				}
				var attrs []*pb.AttributeProto
				for _, x := range n.Attribute {
					if x.GetName() != "num_outputs" {
						attrs = append(attrs, x)
					}
				}
				n.Attribute = attrs
				if len(n.Input) > 1 && n.Input[1] != "" {
					continue
				}
				// Opset 13-17 splits evenly when sizes divide; opset 18's
				// uneven last chunk becomes explicit sizes.
				if err := splitSizes(g, n, types); err != nil {
					return err
				}
			}
		case op == "Pad" && len(n.Input) > 3 && n.Input[3] != "":
			return fmt.Errorf("node %q (Pad) uses the opset-18 axes input", n.GetName())
		}
	}
	return nil
}

// splitSizes gives a Split node its sizes as an initializer input.
func splitSizes(g *pb.GraphProto, n *pb.NodeProto, types map[string]ValueType) error {
	x, ok := types[n.Input[0]]
	if !ok {
		return fmt.Errorf("node %q (Split): input shape unknown", n.GetName())
	}
	axis, err := normAxis(AttrInt(n, "axis", 0), len(x.Dims))
	if err != nil {
		return fmt.Errorf("node %q (Split): %w", n.GetName(), err)
	}
	d := x.Dims[axis]
	k := int64(len(n.Output))
	if d < 0 {
		return fmt.Errorf("node %q (Split): split dimension unknown", n.GetName())
	}
	c := (d + k - 1) / k
	var sizes []int64
	for i := range k {
		sizes = append(sizes, max(0, min(c, d-i*c)))
	}
	name := n.GetName() + "_split_sizes"
	g.Initializer = append(g.Initializer, Int64Tensor(name, []int64{k}, sizes))
	n.Input = append(n.Input[:1], name)
	return nil
}

// explicitPads rewrites auto_pad of Conv, ConvTranspose and pooling nodes
// into explicit pads, and asymmetric Conv pads into a Pad node before a
// symmetrically padded Conv (some providers reject the other forms).
func explicitPads(g *pb.GraphProto, types map[string]ValueType) error {
	b := Wrap(g)
	var nodes []*pb.NodeProto
	for _, n := range g.Node {
		op := n.GetOpType()
		if op != "Conv" && op != "ConvTranspose" && op != "MaxPool" && op != "AveragePool" {
			nodes = append(nodes, n)
			continue
		}
		x, ok := types[n.Input[0]]
		if !ok || len(x.Dims) < 3 {
			nodes = append(nodes, n)
			continue
		}
		sp := x.Dims[2:]
		r := len(sp)
		var kernel []int64
		if op == "Conv" || op == "ConvTranspose" {
			w, ok := types[n.Input[1]]
			if !ok || len(w.Dims) != r+2 {
				nodes = append(nodes, n)
				continue
			}
			kernel = AttrInts(n, "kernel_shape", w.Dims[2:])
		} else {
			kernel = AttrInts(n, "kernel_shape", nil)
		}
		var pb0, pe0 []int64
		if op == "ConvTranspose" {
			if AttrString(n, "auto_pad", "NOTSET") == "NOTSET" && Attr(n, "output_shape") == nil {
				nodes = append(nodes, n)
				continue
			}
			t, err := ResolveConvTranspose(n, sp, kernel)
			if err != nil {
				return fmt.Errorf("node %q (%s): %w", n.GetName(), op, err)
			}
			pb0, pe0 = t.PadBegin, t.PadEnd
		} else {
			w, err := ResolveWindow(n, sp, kernel)
			if err != nil {
				return fmt.Errorf("node %q (%s): %w", n.GetName(), op, err)
			}
			pb0, pe0 = w.PadBegin, w.PadEnd
		}
		asym := false
		for i := range r {
			asym = asym || pb0[i] != pe0[i]
		}
		auto := AttrString(n, "auto_pad", "NOTSET") != "NOTSET" || Attr(n, "output_shape") != nil
		if !auto && !(asym && op == "Conv") {
			nodes = append(nodes, n)
			continue
		}
		var attrs []*pb.AttributeProto
		for _, a := range n.Attribute {
			switch a.GetName() {
			case "auto_pad", "pads", "output_shape":
			default:
				attrs = append(attrs, a)
			}
		}
		if asym && op == "Conv" {
			pads := make([]int64, 2*(r+2))
			sym := make([]int64, 2*r)
			for i := range r {
				m := min(pb0[i], pe0[i])
				pads[i+2], pads[i+2+r+2] = pb0[i]-m, pe0[i]-m
				sym[i], sym[i+r] = m, m
			}
			padded := b.Fresh(n.GetName() + "_padded")
			pname := b.Fresh(n.GetName() + "_pad")
			padOp := "Pad"
			nodes = append(nodes, &pb.NodeProto{OpType: &padOp, Name: &pname, Input: []string{n.Input[0], b.ConstInt64s(pads...)}, Output: []string{padded}})
			n.Input[0] = padded
			pb0, pe0 = sym[:r], sym[r:]
		}
		n.Attribute = append(attrs, Ints("pads", append(append([]int64{}, pb0...), pe0...)...))
		nodes = append(nodes, n)
	}
	g.Node = nodes
	return nil
}
