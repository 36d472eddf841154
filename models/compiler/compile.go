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

// TrainGraph is one optimizer step: inputs Params, States, Stats (in that order),
// then images, labels, lr and the Dropouts' uniform draws; outputs the Next of each of them, then loss and
// correct.
type TrainGraph struct {
	Model  *pb.ModelProto
	Params []Tensor // trained parameters (float32)
	// States is the optimizer state: SGD's momentum buffers "p.mom" (when
	// Momentum > 0), or Adam's "p.exp_avg" for every param, then
	// "p.exp_avg_sq", then the step count StepCount ([1]).
	States []Tensor
	Stats  []Tensor // BatchNorm running means and variances
	// Frozen lists the parameters left as initializers (Options.Freeze).
	Frozen []string
	// ImageDims is the images input's shape (-1 for the batch).
	ImageDims []int64
	// Dropouts are the Dropout nodes trained with masks (maskDropouts).
	Dropouts []Dropout
	// Provenance labels Model.Graph.Node[i] with the part of the
	// compiler that emitted it (provenance.go); it is not in the graph.
	Provenance []string
	gradOnly   bool
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
	in = append(in, Images, Labels, LR)
	for _, d := range t.Dropouts {
		in = append(in, d.Input)
	}
	return in
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

// InPlace reports which optimizer states and running statistics (States,
// Stats) may have their next value written over their own buffer: every
// node reading the tensor, directly or through a view of it (aliasOps, which
// ORT runs on the same buffer), is an ancestor of the node writing its next
// value, and that node does not read it, so the data dependencies alone
// order all reads before the write, in any execution order. SGD's momentum,
// Adam's second moment and step count, and BatchNorm's running statistics
// qualify; Adam's first moment does not (its update reads it). Parameters
// are never in place, so that a step with a NaN loss leaves them as they
// were; nor is anything in a graph with subgraphs (If, Loop), whose reads
// this does not follow.
func (t *TrainGraph) InPlace() map[string]bool {
	g := t.Model.GetGraph()
	producer := map[string]int{}
	readers := map[string][]int{}
	for i, n := range g.Node {
		for _, a := range n.Attribute {
			if a.G != nil || len(a.Graphs) > 0 {
				return map[string]bool{}
			}
		}
		for _, o := range n.Output {
			producer[o] = i
		}
		for _, in := range n.Input {
			readers[in] = append(readers[in], i)
		}
	}
	// readsOf lists the nodes reading name or a view of it.
	readsOf := func(name string) []int {
		var out []int
		stack := []string{name}
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, r := range readers[v] {
				out = append(out, r)
				if n := g.Node[r]; aliasOps[n.GetOpType()] && len(n.Input) > 0 && n.Input[0] == v {
					stack = append(stack, n.Output[0])
				}
			}
		}
		return out
	}
	ancestors := func(w int) map[int]bool {
		seen := map[int]bool{}
		stack := []int{w}
		for len(stack) > 0 {
			n := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			for _, in := range g.Node[n].Input {
				if p, ok := producer[in]; ok && !seen[p] {
					seen[p] = true
					stack = append(stack, p)
				}
			}
		}
		return seen
	}
	out := map[string]bool{}
	for _, group := range [][]Tensor{t.States, t.Stats} {
		for _, x := range group {
			w, ok := producer[x.Next]
			if !ok {
				continue
			}
			anc := ancestors(w)
			safe := true
			for _, r := range readsOf(x.Name) {
				if r == w || !anc[r] {
					safe = false
					break
				}
			}
			if safe {
				out[x.Name] = true
			}
		}
	}
	return out
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

var reservedNames = []string{Images, Labels, LR, Loss, Correct, Logits, StepCount, StepCount + ".next"}

func prepare(forward *pb.ModelProto) (*prepared, error) {
	if forward == nil || forward.Graph == nil {
		return nil, fmt.Errorf("%w: no graph", ErrUnsupported)
	}
	m := proto.Clone(forward).(*pb.ModelProto)
	g := m.Graph
	opset := graph.ModelOpset(m)
	if opset < graph.MinOpset || opset > graph.MaxOpset {
		return nil, fmt.Errorf("%w: default-domain opset %d (want %d to %d)", ErrUnsupported, opset, graph.MinOpset, graph.MaxOpset)
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
	// Parameters the exporter tied by value train separately, as in PyTorch.
	graph.Untie(g)
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
	if len(imgDims) > 0 && imgDims[0] > 0 {
		// Exported with a fixed batch: free it where that is sound.
		if _, err := graph.FreeBatch(g, inputs[0].GetName(), imgDims); err != nil {
			return nil, fmt.Errorf("%w: %w\n---> HINT: %s", ErrUnsupported, err, graph.ReexportHint)
		}
	}
	if len(imgDims) > 0 {
		p.imageDims = append([]int64{-1}, imgDims[1:]...)
	}
	// Move clashing names out of the way, then name the input "images".
	used := map[string]bool{}
	forEachName(g, func(s string) string { used[s] = true; return s })
	ren := map[string]string{}
	for _, t := range g.Initializer {
		// A renamed initializer would train under another name than the
		// model's, and Export and InitFrom match the model's names.
		if slices.Contains(reservedNames, t.GetName()) {
			return nil, fmt.Errorf("%w: initializer %q has a name the training graph reserves (%s)\n---> HINT: rename that parameter or buffer in the model and export it again",
				ErrUnsupported, t.GetName(), strings.Join(reservedNames, ", "))
		}
	}
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
	if err := graph.Normalize(g, opset, map[string][]int64{Images: p.imageDims}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnsupported, err)
	}
	p.init = map[string]*pb.TensorProto{}
	for _, t := range g.Initializer {
		p.init[t.GetName()] = t
	}
	info, err := shapesOf(g, map[string][]int64{Images: p.imageDims})
	if err != nil {
		return nil, fmt.Errorf("compile: %w", err)
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
		for _, suffix := range allStateSuffixes {
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
	for _, g := range opts.Groups {
		if one := (Options{Freeze: []string{g.Match}}); !slices.ContainsFunc(trained, one.frozen) {
			return nil, fmt.Errorf("compile options: param group %q matches no trained parameter (parameters: %s)", g.Match, strings.Join(trained, ", "))
		}
	}
	g := p.g
	b := graph.Wrap(g)
	for _, n := range reservedNames {
		b.Reserve(n)
	}
	for _, n := range p.params {
		for _, suffix := range allStateSuffixes {
			b.Reserve(n + suffix)
		}
	}

	for _, n := range p.stats {
		b.Reserve(n + ".next")
	}
	var dropouts []Dropout
	if !gradOnly {
		if dropouts, err = maskDropouts(p, b); err != nil {
			return nil, err
		}
	}
	nodes := g.Node
	g.Node = nil
	e := newEmitter(b, p.info)
	e.train = true
	e.weightGrad = opts.WeightGrad
	needed := activity(nodes, trained, p.logits, p.info)
	saved, err := forwardPass(e, nodes, needed)
	if err != nil {
		return nil, err
	}
	from := len(b.G.Node)
	dlogits := lossOut(e, p.logits, Labels, opts.LabelSmoothing, needed[p.logits])
	e.label(from, ProvLoss)
	grads := map[string]string{}
	if dlogits != "" {
		grads, err = backward(e, nodes, saved, needed, p.logits, dlogits, trained, nil)
		if err != nil {
			return nil, err
		}
	}
	next := ".next"
	if gradOnly {
		next = ".grad"
	}
	tg := &TrainGraph{Params: tensorsOf(p, trained, next), Stats: tensorsOf(p, p.stats, ".next"), Frozen: frozen, ImageDims: p.imageDims, Dropouts: dropouts}
	from = len(b.G.Node)
	if gradOnly {
		for _, t := range tg.Params {
			if grads[t.Name] == "" {
				b.NodeNamed("Mul", []string{t.Name, e.f32(0)}, []string{t.Next})
			} else {
				b.NodeNamed("Identity", []string{grads[t.Name]}, []string{t.Next})
			}
		}
		e.label(from, ProvGradOut)
	} else {
		tg.States = optimizerStates(opts, tg.Params)
		optimize(e, opts, tg.Params, grads)
		e.label(from, "opt:"+opts.Optimizer.String())
	}
	// Running statistics without an update (BatchNorm nodes not executed in
	// training form) pass through.
	statNext := map[string]bool{}
	for _, n := range b.G.Node {
		for _, o := range n.Output {
			statNext[o] = true
		}
	}
	from = len(b.G.Node)
	for _, t := range tg.Stats {
		if !statNext[t.Next] {
			b.NodeNamed("Identity", []string{t.Name}, []string{t.Next})
		}
	}
	e.label(from, ProvStats)
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
	for _, d := range dropouts {
		extra = append(extra, graph.ValueInfo(d.Input, graph.Float, d.Dims...))
	}
	tg.Model = finish(p, g, ins, extra, outs)
	tg.Provenance = e.provenanceOf(tg.Model.Graph)
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

func recoverInternal(err *error) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("%w: %v (please report with the model)", ErrInternal, r)
	}
}
