package compiler

import (
	"fmt"
	"math"

	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
)

// emitter wraps a graph.Builder with the small vocabulary rules are written
// in, and caches Shape nodes.
type emitter struct {
	b      *graph.Builder
	info   map[string]*vinfo
	shapes map[string]string
	sizes  map[string]string
	fills  map[string]string
	// ranked caches f32r's constants and lrRank's reshapes.
	ranked map[string]string
	// train selects training-form BatchNormalization in forward hooks.
	train bool
	// weightGrad is Options.WeightGrad.
	weightGrad WeightGradMethod
	// prov holds each emitted node's provenance label (provenance.go).
	prov map[*pb.NodeProto]string
}

func newEmitter(b *graph.Builder, info map[string]*vinfo) *emitter {
	return &emitter{b: b, info: info, shapes: map[string]string{}, sizes: map[string]string{}, fills: map[string]string{}, ranked: map[string]string{}, prov: map[*pb.NodeProto]string{}}
}

func (e *emitter) op(op string, ins []string, attrs ...*pb.AttributeProto) string {
	return e.b.Op(op, ins, attrs...)
}

func (e *emitter) i64(v ...int64) string { return e.b.ConstInt64s(v...) }
func (e *emitter) f32(v float32) string  { return e.b.ConstFloat(v) }

// f32r is the float constant v shaped [1]×rank, for elementwise ops with a
// rank-rank tensor: ORT's CPU kernels broadcast a rank-0 scalar over a large
// tensor about ten times slower than a same-rank [1,…,1] (measured in ORT
// 1.29: Mul of 409,600 floats by a scalar 5 ms, by a [1,1,1,1] 0.4 ms).
// The product is the same float either way.
func (e *emitter) f32r(v float32, rank int) string {
	if rank <= 1 {
		return e.f32(v)
	}
	key := fmt.Sprintf("%x/%d", math.Float32bits(v), rank)
	if n, ok := e.ranked[key]; ok {
		return n
	}
	n := e.b.Fresh("const_f32")
	e.b.G.Initializer = append(e.b.G.Initializer, graph.FloatTensor(n, ones(rank), []float32{v}))
	e.ranked[key] = n
	return n
}

// scaleR is scale for a tensor of the given rank (see f32r).
func (e *emitter) scaleR(a string, k float32, rank int) string {
	if k == 1 {
		return a
	}
	return e.mul(a, e.f32r(k, rank))
}

// rankOf is the rank of x where the shapes say it, else 0.
func (e *emitter) rankOf(x string) int {
	if v := e.info[x]; v != nil {
		return len(v.dims)
	}
	return 0
}

// shape returns Shape(x), shared between rules.
func (e *emitter) shape(x string) string {
	if s, ok := e.shapes[x]; ok {
		return s
	}
	s := e.op("Shape", []string{x})
	e.shapes[x] = s
	return s
}

// sizeF returns the element count of x as a float32 scalar.
func (e *emitter) sizeF(x string) string {
	if s, ok := e.sizes[x]; ok {
		return s
	}
	var s string
	if v := e.info[x]; v != nil && v.static() {
		s = e.f32(float32(mulDims(v.dims)))
	} else {
		s = e.op("Cast", []string{e.op("Size", []string{x})}, graph.Int("to", int64(graph.Float)))
	}
	e.sizes[x] = s
	return s
}

func (e *emitter) add(a, b string) string { return e.op("Add", []string{a, b}) }
func (e *emitter) sub(a, b string) string { return e.op("Sub", []string{a, b}) }
func (e *emitter) mul(a, b string) string { return e.op("Mul", []string{a, b}) }
func (e *emitter) div(a, b string) string { return e.op("Div", []string{a, b}) }
func (e *emitter) neg(a string) string    { return e.op("Neg", []string{a}) }

func (e *emitter) scale(a string, k float32) string {
	if k == 1 {
		return a
	}
	return e.mul(a, e.f32(k))
}

func (e *emitter) transpose(x string, perm ...int64) string {
	return e.op("Transpose", []string{x}, graph.Ints("perm", perm...))
}

func (e *emitter) reshape(x string, shape string) string {
	return e.op("Reshape", []string{x, shape})
}

// reshapeLike reshapes x to the runtime shape of like.
func (e *emitter) reshapeLike(x, like string) string {
	if v := e.info[like]; v != nil && v.static() {
		return e.reshape(x, e.i64(v.dims...))
	}
	return e.reshape(x, e.shape(like))
}

