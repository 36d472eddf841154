package compiler

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// FisherGraph computes, for each parameter tensor, the squared norm of the
// gradient of log p(label | image) — the diagonal-Fisher contributions
// whose sum over examples, divided by their count, estimates the trace of
// the Fisher information of that tensor when the labels are sampled from
// the model's own predictive distribution (the caller samples them).
//
// Inputs: Params, Stats (BatchNorm in inference form on the running
// statistics), images, labels. Outputs: for each parameter Tensor.Next
// ("p.sqnorm"). With PerExample the outputs have shape [N], one squared
// norm per example, from a single pass. Without it (the forward graph has a
// parameter use no per-example rule covers) they have shape [1] and hold
// the squared norm of the gradient summed over the batch: the caller must
// then run batches of one image to get per-example values.
type FisherGraph struct {
	Model      *pb.ModelProto
	Params     []Tensor
	Stats      []Tensor
	ImageDims  []int64
	PerExample bool
}

// InputNames returns the graph's input names in order.
func (f *FisherGraph) InputNames() []string {
	var in []string
	for _, l := range [][]Tensor{f.Params, f.Stats} {
		for _, x := range l {
			in = append(in, x.Name)
		}
	}
	return append(in, Images, Labels)
}

// OutputNames returns the graph's output names in order.
func (f *FisherGraph) OutputNames() []string {
	var out []string
	for _, x := range f.Params {
		out = append(out, x.Next)
	}
	return out
}

// CompileFisher builds the Fisher graph of forward (see FisherGraph): the
// per-example form when every parameter use has a per-example rule
// (peRules: Conv with group 1, Gemm, 2-D MatMul, the broadcasting
// elementwise ops, inference BatchNormalization), the batch-of-one form
// otherwise.
func CompileFisher(forward *pb.ModelProto) (*FisherGraph, error) {
	f, err := compileFisher(forward, true)
	if errors.Is(err, ErrNoRule) && f == nil {
		if g, err2 := compileFisher(forward, false); err2 == nil {
			return g, nil
		}
	}
	return f, err
}

// CompileFisherBatched is CompileFisher forced into the batch-of-one form
// (outputs [1]), for comparisons and for graphs the per-example rules do
// not cover.
func CompileFisherBatched(forward *pb.ModelProto) (*FisherGraph, error) {
	return compileFisher(forward, false)
}

func compileFisher(forward *pb.ModelProto, perExample bool) (_ *FisherGraph, err error) {
	defer recoverInternal(&err)
	p, err := prepare(forward)
	if err != nil {
		return nil, err
	}
	g := p.g
	nodes := g.Node
	b := graph.Wrap(g)
	for _, n := range reservedNames {
		b.Reserve(n)
	}
	for _, n := range p.params {
		b.Reserve(n + ".sqnorm")
	}
	g.Node = nil
	e := newEmitter(b, p.info)
	var tp *tap
	if perExample {
		tp = &tap{values: map[string]bool{}, bwd: perExampleNorms}
		for _, n := range p.params {
			tp.values[n] = true
		}
	}
	needed := activity(nodes, p.params, p.logits, p.info)
	saved, err := forwardPass(e, nodes, needed)
	if err != nil {
		return nil, err
	}
	grads := map[string]string{}
	if needed[p.logits] {
		// d(-log p(label))/dlogits = softmax - onehot, per example.
		logp := e.op("LogSoftmax", []string{p.logits}, graph.Int("axis", 1))
		depth := e.op("Slice", []string{e.shape(p.logits), e.i64(1), e.i64(2)})
		values := e.b.Fresh("onehot_values")
		e.b.G.Initializer = append(e.b.G.Initializer, graph.FloatTensor(values, []int64{2}, []float32{0, 1}))
		target := e.op("OneHot", []string{Labels, depth, values}, graph.Int("axis", -1))
		seed := e.sub(e.op("Exp", []string{logp}), target)
		grads, err = backward(e, nodes, saved, needed, p.logits, seed, p.params, tp)
		if err != nil {
			return nil, err
		}
	}
	fg := &FisherGraph{Params: tensorsOf(p, p.params, ".sqnorm"), Stats: tensorsOf(p, p.stats, ""), ImageDims: p.imageDims, PerExample: perExample}
	var outs []*pb.ValueInfoProto
	for _, t := range fg.Params {
		gr := grads[t.Name]
		switch {
		case gr == "":
			// No gradient reaches t: zeros, one per example.
			b.NodeNamed("Mul", []string{e.op("Cast", []string{e.op("Shape", []string{Labels})}, graph.Int("to", int64(graph.Float))), e.f32(0)}, []string{t.Next})
		case perExample:
			b.NodeNamed("Identity", []string{gr}, []string{t.Next})
		default:
			b.NodeNamed("ReduceSumSquare", []string{e.reshape(gr, e.i64(1, -1))}, []string{t.Next}, graph.Ints("axes", 1), graph.Int("keepdims", 0))
		}
		n := int64(-1)
		if !perExample {
			n = 1
		}
		outs = append(outs, graph.ValueInfo(t.Next, graph.Float, n))
	}
	ins := slices.Concat(fg.Params, fg.Stats)
	fg.Model = finish(p, g, ins, []*pb.ValueInfoProto{
		graph.ValueInfo(Images, graph.Float, p.imageDims...),
		graph.ValueInfo(Labels, graph.Int64, -1),
	}, outs)
	return fg, nil
}

