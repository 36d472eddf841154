package compiler

import (
	"fmt"

	"github.com/critlab/critlab/models/graph"
)

func init() {
	reshapeRule := &rule{diff: []int{0}, bwd: func(c *bctx) error {
		c.dx[0] = c.reshapeLike(c.dy[0], c.in(0))
		return nil
	}}
	for _, op := range []string{"Flatten", "Reshape", "Squeeze", "Unsqueeze"} {
		rules[op] = reshapeRule
	}
	rules["Expand"] = &rule{diff: []int{0}, bwd: func(c *bctx) error {
		r, err := c.unbroadcast(c.dy[0], c.in(0), c.out(0))
		c.dx[0] = r
		return err
	}}
	rules["Transpose"] = &rule{bwd: transposeBwd}
	rules["Concat"] = &rule{bwd: concatBwd}
	rules["Split"] = &rule{diff: []int{0}, bwd: splitBwd}
	rules["Slice"] = &rule{diff: []int{0}, bwd: sliceBwd}
	rules["Pad"] = &rule{diff: []int{0}, bwd: padBwd}
	rules["Softmax"] = &rule{bwd: softmaxBwd}
	rules["LogSoftmax"] = &rule{bwd: logSoftmaxBwd}
	rules["ReduceMean"] = &rule{diff: []int{0}, bwd: reduceBwd}
	rules["ReduceSum"] = &rule{diff: []int{0}, bwd: reduceBwd}
}

func transposeBwd(c *bctx) error {
	xi, err := c.vi(c.in(0))
	if err != nil {
		return err
	}
	r := len(xi.dims)
	perm := graph.AttrInts(c.n, "perm", nil)
	if perm == nil {
		for i := r - 1; i >= 0; i-- {
			perm = append(perm, int64(i))
		}
	}
	inv := make([]int64, len(perm))
	for i, p := range perm {
		inv[p] = int64(i)
	}
	c.dx[0] = c.transpose(c.dy[0], inv...)
	return nil
}

// concatBwd splits dy back into the inputs' extents along the axis.
func concatBwd(c *bctx) error {
	yi, err := c.vi(c.out(0))
	if err != nil {
		return err
	}
	axis := normAxis(graph.AttrInt(c.n, "axis", 0), len(yi.dims))
	sizes := make([]int64, len(c.n.Input))
	for i, in := range c.n.Input {
		v, err := c.vi(in)
		if err != nil {
			return err
		}
		if v.dims[axis] < 0 {
			return fmt.Errorf("%w: Concat gradient needs static sizes along axis %d", ErrShape, axis)
		}
		sizes[i] = v.dims[axis]
	}
	outs := c.b.Node("Split", []string{c.dy[0], c.i64(sizes...)}, len(sizes), graph.Int("axis", axis))
	for i := range sizes {
		if c.need[i] {
			c.dx[i] = outs[i]
		}
	}
	return nil
}

func splitBwd(c *bctx) error {
	xi, err := c.vi(c.in(0))
	if err != nil {
		return err
	}
	axis := normAxis(graph.AttrInt(c.n, "axis", 0), len(xi.dims))
	parts := make([]string, len(c.n.Output))
	for i, g := range c.dy {
		if g == "" {
			g = c.zerosLike(c.out(i))
		}
		parts[i] = g
	}
	c.dx[0] = c.op("Concat", parts, graph.Int("axis", axis))
	return nil
}

