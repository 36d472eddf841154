package compiler

import (
	"fmt"
	"slices"
	"strings"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

// Names of the fixed inputs and outputs of compiled graphs.
const (
	Images  = "images"
	Labels  = "labels"
	LR      = "lr"
	Loss    = "loss"
	Correct = "correct"
	Logits  = "logits"
)

// Tensor names one parameter, optimizer state or running statistic of a
// compiled graph: the input Name, the output Next carrying its updated value
// (empty in eval graphs) and its static dimensions.
type Tensor struct {
	Name string
	Next string
	Dims []int64
}

// TrainGraph is one SGD step: inputs Params, States, Stats (in that order),
// then images, labels and lr; outputs the Next of each of them, then loss and
// correct.
type TrainGraph struct {
	Model  *pb.ModelProto
	Params []Tensor // trained parameters (float32)
	States []Tensor // momentum buffers "p.mom", one per param when Momentum > 0
	Stats  []Tensor // BatchNorm running means and variances
	// Frozen lists the parameters left as initializers (Options.Freeze).
	Frozen []string
	// ImageDims is the images input's shape (-1 for the batch).
	ImageDims []int64
	gradOnly  bool
}

// InputNames returns the graph's input names in order.
func (t *TrainGraph) InputNames() []string {
	var in []string
	for _, l := range [][]Tensor{t.Params, t.States, t.Stats} {
		for _, x := range l {
			in = append(in, x.Name)
		}
	}
	if t.gradOnly {
		return append(in, Images, Labels)
	}
	return append(in, Images, Labels, LR)
}

// OutputNames returns the graph's output names in order.
func (t *TrainGraph) OutputNames() []string {
	var out []string
	for _, l := range [][]Tensor{t.Params, t.States, t.Stats} {
		for _, x := range l {
			out = append(out, x.Next)
		}
	}
	return append(out, Loss, Correct)
}

// EvalGraph computes loss, correct and logits with BatchNorm in inference
// form: inputs every parameter (trained or not) and running statistic, then
// images and labels.
type EvalGraph struct {
	Model  *pb.ModelProto
	Params []Tensor
	Stats  []Tensor
	// Inputs is Params then Stats: the state inputs before images, labels.
	Inputs    []Tensor
	ImageDims []int64
}

// InputNames returns the graph's input names in order.
func (g *EvalGraph) InputNames() []string {
	var in []string
	for _, x := range g.Inputs {
		in = append(in, x.Name)
	}
	return append(in, Images, Labels)
}

// OutputNames returns the graph's output names in order.
func (g *EvalGraph) OutputNames() []string { return []string{Loss, Correct, Logits} }

// prepared is a forward graph checked and normalised for compilation.
type prepared struct {
	g         *pb.GraphProto
	info      map[string]*vinfo
	logits    string
	imageDims []int64
	params    []string // float initializers used as parameters, in initializer order
	stats     []string // BatchNorm running statistics
	init      map[string]*pb.TensorProto
}

var reservedNames = []string{Images, Labels, LR, Loss, Correct, Logits}

func prepare(forward *pb.ModelProto) (*prepared, error) {
	if forward == nil || forward.Graph == nil {
		return nil, fmt.Errorf("%w: no graph", ErrUnsupported)
	}
	m := proto.Clone(forward).(*pb.ModelProto)
	g := m.Graph
	opset := graph.ModelOpset(m)
	if opset < 13 || opset > 20 {
		return nil, fmt.Errorf("%w: default-domain opset %d (want 13 to 20)", ErrUnsupported, opset)
	}
	for _, o := range m.OpsetImport {
		if d := o.GetDomain(); d != "" && d != "ai.onnx" {
			for _, n := range g.Node {
				if n.GetDomain() == d {
					return nil, fmt.Errorf("%w: node %q (%s) is in domain %q; only standard ONNX ops are supported", ErrUnsupported, n.GetName(), n.GetOpType(), d)
				}
			}
		}
	}
	for _, n := range g.Node {
		if d := n.GetDomain(); d != "" && d != "ai.onnx" {
			return nil, fmt.Errorf("%w: node %q (%s) is in domain %q; only standard ONNX ops are supported", ErrUnsupported, n.GetName(), n.GetOpType(), d)
		}
	}
	p := &prepared{g: g, init: map[string]*pb.TensorProto{}}
	for _, t := range g.Initializer {
		p.init[t.GetName()] = t
	}
	var inputs []*pb.ValueInfoProto
	for _, in := range g.Input {
		if p.init[in.GetName()] == nil {
			inputs = append(inputs, in)
		}
	}
	if len(inputs) != 1 {
		return nil, fmt.Errorf("%w: %d graph inputs besides initializers, want exactly one (the images)", ErrUnsupported, len(inputs))
	}
	if len(g.Output) < 1 {
		return nil, fmt.Errorf("%w: no graph output", ErrUnsupported)
	}
	imgDims, et := graph.Dims(inputs[0])
	if et != graph.Float {
		return nil, fmt.Errorf("%w: input %q is %v, want float32 images", ErrUnsupported, inputs[0].GetName(), et)
	}
	p.imageDims = imgDims
	if len(imgDims) > 0 {
		p.imageDims[0] = -1
	}
	// Move clashing names out of the way, then name the input "images".
	used := map[string]bool{}
	forEachName(g, func(s string) string { used[s] = true; return s })
	ren := map[string]string{}
	for _, r := range reservedNames {
		if used[r] && r != inputs[0].GetName() {
			k := 1
			for used[fmt.Sprintf("%s_%d", r, k)] {
				k++
			}
			ren[r] = fmt.Sprintf("%s_%d", r, k)
			used[ren[r]] = true
		}
	}
	if inputs[0].GetName() != Images {
		ren[inputs[0].GetName()] = Images
	}
	forEachName(g, func(s string) string {
		if r, ok := ren[s]; ok {
			return r
		}
		return s
	})
	// Drop initializers from the input list (IR < 4 style) and other outputs.
	g.Input = []*pb.ValueInfoProto{graph.ValueInfo(Images, graph.Float, p.imageDims...)}
	p.logits = g.Output[0].GetName()
	g.Output = g.Output[:1]
	p.init = map[string]*pb.TensorProto{}
	for _, t := range g.Initializer {
		p.init[t.GetName()] = t
	}
	if err := normalizeOps(g, opset, p.init); err != nil {
		return nil, err
	}
	info, err := shapesOf(g, map[string][]int64{Images: p.imageDims})
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
	}
	changed, err := explicitPads(g, info)
	if err != nil {
		return nil, err
	}
	if changed {
		if info, err = shapesOf(g, map[string][]int64{Images: p.imageDims}); err != nil {
			return nil, fmt.Errorf("compile: %w", err)
		}
	}
	p.info = info
	if v := info[p.logits]; v == nil || len(v.dims) != 2 {
		return nil, fmt.Errorf("%w: output %q must be N×classes logits (shape %v)", ErrUnsupported, p.logits, dimsOf(info, p.logits))
	}
	// Running statistics, then parameters.
	isStat := map[string]bool{}
	usedIn := map[string]bool{}
	for _, n := range g.Node {
		for _, in := range n.Input {
			usedIn[in] = true
		}
		if n.GetOpType() != "BatchNormalization" {
			continue
		}
		if len(n.Input) != 5 {
			return nil, fmt.Errorf("%w: node %q (BatchNormalization) has %d inputs, want 5", ErrUnsupported, n.GetName(), len(n.Input))
		}
		for i := 1; i < len(n.Output); i++ {
			if n.Output[i] != "" {
				return nil, fmt.Errorf("%w: node %q (BatchNormalization) is in training form; export the model in eval mode", ErrUnsupported, n.GetName())
			}
		}
		for _, s := range n.Input[3:5] {
			t := p.init[s]
			if t == nil || pb.TensorProto_DataType(t.GetDataType()) != graph.Float {
				return nil, fmt.Errorf("%w: node %q (BatchNormalization): running statistic %q is not a float initializer", ErrUnsupported, n.GetName(), s)
			}
			if !isStat[s] {
				isStat[s] = true
				p.stats = append(p.stats, s)
			}
		}
	}
	for _, t := range g.Initializer {
		name := t.GetName()
		if isStat[name] || !usedIn[name] || pb.TensorProto_DataType(t.GetDataType()) != graph.Float || len(t.Dims) == 0 {
			continue
		}
		p.params = append(p.params, name)
	}
	for _, s := range p.params {
		for _, suffix := range []string{".next", ".mom", ".mom.next"} {
			if used[s+suffix] {
				return nil, fmt.Errorf("%w: value name %q clashes with the compiler's names for parameter %q", ErrUnsupported, s+suffix, s)
			}
		}
	}
	return p, nil
}

