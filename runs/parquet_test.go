package runs

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/pyenv"
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

// documentedSchemas reads the column tables of docs/parquet.md: for each
// file, its columns in order as [name, type, nullable]; sweep.parquet's
// start with metrics.parquet's.
func documentedSchemas(t *testing.T) map[string][][3]any {
	t.Helper()
	doc, err := os.ReadFile(filepath.Join("..", "docs", "parquet.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][][3]any{}
	file := ""
	for _, line := range strings.Split(string(doc), "\n") {
		if name, ok := strings.CutPrefix(line, "## "); ok {
			file = name
			if file == SweepFile {
				out[file] = append(out[file], out[MetricsFile]...)
			}
			continue
		}
		cells := strings.Split(line, "|")
		if file == "" || len(cells) < 4 || strings.TrimSpace(cells[1]) == "column" || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") {
			continue
		}
		typ, opt := strings.CutSuffix(strings.TrimSpace(cells[2]), ", optional")
		for _, name := range strings.Split(cells[1], ",") {
			out[file] = append(out[file], [3]any{strings.TrimSpace(name), typ, opt})
		}
	}
	for _, f := range []string{MetricsFile, FisherFile, SweepFile} {
		if len(out[f]) == 0 {
			t.Fatalf("docs/parquet.md: no column table for %s", f)
		}
	}
	return out
}

// TestParquetSchemaDocumented checks with pyarrow that the files have the
// columns, types and nullability docs/parquet.md lists, and that pandas
// and polars read them.
func TestParquetSchemaDocumented(t *testing.T) {
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
		sw = append(sw, sweepRow(r, "demo", "removal", 1, cfg, "r"))
	}
	if err := WriteSweep(filepath.Join(dir, SweepFile), sw, []byte("name: demo\n")); err != nil {
		t.Fatal(err)
	}
	script := `
import json, sys, pyarrow as pa, pyarrow.parquet as pq, pandas as pd, polars as pl
d = sys.argv[1]
types = {"string": pa.string(), "int64": pa.int64(), "int32": pa.int32(), "double": pa.float64(), "bool": pa.bool_()}
want = json.loads(sys.argv[2])
for name, cols in want.items():
    t = pq.read_table(f"{d}/{name}")
    got = [(f.name, f.type, f.nullable) for f in t.schema]
    cols = [(c, types[ty], opt) for c, ty, opt in cols]
    assert got == cols, f"{name}: schema\n{t.schema}\nwant (docs/parquet.md) {cols}"
    comp = pq.ParquetFile(f"{d}/{name}").metadata.row_group(0).column(0).compression
    assert comp in ("ZSTD", "SNAPPY"), comp
    assert len(pd.read_parquet(f"{d}/{name}")) == t.num_rows == len(pl.read_parquet(f"{d}/{name}"))
m = pq.read_table(f"{d}/metrics.parquet")
assert m.column("fisher_trace").to_pylist() == [None, 2.5]
assert m.column("test_acc").to_pylist() == [None, 0.25]
assert b"critlab.config" in m.schema.metadata and b"model: small" in m.schema.metadata[b"critlab.config"]
print("ok")
`
	want, err := json.Marshal(documentedSchemas(t))
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(py, "-c", script, dir, string(want)).CombinedOutput()
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

func TestSweepRowOptimizer(t *testing.T) {
	for _, tc := range []struct {
		optimizer string
		nesterov  bool
		want      string
	}{
		{"", false, "sgd"},
		{"sgd", false, "sgd"},
		{"", true, "sgd-nesterov"},
		{"sgd", true, "sgd-nesterov"},
		{"adam", false, "adam"},
		{"adamw", false, "adamw"},
	} {
		cfg := Config{Optimizer: tc.optimizer, Nesterov: tc.nesterov}
		if got := sweepRow(MetricsRow{}, "s", "v", 0, cfg, "").Optimizer; got != tc.want {
			t.Errorf("optimizer %q nesterov %v: sweep.parquet says %q, want %q", tc.optimizer, tc.nesterov, got, tc.want)
		}
	}
}
