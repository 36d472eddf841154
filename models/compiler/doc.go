// Package compiler turns a forward CNN graph into training graphs written
// only in standard ONNX ops (default domain, opset 17), so that ONNX
// Runtime runs a whole SGD step — forward, loss, backward, update — as an
// ordinary inference session on any execution provider.
//
//	tg, err := compiler.CompileTrain(forward, compiler.DefaultOptions())
//	// feed tg.InputNames(): params, momentum buffers, running stats,
//	// images, labels, lr; read tg.OutputNames(): their .next values,
//	// loss, correct.
//	eg, err := compiler.CompileEval(forward) // loss, correct, logits
//
// # Graph contract
//
// See docs/design.md. Parameters are the float32 initializers of rank >= 1
// that some node reads, other than BatchNormalization running statistics
// (rank-0 float initializers are constants). Trained parameters become
// inputs p and outputs p.next; with Momentum > 0 each has a buffer p.mom /
// p.mom.next; running statistics s / s.next follow; then images, labels and
// lr. Frozen parameters (Options.Freeze) stay initializers. CompileGrad
// emits the same graph without the optimizer, with outputs p.grad.
//
// # How a graph is compiled
//
//  1. prepare: clone, check the opset (13 to 20; 18+ reduce axes and Split
//     num_outputs are rewritten to their opset-17 form), rename the input to
//     "images", infer static shapes (graph.InferShapes merged with a private
//     pass that also tracks small int64 constants), classify initializers.
//  2. activity: a value needs a gradient if it depends differentiably on a
//     trained parameter and the logits depend on it. Integer values, the
//     images and frozen parameters never do; nodes that do not lie on such
//     a path get no backward code.
//  3. forward pass: nodes are re-emitted; rules with a forward hook replace
//     them. BatchNormalization becomes its training form (batch mean and
//     biased variance from ReduceMean/Sub/Mul/Sqrt/Reciprocal; running
//     statistics updated as m·running + (1-m)·batch with the unbiased
//     variance); MaxPool gains its Indices output.
//  4. loss: LogSoftmax, OneHot targets (label smoothing folded into the
//     off/on values), mean cross-entropy; correct = Σ(ArgMax == label). The
//     seed gradient is (softmax - target)/N, written directly.
//  5. backward: nodes in reverse order; each rule receives the summed
//     gradients of its outputs and emits input gradients. An op on a
//     gradient path without a rule fails with ErrNoRule naming the node.
//  6. optimizer (SGD, PyTorch semantics), then dead nodes and unused
//     initializers are pruned.
//
// # Gradient rules
//
// Conv: bias = ReduceSum(dy); input gradient with unit strides = Conv of dy
// with the kernel transposed (and regrouped) and flipped by a step -1 Slice,
// pads dk-1-p (ORT's CPU NCHWc path); otherwise ConvTranspose with the
// output_padding that restores the input size. Weight gradient: see
// WeightGradMethod. Asymmetric or SAME pads are emitted as explicit symmetric
// pads plus a Pad or Slice. ConvTranspose: input gradient is the matching
// Conv, weight gradient the Conv weight gradient with input and output
// swapped. Gemm, MatMul (batched, broadcast): the usual products, reduced
// over broadcast axes. Add/Sub/Mul/Div/Sum/Where: numpy broadcasting undone
// with ReduceSum + Reshape. Relu/LeakyRelu/Clip: Where masks (Clip passes
// the gradient where min <= x <= max, like torch.clamp). Sigmoid/Tanh/Exp/
// Log/Sqrt/Reciprocal/Neg: from the output where cheaper. MaxPool:
// ScatterElements(add) of dy at the Indices output, so ties send the
// gradient to exactly one element, as PyTorch does. AveragePool: depthwise
// ConvTranspose with a constant kernel (count_include_pad 0 divides by the
// static per-window count). GlobalAveragePool: Expand. BatchNormalization:
// the batch-statistics gradient in training graphs, the affine one with
// running statistics elsewhere. Flatten/Reshape/Squeeze/Unsqueeze: Reshape
// back; Transpose: inverse perm; Concat: Split; Split: Concat (zeros for
// unused outputs); Slice (any steps): reverse, zero-interleave and Pad; Pad
// (constant): Slice; Softmax/LogSoftmax: the Jacobian-vector products;
// ReduceMean/ReduceSum: Expand. Dropout is the identity in every compiled
// graph: critlab's compiled steps are deterministic functions of their
// inputs, and ONNX random ops cannot be seeded per step. Shape, Gather,
// Cast to integers, ArgMax, comparisons, Constant... carry no gradient.
//
// HasRule and Supported report the op types the compiler can train through.
package compiler