// forEachName rewrites every value name in g through f.
func forEachName(g *pb.GraphProto, f func(string) string) {
	for _, v := range slices.Concat(g.Input, g.Output, g.ValueInfo) {
		n := f(v.GetName())
		v.Name = &n
	}
	for _, t := range g.Initializer {
		n := f(t.GetName())
		t.Name = &n
	}
	for _, n := range g.Node {
		for i := range n.Input {
			if n.Input[i] != "" {
				n.Input[i] = f(n.Input[i])
			}
		}
		for i := range n.Output {
			if n.Output[i] != "" {
				n.Output[i] = f(n.Output[i])
			}
		}
	}
}

// finish turns the chosen initializers into graph inputs, declares outputs,
// prunes dead nodes and initializers and wraps the graph in a model.
func finish(p *prepared, g *pb.GraphProto, inputs []Tensor, extraIn []*pb.ValueInfoProto, outputs []*pb.ValueInfoProto) *pb.ModelProto {
	asInput := map[string]bool{}
	g.Input = nil
	for _, t := range inputs {
		asInput[t.Name] = true
		g.Input = append(g.Input, graph.ValueInfo(t.Name, graph.Float, t.Dims...))
	}
	g.Input = append(g.Input, extraIn...)
	g.Output = outputs
	g.ValueInfo = nil
	// Prune: keep nodes some output depends on.
	live := map[string]bool{}
	for _, o := range outputs {
		live[o.GetName()] = true
	}
	keep := make([]bool, len(g.Node))
	for i := len(g.Node) - 1; i >= 0; i-- {
		n := g.Node[i]
		for _, o := range n.Output {
			if live[o] {
				keep[i] = true
			}
		}
		if keep[i] {
			for _, in := range n.Input {
				live[in] = true
			}
			for _, a := range n.Attribute {
				if a.G != nil || len(a.Graphs) > 0 {
					markSubgraphInputs(a, live)
				}
			}
		}
	}
	var nodes []*pb.NodeProto
	for i, n := range g.Node {
		if keep[i] {
			nodes = append(nodes, n)
		}
	}
	g.Node = nodes
	var inits []*pb.TensorProto
	for _, t := range g.Initializer {
		if live[t.GetName()] && !asInput[t.GetName()] {
			inits = append(inits, t)
		}
	}
	g.Initializer = inits
	return graph.NewModel(g, graph.Opset)
}

