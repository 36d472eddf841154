package preprocessing

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/critlab/critlab/internal/golden"

	"github.com/disintegration/imaging"
)

func TestParseDeficit(t *testing.T) {
	tests := []struct {
		spec, want string // want: canonical spec, or an error substring after "error: "
	}{
		{"", "none"},
		{"none", "none"},
		{"blur", "blur:size=8,down=box,up=linear"},
		{"blur:size=4", "blur:size=4,down=box,up=linear"},
		{"blur:4", "blur:size=4,down=box,up=linear"},
		{"BLUR:size=8,down=lanczos,up=bicubic", "blur:size=8,down=lanczos,up=catmullrom"},
		{"blur:down=area,up=bilinear", "blur:size=8,down=box,up=linear"},
		{"gauss", "gauss:sigma=1.5"},
		{"gauss:sigma=2.25", "gauss:sigma=2.25"},
		{"gauss:3", "gauss:sigma=3"},
		{"vflip", "vflip"},
		{"labelperm", "labelperm"},
		{"labelshuffle", "labelshuffle"},
		{"noise", "noise"},
		{"SHAM", "sham"},
		{"sham:size=3", `error: parameter "size" for sham; valid parameters: none`},
		{"sharpen", "error: valid deficits: none, blur"},
		{"blur:radius=3", `error: unknown deficit parameter "radius" for blur; valid parameters: size, down, up`},
		{"vflip:size=3", `error: parameter "size" for vflip; valid parameters: none`},
		{"blur:down=fancy", `error: filter "fancy" for down; valid filters: bartlett, blackman, box`},
		{"blur:size=0", "error: blur size 0"},
		{"gauss:sigma=-1", "error: gauss sigma -1"},
		{"gauss:sigma=x", "error: not a number"},
		{"gauss:sigma=0.2", "error: gauss sigma 0.2: below 0.27 pixels the blur changes no pixel"},
		{"gauss:sigma=1e-320", "error: below 0.27 pixels"},
		{"gauss:0.27", "gauss:sigma=0.27"},
		{"blur:size", "error: not an integer"},
		{"blur:size=8,", "error: want key=value"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			d, err := ParseDeficit(tt.spec)
			if msg, isErr := strings.CutPrefix(tt.want, "error: "); isErr {
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Fatalf("error %v, want one containing %q", err, msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.String() != tt.want {
				t.Fatalf("String() = %q, want %q", d, tt.want)
			}
			again, err := ParseDeficit(d.String())
			if err != nil || again != d {
				t.Fatalf("round trip: %v %v", again, err)
			}
		})
	}
	if _, err := ParseDeficit("bogus"); !errors.Is(err, ErrUnknownDeficit) {
		t.Errorf("unknown deficit does not wrap ErrUnknownDeficit: %v", err)
	}
}

// fixedSplit holds n copies of a fixed 3×32×32 test image with edges,
// gradients, a checkerboard and a bright square.
func fixedSplit(n int) *Split {
	const h, w = 32, 32
	s := &Split{N: n, C: 3, H: h, W: w, Classes: 10, Images: make([]uint8, n*3*h*w), Labels: make([]int, n)}
	for i := 0; i < n; i++ {
		img := s.Image(i)
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				r := uint8(x * 8)
				g := uint8(y * 8)
				b := uint8(60)
				if (x+y)%2 == 0 && x < 16 {
					b = 200
				}
				if x >= 20 && x < 28 && y >= 4 && y < 12 {
					r, g, b = 255, 255, 255
				}
				img[y*w+x], img[h*w+y*w+x], img[2*h*w+y*w+x] = r, g, b
			}
		}
		s.Labels[i] = (i * 7) % 10
	}
	return s
}

