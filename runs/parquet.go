package runs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/critlab/critlab/internal/atomicfile"
	"github.com/parquet-go/parquet-go"
)

// ConfigMetadataKey is the Parquet key-value metadata entry that holds the
// resolved config (YAML) of the run a file belongs to.
const ConfigMetadataKey = "critlab.config"

// MetricsRow is one finished epoch of metrics.parquet (see docs/design.md).
// TestLoss and TestAcc are nil for epochs the run did not evaluate
// (Config.EvalEvery); files written before they were optional read as
// set.
type MetricsRow struct {
	RunID          string   `parquet:"run_id" json:"run_id"`
	Model          string   `parquet:"model" json:"model"`
	Dataset        string   `parquet:"dataset" json:"dataset"`
	Seed           int64    `parquet:"seed" json:"seed"`
	Epoch          int32    `parquet:"epoch" json:"epoch"`
	Deficit        string   `parquet:"deficit" json:"deficit"`
	DeficitStart   int32    `parquet:"deficit_start" json:"deficit_start"`
	DeficitEnd     int32    `parquet:"deficit_end" json:"deficit_end"`
	DeficitWindows string   `parquet:"deficit_windows" json:"deficit_windows"`
	LR             float64  `parquet:"lr" json:"lr"`
	TrainLoss      float64  `parquet:"train_loss" json:"train_loss"`
	TrainAcc       float64  `parquet:"train_acc" json:"train_acc"`
	TestLoss       *float64 `parquet:"test_loss,optional" json:"test_loss"`
	TestAcc        *float64 `parquet:"test_acc,optional" json:"test_acc"`
	EpochSeconds   float64  `parquet:"epoch_seconds" json:"epoch_seconds"`
	ImagesPerSec   float64  `parquet:"images_per_sec" json:"images_per_sec"`
	FisherTrace    *float64 `parquet:"fisher_trace,optional" json:"fisher_trace,omitempty"`
	ConfigHash     string   `parquet:"config_hash" json:"config_hash"`
}

// FisherRow is one (epoch, layer) trace of fisher.parquet; the layer
// "total" holds Tr F of the whole network.
type FisherRow struct {
	RunID string  `parquet:"run_id"`
	Epoch int32   `parquet:"epoch"`
	Layer string  `parquet:"layer"`
	Trace float64 `parquet:"trace"`
}

// FisherTotal names the whole-network row of fisher.parquet.
const FisherTotal = "total"

// SweepRow is a MetricsRow of sweep.parquet, with the sweep's name, the
// run's variant (one of the Variant constants: removal, trunk, window,
// baseline, control-vflip, control-sham, ...) and its point (removal
// epoch, window onset or pretraining epochs).
type SweepRow struct {
	RunID          string   `parquet:"run_id"`
	Model          string   `parquet:"model"`
	Dataset        string   `parquet:"dataset"`
	Seed           int64    `parquet:"seed"`
	Epoch          int32    `parquet:"epoch"`
	Deficit        string   `parquet:"deficit"`
	DeficitStart   int32    `parquet:"deficit_start"`
	DeficitEnd     int32    `parquet:"deficit_end"`
	DeficitWindows string   `parquet:"deficit_windows"`
	LR             float64  `parquet:"lr"`
	TrainLoss      float64  `parquet:"train_loss"`
	TrainAcc       float64  `parquet:"train_acc"`
	TestLoss       *float64 `parquet:"test_loss,optional"`
	TestAcc        *float64 `parquet:"test_acc,optional"`
	EpochSeconds   float64  `parquet:"epoch_seconds"`
	ImagesPerSec   float64  `parquet:"images_per_sec"`
	FisherTrace    *float64 `parquet:"fisher_trace,optional"`
	ConfigHash     string   `parquet:"config_hash"`
	Sweep          string   `parquet:"sweep"`
	Variant        string   `parquet:"variant"`
	Point          int32    `parquet:"point"`
	// The run's settings, typed (the same for all rows of a run), and the
	// run that trained the epoch: a branch's epochs before its branch
	// epoch are copies of its parent's (see docs/parquet.md).
	Width       float64 `parquet:"width"`
	Subset      int32   `parquet:"subset"`
	BatchSize   int32   `parquet:"batch_size"`
	Optimizer   string  `parquet:"optimizer"`
	Momentum    float64 `parquet:"momentum"`
	WeightDecay float64 `parquet:"weight_decay"`
	LRInitial   float64 `parquet:"lr_initial"`
	LRSchedule  string  `parquet:"lr_schedule"`
	LRDecay     float64 `parquet:"lr_decay"`
	LRStep      int32   `parquet:"lr_step"`
	LRRestart   bool    `parquet:"lr_restart_at_deficit_end"`
	DeficitKind string  `parquet:"deficit_kind"`
	TrainedBy   string  `parquet:"trained_by"`
}