// The per-example transformation: backward (autodiff.go) runs each node's
// ordinary rule without the parameter inputs, which the tap perExampleNorms
// hands to the op's per-example rule. The ordinary rules know nothing of it.

// peRules maps op types to their per-example rules: with c.need marking
// the node's parameter inputs, a rule sets c.dx[i] to each example's
// squared norm of the gradient of input i ([N]), from the node's output
// gradient c.dy, without forming the batch sum. A parameter use whose op
// has no rule, or that its rule refuses, fails with ErrNoRule (then
// CompileFisher falls back to the batch-of-one form). Each op here has a
// Fisher case in harness (TestFisherCasesCoverRules).
var peRules = map[string]func(c *bctx) error{
	"Conv":               convPE,
	"Gemm":               gemmPE,
	"MatMul":             matMulPE,
	"BatchNormalization": bnPE,
	"Add":                broadcastPE,
	"Sub":                broadcastPE,
	"Mul":                broadcastPE,
	"Div":                broadcastPE,
	"Sum":                broadcastPE,
	"Where":              broadcastPE,
	"PRelu":              broadcastPE,
	"Pow":                broadcastPE,
}

// PerExampleOps lists the op types whose parameters the per-example
// Fisher graph covers, sorted.
func PerExampleOps() []string {
	return slices.Sorted(maps.Keys(peRules))
}

// perExampleNorms is the Fisher graph's tap (see tap).
func perExampleNorms(c *bctx) error {
	pe := peRules[c.n.GetOpType()]
	if pe == nil {
		i := slices.Index(c.need, true)
		return fmt.Errorf("%w: no per-example rule for op type %s (parameter %q; see peRules in models/compiler/fisher.go)", ErrNoRule, c.n.GetOpType(), c.in(i))
	}
	return pe(c)
}

// sqnorms is the squared norm of each example's slice of g ([N, ...]).
func sqnorms(e *emitter, g string) string {
	return e.op("ReduceSumSquare", []string{e.reshape(g, e.i64(0, -1))}, graph.Ints("axes", 1), graph.Int("keepdims", 0))
}

func convPE(c *bctx) error {
	if c.need[0] {
		return fmt.Errorf("%w: per-example gradient of a Conv input that is a parameter", ErrNoRule)
	}
	g, err := convGeomOf(c, c.in(0), c.in(1), c.out(0))
	if err != nil {
		return err
	}
	if len(c.n.Input) > 2 && c.need[2] {
		c.dx[2] = sqnorms(c.emitter, c.reduceSum(c.dy[0], spatialAxes(g.spatial), false))
	}
	if c.need[1] {
		return convWeightPE(c, c.in(0), c.dy[0], g)
	}
	return nil
}

// convWeightPE: for each kernel offset, a batched MatMul
// [N, Ci, P]×[N, P, Co] gives every example's slice of dW; the squared
// norms add up over offsets.
func convWeightPE(c *bctx, x, dy string, g *convGeom) error {
	if g.group != 1 {
		return fmt.Errorf("%w: per-example gradient of a grouped Conv weight", ErrNoRule)
	}
	dyt := c.transpose(c.reshape(dy, c.i64(0, g.w[0], -1)), 0, 2, 1) // [N, P, Co]
	parts := im2colSlices(c.emitter, x, g, func(s string) string {
		m := c.op("MatMul", []string{c.reshape(s, c.i64(0, g.x[1], -1)), dyt}) // [N, Ci, Co]
		return c.op("ReduceSumSquare", []string{m}, graph.Ints("axes", 1, 2), graph.Int("keepdims", 0))
	})
	c.dx[1] = c.sumAll(parts)
	return nil
}

