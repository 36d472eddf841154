// Package zoo builds the forward graphs critlab trains: allcnn, resnet18 and
// small, as ONNX models with PyTorch-style parameter names and PyTorch
// default initialisation drawn from a seed.
//
// Every model takes one float32 input `images` of dims N×3×S×S (N symbolic,
// S = Options.ImageSize, 32 by default) and returns float32 `logits` of dims
// N×Classes. Convolutions are followed by BatchNormalization in inference
// form (epsilon 1e-5, ONNX momentum 0.9 = PyTorch momentum 0.1) whose running
// mean and variance are initializers, then Relu.
//
// Models (sizes at width 1, 10 classes, 32×32 images; FLOPs per image with
// the graph.Stats convention, 2 per multiply-add):
//
//	allcnn    All-CNN-C with BatchNorm: nine convs 96,96,192(s2),192,192,
//	          192(s2),192 (3×3, pad 1), 192,classes (1×1), each followed by
//	          BatchNorm and ReLU (the final one too, as in the critical-period
//	          reference), global average pooling, flatten.
//	          1,621,374 parameters, 2,708 buffers, 690.5 MFLOPs
//	          (width 0.25: 102,966 parameters, 44.3 MFLOPs).
//	resnet18  CIFAR ResNet-18: 3×3 stem (no max-pool), BasicBlocks 2-2-2-2 at
//	          64/128/256/512 with 1×1 conv+BN projection shortcuts, global
//	          average pooling, Linear 512->classes.
//	          11,173,962 parameters, 9,600 buffers, 1.112 GFLOPs
//	          (width 0.25: 701,466 parameters, 70.4 MFLOPs).
//	small     conv 32, 32(s2), 64, 64(s2), 128 (3×3, no bias) with BatchNorm
//	          and ReLU, global average pooling, Linear 128->classes: trains in
//	          minutes on two cores.
//	          141,034 parameters, 640 buffers, 30.2 MFLOPs
//	          (width 0.25: 9,346 parameters, 2.25 MFLOPs).
//
// Options.Width multiplies every hidden channel count (max(1, round(c·w)));
// the classifier's output stays Classes.
//
// Initialisation follows PyTorch's defaults: Conv and Linear weights
// kaiming_uniform(a=√5), that is U(-1/√fan_in, 1/√fan_in), biases
// U(-1/√fan_in, 1/√fan_in); BatchNorm weight 1, bias 0, running mean 0,
// running variance 1. Values come from math/rand/v2's PCG seeded with
// Options.Seed, drawn in parameter order, so a seed gives bit-identical
// models.
//
//	m, err := zoo.Build("resnet18", zoo.Options{Width: 0.5, Seed: 1})
//	if err != nil { ... }
//	err = graph.Save("resnet18.onnx", m)
package zoo
