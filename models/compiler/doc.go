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
//  1. prepare: clone, check the opset (13 to 20), rename the input to
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
// softmax - onehot per example (the gradient of -log p(label)), and
// per-example rules at parameter inputs that return each example's squared
// gradient norm ([N]) instead of the batch sum: for Conv weights a batched
// MatMul per kernel offset, for Gemm/MatMul weights |aₙ|²·|dyₙ|², for
// elementwise and BatchNorm parameters the gradient reduced over all axes
// but the batch. Where a parameter use has no per-example rule it falls
// back to a graph whose outputs are the squared norm of the batch gradient
// (run with batches of one image).
//
// # Gradient rules
//
// Conv: bias = ReduceSum(dy); input gradient with unit strides = Conv of dy
// with the kernel transposed (and regrouped) and flipped by a step -1 Slice,
// pads dk-1-p; otherwise ConvTranspose with the output_padding that
// restores the input size. Weight gradient: see below. ConvTranspose: the
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
// nodes (mean 0, variance 1-ε, epsilon ε = 1e-5, so σ = 1 exactly in float32
// and no provider clamps ε: one pass instead of a Mul and an Add); elsewhere (Fisher graphs) the affine gradient on the running
// statistics. Flatten/Reshape/Squeeze/Unsqueeze: Reshape back; Transpose:
// the inverse perm; Concat: Split; Split: Concat (zeros for unused
// outputs); Slice (any steps): reverse, zero-interleave and Pad; Pad
// (constant): Slice; Softmax, LogSoftmax: Jacobian-vector products;
// ReduceMean, ReduceSum: Expand; Cast between float types: Cast back;
// Gather (float data): ScatterND(add) of dy into zeros, so repeated indices
// accumulate.
//
// Dropout is the identity in every compiled graph: critlab's compiled steps
// are deterministic functions of their inputs, and ONNX random ops cannot
// be seeded per step (RandomUniformLike without a seed is not
// reproducible, with one it draws the same mask every step). Shape, Size,
// Gather/Unsqueeze/Concat on shapes, Cast to integers, ArgMax, comparisons,
// Constant, ConstantOfShape, Range, OneHot, Floor/Ceil/Round/Sign carry no
// gradient. Reflect/edge Pad and the other ops have no rule: compilation fails naming the node if they lie on a gradient
// path.
//
// # Speed and memory
//
// Measured with ONNX Runtime 1.29 on 2 threads (AMD EPYC, CPU provider),
// batch 128; "cpu" is process CPU time / 2, which stays meaningful while
// other jobs share the cores. ORT's plain forward Conv of allcnn's largest
// layer (96→96, 3×3, 32×32, harness.BenchConv) runs at about 345 GFLOP/s
// on a quiet machine (260 cpu-GFLOP/s under load).
//
// Input gradient, 3×3 pad 1 (cpu GFLOP/s): stride 1, Conv with the flipped
// kernel 85 (wall, loaded) vs ConvTranspose 24 on 96→96 32×32, 57 vs 43 on
// 192→192 16×16 — hence the Conv form; stride 2, ConvTranspose 43 vs
// zero-insertion + Conv 12 (96→192 32×32), 27 vs 18 (192→192 16×16).
//
// Weight gradient, cpu ms (GFLOP/s) and peak RSS of the lone graph:
//
//	layer               Conv form        im2col             per-offset Gemms
//	96→96 32×32       409 (53)  337M   194 (112) 2039M    147 (148)  456M
//	192→192 16×16     445 (49)  196M   124 (175) 1057M    173 (126)  265M
//	192→192 8×8        71 (76)   93M    33 (163)  313M     40 (137)  117M
//	96→192 32×32 s2   179 (61)  274M    88 (123)  693M     94 (116)  332M
//
// The Conv form (x as C×N×H×W convolved with dy as a Co×N×Ho×Wo kernel)
// is memory-bound in ORT (its im2col re-reads dy once per input channel);
// im2col (one Gemm over a [Ci·k², N·Ho·Wo] column buffer) is fastest where
// the buffer is small but needs k² activation copies alive at once; one
// Gemm per kernel offset keeps a single strided slice alive. WeightGradAuto
// takes im2col when the buffer is at most 1 MiB per example (allcnn's 8×8
// and stride-2 layers) and per-offset Gemms otherwise; grouped convolutions
// use the Conv form (keeping the diagonal group blocks).
// BenchmarkConvWeightGrad (package harness) reruns the comparison.
//
// Whole allcnn train step (DefaultOptions, batch 128, quiet machine): 1.13 s,
// 234 GFLOP/s counting 3× the forward FLOPs (68% of the forward Conv
// rate; goal 50%), peak RSS 1.36 GiB with ORT's CPU arena (1.09 GiB
// without). Earlier versions: Conv-form weight gradients 116 cpu-GFLOP/s;
// per-offset Gemms 187; BatchNorm in fewer passes and ReLU as dy·sign(y)
// about 200; im2col on small layers 203-235.
//
// Fisher graphs (allcnn, 128 examples, cpu): per-example form in one batch
// 1.58 s, batch-of-one form run 128 times 2.33 s.
//
// HasRule and Supported report the op types the compiler can train through.
package compiler
