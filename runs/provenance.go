package runs

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/critlab/critlab/internal/atomicfile"
	"github.com/critlab/critlab/internal/version"
)

// ProvenanceFile is the run directory's record of what produced it,
// beside config.yaml (which says what was asked for).
const ProvenanceFile = "run.json"

// ProvenanceMetadataKey is the Parquet key-value metadata entry of
// metrics.parquet and fisher.parquet that holds the run's Provenance as
// JSON.
const ProvenanceMetadataKey = "critlab.provenance"

// Provenance is what produced a run: the critlab build, the ONNX Runtime
// it trained through, the machine, when, and the data's checksums. A
// resumed run keeps its first start and records the latest attempt's
// build, runtime and host (Attempts counts them).
type Provenance struct {
	Critlab   string `json:"critlab_version"`
	GitCommit string `json:"git_commit"`
	GitDirty  bool   `json:"git_dirty"`
	Go        string `json:"go_version"`
	ORT       string `json:"onnxruntime_version"`
	Provider  string `json:"execution_provider"`
	Host      string `json:"host"`
	OS        string `json:"os_arch"`
	Threads   int    `json:"threads"`
	Start     string `json:"start"`
	// End is empty while the run has not finished.
	End      string `json:"end"`
	Attempts int    `json:"attempts"`
	// DataTrainSHA256 and DataTestSHA256 hash the splits as trained and
	// evaluated on (shape, labels, pixels; after the subset), whatever
	// file they came from.
	DataTrainSHA256 string `json:"data_train_sha256"`
	DataTestSHA256  string `json:"data_test_sha256"`
	// GraphSHA256 is the trainer's GraphHash: the compiled graphs' formulation
	// (checkpoints carry it too, and a resume checks it).
	GraphSHA256 string `json:"graph_sha256,omitempty"`
}

// RuntimeInfo is what a Trainer says of the runtime it trains through.
type RuntimeInfo interface {
	RuntimeInfo() (ortVersion, provider string)
}

// DataChecksums is what Data says of its splits' contents.
type DataChecksums interface {
	Checksums() (train, test [32]byte)
}

// startProvenance records an attempt at the run in dir, keeping the first
// start of an earlier attempt.
func startProvenance(dir string, cfg Config, tr Trainer, data Data, now time.Time) (Provenance, error) {
	v := version.Get()
	host, _ := os.Hostname()
	p := Provenance{Critlab: v.Version, GitCommit: v.Commit, GitDirty: v.Dirty, Go: runtime.Version(),
		Host: host, OS: runtime.GOOS + "/" + runtime.GOARCH, Threads: cfg.Threads,
		Start: now.UTC().Format(time.RFC3339), Attempts: 1}
	if ri, ok := tr.(RuntimeInfo); ok {
		p.ORT, p.Provider = ri.RuntimeInfo()
	}
	p.GraphSHA256 = graphHashOf(tr)
	if dc, ok := data.(DataChecksums); ok {
		train, test := dc.Checksums()
		p.DataTrainSHA256, p.DataTestSHA256 = hex.EncodeToString(train[:]), hex.EncodeToString(test[:])
	}
	if old, err := ReadProvenance(dir); err == nil && old.Start != "" {
		p.Start, p.Attempts = old.Start, old.Attempts+1
	}
	return p, writeProvenance(dir, p)
}

func writeProvenance(dir string, p Provenance) error {
	data, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(dir, ProvenanceFile), append(data, '\n'))
}

// ReadProvenance reads a run directory's run.json.
func ReadProvenance(dir string) (Provenance, error) {
	var p Provenance
	path := filepath.Join(dir, ProvenanceFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return p, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &p); err != nil {
		return p, fmt.Errorf("read %s: %w", path, err)
	}
	return p, nil
}

func (p Provenance) json() string {
	data, _ := json.Marshal(p) // plain strings, ints and bools: cannot fail
	return string(data)
}
