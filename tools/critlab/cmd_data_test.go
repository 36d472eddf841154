package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"image/png"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/critlab/critlab/internal/golden"
)

// runData runs `critlab data ARGS...` in an app holding only the data
// command, and returns its stdout and stderr.
func runData(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	return runCLI(t, append([]string{"data"}, args...)...)
}

func TestDataInfoGolden(t *testing.T) {
	dir := t.TempDir()
	sheet := filepath.Join(dir, "sheet.png")
	out, errOut, err := runData(t, "info", "--data", "synthetic:train=60,test=30,classes=3,size=16,seed=4", "--sheet", sheet, "--per-class", "2")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	got := strings.ReplaceAll(out, dir+string(filepath.Separator), "")
	golden.Check(t, "data_info_synthetic.golden", []byte(got))
	f, err := os.Open(sheet)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := png.Decode(f); err != nil {
		t.Fatalf("contact sheet: %v", err)
	}
}

// tinyArchive writes a CIFAR-10 binary archive of one record per file.
func tinyArchive(t *testing.T) string {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin", "test_batch.bin"} {
		rec := make([]byte, 3073)
		rec[0] = byte(len(name) % 10)
		tw.WriteHeader(&tar.Header{Name: "cifar-10-batches-bin/" + name, Mode: 0o644, Size: int64(len(rec)), Typeflag: tar.TypeReg})
		tw.Write(rec)
	}
	tw.Close()
	gz.Close()
	p := filepath.Join(t.TempDir(), "copy.tar.gz")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDataFetch(t *testing.T) {
	src := tinyArchive(t)
	dir := t.TempDir()
	out, errOut, err := runData(t, "fetch", "cifar10", "--archive", src, "--dir", dir, "-q")
	if err != nil {
		t.Fatal(err)
	}
	placed := filepath.Join(dir, "cifar-10-binary.tar.gz")
	if !strings.Contains(out, "placed "+placed) || !strings.Contains(out, "not the published MD5") {
		t.Errorf("stdout %q", out)
	}
	if !strings.Contains(errOut, "notice:") || !strings.Contains(errOut, "accepted as a local copy") {
		t.Errorf("no notice on stderr: %q", errOut)
	}
	out, _, err = runData(t, "info", "--archive", placed)
	if err != nil || !strings.Contains(out, "train     5 images") {
		t.Fatalf("info on the placed archive: %v\n%s", err, out)
	}

	// A download whose checksum is wrong places nothing.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("not the archive"))
	}))
	defer srv.Close()
	dir2 := t.TempDir()
	_, _, err = runData(t, "fetch", "cifar10", "--dir", dir2, "--base-url", srv.URL)
	if err == nil || !strings.Contains(err.Error(), "does not match the expected c32a1d4ab5d03f1284b67883e8d87530") {
		t.Fatalf("error %v", err)
	}
	if ents, _ := os.ReadDir(dir2); len(ents) != 0 {
		t.Fatalf("left %v after a checksum failure", ents)
	}

	for _, args := range [][]string{{"fetch"}, {"fetch", "mnist", "--dir", dir2}, {"fetch", "cifar10", "--bogus"},
		{"fetch", "cifar10", "--dir"}, {"fetch", "cifar10", "extra"}, {"info"}, {"info", "--data", "synthetic", "--archive", "x"}} {
		if _, _, err := runData(t, args...); err == nil {
			t.Errorf("%v: no error", args)
		}
	}
}

// The command that a missing CIFAR data set's error suggests places the
// archive where the same --data spec then finds it.
func TestDataFetchHintIsFollowable(t *testing.T) {
	src := tinyArchive(t)
	hint := regexp.MustCompile(`critlab data fetch [^,\n]*`)
	for _, spec := range []string{"cifar10", "cifar10:sub", "cifar10:sub/deeper/cifar-10-binary.tar.gz"} {
		t.Run(spec, func(t *testing.T) {
			t.Chdir(t.TempDir())
			t.Setenv("CRITLAB_DATA", "")
			_, _, err := runData(t, "info", "--data", spec)
			if err == nil {
				t.Fatal("no error before the fetch")
			}
			cmd := hint.FindString(err.Error())
			if cmd == "" {
				t.Fatalf("error names no fetch command: %v", err)
			}
			args := append(strings.Fields(strings.TrimPrefix(cmd, "critlab data ")), "--archive", src, "-q")
			if _, errOut, err := runData(t, args...); err != nil {
				t.Fatalf("%s: %v\n%s", cmd, err, errOut)
			}
			if out, _, err := runData(t, "info", "--data", spec); err != nil || !strings.Contains(out, "train     5 images") {
				t.Fatalf("after %q: %v\n%s", cmd, err, out)
			}
		})
	}
	// An archive under another name: fetch writes the official one, and the
	// hint says which spec then finds it.
	t.Chdir(t.TempDir())
	_, _, err := runData(t, "info", "--data", "cifar10:sub/mine.tar.gz")
	if err == nil || !strings.Contains(err.Error(), "critlab data fetch cifar10 --dir sub, then pass --data cifar10:sub/cifar-10-binary.tar.gz") {
		t.Fatalf("hint for a renamed archive: %v", err)
	}
}
