package runs

import "errors"

// Sentinel errors; wrapped errors say what failed and where.
var (
	// ErrInvalidConfig wraps every error Validate and Check return, so
	// callers can tell a refused configuration from a failure during
	// training.
	ErrInvalidConfig = errors.New("runs: invalid config")
	// ErrConfigChanged means a run directory holds an unfinished run of a
	// different configuration; resuming it would mix two experiments.
	ErrConfigChanged = errors.New("runs: run directory holds a different config")
	// ErrGraphChanged means a checkpoint was written by a training graph
	// other than the one this critlab compiles for its config (a changed
	// formulation): continuing from it would mix two arithmetics in a run.
	ErrGraphChanged = errors.New("runs: training graph changed")
	// ErrDiverged means the training loss became NaN or infinite.
	ErrDiverged = errors.New("runs: training diverged")
	// ErrNoBackend means Run or RunSweep was given no Backend.
	ErrNoBackend = errors.New("runs: no training backend")
	// ErrCorrupt marks a checkpoint that does not match the checksum it was
	// written with; Trainer.LoadCheckpoint's error wraps it.
	ErrCorrupt = errors.New("runs: checkpoint is corrupt")
)
