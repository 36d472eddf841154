package runs

import (
	"github.com/critlab/critlab/internal/pyenv"

	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// python returns the interpreter with pyarrow, pandas and polars, or skips
// the test.
func python(t *testing.T) string {
	t.Helper()
	return pyenv.Require(t, "pyarrow", "pandas", "polars")
}

func sampleRows(cfg Config) []MetricsRow {
	f := 2.5
	ptr := func(x float64) *float64 { return &x }
	rows := []MetricsRow{
		{RunID: "r", Model: cfg.Model, Dataset: cfg.Data, Seed: 3, Epoch: 0, Deficit: "blur", DeficitStart: 0, DeficitEnd: 1,
			DeficitWindows: "blur:0-1", LR: 0.1, TrainLoss: 2.3, TrainAcc: 0.1, TestLoss: nil, TestAcc: nil,
			EpochSeconds: 1.5, ImagesPerSec: 1000, ConfigHash: cfg.Hash()},
		{RunID: "r", Model: cfg.Model, Dataset: cfg.Data, Seed: 3, Epoch: 1, Deficit: "none", DeficitStart: 0, DeficitEnd: 1,
			DeficitWindows: "blur:0-1", LR: 0.097, TrainLoss: 2.0, TrainAcc: 0.2, TestLoss: ptr(1.9), TestAcc: ptr(0.25),
			EpochSeconds: 1.4, ImagesPerSec: 1100, FisherTrace: &f, ConfigHash: cfg.Hash()},
	}
	return rows
}

func TestParquetRoundTrip(t *testing.T) {
	dir := t.TempDir()
	cfg := tiny()
	rows := sampleRows(cfg)
	path := filepath.Join(dir, MetricsFile)
	if err := WriteMetrics(path, rows, cfg); err != nil {
		t.Fatal(err)
	}
	back, err := ReadMetrics(path)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, rows) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", back, rows)
	}
}

// TestParquetPyarrow checks with pyarrow that the files have the types of
// docs/design.md and that pandas and polars read them.
func TestParquetPyarrow(t *testing.T) {
	py := python(t)
	dir := t.TempDir()
	cfg := tiny()
	rows := sampleRows(cfg)
	if err := WriteMetrics(filepath.Join(dir, MetricsFile), rows, cfg); err != nil {
		t.Fatal(err)
	}
	fisher := []FisherRow{{"r", 1, FisherTotal, 2.5}, {"r", 1, "conv0.weight", 1.5}}
	if err := WriteFisher(filepath.Join(dir, FisherFile), fisher, cfg); err != nil {
		t.Fatal(err)
	}
	var sw []SweepRow
	for _, r := range rows {
		sw = append(sw, sweepRow(r, "demo", "removal", 1))
	}
	if err := WriteSweep(filepath.Join(dir, SweepFile), sw, []byte("name: demo\n")); err != nil {
		t.Fatal(err)
	}
	script := `
import sys, pyarrow as pa, pyarrow.parquet as pq, pandas as pd, polars as pl
d = sys.argv[1]
metrics = [("run_id", pa.string()), ("model", pa.string()), ("dataset", pa.string()), ("seed", pa.int64()),
    ("epoch", pa.int32()), ("deficit", pa.string()), ("deficit_start", pa.int32()), ("deficit_end", pa.int32()),
    ("deficit_windows", pa.string()), ("lr", pa.float64()), ("train_loss", pa.float64()), ("train_acc", pa.float64()),
    ("test_loss", pa.float64()), ("test_acc", pa.float64()), ("epoch_seconds", pa.float64()),
    ("images_per_sec", pa.float64()), ("fisher_trace", pa.float64()), ("config_hash", pa.string())]
want = {
    "metrics.parquet": metrics,
    "fisher.parquet": [("run_id", pa.string()), ("epoch", pa.int32()), ("layer", pa.string()), ("trace", pa.float64())],
    "sweep.parquet": metrics + [("sweep", pa.string()), ("variant", pa.string()), ("point", pa.int32())],
}
for name, cols in want.items():
    t = pq.read_table(f"{d}/{name}")
    got = [(f.name, f.type) for f in t.schema]
    assert got == cols, f"{name}: schema\n{t.schema}\nwant {cols}"
    for f in t.schema:
        assert f.nullable == (f.name in ("fisher_trace", "test_loss", "test_acc")), f"{name}: {f.name} nullable={f.nullable}"
    comp = pq.ParquetFile(f"{d}/{name}").metadata.row_group(0).column(0).compression
    assert comp in ("ZSTD", "SNAPPY"), comp
    assert len(pd.read_parquet(f"{d}/{name}")) == t.num_rows == len(pl.read_parquet(f"{d}/{name}"))
m = pq.read_table(f"{d}/metrics.parquet")
assert m.column("fisher_trace").to_pylist() == [None, 2.5]
assert m.column("test_acc").to_pylist() == [None, 0.25]
assert b"critlab.config" in m.schema.metadata and b"model: small" in m.schema.metadata[b"critlab.config"]
print("ok")
`
	out, err := exec.Command(py, "-c", script, dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("pyarrow check: %v\n%s", err, out)
	}
}

// Files written before test metrics were optional (docs/results) read with
// every epoch evaluated.
func TestReadSweepRequiredTestColumns(t *testing.T) {
	rows, err := ReadSweep(filepath.Join("..", "docs", "results", "cifar-cpu", "sweep.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		t.Fatal("no rows")
	}
	for _, r := range rows {
		if r.TestAcc == nil || r.TestLoss == nil || *r.TestAcc <= 0 || *r.TestAcc > 1 {
			t.Fatalf("%s epoch %d: test acc %v loss %v", r.RunID, r.Epoch, r.TestAcc, r.TestLoss)
		}
	}
}
