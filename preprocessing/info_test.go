package preprocessing

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/critlab/critlab/internal/golden"
)

func TestInfoGolden(t *testing.T) {
	ds, err := Open("synthetic:train=120,test=30,classes=3,size=16,seed=2", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := Describe(ds).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if want := golden.Read(t, "info_synthetic.txt", b.Bytes()); !bytes.Equal(b.Bytes(), want) {
		t.Fatalf("info:\n%s\ngolden:\n%s", b.String(), want)
	}
}

func TestContactSheet(t *testing.T) {
	ds, err := Open("synthetic:train=100,test=10,classes=4,size=16", OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "sheet.png")
	if err := WriteContactSheet(p, ds, SheetOptions{PerClass: 3}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	// 5 deficit groups of 3 samples of 16 px at scale 2, 4 rows.
	if b := img.Bounds(); b.Dx() < 5*3*32 || b.Dy() < 4*32 {
		t.Fatalf("sheet is %v", b)
	}
	if err := WriteContactSheet(p, ds, SheetOptions{Deficits: []Deficit{{Kind: "warp"}}}); err == nil {
		t.Fatal("invalid deficit accepted")
	}
}
