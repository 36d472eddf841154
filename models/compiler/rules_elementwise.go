package compiler

import (
	"fmt"

	"github.com/critlab/critlab/models/graph"
)

func init() {
	rules["Add"] = &rule{bwd: addBwd}
	rules["Sub"] = &rule{bwd: addBwd}
	rules["Mul"] = &rule{bwd: mulBwd}
	rules["Div"] = &rule{bwd: divBwd}
	rules["Sum"] = &rule{bwd: sumBwd}
	rules["Neg"] = &rule{bwd: func(c *bctx) error { c.dx[0] = c.neg(c.dy[0]); return nil }}
	rules["Identity"] = &rule{bwd: func(c *bctx) error { c.dx[0] = c.dy[0]; return nil }}
	rules["Relu"] = &rule{bwd: reluBwd}
	rules["LeakyRelu"] = &rule{bwd: leakyReluBwd}
	rules["Sigmoid"] = &rule{bwd: sigmoidBwd}
	rules["Tanh"] = &rule{bwd: tanhBwd}
	rules["Exp"] = &rule{bwd: func(c *bctx) error { c.dx[0] = c.mul(c.dy[0], c.out(0)); return nil }}
	rules["Log"] = &rule{bwd: func(c *bctx) error { c.dx[0] = c.div(c.dy[0], c.in(0)); return nil }}
	rules["Sqrt"] = &rule{bwd: func(c *bctx) error {
		c.dx[0] = c.div(c.scale(c.dy[0], 0.5), c.out(0))
		return nil
	}}
	rules["Reciprocal"] = &rule{bwd: func(c *bctx) error {
		c.dx[0] = c.neg(c.mul(c.dy[0], c.mul(c.out(0), c.out(0))))
		return nil
	}}
	rules["Clip"] = &rule{diff: []int{0}, bwd: clipBwd}
	rules["Where"] = &rule{diff: []int{1, 2}, bwd: whereBwd}
	rules["Cast"] = &rule{bwd: castBwd}
	rules["Dropout"] = &rule{diff: []int{0}, bwd: func(c *bctx) error { c.dx[0] = c.dy[0]; return nil }}
	rules["Gemm"] = &rule{bwd: gemmBwd}
	rules["MatMul"] = &rule{bwd: matMulBwd}
}

// setGrad sets input i's gradient from its contribution g, shaped like the
// node's output: summed back over broadcast axes.
func (c *bctx) setGrad(i int, g string) error {
	r, err := c.unbroadcast(g, c.in(i), c.out(0))
	c.dx[i] = r
	return err
}

func addBwd(c *bctx) error {
	for i := range 2 {
		if !c.need[i] {
			continue
		}
		g := c.dy[0]
		if i == 1 && c.n.GetOpType() == "Sub" {
			g = c.neg(g)
		}
		if err := c.setGrad(i, g); err != nil {
			return err
		}
	}
	return nil
}

func sumBwd(c *bctx) error {
	for i := range c.n.Input {
		if c.need[i] {
			if err := c.setGrad(i, c.dy[0]); err != nil {
				return err
			}
		}
	}
	return nil
}

func mulBwd(c *bctx) error {
	for i := range 2 {
		if c.need[i] {
			if err := c.setGrad(i, c.mul(c.dy[0], c.in(1-i))); err != nil {
				return err
			}
		}
	}
	return nil
}

func divBwd(c *bctx) error {
	if c.need[0] {
		if err := c.setGrad(0, c.div(c.dy[0], c.in(1))); err != nil {
			return err
		}
	}
	if c.need[1] {
		// d(a/b)/db = -a/b² = -y/b
		if err := c.setGrad(1, c.neg(c.mul(c.dy[0], c.div(c.out(0), c.in(1))))); err != nil {
			return err
		}
	}
	return nil
}

func reluBwd(c *bctx) error {
	// y = relu(x) >= 0, so sign(y) is the 0/1 mask (faster than Where).
	c.dx[0] = c.mul(c.dy[0], c.op("Sign", []string{c.out(0)}))
	return nil
}

func leakyReluBwd(c *bctx) error {
	alpha := graph.AttrFloat(c.n, "alpha", 0.01)
	r := c.rankOf(c.in(0))
	mask := c.op("Greater", []string{c.in(0), c.f32r(0, r)})
	c.dx[0] = c.op("Where", []string{mask, c.dy[0], c.scaleR(c.dy[0], alpha, r)})
	return nil
}

func sigmoidBwd(c *bctx) error {
	y := c.out(0)
	c.dx[0] = c.mul(c.dy[0], c.mul(y, c.sub(c.f32(1), y)))
	return nil
}

func tanhBwd(c *bctx) error {
	y := c.out(0)
	c.dx[0] = c.mul(c.dy[0], c.sub(c.f32(1), c.mul(y, y)))
	return nil
}

// clipBwd passes the gradient where min <= x <= max (torch.clamp), which
// for a non-NaN x is where the output equals the input: one comparison
// (Equal(y, x)) in place of two and an And. (With min > max ONNX's Clip
// gives max and the pass-through set is x = max, a single point.)
func clipBwd(c *bctx) error {
	x := c.in(0)
	if c.in(1) == "" && c.in(2) == "" {
		c.dx[0] = c.dy[0]
		return nil
	}
	mask := c.op("Equal", []string{c.out(0), x})
	c.dx[0] = c.op("Where", []string{mask, c.dy[0], c.f32r(0, c.rankOf(x))})
	return nil
}