func gemmPE(c *bctx) error {
	if c.need[0] {
		return fmt.Errorf("%w: per-example gradient of Gemm's first operand", ErrNoRule)
	}
	if c.need[1] {
		if graph.AttrInt(c.n, "transA", 0) != 0 {
			return fmt.Errorf("%w: per-example gradient of Gemm weights with transA", ErrNoRule)
		}
		outerPE(c, 1, c.in(0), c.dy[0], graph.AttrFloat(c.n, "alpha", 1))
	}
	if len(c.n.Input) > 2 && c.need[2] {
		return broadcastNorms(c, 2)
	}
	return nil
}

func matMulPE(c *bctx) error {
	if c.need[0] {
		return fmt.Errorf("%w: per-example gradient of MatMul's first operand", ErrNoRule)
	}
	ai, err := c.vi(c.in(0))
	if err != nil {
		return err
	}
	bi, err := c.vi(c.in(1))
	if err != nil {
		return err
	}
	if len(ai.dims) != 2 || len(bi.dims) != 2 {
		return fmt.Errorf("%w: per-example gradient of a batched MatMul operand", ErrNoRule)
	}
	outerPE(c, 1, c.in(0), c.dy[0], 1)
	return nil
}

// outerPE: the per-example gradient of W in y = a·W (a [N, K]) is the outer
// product aₙᵀ·dyₙ, whose squared norm is |aₙ|²·|dyₙ|².
func outerPE(c *bctx, i int, a, dy string, scale float32) {
	na := c.op("ReduceSumSquare", []string{a}, graph.Ints("axes", 1), graph.Int("keepdims", 0))
	nd := c.op("ReduceSumSquare", []string{dy}, graph.Ints("axes", 1), graph.Int("keepdims", 0))
	c.dx[i] = c.scale(c.mul(na, nd), scale*scale)
}

// bnPE: BatchNormalization in inference form (the running statistics are
// constants) is a per-channel affine map; its parameters' per-example
// gradients are those of bnBwd reduced over the spatial axes only.
func bnPE(c *bctx) error {
	if _, train := c.saved.(*bnSaved); train || c.need[0] {
		return fmt.Errorf("%w: per-example gradient of a training-form BatchNormalization or of its input", ErrNoRule)
	}
	xi, err := c.vi(c.in(0))
	if err != nil {
		return err
	}
	r := len(xi.dims)
	sp := bnAxes(r)[1:]
	perExample := func(g string) string {
		if len(sp) > 0 {
			g = c.reduceSum(g, sp, false)
		}
		return sqnorms(c.emitter, g)
	}
	if c.need[2] {
		c.dx[2] = perExample(c.dy[0])
	}
	if c.need[1] {
		bshape := c.i64(bnBroadcastShape(r)...)
		xc := c.sub(c.in(0), c.reshape(c.in(3), bshape))
		c.dx[1] = perExample(c.mul(c.mul(c.dy[0], xc), bnInvStd(c, bshape)))
	}
	return nil
}

// broadcastPE is the per-example rule of ops whose ordinary rule sums the
// gradient of an input back over the axes it was broadcast along
// (setGrad, unbroadcast).
func broadcastPE(c *bctx) error {
	for i, want := range c.need {
		if want {
			if err := broadcastNorms(c, i); err != nil {
				return err
			}
		}
	}
	return nil
}

// broadcastNorms sets c.dx[i] by running the node's ordinary rule for
// input i alone, with i's static shape seen as one copy per example
// ([N, 1…, dims], the rank of the output): the rule's broadcast sum then
// stops at the batch axis and yields each example's gradient.
func broadcastNorms(c *bctx, i int) error {
	p := c.in(i)
	pi, oi := c.info[p], c.info[c.out(0)]
	if pi == nil || oi == nil || len(oi.dims) == 0 || len(pi.dims) > len(oi.dims) {
		return fmt.Errorf("%w: per-example gradient needs the ranks of %q and %q", ErrShape, p, c.out(0))
	}
	lead := len(oi.dims) - len(pi.dims)
	dims := make([]int64, len(oi.dims))
	dims[0] = oi.dims[0]
	for k := 1; k < len(dims); k++ {
		dims[k] = 1
		if k >= lead {
			dims[k] = pi.dims[k-lead]
		}
	}
	one := &bctx{emitter: c.emitter, n: c.n, dy: c.dy, need: make([]bool, len(c.need)), dx: make([]string, len(c.need)), saved: c.saved}
	one.need[i] = true
	c.info[p] = &vinfo{elem: pi.elem, dims: dims}
	err := rules[c.n.GetOpType()].bwd(one)
	c.info[p] = pi
	if err != nil {
		return err
	}
	if one.dx[i] == "" {
		return fmt.Errorf("%w: no gradient of %q", ErrNoRule, p)
	}
	c.dx[i] = sqnorms(c.emitter, one.dx[i])
	return nil
}
