package preprocessing

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/disintegration/imaging"
)

// Deficit is a corruption of training data, identified by its spec. Each
// kind is a pure function of (image, label, sample index, seed) and its
// parameters:
//
//	none          identity
//	blur          resize H×W down to Size×Size with the Down filter
//	              (antialiased: the filter support is scaled by the
//	              reduction, as in PIL and imaging) and back up with the Up
//	              filter; pixels are rounded to uint8 after each pass.
//	              Defaults size=8, down=box (area average, exactly 4×4 means
//	              for 32→8), up=linear (bilinear). down=linear reproduces
//	              torchvision's Resize (PIL bilinear with antialiasing).
//	gauss         Gaussian blur with standard deviation Sigma pixels
//	              (imaging.Blur: kernel radius ⌈3σ⌉, edges clamped), from
//	              MinGaussSigma (below it no pixel changes) to the image side
//	vflip         image upside down
//	labelperm     label l becomes π(l) for one random permutation π of the
//	              classes drawn from the seed
//	labelshuffle  sample i gets the label of sample σ(i) for one random
//	              permutation σ of the samples drawn from the seed (the
//	              class counts are kept)
//	noise         image replaced by independent Gaussian noise per pixel
//	              with the clean data set's per-channel mean and std (rounded
//	              and clipped to [0, 255]), drawn from (seed, sample index)
//	sham          identity, like none, but a deficit window all the same:
//	              the control for everything a window changes besides the
//	              images (the lr restart at its end, Fisher epochs), so a
//	              sham run trains exactly as the run without the window
//
// The zero value is "none". Deficit is comparable and may key a map.
type Deficit struct {
	Kind  string  // one of DeficitKinds; "" means none
	Size  int     // blur: side of the small image
	Down  string  // blur: downsampling filter, a name in FilterNames
	Up    string  // blur: upsampling filter
	Sigma float64 // gauss: standard deviation in pixels
}

// DeficitKinds lists the deficit names ParseDeficit accepts.
var DeficitKinds = []string{"none", "blur", "gauss", "vflip", "labelperm", "labelshuffle", "noise", "sham"}

// DeficitUsage describes the accepted deficit specs, for errors and help.
const DeficitUsage = "none, blur[:size=8,down=box,up=linear], gauss[:sigma=1.5], vflip, labelperm, labelshuffle, noise, sham"

// Defaults of the deficit parameters.
const (
	DefaultBlurSize   = 8
	DefaultBlurDown   = "box"
	DefaultBlurUp     = "linear"
	DefaultGaussSigma = 1.5
	// MinGaussSigma is the smallest gauss sigma accepted: below about
	// 0.2687 the neighbours' weight exp(-1/2σ²) is under 1/1019, so even a
	// 0/255 checkerboard moves less than half a level and no 8-bit pixel
	// changes (and far below, the kernel overflows to NaN).
	MinGaussSigma = 0.27
)

var resampleFilters = map[string]imaging.ResampleFilter{
	"nearest":    imaging.NearestNeighbor,
	"box":        imaging.Box,
	"linear":     imaging.Linear,
	"hermite":    imaging.Hermite,
	"mitchell":   imaging.MitchellNetravali,
	"catmullrom": imaging.CatmullRom,
	"bspline":    imaging.BSpline,
	"gaussian":   imaging.Gaussian,
	"bartlett":   imaging.Bartlett,
	"lanczos":    imaging.Lanczos,
	"hann":       imaging.Hann,
	"hamming":    imaging.Hamming,
	"blackman":   imaging.Blackman,
	"welch":      imaging.Welch,
	"cosine":     imaging.Cosine,
}

var filterAliases = map[string]string{"area": "box", "bilinear": "linear", "triangle": "linear", "bicubic": "catmullrom"}

