package preprocessing

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
)

// Split is one part (train or test) of a data set: N images of C×H×W uint8
// pixels, stored sample after sample in one contiguous slice, each sample
// channel-major (CHW, planes row-major from the top-left pixel, as in the
// CIFAR binary layout), and one label per image in [0, Classes).
//
// A Split is read-only once built: splits derived from it (ApplyDeficit,
// Subset) may share its Images or Labels slices. Use pointers; the zero
// value is not useful.
type Split struct {
	Images     []uint8 // N*C*H*W bytes, sample i at [i*C*H*W, (i+1)*C*H*W)
	Labels     []int   // N labels in [0, Classes)
	N, C, H, W int
	Classes    int

	base *Split // clean split this one derives from (deficits); nil: itself

	mu       sync.Mutex
	stats    *Stats
	hash     *[32]byte
	derived  map[string]*derivedEntry
	useClock uint64
}

// Stats holds per-channel statistics of pixel values scaled to [0, 1]
// (pixel/255), as torchvision's Normalize expects.
type Stats struct {
	Mean, Std []float64
}

// NewSplit checks the shapes and labels and returns a split holding images
// and labels (not copied).
func NewSplit(images []uint8, labels []int, n, c, h, w, classes int) (*Split, error) {
	s := &Split{Images: images, Labels: labels, N: n, C: c, H: h, W: w, Classes: classes}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// Validate checks that the slices match the shape and that every label is in
// range.
func (s *Split) Validate() error {
	if s.N < 0 || s.C <= 0 || s.H <= 0 || s.W <= 0 {
		return fmt.Errorf("%w: split shape %d×%d×%d×%d", ErrFormat, s.N, s.C, s.H, s.W)
	}
	if s.Classes <= 0 {
		return fmt.Errorf("%w: split has %d classes", ErrFormat, s.Classes)
	}
	if len(s.Images) != s.N*s.SampleSize() {
		return fmt.Errorf("%w: split has %d image bytes, want N*C*H*W = %d", ErrFormat, len(s.Images), s.N*s.SampleSize())
	}
	if len(s.Labels) != s.N {
		return fmt.Errorf("%w: split has %d labels for %d images", ErrFormat, len(s.Labels), s.N)
	}
	for i, l := range s.Labels {
		if l < 0 || l >= s.Classes {
			return fmt.Errorf("%w: sample %d: label %d out of range [0, %d)", ErrFormat, i, l, s.Classes)
		}
	}
	return nil
}

// SampleSize returns C*H*W, the bytes in one image.
func (s *Split) SampleSize() int { return s.C * s.H * s.W }

// Image returns sample i's pixels (CHW), aliasing the split's storage.
func (s *Split) Image(i int) []uint8 {
	n := s.SampleSize()
	return s.Images[i*n : (i+1)*n : (i+1)*n]
}

// Bytes returns the memory held by the split's images and labels.
func (s *Split) Bytes() int64 {
	return int64(len(s.Images)) + int64(len(s.Labels))*8
}

// ClassCounts returns the number of samples of each class.
func (s *Split) ClassCounts() []int {
	counts := make([]int, s.Classes)
	for _, l := range s.Labels {
		if l >= 0 && l < s.Classes {
			counts[l]++
		}
	}
	return counts
}

// Stats returns the per-channel mean and standard deviation of the split's
// pixels in [0, 1] units, computed once and memoised.
func (s *Split) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stats == nil {
		st := computeStats(s)
		s.stats = &st
	}
	return Stats{Mean: slices.Clone(s.stats.Mean), Std: slices.Clone(s.stats.Std)}
}

// BaseStats returns the statistics of the clean split this one derives from
// through deficits (ApplyDeficit), or of the split itself. Normalising a
// deficit's training data with the clean statistics keeps the input scale
// the same when the deficit is removed.
func (s *Split) BaseStats() Stats {
	return s.root().Stats()
}

func (s *Split) root() *Split {
	if s.base != nil {
		return s.base
	}
	return s
}

func computeStats(s *Split) Stats {
	hw := s.H * s.W
	sum := make([]uint64, s.C)
	sq := make([]uint64, s.C)
	n := s.SampleSize()
	for i := 0; i < s.N; i++ {
		img := s.Images[i*n : (i+1)*n]
		for c := 0; c < s.C; c++ {
			var a, b uint64
			for _, v := range img[c*hw : (c+1)*hw] {
				a += uint64(v)
				b += uint64(v) * uint64(v)
			}
			sum[c] += a
			sq[c] += b
		}
	}
	st := Stats{Mean: make([]float64, s.C), Std: make([]float64, s.C)}
	count := float64(s.N) * float64(hw)
	for c := 0; c < s.C; c++ {
		if count == 0 {
			st.Std[c] = 1
			continue
		}
		m := float64(sum[c]) / count
		v := float64(sq[c])/count - m*m
		st.Mean[c] = m / 255
		st.Std[c] = math.Sqrt(math.Max(v, 0)) / 255
	}
	return st
}

// ContentHash returns a SHA-256 of the split's shape, labels and pixels,
// computed once and memoised. It keys the on-disk deficit cache.
func (s *Split) ContentHash() [32]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hash == nil {
		h := sha256.New()
		var hdr [6 * 8]byte
		for i, v := range []int{s.N, s.C, s.H, s.W, s.Classes, 1} {
			binary.LittleEndian.PutUint64(hdr[i*8:], uint64(v))
		}
		h.Write(hdr[:])
		lb := make([]byte, 4*len(s.Labels))
		for i, l := range s.Labels {
			binary.LittleEndian.PutUint32(lb[i*4:], uint32(l))
		}
		h.Write(lb)
		h.Write(s.Images)
		var sum [32]byte
		h.Sum(sum[:0])
		s.hash = &sum
	}
	return *s.hash
}

// Subset returns a class-balanced subset of n samples: n/Classes of each
// class (the first n%Classes classes get one more), chosen at random for the
// seed, kept in their original order. The subset is a new clean split (its
// statistics are its own). n equal to N returns s itself.
func (s *Split) Subset(n int, seed uint64) (*Split, error) {
	if n <= 0 || n > s.N {
		return nil, fmt.Errorf("subset of %d samples: the split has %d", n, s.N)
	}
	if n == s.N {
		return s, nil
	}
	byClass := make([][]int, s.Classes)
	for i, l := range s.Labels {
		byClass[l] = append(byClass[l], i)
	}
	var pick []int
	for k := 0; k < s.Classes; k++ {
		want := n / s.Classes
		if k < n%s.Classes {
			want++
		}
		have := byClass[k]
		if len(have) < want {
			return nil, fmt.Errorf("subset of %d samples needs %d of class %d, the split has %d; choose a smaller subset", n, want, k, len(have))
		}
		perm := permutation(newPCG(seed, streamSubset, 0, k), len(have))
		for _, j := range perm[:want] {
			pick = append(pick, have[j])
		}
	}
	slices.Sort(pick)
	return s.gather(pick), nil
}

// gather returns a new split of the given samples, in that order.
func (s *Split) gather(idx []int) *Split {
	sz := s.SampleSize()
	out := &Split{N: len(idx), C: s.C, H: s.H, W: s.W, Classes: s.Classes,
		Images: make([]uint8, len(idx)*sz), Labels: make([]int, len(idx))}
	for j, i := range idx {
		copy(out.Images[j*sz:(j+1)*sz], s.Images[i*sz:(i+1)*sz])
		out.Labels[j] = s.Labels[i]
	}
	return out
}