func (e *emitter) reduceSum(x string, axes []int64, keep bool) string {
	k := int64(0)
	if keep {
		k = 1
	}
	return e.op("ReduceSum", []string{x, e.i64(axes...)}, graph.Int("keepdims", k))
}

func (e *emitter) reduceMean(x string, axes []int64, keep bool) string {
	k := int64(0)
	if keep {
		k = 1
	}
	return e.op("ReduceMean", []string{x}, graph.Ints("axes", axes...), graph.Int("keepdims", k))
}

// sumAll adds gradient contributions.
func (e *emitter) sumAll(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	case 2:
		return e.add(xs[0], xs[1])
	}
	return e.op("Sum", xs)
}

// zerosLike returns a float zero tensor shaped like x.
func (e *emitter) zerosLike(x string) string {
	return e.op("ConstantOfShape", []string{e.shape(x)}, graph.TensorAttr("value", graph.FloatTensor("", []int64{1}, []float32{0})))
}

// unbroadcast reduces a gradient dy of the broadcast result out back to the
// shape of input x (numpy broadcasting): sum over the leading axes x lacks
// and over the axes where x has size 1, then reshape.
func (e *emitter) unbroadcast(dy, x, out string) (string, error) {
	xi, oi := e.info[x], e.info[out]
	if xi == nil || oi == nil {
		return "", fmt.Errorf("%w: broadcast gradient needs the ranks of %q and %q", ErrShape, x, out)
	}
	lead := len(oi.dims) - len(xi.dims)
	if lead < 0 {
		return "", fmt.Errorf("%w: %q has higher rank than the result", ErrShape, x)
	}
	var axes []int64
	for i := range oi.dims {
		if i < lead {
			axes = append(axes, int64(i))
			continue
		}
		xd, od := xi.dims[i-lead], oi.dims[i]
		switch {
		case xd == od && xd >= 0:
		case xd == 1:
			axes = append(axes, int64(i))
		case xd < 0 && od != 1:
			// x's dim is symbolic (the batch): it is the result's. A
			// symbolic dim that is 1 at run time and broadcast is not
			// supported (torch exports never do that).
		case xd < 0:
			return "", fmt.Errorf("%w: cannot tell whether %q is broadcast along axis %d", ErrShape, x, i-lead)
		}
	}
	if len(axes) == 0 {
		return dy, nil
	}
	r := e.reduceSum(dy, axes, true)
	if lead == 0 {
		return r, nil
	}
	return e.reshapeLike(r, x), nil
}

// conv emits a Conv with explicit pads; asymmetric pads become a Pad before a
// symmetric Conv (some providers reject asymmetric pads) and negative pads a
// Slice (crop).
func (e *emitter) conv(x, w, bias string, strides, dil, padB, padE []int64, group int64) string {
	r := len(strides)
	sym := make([]int64, 2*r)
	extraB, extraE := make([]int64, r), make([]int64, r)
	needPad, needCrop := false, false
	cropS, cropE := make([]int64, r), make([]int64, r)
	for i := range r {
		lo, hi := padB[i], padE[i]
		if lo < 0 {
			cropS[i], lo, needCrop = -lo, 0, true
		}
		if hi < 0 {
			cropE[i], hi, needCrop = hi, 0, true
		} else {
			cropE[i] = 1 << 62
		}
		m := min(lo, hi)
		sym[i], sym[i+r] = m, m
		extraB[i], extraE[i] = lo-m, hi-m
		if lo != hi {
			needPad = true
		}
	}
	if needCrop {
		axes := make([]int64, r)
		for i := range axes {
			axes[i] = int64(i + 2)
		}
		x = e.op("Slice", []string{x, e.i64(cropS...), e.i64(cropE...), e.i64(axes...)})
	}
	if needPad {
		pads := make([]int64, 2*(r+2))
		for i := range r {
			pads[i+2], pads[i+2+r+2] = extraB[i], extraE[i]
		}
		x = e.op("Pad", []string{x, e.i64(pads...)})
	}
	ins := []string{x, w}
	if bias != "" {
		ins = append(ins, bias)
	}
	attrs := []*pb.AttributeProto{graph.Ints("strides", strides...), graph.Ints("dilations", dil...), graph.Ints("pads", sym...)}
	if group != 1 {
		attrs = append(attrs, graph.Int("group", group))
	}
	return e.op("Conv", ins, attrs...)
}
