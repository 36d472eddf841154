package preprocessing

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"slices"
	"testing"
	"time"
)

func smallSplit(t testing.TB, n int) *Split {
	t.Helper()
	ds, err := Synthetic(SyntheticConfig{Train: n, Test: 10, Classes: 10, Size: 32, Mix: 0.5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	return ds.Train
}

// epochHash consumes a loader and hashes every batch's values.
func epochHash(t testing.TB, l *Loader) ([32]byte, int) {
	t.Helper()
	h := sha256.New()
	n := 0
	var buf [8]byte
	for b := range l.All() {
		for _, v := range b.Images {
			binary.LittleEndian.PutUint32(buf[:4], math.Float32bits(v))
			h.Write(buf[:4])
		}
		for j, v := range b.Labels {
			binary.LittleEndian.PutUint64(buf[:], uint64(v))
			h.Write(buf[:])
			binary.LittleEndian.PutUint64(buf[:], uint64(b.Indices[j]))
			h.Write(buf[:])
		}
		n += b.N
	}
	var out [32]byte
	h.Sum(out[:0])
	return out, n
}

func TestLoaderDeterministicAcrossWorkers(t *testing.T) {
	s := smallSplit(t, 300)
	for _, epoch := range []int{0, 3} {
		var ref [32]byte
		for i, cfg := range []struct{ workers, prefetch int }{{1, 1}, {2, 2}, {8, 3}, {8, 16}} {
			c := DefaultLoaderConfig()
			c.BatchSize, c.Seed, c.Epoch, c.Workers, c.Prefetch = 32, 11, epoch, cfg.workers, cfg.prefetch
			l, err := NewLoader(s, c)
			if err != nil {
				t.Fatal(err)
			}
			h, n := epochHash(t, l)
			if n != 288 {
				t.Fatalf("drop-last epoch has %d images, want 288", n)
			}
			if i == 0 {
				ref = h
			} else if h != ref {
				t.Fatalf("epoch %d: workers %d prefetch %d give other batches than 1 worker", epoch, cfg.workers, cfg.prefetch)
			}
		}
	}
}

func TestLoaderOrder(t *testing.T) {
	s := smallSplit(t, 100)
	cfg := LoaderConfig{BatchSize: 32, Shuffle: true, Seed: 5, Workers: 2}
	indices := func(epoch int, dropLast bool) ([]int, []int) {
		c := cfg
		c.Epoch, c.DropLast = epoch, dropLast
		l, err := NewLoader(s, c)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		var idx, sizes []int
		for b := range l.All() {
			idx = append(idx, b.Indices...)
			sizes = append(sizes, b.N)
			for j, v := range b.Labels {
				if int(v) != s.Labels[b.Indices[j]] {
					t.Fatalf("batch %d sample %d: label %d, want %d", b.Index, j, v, s.Labels[b.Indices[j]])
				}
			}
		}
		return idx, sizes
	}
	e0, sizes := indices(0, false)
	if !slices.Equal(sizes, []int{32, 32, 32, 4}) {
		t.Fatalf("batch sizes %v, want 32 32 32 4", sizes)
	}
	if !slices.Equal(slices.Sorted(slices.Values(e0)), EpochOrder(100, false, 0, 0)) {
		t.Fatal("an epoch does not visit every sample once")
	}
	if slices.Equal(e0, EpochOrder(100, false, 0, 0)) {
		t.Fatal("shuffled order is the identity")
	}
	again, _ := indices(0, false)
	e1, _ := indices(1, false)
	if !slices.Equal(e0, again) || slices.Equal(e0, e1) {
		t.Fatal("order is not a function of (seed, epoch)")
	}
	dl, sizes := indices(0, true)
	if !slices.Equal(sizes, []int{32, 32, 32}) || !slices.Equal(dl, e0[:96]) {
		t.Fatalf("drop-last sizes %v", sizes)
	}
}

// reference computes one augmented sample the slow, obvious way: pad the
// image, crop, flip, scale and normalise.
func reference(img []uint8, c, h, w, pad int, padRaw []float64, dx, dy int, flip bool, mean, std []float64) []float32 {
	ph, pw := h+2*pad, w+2*pad
	out := make([]float32, c*h*w)
	for k := 0; k < c; k++ {
		padded := make([]float64, ph*pw)
		for i := range padded {
			padded[i] = padRaw[k]
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				padded[(y+pad)*pw+x+pad] = float64(img[k*h*w+y*w+x]) / 255
			}
		}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				xx := x
				if flip {
					xx = w - 1 - x
				}
				v := padded[(y+dy+pad)*pw+xx+dx+pad]
				out[k*h*w+y*w+x] = float32((v - mean[k]) / std[k])
			}
		}
	}
	return out
}

func TestLoaderAugmentMatchesReference(t *testing.T) {
	s := smallSplit(t, 64)
	st := s.Stats()
	for _, mode := range []PadMode{PadZero, PadMean} {
		cfg := DefaultLoaderConfig()
		cfg.BatchSize, cfg.Seed, cfg.Epoch = 16, 9, 2
		cfg.Augment.PadMode = mode
		l, err := NewLoader(s, cfg)
		if err != nil {
			t.Fatal(err)
		}
		padRaw := []float64{0, 0, 0}
		if mode == PadMean {
			padRaw = st.Mean
		}
		flips, shifts := 0, 0
		var p = newPCG(0, 0, 0, 0)
		for b := range l.All() {
			for j, idx := range b.Indices {
				dx, dy, flip := l.t.draw(p, cfg.Seed, cfg.Epoch, idx)
				if flip {
					flips++
				}
				if dx != 0 || dy != 0 {
					shifts++
				}
				if dx < -4 || dx > 4 || dy < -4 || dy > 4 {
					t.Fatalf("offset (%d,%d) outside the padding", dx, dy)
				}
				want := reference(s.Image(idx), 3, 32, 32, 4, padRaw, dx, dy, flip, st.Mean, st.Std)
				got := b.Images[j*3072 : (j+1)*3072]
				for i := range want {
					if d := math.Abs(float64(got[i] - want[i])); d > 1e-5 {
						t.Fatalf("pad %v sample %d value %d: %g, reference %g (dx %d dy %d flip %v)", mode, idx, i, got[i], want[i], dx, dy, flip)
					}
				}
			}
		}
		if flips < 16 || flips > 48 || shifts < 48 {
			t.Fatalf("%d flips and %d shifts in 64 samples", flips, shifts)
		}
	}
}

