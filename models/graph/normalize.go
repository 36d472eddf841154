package graph

import (
	"fmt"
	"math"
	"slices"
	"strings"

	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Normalize rewrites g in place into the forms the training-graph compiler
// emits and every execution provider accepts, all valid at opset 17: nodes
// from opsets 18 to 22 get their opset-17 spelling (reduce axes as
// attributes, noop_with_empty_axes resolved, Split sizes instead of
// num_outputs, Pad axes expanded, AveragePool's unit dilations and Cast's
// saturate dropped, Gelu written out with Erf or Tanh), CastLike becomes
// Cast, SplitToSequence read by SequenceAt becomes Split, and auto_pad of
// Conv, ConvTranspose and the pools becomes explicit pads, asymmetric Conv
// pads a Pad node before a symmetrically padded Conv. opset is the model's
// default-domain opset; inputs overrides input dimensions as in
// InferShapes.
func Normalize(g *pb.GraphProto, opset int64, inputs map[string][]int64) error {
	types, consts, err := InferValues(g, inputs)
	if err != nil {
		return err
	}
	if err := splitSequences(g, types, consts); err != nil {
		return err
	}
	if err := opset17(g, opset, types, consts); err != nil {
		return err
	}
	if types, err = InferShapes(g, inputs); err != nil {
		return err
	}
	return explicitPads(g, types)
}

// opset17 rewrites the nodes of g that opset 17 spells differently or lacks;
// types and consts are g's inferred types and known integer values.
func opset17(g *pb.GraphProto, opset int64, types map[string]ValueType, consts map[string][]int64) error {
	b := Wrap(g)
	nodes := g.Node
	g.Node = nil
	for _, n := range nodes {
		op := n.GetOpType()
		bad := func(format string, args ...any) error {
			return fmt.Errorf("node %q (%s): %s", n.GetName(), op, fmt.Sprintf(format, args...))
		}
		switch {
		case strings.HasPrefix(op, "Reduce"):
			if op != "ReduceSum" && len(n.Input) > 1 && n.Input[1] != "" {
				axes, ok := consts[n.Input[1]]
				if !ok {
					return bad("axes %q are computed at run time; critlab needs them constant", n.Input[1])
				}
				n.Input = n.Input[:1]
				if len(axes) > 0 {
					n.Attribute = append(n.Attribute, Ints("axes", axes...))
				}
			}
			if op != "ReduceSum" && Attr(n, "noop_with_empty_axes") != nil {
				noop := AttrInt(n, "noop_with_empty_axes", 0) != 0 && Attr(n, "axes") == nil
				dropAttrs(n, "noop_with_empty_axes")
				if noop { // no axes and noop: the identity
					n.OpType = proto.String("Identity")
					n.Attribute = nil
				}
			}
		case op == "Split" && Attr(n, "num_outputs") != nil:
			dropAttrs(n, "num_outputs")
			if len(n.Input) < 2 || n.Input[1] == "" {
				// Opset 13-17 splits evenly when sizes divide; opset 18's
				// uneven last chunk becomes explicit sizes.
				if err := splitSizes(g, n, types); err != nil {
					return err
				}
			}
		case op == "Pad" && len(n.Input) > 3 && n.Input[3] != "":
			if err := padAxes(b, n, types, consts); err != nil {
				return bad("%v", err)
			}
		case op == "AveragePool" && Attr(n, "dilations") != nil:
			for _, d := range AttrInts(n, "dilations", nil) {
				if d != 1 {
					return bad("dilations %v: dilated average pooling is not supported", AttrInts(n, "dilations", nil))
				}
			}
			dropAttrs(n, "dilations")
		case op == "Cast":
			dropAttrs(n, "saturate")
		case op == "CastLike":
			t, ok := types[n.Input[1]]
			if !ok {
				return bad("type of %q unknown", n.Input[1])
			}
			n.OpType = proto.String("Cast")
			n.Input = n.Input[:1]
			n.Attribute = []*pb.AttributeProto{Int("to", int64(t.Elem))}
		case op == "Gelu":
			gelu(b, n)
			continue
		case op == "LayerNormalization" || op == "InstanceNormalization" || op == "GroupNormalization":
			if err := normalization(b, n, types[n.Input[0]], opset); err != nil {
				return bad("%v", err)
			}
			continue
		}
		g.Node = append(g.Node, n)
	}
	return nil
}

// dropAttrs removes the named attributes of n.
func dropAttrs(n *pb.NodeProto, names ...string) {
	var attrs []*pb.AttributeProto
	for _, a := range n.Attribute {
		if !slices.Contains(names, a.GetName()) {
			attrs = append(attrs, a)
		}
	}
	n.Attribute = attrs
}

// gelu appends Gelu node n written out as opset-13 ops, as PyTorch computes
// it: 0.5·x·(1 + erf(x/√2)), or with approximate="tanh"
// 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))).
func gelu(b *Builder, n *pb.NodeProto) {
	x := n.Input[0]
	var inner string
	if AttrString(n, "approximate", "none") == "tanh" {
		x3 := b.Op("Mul", []string{b.Op("Mul", []string{x, x}), x})
		u := b.Op("Add", []string{x, b.Op("Mul", []string{x3, b.ConstFloat(0.044715)})})
		inner = b.Op("Tanh", []string{b.Op("Mul", []string{u, b.ConstFloat(float32(math.Sqrt(2 / math.Pi)))})})
	} else {
		inner = b.Op("Erf", []string{b.Op("Mul", []string{x, b.ConstFloat(float32(1 / math.Sqrt2))})})
	}
	half := b.Op("Mul", []string{x, b.ConstFloat(0.5)})
	b.NodeNamed("Mul", []string{half, b.Op("Add", []string{inner, b.ConstFloat(1)})}, n.Output)
}

// RewrittenOps are the op types Normalize writes out in other ops, so that
// they train through those ops' gradient rules.
var RewrittenOps = []string{"CastLike", "Gelu", "GroupNormalization", "InstanceNormalization", "LayerNormalization", "SequenceAt", "SplitToSequence"}

// normalization appends LayerNormalization, InstanceNormalization or
// GroupNormalization node n (input type x) written out as
// (x - mean)·(var + ε)^-½·scale + bias with the biased variance, both over
// the normalised axes, as PyTorch computes them.
func normalization(b *Builder, n *pb.NodeProto, x ValueType, opset int64) error {
	op := n.GetOpType()
	r := len(x.Dims)
	eps := AttrFloat(n, "epsilon", 1e-5)
	in := n.Input[0]
	var axes, affine []int64 // affine: the shape scale and bias broadcast to
	switch op {
	case "LayerNormalization":
		if len(n.Output) > 1 && (n.Output[1] != "" || len(n.Output) > 2 && n.Output[2] != "") {
			return fmt.Errorf("the mean and inverse-deviation outputs are not supported")
		}
		axis, err := normAxis(AttrInt(n, "axis", -1), r)
		if err != nil {
			return err
		}
		for i := axis; i < r; i++ {
			axes = append(axes, int64(i))
		}
	default:
		if r < 3 || x.Dims[1] <= 0 {
			return fmt.Errorf("input %q needs rank >= 3 and a known channel count, has dims %v", in, x.Dims)
		}
		affine = append([]int64{x.Dims[1]}, make([]int64, r-2)...)
		for i := 1; i < len(affine); i++ {
			affine[i] = 1
		}
		axes = []int64{2}
		if op == "InstanceNormalization" {
			for i := 3; i < r; i++ {
				axes = append(axes, int64(i))
			}
		} else {
			groups := AttrInt(n, "num_groups", 0)
			if groups <= 0 || x.Dims[1]%groups != 0 {
				return fmt.Errorf("num_groups %d does not divide %d channels", groups, x.Dims[1])
			}
			in = b.Op("Reshape", []string{in, b.ConstInt64s(0, groups, -1)})
		}
	}
	mean := b.Op("ReduceMean", []string{in}, Ints("axes", axes...))
	xc := b.Op("Sub", []string{in, mean})
	variance := b.Op("ReduceMean", []string{b.Op("Mul", []string{xc, xc})}, Ints("axes", axes...))
	inv := b.Op("Reciprocal", []string{b.Op("Sqrt", []string{b.Op("Add", []string{variance, b.ConstFloat(eps)})})})
	y := b.Op("Mul", []string{xc, inv})
	if op == "GroupNormalization" {
		y = b.Op("Reshape", []string{y, b.Op("Shape", []string{n.Input[0]})})
	}
	scale, bias := n.Input[1], ""
	if len(n.Input) > 2 {
		bias = n.Input[2]
	}
	if op == "GroupNormalization" && opset < 21 {
		// Opset 18's scale and bias are per group: repeat each over its channels.
		per := b.ConstInt64s(AttrInt(n, "num_groups", 0), x.Dims[1]/AttrInt(n, "num_groups", 0))
		scale = b.Op("Reshape", []string{b.Op("Expand", []string{b.Op("Unsqueeze", []string{scale, b.ConstInt64s(1)}), per}), b.ConstInt64s(-1)})
		bias = b.Op("Reshape", []string{b.Op("Expand", []string{b.Op("Unsqueeze", []string{bias, b.ConstInt64s(1)}), per}), b.ConstInt64s(-1)})
	}
	if op != "LayerNormalization" {
		scale = b.Op("Reshape", []string{scale, b.ConstInt64s(affine...)})
		bias = b.Op("Reshape", []string{bias, b.ConstInt64s(affine...)})
	}
	if bias == "" {
		b.NodeNamed("Mul", []string{y, scale}, n.Output[:1])
		return nil
	}
	b.NodeNamed("Add", []string{b.Op("Mul", []string{y, scale}), bias}, n.Output[:1])
	return nil
}

// padAxes rewrites an opset-18 Pad with an axes input into full pads.
func padAxes(b *Builder, n *pb.NodeProto, types map[string]ValueType, consts map[string][]int64) error {
	x, ok := types[n.Input[0]]
	axes, okA := consts[n.Input[3]]
	pads, okP := consts[n.Input[1]]
	if !ok || !okA || !okP || len(pads) != 2*len(axes) {
		return fmt.Errorf("the opset-18 axes input needs constant axes and pads")
	}
	r := len(x.Dims)
	full := make([]int64, 2*r)
	for i, a := range axes {
		ax, err := normAxis(a, r)
		if err != nil {
			return err
		}
		full[ax], full[ax+r] = pads[i], pads[i+len(axes)]
	}
	n.Input[1] = b.ConstInt64s(full...)
	n.Input = n.Input[:3]
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

// FreeBatch makes the batch dimension of a graph exported with a fixed batch
// size symbolic, where that is sound: input is the image input, whose first
// dimension is batch > 0. Reshape nodes whose constant target starts with
// batch while their data's first dimension is the batch copy it instead
// (target 0). It returns the rewritten nodes, or an error naming the node
// that still depends on the fixed size; g is unchanged on error.
func FreeBatch(g *pb.GraphProto, input string, dims []int64) ([]string, error) {
	batch := dims[0]
	free := append([]int64{-1}, dims[1:]...)
	types, consts, err := InferValues(g, map[string][]int64{input: dims})
	if err != nil {
		return nil, err
	}
	b := Wrap(g)
	nInit := len(g.Initializer)
	type edit struct {
		n         *pb.NodeProto
		shape     string
		allowzero *pb.AttributeProto // nil when absent
	}
	var edits []edit
	for _, n := range g.Node {
		if n.GetOpType() != "Reshape" || len(n.Input) < 2 {
			continue
		}
		x, target := types[n.Input[0]], consts[n.Input[1]]
		if AttrInt(n, "allowzero", 0) != 0 && slices.Contains(target, 0) {
			continue
		}
		if len(target) > 0 && target[0] == batch && len(x.Dims) > 0 && x.Dims[0] == batch {
			edits = append(edits, edit{n, n.Input[1], Attr(n, "allowzero")})
		}
	}
	var rewritten []string
	for _, e := range edits {
		t := append([]int64{0}, consts[e.shape][1:]...)
		e.n.Input[1] = b.ConstInt64s(t...)
		// The dynamo exporter writes allowzero=1; with no 0 in the
		// target it means the same as allowzero=0, which the copied
		// batch needs.
		if e.allowzero != nil {
			e.allowzero.I = proto.Int64(0)
		}
		rewritten = append(rewritten, e.n.GetName())
	}
	undo := func() {
		for _, e := range edits {
			e.n.Input[1] = e.shape
			if e.allowzero != nil {
				e.allowzero.I = proto.Int64(1)
			}
		}
		g.Initializer = g.Initializer[:nInit]
	}
	st, err := inferGraph(g, map[string][]int64{input: free})
	if err != nil {
		undo()
		return nil, fmt.Errorf("the batch size %d is fixed in the graph: %w", batch, err)
	}
	sym := st.types[input].Dims[0]
	for _, e := range edits {
		if d := st.types[e.n.Input[0]].Dims; len(d) == 0 || d[0] != sym {
			undo()
			return nil, fmt.Errorf("the batch size %d is fixed in the graph: node %q (Reshape) reshapes to it, and its input's first dimension is not the batch", batch, e.n.GetName())
		}
	}
	for _, o := range g.Output {
		if d := st.types[o.GetName()].Dims; len(d) == 0 || d[0] != sym {
			undo()
			return nil, fmt.Errorf("the batch size %d is fixed in the graph: output %q has dims %v, not batch-first", batch, o.GetName(), publicType(st.types[o.GetName()]).Dims)
		}
	}
	return rewritten, nil
}
