package preprocessing

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"
)

// tarEntry is one file of a generated archive.
type tarEntry struct {
	name string
	data []byte
}

// makeTarGz returns a .tar.gz holding the entries, in order, under a folder
// entry for the first entry's directory.
func makeTarGz(t testing.TB, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if len(entries) > 0 {
		if d := filepath.Dir(entries[0].name); d != "." {
			if err := tw.WriteHeader(&tar.Header{Name: d + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(e.data))}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// tinyRecords returns n records of file f in lay's layout, with the labels
// and pixels they hold. Pixel j of record r is (f*31 + r*7 + j*13) mod 256;
// the label is (f*3 + r) mod classes (coarse label: label mod 20).
func tinyRecords(lay *cifarLayout, f, n int) (raw []byte, labels []int, images []uint8) {
	for r := 0; r < n; r++ {
		l := (f*3 + r) % lay.classes
		if lay.labelBytes == 2 {
			raw = append(raw, byte(l%20))
		}
		raw = append(raw, byte(l))
		labels = append(labels, l)
		for j := 0; j < cifarPixels; j++ {
			p := byte(f*31 + r*7 + j*13)
			raw = append(raw, p)
			images = append(images, p)
		}
	}
	return raw, labels, images
}

// tinyCIFAR builds the entries of a tiny archive in lay's official layout:
// perFile records in each training file, testN in the test file, plus the
// class names. It returns the entries and the expected splits.
func tinyCIFAR(lay *cifarLayout, perFile, testN int) ([]tarEntry, *Split, *Split) {
	var entries []tarEntry
	train := &Split{C: 3, H: 32, W: 32, Classes: lay.classes}
	test := &Split{C: 3, H: 32, W: 32, Classes: lay.classes}
	for f, name := range lay.trainFiles {
		raw, l, im := tinyRecords(lay, f, perFile)
		entries = append(entries, tarEntry{lay.dirName + "/" + name, raw})
		train.Labels = append(train.Labels, l...)
		train.Images = append(train.Images, im...)
	}
	var names bytes.Buffer
	for k := 0; k < lay.classes; k++ {
		names.WriteString(tinyClassName(k) + "\n")
	}
	entries = append(entries, tarEntry{lay.dirName + "/" + lay.meta, names.Bytes()})
	raw, l, im := tinyRecords(lay, 9, testN)
	entries = append(entries, tarEntry{lay.dirName + "/" + lay.testFiles[0], raw})
	test.Labels, test.Images = l, im
	train.N, test.N = len(train.Labels), len(test.Labels)
	return entries, train, test
}

func tinyClassName(k int) string { return "name" + string(rune('a'+k%26)) + string(rune('a'+k/26)) }

func writeFile(t testing.TB, path string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func sameSplit(t testing.TB, what string, got, want *Split) {
	t.Helper()
	if got.N != want.N || got.C != want.C || got.H != want.H || got.W != want.W || got.Classes != want.Classes {
		t.Fatalf("%s: shape %d×%d×%d×%d/%d classes, want %d×%d×%d×%d/%d", what, got.N, got.C, got.H, got.W, got.Classes,
			want.N, want.C, want.H, want.W, want.Classes)
	}
	if !bytes.Equal(got.Images, want.Images) {
		t.Fatalf("%s: pixels differ from the golden bytes", what)
	}
	for i := range want.Labels {
		if got.Labels[i] != want.Labels[i] {
			t.Fatalf("%s: label %d = %d, want %d", what, i, got.Labels[i], want.Labels[i])
		}
	}
}