// optimizerName names cfg's optimizer in sweep.parquet: its optimizer
// key, with SGD's Nesterov variant told apart.
func optimizerName(cfg Config) string {
	switch {
	case cfg.Optimizer != "" && cfg.Optimizer != "sgd":
		return cfg.Optimizer
	case cfg.Nesterov:
		return "sgd-nesterov"
	}
	return "sgd"
}

// Metrics returns the run-level part of the row.
func (r SweepRow) Metrics() MetricsRow {
	return MetricsRow{
		RunID: r.RunID, Model: r.Model, Dataset: r.Dataset, Seed: r.Seed, Epoch: r.Epoch,
		Deficit: r.Deficit, DeficitStart: r.DeficitStart, DeficitEnd: r.DeficitEnd,
		DeficitWindows: r.DeficitWindows, LR: r.LR, TrainLoss: r.TrainLoss, TrainAcc: r.TrainAcc,
		TestLoss: r.TestLoss, TestAcc: r.TestAcc, EpochSeconds: r.EpochSeconds,
		ImagesPerSec: r.ImagesPerSec, FisherTrace: r.FisherTrace, ConfigHash: r.ConfigHash,
	}
}

func sweepRow(m MetricsRow, sweep, variant string, point int, cfg Config, trainedBy string) SweepRow {
	kind := "none"
	if ws := cfg.sortedWindows(); len(ws) > 0 {
		kind, _, _ = strings.Cut(ws[0].Deficit, ":")
	}
	return SweepRow{
		Width: cfg.Width, Subset: int32(cfg.TrainSubset), BatchSize: int32(cfg.BatchSize),
		Optimizer: optimizerName(cfg), Momentum: cfg.Momentum, WeightDecay: cfg.WeightDecay,
		LRInitial: cfg.LR, LRSchedule: cfg.LRSchedule, LRDecay: cfg.LRDecay, LRStep: int32(cfg.LRStep),
		LRRestart: cfg.RestartAtDeficitEnd, DeficitKind: kind, TrainedBy: trainedBy,
		RunID: m.RunID, Model: m.Model, Dataset: m.Dataset, Seed: m.Seed, Epoch: m.Epoch,
		Deficit: m.Deficit, DeficitStart: m.DeficitStart, DeficitEnd: m.DeficitEnd,
		DeficitWindows: m.DeficitWindows, LR: m.LR, TrainLoss: m.TrainLoss, TrainAcc: m.TrainAcc,
		TestLoss: m.TestLoss, TestAcc: m.TestAcc, EpochSeconds: m.EpochSeconds,
		ImagesPerSec: m.ImagesPerSec, FisherTrace: m.FisherTrace, ConfigHash: m.ConfigHash,
		Sweep: sweep, Variant: variant, Point: int32(point),
	}
}

// writeParquet writes rows to path atomically, zstd-compressed, with the
// given key-value metadata.
func writeParquet[T any](path string, rows []T, meta map[string]string) error {
	var buf bytes.Buffer
	opts := []parquet.WriterOption{parquet.Compression(&parquet.Zstd)}
	for k, v := range meta {
		opts = append(opts, parquet.KeyValueMetadata(k, v))
	}
	w := parquet.NewGenericWriter[T](&buf, opts...)
	if _, err := w.Write(rows); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.Write(path, buf.Bytes())
}