// sliceBwd scatters dy into zeros shaped like x: per sliced axis, reverse a
// negative step, spread a step s by interleaving s-1 zero planes, and pad to
// the input's extent.
func sliceBwd(c *bctx) error {
	xi, err := c.vi(c.in(0))
	if err != nil {
		return err
	}
	sl, err := sliceOf(c.n, c.info, xi.dims)
	if err != nil {
		return err
	}
	if sl == nil || !sl.static {
		return fmt.Errorf("%w: Slice gradient needs constant starts/ends/axes/steps and static sliced dims", ErrShape)
	}
	r := len(xi.dims)
	g := c.dy[0]
	cur := append([]int64{}, sl.outDims...) // dims of g so far (static along sliced axes)
	for i, a := range sl.axes {
		d := xi.dims[a]
		cnt := sl.outDims[a]
		start, step := sl.start[i], sl.step[i]
		if cnt == 0 {
			return fmt.Errorf("%w: Slice selects nothing along axis %d", ErrNoRule, a)
		}
		if step < 0 {
			// Element j of g sits at start+j·step; reversed, the first is
			// at start+(cnt-1)·step with step -step.
			g = c.op("Slice", []string{g, c.i64(-1), c.i64(-(1 << 62)), c.i64(a), c.i64(-1)})
			start = start + (cnt-1)*step
			step = -step
		}
		span := cnt
		if step > 1 {
			// [.., cnt, ..] -> [.., cnt, step, ..] with zeros -> [.., cnt·step, ..]
			g = c.op("Unsqueeze", []string{g, c.i64(a + 1)})
			pads := make([]int64, 2*(r+1))
			pads[a+1+int64(r+1)] = step - 1
			g = c.op("Pad", []string{g, c.i64(pads...)})
			shp := make([]int64, r) // 0 copies the leading dims
			shp[a] = cnt * step
			unknown := 0
			for j := int(a) + 1; j < r; j++ {
				shp[j] = cur[j]
				if cur[j] < 0 {
					shp[j] = -1
					unknown++
				}
			}
			if unknown > 1 {
				return fmt.Errorf("%w: Slice gradient with several symbolic dims after axis %d", ErrShape, a)
			}
			g = c.reshape(g, c.i64(shp...))
			span = cnt * step
		}
		pads := make([]int64, 2*r)
		pads[a] = start
		pads[int(a)+r] = d - start - span
		if pads[int(a)+r] < 0 {
			g = c.op("Slice", []string{g, c.i64(0), c.i64(span + pads[int(a)+r]), c.i64(a)})
			pads[int(a)+r] = 0
		}
		if pads[a] != 0 || pads[int(a)+r] != 0 {
			g = c.op("Pad", []string{g, c.i64(pads...)})
		}
		cur[a] = d
	}
	c.dx[0] = g
	return nil
}

// padBwd: the gradient of constant padding crops the padded borders (and
// pads back what negative pads cropped).
func padBwd(c *bctx) error {
	xi, err := c.vi(c.in(0))
	if err != nil {
		return err
	}
	if m := graph.AttrString(c.n, "mode", "constant"); m != "constant" {
		return fmt.Errorf("%w: Pad mode %q", ErrNoRule, m)
	}
	r := len(xi.dims)
	pads, ok := padsOf(c.n, c.info, r)
	if !ok {
		return fmt.Errorf("%w: Pad gradient needs constant pads", ErrShape)
	}
	var axes, starts, ends []int64
	neg := make([]int64, 2*r)
	anyNeg := false
	for i := range r {
		b, e := pads[i], pads[i+r]
		if b > 0 || e > 0 {
			axes = append(axes, int64(i))
			starts = append(starts, max(b, 0))
			if e > 0 {
				ends = append(ends, -e)
			} else {
				ends = append(ends, 1<<62)
			}
		}
		if b < 0 || e < 0 {
			anyNeg = true
			neg[i], neg[i+r] = max(-b, 0), max(-e, 0)
		}
	}
	g := c.dy[0]
	if len(axes) > 0 {
		g = c.op("Slice", []string{g, c.i64(starts...), c.i64(ends...), c.i64(axes...)})
	}
	if anyNeg {
		g = c.op("Pad", []string{g, c.i64(neg...)})
	}
	c.dx[0] = g
	return nil
}

func softmaxAxis(c *bctx) int64 {
	return graph.AttrInt(c.n, "axis", -1)
}

