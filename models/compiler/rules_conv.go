package compiler

import (
	"fmt"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	"google.golang.org/protobuf/proto"
)

func init() {
	rules["Conv"] = &rule{fwd: convFwd, bwd: convBwd}
	rules["ConvTranspose"] = &rule{bwd: convTransposeBwd}
}

// convGeom is a Conv node resolved against static shapes.
type convGeom struct {
	*graph.Window
	group    int64
	x, w, y  []int64 // dims of input, weight, output
	spatial  int     // number of spatial dims
	kernelSp []int64
}

func convGeomOf(c *bctx, x, w, y string) (*convGeom, error) {
	xi, err := c.vi(x)
	if err != nil {
		return nil, err
	}
	wi, err := c.vi(w)
	if err != nil {
		return nil, err
	}
	yi, err := c.vi(y)
	if err != nil {
		return nil, err
	}
	if len(xi.dims) < 3 || len(wi.dims) != len(xi.dims) {
		return nil, fmt.Errorf("%w: conv input %v, weight %v", ErrShape, xi.dims, wi.dims)
	}
	for _, d := range append(append([]int64{}, xi.dims[1:]...), wi.dims...) {
		if d < 0 {
			return nil, fmt.Errorf("%w: conv gradients need static channel and spatial dims (input %v, weight %v)", ErrShape, xi.dims, wi.dims)
		}
	}
	k := graph.AttrInts(c.n, "kernel_shape", wi.dims[2:])
	win, err := graph.ResolveWindow(c.n, xi.dims[2:], k)
	if err != nil {
		return nil, err
	}
	g := &convGeom{Window: win, group: graph.AttrInt(c.n, "group", 1), x: xi.dims, w: wi.dims, y: yi.dims, spatial: len(xi.dims) - 2, kernelSp: k}
	if g.group < 1 || g.x[1]%g.group != 0 || g.w[0]%g.group != 0 || g.x[1]/g.group != g.w[1] {
		return nil, fmt.Errorf("%w: conv group %d with input channels %d and weight %v", ErrUnsupported, g.group, g.x[1], g.w)
	}
	return g, nil
}

func spatialAxes(r int) []int64 {
	a := make([]int64, r)
	for i := range a {
		a[i] = int64(i + 2)
	}
	return a
}

func swap01(r int) []int64 {
	p := []int64{1, 0}
	for i := range r {
		p = append(p, int64(i+2))
	}
	return p
}

func convBwd(c *bctx) error {
	dy := c.dy[0]
	g, err := convGeomOf(c, c.in(0), c.in(1), c.out(0))
	if err != nil {
		return err
	}
	if len(c.n.Input) > 2 && c.need[2] {
		c.dx[2] = c.reduceSum(dy, append([]int64{0}, spatialAxes(g.spatial)...), false)
	}
	// Kernel taps that only ever meet padding (a 3×3 kernel on a 1×1 map
	// has one live tap) add exact zeros to dx and have zero gradient: the
	// gradients are those of the convolution with the live taps alone.
	w, live := c.in(1), g
	lo, hi, trimmed := liveTaps(g)
	if trimmed {
		live = g.trim(lo, hi)
		w = c.op("Slice", []string{w, c.i64(lo...), c.i64(hi...), c.i64(spatialAxes(g.spatial)...)})
	}
	if c.need[0] {
		c.dx[0] = convInputGrad(c.emitter, dy, w, live)
	}
	if c.need[1] {
		dw := convWeightGrad(c.emitter, c.in(0), dy, live)
		if trimmed {
			dw = padDeadTaps(c.emitter, dw, g, lo, hi)
		}
		c.dx[1] = dw
	}
	return nil
}

// padDeadTaps puts the zero gradients of the dead taps around dw, the
// gradient of the live taps [lo, hi). A single live tap (a 3×3 kernel on a
// 1×1 map) is selected into place by a constant mask: ORT's Pad spends
// about 7 ms on a [512, 512, 1, 1] -> [512, 512, 3, 3] pad, one element at
// a time, against 1 ms for the broadcast Where.
func padDeadTaps(e *emitter, dw string, g *convGeom, lo, hi []int64) string {
	r := g.spatial
	one := true
	for i := range r {
		one = one && hi[i]-lo[i] == 1
	}
	if one {
		dims := append([]int64{1, 1}, g.Kernel...)
		mask := make([]byte, graph.NumElements(dims))
		at := int64(0)
		for i := range r {
			at = at*g.Kernel[i] + lo[i]
		}
		mask[at] = 1
		name := e.b.Fresh("dead_taps_mask")
		e.b.G.Initializer = append(e.b.G.Initializer, &pb.TensorProto{Name: &name, DataType: proto.Int32(int32(graph.Bool)), Dims: dims, RawData: mask})
		return e.op("Where", []string{name, dw, e.f32r(0, r+2)})
	}
	pads := make([]int64, 2*(r+2))
	for i := range r {
		pads[i+2], pads[i+2+r+2] = lo[i], g.Kernel[i]-hi[i]
	}
	return e.op("Pad", []string{dw, e.i64(pads...)})
}

