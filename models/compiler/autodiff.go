package compiler

import (
	"fmt"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// rule is the gradient rule of one op type.
type rule struct {
	// diff lists the differentiable input positions; nil means all of them.
	// An empty non-nil slice marks an op that never carries a gradient
	// (Shape, ArgMax, comparisons...).
	diff []int
	// fwd, when set, emits the forward node itself (in training form, or
	// with extra outputs the backward needs) and returns what bwd needs.
	// need tells which inputs will want a gradient.
	fwd func(e *emitter, n *pb.NodeProto, need []bool) (any, error)
	// bwd sets c.dx[i] for every input with c.need[i].
	bwd func(c *bctx) error
}

// bctx is what a backward rule sees.
type bctx struct {
	*emitter
	n     *pb.NodeProto
	dy    []string // gradient per output, "" where none flows
	need  []bool   // per input: whether its gradient is wanted
	dx    []string // per input: set by the rule
	saved any      // what fwd returned
}

// A tap takes the backward pass over at some values, for transformations
// that want something else than their summed gradient (the Fisher graph's
// per-example norms, fisher.go). At a node using tapped values, backward
// runs the ordinary rule for the other inputs only, then bwd with c.need
// marking the tapped inputs; what bwd sets in c.dx is the value's result in
// place of its gradient. A tapped value must have one use.
type tap struct {
	values map[string]bool
	bwd    func(c *bctx) error
}

func (c *bctx) in(i int) string {
	if i < len(c.n.Input) {
		return c.n.Input[i]
	}
	return ""
}
func (c *bctx) out(i int) string { return c.n.Output[i] }

// vi returns the static info of a value or an error naming it.
func (c *bctx) vi(name string) (*vinfo, error) {
	if v := c.info[name]; v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("%w: value %q", ErrShape, name)
}

// diffSlots returns which inputs of n are differentiable under r (all when
// there is no rule, so that an unknown op on a gradient path is caught).
func diffSlots(r *rule, n *pb.NodeProto) []bool {
	d := make([]bool, len(n.Input))
	if r == nil || r.diff == nil {
		for i := range d {
			d[i] = n.Input[i] != ""
		}
		return d
	}
	for _, i := range r.diff {
		if i < len(d) && n.Input[i] != "" {
			d[i] = true
		}
	}
	return d
}

func isFloat(et pb.TensorProto_DataType) bool {
	return et == graph.Float || et == pb.TensorProto_DOUBLE || et == pb.TensorProto_FLOAT16 || et == pb.TensorProto_BFLOAT16
}

// activity marks the values that depend differentiably on one of the
// sources (forward pass) and, among those, the ones the target depends on
// (backward pass): exactly the values whose gradient is needed.
func activity(nodes []*pb.NodeProto, sources []string, target string, info map[string]*vinfo) map[string]bool {
	active := map[string]bool{}
	for _, s := range sources {
		active[s] = true
	}
	for _, n := range nodes {
		r := rules[n.GetOpType()]
		slots := diffSlots(r, n)
		on := false
		for i, in := range n.Input {
			if slots[i] && active[in] {
				on = true
			}
		}
		if !on {
			continue
		}
		for _, o := range n.Output {
			if o == "" {
				continue
			}
			if v := info[o]; v != nil && !isFloat(v.elem) {
				continue
			}
			active[o] = true
		}
	}
	needed := map[string]bool{}
	if active[target] {
		needed[target] = true
	}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		on := false
		for _, o := range n.Output {
			if needed[o] {
				on = true
			}
		}
		if !on {
			continue
		}
		slots := diffSlots(rules[n.GetOpType()], n)
		for j, in := range n.Input {
			if slots[j] && active[in] {
				needed[in] = true
			}
		}
	}
	return needed
}

