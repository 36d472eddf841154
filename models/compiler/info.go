package compiler

import (
	"fmt"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// vinfo is what the compiler knows statically about a value: element type,
// dimensions (-1 where symbolic or unknown) and, for small integer tensors
// whose contents are known, the contents. graph.InferValues computes it;
// rules add entries for values they emit.
type vinfo struct {
	elem pb.TensorProto_DataType
	dims []int64
	val  []int64 // nil when unknown
}

// static reports whether every dimension is known.
func (v *vinfo) static() bool {
	for _, d := range v.dims {
		if d < 0 {
			return false
		}
	}
	return true
}

// shapesOf infers the vinfo of every value of g (graph.InferValues).
func shapesOf(g *pb.GraphProto, inputs map[string][]int64) (map[string]*vinfo, error) {
	types, ints, err := graph.InferValues(g, inputs)
	if err != nil {
		return nil, err
	}
	info := make(map[string]*vinfo, len(types))
	for name, vt := range types {
		info[name] = &vinfo{elem: vt.Elem, dims: vt.Dims, val: ints[name]}
	}
	return info, nil
}

func dimsOf(info map[string]*vinfo, name string) []int64 {
	if v := info[name]; v != nil {
		return v.dims
	}
	return nil
}

// constInts returns the known int64 contents of a value.
func constInts(info map[string]*vinfo, name string) ([]int64, bool) {
	v := info[name]
	if v == nil || v.val == nil {
		return nil, false
	}
	return v.val, true
}

func normAxis(a int64, rank int) int64 {
	if a < 0 {
		a += int64(rank)
	}
	return a
}

func mulDims(ds []int64) int64 {
	p := int64(1)
	for _, d := range ds {
		if d < 0 {
			return -1
		}
		p *= d
	}
	return p
}

func ones(n int) []int64 {
	o := make([]int64, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

// padsOf returns a Pad node's pads over all axes (begin..., end...).
func padsOf(n *pb.NodeProto, info map[string]*vinfo, rank int) ([]int64, bool) {
	pads := graph.AttrInts(n, "pads", nil)
	if len(n.Input) > 1 && n.Input[1] != "" {
		p, ok := constInts(info, n.Input[1])
		if !ok {
			return nil, false
		}
		pads = p
	}
	if len(n.Input) > 3 && n.Input[3] != "" {
		axes, ok := constInts(info, n.Input[3])
		if !ok || len(pads) != 2*len(axes) {
			return nil, false
		}
		full := make([]int64, 2*rank)
		for i, a := range axes {
			a = normAxis(a, rank)
			full[a] = pads[i]
			full[int(a)+rank] = pads[i+len(axes)]
		}
		pads = full
	}
	if len(pads) != 2*rank {
		return nil, false
	}
	return pads, true
}

// reduceAxes returns normalised reduce axes; all is true when every axis is
// reduced (axes empty and noop_with_empty_axes 0). ok is false when the axes
// input is not a constant.
func reduceAxes(n *pb.NodeProto, info map[string]*vinfo, rank int) (axes []int64, all, ok bool) {
	raw := graph.AttrInts(n, "axes", nil)
	if len(n.Input) > 1 && n.Input[1] != "" {
		a, ok := constInts(info, n.Input[1])
		if !ok {
			return nil, false, false
		}
		raw = a
	}
	if len(raw) == 0 {
		if graph.AttrInt(n, "noop_with_empty_axes", 0) != 0 {
			return nil, false, true
		}
		all := make([]int64, rank)
		for i := range all {
			all[i] = int64(i)
		}
		return all, true, true
	}
	for _, a := range raw {
		axes = append(axes, normAxis(a, rank))
	}
	return axes, false, true
}

// sliceGeom is a Slice node resolved against its input dims.
type sliceGeom struct {
	axes, start, end, step []int64 // per sliced axis, clamped (start/end only when dim known)
	static                 bool    // every sliced axis has a known dim
	outDims                []int64
}

func sliceOf(n *pb.NodeProto, info map[string]*vinfo, dims []int64) (*sliceGeom, error) {
	get := func(i int) ([]int64, bool) {
		if i < len(n.Input) && n.Input[i] != "" {
			return constInts(info, n.Input[i])
		}
		return nil, true
	}
	starts, ok1 := get(1)
	ends, ok2 := get(2)
	axes, ok3 := get(3)
	steps, ok4 := get(4)
	if !(ok1 && ok2 && ok3 && ok4) {
		return nil, nil
	}
	r := len(dims)
	if axes == nil {
		for i := range starts {
			axes = append(axes, int64(i))
		}
	}
	if steps == nil {
		steps = ones(len(starts))
	}
	if len(ends) != len(starts) || len(axes) != len(starts) || len(steps) != len(starts) {
		return nil, fmt.Errorf("slice starts/ends/axes/steps lengths differ")
	}
	g := &sliceGeom{static: true, outDims: append([]int64{}, dims...)}
	for i := range starts {
		a := normAxis(axes[i], r)
		if a < 0 || int(a) >= r {
			return nil, fmt.Errorf("slice axis %d out of range", axes[i])
		}
		st := steps[i]
		if st == 0 {
			return nil, fmt.Errorf("slice step 0")
		}
		d := dims[a]
		s, e := starts[i], ends[i]
		if d < 0 {
			g.static = false
			g.outDims[a] = -1
			g.axes, g.start, g.end, g.step = append(g.axes, a), append(g.start, s), append(g.end, e), append(g.step, st)
			continue
		}
		if s < 0 {
			s += d
		}
		if e < 0 {
			e += d
		}
		if st > 0 {
			s, e = clamp(s, 0, d), clamp(e, 0, d)
			g.outDims[a] = max(0, (e-s+st-1)/st)
		} else {
			s, e = clamp(s, 0, d-1), clamp(e, -1, d-1)
			g.outDims[a] = max(0, (s-e-st-1)/(-st))
		}
		g.axes, g.start, g.end, g.step = append(g.axes, a), append(g.start, s), append(g.end, e), append(g.step, st)
	}
	return g, nil
}

func clamp(v, lo, hi int64) int64 { return max(lo, min(v, hi)) }