// liveTaps returns, per spatial dim, the range [lo, hi) of kernel offsets
// that meet the input (not only padding) at some output position, and
// whether it is narrower than the kernel anywhere.
func liveTaps(g *convGeom) (lo, hi []int64, trimmed bool) {
	r := g.spatial
	lo, hi = make([]int64, r), make([]int64, r)
	for i := range r {
		lo[i], hi[i] = -1, -1
		for t := range g.Kernel[i] {
			for o := range g.y[i+2] {
				if in := o*g.Strides[i] + t*g.Dilations[i] - g.PadBegin[i]; in >= 0 && in < g.x[i+2] {
					if lo[i] < 0 {
						lo[i] = t
					}
					hi[i] = t + 1
					break
				}
			}
		}
		if lo[i] < 0 { // no tap meets the input: keep the kernel (all gradients are zero)
			lo[i], hi[i] = 0, g.Kernel[i]
		}
		trimmed = trimmed || lo[i] > 0 || hi[i] < g.Kernel[i]
	}
	return lo, hi, trimmed
}

// trim is g with the kernel cut to the taps [lo, hi): the same output
// positions, with the pads moved by the taps cut.
func (g *convGeom) trim(lo, hi []int64) *convGeom {
	r := g.spatial
	win := &graph.Window{Kernel: make([]int64, r), Strides: g.Strides, Dilations: g.Dilations,
		PadBegin: make([]int64, r), PadEnd: make([]int64, r), Ceil: g.Ceil}
	for i := range r {
		k := hi[i] - lo[i]
		win.Kernel[i] = k
		win.PadBegin[i] = g.PadBegin[i] - lo[i]*g.Dilations[i]
		win.PadEnd[i] = (g.y[i+2]-1)*g.Strides[i] + g.Dilations[i]*(k-1) + 1 - g.x[i+2] - win.PadBegin[i]
	}
	w := append(append([]int64{}, g.w[:2]...), win.Kernel...)
	return &convGeom{Window: win, group: g.group, x: g.x, w: w, y: g.y, spatial: r, kernelSp: win.Kernel}
}

// convInputGrad is d conv(x, w) / dx applied to dy. With unit strides it is a
// Conv of dy with the flipped, transposed kernel and pads dk-1-p (the layout
// ORT's CPU provider runs fastest); otherwise a ConvTranspose with the
// output_padding that restores x's size.
func convInputGrad(e *emitter, dy, w string, g *convGeom) string {
	r := g.spatial
	unit := true
	padB, padE := make([]int64, r), make([]int64, r)
	for i := range r {
		dk := g.Dilations[i]*(g.Kernel[i]-1) + 1
		padB[i], padE[i] = dk-1-g.PadBegin[i], dk-1-g.PadEnd[i]
		if g.Strides[i] != 1 || padB[i] < 0 || padE[i] < 0 {
			unit = false
		}
	}
	if unit {
		wf := flipKernel(e, w, g)
		if g.group == 1 && r == 2 {
			win := &graph.Window{Kernel: g.Kernel, Strides: ones(r), Dilations: g.Dilations, PadBegin: padB, PadEnd: padE}
			if dx, ok := e.convMatMul(dy, wf, "", g.y[1:], []int64{g.x[1], g.w[0], g.Kernel[0], g.Kernel[1]}, g.x[2:], win, ""); ok {
				return dx
			}
		}
		return e.conv(dy, wf, "", ones(r), g.Dilations, padB, padE, g.group)
	}
	return e.convT(dy, w, g.Strides, g.Dilations, g.PadBegin, g.PadEnd, g.Kernel, g.y[2:], g.x[2:], g.group)
}

