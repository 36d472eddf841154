package preprocessing

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/critlab/critlab/internal/golden"
)

func TestCIFARArchiveGolden(t *testing.T) {
	for _, lay := range []*cifarLayout{cifar10Layout, cifar100Layout} {
		t.Run(lay.name, func(t *testing.T) {
			entries, wantTrain, wantTest := tinyCIFAR(lay, 3, 4)
			dir := t.TempDir()
			archive := writeFile(t, filepath.Join(dir, lay.archive), makeTarGz(t, entries))
			ds, err := Open(lay.name+":"+archive, OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			sameSplit(t, "train", ds.Train, wantTrain)
			sameSplit(t, "test", ds.Test, wantTest)
			// A bare archive path reads the same data.
			bare, err := Open(archive, OpenOptions{})
			if err != nil {
				t.Fatalf("Open(bare path): %v", err)
			}
			sameSplit(t, "train (bare path)", bare.Train, wantTrain)
			if ds.Classes[1] != tinyClassName(1) || len(ds.Classes) != lay.classes {
				t.Errorf("classes %v", ds.Classes[:2])
			}
			// The pixels are also pinned by a golden hash, so a change in
			// the generator above cannot hide a change in the reader.
			h := sha256.Sum256(append(slices.Clone(ds.Train.Images), ds.Test.Images...))
			got := hex.EncodeToString(h[:]) + "\n"
			if want := golden.Read(t, "tiny_"+lay.name+".sha256", []byte(got)); string(want) != got {
				t.Errorf("pixel hash %s, golden %s", got, want)
			}
			// Record 1 of data_batch_2 (or train.bin) starts at pixel byte
			// 0 = f*31 + 7 mod 256.
			f := 1
			if lay.name == "cifar100" {
				f = 0
			}
			if got, want := ds.Train.Image(3*f + 1)[0], byte(f*31+7); got != want {
				t.Errorf("first pixel of record 1 of file %d = %d, want %d", f, got, want)
			}

			// The same data through the archive detector, the unpacked
			// folder, and the folder holding the archive.
			if ds2, err := Open("archive:"+archive, OpenOptions{}); err != nil || ds2.Name != lay.name {
				t.Fatalf("archive: %v %v", ds2, err)
			} else {
				sameSplit(t, "archive train", ds2.Train, wantTrain)
			}
			unpacked := filepath.Join(dir, "unpacked")
			for _, e := range entries {
				writeFile(t, filepath.Join(unpacked, e.name), e.data)
			}
			for _, p := range []string{unpacked, filepath.Join(unpacked, lay.dirName), dir} {
				ds3, err := Open(lay.name+":"+p, OpenOptions{})
				if err != nil {
					t.Fatalf("open %s: %v", p, err)
				}
				sameSplit(t, p, ds3.Train, wantTrain)
				sameSplit(t, p, ds3.Test, wantTest)
			}
		})
	}
}

// Entries in another order than the official one are joined in file order.
func TestCIFAROutOfOrder(t *testing.T) {
	entries, wantTrain, wantTest := tinyCIFAR(cifar10Layout, 2, 3)
	slices.Reverse(entries)
	p := writeFile(t, filepath.Join(t.TempDir(), "x.tar.gz"), makeTarGz(t, entries))
	ds, err := Open("cifar10:"+p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameSplit(t, "train", ds.Train, wantTrain)
	sameSplit(t, "test", ds.Test, wantTest)
}

func TestCIFARBadInput(t *testing.T) {
	entries, _, _ := tinyCIFAR(cifar10Layout, 2, 2)
	good := makeTarGz(t, entries)
	mod := func(f func(es []tarEntry) []tarEntry) []byte {
		es := slices.Clone(entries)
		return makeTarGz(t, f(es))
	}
	tests := []struct {
		name string
		data []byte
		want []string // substrings of the error
	}{
		{"truncated archive", good[:len(good)/2], []string{"unexpected EOF", "truncated or corrupt", "fetch it again"}},
		{"truncated at the end", good[:len(good)-5], []string{"truncated or corrupt"}},
		{"corrupt gzip", func() []byte {
			b := slices.Clone(good)
			for i := 100; i < 140; i++ {
				b[i] ^= 0x5a
			}
			return b
		}(), []string{"truncated or corrupt"}},
		{"record of wrong size", mod(func(es []tarEntry) []tarEntry {
			es[2].data = es[2].data[:len(es[2].data)-1]
			return es
		}), []string{"data_batch_3.bin", "not a positive multiple of the 3073-byte record", "1 whole records and 3072 bytes over", "record 1 (byte offset 3073)"}},
		{"label out of range", mod(func(es []tarEntry) []tarEntry {
			d := slices.Clone(es[1].data)
			d[3073] = 12
			es[1].data = d
			return es
		}), []string{"data_batch_2.bin", "record 1 (byte offset 3073)", "label 12 out of range [0, 10)"}},
		{"missing batch", mod(func(es []tarEntry) []tarEntry {
			return slices.Delete(es, 3, 4)
		}), []string{"no entry data_batch_4.bin", "not a complete cifar10 binary archive"}},
		{"python version", makeTarGz(t, []tarEntry{{"cifar-10-batches-py/data_batch_1", []byte("x")}}), []string{"python version"}},
		{"not an archive", []byte("hello, this is not a tar file at all, but long enough to be read as one? no"), []string{"truncated or corrupt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, filepath.Join(t.TempDir(), "cifar-10-binary.tar.gz"), tt.data)
			_, err := Open("cifar10:"+p, OpenOptions{})
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrFormat) {
				t.Errorf("error does not wrap ErrFormat: %v", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, p) {
				t.Errorf("error does not name the file %s: %v", p, msg)
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q: %v", w, msg)
				}
			}
		})
	}
}

// A loose batch file of the wrong length is reported with its own path.
func TestCIFARDirWrongSize(t *testing.T) {
	entries, _, _ := tinyCIFAR(cifar10Layout, 2, 2)
	dir := t.TempDir()
	for _, e := range entries {
		writeFile(t, filepath.Join(dir, filepath.Base(e.name)), e.data)
	}
	bad := filepath.Join(dir, "test_batch.bin")
	f, err := os.OpenFile(bad, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{1, 2, 3})
	f.Close()
	_, err = Open("cifar10:"+dir, OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "3 bytes over") {
		t.Fatalf("error %v, want one naming %s and the 3 extra bytes", err, bad)
	}
}

func TestOpenMissing(t *testing.T) {
	_, err := Open("cifar10:"+filepath.Join(t.TempDir(), "nope.tar.gz"), OpenOptions{})
	if err == nil || !strings.Contains(err.Error(), "critlab data fetch cifar10") {
		t.Fatalf("error %v, want a hint to fetch", err)
	}
	for _, path := range []string{filepath.Join(t.TempDir(), "missing.tar.gz"), "missing.tar.gz"} {
		_, err = Open(path, OpenOptions{})
		if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "not found") {
			t.Fatalf("missing bare path %s: error %v, want not found", path, err)
		}
	}
	_, err = Open("imagenet:/x", OpenOptions{})
	if !errors.Is(err, ErrUnknownSpec) || !strings.Contains(err.Error(), "synthetic") {
		t.Fatalf("error %v, want ErrUnknownSpec listing the specs", err)
	}
}