func markSubgraphInputs(a *pb.AttributeProto, live map[string]bool) {
	gs := append([]*pb.GraphProto{}, a.Graphs...)
	if a.G != nil {
		gs = append(gs, a.G)
	}
	for _, sg := range gs {
		for _, n := range sg.Node {
			for _, in := range n.Input {
				live[in] = true
			}
		}
	}
}

func tensorsOf(p *prepared, names []string, next string) []Tensor {
	out := make([]Tensor, len(names))
	for i, n := range names {
		out[i] = Tensor{Name: n, Dims: append([]int64{}, p.init[n].Dims...)}
		if next != "" {
			out[i].Next = n + next
		}
	}
	return out
}

// CompileEval builds the evaluation graph of forward: BatchNorm in inference
// form on the running statistics, loss (mean cross-entropy without label
// smoothing), correct and logits.
func CompileEval(forward *pb.ModelProto) (eg *EvalGraph, err error) {
	defer recoverInternal(&err)
	p, err := prepare(forward)
	if err != nil {
		return nil, err
	}
	g := p.g
	b := graph.Wrap(g)
	e := newEmitter(b, p.info)
	labels := graph.ValueInfo(Labels, graph.Int64, -1)
	b.Reserve(Labels)
	lossOut(e, p.logits, Labels, 0, false)
	b.NodeNamed("Identity", []string{p.logits}, []string{Logits})
	eg = &EvalGraph{Params: tensorsOf(p, p.params, ""), Stats: tensorsOf(p, p.stats, ""), ImageDims: p.imageDims}
	ins := append(append([]Tensor{}, eg.Params...), eg.Stats...)
	eg.Inputs = ins
	classes := p.info[p.logits].dims[1]
	eg.Model = finish(p, g, ins,
		[]*pb.ValueInfoProto{graph.ValueInfo(Images, graph.Float, p.imageDims...), labels},
		[]*pb.ValueInfoProto{graph.ValueInfo(Loss, graph.Float), graph.ValueInfo(Correct, graph.Int64), graph.ValueInfo(Logits, graph.Float, -1, classes)})
	return eg, nil
}

