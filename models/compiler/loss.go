package compiler

import (
	"github.com/critlab/critlab/models/graph"
)

// lossOut emits loss (mean softmax cross-entropy, with label smoothing eps as
// in torch.nn.CrossEntropyLoss) and correct (count of argmax == label). When
// grad is set it also returns d loss / d logits = (softmax - target) / N.
func lossOut(e *emitter, logits, labels string, eps float32, grad bool) string {
	logp := e.op("LogSoftmax", []string{logits}, graph.Int("axis", 1))
	var depth string
	k := int64(-1)
	if v := e.info[logits]; v != nil && len(v.dims) == 2 && v.dims[1] > 0 {
		k = v.dims[1]
		depth = e.i64(k)
	} else {
		depth = e.op("Slice", []string{e.shape(logits), e.i64(1), e.i64(2)})
	}
	// target = (1-eps)·onehot + eps/K, built by OneHot's off/on values.
	var lo, hi float32 = 0, 1
	if eps != 0 && k > 0 {
		lo = eps / float32(k)
		hi = 1 - eps + lo
	}
	values := e.b.Fresh("onehot_values")
	e.b.G.Initializer = append(e.b.G.Initializer, graph.FloatTensor(values, []int64{2}, []float32{lo, hi}))
	target := e.op("OneHot", []string{labels, depth, values}, graph.Int("axis", -1))
	if eps != 0 && k <= 0 {
		// Unknown class count: smooth at run time.
		kf := e.op("Cast", []string{depth}, graph.Int("to", int64(graph.Float)))
		target = e.add(e.scale(target, 1-eps), e.div(e.f32(eps), kf))
	}
	perEx := e.reduceSum(e.mul(target, logp), []int64{1}, false)
	mean := e.reduceMean(perEx, []int64{0}, false)
	e.b.NodeNamed("Neg", []string{mean}, []string{Loss})

	pred := e.op("ArgMax", []string{logits}, graph.Int("axis", 1), graph.Int("keepdims", 0))
	hit := e.op("Cast", []string{e.op("Equal", []string{pred, labels})}, graph.Int("to", int64(graph.Int64)))
	e.b.NodeNamed("ReduceSum", []string{hit}, []string{Correct}, graph.Int("keepdims", 0))

	if !grad {
		return ""
	}
	p := e.op("Exp", []string{logp})
	return e.div(e.sub(p, target), e.sizeF(labels))
}