// flipKernel turns a Conv weight [Co, Ci/g, k...] into the weight of the
// transposed convolution [Ci, Co/g, k...], spatially reversed.
func flipKernel(e *emitter, w string, g *convGeom) string {
	r := g.spatial
	co, cig := g.w[0], g.w[1]
	cog := co / g.group
	var wt string
	switch {
	case g.group == 1:
		wt = e.transpose(w, swap01(r)...)
	case cig == 1 && cog == 1:
		wt = w // depthwise: [C, 1, k...] is its own transpose
	default:
		shp := append([]int64{g.group, cog, cig}, g.Kernel...)
		perm := []int64{0, 2, 1}
		for i := range r {
			perm = append(perm, int64(i+3))
		}
		wt = e.reshape(e.transpose(e.reshape(w, e.i64(shp...)), perm...), e.i64(append([]int64{g.x[1], cog}, g.Kernel...)...))
	}
	starts, ends, steps := make([]int64, r), make([]int64, r), make([]int64, r)
	for i := range r {
		starts[i], ends[i], steps[i] = -1, -(1 << 62), -1
	}
	return e.op("Slice", []string{wt, e.i64(starts...), e.i64(ends...), e.i64(spatialAxes(r)...), e.i64(steps...)})
}

// convT emits ConvTranspose(dy, w) with explicit symmetric pads producing
// spatial size out exactly: output_padding makes up the strided remainder and
// asymmetric pads become symmetric ones plus a Slice.
func (e *emitter) convT(dy, w string, s, d, padB, padE, k, inSp, out []int64, group int64) string {
	r := len(s)
	sym := make([]int64, 2*r)
	opad := make([]int64, r)
	crop := false
	cs, ce := make([]int64, r), make([]int64, r)
	for i := range r {
		m := max(0, min(padB[i], padE[i]))
		sym[i], sym[i+r] = m, m
		dk := d[i]*(k[i]-1) + 1
		full := (inSp[i]-1)*s[i] + dk - 2*m // size with pads m, output_padding 0
		want := out[i] + (padB[i] - m) + (padE[i] - m)
		if want >= full && want-full < max(s[i], d[i]) {
			opad[i] = want - full
		} else {
			crop = true
		}
		cs[i] = padB[i] - m
		ce[i] = cs[i] + out[i]
		if cs[i] != 0 || ce[i] != full+opad[i] {
			crop = true
		}
	}
	attrs := []*pb.AttributeProto{graph.Ints("strides", s...), graph.Ints("dilations", d...), graph.Ints("pads", sym...)}
	if group != 1 {
		attrs = append(attrs, graph.Int("group", group))
	}
	nonzero := false
	for _, v := range opad {
		nonzero = nonzero || v != 0
	}
	if nonzero {
		attrs = append(attrs, graph.Ints("output_padding", opad...))
	}
	y := e.op("ConvTranspose", []string{dy, w}, attrs...)
	if crop {
		// Rare (padding below zero or beyond the stride): fix up by Pad/Slice.
		pads := make([]int64, 2*(r+2))
		for i := range r {
			full := (inSp[i]-1)*s[i] + d[i]*(k[i]-1) + 1 - 2*sym[i] + opad[i]
			if ce[i] > full {
				pads[i+2+r+2] = ce[i] - full
			}
		}
		y = e.op("Pad", []string{y, e.i64(pads...)})
		y = e.op("Slice", []string{y, e.i64(cs...), e.i64(ce...), e.i64(spatialAxes(r)...)})
	}
	return y
}

// WeightGradMethod selects how Conv weight gradients are computed (see
// doc.go for the measurements behind the default).
type WeightGradMethod int

const (
	// WeightGradAuto is the default: WeightGradIm2col where its column
	// buffer stays under 1 MiB per example, WeightGradOffsets otherwise,
	// WeightGradConv for grouped convolutions (as a grouped Conv).
	WeightGradAuto WeightGradMethod = iota
	// WeightGradConv: one Conv of x (as C×N×H×W) with dy (as Co×N×Ho×Wo)
	// as the kernel, dilations = stride.
	WeightGradConv
	// WeightGradIm2col: Pad + k·k strided Slices + Concat, one Gemm.
	WeightGradIm2col
	// WeightGradOffsets: one Gemm [Co, N·P]×[N·P, Ci] per kernel offset.
	WeightGradOffsets
)

// im2colMaxBytesPerExample bounds the im2col column buffer WeightGradAuto
// accepts: 1 MiB per example, 128 MiB at batch 128.
const im2colMaxBytesPerExample = 1 << 20

