package preprocessing

import (
	"fmt"
	"math"
	"math/rand/v2"
)

// PadMode selects the value of the padding around an image before a random
// crop.
type PadMode int

const (
	// PadZero pads with black (pixel value 0), as torchvision's
	// RandomCrop(32, padding=4) does before normalisation.
	PadZero PadMode = iota
	// PadMean pads with the per-channel mean (0 after normalisation).
	PadMean
)

func (m PadMode) String() string {
	switch m {
	case PadZero:
		return "zero"
	case PadMean:
		return "mean"
	}
	return fmt.Sprintf("PadMode(%d)", int(m))
}

// ParsePadMode parses "zero" or "mean".
func ParsePadMode(s string) (PadMode, error) {
	switch s {
	case "zero", "":
		return PadZero, nil
	case "mean":
		return PadMean, nil
	}
	return 0, configErr("pad mode %q: want zero or mean", s)
}

// AugmentConfig selects the per-sample transforms the loader applies while
// converting uint8 CHW images to float32, in this order: random crop of
// H×W from the image padded by Pad on each side, random horizontal flip,
// scaling to [0, 1] and per-channel normalisation (x-Mean)/Std. The zero
// value does no augmentation and no normalisation (pixels/255).
type AugmentConfig struct {
	Crop      bool      // random crop from the padded image
	Pad       int       // padding on each side for Crop; 4 for CIFAR
	PadMode   PadMode   // padding value
	HFlip     bool      // random horizontal flip with probability 1/2
	Normalize bool      // per-channel normalisation
	Mean, Std []float64 // per channel, in [0, 1] units; nil: the split's BaseStats
}

// DefaultAugmentConfig returns the CIFAR recipe: crop 32 from the image
// padded by 4 with zeros, random horizontal flip, normalisation with the
// training set's statistics.
func DefaultAugmentConfig() AugmentConfig {
	return AugmentConfig{Crop: true, Pad: 4, PadMode: PadZero, HFlip: true, Normalize: true}
}

// Validate checks the fields' ranges (the channel count is checked against
// the split when a loader is made).
func (a AugmentConfig) Validate() error {
	if a.Pad < 0 {
		return configErr("augment: pad %d: must be >= 0", a.Pad)
	}
	if a.PadMode != PadZero && a.PadMode != PadMean {
		return configErr("augment: unknown pad mode %d", int(a.PadMode))
	}
	if (a.Mean == nil) != (a.Std == nil) || len(a.Mean) != len(a.Std) {
		return configErr("augment: mean has %d channels, std %d: give both or neither", len(a.Mean), len(a.Std))
	}
	for c, s := range a.Std {
		if !(s > 0) || math.IsInf(s, 0) {
			return configErr("augment: std[%d] = %g: must be positive", c, s)
		}
		if math.IsNaN(a.Mean[c]) || math.IsInf(a.Mean[c], 0) {
			return configErr("augment: mean[%d] = %g", c, a.Mean[c])
		}
	}
	return nil
}

// transform converts one uint8 CHW image to float32 with augmentation.
type transform struct {
	c, h, w int
	crop    bool
	pad     int
	flip    bool
	lut     [][256]float32 // per channel: pixel -> output value
	padVal  []float32      // per channel: output value of padding
}

func newTransform(s *Split, a AugmentConfig) (*transform, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	t := &transform{c: s.C, h: s.H, w: s.W, crop: a.Crop && a.Pad > 0, pad: a.Pad, flip: a.HFlip,
		lut: make([][256]float32, s.C), padVal: make([]float32, s.C)}
	if !t.crop {
		t.pad = 0
	}
	mean, std := a.Mean, a.Std
	if mean == nil && (a.Normalize || (t.crop && a.PadMode == PadMean)) {
		st := s.BaseStats()
		mean, std = st.Mean, st.Std
	}
	if mean != nil && len(mean) != s.C {
		return nil, configErr("augment: mean/std for %d channels, the split has %d", len(mean), s.C)
	}
	for c := 0; c < s.C; c++ {
		m, sd := 0.0, 1.0
		if a.Normalize {
			m, sd = mean[c], std[c]
		}
		for v := 0; v < 256; v++ {
			t.lut[c][v] = float32((float64(v)/255 - m) / sd)
		}
		pv := 0.0
		if a.PadMode == PadMean {
			pv = mean[c]
		}
		t.padVal[c] = float32((pv - m) / sd)
	}
	return t, nil
}

// draw returns the crop offsets (in [-pad, pad]) and the flip for a sample:
// a pure function of (seed, epoch, index).
func (t *transform) draw(p *rand.PCG, seed uint64, epoch, index int) (dx, dy int, flip bool) {
	if !t.crop && !t.flip {
		return 0, 0, false
	}
	seedPCG(p, seed, streamAugment, epoch, index)
	if t.crop {
		n := uint64(2*t.pad + 1)
		dx = int(bounded(p, n)) - t.pad
		dy = int(bounded(p, n)) - t.pad
	}
	if t.flip {
		flip = p.Uint64()&1 == 1
	}
	return dx, dy, flip
}

// apply writes out(y, x) = padded(y+dy, x'+dx) with x' = W-1-x when
// flipped, mapped through the channel's lookup table.
func (t *transform) apply(dst []float32, src []uint8, dx, dy int, flip bool) {
	h, w := t.h, t.w
	hw := h * w
	for c := 0; c < t.c; c++ {
		lut := &t.lut[c]
		pv := t.padVal[c]
		plane := src[c*hw : (c+1)*hw]
		out := dst[c*hw : (c+1)*hw]
		for y := 0; y < h; y++ {
			row := out[y*w : (y+1)*w]
			sy := y + dy
			if sy < 0 || sy >= h {
				for x := range row {
					row[x] = pv
				}
				continue
			}
			srow := plane[sy*w : (sy+1)*w]
			if !flip {
				// sx = x+dx valid for x in [max(0,-dx), min(w, w-dx))
				x0, x1 := max(0, -dx), min(w, w-dx)
				for x := 0; x < x0; x++ {
					row[x] = pv
				}
				for x := x0; x < x1; x++ {
					row[x] = lut[srow[x+dx]]
				}
				for x := x1; x < w; x++ {
					row[x] = pv
				}
			} else {
				// sx = w-1-x+dx valid for x in [max(0,dx), min(w, w+dx))
				x0, x1 := max(0, dx), min(w, w+dx)
				for x := 0; x < x0; x++ {
					row[x] = pv
				}
				for x := x0; x < x1; x++ {
					row[x] = lut[srow[w-1-x+dx]]
				}
				for x := x1; x < w; x++ {
					row[x] = pv
				}
			}
		}
	}
}