// FilterNames returns the resampling filter names blur accepts (sorted).
func FilterNames() []string {
	var out []string
	for k := range resampleFilters {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// ParseDeficit parses a deficit spec such as "blur", "blur:size=8",
// "blur:size=4,down=lanczos,up=linear", "gauss:sigma=1.5", "vflip",
// "labelperm", "labelshuffle", "noise", "sham" or "none" (also ""). A bare number is
// blur's size or gauss's sigma ("blur:4", "gauss:2").
func ParseDeficit(spec string) (Deficit, error) {
	spec = strings.TrimSpace(spec)
	name, params, _ := strings.Cut(spec, ":")
	name = strings.ToLower(strings.TrimSpace(name))
	var d Deficit
	var allowed []string
	switch name {
	case "", "none":
		d.Kind = "none"
	case "blur":
		d = Deficit{Kind: "blur", Size: DefaultBlurSize, Down: DefaultBlurDown, Up: DefaultBlurUp}
		allowed = []string{"size", "down", "up"}
	case "gauss", "gaussian":
		d = Deficit{Kind: "gauss", Sigma: DefaultGaussSigma}
		allowed = []string{"sigma"}
	case "vflip", "labelperm", "labelshuffle", "noise", "sham":
		d.Kind = name
	default:
		return Deficit{}, fmt.Errorf("parse deficit %q: %w %q; valid deficits: %s", spec, ErrUnknownDeficit, name, DeficitUsage)
	}
	if p := strings.TrimSpace(params); p != "" && !strings.Contains(p, "=") && len(allowed) > 0 {
		params = allowed[0] + "=" + p
	}
	kvs, err := parseParams(params)
	if err != nil {
		return Deficit{}, fmt.Errorf("parse deficit %q: %w", spec, err)
	}
	for _, kv := range kvs {
		k, v := kv[0], kv[1]
		if !slices.Contains(allowed, k) {
			valid := "none"
			if len(allowed) > 0 {
				valid = strings.Join(allowed, ", ")
			}
			return Deficit{}, fmt.Errorf("parse deficit %q: %w parameter %q for %s; valid parameters: %s", spec, ErrUnknownDeficit, k, d.Kind, valid)
		}
		switch k {
		case "size":
			d.Size, err = parseIntParam(k, v)
		case "sigma":
			d.Sigma, err = parseFloatParam(k, v)
		case "down", "up":
			f := strings.ToLower(v)
			if a, ok := filterAliases[f]; ok {
				f = a
			}
			if _, ok := resampleFilters[f]; !ok {
				err = fmt.Errorf("%w filter %q for %s; valid filters: %s", ErrUnknownDeficit, v, k, strings.Join(FilterNames(), ", "))
			}
			if k == "down" {
				d.Down = f
			} else {
				d.Up = f
			}
		}
		if err != nil {
			return Deficit{}, fmt.Errorf("parse deficit %q: %w", spec, err)
		}
	}
	if err := d.Validate(); err != nil {
		return Deficit{}, fmt.Errorf("parse deficit %q: %w", spec, err)
	}
	return d, nil
}

// MustParseDeficit is ParseDeficit for constant specs in code; it panics on
// error.
func MustParseDeficit(spec string) Deficit {
	d, err := ParseDeficit(spec)
	if err != nil {
		panic(err)
	}
	return d
}

// Validate checks the kind and parameters.
func (d Deficit) Validate() error {
	switch d.Kind {
	case "", "none", "vflip", "labelperm", "labelshuffle", "noise", "sham":
	case "blur":
		if d.Size < 1 {
			return configErr("blur size %d: must be at least 1", d.Size)
		}
		if _, ok := resampleFilters[d.Down]; !ok {
			return configErr("blur down filter %q: valid filters: %s", d.Down, strings.Join(FilterNames(), ", "))
		}
		if _, ok := resampleFilters[d.Up]; !ok {
			return configErr("blur up filter %q: valid filters: %s", d.Up, strings.Join(FilterNames(), ", "))
		}
	case "gauss":
		if !(d.Sigma > 0) || math.IsInf(d.Sigma, 0) {
			return configErr("gauss sigma %g: must be positive", d.Sigma)
		}
		if d.Sigma < MinGaussSigma {
			return configErr("gauss sigma %g: below %g pixels the blur changes no pixel (sham is a window that changes nothing)", d.Sigma, MinGaussSigma)
		}
	default:
		return fmt.Errorf("%w %q; valid deficits: %s", ErrUnknownDeficit, d.Kind, DeficitUsage)
	}
	return nil
}

// FitsImages refuses a deficit that makes no sense for h×w images: a blur
// to a size larger than the images (it would upsample), a Gaussian whose
// σ exceeds their side (long past the point where it leaves little but
// the mean colour, its kernel of 2⌈3σ⌉+1 taps is then over 6× their
// side; a huge sigma cannot even be allocated). A blur to the images' own height leaves them
// unchanged, as sham does, and is allowed. Run checks call it before any
// training, ApplyImage again for gauss.
func (d Deficit) FitsImages(h, w int) error {
	switch {
	case d.Kind == "blur" && d.Size > h:
		return configErr("blur size %d is larger than the %d×%d images: the images would be enlarged, not blurred (want at most %d; sham is a window that changes nothing)", d.Size, h, w, h)
	case d.Kind == "gauss" && d.Sigma > float64(max(h, w)):
		return configErr("gauss sigma %g is larger than the %d×%d images: want at most %d pixels, their side", d.Sigma, h, w, max(h, w))
	}
	return nil
}

// String returns the canonical spec: "none", "blur:size=8,down=box,up=linear",
// "gauss:sigma=1.5", "vflip", ... ParseDeficit(d.String()) == d.
func (d Deficit) String() string {
	switch d.Kind {
	case "", "none":
		return "none"
	case "blur":
		return fmt.Sprintf("blur:size=%d,down=%s,up=%s", d.Size, d.Down, d.Up)
	case "gauss":
		return "gauss:sigma=" + strconv.FormatFloat(d.Sigma, 'g', -1, 64)
	}
	return d.Kind
}

// Identity reports whether d leaves images and labels unchanged (none and
// sham).
func (d Deficit) Identity() bool { return !d.ChangesImages() && !d.ChangesLabels() }

// ChangesImages reports whether d alters pixels.
func (d Deficit) ChangesImages() bool {
	switch d.Kind {
	case "blur", "gauss", "vflip", "noise":
		return true
	}
	return false
}

// ChangesLabels reports whether d alters labels.
func (d Deficit) ChangesLabels() bool { return d.Kind == "labelperm" || d.Kind == "labelshuffle" }

// Seeded reports whether d's result depends on the seed.
func (d Deficit) Seeded() bool {
	return d.Kind == "labelperm" || d.Kind == "labelshuffle" || d.Kind == "noise"
}

// ApplyImage writes image src (C×H×W, C = 1 or 3) of sample index under d
// into dst (same size). stats is the clean data set's statistics (used by
// noise only). Deficits that do not change images copy src.
func (d Deficit) ApplyImage(dst, src []uint8, c, h, w, index int, seed uint64, stats Stats) error {
	if len(src) != c*h*w || len(dst) != len(src) {
		return fmt.Errorf("apply %s: image of %d bytes (dst %d), want %d×%d×%d", d, len(src), len(dst), c, h, w)
	}
	if (d.Kind == "blur" || d.Kind == "gauss") && c != 1 && c != 3 {
		return fmt.Errorf("apply %s: %d channels, want 1 or 3", d, c)
	}
	switch d.Kind {
	case "blur":
		dh, dw := d.Size, max(1, int(math.Round(float64(d.Size)*float64(w)/float64(h))))
		if dh >= h && dw >= w {
			copy(dst, src)
			return nil
		}
		img := newNRGBA(w, h)
		chwToNRGBA(src, c, h, w, img)
		small := imaging.Resize(img, dw, dh, resampleFilters[d.Down])
		big := imaging.Resize(small, w, h, resampleFilters[d.Up])
		nrgbaToCHW(dst, big, c)
	case "gauss":
		err := d.Validate()
		if err == nil {
			err = d.FitsImages(h, w)
		}
		if err != nil { // rather than imaging.Blur's panic or NaN pixels
			return fmt.Errorf("apply %s: %w", d, err)
		}
		img := newNRGBA(w, h)
		chwToNRGBA(src, c, h, w, img)
		nrgbaToCHW(dst, imaging.Blur(img, d.Sigma), c)
	case "vflip":
		hw := h * w
		for k := 0; k < c; k++ {
			for y := 0; y < h; y++ {
				copy(dst[k*hw+y*w:k*hw+(y+1)*w], src[k*hw+(h-1-y)*w:k*hw+(h-y)*w])
			}
		}
	case "noise":
		if len(stats.Mean) != c || len(stats.Std) != c {
			return fmt.Errorf("apply noise: statistics for %d channels, want %d", len(stats.Mean), c)
		}
		p := newPCG(seed, streamNoise, 0, index)
		hw := h * w
		for k := 0; k < c; k++ {
			m, s := 255*stats.Mean[k], 255*stats.Std[k]
			out := dst[k*hw : (k+1)*hw]
			for j := 0; j < hw; j += 2 {
				z1, z2 := normalPair(p)
				out[j] = clampU8(m + s*z1)
				if j+1 < hw {
					out[j+1] = clampU8(m + s*z2)
				}
			}
		}
	default:
		copy(dst, src)
	}
	return nil
}

// MapLabels returns the labels of a split of samples with these labels
// under d: labelperm maps each label through a seeded permutation of the
// classes, labelshuffle permutes labels across samples. Other deficits
// return labels itself (not a copy).
func (d Deficit) MapLabels(labels []int, classes int, seed uint64) []int {
	switch d.Kind {
	case "labelperm":
		perm := ClassPermutation(classes, seed)
		out := make([]int, len(labels))
		for i, l := range labels {
			out[i] = perm[l]
		}
		return out
	case "labelshuffle":
		sigma := permutation(newPCG(seed, streamLabelShuffle, 0, 0), len(labels))
		out := make([]int, len(labels))
		for i, j := range sigma {
			out[i] = labels[j]
		}
		return out
	}
	return labels
}

// ClassPermutation returns the labelperm permutation for the seed: label l
// becomes perm[l].
func ClassPermutation(classes int, seed uint64) []int {
	return permutation(newPCG(seed, streamLabelPerm, 0, 0), classes)
}
