package runs_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/critlab/critlab/runs"
	"github.com/critlab/critlab/runs/runstest"
)

// runFiles maps each file below dir to its contents.
func runFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		files[p] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// --force deletes a finished run only once every check that can refuse
// the new one has passed: a refused --force leaves the run as it was.
func TestRunForceChecksBeforeDeleting(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(cfg *runs.Config, dir, tmp string, b *runstest.Backend)
		want string
	}{
		{"backend cannot open the trainer", func(cfg *runs.Config, dir, tmp string, b *runstest.Backend) {
			cfg.LR = 0.01
			b.OpenErr = errors.New("param_groups[0] fc.*: matches no parameter")
		}, "matches no parameter"},
		{"init_from a folder without a model", func(cfg *runs.Config, dir, tmp string, b *runstest.Backend) {
			cfg.InitFrom = tmp
		}, "holds neither"},
		{"init_from a file that is no model", func(cfg *runs.Config, dir, tmp string, b *runstest.Backend) {
			cfg.InitFrom = filepath.Join(tmp, "junk.onnx")
			if err := os.WriteFile(cfg.InitFrom, []byte("junk"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "init from"},
		{"init_from the run being cleared", func(cfg *runs.Config, dir, tmp string, b *runstest.Backend) {
			cfg.InitFrom = filepath.Join(dir, "model.onnx")
		}, "--force clears"},
		{"branch_from a run without the checkpoint", func(cfg *runs.Config, dir, tmp string, b *runstest.Backend) {
			parent := filepath.Join(tmp, "parent")
			p := tinyConfig()
			mustRun(t, p, parent, &runstest.Backend{})
			cfg.BranchFrom, cfg.BranchEpoch = parent, 2 // parent kept no checkpoint at 2
		}, "epoch-0002.ckpt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "run")
			cfg := tinyConfig()
			mustRun(t, cfg, dir, &runstest.Backend{})
			before := runFiles(t, dir)
			b := &runstest.Backend{}
			tc.edit(&cfg, dir, t.TempDir(), b)
			_, err := runs.Run(context.Background(), cfg, dir, runs.Options{Backend: b, Force: true})
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "nothing deleted") {
				t.Fatalf("err = %v, want one naming %q and saying nothing was deleted", err, tc.want)
			}
			if after := runFiles(t, dir); !reflect.DeepEqual(after, before) {
				t.Errorf("the refused --force changed the run: %d files before, %d after", len(before), len(after))
			}
		})
	}
}
