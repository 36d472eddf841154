package atomicfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.txt")
	for _, content := range []string{"first", "second"} {
		if err := Write(path, []byte(content)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || string(got) != content {
			t.Fatalf("read %q, %v; want %q", got, err, content)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d entries left in the folder, want only the file", len(entries))
	}
	if err := Write(filepath.Join(dir, "missing", "b.txt"), []byte("x")); err == nil {
		t.Error("writing into a missing folder succeeded")
	}
}

func TestClean(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "a.txt")
	keep := []string{"a.txt", "b.txt", ".b.txt.tmp123", "a.txt.tmp1"}
	for _, name := range append([]string{".a.txt.tmp123", ".a.txt.tmp9"}, keep...) {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := Clean(path); err != nil {
		t.Fatal(err)
	}
	var left []string
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		left = append(left, e.Name())
	}
	if want := []string{".b.txt.tmp123", "a.txt", "a.txt.tmp1", "b.txt"}; strings.Join(left, " ") != strings.Join(want, " ") {
		t.Errorf("left %v, want %v", left, want)
	}
}
