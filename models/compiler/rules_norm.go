package compiler

import (
	"fmt"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

func init() {
	rules["BatchNormalization"] = &rule{diff: []int{0, 1, 2}, fwd: bnTrainFwd, bwd: bnBwd}
}

// bnSaved holds the training-form BatchNorm values its gradient reuses.
type bnSaved struct {
	axes   []int64
	xc     string // x - batch mean
	invstd string // 1/sqrt(batch var + eps), [1,C,1,1]
	gain   string // scale·invstd, [1,C,1,1]
	n      string // elements per channel (N·H·W) as a float scalar
	ch     int64  // channels
}

// affineEps is the epsilon of the BatchNormalization nodes used as
// per-channel affine maps: cuDNN clamps smaller ones to 1e-5, so the
// variance input is 1-1e-5 instead, whose float32 sum with 1e-5 is exactly 1
// (and within 1e-8 of it in double precision).
const affineEps = float32(1e-5)

// zerosC and unitVarC are float [c] constants: 0 and 1-affineEps.
func (e *emitter) zerosC(c int64) string   { return e.constFill(c, 0) }
func (e *emitter) unitVarC(c int64) string { return e.constFill(c, 1-affineEps) }

func (e *emitter) constFill(c int64, v float32) string {
	key := fmt.Sprintf("fill %d %v", c, v)
	if name, ok := e.fills[key]; ok {
		return name
	}
	data := make([]float32, c)
	for i := range data {
		data[i] = v
	}
	name := e.b.Fresh("const_fill")
	e.b.G.Initializer = append(e.b.G.Initializer, graph.FloatTensor(name, []int64{c}, data))
	e.fills[key] = name
	return name
}

func bnAxes(rank int) []int64 {
	axes := []int64{0}
	for i := 2; i < rank; i++ {
		axes = append(axes, int64(i))
	}
	return axes
}

func bnBroadcastShape(rank int) []int64 {
	s := make([]int64, rank)
	for i := range s {
		s[i] = 1
	}
	s[1] = -1
	return s
}

// bnTrainFwd emits BatchNormalization in training form from plain ops:
// batch mean and biased variance over every axis but 1 normalise x, and the
// running statistics are updated PyTorch-style with momentum attribute m:
// running = m·running + (1-m)·batch, the variance unbiased (×n/(n-1)).
func bnTrainFwd(e *emitter, n *pb.NodeProto, need []bool) (any, error) {
	if !e.train {
		e.b.G.Node = append(e.b.G.Node, n)
		return nil, nil
	}
	x, scale, bias, rm, rv := n.Input[0], n.Input[1], n.Input[2], n.Input[3], n.Input[4]
	xi := e.info[x]
	if xi == nil || len(xi.dims) < 2 || xi.dims[1] < 0 {
		return nil, fmt.Errorf("%w: BatchNormalization input %q needs a known rank and channel count", ErrShape, x)
	}
	eps := graph.AttrFloat(n, "epsilon", 1e-5)
	m := graph.AttrFloat(n, "momentum", 0.9)
	r := len(xi.dims)
	axes := bnAxes(r)
	bshape := e.i64(bnBroadcastShape(r)...)
	ch := xi.dims[1]
	cnt := e.div(e.sizeF(x), e.f32(float32(ch)))
	flat := e.i64(-1)
	mean := e.reduceMean(x, axes, true)
	xc := e.sub(x, mean)
	variance := e.div(e.op("ReduceSumSquare", []string{xc}, graph.Ints("axes", axes...), graph.Int("keepdims", 1)), cnt)
	invstd := e.op("Reciprocal", []string{e.op("Sqrt", []string{e.add(variance, e.f32(eps))})})
	gain := e.mul(invstd, e.reshape(scale, bshape))
	// y = xc·gain + bias in one pass: an inference BatchNormalization with
	// mean 0 and variance + epsilon = 1 is exactly that per-channel affine map.
	e.b.NodeNamed("BatchNormalization", []string{xc, e.reshape(gain, flat), bias, e.zerosC(ch), e.unitVarC(ch)}, []string{n.Output[0]}, graph.Flt("epsilon", affineEps))

	e.b.NodeNamed("Add", []string{e.scale(rm, m), e.scale(e.reshape(mean, flat), 1-m)}, []string{rm + ".next"})
	unbiased := e.mul(e.reshape(variance, flat), e.div(cnt, e.sub(cnt, e.f32(1))))
	e.b.NodeNamed("Add", []string{e.scale(rv, m), e.scale(unbiased, 1-m)}, []string{rv + ".next"})
	return &bnSaved{axes: axes, xc: xc, invstd: invstd, gain: gain, n: cnt, ch: ch}, nil
}

// bnBwd: training form (saved from bnTrainFwd) uses the batch statistics,
//
//	dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ·σ⁻¹·(dy - Σdy/n - x̂·Σ(dy·x̂)/n);
//
// inference form (Fisher graphs) treats the running statistics as constants.
func bnBwd(c *bctx) error {
	dy := c.dy[0]
	xi, err := c.vi(c.in(0))
	if err != nil {
		return err
	}
	r := len(xi.dims)
	flat := c.i64(-1)
	s, train := c.saved.(*bnSaved)
	if !train {
		bshape := c.i64(bnBroadcastShape(r)...)
		invstd := bnInvStd(c, bshape)
		axes := bnAxes(r)
		if c.need[2] {
			c.dx[2] = c.reduceSum(dy, axes, false)
		}
		if c.need[1] {
			xc := c.sub(c.in(0), c.reshape(c.in(3), bshape))
			c.dx[1] = c.reshape(c.mul(c.reduceSum(c.mul(dy, xc), axes, true), invstd), flat)
		}
		if c.need[0] {
			c.dx[0] = c.mul(dy, c.mul(invstd, c.reshape(c.in(1), bshape)))
		}
		return nil
	}
	sumDy := c.reduceSum(dy, s.axes, true)
	if c.need[2] {
		c.dx[2] = c.reshape(sumDy, flat)
	}
	if !c.need[0] && !c.need[1] {
		return nil
	}
	sumDyXc := c.reduceSum(c.mul(dy, s.xc), s.axes, true)
	if c.need[1] {
		c.dx[1] = c.reshape(c.mul(sumDyXc, s.invstd), flat)
	}
	if c.need[0] {
		invN := c.div(c.f32(1), s.n)
		k1 := c.neg(c.mul(c.mul(s.gain, c.mul(s.invstd, s.invstd)), c.mul(sumDyXc, invN)))
		k0 := c.neg(c.mul(s.gain, c.mul(sumDy, invN)))
		// dy·gain + (xc·k1 + k0), the affine part as one channel map.
		affine := c.op("BatchNormalization", []string{s.xc, c.reshape(k1, flat), c.reshape(k0, flat), c.zerosC(s.ch), c.unitVarC(s.ch)}, graph.Flt("epsilon", affineEps))
		c.dx[0] = c.add(c.mul(dy, s.gain), affine)
	}
	return nil
}

// bnInvStd is 1/sqrt(running variance + ε) of an inference-form
// BatchNormalization, shaped to broadcast against its input.
func bnInvStd(c *bctx, bshape string) string {
	eps := graph.AttrFloat(c.n, "epsilon", 1e-5)
	return c.reshape(c.op("Reciprocal", []string{c.op("Sqrt", []string{c.add(c.in(4), c.f32(eps))})}), bshape)
}
