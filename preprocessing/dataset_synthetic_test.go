package preprocessing

import (
	"bytes"
	"math"
	"math/cmplx"
	"strings"
	"testing"
)

func TestSyntheticSpec(t *testing.T) {
	tests := []struct {
		spec    string
		wantErr string
		train   int
		test    int
		classes int
		mix     float64
	}{
		{spec: "synthetic:train=200,test=50,mix=0.7", train: 200, test: 50, classes: 10, mix: 0.7},
		{spec: "synthetic:train=30,test=20,classes=3,size=16,seed=9", train: 30, test: 20, classes: 3, mix: 0.5},
		{spec: "synthetic:train=30,test=20,bogus=1", wantErr: `unknown parameter "bogus"`},
		{spec: "synthetic:train=30,test=20,mix=1.5", wantErr: "mix=1.5"},
		{spec: "synthetic:train=30,test=20,size=30", wantErr: "multiple of 4"},
		{spec: "synthetic:train=x", wantErr: "not an integer"},
		{spec: "synthetic:train", wantErr: "key=value"},
	}
	for _, tt := range tests {
		t.Run(tt.spec, func(t *testing.T) {
			ds, err := Open(tt.spec, OpenOptions{})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ds.Train.N != tt.train || ds.Test.N != tt.test || ds.Train.Classes != tt.classes || len(ds.Classes) != tt.classes {
				t.Fatalf("got %d/%d images, %d classes", ds.Train.N, ds.Test.N, ds.Train.Classes)
			}
			if err := ds.Train.Validate(); err != nil {
				t.Fatal(err)
			}
			// The canonical spec reopens the same data.
			again, err := Open(ds.Spec, OpenOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again.Train.Images, ds.Train.Images) {
				t.Fatalf("reopening %s gives other pixels", ds.Spec)
			}
		})
	}
	// Options give the base config; the spec overrides it.
	ds, err := Open("synthetic:test=10", OpenOptions{Synthetic: &SyntheticConfig{Train: 20, Test: 99, Classes: 4, Size: 8, Mix: 1, Seed: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if ds.Train.N != 20 || ds.Test.N != 10 || ds.Train.H != 8 || ds.Train.Classes != 4 {
		t.Fatalf("options not applied: %s", ds.Spec)
	}
}

func TestSyntheticDeterministic(t *testing.T) {
	cfg := SyntheticConfig{Train: 64, Test: 16, Classes: 10, Size: 32, Mix: 0.5, Seed: 7}
	a, _ := Synthetic(cfg)
	b, _ := Synthetic(cfg)
	if !bytes.Equal(a.Train.Images, b.Train.Images) || !bytes.Equal(a.Test.Images, b.Test.Images) {
		t.Fatal("same seed, different data")
	}
	cfg.Seed = 8
	c, _ := Synthetic(cfg)
	if bytes.Equal(a.Train.Images, c.Train.Images) {
		t.Fatal("different seed, same data")
	}
	for k, n := range a.Train.ClassCounts() {
		if n < 6 || n > 7 {
			t.Errorf("class %d has %d of 64 samples", k, n)
		}
	}
}

// TestSyntheticBlurDeficit checks that the mix knob decides how much class
// information the 8×8 blur removes (clean images stay easy). A nearest-class-mean classifier on
// shift- and sign-invariant features (log magnitude of each channel's 2D
// DFT) stands in for a network.
func TestSyntheticBlurDeficit(t *testing.T) {
	blur := MustParseDeficit("blur")
	tests := []struct {
		mix      float64
		blurred  bool
		min, max float64 // accuracy bounds (chance is 0.1)
	}{
		{mix: 1, blurred: false, min: 0.85, max: 1},
		{mix: 1, blurred: true, min: 0, max: 0.25},
		{mix: 0, blurred: true, min: 0.9, max: 1},
		{mix: 0.5, blurred: true, min: 0.3, max: 0.7}, // ideal: 1 - 0.5·0.9 = 0.55
	}
	for _, tt := range tests {
		ds, err := Synthetic(SyntheticConfig{Train: 300, Test: 200, Classes: 10, Size: 32, Mix: tt.mix, Seed: 1})
		if err != nil {
			t.Fatal(err)
		}
		train, test := ds.Train, ds.Test
		if tt.blurred {
			if train, err = ApplyDeficit(train, blur, 0); err != nil {
				t.Fatal(err)
			}
			if test, err = ApplyDeficit(test, blur, 0); err != nil {
				t.Fatal(err)
			}
		}
		acc := centroidAccuracy(train, test)
		t.Logf("mix %.1f blurred %v: nearest-centroid accuracy %.3f", tt.mix, tt.blurred, acc)
		if acc < tt.min || acc > tt.max {
			t.Errorf("mix %.1f blurred %v: accuracy %.3f outside [%.2f, %.2f]", tt.mix, tt.blurred, acc, tt.min, tt.max)
		}
	}
}

func centroidAccuracy(train, test *Split) float64 {
	feat := func(s *Split, i int) []float64 { return dftFeatures(s.Image(i), s.C, s.H, s.W) }
	var cent [][]float64
	counts := make([]int, train.Classes)
	for i := 0; i < train.N; i++ {
		f := feat(train, i)
		if cent == nil {
			cent = make([][]float64, train.Classes)
			for k := range cent {
				cent[k] = make([]float64, len(f))
			}
		}
		l := train.Labels[i]
		counts[l]++
		for j, v := range f {
			cent[l][j] += v
		}
	}
	for k := range cent {
		for j := range cent[k] {
			cent[k][j] /= float64(counts[k])
		}
	}
	correct := 0
	for i := 0; i < test.N; i++ {
		f := feat(test, i)
		best, bestD := -1, math.Inf(1)
		for k := range cent {
			d := 0.0
			for j, v := range f {
				d += (v - cent[k][j]) * (v - cent[k][j])
			}
			if d < bestD {
				best, bestD = k, d
			}
		}
		if best == test.Labels[i] {
			correct++
		}
	}
	return float64(correct) / float64(test.N)
}

// dftFeatures returns log(1+|F|) of each channel's 2D DFT (square images).
func dftFeatures(img []uint8, c, h, w int) []float64 {
	tw := make([]complex128, w*w)
	for u := 0; u < w; u++ {
		for x := 0; x < w; x++ {
			tw[u*w+x] = cmplx.Exp(complex(0, -2*math.Pi*float64(u*x%w)/float64(w)))
		}
	}
	out := make([]float64, 0, c*h*w)
	rows := make([]complex128, h*w)
	for k := 0; k < c; k++ {
		plane := img[k*h*w : (k+1)*h*w]
		for y := 0; y < h; y++ { // DFT along x
			for u := 0; u < w; u++ {
				var s complex128
				t := tw[u*w : (u+1)*w]
				for x, p := range plane[y*w : (y+1)*w] {
					s += complex(float64(p), 0) * t[x]
				}
				rows[y*w+u] = s
			}
		}
		for u := 0; u < w; u++ { // then along y
			for v := 0; v < h; v++ {
				var s complex128
				t := tw[v*w : (v+1)*w]
				for y := 0; y < h; y++ {
					s += rows[y*w+u] * t[y]
				}
				out = append(out, math.Log1p(cmplx.Abs(s)))
			}
		}
	}
	return out
}
