package runs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/critlab/critlab/internal/atomicfile"
)

// Files of a run directory.
const (
	ConfigFile  = "config.yaml"
	MetricsFile = "metrics.parquet"
	FisherFile  = "fisher.parquet"
	ModelFile   = "model.onnx"
	LogFile     = "log.txt"
	// SweepFile is the combined metrics of a sweep directory (its
	// FisherFile, the combined Fisher rows, sits beside it).
	SweepFile = "sweep.parquet"
	// SweepSpecFile is the resolved spec of a sweep directory.
	SweepSpecFile    = "sweep.yaml"
	CheckpointDir    = "checkpoints"
	latestCheckpoint = "latest.ckpt"
)

// CheckpointPath is the checkpoint kept for epoch E in a run directory:
// the state after epochs 0..E-1 (see Config.KeepCheckpoints).
func CheckpointPath(dir string, epoch int) string {
	return filepath.Join(dir, CheckpointDir, fmt.Sprintf("epoch-%04d.ckpt", epoch))
}

// LatestCheckpointPath is the checkpoint a killed run resumes from.
func LatestCheckpointPath(dir string) string {
	return filepath.Join(dir, CheckpointDir, latestCheckpoint)
}

// RunState says what a directory holds.
type RunState int

const (
	// StateEmpty: no run yet (no config.yaml).
	StateEmpty RunState = iota
	// StateUnfinished: a run started and did not write model.onnx.
	StateUnfinished
	// StateFinished: the run wrote model.onnx.
	StateFinished
)

func (s RunState) String() string {
	return [...]string{"empty", "unfinished", "finished"}[s]
}

// Inspect returns the state of a run directory and its config when one is
// there.
func Inspect(dir string) (RunState, Config, error) {
	path := filepath.Join(dir, ConfigFile)
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return StateEmpty, Config{}, nil
	}
	// Decode over the zero config: config.yaml holds every field.
	cfg, err := LoadConfig(path, Config{})
	if err != nil {
		return StateEmpty, Config{}, err
	}
	if _, err := os.Stat(filepath.Join(dir, ModelFile)); err == nil {
		return StateFinished, cfg, nil
	}
	return StateUnfinished, cfg, nil
}

// clearRun removes what a run writes into dir, leaving other files (and
// the lock) alone.
func clearRun(dir string) error {
	if err := cleanTemps(dir); err != nil {
		return err
	}
	if err := clearTensorBoard(dir); err != nil {
		return err
	}
	ckpts, err := filepath.Glob(filepath.Join(dir, CheckpointDir, "*.ckpt"))
	if err != nil {
		return fmt.Errorf("clear run %s: %w", dir, err)
	}
	for _, name := range runFiles {
		ckpts = append(ckpts, filepath.Join(dir, name))
	}
	for _, p := range ckpts {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("clear run %s: %w", dir, err)
		}
	}
	// The checkpoint folder goes only when nothing else is in it.
	if err := os.Remove(filepath.Join(dir, CheckpointDir)); err != nil && !errors.Is(err, fs.ErrNotExist) && !isNotEmpty(err) {
		return fmt.Errorf("clear run %s: %w", dir, err)
	}
	return nil
}

// runFiles are the files a run writes beside its checkpoints.
var runFiles = []string{ModelFile, MetricsFile, FisherFile, LogFile, ProvenanceFile, ConfigFile}

// cleanTemps removes the temporary files of writes that a kill stopped
// before their rename (see atomicfile).
func cleanTemps(dir string) error {
	for _, name := range runFiles {
		if err := atomicfile.Clean(filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	temps, err := filepath.Glob(filepath.Join(dir, CheckpointDir, ".*.ckpt.tmp*"))
	if err != nil {
		return fmt.Errorf("clean %s: %w", dir, err)
	}
	for _, t := range temps {
		if err := os.Remove(t); err != nil {
			return fmt.Errorf("clean %s: %w", dir, err)
		}
	}
	return nil
}

func isNotEmpty(err error) bool {
	return errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST)
}