// requiredColumns are the columns a file must have to be read as T: the
// ones every critlab version wrote (later ones read as zero from older
// files).
func requiredColumns(row any) []string {
	metrics := []string{"run_id", "seed", "epoch", "deficit", "deficit_start", "deficit_end", "deficit_windows", "test_acc"}
	switch row.(type) {
	case MetricsRow:
		return metrics
	case SweepRow:
		return append(metrics, "variant", "point")
	case FisherRow:
		return []string{"run_id", "epoch", "layer", "trace"}
	}
	return nil
}

// readParquet reads every row of path; a missing file is no rows and no
// error when missingOK. A file that is not Parquet, or lacks a column of
// requiredColumns, is refused: its rows would read as zeros.
func readParquet[T any](path string, missingOK bool) ([]T, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if missingOK && errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("read %s: not a Parquet file (%d bytes): %v", path, len(data), err)
	}
	var missing []string
	for _, c := range requiredColumns(*new(T)) {
		if _, ok := f.Schema().Lookup(c); !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("read %s: not a critlab file: no column %s", path, strings.Join(missing, ", "))
	}
	rows, err := parquet.Read[T](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return rows, nil
}

// WriteMetrics writes metrics.parquet with the config as metadata.
func WriteMetrics(path string, rows []MetricsRow, cfg Config) error {
	return writeParquet(path, rows, map[string]string{ConfigMetadataKey: string(cfg.YAML())})
}

// ReadMetrics reads a metrics.parquet file.
func ReadMetrics(path string) ([]MetricsRow, error) { return readParquet[MetricsRow](path, false) }

// WriteFisher writes fisher.parquet.
func WriteFisher(path string, rows []FisherRow, cfg Config) error {
	return writeParquet(path, rows, map[string]string{ConfigMetadataKey: string(cfg.YAML())})
}

// ReadFisher reads a fisher.parquet file.
func ReadFisher(path string) ([]FisherRow, error) { return readParquet[FisherRow](path, false) }

// WriteSweep writes sweep.parquet; meta holds the sweep spec.
func WriteSweep(path string, rows []SweepRow, spec []byte) error {
	return writeParquet(path, rows, map[string]string{"critlab.sweep": string(spec)})
}

// WriteSweepFisher writes a sweep's fisher.parquet beside sweep.parquet,
// so the two files carry the sweep without its run directories: for
// every run of rows (what sweep.parquet holds), in its order, the Fisher
// rows of its directory when this attempt finished it (fresh), else the
// ones the file held, as sweep.parquet's rows are merged. With no rows
// at all the file is removed, never left stale.
func WriteSweepFisher(dir string, rows []SweepRow, fresh map[string]bool, spec []byte) error {
	path := filepath.Join(dir, FisherFile)
	old, err := readParquet[FisherRow](path, true)
	if err != nil {
		return fmt.Errorf("%w\n---> HINT: move %s aside; the next resume writes it again from the run directories", err, path)
	}
	kept := map[string][]FisherRow{}
	for _, r := range old {
		kept[r.RunID] = append(kept[r.RunID], r)
	}
	var all []FisherRow
	seen := map[string]bool{}
	for _, r := range rows {
		if seen[r.RunID] {
			continue
		}
		seen[r.RunID] = true
		if !fresh[r.RunID] {
			all = append(all, kept[r.RunID]...)
			continue
		}
		fr, err := readParquet[FisherRow](filepath.Join(dir, r.RunID, FisherFile), true)
		if err != nil {
			return err
		}
		all = append(all, fr...)
	}
	if len(all) == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", path, err)
		}
		return nil
	}
	return writeParquet(path, all, map[string]string{"critlab.sweep": string(spec)})
}

// ReadSweep reads a sweep.parquet file.
func ReadSweep(path string) ([]SweepRow, error) { return readParquet[SweepRow](path, false) }

// ParquetMetadata returns a Parquet file's key-value metadata entry.
func ParquetMetadata(path, key string) (string, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	pf, err := parquet.OpenFile(f, st.Size())
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", path, err)
	}
	v, ok := pf.Lookup(key)
	return v, ok, nil
}