// softmaxBwd: dx = y·(dy - Σ dy·y) along the axis (opset 13 semantics).
func softmaxBwd(c *bctx) error {
	y := c.out(0)
	s := c.reduceSum(c.mul(c.dy[0], y), []int64{softmaxAxis(c)}, true)
	c.dx[0] = c.mul(y, c.sub(c.dy[0], s))
	return nil
}

// logSoftmaxBwd: dx = dy - exp(y)·Σ dy.
func logSoftmaxBwd(c *bctx) error {
	s := c.reduceSum(c.dy[0], []int64{softmaxAxis(c)}, true)
	c.dx[0] = c.sub(c.dy[0], c.mul(c.op("Exp", []string{c.out(0)}), s))
	return nil
}

// reduceBwd broadcasts dy back over the reduced axes (divided by the count
// for ReduceMean).
func reduceBwd(c *bctx) error {
	x := c.in(0)
	xi, err := c.vi(x)
	if err != nil {
		return err
	}
	axes, all, ok := reduceAxes(c.n, c.info, len(xi.dims))
	if !ok {
		return fmt.Errorf("%w: reduce axes must be constant", ErrShape)
	}
	g := c.dy[0]
	if axes == nil && !all { // noop_with_empty_axes
		c.dx[0] = g
		return nil
	}
	if graph.AttrInt(c.n, "keepdims", 1) == 0 {
		g = c.op("Unsqueeze", []string{g, c.i64(axes...)})
	}
	if c.n.GetOpType() == "ReduceMean" {
		g = c.mul(g, c.div(c.sizeF(c.out(0)), c.sizeF(x)))
	}
	c.dx[0] = c.op("Expand", []string{g, c.shape(x)})
	return nil
}

func init() {
	rules["Gather"] = &rule{diff: []int{0}, bwd: gatherBwd}
}

// gatherBwd scatters dy back to the gathered positions, adding repeats:
// dy is brought to [indices..., other data dims...], ScatterND(add) into
// zeros of [D_axis, other data dims...], then transposed to data's layout.
func gatherBwd(c *bctx) error {
	xi, err := c.vi(c.in(0))
	if err != nil {
		return err
	}
	ii, err := c.vi(c.in(1))
	if err != nil {
		return err
	}
	r, q := len(xi.dims), len(ii.dims)
	a := int(normAxis(graph.AttrInt(c.n, "axis", 0), r))
	if a < 0 || a >= r {
		return fmt.Errorf("%w: Gather axis out of range", ErrShape)
	}
	// dy axes: data[:a] (0..a-1), indices (a..a+q-1), data[a+1:] (a+q..).
	var perm []int64
	for i := range q {
		perm = append(perm, int64(a+i))
	}
	for i := range a {
		perm = append(perm, int64(i))
	}
	for i := a + q; i < r-1+q; i++ {
		perm = append(perm, int64(i))
	}
	dy := c.dy[0]
	if !isIdentityPerm(perm) {
		dy = c.transpose(dy, perm...)
	}
	// Zeros shaped [D_a, data[:a]..., data[a+1:]...].
	xperm := []int64{int64(a)}
	for i := range r {
		if i != a {
			xperm = append(xperm, int64(i))
		}
	}
	shp := c.op("Gather", []string{c.shape(c.in(0)), c.i64(xperm...)}, graph.Int("axis", 0))
	zeros := c.op("ConstantOfShape", []string{shp}, graph.TensorAttr("value", graph.FloatTensor("", []int64{1}, []float32{0})))
	idx := c.op("Unsqueeze", []string{c.in(1), c.i64(-1)})
	s := c.op("ScatterND", []string{zeros, idx, dy}, graph.Str("reduction", "add"))
	inv := make([]int64, r)
	for i, p := range xperm {
		inv[p] = int64(i)
	}
	if !isIdentityPerm(inv) {
		s = c.transpose(s, inv...)
	}
	c.dx[0] = s
	return nil
}

func isIdentityPerm(p []int64) bool {
	for i, v := range p {
		if v != int64(i) {
			return false
		}
	}
	return true
}
