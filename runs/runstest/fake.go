// Package runstest provides a fake runs.Backend: a tiny linear model
// trained by SGD with momentum in pure Go on deterministic synthetic data,
// so the run loop, sweeps and reports can be tested without ONNX Runtime.
//
// Like the real backend, every random choice is a function of (seed,
// epoch, sample) and the whole training state goes into checkpoints, so a
// resumed fake run reproduces an uninterrupted one bit for bit.
package runstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"

	"github.com/critlab/critlab/internal/atomicfile"
	"github.com/critlab/critlab/runs"
)

// Dim is the number of features of a fake image.
const Dim = 8

// Deficits the fake backend knows (sham, as the real one, changes nothing).
var Deficits = map[string]bool{"blur": true, "vflip": true, "noise": true, "sham": true}

// Backend is a fake runs.Backend.
type Backend struct {
	// TrainImages and TestImages size the fake data set (defaults 64, 32).
	TrainImages, TestImages int
	// OnStep, when set, is called before every training step with the
	// run's model name and the count of steps taken by this backend.
	OnStep func(step int64)
	// Steps counts steps over all runs.
	Steps atomic.Int64
	// NoFisher hides the Fisher estimator.
	NoFisher bool
	// GraphHash is what its trainers' GraphHash returns ("": none).
	GraphHash string
	// OpenErr, when set, is what Open returns: a check that only the
	// trainer makes (ONNX Runtime's library, param_groups, freeze).
	OpenErr error
}

// Check refuses unknown deficits (parameters after ":" are not checked), unknown models and the model "wide",
// which only takes the data set "cifar10" (a stand-in for an image-size
// mismatch).
func (b *Backend) Check(cfg runs.Config) error {
	for _, w := range cfg.Deficits {
		if name, _, _ := strings.Cut(w.Deficit, ":"); !Deficits[name] {
			return fmt.Errorf("%w: unknown deficit %q", runs.ErrInvalidConfig, w.Deficit)
		}
	}
	switch {
	case strings.HasSuffix(cfg.Model, ".onnx"):
		if _, err := os.ReadFile(cfg.Model); err != nil {
			return fmt.Errorf("%w: model: %v", runs.ErrInvalidConfig, err)
		}
	case cfg.Model == "small" || cfg.Model == "allcnn":
	case cfg.Model == "wide":
		if cfg.Data != "cifar10" {
			return fmt.Errorf("%w: model wide takes 32×32 images, data set %s has 8×8", runs.ErrInvalidConfig, cfg.Data)
		}
	default:
		return fmt.Errorf("%w: unknown model %q", runs.ErrInvalidConfig, cfg.Model)
	}
	return nil
}

// Open returns a fresh fake trainer and the fake data.
func (b *Backend) Open(ctx context.Context, cfg runs.Config) (runs.Trainer, runs.Data, error) {
	if b.OpenErr != nil {
		return nil, nil, b.OpenErr
	}
	nTrain, nTest := b.TrainImages, b.TestImages
	if nTrain == 0 {
		nTrain = 64
	}
	if nTest == 0 {
		nTest = 32
	}
	if cfg.TrainSubset > 0 && cfg.TrainSubset < nTrain {
		nTrain = cfg.TrainSubset
	}
	rng := rand.New(rand.NewPCG(uint64(cfg.Seed), 99))
	t := &Trainer{b: b, momentum: cfg.Momentum, wd: cfg.WeightDecay}
	for i := range t.W {
		t.W[i] = rng.Float64()*0.2 - 0.1
	}
	d := &Data{seed: uint64(cfg.Seed), batch: cfg.BatchSize, nTrain: nTrain, nTest: nTest}
	return t, d, nil
}

// Trainer is a linear model y = w·x trained on squared error.
type Trainer struct {
	b        *Backend
	W        [Dim]float64
	Mom      [Dim]float64
	momentum float64
	wd       float64
	closed   bool
}

func predict(w *[Dim]float64, x []float32) float64 {
	var s float64
	for i, v := range x {
		s += w[i] * float64(v)
	}
	return s
}

// GraphHash stands for the compiled graphs' hash (Backend.GraphHash).
func (t *Trainer) GraphHash() string { return t.b.GraphHash }

// Step does one SGD step.
func (t *Trainer) Step(images []float32, labels []int64, lr float32) (float32, int64, error) {
	n := t.b.Steps.Add(1)
	if t.b.OnStep != nil {
		t.b.OnStep(n)
	}
	var grad [Dim]float64
	var loss float64
	var correct int64
	for i, y := range labels {
		x := images[i*Dim : (i+1)*Dim]
		e := predict(&t.W, x) - float64(y)
		loss += e * e
		if math.Abs(e) < 0.5 {
			correct++
		}
		for j := range grad {
			grad[j] += 2 * e * float64(x[j]) / float64(len(labels))
		}
	}
	for j := range t.W {
		g := grad[j] + t.wd*t.W[j]
		t.Mom[j] = t.momentum*t.Mom[j] + g
		t.W[j] -= float64(lr) * t.Mom[j]
	}
	return float32(loss / float64(len(labels))), correct, nil
}