// A folder given as a bare path is not an archive: the error names the
// kinds that read folders (it said "not found: file does not exist").
func TestOpenBareFolder(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := os.Mkdir("imgs", 0o755); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ spec, want string }{
		{dir, "a folder, not an archive; give folder:" + dir + " (train/<class>/ and test/<class>/ images) or cifar10:" + dir},
		{"imgs", "give folder:imgs"},
		{"imgs/", "give folder:imgs/"},
		{filepath.Join(dir, "gone"), "not found: file does not exist (valid specs: cifar10[:PATH]"},
	}
	for _, tc := range tests {
		_, err := Open(tc.spec, OpenOptions{})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want %q", tc.spec, err, tc.want)
		}
	}
}

// cifar10Path returns the real CIFAR-10 archive or skips the test.
func cifar10Path(t testing.TB) string {
	p := os.Getenv("CRITLAB_CIFAR10")
	if p == "" {
		p = filepath.Join("..", "..", "shared", "data", "cifar-10-binary.tar.gz")
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("real CIFAR-10 not found at %s (set $CRITLAB_CIFAR10 to the archive or its folder): %v", p, err)
	}
	return p
}

func TestCIFAR10Real(t *testing.T) {
	p := cifar10Path(t)
	start := time.Now()
	ds, err := Open("cifar10:"+p, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("read %s in %v", p, time.Since(start))
	if ds.Train.N != 50000 || ds.Test.N != 10000 {
		t.Fatalf("train %d, test %d images; want 50000 and 10000", ds.Train.N, ds.Test.N)
	}
	for k, c := range ds.Train.ClassCounts() {
		if c != 5000 {
			t.Errorf("train class %d (%s): %d images, want 5000", k, ds.Classes[k], c)
		}
	}
	for k, c := range ds.Test.ClassCounts() {
		if c != 1000 {
			t.Errorf("test class %d (%s): %d images, want 1000", k, ds.Classes[k], c)
		}
	}
	if ds.Classes[0] != "airplane" || ds.Classes[9] != "truck" {
		t.Errorf("classes %v", ds.Classes)
	}
	st := ds.Train.Stats()
	// CIFAR-10's well-known statistics: mean (0.4914, 0.4822, 0.4465),
	// std (0.2470, 0.2435, 0.2616).
	for c, m := range []float64{0.4914, 0.4822, 0.4465} {
		if d := st.Mean[c] - m; d > 0.01 || d < -0.01 {
			t.Errorf("channel %d mean %.4f, want about %.4f", c, st.Mean[c], m)
		}
	}
	t.Logf("train stats %v", st)
}

var _ = io.EOF
