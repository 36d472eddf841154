package compiler

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/pyenv"
	"github.com/critlab/critlab/models/graph"
)

// exportCase is one fixture of testdata/exports (tools/make_exports.py):
// what graph.ExportFindings must say about it and whether it compiles.
type exportCase struct {
	name     string
	findings []string // substrings, one per finding, in order
	refused  bool     // a finding refuses the model
	train    bool     // CompileTrain succeeds (else only CompileEval)
}

var exportCases = []exportCase{
	{"dynamo_default", []string{"BatchNorm was folded", "no Dropout node", "fixed the batch size at 2"}, true, true},
	{"dynamo_noopt", []string{"no Dropout node", "fixed the batch size at 2"}, false, true},
	{"dynamo_opset22", []string{"no Dropout node", "fixed the batch size at 2"}, false, true},
	{"script_default", []string{"BatchNorm was folded", "no Dropout node", "fixed the batch size at 2"}, true, true},
	{"script_tied", []string{"2 initializers are tied", "no Dropout node"}, false, true},
	{"lngelu_dynamo", []string{"no Dropout node", "fixed the batch size at 2"}, false, true},
	{"lngelu_script", []string{"no Dropout node"}, false, true},
	{"dynamo_train", []string{"BatchNorm was folded", "1 Dropout nodes", "fixed the batch size at 2"}, true, true},
	{"dynamo_sd", []string{"1 random nodes"}, true, true},
	{"script_dropout", []string{"1 Dropout nodes: critlab trains with dropout"}, false, true},
	{"script_sd", []string{"1 Dropout nodes: critlab trains with dropout"}, false, true},
}

// TestExportStochasticDepth: export_torch.py --dropout carries
// StochasticDepth(0.2, "row") as a Dropout of ratio 0.2 over one value per
// sample, so the trainer's mask keeps or drops each sample's branch whole.
func TestExportStochasticDepth(t *testing.T) {
	m, err := graph.Load(filepath.Join("testdata", "exports", "script_sd.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	tg, err := CompileTrain(m, DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	if len(tg.Dropouts) != 1 || tg.Dropouts[0].Ratio != 0.2 || !slices.Equal(tg.Dropouts[0].Dims, []int64{-1, 1, 1, 1}) {
		t.Errorf("dropouts %+v, want one of ratio 0.2 over [-1 1 1 1]", tg.Dropouts)
	}
}

// TestExports: ordinary PyTorch exports (external data, opsets 13 to 22,
// axes as inputs, CastLike, Gelu, fixed batch, tied and folded
// parameters) load, get the findings they should, compile, and the
// compiled graphs pass onnx.checker's full check at their declared opset.
func TestExports(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for _, c := range exportCases {
		t.Run(c.name, func(t *testing.T) {
			m, err := graph.Load(filepath.Join("testdata", "exports", c.name+".onnx"))
			if err != nil {
				t.Fatal(err)
			}
			fs := graph.ExportFindings(m)
			refused := false
			for i, f := range fs {
				refused = refused || f.Refuse
				if i >= len(c.findings) || !strings.Contains(f.What, c.findings[i]) {
					t.Errorf("finding %d: %q", i, f)
				}
			}
			if len(fs) != len(c.findings) || refused != c.refused {
				t.Errorf("%d findings (refused %v), want %d (%v)", len(fs), refused, len(c.findings), c.refused)
			}
			eg, err := CompileEval(m)
			if err != nil {
				t.Fatal(err)
			}
			f := filepath.Join(dir, c.name+".eval.onnx")
			if err := graph.Save(f, eg.Model); err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
			tg, err := CompileTrain(m, DefaultOptions())
			if !c.train {
				if err == nil {
					t.Fatal("CompileTrain succeeded; update the case")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			dropouts := 0
			for _, n := range m.Graph.Node {
				if n.GetOpType() == "Dropout" {
					dropouts++
				}
			}
			if len(tg.Dropouts) != dropouts {
				t.Errorf("%d Dropouts trained, want %d", len(tg.Dropouts), dropouts)
			}
			f = filepath.Join(dir, c.name+".train.onnx")
			if err := graph.Save(f, tg.Model); err != nil {
				t.Fatal(err)
			}
			files = append(files, f)
		})
	}
	py := pyenv.Require(t, "onnx")
	script := "import onnx, sys\nfor f in sys.argv[1:]:\n    onnx.checker.check_model(onnx.load(f), full_check=True)\n"
	if out, err := exec.Command(py, append([]string{"-c", script}, files...)...).CombinedOutput(); err != nil {
		t.Fatalf("onnx checker: %v\n%s", err, out)
	}
}
