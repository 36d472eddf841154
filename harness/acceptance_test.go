package harness_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/models/compiler"
	"github.com/critlab/critlab/models/graph"
)

// acceptanceEntry is one export of tools/acceptance_models.py's manifest.
type acceptanceEntry struct {
	Model     string  `json:"model"`
	Exporter  string  `json:"exporter"`
	ImageSize int64   `json:"image_size"`
	File      *string `json:"file"`
	MustTrain bool    `json:"must_train"`
	Chaotic   bool    `json:"chaotic"` // the recipe is chaotic for it in PyTorch too: the loss need not fall
	Error     string  `json:"error"`
}

// TestAcceptanceModels: every torchvision export in $CRITLAB_ACCEPTANCE_DIR
// (tools/acceptance_models.py; `make acceptance`) trains, its loss falling
// over a few SGD steps on one batch (for the models the manifest marks
// chaotic, only finite), or is refused with a reason and the
// re-export that fixes it; the exports made as critlab's hints say, and
// by export_torch.py, train.
func TestAcceptanceModels(t *testing.T) {
	dir := os.Getenv("CRITLAB_ACCEPTANCE_DIR")
	if dir == "" || testing.Short() {
		t.Skip("set CRITLAB_ACCEPTANCE_DIR to a folder of tools/acceptance_models.py (make acceptance)")
	}
	data, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []acceptanceEntry
	if err := json.Unmarshal(data, &entries); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	rt := openRuntime(t)
	for _, e := range entries {
		t.Run(e.Model+"/"+e.Exporter, func(t *testing.T) {
			if e.File == nil {
				t.Skipf("export failed: %s", e.Error)
			}
			m, err := graph.Load(filepath.Join(dir, *e.File))
			if err != nil {
				t.Fatal(err)
			}
			if err := graph.CheckExport(m); err != nil {
				if e.MustTrain {
					t.Fatalf("refused: %v", err)
				}
				for _, f := range graph.ExportFindings(m) {
					if f.Refuse && f.Fix == "" {
						t.Errorf("refused without a fix: %s", f.What)
					}
				}
				t.Logf("refused: %v", err)
				return
			}
			// Plain SGD at a small lr: on one batch of 8 the loss must fall
			// step by step (momentum makes deep BatchNorm nets overshoot).
			co := compiler.Options{}
			const n = 8
			tr, err := harness.NewTrainer(rt, m, harness.TrainerOptions{Compile: co, BatchSize: n})
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			rng := rand.New(rand.NewPCG(1, 2))
			images := make([]float32, n*3*e.ImageSize*e.ImageSize)
			for i := range images {
				images[i] = float32(rng.NormFloat64())
			}
			labels := make([]int64, n)
			for i := range labels {
				labels[i] = rng.Int64N(10)
			}
			var losses []float32
			for range 5 {
				loss, _, err := tr.Step(images, labels, 0.002)
				if err != nil {
					t.Fatal(err)
				}
				if math.IsNaN(float64(loss)) || math.IsInf(float64(loss), 0) {
					t.Fatalf("loss %v after %v", loss, losses)
				}
				losses = append(losses, loss)
			}
			if losses[len(losses)-1] >= losses[0] && !e.Chaotic {
				t.Errorf("loss did not fall: %v", losses)
			}
			t.Logf("losses %v", losses)
		})
	}
}
