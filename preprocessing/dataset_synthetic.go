package preprocessing

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"strconv"
)

// SyntheticConfig configures the generated data set. Each image carries two
// cues to its class k, added to a random background with pixel noise:
//
//   - a fine cue: a full-image texture of period 2 or 4 pixels (stripes,
//     checkerboards, diagonals; random sign or phase per image) in one of
//     three colour directions, chosen by k. Every such texture averages to
//     zero over any 4×4 block, so an 8×8 box downsample (the default blur
//     deficit on 32×32 images) removes it entirely;
//   - a coarse cue: a wave of one or two cycles across the image (12
//     frequencies × 3 colour directions × 3 phases, phase jittered per
//     image), which survives blurring.
//
// Mix is the share of images whose coarse cue belongs to a class drawn at
// random instead of their own, so that only the fine cue tells their class.
// On clean images both cues are visible and the classes are easy; once blur
// removes the fine cue, the best accuracy left is about
// 1 - Mix·(1 - 1/Classes): Mix = 0 makes blur harmless, Mix = 1 makes it
// destroy the class information. Generation is deterministic for the seed;
// sample i of a split has label i % Classes.
type SyntheticConfig struct {
	Train   int     // training images; must be > 0
	Test    int     // test images; must be > 0
	Classes int     // 2 to 100
	Size    int     // image side in pixels, a multiple of 4, at least 8
	Mix     float64 // in [0, 1]: share of images whose class only the fine cue tells
	Seed    uint64
}

// DefaultSyntheticConfig returns 10,000 training and 2,000 test images of
// 3×32×32 in 10 classes, Mix 0.5, seed 1.
func DefaultSyntheticConfig() SyntheticConfig {
	return SyntheticConfig{Train: 10000, Test: 2000, Classes: 10, Size: 32, Mix: 0.5, Seed: 1}
}

// Validate checks the ranges documented on the fields.
func (c SyntheticConfig) Validate() error {
	switch {
	case c.Train <= 0 || c.Test <= 0:
		return configErr("synthetic: train=%d test=%d: both must be positive", c.Train, c.Test)
	case c.Classes < 2 || c.Classes > 100:
		return configErr("synthetic: classes=%d: must be in [2, 100]", c.Classes)
	case c.Size < 8 || c.Size%4 != 0 || c.Size > 1024:
		return configErr("synthetic: size=%d: must be a multiple of 4 in [8, 1024]", c.Size)
	case !(c.Mix >= 0 && c.Mix <= 1):
		return configErr("synthetic: mix=%g: must be in [0, 1]", c.Mix)
	}
	return nil
}

// String returns the canonical spec, e.g.
// synthetic:train=10000,test=2000,classes=10,size=32,mix=0.5,seed=1.
func (c SyntheticConfig) String() string {
	return fmt.Sprintf("synthetic:train=%d,test=%d,classes=%d,size=%d,mix=%s,seed=%d",
		c.Train, c.Test, c.Classes, c.Size, strconv.FormatFloat(c.Mix, 'g', -1, 64), c.Seed)
}

func (c *SyntheticConfig) parse(params string) error {
	kvs, err := parseParams(params)
	if err != nil {
		return fmt.Errorf("synthetic: %w", err)
	}
	for _, kv := range kvs {
		k, v := kv[0], kv[1]
		var err error
		switch k {
		case "train", "n":
			c.Train, err = parseIntParam(k, v)
		case "test":
			c.Test, err = parseIntParam(k, v)
		case "classes":
			c.Classes, err = parseIntParam(k, v)
		case "size":
			c.Size, err = parseIntParam(k, v)
		case "mix":
			c.Mix, err = parseFloatParam(k, v)
		case "seed":
			c.Seed, err = strconv.ParseUint(v, 10, 64)
		default:
			err = fmt.Errorf("unknown parameter %q; valid: train, test, classes, size, mix, seed", k)
		}
		if err != nil {
			return fmt.Errorf("synthetic: %w", err)
		}
	}
	return nil
}

// Synthetic generates the data set described by cfg.
func Synthetic(cfg SyntheticConfig) (*Dataset, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	names := make([]string, cfg.Classes)
	for k := range names {
		names[k] = fmt.Sprintf("class%02d", k)
	}
	return &Dataset{
		Name:    "synthetic",
		Spec:    cfg.String(),
		Classes: names,
		Train:   genSynthetic(cfg, 0, cfg.Train),
		Test:    genSynthetic(cfg, 1, cfg.Test),
	}, nil
}