// Evaluate averages loss and accuracy over the batches.
func (t *Trainer) Evaluate(next runs.Batches) (runs.EvalResult, error) {
	var loss float64
	var correct, n int
	for {
		x, y, ok, err := next()
		if err != nil {
			return runs.EvalResult{}, err
		}
		if !ok {
			break
		}
		for i, lab := range y {
			e := predict(&t.W, x[i*Dim:(i+1)*Dim]) - float64(lab)
			loss += e * e
			if math.Abs(e) < 0.5 {
				correct++
			}
			n++
		}
	}
	if n == 0 {
		return runs.EvalResult{}, errors.New("fake: no test images")
	}
	return runs.EvalResult{Loss: loss / float64(n), Accuracy: float64(correct) / float64(n), N: n}, nil
}

// Fisher returns Σ w² as the trace and w_i² per "layer".
func (t *Trainer) Fisher(next runs.Batches, samples int) (runs.FisherResult, error) {
	if t.b.NoFisher {
		return runs.FisherResult{}, errors.New("fake: no fisher")
	}
	res := runs.FisherResult{Layers: map[string]float64{}}
	for i, w := range t.W[:3] {
		res.Layers[fmt.Sprintf("layer%d", i)] = w * w
		res.Total += w * w
	}
	return res, nil
}

type checkpoint struct {
	W, Mom [Dim]float64
	Meta   map[string]string
}

// SaveCheckpoint writes the state as JSON.
func (t *Trainer) SaveCheckpoint(path string, meta map[string]string) error {
	data, err := json.Marshal(checkpoint{t.W, t.Mom, meta})
	if err != nil {
		return err
	}
	return atomicfile.Write(path, data)
}

// LoadCheckpoint restores the state.
func (t *Trainer) LoadCheckpoint(path string) (map[string]string, error) {
	var c checkpoint
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil {
		return nil, fmt.Errorf("fake: load %s: %w", path, err)
	}
	t.W, t.Mom = c.W, c.Mom
	return c.Meta, nil
}

// InitFrom loads the weights of a checkpoint or an exported model.
func (t *Trainer) InitFrom(path string) error {
	var c checkpoint
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, &c)
	}
	if err != nil {
		return fmt.Errorf("fake: init from %s: %w", path, err)
	}
	t.W = c.W
	return nil
}

// Export writes the weights as JSON.
func (t *Trainer) Export(path string) error {
	data, _ := json.Marshal(checkpoint{W: t.W})
	return atomicfile.Write(path, data)
}

// Close marks the trainer closed.
func (t *Trainer) Close() error { t.closed = true; return nil }

// Data is deterministic fake data: features from (seed, sample), labels
// 0..3.
type Data struct {
	seed          uint64
	batch         int
	nTrain, nTest int
}

func sample(seed uint64, split, i int, deficit string) ([]float32, int64) {
	r := rand.New(rand.NewPCG(seed*1000+uint64(split), uint64(i)))
	x := make([]float32, Dim)
	y := int64(r.IntN(4))
	for j := range x {
		x[j] = float32(r.NormFloat64()*0.3) + float32(y)*0.25
	}
	switch deficit {
	case "blur":
		for j := range x {
			x[j] *= 0.3
		}
	case "vflip":
		for j := 0; j < Dim/2; j++ {
			x[j], x[Dim-1-j] = -x[Dim-1-j], -x[j]
		}
	case "noise":
		x[0] += 1
	}
	return x, y
}

// TrainSize is the number of training images.
func (d *Data) TrainSize() int { return d.nTrain }

func (d *Data) batches(order []int, split int, deficit string, batch int, dropLast bool) runs.Batches {
	pos := 0
	return func() ([]float32, []int64, bool, error) {
		n := min(batch, len(order)-pos)
		if n <= 0 || dropLast && n < batch {
			return nil, nil, false, nil
		}
		xs := make([]float32, 0, n*Dim)
		ys := make([]int64, 0, n)
		for _, i := range order[pos : pos+n] {
			x, y := sample(d.seed, split, i, deficit)
			xs = append(xs, x...)
			ys = append(ys, y)
		}
		pos += n
		return xs, ys, true, nil
	}
}

// Train shuffles the training set as a function of (seed, epoch).
func (d *Data) Train(epoch int, deficit string) (runs.Batches, func(), error) {
	if deficit != "" && !Deficits[deficit] {
		return nil, nil, fmt.Errorf("fake: unknown deficit %q", deficit)
	}
	order := rand.New(rand.NewPCG(d.seed, uint64(epoch))).Perm(d.nTrain)
	return d.batches(order, 0, deficit, d.batch, true), func() {}, nil
}

// Test is the clean test set in order.
func (d *Data) Test() (runs.Batches, func(), error) {
	order := make([]int, d.nTest)
	for i := range order {
		order[i] = i
	}
	return d.batches(order, 1, "", d.batch, false), func() {}, nil
}

// Probe is the first n clean training images.
func (d *Data) Probe(n int) (runs.Batches, func(), error) {
	order := make([]int, min(n, d.nTrain))
	for i := range order {
		order[i] = i
	}
	return d.batches(order, 0, "", d.batch, false), func() {}, nil
}
