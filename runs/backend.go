package runs

import (
	"context"
	"fmt"
)

// The interfaces below are what the training loop needs from the rest of
// critlab. harness/ortbackend.New wires them to harness, models/zoo and
// preprocessing; tests use fakes (runstest), so the loop is tested, and the
// package builds, without ONNX Runtime or cgo.

// Batches yields float32 N×C×H×W images and int64 labels until ok is false.
type Batches func() (images []float32, labels []int64, ok bool, err error)

// EvalResult is a mean loss and accuracy over N images.
type EvalResult struct {
	Loss, Accuracy float64
	N              int
}

// Trainer trains one model (harness.Trainer through an adapter).
type Trainer interface {
	// Step trains on one batch at learning rate lr and returns the batch's
	// mean loss and number of correct predictions.
	Step(images []float32, labels []int64, lr float32) (loss float32, correct int64, err error)
	// Evaluate returns the mean loss and accuracy over all batches.
	Evaluate(next Batches) (EvalResult, error)
	// SaveCheckpoint writes the full training state and meta atomically.
	SaveCheckpoint(path string, meta map[string]string) error
	// LoadCheckpoint restores a state SaveCheckpoint wrote and returns its
	// meta; the error wraps ErrCorrupt when the file fails its checksum.
	LoadCheckpoint(path string) (map[string]string, error)
	// InitFrom loads parameters and BatchNorm statistics (not optimizer
	// state) from a checkpoint or an ONNX model, by name.
	InitFrom(path string) error
	// Export writes an inference ONNX model with the trained weights.
	Export(path string) error
	// Close releases the trainer and what it holds.
	Close() error
}

// FisherResult is a Fisher-information trace estimate: the total and the
// trace per layer (a parameter tensor's name without its final ".weight" or
// ".bias"; see harness.LayerOf).
type FisherResult struct {
	Total  float64
	Layers map[string]float64
}

// FisherTrainer is a Trainer that can estimate the trace of the Fisher
// information over the images of next, sampling samples labels per image
// from the model's predictive distribution.
type FisherTrainer interface {
	Fisher(next Batches, samples int) (FisherResult, error)
}

// GraphHasher is a Trainer that names the arithmetic of its compiled
// graphs (harness.Trainer.GraphHash); checkpoints record it, and a
// checkpoint of another hash is refused (ErrGraphChanged).
type GraphHasher interface {
	GraphHash() string
}

// EpochSeeder is a Trainer with random draws of its own (dropout masks):
// SeedEpoch restarts them from the run's seed and the epoch, so a run
// resumed at an epoch draws what an uninterrupted one does.
type EpochSeeder interface {
	SeedEpoch(epoch int)
}

// Data is the data a run trains and evaluates on. Each method returns the
// batches and a stop function that releases them (a loader's goroutines);
// the caller calls stop when done, whether or not it read every batch.
type Data interface {
	// TrainSize is the number of training images per epoch.
	TrainSize() int
	// Train returns the training batches of an epoch (shuffled and
	// augmented as a function of the seed and epoch), corrupted by the
	// deficit spec, or clean when deficit is "".
	Train(epoch int, deficit string) (next Batches, stop func(), err error)
	// Test returns the batches of the clean test set.
	Test() (next Batches, stop func(), err error)
	// Probe returns the first n clean training images, neither shuffled nor
	// augmented (for Fisher estimates).
	Probe(n int) (next Batches, stop func(), err error)
}

// Backend makes trainers and data for configs.
type Backend interface {
	// Check refuses, before anything trains, a config whose deficits are
	// unknown, whose model cannot be read, or whose data set the model
	// does not take. Errors wrap ErrInvalidConfig.
	Check(cfg Config) error
	// Open builds the model, trainer and data of a run.
	Open(ctx context.Context, cfg Config) (Trainer, Data, error)
}

// Check validates cfg on its own and against what backend can build (nil:
// on its own only): the checks every run passes, those on disk included.
func Check(cfg Config, backend Backend) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	if backend != nil {
		if err := backend.Check(cfg); err != nil {
			return fmt.Errorf("check config: %w", err)
		}
	}
	return nil
}

// CheckNew is Check for a run that is not on disk yet: it also refuses the
// settings that have no effect (a model file's width, ...; see
// checkEffect), last, since a model that is missing or does not take the
// data is the first thing to fix.
func CheckNew(cfg Config, backend Backend) error {
	if err := Check(cfg, backend); err != nil {
		return err
	}
	return cfg.checkEffect(cfg.Epochs)
}
