package compiler

import (
	"fmt"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

func init() {
	rules["MaxPool"] = &rule{fwd: maxPoolFwd, bwd: maxPoolBwd}
	rules["AveragePool"] = &rule{bwd: avgPoolBwd}
	rules["GlobalAveragePool"] = &rule{bwd: globalAvgPoolBwd}
}

// maxPoolFwd adds the Indices output when x needs a gradient.
func maxPoolFwd(e *emitter, n *pb.NodeProto, need []bool) (any, error) {
	var idx string
	if need[0] {
		if graph.AttrInt(n, "storage_order", 0) != 0 {
			return nil, fmt.Errorf("%w: MaxPool with storage_order 1", ErrNoRule)
		}
		if len(n.Output) > 1 && n.Output[1] != "" {
			idx = n.Output[1]
		} else {
			idx = e.b.Fresh(n.GetName() + "_indices")
			n.Output = append(n.Output[:1], idx)
		}
	}
	e.b.G.Node = append(e.b.G.Node, n)
	return idx, nil
}

// maxPoolBwd routes each output gradient to the one input element MaxPool's
// Indices names (so ties give the gradient to exactly one element, as in
// PyTorch), accumulating over overlapping windows with ScatterElements(add)
// on the flattened tensor.
func maxPoolBwd(c *bctx) error {
	idx, _ := c.saved.(string)
	if idx == "" {
		return fmt.Errorf("%w: MaxPool indices missing", ErrNoRule)
	}
	x := c.in(0)
	flat := c.i64(-1)
	n := c.op("Reshape", []string{c.op("Size", []string{x}), c.i64(1)})
	zeros := c.op("ConstantOfShape", []string{n}, graph.TensorAttr("value", graph.FloatTensor("", []int64{1}, []float32{0})))
	sc := c.op("ScatterElements", []string{zeros, c.reshape(idx, flat), c.reshape(c.dy[0], flat)},
		graph.Int("axis", 0), graph.Str("reduction", "add"))
	c.dx[0] = c.reshapeLike(sc, x)
	return nil
}

// avgPoolBwd spreads each output gradient evenly over its window: a
// depthwise ConvTranspose with a constant 1/|window| kernel; with
// count_include_pad 0 and pads the per-output divisor (static) scales dy
// first and the kernel is all ones.
func avgPoolBwd(c *bctx) error {
	x := c.in(0)
	xi, err := c.vi(x)
	if err != nil {
		return err
	}
	yi, err := c.vi(c.out(0))
	if err != nil {
		return err
	}
	if len(xi.dims) < 3 || !(&vinfo{dims: xi.dims[1:]}).static() {
		return fmt.Errorf("%w: AveragePool gradient needs static channel and spatial dims (input %v)", ErrShape, xi.dims)
	}
	if d := graph.AttrInts(c.n, "dilations", nil); d != nil {
		for _, v := range d {
			if v != 1 {
				return fmt.Errorf("%w: AveragePool with dilations %v", ErrNoRule, d)
			}
		}
	}
	r := len(xi.dims) - 2
	sp := xi.dims[2:]
	win, err := graph.ResolveWindow(c.n, sp, graph.AttrInts(c.n, "kernel_shape", nil))
	if err != nil {
		return err
	}
	osp := yi.dims[2:]
	ch := xi.dims[1]
	kk := mulDims(win.Kernel)
	padded := false
	for i := range r {
		padded = padded || win.PadBegin[i] != 0 || win.PadEnd[i] != 0
		if win.Ceil && (osp[i]-1)*win.Strides[i]+win.Kernel[i] > sp[i]+win.PadBegin[i]+win.PadEnd[i] {
			return fmt.Errorf("%w: AveragePool with ceil_mode windows past the padding", ErrNoRule)
		}
	}
	dy := c.dy[0]
	wval := 1 / float32(kk)
	if padded && graph.AttrInt(c.n, "count_include_pad", 0) == 0 {
		// divisor[o] = number of in-bounds positions of window o.
		div := make([]float32, mulDims(osp))
		idx := make([]int64, r)
		for flatI := range div {
			rem := int64(flatI)
			cnt := int64(1)
			for i := r - 1; i >= 0; i-- {
				idx[i] = rem % osp[i]
				rem /= osp[i]
			}
			for i := range r {
				lo := idx[i]*win.Strides[i] - win.PadBegin[i]
				hi := lo + win.Kernel[i]
				cnt *= max(0, min(hi, sp[i])-max(lo, 0))
			}
			div[flatI] = 1 / float32(max(cnt, 1))
		}
		name := c.b.Fresh("avgpool_divisor")
		c.b.G.Initializer = append(c.b.G.Initializer, graph.FloatTensor(name, osp, div))
		dy = c.mul(dy, name)
		wval = 1
	}
	wdims := append([]int64{ch, 1}, win.Kernel...)
	wdata := make([]float32, mulDims(wdims))
	for i := range wdata {
		wdata[i] = wval
	}
	wname := c.b.Fresh("avgpool_kernel")
	c.b.G.Initializer = append(c.b.G.Initializer, graph.FloatTensor(wname, wdims, wdata))
	c.dx[0] = c.convT(dy, wname, win.Strides, ones(r), win.PadBegin, win.PadEnd, win.Kernel, osp, sp, ch)
	return nil
}

func globalAvgPoolBwd(c *bctx) error {
	x, y := c.in(0), c.out(0)
	k := c.div(c.sizeF(y), c.sizeF(x))
	c.dx[0] = c.op("Expand", []string{c.mul(c.dy[0], k), c.shape(x)})
	return nil
}