// CompileTrain builds one SGD training step of forward (see the package
// documentation for the graph's inputs and outputs).
func CompileTrain(forward *pb.ModelProto, opts Options) (*TrainGraph, error) {
	return compileStep(forward, opts, false)
}

// CompileGrad builds the gradient of the training loss, for checks and
// tools: it is the graph CompileTrain builds without the optimizer. Inputs:
// Params, Stats (BatchNorm in training form), images, labels; outputs
// "p.grad" for each parameter (Tensor.Next), the Stats' Next, loss, correct.
// A parameter no gradient reaches gets zeros.
func CompileGrad(forward *pb.ModelProto, opts Options) (*TrainGraph, error) {
	return compileStep(forward, opts, true)
}

func compileStep(forward *pb.ModelProto, opts Options, gradOnly bool) (_ *TrainGraph, err error) {
	defer recoverInternal(&err)
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	p, err := prepare(forward)
	if err != nil {
		return nil, err
	}
	for _, pat := range opts.Freeze {
		if one := (Options{Freeze: []string{pat}}); !slices.ContainsFunc(p.params, one.frozen) {
			return nil, fmt.Errorf("compile options: freeze pattern %q matches no parameter", pat)
		}
	}
	var trained, frozen []string
	for _, n := range p.params {
		if opts.frozen(n) {
			frozen = append(frozen, n)
		} else {
			trained = append(trained, n)
		}
	}
	g := p.g
	nodes := g.Node
	b := graph.Wrap(g)
	for _, n := range reservedNames {
		b.Reserve(n)
	}
	for _, n := range p.params {
		for _, suffix := range []string{".next", ".mom", ".mom.next", ".grad"} {
			b.Reserve(n + suffix)
		}
	}
	for _, n := range p.stats {
		b.Reserve(n + ".next")
	}
	g.Node = nil
	e := newEmitter(b, p.info)
	e.train = true
	e.weightGrad = opts.WeightGrad
	needed := activity(nodes, trained, p.logits, p.info)
	saved, err := forwardPass(e, nodes, needed)
	if err != nil {
		return nil, err
	}
	dlogits := lossOut(e, p.logits, Labels, opts.LabelSmoothing, needed[p.logits])
	grads := map[string]string{}
	if dlogits != "" {
		grads, err = backward(e, nodes, saved, needed, p.logits, dlogits, trained)
		if err != nil {
			return nil, err
		}
	}
	next := ".next"
	if gradOnly {
		next = ".grad"
	}
	tg := &TrainGraph{Params: tensorsOf(p, trained, next), Stats: tensorsOf(p, p.stats, ".next"), Frozen: frozen, ImageDims: p.imageDims}
	if opts.Momentum != 0 && !gradOnly {
		tg.States = make([]Tensor, len(tg.Params))
		for i, t := range tg.Params {
			tg.States[i] = Tensor{Name: t.Name + ".mom", Next: t.Name + ".mom.next", Dims: t.Dims}
		}
	}
	for i, t := range tg.Params {
		switch {
		case gradOnly && grads[t.Name] == "":
			b.NodeNamed("Mul", []string{t.Name, e.f32(0)}, []string{t.Next})
		case gradOnly:
			b.NodeNamed("Identity", []string{grads[t.Name]}, []string{t.Next})
		default:
			mom := ""
			if tg.States != nil {
				mom = tg.States[i].Name
			}
			sgdUpdate(e, opts, t, mom, grads[t.Name])
		}
	}
	// Running statistics without an update (BatchNorm nodes not executed in
	// training form) pass through.
	statNext := map[string]bool{}
	for _, n := range b.G.Node {
		for _, o := range n.Output {
			statNext[o] = true
		}
	}
	for _, t := range tg.Stats {
		if !statNext[t.Next] {
			b.NodeNamed("Identity", []string{t.Name}, []string{t.Next})
		}
	}
	ins := slices.Concat(tg.Params, tg.States, tg.Stats)
	var outs []*pb.ValueInfoProto
	for _, t := range ins {
		outs = append(outs, graph.ValueInfo(t.Next, graph.Float, t.Dims...))
	}
	outs = append(outs, graph.ValueInfo(Loss, graph.Float), graph.ValueInfo(Correct, graph.Int64))
	extra := []*pb.ValueInfoProto{
		graph.ValueInfo(Images, graph.Float, p.imageDims...),
		graph.ValueInfo(Labels, graph.Int64, -1),
	}
	if !gradOnly {
		extra = append(extra, graph.ValueInfo(LR, graph.Float))
	}
	tg.Model = finish(p, g, ins, extra, outs)
	tg.gradOnly = gradOnly
	return tg, nil
}