func chwToPNG(t *testing.T, img []uint8, c, h, w int) []byte {
	t.Helper()
	m := newNRGBA(w, h)
	chwToNRGBA(img, c, h, w, m)
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func pngToCHW(t *testing.T, data []byte) []uint8 {
	t.Helper()
	m, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	n := imaging.Clone(m)
	b := n.Bounds()
	out := make([]uint8, 3*b.Dx()*b.Dy())
	nrgbaToCHW(out, n, 3)
	return out
}

// TestDeficitGolden compares each image deficit on the fixed image with a
// golden PNG (testdata/deficit_*.png; go test -run DeficitGolden -update
// rewrites them). Pixels may differ by 1 where floating-point contraction
// differs between architectures.
func TestDeficitGolden(t *testing.T) {
	src := fixedSplit(2)
	stats := Stats{Mean: []float64{0.5, 0.4, 0.3}, Std: []float64{0.2, 0.25, 0.1}}
	tests := []struct{ file, spec string }{
		{"deficit_none.png", "none"},
		{"deficit_blur.png", "blur"},
		{"deficit_blur_linear.png", "blur:down=linear"},
		{"deficit_blur4_lanczos.png", "blur:size=4,down=lanczos,up=linear"},
		{"deficit_gauss.png", "gauss:sigma=1.5"},
		{"deficit_vflip.png", "vflip"},
		{"deficit_noise.png", "noise"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			d := MustParseDeficit(tt.spec)
			got := make([]uint8, src.SampleSize())
			if err := d.ApplyImage(got, src.Image(1), 3, 32, 32, 1, 42, stats); err != nil {
				t.Fatal(err)
			}
			want := pngToCHW(t, golden.Read(t, tt.file, chwToPNG(t, got, 3, 32, 32)))
			diff := 0
			for i := range got {
				switch d := int(got[i]) - int(want[i]); {
				case d > 1 || d < -1:
					t.Fatalf("pixel %d = %d, golden %d", i, got[i], want[i])
				case d != 0:
					diff++
				}
			}
			if diff > len(got)/100 {
				t.Fatalf("%d pixels differ by 1 from the golden image", diff)
			}
		})
	}
}

// TestLabelDeficitGolden pins the seeded label deficits.
func TestLabelDeficitGolden(t *testing.T) {
	labels := fixedSplit(20).Labels
	var b strings.Builder
	for _, spec := range []string{"labelperm", "labelshuffle"} {
		for _, seed := range []uint64{1, 2} {
			fmt.Fprintf(&b, "%s seed %d: %v\n", spec, seed, MustParseDeficit(spec).MapLabels(labels, 10, seed))
		}
	}
	got := b.String()
	if want := string(golden.Read(t, "deficit_labels.txt", []byte(got))); want != got {
		t.Fatalf("label deficits changed:\n%s\ngolden:\n%s", got, want)
	}
}