func convWeightGrad(e *emitter, x, dy string, g *convGeom) string {
	if g.group == 1 {
		switch e.weightGrad {
		case WeightGradIm2col:
			return weightGradIm2col(e, x, dy, g)
		case WeightGradOffsets:
			return weightGradOffsets(e, x, dy, g)
		case WeightGradAuto:
			// im2col's single Gemm wins when its column buffer is small
			// (deep, low-resolution layers); per-offset Gemms keep memory
			// flat on large activations. See doc.go for the measurements.
			if 4*g.x[1]*mulDims(g.Kernel)*mulDims(g.y[2:]) <= im2colMaxBytesPerExample {
				return weightGradIm2col(e, x, dy, g)
			}
			return weightGradOffsets(e, x, dy, g)
		}
	}
	return weightGradConv(e, x, dy, g)
}

// weightGradConv: dW[co,ci,i,j] = Σ_{n,y,x} dY[n,co,y,x]·Xpad[n,ci,y·s+i·d,x·s+j·d],
// a convolution over the batch-as-channels of X^T with dY^T as kernel.
func weightGradConv(e *emitter, x, dy string, g *convGeom) string {
	r := g.spatial
	var xt, dyt string
	if g.group == 1 {
		xt, dyt = e.transpose(x, swap01(r)...), e.transpose(dy, swap01(r)...)
	} else {
		xt, dyt = weightGradGroupedInputs(e, x, dy, g)
	}
	res := e.conv(xt, dyt, "", g.Dilations, g.Strides, g.PadBegin, g.PadEnd, g.group) // [Ci/G, Co, k'...]
	crop := false
	ends := make([]int64, r)
	for i := range r {
		kk := (g.x[i+2]+g.PadBegin[i]+g.PadEnd[i]-g.Strides[i]*(g.y[i+2]-1)-1)/g.Dilations[i] + 1
		ends[i] = g.Kernel[i]
		if kk != g.Kernel[i] {
			crop = true
		}
	}
	if crop {
		res = e.op("Slice", []string{res, e.i64(make([]int64, r)...), e.i64(ends...), e.i64(spatialAxes(r)...)})
	}
	if g.w[1] == 1 {
		return e.reshape(res, e.i64(g.w...)) // [1, Co, k...]: a reshape, no copy
	}
	return e.transpose(res, swap01(r)...)
}

// weightGradGroupedInputs lays out x and dy for weightGradConv of a grouped
// convolution (G groups, cig input and cog output channels each): x as
// [cig, G·N, H, W] and dy as [Co, N, Ho, Wo], so that a Conv with group G
// pairs each output channel only with the input channels of its group:
// exactly the FLOPs of the gradient, where the plain Conv form computes all
// Ci×Co pairs (G times the work) and masks the off-group blocks.
func weightGradGroupedInputs(e *emitter, x, dy string, g *convGeom) (xt, dyt string) {
	r := g.spatial
	cig, cog := g.w[1], g.w[0]/g.group
	perm := func(p ...int64) []int64 {
		for i := range r {
			p = append(p, int64(i+3))
		}
		return p
	}
	// -1 stands for the batch, which may be dynamic.
	xt = e.reshape(x, e.i64(append([]int64{-1, g.group, cig}, g.x[2:]...)...))
	xt = e.transpose(xt, perm(2, 1, 0)...) // [cig, G, N, H, W]
	xt = e.reshape(xt, e.i64(append([]int64{cig, -1}, g.x[2:]...)...))
	dyt = e.reshape(dy, e.i64(append([]int64{-1, g.group, cog}, g.y[2:]...)...))
	dyt = e.transpose(dyt, perm(1, 2, 0)...) // [G, cog, N, Ho, Wo]
	dyt = e.reshape(dyt, e.i64(append([]int64{g.w[0], -1}, g.y[2:]...)...))
	return xt, dyt
}

// im2colSlices returns, for each kernel offset, the strided window of the
// padded xt (C×N×H×W) that meets it: [C, N, Ho, Wo] each. use, when set,
// is called right after each slice is emitted (so a consumer follows its
// slice in node order and the memory planner can free slices one by one).
func im2colSlices(e *emitter, xt string, g *convGeom, use func(string) string) []string {
	r := g.spatial
	pads := make([]int64, 2*(r+2))
	padded := false
	for i := range r {
		pads[i+2], pads[i+2+r+2] = g.PadBegin[i], g.PadEnd[i]
		padded = padded || g.PadBegin[i] != 0 || g.PadEnd[i] != 0
	}
	if padded {
		xt = e.op("Pad", []string{xt, e.i64(pads...)})
	}
	var outs []string
	offs := make([]int64, r)
	var rec func(dim int)
	rec = func(dim int) {
		if dim == r {
			starts, ends := make([]int64, r), make([]int64, r)
			for i := range r {
				starts[i] = offs[i] * g.Dilations[i]
				ends[i] = starts[i] + (g.y[i+2]-1)*g.Strides[i] + 1
			}
			whole := true
			for i := range r {
				whole = whole && starts[i] == 0 && ends[i] == g.x[i+2]+g.PadBegin[i]+g.PadEnd[i] && g.Strides[i] == 1
			}
			sl := xt // 1×1 kernel, unit stride: the window is all of xt
			if !whole {
				sl = e.op("Slice", []string{xt, e.i64(starts...), e.i64(ends...), e.i64(spatialAxes(r)...), e.i64(g.Strides...)})
			}
			if use != nil {
				sl = use(sl)
			}
			outs = append(outs, sl)
			return
		}
		for o := range g.Kernel[dim] {
			offs[dim] = o
			rec(dim + 1)
		}
	}
	rec(0)
	return outs
}