// Parameters lists the initializers CompileTrain would treat as parameters
// of forward (float32 initializers of rank >= 1 that some node reads, other
// than BatchNorm running statistics), for tools that check Freeze patterns.
func Parameters(forward *pb.ModelProto) ([]string, error) {
	p, err := prepare(forward)
	if err != nil {
		return nil, err
	}
	return p.params, nil
}

// normalizeOps rewrites nodes from opsets 18 to 20 into their opset-17
// spelling (reduce axes as attributes, Split without num_outputs), the opset
// compiled graphs declare.
func normalizeOps(g *pb.GraphProto, opset int64, init map[string]*pb.TensorProto) error {
	if opset <= 17 {
		return nil
	}
	consts := map[string][]int64{}
	for name, t := range init {
		if pb.TensorProto_DataType(t.GetDataType()) == graph.Int64 {
			if v, err := graph.Int64s(t); err == nil {
				consts[name] = v
			}
		}
	}
	for _, n := range g.Node {
		if n.GetOpType() == "Constant" && len(n.Output) == 1 {
			if a := graph.Attr(n, "value"); a != nil && a.T != nil && pb.TensorProto_DataType(a.T.GetDataType()) == graph.Int64 {
				if v, err := graph.Int64s(a.T); err == nil {
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
					return fmt.Errorf("%w: node %q (%s): axes must be a constant", ErrUnsupported, n.GetName(), op)
				}
				n.Input = n.Input[:1]
				n.Attribute = append(n.Attribute, graph.Ints("axes", axes...))
			}
		case op == "Split":
			if a := graph.Attr(n, "num_outputs"); a != nil {
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
				// opset 13-17 splits evenly when sizes divide; the uneven
				// last chunk of opset 18 is resolved by shape inference.
				split, err := splitSizes(g, n, init)
				if err != nil {
					return err
				}
				if split != "" {
					n.Input = append(n.Input[:1], split)
				}
			}
		case op == "Pad" && len(n.Input) > 3 && n.Input[3] != "":
			// Pad with axes: shape inference expands them; keep as is
			// only if the axes cover every dim in order.
			return fmt.Errorf("%w: node %q (Pad) uses the opset-18 axes input", ErrUnsupported, n.GetName())
		}
	}
	return nil
}