func TestEvalLoader(t *testing.T) {
	s := smallSplit(t, 50)
	st := s.Stats()
	cfg := DefaultLoaderConfig()
	cfg.BatchSize = 16
	if _, err := NewEvalLoader(s, cfg); !errors.Is(err, ErrConfig) {
		t.Fatalf("eval loader without statistics: %v", err)
	}
	l, err := NewEvalLoader(s, cfg.WithStats(st))
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int
	next := 0
	for b := range l.All() {
		sizes = append(sizes, b.N)
		for j, idx := range b.Indices {
			if idx != next {
				t.Fatalf("eval order: sample %d at position %d", idx, next)
			}
			next++
			want := reference(s.Image(idx), 3, 32, 32, 0, []float64{0, 0, 0}, 0, 0, false, st.Mean, st.Std)
			for i, v := range want {
				if d := math.Abs(float64(b.Images[j*3072+i] - v)); d > 1e-5 {
					t.Fatalf("eval sample %d value %d: %g, want %g", idx, i, b.Images[j*3072+i], v)
				}
			}
		}
	}
	if !slices.Equal(sizes, []int{16, 16, 16, 2}) {
		t.Fatalf("eval batch sizes %v, want the last partial batch kept", sizes)
	}
}

func TestLoaderConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mod  func(c *LoaderConfig)
	}{
		{"batch size", func(c *LoaderConfig) { c.BatchSize = 0 }},
		{"epoch", func(c *LoaderConfig) { c.Epoch = -1 }},
		{"pad", func(c *LoaderConfig) { c.Augment.Pad = -1 }},
		{"std zero", func(c *LoaderConfig) { c.Augment.Mean, c.Augment.Std = []float64{0, 0, 0}, []float64{1, 0, 1} }},
		{"mean without std", func(c *LoaderConfig) { c.Augment.Mean = []float64{0, 0, 0} }},
		{"pad mode", func(c *LoaderConfig) { c.Augment.PadMode = 7 }},
	}
	s := smallSplit(t, 10)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultLoaderConfig()
			tt.mod(&c)
			if err := c.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate: %v", err)
			}
			if _, err := NewLoader(s, c); err == nil {
				t.Fatal("NewLoader accepted an invalid config")
			}
		})
	}
	c := DefaultLoaderConfig()
	c.Augment.Mean, c.Augment.Std = []float64{0.5}, []float64{0.5}
	if _, err := NewLoader(s, c); !errors.Is(err, ErrConfig) {
		t.Fatalf("one-channel statistics for a 3-channel split: %v", err)
	}
}

// Batches are reused: a batch is valid until the next Next, Clone keeps it.
func TestLoaderBatchOwnership(t *testing.T) {
	s := smallSplit(t, 64)
	cfg := DefaultLoaderConfig()
	cfg.BatchSize, cfg.Prefetch, cfg.Workers = 8, 1, 1
	l, err := NewLoader(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	seen := map[*Batch]bool{}
	var kept *Batch
	var keptIdx []int
	for b := range l.All() {
		seen[b] = true
		if b.Index == 0 {
			kept, keptIdx = b.Clone(), slices.Clone(b.Indices)
		}
	}
	if len(seen) > 2 {
		t.Fatalf("%d buffers for prefetch 1, want at most 2", len(seen))
	}
	if !slices.Equal(kept.Indices, keptIdx) || kept.N != 8 {
		t.Fatal("clone changed")
	}
}

func TestLoaderNoGoroutineLeak(t *testing.T) {
	s := smallSplit(t, 200)
	before := runtime.NumGoroutine()
	for i := 0; i < 20; i++ {
		cfg := DefaultLoaderConfig()
		cfg.BatchSize, cfg.Workers, cfg.Prefetch, cfg.Epoch = 16, 1+i%8, 1+i%3, i
		l, err := NewLoader(s, cfg)
		if err != nil {
			t.Fatal(err)
		}
		switch i % 4 {
		case 0: // finish the epoch without Close
			for {
				if _, ok := l.Next(); !ok {
					break
				}
			}
		case 1: // stop early and Close
			l.Next()
			l.Close()
		case 2: // Close without reading, twice
			l.Close()
			l.Close()
			if _, ok := l.Next(); ok {
				t.Fatal("Next after Close returned a batch")
			}
		case 3: // break out of All
			for b := range l.All() {
				if b.Index == 2 {
					break
				}
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Close from another goroutine unblocks a consumer waiting in Next.
func TestLoaderCloseWhileWaiting(t *testing.T) {
	s := smallSplit(t, 64)
	cfg := DefaultLoaderConfig()
	cfg.BatchSize = 8
	l, err := NewLoader(s, cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, ok := l.Next(); !ok {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	time.Sleep(5 * time.Millisecond)
	l.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("consumer still blocked after Close")
	}
}
