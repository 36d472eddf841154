package compiler

import (
	"slices"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// smallMapArea is the largest output map (Ho·Wo) whose 2-D convolutions the
// train step computes as one MatMul over the whole batch. ORT's CPU Conv
// runs image by image, so on small maps every image's product is a thin
// matrix product that streams the whole kernel; one product over the batch
// streams it once. Measured in ORT 1.29, one thread, batch 128, 3×3 kernel
// (Conv vs this): 512 channels on 1×1 20 ms vs a 0.7 ms MatMul (the dead
// taps cut below; about 3 ms with slicing and transposing the kernel), 256
// on 2×2 23.6 vs 11.2 ms; on 4×4 the Conv wins even where the kernel is
// large (128 channels 7.7 vs 11.8 ms, 256 27 vs 33, 512 98 vs 136).
const smallMapArea = 4

// convMatMul emits conv(x, w) + bias, ungrouped and 2-D, as im2col over the
// batch and one MatMul, naming the result out ("" for a fresh name), when
// the output map is at most smallMapArea; otherwise it emits nothing and
// returns false. xd and wd are x's dims without the batch ([Ci, H, W]) and
// w's ([Co, Ci, kh, kw]), ysp the output's spatial dims (from the shape
// engine, or the gradient's geometry); win is the conv's window. Kernel taps that only
// ever meet padding are cut first (they add exact zeros), so a 3×3 kernel
// on a 1×1 map is a plain [N, Ci] × [Ci, Co] product.
func (e *emitter) convMatMul(x, w, bias string, xd, wd, ysp []int64, win *graph.Window, out string) (string, bool) {
	if len(xd) != 3 || len(wd) != 4 || len(ysp) != 2 || wd[1] != xd[0] || win.Ceil {
		return "", false
	}
	for _, d := range slices.Concat(xd, wd, ysp) {
		if d <= 0 {
			return "", false
		}
	}
	ci, co := xd[0], wd[0]
	ho, wo := ysp[0], ysp[1]
	g := &convGeom{Window: win, group: 1, x: append([]int64{-1}, xd...), w: wd, y: []int64{-1, co, ho, wo}, spatial: 2, kernelSp: wd[2:]}
	if ho*wo > smallMapArea {
		return "", false
	}
	lo, hi, trimmed := liveTaps(g)
	if trimmed {
		g = g.trim(lo, hi)
	}
	for i := range 2 {
		if g.PadBegin[i] < 0 || g.PadEnd[i] < 0 {
			return "", false
		}
	}
	if trimmed {
		w = e.op("Slice", []string{w, e.i64(lo...), e.i64(hi...), e.i64(2, 3)})
	}
	kh, kw := g.Kernel[0], g.Kernel[1]
	taps := kh * kw
	var cols string
	if taps == 1 && ho*wo == 1 && xd[1]*xd[2] == 1 && g.PadBegin[0]+g.PadBegin[1] == 0 {
		cols = e.reshape(x, e.i64(-1, ci)) // one image is one row already
	} else {
		xp := x
		if g.PadBegin[0]+g.PadBegin[1]+g.PadEnd[0]+g.PadEnd[1] > 0 {
			xp = e.op("Pad", []string{x, e.i64(0, 0, g.PadBegin[0], g.PadBegin[1], 0, 0, g.PadEnd[0], g.PadEnd[1])})
		}
		xh := e.transpose(xp, 0, 2, 3, 1) // [N, Hp, Wp, Ci]
		var parts []string
		for i := range kh {
			for j := range kw {
				s0, s1 := i*g.Dilations[0], j*g.Dilations[1]
				parts = append(parts, e.op("Slice", []string{xh,
					e.i64(s0, s1), e.i64(s0+(ho-1)*g.Strides[0]+1, s1+(wo-1)*g.Strides[1]+1), e.i64(1, 2), e.i64(g.Strides[0], g.Strides[1])}))
			}
		}
		c := parts[0]
		if len(parts) > 1 {
			c = e.op("Concat", parts, graph.Int("axis", 3))
		}
		cols = e.reshape(c, e.i64(-1, taps*ci)) // [N·Ho·Wo, (kh, kw, Ci)]
	}
	wm := e.reshape(e.transpose(w, 2, 3, 1, 0), e.i64(taps*ci, co))
	y := e.op("MatMul", []string{cols, wm})
	if bias != "" {
		y = e.add(y, bias)
	}
	var ins []string
	var op string
	var attrs []*pb.AttributeProto
	if ho*wo == 1 {
		op, ins = "Reshape", []string{y, e.i64(-1, co, 1, 1)}
	} else {
		op, ins, attrs = "Transpose", []string{e.reshape(y, e.i64(-1, ho, wo, co))}, []*pb.AttributeProto{graph.Ints("perm", 0, 3, 1, 2)}
	}
	if out == "" {
		return e.op(op, ins, attrs...), true
	}
	e.b.NodeNamed(op, ins, []string{out}, attrs...)
	return out, true
}

// convFwd emits a forward Conv as convMatMul where it qualifies, else as is.
func convFwd(e *emitter, n *pb.NodeProto, _ []bool) (any, error) {
	if len(n.Output) == 1 && graph.AttrInt(n, "group", 1) == 1 && graph.AttrString(n, "auto_pad", "NOTSET") == "NOTSET" {
		xi, wi, yi := e.info[n.Input[0]], e.info[n.Input[1]], e.info[n.Output[0]]
		if xi != nil && wi != nil && yi != nil && len(xi.dims) == 4 && len(wi.dims) == 4 && len(yi.dims) == 4 {
			if win, err := graph.ResolveWindow(n, xi.dims[2:], graph.AttrInts(n, "kernel_shape", wi.dims[2:])); err == nil {
				bias := ""
				if len(n.Input) > 2 {
					bias = n.Input[2]
				}
				if _, ok := e.convMatMul(n.Input[0], n.Input[1], bias, xi.dims[1:], wi.dims, yi.dims[2:], win, n.Output[0]); ok {
					return nil, nil
				}
			}
		}
	}
	e.b.G.Node = append(e.b.G.Node, n)
	return nil, nil
}
