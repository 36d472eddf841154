package harness_test

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	"github.com/critlab/critlab/models/zoo"
)

// separable makes n 3×8×8 images whose class (of 4) sets the sign pattern of
// the four image quadrants, with noise: a linearly separable task.
func separable(n int, seed uint64) ([]float32, []int64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	images := make([]float32, n*3*8*8)
	labels := make([]int64, n)
	for i := range labels {
		c := rng.Int64N(4)
		labels[i] = c
		for ch := 0; ch < 3; ch++ {
			for y := 0; y < 8; y++ {
				for x := 0; x < 8; x++ {
					q := int64(y/4*2 + x/4)
					v := float32(-1)
					if q == c {
						v = 1
					}
					images[((i*3+ch)*8+y)*8+x] = v + 0.3*float32(rng.NormFloat64())
				}
			}
		}
	}
	return images, labels
}

func smallModel(t testing.TB) *pb.ModelProto {
	t.Helper()
	m, err := zoo.Build("small", zoo.Options{Width: 0.25, Seed: 3, Classes: 4, ImageSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newTrainer(t testing.TB, rt *harness.Runtime, m *pb.ModelProto, batch int) *harness.Trainer {
	t.Helper()
	opts := compiler.DefaultOptions()
	opts.Momentum = 0.9
	opts.WeightDecay = 5e-4
	tr, err := harness.NewTrainer(rt, m, harness.TrainerOptions{Compile: opts, BatchSize: batch})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// batches yields consecutive batches of size b from the data once.
func batches(images []float32, labels []int64, b int) func() ([]float32, []int64, bool, error) {
	per := len(images) / len(labels)
	i := 0
	return func() ([]float32, []int64, bool, error) {
		if i >= len(labels) {
			return nil, nil, false, nil
		}
		j := min(i+b, len(labels))
		im, lb := images[i*per:j*per], labels[i:j]
		i = j
		return im, lb, true, nil
	}
}

// TestTrainerLearnsSeparable is the pinned short-training regression: the
// small model must reach 95% training accuracy on a separable task within
// 60 steps.
func TestTrainerLearnsSeparable(t *testing.T) {
	rt := openRuntime(t)
	tr := newTrainer(t, rt, smallModel(t), 32)
	images, labels := separable(256, 1)
	per := len(images) / len(labels)
	for step := 0; step < 60; step++ {
		i := (step * 32) % 256
		if _, _, err := tr.Step(images[i*per:(i+32)*per], labels[i:i+32], 0.05); err != nil {
			t.Fatal(err)
		}
	}
	res, err := tr.Evaluate(batches(images, labels, 50)) // 50: the last batch is partial
	if err != nil {
		t.Fatal(err)
	}
	if res.N != 256 || res.Accuracy < 0.95 {
		t.Fatalf("after 60 steps: accuracy %.3f on %d images, want >= 0.95 on 256", res.Accuracy, res.N)
	}
}

func TestCheckpointRoundTrip(t *testing.T) {
	rt := openRuntime(t)
	m := smallModel(t)
	images, labels := separable(64, 2)
	a := newTrainer(t, rt, m, 32)
	step := func(tr *harness.Trainer, k int) {
		per := len(images) / len(labels)
		for s := 0; s < k; s++ {
			i := (s % 2) * 32
			if _, _, err := tr.Step(images[i*per:(i+32)*per], labels[i:i+32], 0.05); err != nil {
				t.Fatal(err)
			}
		}
	}
	step(a, 3)
	path := filepath.Join(t.TempDir(), "ckpt.onnx")
	if err := a.SaveCheckpoint(path, map[string]string{"epoch": "7"}); err != nil {
		t.Fatal(err)
	}
	step(a, 2)

	b := newTrainer(t, rt, m, 32)
	meta, err := b.LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	if meta["epoch"] != "7" || b.Steps() != 3 {
		t.Fatalf("meta %v steps %d, want epoch 7 and 3 steps", meta, b.Steps())
	}
	step(b, 2)
	// Resuming from the checkpoint replays the same two steps exactly,
	// momentum and BatchNorm statistics included.
	pa, pb := a.Params(), b.Params()
	if len(pa) == 0 || len(pa) != len(pb) {
		t.Fatalf("%d vs %d state tensors", len(pa), len(pb))
	}
	for name, va := range pa {
		vb := pb[name]
		for i := range va {
			if va[i] != vb[i] {
				t.Fatalf("%s[%d]: %v after resume, %v uninterrupted", name, i, vb[i], va[i])
			}
		}
	}
	if _, err := b.LoadCheckpoint(filepath.Join(t.TempDir(), "missing.onnx")); err == nil || errors.Is(err, harness.ErrCorrupt) {
		t.Fatalf("loading a missing checkpoint: %v, want a not-found error", err)
	}

	// 16 bytes overwritten anywhere are refused, in checkpoints and in
	// exported models.
	model := filepath.Join(t.TempDir(), "model.onnx")
	if err := b.Export(model); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, model} {
		if err := harness.VerifyFile(p); err != nil {
			t.Fatalf("intact %s: %v", p, err)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, at := range []int{len(data) / 3, len(data) / 2, len(data) - 40} {
			bad := append([]byte(nil), data...)
			copy(bad[at:], bytes.Repeat([]byte{0x7f}, 16))
			corrupt := filepath.Join(t.TempDir(), filepath.Base(p))
			if err := os.WriteFile(corrupt, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			if err := harness.VerifyFile(corrupt); !errors.Is(err, harness.ErrCorrupt) || !strings.Contains(err.Error(), corrupt) {
				t.Errorf("%s with 16 bytes overwritten at %d: %v, want ErrCorrupt naming the file", filepath.Base(p), at, err)
			}
		}
	}
	if _, err := b.LoadCheckpoint(path); err != nil {
		t.Fatal(err)
	}
}

// TestExportMatchesEvaluate runs the exported inference model in a plain
// session and checks its accuracy equals the trainer's evaluation.
func TestExportMatchesEvaluate(t *testing.T) {
	rt := openRuntime(t)
	tr := newTrainer(t, rt, smallModel(t), 32)
	images, labels := separable(96, 3)
	per := len(images) / len(labels)
	for s := 0; s < 6; s++ {
		i := (s % 3) * 32
		if _, _, err := tr.Step(images[i*per:(i+32)*per], labels[i:i+32], 0.05); err != nil {
			t.Fatal(err)
		}
	}
	want, err := tr.Evaluate(batches(images, labels, 96))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "model.onnx")
	if err := tr.Export(path); err != nil {
		t.Fatal(err)
	}
	m, err := graph.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := graph.Marshal(m)
	s, err := rt.NewSession(data, []string{m.Graph.Input[0].GetName()}, []string{m.Graph.Output[0].GetName()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out, err := s.Run([]harness.Tensor{{Shape: []int64{96, 3, 8, 8}, F32: images}})
	if err != nil {
		t.Fatal(err)
	}
	correct, loss := 0, 0.0
	for i := 0; i < 96; i++ {
		row := out[0].F32[i*4 : i*4+4]
		best, mx := 0, row[0]
		for k, v := range row {
			if v > mx {
				best, mx = k, v
			}
		}
		if int64(best) == labels[i] {
			correct++
		}
		var z float64
		for _, v := range row {
			z += math.Exp(float64(v - mx))
		}
		loss += math.Log(z) - float64(row[labels[i]]-mx)
	}
	if acc := float64(correct) / 96; acc != want.Accuracy || math.Abs(loss/96-want.Loss) > 1e-4 {
		t.Fatalf("exported model: accuracy %.4f loss %.5f; trainer: %.4f %.5f", acc, loss/96, want.Accuracy, want.Loss)
	}
}

func TestInitFromCopiesWeights(t *testing.T) {
	rt := openRuntime(t)
	m := smallModel(t)
	a := newTrainer(t, rt, m, 32)
	images, labels := separable(32, 4)
	if _, _, err := a.Step(images, labels, 0.1); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "a.onnx")
	if err := a.SaveCheckpoint(path, nil); err != nil {
		t.Fatal(err)
	}
	b := newTrainer(t, rt, m, 32)
	if err := b.InitFrom(path); err != nil {
		t.Fatal(err)
	}
	pa, pb := a.Params(), b.Params()
	for name, vb := range pb {
		isMom := filepath.Ext(name) == ".mom"
		for i, v := range vb {
			if isMom && v != 0 {
				t.Fatalf("%s: optimizer state not reset by InitFrom", name)
			}
			if !isMom && v != pa[name][i] {
				t.Fatalf("%s[%d] = %v, want %v", name, i, v, pa[name][i])
			}
		}
	}
	other, err := zoo.Build("small", zoo.Options{Width: 0.5, Seed: 3, Classes: 4, ImageSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	c := newTrainer(t, rt, other, 32)
	if err := c.InitFrom(path); err == nil {
		t.Fatal("InitFrom accepted a checkpoint of another width")
	}
}

// TestGraphHash: the hash names the compiled formulation: equal for the same
// model and options (whatever the weights, so InitFrom keeps it), different
// when the train-step graph differs.
func TestGraphHash(t *testing.T) {
	rt := openRuntime(t)
	a := newTrainer(t, rt, smallModel(t), 32)
	h := a.GraphHash()
	if len(h) != 64 {
		t.Fatalf("GraphHash %q: want 64 hex digits", h)
	}
	reseeded, err := zoo.Build("small", zoo.Options{Width: 0.25, Seed: 4, Classes: 4, ImageSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	b := newTrainer(t, rt, reseeded, 32)
	if b.GraphHash() != h {
		t.Errorf("other initial weights: hash %s, want %s", b.GraphHash(), h)
	}
	path := filepath.Join(t.TempDir(), "a.onnx")
	if err := a.SaveCheckpoint(path, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.InitFrom(path); err != nil {
		t.Fatal(err)
	}
	if b.GraphHash() != h {
		t.Errorf("after InitFrom: hash %s, want %s", b.GraphHash(), h)
	}
	opts := compiler.DefaultOptions()
	opts.Momentum = 0.5
	c, err := harness.NewTrainer(rt, smallModel(t), harness.TrainerOptions{Compile: opts, BatchSize: 32})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.GraphHash() == h {
		t.Error("another momentum (another train-step graph) kept the hash")
	}
}
