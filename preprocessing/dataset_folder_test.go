package preprocessing

import (
	"bytes"
	"errors"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writePNG(t *testing.T, path string, w, h int, f func(x, y int) color.NRGBA) {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.SetNRGBA(x, y, f(x, y))
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b.Bytes())
}

func TestFolderDataset(t *testing.T) {
	root := t.TempDir()
	px := func(k int) func(x, y int) color.NRGBA {
		return func(x, y int) color.NRGBA { return color.NRGBA{uint8(k * 50), uint8(x * 8), uint8(y * 8), 255} }
	}
	writePNG(t, filepath.Join(root, "train", "cat", "a.png"), 32, 32, px(1))
	writePNG(t, filepath.Join(root, "train", "cat", "b.png"), 32, 32, px(1))
	writePNG(t, filepath.Join(root, "train", "ant", "a.png"), 32, 32, px(0))
	writePNG(t, filepath.Join(root, "train", "ant", "big.png"), 64, 48, px(0)) // resized
	writeFile(t, filepath.Join(root, "train", "ant", "notes.txt"), []byte("ignored"))
	writePNG(t, filepath.Join(root, "test", "cat", "c.png"), 32, 32, px(1))
	var jb bytes.Buffer
	jimg := image.NewRGBA(image.Rect(0, 0, 32, 32))
	if err := jpeg.Encode(&jb, jimg, nil); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "test", "ant", "d.JPG"), jb.Bytes())

	ds, err := Open("folder:"+root, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ds.Classes, ",") != "ant,cat" {
		t.Fatalf("classes %v", ds.Classes)
	}
	if ds.Train.N != 4 || ds.Test.N != 2 || ds.Train.H != 32 || ds.Train.C != 3 {
		t.Fatalf("train %d test %d images of %d×%d", ds.Train.N, ds.Test.N, ds.Train.H, ds.Train.W)
	}
	if got := ds.Train.Labels; got[0] != 0 || got[1] != 0 || got[2] != 1 || got[3] != 1 {
		t.Fatalf("labels %v", got)
	}
	// cat/a.png: red 50, green 8x, blue 8y.
	img := ds.Train.Image(2)
	if img[0] != 50 || img[1024+5] != 40 || img[2048+32*3] != 24 {
		t.Fatalf("pixels not CHW as expected: %d %d %d", img[0], img[1024+5], img[2048+32*3])
	}
	// Resizing to 16.
	ds16, err := Open("folder:"+root, OpenOptions{ImageSize: 16})
	if err != nil || ds16.Train.H != 16 || len(ds16.Train.Images) != 4*3*16*16 {
		t.Fatalf("resize to 16: %v", err)
	}
}

func TestFolderBadInput(t *testing.T) {
	good := func(x, y int) color.NRGBA { return color.NRGBA{1, 2, 3, 255} }
	tests := []struct {
		name  string
		setup func(t *testing.T, root string) string // returns the path the error must name
		opts  OpenOptions
		want  string
	}{
		{"unreadable image", func(t *testing.T, root string) string {
			return writeFile(t, filepath.Join(root, "train", "a", "broken.png"), []byte("\x89PNG not really"))
		}, OpenOptions{}, "cannot decode image"},
		{"wrongly sized image", func(t *testing.T, root string) string {
			p := filepath.Join(root, "train", "a", "wide.png")
			writePNG(t, p, 40, 32, good)
			return p
		}, OpenOptions{NoResize: true}, "image is 40×32, want 32×32"},
		{"empty class folder", func(t *testing.T, root string) string {
			p := filepath.Join(root, "train", "b")
			os.MkdirAll(p, 0o755)
			writeFile(t, filepath.Join(p, "readme.txt"), []byte("x"))
			return p
		}, OpenOptions{}, "empty class folder"},
		{"test class unknown", func(t *testing.T, root string) string {
			p := filepath.Join(root, "test", "zebra")
			writePNG(t, filepath.Join(p, "z.png"), 32, 32, good)
			return p
		}, OpenOptions{}, "has no match"},
		{"no test folder", func(t *testing.T, root string) string {
			os.RemoveAll(filepath.Join(root, "test"))
			return filepath.Join(root, "test")
		}, OpenOptions{}, "want"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writePNG(t, filepath.Join(root, "train", "a", "ok.png"), 32, 32, good)
			writePNG(t, filepath.Join(root, "test", "a", "ok.png"), 32, 32, good)
			p := tt.setup(t, root)
			_, err := Open("folder:"+root, tt.opts)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want one naming %s and saying %q", err, p, tt.want)
			}
			var fe *FormatError
			if tt.name != "no test folder" && tt.name != "test class unknown" && !errors.As(err, &fe) {
				t.Errorf("error is not a *FormatError: %v", err)
			}
		})
	}
}
