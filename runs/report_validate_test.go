package runs_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
	"github.com/parquet-go/parquet-go"
)

// LoadReport refuses what it cannot summarise honestly, naming the file
// or the runs and the way out; it never reads foreign columns as zeros or
// averages two runs of one seed.
func TestLoadReportRefuses(t *testing.T) {
	loose := func(deficits ...string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			for _, d := range deficits {
				cfg := tinyConfig()
				cfg.Epochs = 3
				cfg.Deficits = []runs.Window{{Deficit: d, Start: 0, End: 2}}
				mustRun(t, cfg, filepath.Join(dir, d), &runstest.Backend{})
			}
		}
	}
	file := func(name string, data []byte) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	type foreign struct {
		A int64 `parquet:"a"`
		B int64 `parquet:"b"`
	}
	foreignFile := func(name string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := parquet.WriteFile(filepath.Join(dir, name), []foreign{{1, 2}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		dir   string // relative to the test's folder
		want  []string
	}{
		{"two deficits at one point and seed", loose("blur", "vflip"), "", []string{"blur (deficits blur:0-2) and vflip (deficits vflip:0-2) are both removal@2 of seed 0", "HINT"}},
		{"foreign metrics.parquet", foreignFile("metrics.parquet"), "", []string{"metrics.parquet: not a critlab file: no column run_id", "HINT"}},
		{"foreign sweep.parquet", foreignFile("sweep.parquet"), "", []string{"sweep.parquet: not a critlab file", "move", "aside"}},
		{"empty metrics.parquet", file("metrics.parquet", nil), "", []string{"metrics.parquet: not a Parquet file (0 bytes)", "HINT"}},
		{"corrupt metrics.parquet", file("metrics.parquet", []byte("PAR1 this is not parquet")), "", []string{"metrics.parquet: not a Parquet file", "HINT"}},
		{"no such directory", nil, "nonexistent", []string{"nonexistent: no such directory"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, dir)
			}
			_, err := runs.LoadReport(filepath.Join(dir, tc.dir))
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("err = %v, want one with %q", err, w)
				}
			}
		})
	}
}