func splitSizes(g *pb.GraphProto, n *pb.NodeProto, init map[string]*pb.TensorProto) (string, error) {
	info, err := inferShapes(&pb.GraphProto{Node: g.Node, Initializer: g.Initializer, Input: g.Input}, nil)
	if err != nil {
		return "", err
	}
	x := info[n.Input[0]]
	if x == nil {
		return "", fmt.Errorf("%w: node %q (Split): input shape unknown", ErrShape, n.GetName())
	}
	axis := normAxis(graph.AttrInt(n, "axis", 0), len(x.dims))
	d := x.dims[axis]
	k := int64(len(n.Output))
	if d < 0 {
		return "", fmt.Errorf("%w: node %q (Split): split dimension unknown", ErrShape, n.GetName())
	}
	c := (d + k - 1) / k
	var sizes []int64
	for i := range k {
		sizes = append(sizes, max(0, min(c, d-i*c)))
	}
	name := n.GetName() + "_split_sizes"
	g.Initializer = append(g.Initializer, graph.Int64Tensor(name, []int64{k}, sizes))
	init[name] = g.Initializer[len(g.Initializer)-1]
	return name, nil
}

// explicitPads rewrites auto_pad of Conv, ConvTranspose and pooling nodes
// into explicit pads, and asymmetric Conv pads into a Pad node before a
// symmetrically padded Conv, so compiled graphs carry explicit symmetric
// pads (some providers reject the other forms).
func explicitPads(g *pb.GraphProto, info map[string]*vinfo) (bool, error) {
	b := graph.Wrap(g)
	var nodes []*pb.NodeProto
	changed := false
	for _, n := range g.Node {
		op := n.GetOpType()
		if op != "Conv" && op != "ConvTranspose" && op != "MaxPool" && op != "AveragePool" {
			nodes = append(nodes, n)
			continue
		}
		x := info[n.Input[0]]
		if x == nil || len(x.dims) < 3 {
			nodes = append(nodes, n)
			continue
		}
		sp := x.dims[2:]
		r := len(sp)
		var kernel []int64
		if op == "Conv" || op == "ConvTranspose" {
			w := info[n.Input[1]]
			if w == nil || len(w.dims) != r+2 {
				nodes = append(nodes, n)
				continue
			}
			kernel = graph.AttrInts(n, "kernel_shape", w.dims[2:])
		} else {
			kernel = graph.AttrInts(n, "kernel_shape", nil)
		}
		var pb0, pe0 []int64
		if op == "ConvTranspose" {
			if graph.AttrString(n, "auto_pad", "NOTSET") == "NOTSET" && graph.Attr(n, "output_shape") == nil {
				nodes = append(nodes, n)
				continue
			}
			t, err := convTransposeGeom(n, sp, kernel)
			if err != nil {
				return false, fmt.Errorf("compile: node %q (%s): %w", n.GetName(), op, err)
			}
			pb0, pe0 = t.pb, t.pe
		} else {
			w, err := windowOf(n, sp, kernel)
			if err != nil {
				return false, fmt.Errorf("compile: node %q (%s): %w", n.GetName(), op, err)
			}
			pb0, pe0 = w.pb, w.pe
		}
		asym := false
		for i := range r {
			asym = asym || pb0[i] != pe0[i]
		}
		auto := graph.AttrString(n, "auto_pad", "NOTSET") != "NOTSET" || graph.Attr(n, "output_shape") != nil
		if !auto && !(asym && op == "Conv") {
			nodes = append(nodes, n)
			continue
		}
		changed = true
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
			nodes = append(nodes, &pb.NodeProto{OpType: ptr("Pad"), Name: &pname, Input: []string{n.Input[0], b.ConstInt64s(pads...)}, Output: []string{padded}})
			n.Input[0] = padded
			pb0, pe0 = sym[:r], sym[r:]
		}
		n.Attribute = append(attrs, graph.Ints("pads", append(append([]int64{}, pb0...), pe0...)...))
		nodes = append(nodes, n)
	}
	g.Node = nodes
	return changed, nil
}

func ptr[T any](v T) *T { return &v }

func recoverInternal(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v (please report with the model)", ErrInternal, r)
	}
}