// Synthetic cue amplitudes in pixel units, and the noise.
const (
	synFine   = 32.0
	synCoarse = 32.0
	synNoise  = 8.0
	synBack   = 16.0
)

// Frequencies (cycles per image in x and y) of the coarse cue.
var synFreqs = [][2]int{{1, 0}, {0, 1}, {1, 1}, {1, -1}, {2, 0}, {0, 2}, {2, 1}, {1, 2}, {2, -1}, {1, -2}, {2, 2}, {2, -2}}

// Colour directions of the cues.
var synColors = [3][3]float64{{1, 1, 1}, {1, -1, 0}, {0.5, 0.5, -1}}

func genSynthetic(cfg SyntheticConfig, split, n int) *Split {
	S := cfg.Size
	sz := 3 * S * S
	s := &Split{N: n, C: 3, H: S, W: S, Classes: cfg.Classes, Images: make([]uint8, n*sz), Labels: make([]int, n)}
	parallelFor(n, runtime.GOMAXPROCS(0), func(lo, hi int) {
		plane := make([]float64, sz)
		tab := make([]float64, 2*S+1)
		for i := lo; i < hi; i++ {
			k := i % cfg.Classes
			s.Labels[i] = k
			p := newPCG(cfg.Seed, streamSynthetic, split, i)
			for j := range plane {
				plane[j] = 0
			}
			// Fine cue: one or two textures.
			ampF := synFine * (0.75 + 0.5*uniform(p))
			a, q := k%7, (k/7)%3
			addTexture(plane, S, a, synColors[q], ampF, p, tab)
			if m := k / 21; m > 0 {
				addTexture(plane, S, (a+m)%7, synColors[(q+1)%3], ampF, p, tab)
			}
			// Coarse cue: a low-frequency wave (period S or S/2) whose
			// frequency, colour and phase are chosen by k.
			ampC := synCoarse * (0.75 + 0.5*uniform(p))
			z, _ := normalPair(p)
			kc := k
			if uniform(p) < cfg.Mix {
				kc = int(bounded(p, uint64(cfg.Classes)))
			}
			f := synFreqs[kc%len(synFreqs)]
			col := synColors[(kc/len(synFreqs))%3]
			phase := 2*math.Pi*float64(kc/(3*len(synFreqs)))/3 + 0.3*z
			for y := 0; y < S; y++ {
				for x := 0; x < S; x++ {
					v := ampC * math.Cos(2*math.Pi*float64(f[0]*x+f[1]*y)/float64(S)+phase)
					for c := 0; c < 3; c++ {
						plane[c*S*S+y*S+x] += v * col[c]
					}
				}
			}
			var back [3]float64
			for c := range back {
				back[c] = 128 + synBack*(2*uniform(p)-1)
			}
			img := s.Images[i*sz : (i+1)*sz]
			var n1, n2 float64
			j := 0
			for c := 0; c < 3; c++ {
				for y := 0; y < S; y++ {
					for x := 0; x < S; x++ {
						if j%2 == 0 {
							n1, n2 = normalPair(p)
						} else {
							n1 = n2
						}
						img[j] = clampU8(back[c] + plane[j] + synNoise*n1)
						j++
					}
				}
			}
		}
	})
	return s
}

// addTexture adds amp × pattern j × colour to plane (3×S×S). Patterns 0-2
// have period 2 (random sign), 3-6 period 4 (random phase), all with RMS 1.
func addTexture(plane []float64, S, j int, color [3]float64, amp float64, p *rand.PCG, tab []float64) {
	sign := 1.0
	if p.Uint64()&1 == 1 {
		sign = -1
	}
	phase := 2 * math.Pi * uniform(p)
	// tab[t] = value at "coordinate" t for the pattern's argument.
	for t := range tab {
		if j < 3 {
			tab[t] = sign * float64(1-2*(t&1))
		} else {
			tab[t] = math.Sqrt2 * math.Cos(math.Pi*float64(t)/2+phase)
		}
	}
	hw := S * S
	for y := 0; y < S; y++ {
		for x := 0; x < S; x++ {
			var v float64
			switch j {
			case 0, 3:
				v = tab[x]
			case 1, 4:
				v = tab[y]
			case 2, 5:
				v = tab[x+y]
			case 6:
				v = tab[x-y+S] // period 4 in x-y: shift by S (a multiple of 4) is harmless
			}
			for c := 0; c < 3; c++ {
				plane[c*hw+y*S+x] += amp * v * color[c]
			}
		}
	}
}

func clampU8(v float64) uint8 {
	v = math.Round(v)
	if v < 0 {
		return 0
	}
	if v > 255 {
		return 255
	}
	return uint8(v)
}