func TestDeficitProperties(t *testing.T) {
	src := fixedSplit(1)
	img := src.Image(0)
	buf := make([]uint8, len(img))
	buf2 := make([]uint8, len(img))
	st := Stats{Mean: []float64{0.5, 0.4, 0.6}, Std: []float64{0.1, 0.2, 0.15}} // little clipping

	t.Run("vflip twice is identity", func(t *testing.T) {
		d := MustParseDeficit("vflip")
		d.ApplyImage(buf, img, 3, 32, 32, 0, 0, st)
		if buf[0] != img[31*32] {
			t.Fatal("top row is not the old bottom row")
		}
		d.ApplyImage(buf2, buf, 3, 32, 32, 0, 0, st)
		if !bytes.Equal(buf2, img) {
			t.Fatal("vflip twice changed the image")
		}
	})
	t.Run("box downsample is the 4x4 block mean", func(t *testing.T) {
		d := MustParseDeficit("blur:size=8,down=box,up=nearest")
		d.ApplyImage(buf, img, 3, 32, 32, 0, 0, st)
		for c := 0; c < 3; c++ {
			for by := 0; by < 8; by++ {
				for bx := 0; bx < 8; bx++ {
					sum := 0
					for y := 0; y < 4; y++ {
						for x := 0; x < 4; x++ {
							sum += int(img[c*1024+(4*by+y)*32+4*bx+x])
						}
					}
					want := (sum + 8) / 16
					for y := 0; y < 4; y++ {
						for x := 0; x < 4; x++ {
							if got := int(buf[c*1024+(4*by+y)*32+4*bx+x]); got-want > 1 || want-got > 1 {
								t.Fatalf("channel %d block (%d,%d): %d, want mean %d", c, bx, by, got, want)
							}
						}
					}
				}
			}
		}
	})
	t.Run("blur keeps a constant image", func(t *testing.T) {
		flat := bytes.Repeat([]uint8{77}, len(img))
		for _, spec := range []string{"blur", "blur:size=3,down=lanczos,up=catmullrom", "gauss:sigma=2"} {
			MustParseDeficit(spec).ApplyImage(buf, flat, 3, 32, 32, 0, 0, st)
			if !bytes.Equal(buf, flat) {
				t.Fatalf("%s changed a constant image", spec)
			}
		}
	})
	t.Run("noise has the data set statistics", func(t *testing.T) {
		d := MustParseDeficit("noise")
		big := make([]uint8, 3*64*64)
		d.ApplyImage(big, make([]uint8, len(big)), 3, 64, 64, 5, 9, st)
		s := &Split{N: 1, C: 3, H: 64, W: 64, Classes: 1, Images: big, Labels: []int{0}}
		got := s.Stats()
		for c := 0; c < 3; c++ {
			if abs(got.Mean[c]-st.Mean[c]) > 0.02 || abs(got.Std[c]-st.Std[c]) > 0.02 {
				t.Fatalf("channel %d: mean %.3f std %.3f, want %.3f %.3f", c, got.Mean[c], got.Std[c], st.Mean[c], st.Std[c])
			}
		}
		other := make([]uint8, len(big))
		d.ApplyImage(other, big, 3, 64, 64, 6, 9, st)
		if bytes.Equal(other, big) {
			t.Fatal("two samples got the same noise")
		}
	})
	t.Run("labelperm permutes classes", func(t *testing.T) {
		perm := ClassPermutation(10, 3)
		if !slices.Equal(slices.Sorted(slices.Values(perm)), []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}) {
			t.Fatalf("not a permutation: %v", perm)
		}
		if slices.Equal(perm, ClassPermutation(10, 4)) {
			t.Fatal("seeds 3 and 4 give the same permutation")
		}
	})
	t.Run("labelshuffle keeps class counts", func(t *testing.T) {
		s := fixedSplit(50)
		got := MustParseDeficit("labelshuffle").MapLabels(s.Labels, 10, 1)
		a, b := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(s.Labels))
		if !slices.Equal(a, b) || slices.Equal(got, s.Labels) {
			t.Fatal("labelshuffle is not a shuffle of the labels")
		}
	})
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func TestApplyDeficitMemo(t *testing.T) {
	ds, err := Synthetic(SyntheticConfig{Train: 40, Test: 10, Classes: 4, Size: 16, Mix: 0.5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	src := ds.Train
	blur := MustParseDeficit("blur:size=4")
	var wg sync.WaitGroup
	results := make([]*Split, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], _ = ApplyDeficit(src, blur, uint64(i)) // blur ignores the seed
		}()
	}
	wg.Wait()
	for _, r := range results {
		if r != results[0] || r == nil {
			t.Fatal("blur computed more than once")
		}
	}
	b := results[0]
	if &b.Labels[0] != &src.Labels[0] {
		t.Error("image deficit copied the labels")
	}
	if bytes.Equal(b.Images, src.Images) {
		t.Error("blur left the pixels unchanged")
	}
	if st, bst := src.Stats(), b.BaseStats(); !slices.Equal(st.Mean, bst.Mean) {
		t.Error("derived split's BaseStats are not the clean ones")
	}
	lp, _ := ApplyDeficit(src, MustParseDeficit("labelperm"), 1)
	lp2, _ := ApplyDeficit(src, MustParseDeficit("labelperm"), 2)
	if lp == lp2 {
		t.Error("labelperm with two seeds memoised as one")
	}
	if &lp.Images[0] != &src.Images[0] {
		t.Error("label deficit copied the pixels")
	}
	for _, d := range []Deficit{{}, MustParseDeficit("none"), MustParseDeficit("sham")} {
		if got, _ := ApplyDeficit(src, d, 1); got != src {
			t.Errorf("%s did not return the split itself", d)
		}
	}
	if sham := MustParseDeficit("sham"); sham.Seeded() || sham.ChangesImages() || sham.ChangesLabels() {
		t.Error("sham changes data or depends on the seed")
	}
	if _, err := ApplyDeficit(src, Deficit{Kind: "warp"}, 1); !errors.Is(err, ErrUnknownDeficit) {
		t.Errorf("invalid deficit: %v", err)
	}
}

