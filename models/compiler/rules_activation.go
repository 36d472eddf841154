package compiler

import (
	"math"

	"github.com/critlab/critlab/models/graph"
)

// Closed-form rules for less common activations and Pow.
func init() {
	rules["Abs"] = &rule{bwd: func(c *bctx) error {
		c.dx[0] = c.mul(c.dy[0], c.op("Sign", []string{c.in(0)}))
		return nil
	}}
	rules["Erf"] = &rule{bwd: func(c *bctx) error {
		x := c.in(0)
		g := c.op("Exp", []string{c.neg(c.mul(x, x))})
		c.dx[0] = c.mul(c.dy[0], c.scale(g, float32(2/math.Sqrt(math.Pi))))
		return nil
	}}
	rules["Softplus"] = &rule{bwd: func(c *bctx) error {
		c.dx[0] = c.mul(c.dy[0], c.op("Sigmoid", []string{c.in(0)}))
		return nil
	}}
	rules["Elu"] = &rule{bwd: func(c *bctx) error {
		// y = α(eˣ-1) for x <= 0, so dy/dx = y + α there.
		alpha := graph.AttrFloat(c.n, "alpha", 1)
		pos := c.op("Greater", []string{c.in(0), c.f32(0)})
		c.dx[0] = c.op("Where", []string{pos, c.dy[0], c.mul(c.dy[0], c.add(c.out(0), c.f32(alpha)))})
		return nil
	}}
	rules["HardSigmoid"] = &rule{bwd: func(c *bctx) error {
		alpha := graph.AttrFloat(c.n, "alpha", 0.2)
		beta := graph.AttrFloat(c.n, "beta", 0.5)
		c.dx[0] = c.scale(c.mul(c.dy[0], hardMask(c, c.in(0), alpha, beta)), alpha)
		return nil
	}}
	rules["HardSwish"] = &rule{bwd: func(c *bctx) error {
		// y = x·hs(x), hs(x) = clip(x/6 + 1/2, 0, 1): dy/dx = hs(x) + x/6 inside.
		x := c.in(0)
		hs := c.op("HardSigmoid", []string{x}, graph.Flt("alpha", 1.0/6), graph.Flt("beta", 0.5))
		inner := c.mul(c.scale(x, 1.0/6), hardMask(c, x, 1.0/6, 0.5))
		c.dx[0] = c.mul(c.dy[0], c.add(hs, inner))
		return nil
	}}
	rules["PRelu"] = &rule{bwd: func(c *bctx) error {
		x, slope := c.in(0), c.in(1)
		pos := c.op("Greater", []string{x, c.f32(0)})
		if c.need[0] {
			r, err := c.unbroadcast(c.op("Where", []string{pos, c.dy[0], c.mul(c.dy[0], slope)}), x, c.out(0))
			if err != nil {
				return err
			}
			c.dx[0] = r
		}
		if c.need[1] {
			return c.setGrad(1, c.op("Where", []string{pos, c.f32(0), c.mul(c.dy[0], x)}))
		}
		return nil
	}}
	rules["Pow"] = &rule{bwd: func(c *bctx) error {
		a, b := c.in(0), c.in(1)
		if c.need[0] {
			// d aᵇ/da = b·a^(b-1)
			g := c.mul(c.dy[0], c.mul(b, c.op("Pow", []string{a, c.sub(b, c.f32(1))})))
			if err := c.setGrad(0, g); err != nil {
				return err
			}
		}
		if c.need[1] {
			// d aᵇ/db = aᵇ·ln a
			if err := c.setGrad(1, c.mul(c.dy[0], c.mul(c.out(0), c.op("Log", []string{a})))); err != nil {
				return err
			}
		}
		return nil
	}}
}

// hardMask is 1 where 0 < αx+β < 1, else 0 (float).
func hardMask(c *bctx, x string, alpha, beta float32) string {
	z := c.add(c.scale(x, alpha), c.f32(beta))
	in := c.op("And", []string{c.op("Greater", []string{z, c.f32(0)}), c.op("Less", []string{z, c.f32(1)})})
	return c.op("Cast", []string{in}, graph.Int("to", int64(graph.Float)))
}
