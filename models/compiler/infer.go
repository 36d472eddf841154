package compiler

import (
	"fmt"
	"math"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// unk marks an unknown entry of a propagated int64 value (a symbolic batch
// size read by Shape, say); -1 cannot be used since Reshape gives it meaning.
const unk = math.MinInt64

// vinfo is what the compiler knows statically about a value: element type,
// dimensions (-1 where symbolic or unknown) and, for small int64 tensors whose
// contents are computable (shape arithmetic), the contents.
type vinfo struct {
	elem pb.TensorProto_DataType
	dims []int64
	val  []int64 // nil when unknown; entries may be unk
}

func (v *vinfo) rank() int { return len(v.dims) }

// static reports whether every dimension is known.
func (v *vinfo) static() bool {
	for _, d := range v.dims {
		if d < 0 {
			return false
		}
	}
	return true
}

// inferShapes propagates element types, ranks, static dimensions and int64
// constants through g in node order. Only the ops the compiler understands
// are inferred; the outputs of other ops stay unknown (absent from the map),
// and rules that need them report it.
//
// The graph package grows a general shape inference of its own
// (graph.InferShapes); this private pass covers the compiler's ops, also
// propagates shape arithmetic (Shape -> Gather -> Concat -> Reshape), and
// keeps the compiler independent of that work in progress.
func inferShapes(g *pb.GraphProto, inputs map[string][]int64) (map[string]*vinfo, error) {
	info := map[string]*vinfo{}
	for _, t := range g.Initializer {
		v := &vinfo{elem: pb.TensorProto_DataType(t.GetDataType()), dims: append([]int64{}, t.Dims...)}
		if v.elem == graph.Int64 || v.elem == pb.TensorProto_INT32 {
			if n := graph.NumElements(t.Dims); n <= 64 {
				if vals, err := graph.Int64s(t); err == nil {
					v.val = vals
				}
			}
		}
		info[t.GetName()] = v
	}
	for _, in := range g.Input {
		if _, ok := info[in.GetName()]; ok {
			continue
		}
		dims, et := graph.Dims(in)
		if d, ok := inputs[in.GetName()]; ok {
			dims = d
		}
		info[in.GetName()] = &vinfo{elem: et, dims: append([]int64{}, dims...)}
	}
	for _, n := range g.Node {
		outs, err := inferNode(n, info)
		if err != nil {
			return nil, fmt.Errorf("infer shapes: node %q (%s): %w", n.GetName(), n.GetOpType(), err)
		}
		for i, o := range outs {
			if i < len(n.Output) && n.Output[i] != "" && o != nil {
				info[n.Output[i]] = o
			}
		}
	}
	return info, nil
}

func dimsOf(info map[string]*vinfo, name string) []int64 {
	if v := info[name]; v != nil {
		return v.dims
	}
	return nil
}

// constInts returns the known int64 contents of a value, with ok false if any
// entry is unknown.
func constInts(info map[string]*vinfo, name string) ([]int64, bool) {
	v := info[name]
	if v == nil || v.val == nil {
		return nil, false
	}
	for _, x := range v.val {
		if x == unk {
			return nil, false
		}
	}
	return v.val, true
}

func normAxis(a int64, rank int) int64 {
	if a < 0 {
		a += int64(rank)
	}
	return a
}

func broadcastDims(a, b []int64) ([]int64, error) {
	n := max(len(a), len(b))
	out := make([]int64, n)
	for i := range n {
		da, db := int64(1), int64(1)
		if j := i - (n - len(a)); j >= 0 {
			da = a[j]
		}
		if j := i - (n - len(b)); j >= 0 {
			db = b[j]
		}
		switch {
		case da == db:
			out[i] = da
		case da == 1:
			out[i] = db
		case db == 1:
			out[i] = da
		case da < 0 && db > 1:
			out[i] = db
		case db < 0 && da > 1:
			out[i] = da
		case da < 0 || db < 0:
			out[i] = -1
		default:
			return nil, fmt.Errorf("shapes %v and %v do not broadcast", a, b)
		}
	}
	return out, nil
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

// convOut returns the output spatial size of a convolution-like window op.
func windowOut(in, k, s, d, pb, pe int64, ceil bool) int64 {
	if in < 0 {
		return -1
	}
	dk := d*(k-1) + 1
	num := in + pb + pe - dk
	if ceil {
		o := (num+s-1)/s + 1
		// PyTorch/ONNX: the last window must start inside the input or left pad.
		if (o-1)*s >= in+pb {
			o--
		}
		return o
	}
	return num/s + 1
}

// windowAttrs resolves kernel, strides, dilations and explicit pads of a
// Conv/Pool node over spatial dims sp (auto_pad included).
type window struct {
	k, s, d, pb, pe []int64
	ceil            bool
}

func windowOf(n *pb.NodeProto, sp []int64, kernel []int64) (*window, error) {
	r := len(sp)
	w := &window{k: kernel}
	if len(w.k) != r {
		return nil, fmt.Errorf("kernel %v for %d spatial dims", w.k, r)
	}
	w.s = graph.AttrInts(n, "strides", nil)
	w.d = graph.AttrInts(n, "dilations", nil)
	if w.s == nil {
		w.s = ones(r)
	}
	if w.d == nil {
		w.d = ones(r)
	}
	if len(w.s) != r || len(w.d) != r {
		return nil, fmt.Errorf("strides %v / dilations %v for %d spatial dims", w.s, w.d, r)
	}
	w.ceil = graph.AttrInt(n, "ceil_mode", 0) != 0
	w.pb, w.pe = make([]int64, r), make([]int64, r)
	switch ap := graph.AttrString(n, "auto_pad", "NOTSET"); ap {
	case "NOTSET", "":
		p := graph.AttrInts(n, "pads", nil)
		if p != nil {
			if len(p) != 2*r {
				return nil, fmt.Errorf("pads %v for %d spatial dims", p, r)
			}
			copy(w.pb, p[:r])
			copy(w.pe, p[r:])
		}
	case "VALID":
	case "SAME_UPPER", "SAME_LOWER":
		for i := range r {
			if sp[i] < 0 {
				return nil, fmt.Errorf("auto_pad %s needs static spatial dims", ap)
			}
			out := (sp[i] + w.s[i] - 1) / w.s[i]
			dk := w.d[i]*(w.k[i]-1) + 1
			total := max(0, (out-1)*w.s[i]+dk-sp[i])
			small, big := total/2, total-total/2
			if ap == "SAME_UPPER" {
				w.pb[i], w.pe[i] = small, big
			} else {
				w.pb[i], w.pe[i] = big, small
			}
		}
	default:
		return nil, fmt.Errorf("unknown auto_pad %q", ap)
	}
	return w, nil
}

func ones(n int) []int64 {
	o := make([]int64, n)
	for i := range o {
		o[i] = 1
	}
	return o
}

func (w *window) out(sp []int64) []int64 {
	o := make([]int64, len(sp))
	for i := range sp {
		o[i] = windowOut(sp[i], w.k[i], w.s[i], w.d[i], w.pb[i], w.pe[i], w.ceil)
	}
	return o
}

func attrTensorInfo(t *pb.TensorProto) *vinfo {
	v := &vinfo{elem: pb.TensorProto_DataType(t.GetDataType()), dims: append([]int64{}, t.Dims...)}
	if v.elem == graph.Int64 || v.elem == pb.TensorProto_INT32 {
		if vals, err := graph.Int64s(t); err == nil && len(vals) <= 64 {
			v.val = vals
		}
	}
	return v
}

// inferNode returns one vinfo per output (nil where unknown).
func inferNode(n *pb.NodeProto, info map[string]*vinfo) ([]*vinfo, error) {
	in := func(i int) *vinfo {
		if i < len(n.Input) && n.Input[i] != "" {
			return info[n.Input[i]]
		}
		return nil
	}
	x := in(0)
	same := func() ([]*vinfo, error) {
		if x == nil {
			return nil, nil
		}
		return []*vinfo{{elem: x.elem, dims: append([]int64{}, x.dims...), val: x.val}}, nil
	}
	switch n.GetOpType() {
	case "Constant":
		if a := graph.Attr(n, "value"); a != nil && a.T != nil {
			return []*vinfo{attrTensorInfo(a.T)}, nil
		}
		if a := graph.Attr(n, "value_int"); a != nil {
			return []*vinfo{{elem: graph.Int64, dims: []int64{}, val: []int64{a.GetI()}}}, nil
		}
		if a := graph.Attr(n, "value_ints"); a != nil {
			return []*vinfo{{elem: graph.Int64, dims: []int64{int64(len(a.Ints))}, val: append([]int64{}, a.Ints...)}}, nil
		}
		if a := graph.Attr(n, "value_float"); a != nil {
			return []*vinfo{{elem: graph.Float, dims: []int64{}}}, nil
		}
		if a := graph.Attr(n, "value_floats"); a != nil {
			return []*vinfo{{elem: graph.Float, dims: []int64{int64(len(a.Floats))}}}, nil
		}
		return nil, nil
	case "Identity", "Relu", "LeakyRelu", "Sigmoid", "Tanh", "Clip", "Softmax", "LogSoftmax",
		"Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Abs", "Erf", "Elu", "Selu", "HardSigmoid",
		"Softplus", "BatchNormalization", "InstanceNormalization", "LayerNormalization",
		"LRN", "Floor", "Ceil", "Round", "Sign", "HardSwish", "Mish", "PRelu", "CumSum":
		out, err := same()
		if n.GetOpType() == "BatchNormalization" && len(out) == 1 {
			c := []int64{-1}
			if len(x.dims) > 1 {
				c = []int64{x.dims[1]}
			}
			out = append(out, &vinfo{elem: x.elem, dims: c}, &vinfo{elem: x.elem, dims: c})
		}
		return out, err
	case "Dropout":
		out, err := same()
		if x != nil {
			out = append(out, &vinfo{elem: graph.Bool, dims: append([]int64{}, x.dims...)})
		}
		return out, err
	case "Not":
		return same()
	case "Cast", "CastLike":
		if x == nil {
			return nil, nil
		}
		to := pb.TensorProto_DataType(graph.AttrInt(n, "to", int64(x.elem)))
		if n.GetOpType() == "CastLike" {
			if t := in(1); t != nil {
				to = t.elem
			}
		}
		v := &vinfo{elem: to, dims: append([]int64{}, x.dims...)}
		if to == graph.Int64 || to == pb.TensorProto_INT32 {
			v.val = x.val
		}
		return []*vinfo{v}, nil
	case "Shape":
		if x == nil {
			return nil, nil
		}
		r := int64(len(x.dims))
		start, end := normAxis(graph.AttrInt(n, "start", 0), int(r)), graph.AttrInt(n, "end", r)
		end = min(normAxis(end, int(r)), r)
		start = max(0, min(start, r))
		var val []int64
		for i := start; i < end; i++ {
			d := x.dims[i]
			if d < 0 {
				d = unk
			}
			val = append(val, d)
		}
		return []*vinfo{{elem: graph.Int64, dims: []int64{int64(len(val))}, val: val}}, nil
	case "Size":
		v := &vinfo{elem: graph.Int64, dims: []int64{}}
		if x != nil {
			if p := mulDims(x.dims); p >= 0 {
				v.val = []int64{p}
			} else {
				v.val = []int64{unk}
			}
		}
		return []*vinfo{v}, nil
	case "Add", "Sub", "Mul", "Div", "Pow", "Max", "Min", "Sum", "Mean", "Equal", "Greater", "Less",
		"GreaterOrEqual", "LessOrEqual", "And", "Or", "Where", "Mod":
		var dims []int64
		var vals [][]int64
		for i := range n.Input {
			v := in(i)
			if v == nil {
				return nil, nil
			}
			var err error
			if dims, err = broadcastDims(dims, v.dims); err != nil {
				return nil, err
			}
			vals = append(vals, v.val)
		}
		elem := x.elem
		switch n.GetOpType() {
		case "Equal", "Greater", "Less", "GreaterOrEqual", "LessOrEqual", "And", "Or":
			elem = graph.Bool
		case "Where":
			elem = in(1).elem
		}
		out := &vinfo{elem: elem, dims: dims}
		if elem == graph.Int64 && len(vals) == 2 && vals[0] != nil && vals[1] != nil && len(dims) <= 1 {
			out.val = intArith(n.GetOpType(), vals[0], vals[1], mulDims(dims))
		}
		return []*vinfo{out}, nil
	case "Gather":
		idx := in(1)
		if x == nil || idx == nil {
			return nil, nil
		}
		axis := normAxis(graph.AttrInt(n, "axis", 0), len(x.dims))
		if axis < 0 || int(axis) >= len(x.dims) {
			return nil, fmt.Errorf("axis %d out of range for rank %d", axis, len(x.dims))
		}
		dims := append(append(append([]int64{}, x.dims[:axis]...), idx.dims...), x.dims[axis+1:]...)
		v := &vinfo{elem: x.elem, dims: dims}
		if x.val != nil && idx.val != nil && len(x.dims) == 1 {
			for _, i := range idx.val {
				if i < 0 {
					i += int64(len(x.val))
				}
				if i < 0 || int(i) >= len(x.val) {
					return nil, fmt.Errorf("gather index %d out of range", i)
				}
				v.val = append(v.val, x.val[i])
			}
		}
		return []*vinfo{v}, nil
	case "Unsqueeze", "Squeeze":
		if x == nil {
			return nil, nil
		}
		axes := graph.AttrInts(n, "axes", nil)
		if len(n.Input) > 1 && n.Input[1] != "" {
			a, ok := constInts(info, n.Input[1])
			if !ok {
				return nil, nil
			}
			axes = a
		}
		var dims []int64
		if n.GetOpType() == "Unsqueeze" {
			r := len(x.dims) + len(axes)
			ins := map[int64]bool{}
			for _, a := range axes {
				ins[normAxis(a, r)] = true
			}
			j := 0
			for i := range r {
				if ins[int64(i)] {
					dims = append(dims, 1)
				} else {
					dims = append(dims, x.dims[j])
					j++
				}
			}
		} else {
			rm := map[int64]bool{}
			for _, a := range axes {
				rm[normAxis(a, len(x.dims))] = true
			}
			for i, d := range x.dims {
				if (len(axes) == 0 && d == 1) || rm[int64(i)] {
					continue
				}
				dims = append(dims, d)
			}
		}
		return []*vinfo{{elem: x.elem, dims: dims, val: x.val}}, nil
	case "Concat":
		if x == nil {
			return nil, nil
		}
		axis := normAxis(graph.AttrInt(n, "axis", 0), len(x.dims))
		dims := append([]int64{}, x.dims...)
		var val []int64
		allVal := true
		for i := range n.Input {
			v := in(i)
			if v == nil || len(v.dims) != len(dims) {
				return nil, nil
			}
			if i > 0 {
				if dims[axis] < 0 || v.dims[axis] < 0 {
					dims[axis] = -1
				} else {
					dims[axis] += v.dims[axis]
				}
			}
			if v.val == nil {
				allVal = false
			}
			val = append(val, v.val...)
		}
		out := &vinfo{elem: x.elem, dims: dims}
		if allVal && len(dims) == 1 {
			out.val = val
		}
		return []*vinfo{out}, nil
	case "Reshape":
		s := in(1)
		if x == nil || s == nil || s.val == nil {
			if s != nil && len(s.dims) == 1 && s.dims[0] >= 0 && x != nil {
				return []*vinfo{{elem: x.elem, dims: neg(int(s.dims[0]))}}, nil
			}
			return nil, nil
		}
		dims, err := reshapeDims(x.dims, s.val, graph.AttrInt(n, "allowzero", 0) != 0)
		if err != nil {
			return nil, err
		}
		return []*vinfo{{elem: x.elem, dims: dims, val: x.val}}, nil
	case "Flatten":
		if x == nil {
			return nil, nil
		}
		axis := normAxis(graph.AttrInt(n, "axis", 1), len(x.dims))
		return []*vinfo{{elem: x.elem, dims: []int64{mulDims(x.dims[:axis]), mulDims(x.dims[axis:])}}}, nil
	case "Transpose":
		if x == nil {
			return nil, nil
		}
		perm := graph.AttrInts(n, "perm", nil)
		if perm == nil {
			for i := len(x.dims) - 1; i >= 0; i-- {
				perm = append(perm, int64(i))
			}
		}
		if len(perm) != len(x.dims) {
			return nil, fmt.Errorf("perm %v for rank %d", perm, len(x.dims))
		}
		dims := make([]int64, len(perm))
		for i, p := range perm {
			dims[i] = x.dims[p]
		}
		return []*vinfo{{elem: x.elem, dims: dims}}, nil
	case "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool":
		if x == nil || len(x.dims) < 3 {
			return nil, nil
		}
		sp := x.dims[2:]
		var kernel []int64
		co := int64(-1)
		w := in(1)
		switch n.GetOpType() {
		case "Conv", "ConvTranspose":
			if w == nil {
				return nil, nil
			}
			kernel = graph.AttrInts(n, "kernel_shape", w.dims[2:])
			co = w.dims[0]
			if n.GetOpType() == "ConvTranspose" {
				co = w.dims[1] * graph.AttrInt(n, "group", 1)
			}
		default:
			kernel = graph.AttrInts(n, "kernel_shape", nil)
			co = x.dims[1]
		}
		var out []int64
		if n.GetOpType() == "ConvTranspose" {
			t, err := convTransposeGeom(n, sp, kernel)
			if err != nil {
				return nil, err
			}
			out = t.outSp
		} else {
			win, err := windowOf(n, sp, kernel)
			if err != nil {
				return nil, err
			}
			out = win.out(sp)
		}
		dims := append([]int64{x.dims[0], co}, out...)
		res := []*vinfo{{elem: x.elem, dims: dims}}
		if n.GetOpType() == "MaxPool" {
			res = append(res, &vinfo{elem: graph.Int64, dims: append([]int64{}, dims...)})
		}
		return res, nil
	case "GlobalAveragePool", "GlobalMaxPool":
		if x == nil || len(x.dims) < 2 {
			return nil, nil
		}
		dims := append([]int64{}, x.dims[:2]...)
		for range x.dims[2:] {
			dims = append(dims, 1)
		}
		return []*vinfo{{elem: x.elem, dims: dims}}, nil
	case "Gemm":
		a, b := x, in(1)
		if a == nil || b == nil || len(a.dims) != 2 || len(b.dims) != 2 {
			return nil, nil
		}
		m, nn := a.dims[0], b.dims[1]
		if graph.AttrInt(n, "transA", 0) != 0 {
			m = a.dims[1]
		}
		if graph.AttrInt(n, "transB", 0) != 0 {
			nn = b.dims[0]
		}
		return []*vinfo{{elem: a.elem, dims: []int64{m, nn}}}, nil
	case "MatMul":
		a, b := x, in(1)
		if a == nil || b == nil || len(a.dims) < 2 || len(b.dims) < 2 {
			return nil, nil
		}
		batch, err := broadcastDims(a.dims[:len(a.dims)-2], b.dims[:len(b.dims)-2])
		if err != nil {
			return nil, err
		}
		dims := append(batch, a.dims[len(a.dims)-2], b.dims[len(b.dims)-1])
		return []*vinfo{{elem: a.elem, dims: dims}}, nil
	case "Split":
		if x == nil {
			return nil, nil
		}
		axis := normAxis(graph.AttrInt(n, "axis", 0), len(x.dims))
		split := graph.AttrInts(n, "split", nil)
		if len(n.Input) > 1 && n.Input[1] != "" {
			s, ok := constInts(info, n.Input[1])
			if !ok {
				return nil, nil
			}
			split = s
		}
		if split == nil {
			d := x.dims[axis]
			k := int64(len(n.Output))
			if d < 0 {
				split = neg(int(k))
			} else {
				c := (d + k - 1) / k
				for i := range k {
					split = append(split, min(c, d-i*c))
				}
			}
		}
		var res []*vinfo
		for _, s := range split {
			dims := append([]int64{}, x.dims...)
			dims[axis] = s
			res = append(res, &vinfo{elem: x.elem, dims: dims})
		}
		return res, nil
	case "Slice":
		if x == nil {
			return nil, nil
		}
		sl, err := sliceOf(n, info, x.dims)
		if err != nil || sl == nil {
			return nil, err
		}
		v := &vinfo{elem: x.elem, dims: sl.outDims}
		if x.val != nil && len(x.dims) == 1 && sl.static {
			for i := sl.start[0]; (sl.step[0] > 0 && i < sl.end[0]) || (sl.step[0] < 0 && i > sl.end[0]); i += sl.step[0] {
				v.val = append(v.val, x.val[i])
			}
		}
		return []*vinfo{v}, nil
	case "Pad":
		if x == nil {
			return nil, nil
		}
		pads, ok := padsOf(n, info, len(x.dims))
		if !ok {
			return nil, nil
		}
		r := len(x.dims)
		dims := make([]int64, r)
		for i, d := range x.dims {
			dims[i] = -1
			if d >= 0 {
				dims[i] = d + pads[i] + pads[i+r]
			}
		}
		return []*vinfo{{elem: x.elem, dims: dims}}, nil
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp":
		if x == nil {
			return nil, nil
		}
		axes, all, ok := reduceAxes(n, info, len(x.dims))
		if !ok {
			return nil, nil
		}
		if axes == nil && !all {
			return same()
		}
		keep := graph.AttrInt(n, "keepdims", 1) != 0
		red := map[int64]bool{}
		for _, a := range axes {
			red[a] = true
		}
		var dims []int64
		for i, d := range x.dims {
			if all || red[int64(i)] {
				if keep {
					dims = append(dims, 1)
				}
				continue
			}
			dims = append(dims, d)
		}
		return []*vinfo{{elem: x.elem, dims: dims}}, nil
	case "ArgMax", "ArgMin":
		if x == nil {
			return nil, nil
		}
		axis := normAxis(graph.AttrInt(n, "axis", 0), len(x.dims))
		var dims []int64
		for i, d := range x.dims {
			if int64(i) == axis {
				if graph.AttrInt(n, "keepdims", 1) != 0 {
					dims = append(dims, 1)
				}
				continue
			}
			dims = append(dims, d)
		}
		return []*vinfo{{elem: graph.Int64, dims: dims}}, nil
	case "ConstantOfShape":
		s := in(0)
		if s == nil || s.val == nil {
			return nil, nil
		}
		elem := graph.Float
		if a := graph.Attr(n, "value"); a != nil && a.T != nil {
			elem = pb.TensorProto_DataType(a.T.GetDataType())
		}
		dims := make([]int64, len(s.val))
		for i, d := range s.val {
			dims[i] = d
			if d == unk {
				dims[i] = -1
			}
		}
		return []*vinfo{{elem: elem, dims: dims}}, nil
	case "Expand":
		s := in(1)
		if x == nil || s == nil || s.val == nil {
			return nil, nil
		}
		target := make([]int64, len(s.val))
		for i, d := range s.val {
			target[i] = d
			if d == unk {
				target[i] = -1
			}
		}
		dims, err := broadcastDims(x.dims, target)
		if err != nil {
			return nil, err
		}
		return []*vinfo{{elem: x.elem, dims: dims}}, nil
	case "OneHot":
		return nil, nil
	}
	return nil, nil
}

func neg(n int) []int64 {
	o := make([]int64, n)
	for i := range o {
		o[i] = -1
	}
	return o
}

func intArith(op string, a, b []int64, n int64) []int64 {
	if n < 0 {
		return nil
	}
	at := func(v []int64, i int64) int64 {
		if len(v) == 1 {
			return v[0]
		}
		return v[i]
	}
	out := make([]int64, n)
	for i := range n {
		x, y := at(a, i), at(b, i)
		if x == unk || y == unk {
			out[i] = unk
			continue
		}
		switch op {
		case "Add":
			out[i] = x + y
		case "Sub":
			out[i] = x - y
		case "Mul":
			out[i] = x * y
		case "Div":
			if y == 0 {
				return nil
			}
			out[i] = x / y
		case "Max":
			out[i] = max(x, y)
		case "Min":
			out[i] = min(x, y)
		default:
			return nil
		}
	}
	return out
}

// reshapeDims resolves a Reshape target (0 copies, -1 infers, unk is a
// symbolic dimension assumed to be the input's symbolic one).
func reshapeDims(in, shape []int64, allowZero bool) ([]int64, error) {
	out := make([]int64, len(shape))
	infer := -1
	for i, s := range shape {
		switch {
		case s == 0 && !allowZero:
			if i >= len(in) {
				return nil, fmt.Errorf("reshape 0 at axis %d beyond input rank %d", i, len(in))
			}
			out[i] = in[i]
		case s == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("reshape with two -1 in %v", shape)
			}
			infer = i
		case s == unk:
			out[i] = -1
		default:
			out[i] = s
		}
	}
	if infer < 0 {
		return out, nil
	}
	// Known products, and counts of symbolic dims on both sides.
	pin, symIn := int64(1), 0
	for _, d := range in {
		if d < 0 {
			symIn++
		} else {
			pin *= d
		}
	}
	pout, symOut := int64(1), 0
	for i, d := range out {
		if i == infer {
			continue
		}
		if d < 0 {
			symOut++
		} else {
			pout *= d
		}
	}
	out[infer] = -1
	if symIn == symOut && pout != 0 && pin%pout == 0 {
		out[infer] = pin / pout
	}
	return out, nil
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
	if len(n.Input) < 3 { // opset < 10: attributes
		starts, ends, axes = graph.AttrInts(n, "starts", nil), graph.AttrInts(n, "ends", nil), graph.AttrInts(n, "axes", nil)
	}
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

// convTGeom is a ConvTranspose node resolved to explicit pads.
type convTGeom struct {
	k, s, d, pb, pe, op []int64
	outSp               []int64
}

func convTransposeGeom(n *pb.NodeProto, sp, kernel []int64) (*convTGeom, error) {
	r := len(sp)
	if len(kernel) != r {
		return nil, fmt.Errorf("kernel %v for %d spatial dims", kernel, r)
	}
	t := &convTGeom{k: kernel, s: graph.AttrInts(n, "strides", ones(r)), d: graph.AttrInts(n, "dilations", ones(r)),
		op: graph.AttrInts(n, "output_padding", make([]int64, r))}
	if len(t.s) != r || len(t.d) != r || len(t.op) != r {
		return nil, fmt.Errorf("strides/dilations/output_padding lengths do not match %d spatial dims", r)
	}
	t.pb, t.pe = make([]int64, r), make([]int64, r)
	outShape := graph.AttrInts(n, "output_shape", nil)
	if len(outShape) > r {
		outShape = outShape[len(outShape)-r:]
	}
	ap := graph.AttrString(n, "auto_pad", "NOTSET")
	if p := graph.AttrInts(n, "pads", nil); p != nil && outShape == nil && (ap == "NOTSET" || ap == "") {
		if len(p) != 2*r {
			return nil, fmt.Errorf("pads %v for %d spatial dims", p, r)
		}
		copy(t.pb, p[:r])
		copy(t.pe, p[r:])
	}
	t.outSp = make([]int64, r)
	for i := range r {
		dk := t.d[i]*(t.k[i]-1) + 1
		if sp[i] < 0 {
			t.outSp[i] = -1
			continue
		}
		full := t.s[i]*(sp[i]-1) + t.op[i] + dk
		var want int64 = -1
		switch {
		case outShape != nil:
			want = outShape[i]
		case ap == "SAME_UPPER" || ap == "SAME_LOWER":
			want = sp[i] * t.s[i]
		}
		if want >= 0 {
			total := full - want
			if total < 0 {
				return nil, fmt.Errorf("output_shape %d larger than the full output %d", want, full)
			}
			if ap == "SAME_UPPER" {
				t.pb[i], t.pe[i] = total/2, total-total/2
			} else {
				t.pb[i], t.pe[i] = total-total/2, total/2
			}
		}
		t.outSp[i] = full - t.pb[i] - t.pe[i]
	}
	return t, nil
}

// shapesOf combines graph.InferShapes (the project's shape inference, which
// tracks symbolic dimensions by identity) with the compiler's own pass,
// which also keeps the contents of small int64 tensors that rules read
// (Slice starts, Pad pads, reduce axes). Known facts from either win.
func shapesOf(g *pb.GraphProto, inputs map[string][]int64) (map[string]*vinfo, error) {
	theirs, errT := graph.InferShapes(g, inputs)
	mine, errM := inferShapes(g, inputs)
	if errT != nil && errM != nil {
		return nil, errT
	}
	if errM != nil {
		mine = map[string]*vinfo{}
	}
	for name, vt := range theirs {
		v := mine[name]
		if v == nil || len(v.dims) != len(vt.Dims) {
			mine[name] = &vinfo{elem: vt.Elem, dims: append([]int64{}, vt.Dims...)}
			if v != nil && len(v.dims) == len(vt.Dims) {
				mine[name].val = v.val
			}
			continue
		}
		v.elem = vt.Elem
		for i, d := range vt.Dims {
			if v.dims[i] < 0 && d >= 0 {
				v.dims[i] = d
			}
		}
	}
	return mine, nil
}
