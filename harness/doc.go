// Package harness is the only part of critlab that touches ONNX Runtime (via
// github.com/yalue/onnxruntime_go). It owns the runtime's life cycle (library
// discovery, environment, execution providers), sessions, the training step
// loop over compiled train-step graphs, evaluation, checkpoints and export.
//
//	rt, err := harness.Open(harness.RuntimeOptions{Threads: 2})
//	defer rt.Close()
//	tr, err := harness.NewTrainer(rt, forward, harness.TrainerOptions{BatchSize: 128, Compile: opts})
//	loss, correct, err := tr.Step(images, labels, 0.05)
//
// Parameters, optimizer state and BatchNorm statistics live in two sets of
// ORT tensors allocated once; each step reads one set and writes the other,
// then the sets swap, so a step allocates no parameter buffers.
package harness
