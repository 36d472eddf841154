// Package compiler owns training-graph compilation: it turns a forward CNN
// graph into training graphs written
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
//  1. prepare: clone, check the opset (13 to 22), rename the input to
//     "images", normalise (graph.Normalize: opset-17 spelling, explicit
//     symmetric pads), infer static shapes and small integer constants
//     (graph.InferValues), classify initializers.
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
// CompileFisher reuses steps 1-5 with BatchNorm in inference form, the seed
// softmax - onehot per example (the gradient of -log p(label)), and the
// per-example transformation (fisher.go): backward taps the parameters, so
// each node's ordinary rule runs without them and the op's per-example
// rule (peRules) returns each example's squared gradient norm ([N])
// instead of the batch sum: for Conv weights a batched MatMul per kernel
// offset, for Gemm/MatMul weights |aₙ|²·|dyₙ|², for BatchNorm parameters
// the gradient reduced over the spatial axes, for the broadcasting
// elementwise ops their ordinary rule run with the parameter seen as one
// copy per example. Where a parameter use has no per-example rule it falls
// back to a graph whose outputs are the squared norm of the batch gradient
// (run with batches of one image).
//
// # Gradient rules
//
// Conv: bias = ReduceSum(dy); input gradient with unit strides = Conv of dy
// with the kernel transposed (and regrouped) and flipped by a step -1 Slice,
// pads dk-1-p; otherwise ConvTranspose with the output_padding that
// restores the input size. Weight gradient: see below. Kernel taps that
// meet only padding (a 3×3 kernel on a 1×1 map) are cut before both, and
// the weight gradient padded back with zeros. A 2-D ungrouped Conv with an
// output map of at most smallMapArea pixels, forward or input gradient,
// runs as im2col over the whole batch and one MatMul (conv_matmul.go):
// ORT's Conv runs image by image. ConvTranspose: the
// input gradient is the matching Conv, the weight gradient the Conv weight
// gradient with input and output swapped. Forward auto_pad becomes
// explicit pads; asymmetric Conv pads a Pad node and symmetric pads.
// Gemm, MatMul (batched, broadcast): the usual products, reduced over
// broadcast axes. Add/Sub/Mul/Div/Sum/Where: numpy broadcasting undone with
// ReduceSum + Reshape (a symbolic dim is taken to be the batch, never
// broadcast). Relu: dy·sign(y); LeakyRelu, Clip: Where masks (Clip passes
// the gradient where min <= x <= max, like torch.clamp); Sigmoid, Tanh, Exp,
// Log, Sqrt, Reciprocal, Neg, Abs, Erf, Softplus, Elu, HardSigmoid,
// HardSwish, PRelu, Pow: closed forms, from the output where cheaper.
// MaxPool: ScatterElements(add) of dy at the positions of MaxPool's Indices
// output, so ties send the gradient to exactly one element, as PyTorch
// does. AveragePool: depthwise ConvTranspose with a constant kernel
// (count_include_pad 0 divides by the static per-window count first).
// GlobalAveragePool: Expand. BatchNormalization: in training graphs the
// batch-statistics gradient
//
//	dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γσ⁻¹·(dy - Σdy/n - x̂·Σ(dy·x̂)/n),
//
// with the per-channel affine parts run as inference BatchNormalization
// nodes (mean 0, variance 1-ε, epsilon ε = 1e-5, so σ = 1 exactly in
// float32 and no provider clamps ε: one pass instead of a Mul and an Add);
// elsewhere (Fisher graphs) the affine gradient on the running statistics. Flatten/Reshape/Squeeze/Unsqueeze: Reshape back; Transpose:
// the inverse perm; Concat: Split; Split: Concat (zeros for unused
// outputs); Slice (any steps): reverse, zero-interleave and Pad; Pad
// (constant): Slice; Softmax, LogSoftmax: Jacobian-vector products;
// ReduceMean, ReduceSum: Expand; Cast between float types: Cast back;
// Gather (float data): ScatterND(add) of dy into zeros, so repeated indices
// accumulate.
//
// LayerNormalization, InstanceNormalization, GroupNormalization (opset 18's
// per-group and opset 21's per-channel affine) and Gelu (Erf or tanh form)
// have no rule of their own: graph.Normalize writes them out in ReduceMean,
// Sub, Mul, Sqrt, Reciprocal, Add, Erf and Tanh (graph.RewrittenOps), whose
// rules give their gradients; CastLike becomes Cast.
//
// Dropout with a nonzero ratio becomes x · (u < 1-ratio) / (1-ratio) in
// train graphs, u an input per node (TrainGraph.Dropouts) that the trainer
// fills with seeded uniform draws each step: critlab's compiled steps stay
// deterministic functions of their inputs, which ONNX random ops would
// break (RandomUniformLike without a seed is not reproducible, with one it
// draws the same mask every step). Eval and gradient graphs (CompileGrad)
// keep Dropout as the identity. Shape, Size,
// Gather/Unsqueeze/Concat on shapes, Cast to integers, ArgMax, comparisons,
// Constant, ConstantOfShape, Range, OneHot, Floor/Ceil/Round/Sign carry no
// gradient. Reflect/edge Pad and the other ops have no rule: compilation
// fails naming the node if they lie on a gradient path.
//
// # Weight-gradient formulations
//
// The Conv form (x as C×N×H×W convolved with dy as a Co×N×Ho×Wo kernel)
// is memory-bound in ORT (its im2col re-reads dy once per input channel);
// im2col (one Gemm over a [Ci·k², N·Ho·Wo] column buffer) is fastest where
// the buffer is small but needs k² activation copies alive at once; one
// Gemm per kernel offset keeps a single strided slice alive. WeightGradAuto
// takes im2col when the buffer is at most 1 MiB per example and per-offset
// Gemms otherwise; grouped convolutions use the Conv form with the group
// as the Conv's group (x as [Ci/G, G·N, H, W]), so depthwise layers cost
// their own FLOPs, not those of all Ci×Co channel pairs. The measurements behind these choices are in
// docs/compiler-performance.md; BenchmarkConvWeightGrad (package harness)
// reruns them.
//
// HasRule and Supported report the op types the compiler can train through.
package compiler