func whereBwd(c *bctx) error {
	cond := c.in(0)
	zero := c.f32(0)
	for i := 1; i <= 2; i++ {
		if !c.need[i] {
			continue
		}
		ins := []string{cond, c.dy[0], zero}
		if i == 2 {
			ins = []string{cond, zero, c.dy[0]}
		}
		if err := c.setGrad(i, c.op("Where", ins)); err != nil {
			return err
		}
	}
	return nil
}

func castBwd(c *bctx) error {
	xi, err := c.vi(c.in(0))
	if err != nil {
		return err
	}
	c.dx[0] = c.op("Cast", []string{c.dy[0]}, graph.Int("to", int64(xi.elem)))
	return nil
}

// gemmBwd: Y = α·A'·B' + β·C with A' = A or Aᵀ (transA), B' likewise.
func gemmBwd(c *bctx) error {
	dy := c.dy[0]
	alpha := graph.AttrFloat(c.n, "alpha", 1)
	beta := graph.AttrFloat(c.n, "beta", 1)
	ta := graph.AttrInt(c.n, "transA", 0) != 0
	tb := graph.AttrInt(c.n, "transB", 0) != 0
	a, b := c.in(0), c.in(1)
	gemm := func(x, y string, tx, ty bool) string {
		at := graph.Int("transA", b2i(tx))
		bt := graph.Int("transB", b2i(ty))
		if alpha != 1 {
			return c.op("Gemm", []string{x, y}, at, bt, graph.Flt("alpha", alpha))
		}
		return c.op("Gemm", []string{x, y}, at, bt)
	}
	if c.need[0] {
		// dA' = α·dY·B'ᵀ; dA = dA' or its transpose.
		switch {
		case !ta && !tb:
			c.dx[0] = gemm(dy, b, false, true)
		case !ta && tb:
			c.dx[0] = gemm(dy, b, false, false)
		case ta && !tb:
			c.dx[0] = gemm(b, dy, false, true)
		default:
			c.dx[0] = gemm(b, dy, true, true)
		}
	}
	if c.need[1] {
		// dB' = α·A'ᵀ·dY; dB = dB' or its transpose.
		switch {
		case !ta && !tb:
			c.dx[1] = gemm(a, dy, true, false)
		case ta && !tb:
			c.dx[1] = gemm(a, dy, false, false)
		case !ta && tb:
			c.dx[1] = gemm(dy, a, true, false)
		default:
			c.dx[1] = gemm(dy, a, true, true)
		}
	}
	if len(c.n.Input) > 2 && c.need[2] {
		if err := c.setGrad(2, c.scale(dy, beta)); err != nil {
			return err
		}
	}
	return nil
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// matMulBwd: numpy matmul of rank >= 2 operands with batch broadcasting;
// dA = dY·Bᵀ and dB = Aᵀ·dY, summed back over broadcast batch axes.
func matMulBwd(c *bctx) error {
	a, b := c.in(0), c.in(1)
	ai, err := c.vi(a)
	if err != nil {
		return err
	}
	bi, err := c.vi(b)
	if err != nil {
		return err
	}
	if len(ai.dims) < 2 || len(bi.dims) < 2 {
		return fmt.Errorf("%w: MatMul with a 1-D operand (shapes %v, %v)", ErrNoRule, ai.dims, bi.dims)
	}
	tr := func(x string, r int) string {
		perm := make([]int64, r)
		for i := range perm {
			perm[i] = int64(i)
		}
		perm[r-1], perm[r-2] = perm[r-2], perm[r-1]
		return c.transpose(x, perm...)
	}
	if c.need[0] {
		g := c.op("MatMul", []string{c.dy[0], tr(b, len(bi.dims))})
		if c.dx[0], err = c.unbroadcastMatMul(g, a, c.out(0)); err != nil {
			return err
		}
	}
	if c.need[1] {
		g := c.op("MatMul", []string{tr(a, len(ai.dims)), c.dy[0]})
		if c.dx[1], err = c.unbroadcastMatMul(g, b, c.out(0)); err != nil {
			return err
		}
	}
	return nil
}

// unbroadcastMatMul sums a matmul operand's gradient over the batch axes its
// operand was broadcast along (the last two axes are its own).
func (e *emitter) unbroadcastMatMul(g, x, y string) (string, error) {
	xi, yi := e.info[x], e.info[y]
	if len(xi.dims) == len(yi.dims) {
		same := true
		for i := 0; i < len(xi.dims)-2; i++ {
			same = same && xi.dims[i] == yi.dims[i]
		}
		if same {
			return g, nil
		}
	}
	// Present g with y's batch dims and x's matrix dims to unbroadcast.
	gd := append(append([]int64{}, yi.dims[:len(yi.dims)-2]...), xi.dims[len(xi.dims)-2:]...)
	tmp := e.b.Fresh("matmul_grad_shape")
	e.info[tmp] = &vinfo{elem: xi.elem, dims: gd}
	return e.unbroadcast(g, x, tmp)
}
