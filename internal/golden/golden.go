// Package golden compares test output with files under testdata/ and, with
// `go test -update`, rewrites those files: critlab's one golden-update
// flag. Only tests import it.
package golden

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ with what the tests produce")

// Read returns the golden file testdata/name, which -update first
// rewrites with got. Tests that compare with a tolerance use it.
func Read(t testing.TB, name string, got []byte) []byte {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run '%s' -update writes it)", err, t.Name())
	}
	return want
}

// Check fails t unless got equals the golden file testdata/name.
func Check(t testing.TB, name string, got []byte) {
	t.Helper()
	if want := Read(t, name, got); !bytes.Equal(got, want) {
		t.Errorf("output differs from testdata/%s (go test -run '%s' -update accepts it):\n--- got\n%s--- want\n%s", name, t.Name(), got, want)
	}
}
