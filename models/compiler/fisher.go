package compiler

import (
	"errors"
	"fmt"
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
// per-example form when every parameter use has a per-example rule (Conv
// with group 1, Gemm, 2-D MatMul, Add/Sub/Mul/Div, BatchNormalization),
// the batch-of-one form otherwise.
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
	if perExample {
		e.perEx = map[string]bool{}
		for _, n := range p.params {
			e.perEx[n] = true
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
		grads, err = backward(e, nodes, saved, needed, p.logits, seed, p.params)
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

// Per-example rules: given the per-example backward signal, the squared
// norm of each example's gradient of a parameter, without forming the
// batch sum.

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
	c.peDone[1] = true
	return nil
}

// outerPE: the per-example gradient of W in y = a·W (a [N, K]) is the outer
// product aₙᵀ·dyₙ, whose squared norm is |aₙ|²·|dyₙ|².
func outerPE(c *bctx, i int, a, dy string, scale float32) {
	na := c.op("ReduceSumSquare", []string{a}, graph.Ints("axes", 1), graph.Int("keepdims", 0))
	nd := c.op("ReduceSumSquare", []string{dy}, graph.Ints("axes", 1), graph.Int("keepdims", 0))
	c.dx[i] = c.scale(c.mul(na, nd), scale*scale)
	c.peDone[i] = true
}

// unbroadcastPE reduces g over the axes x was broadcast along, except the
// batch axis 0, keeping one gradient per example.
func (c *bctx) unbroadcastPE(g, x, out string) (string, error) {
	xi, oi := c.info[x], c.info[out]
	if xi == nil || oi == nil || len(oi.dims) == 0 {
		return "", fmt.Errorf("%w: per-example gradient needs the ranks of %q and %q", ErrShape, x, out)
	}
	lead := len(oi.dims) - len(xi.dims)
	var axes []int64
	for i := 1; i < len(oi.dims); i++ {
		if i < lead || (xi.dims[i-lead] == 1 && oi.dims[i] != 1) {
			axes = append(axes, int64(i))
		}
	}
	if len(axes) == 0 {
		return g, nil
	}
	return c.reduceSum(g, axes, true), nil
}

// elementwisePE sets input i's per-example norm from its elementwise
// gradient contribution g (same shape as the node's output).
func elementwisePE(c *bctx, i int, g string) error {
	r, err := c.unbroadcastPE(g, c.in(i), c.out(0))
	if err != nil {
		return err
	}
	c.setPE(i, r)
	return nil
}