// At most MaxMemoImageDeficits image deficits stay memoised per split.
func TestApplyDeficitMemoBound(t *testing.T) {
	ds, err := Synthetic(SyntheticConfig{Train: 20, Test: 10, Classes: 4, Size: 8, Mix: 0.5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	src := ds.Train
	noise := MustParseDeficit("noise")
	first, _ := ApplyDeficit(src, noise, 0)
	for seed := uint64(1); seed <= 10; seed++ {
		ApplyDeficit(src, noise, seed)
		ApplyDeficit(src, MustParseDeficit("labelperm"), seed)
	}
	images, labels := 0, 0
	for _, e := range src.derived {
		if e.images {
			images++
		} else {
			labels++
		}
	}
	if images != MaxMemoImageDeficits || labels != 10 {
		t.Fatalf("%d image and %d label deficits memoised, want %d and 10", images, MaxMemoImageDeficits, labels)
	}
	again, _ := ApplyDeficit(src, noise, 0)
	if again == first || !bytes.Equal(again.Images, first.Images) {
		t.Fatal("an evicted deficit was not recomputed identically")
	}
	// The most recently used ones stay.
	recent, _ := ApplyDeficit(src, noise, 10)
	if again2, _ := ApplyDeficit(src, noise, 10); again2 != recent {
		t.Fatal("a recent deficit was evicted")
	}
}

func TestDeficitDiskCache(t *testing.T) {
	dir := t.TempDir()
	cache := DeficitCache{Dir: dir}
	mk := func() *Split {
		ds, _ := Synthetic(SyntheticConfig{Train: 30, Test: 10, Classes: 3, Size: 16, Mix: 0.5, Seed: 5})
		return ds.Train
	}
	d := MustParseDeficit("noise")
	first, err := cache.Apply(mk(), d, 7)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "noise-*.bin"))
	if len(files) != 1 {
		t.Fatalf("cache files %v, want one", files)
	}
	// A fresh split with the same content loads the file.
	second, err := cache.Apply(mk(), d, 7)
	if err != nil || !bytes.Equal(first.Images, second.Images) {
		t.Fatalf("cached result differs: %v", err)
	}
	// Another seed is another file.
	if _, err := cache.Apply(mk(), d, 8); err != nil {
		t.Fatal(err)
	}
	if files, _ := filepath.Glob(filepath.Join(dir, "noise-*.bin")); len(files) != 2 {
		t.Fatalf("cache files %v, want two", files)
	}
	// A damaged file is recomputed and replaced.
	if err := os.Truncate(files[0], 100); err != nil {
		t.Fatal(err)
	}
	for _, seed := range []uint64{7, 8} {
		got, err := cache.Apply(mk(), d, seed)
		want, _ := ApplyDeficit(mk(), d, seed)
		if err != nil || !bytes.Equal(got.Images, want.Images) {
			t.Fatalf("seed %d after damage: %v", seed, err)
		}
	}
	if fi, _ := os.Stat(files[0]); fi.Size() == 100 {
		t.Fatal("damaged cache file not replaced")
	}
}

// Deficit parameters are bounded by the images before anything trains
// (FitsImages), and ApplyImage refuses what would panic in imaging.Blur
// (gauss:sigma=1e20 allocated a kernel of 3e20 taps).
func TestDeficitFitsImages(t *testing.T) {
	tests := []struct {
		spec string
		h, w int
		want string // error substring; "" means it fits
	}{
		{"blur:size=32", 32, 32, ""},
		{"blur:size=33", 32, 32, "blur size 33 is larger than the 32×32 images"},
		{"gauss:sigma=32", 32, 32, ""},
		{"gauss:sigma=32.5", 32, 32, "gauss sigma 32.5 is larger than the 32×32 images: want at most 32"},
		{"gauss:sigma=1e20", 32, 32, "gauss sigma 1e+20 is larger"},
		{"gauss:sigma=40", 16, 40, ""},
		{"gauss:sigma=41", 16, 40, "want at most 40"},
		{"vflip", 32, 32, ""},
		{"noise", 1, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			d := MustParseDeficit(tc.spec)
			err := d.FitsImages(tc.h, tc.w)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
			} else if err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig with %q", err, tc.want)
			}
			if d.Kind != "gauss" {
				return
			}
			src := make([]uint8, 3*tc.h*tc.w)
			err = d.ApplyImage(make([]uint8, len(src)), src, 3, tc.h, tc.w, 0, 0, Stats{})
			if (err != nil) != (tc.want != "") {
				t.Errorf("ApplyImage: %v", err)
			}
		})
	}
	// A sigma below the minimum, built without ParseDeficit.
	src := make([]uint8, 3*32*32)
	if err := (Deficit{Kind: "gauss", Sigma: 1e-320}).ApplyImage(make([]uint8, len(src)), src, 3, 32, 32, 0, 0, Stats{}); err == nil {
		t.Error("ApplyImage of gauss sigma 1e-320: no error")
	}
}

// MinGaussSigma is where imaging.Blur starts to change 8-bit pixels: a 0/255
// checkerboard, the image that moves most, is unchanged just below it and
// changed at it.
func TestMinGaussSigma(t *testing.T) {
	img := newNRGBA(8, 8)
	for y := 0; y < 8; y++ {
		for x := 0; x < 8; x++ {
			v := uint8(255 * ((x + y) % 2))
			img.SetNRGBA(x, y, color.NRGBA{v, v, v, 255})
		}
	}
	if got := imaging.Blur(img, 0.2686); !bytes.Equal(got.Pix, img.Pix) {
		t.Error("sigma 0.2686 changed the checkerboard")
	}
	if got := imaging.Blur(img, MinGaussSigma); bytes.Equal(got.Pix, img.Pix) {
		t.Errorf("sigma %g left the checkerboard unchanged", MinGaussSigma)
	}
}