// forwardPass re-emits the forward nodes through e, letting rules with a
// fwd hook replace their node; it returns the saved data per node.
func forwardPass(e *emitter, nodes []*pb.NodeProto, needed map[string]bool) (map[*pb.NodeProto]any, error) {
	saved := map[*pb.NodeProto]any{}
	for _, n := range nodes {
		from := len(e.b.G.Node)
		r := rules[n.GetOpType()]
		if r != nil && r.fwd != nil {
			need := make([]bool, len(n.Input))
			slots := diffSlots(r, n)
			for i, in := range n.Input {
				need[i] = slots[i] && needed[in]
			}
			s, err := r.fwd(e, n, need)
			if err != nil {
				return nil, fmt.Errorf("compile: node %q (%s): %w", n.GetName(), n.GetOpType(), err)
			}
			saved[n] = s
			e.label(from, "fwd:"+n.GetOpType())
			continue
		}
		e.b.G.Node = append(e.b.G.Node, n)
		e.label(from, "fwd:"+n.GetOpType())
	}
	return saved, nil
}

// backward emits the reverse pass: seed is the gradient of target; it
// returns the gradient of each wrt value ("" when none reaches it), or its
// result under tp (nil: no tap).
func backward(e *emitter, nodes []*pb.NodeProto, saved map[*pb.NodeProto]any, needed map[string]bool, target, seed string, wrt []string, tp *tap) (map[string]string, error) {
	contrib := map[string][]string{target: {seed}}
	tapped := map[string]string{}
	for i := len(nodes) - 1; i >= 0; i-- {
		n := nodes[i]
		from := len(e.b.G.Node)
		dy := make([]string, len(n.Output))
		any := false
		for j, o := range n.Output {
			if o != "" && len(contrib[o]) > 0 {
				dy[j] = e.sumAll(contrib[o])
				contrib[o] = []string{dy[j]}
				any = true
			}
		}
		e.label(from, ProvGradSum)
		if !any {
			continue
		}
		r := rules[n.GetOpType()]
		slots := diffSlots(r, n)
		need, tneed := make([]bool, len(n.Input)), make([]bool, len(n.Input))
		anyNeed, anyTap := false, false
		for j, in := range n.Input {
			switch {
			case !slots[j] || !needed[in]:
			case tp != nil && tp.values[in]:
				tneed[j], anyTap = true, true
			default:
				need[j], anyNeed = true, true
			}
		}
		fail := func(err error) error {
			return fmt.Errorf("compile: node %q (%s): %w", n.GetName(), n.GetOpType(), err)
		}
		if anyNeed {
			if r == nil || r.bwd == nil {
				return nil, fail(fmt.Errorf("%w for op type %s", ErrNoRule, n.GetOpType()))
			}
			c := &bctx{emitter: e, n: n, dy: dy, need: need, dx: make([]string, len(n.Input)), saved: saved[n]}
			from = len(e.b.G.Node)
			if err := r.bwd(c); err != nil {
				return nil, fail(err)
			}
			e.labelGrad(from, n.GetOpType(), c.dx)
			for j, g := range c.dx {
				if need[j] && g != "" {
					contrib[n.Input[j]] = append(contrib[n.Input[j]], g)
				}
			}
		}
		if anyTap {
			c := &bctx{emitter: e, n: n, dy: dy, need: tneed, dx: make([]string, len(n.Input)), saved: saved[n]}
			from = len(e.b.G.Node)
			if err := tp.bwd(c); err != nil {
				return nil, fail(err)
			}
			e.labelGrad(from, n.GetOpType(), c.dx)
			for j, g := range c.dx {
				if !tneed[j] {
					continue
				}
				in := n.Input[j]
				if g == "" {
					return nil, fail(fmt.Errorf("%w: no result for %q", ErrNoRule, in))
				}
				if _, dup := tapped[in]; dup {
					return nil, fail(fmt.Errorf("%w: %q is used by several nodes; it needs one use here", ErrNoRule, in))
				}
				tapped[in] = g
			}
		}
	}
	from := len(e.b.G.Node)
	grads := map[string]string{}
	for _, w := range wrt {
		if g, ok := tapped[w]; ok {
			grads[w] = g
		} else {
			grads[w] = e.sumAll(contrib[w])
		}
	}
	e.label(from, ProvGradSum)
	return grads, nil
}