// weightGradIm2col: columns [Ci·K, N·P] from k·k strided slices, then one
// Gemm with dY as [Co, N·P].
func weightGradIm2col(e *emitter, x, dy string, g *convGeom) string {
	r := g.spatial
	xt := e.transpose(x, swap01(r)...)
	slices := im2colSlices(e, xt, g, func(s string) string { return e.op("Unsqueeze", []string{s, e.i64(1)}) })
	cols := e.op("Concat", slices, graph.Int("axis", 1)) // [Ci, K, N, Ho, Wo]
	kk := mulDims(g.Kernel)
	cols = e.reshape(cols, e.i64(g.x[1]*kk, -1))
	dyt := e.reshape(e.transpose(dy, swap01(r)...), e.i64(g.w[0], -1))
	dw := e.op("Gemm", []string{dyt, cols}, graph.Int("transB", 1)) // [Co, Ci·K]
	return e.reshape(dw, e.i64(g.w...))
}

// weightGradOffsets: one Gemm [Co, N·P]×[N·P, Ci] per kernel offset.
func weightGradOffsets(e *emitter, x, dy string, g *convGeom) string {
	r := g.spatial
	xt := e.transpose(x, swap01(r)...)
	dyt := e.reshape(e.transpose(dy, swap01(r)...), e.i64(g.w[0], -1))
	parts := im2colSlices(e, xt, g, func(s string) string {
		p := e.op("Gemm", []string{dyt, e.reshape(s, e.i64(g.x[1], -1))}, graph.Int("transB", 1)) // [Co, Ci]
		return e.op("Unsqueeze", []string{p, e.i64(2)})
	})
	dw := e.op("Concat", parts, graph.Int("axis", 2)) // [Co, Ci, K]
	return e.reshape(dw, e.i64(g.w...))
}

// convTransposeBwd: ConvTranspose is the adjoint of Conv in its input, so
// dX = Conv(dY, W) with the same attributes, and dW is the Conv weight
// gradient with the roles of input and output swapped.
func convTransposeBwd(c *bctx) error {
	dy := c.dy[0]
	xi, err := c.vi(c.in(0))
	if err != nil {
		return err
	}
	wi, err := c.vi(c.in(1))
	if err != nil {
		return err
	}
	yi, err := c.vi(c.out(0))
	if err != nil {
		return err
	}
	if len(xi.dims) < 3 || len(wi.dims) != len(xi.dims) || !(&vinfo{dims: xi.dims[1:]}).static() || !wi.static() || !(&vinfo{dims: yi.dims[1:]}).static() {
		return fmt.Errorf("%w: ConvTranspose gradients need static channel and spatial dims", ErrShape)
	}
	r := len(xi.dims) - 2
	k := graph.AttrInts(c.n, "kernel_shape", wi.dims[2:])
	t, err := graph.ResolveConvTranspose(c.n, xi.dims[2:], k)
	if err != nil {
		return err
	}
	group := graph.AttrInt(c.n, "group", 1)
	if len(c.n.Input) > 2 && c.need[2] {
		c.dx[2] = c.reduceSum(dy, append([]int64{0}, spatialAxes(r)...), false)
	}
	// The equivalent Conv: input Y-shaped, weight W [Ci, Co/g, k], output X.
	g := &convGeom{Window: &t.Window, group: group,
		x: yi.dims, w: wi.dims, y: xi.dims, spatial: r, kernelSp: k}
	if c.need[0] {
		c.dx[0] = c.conv(dy, c.in(1), "", t.Strides, t.Dilations, t.PadBegin, t.PadEnd, group)
	}
	if c.need[1] {
		c.dx[1] = convWeightGrad(c.emitter, dy, c.in(0), g)
	}
	return nil
}
