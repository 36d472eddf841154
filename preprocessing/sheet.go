package preprocessing

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"

	"github.com/critlab/critlab/internal/atomicfile"
)

// SheetOptions configures ContactSheet. The zero value means defaults.
type SheetOptions struct {
	PerClass   int       // samples per class; 0 means 4
	MaxClasses int       // classes shown (rows); 0 means 10
	Deficits   []Deficit // column groups; nil means DefaultSheetDeficits()
	Scale      int       // pixel magnification; 0 means 2
	Seed       uint64    // seed of seeded deficits (noise)
}

// DefaultSheetDeficits returns the image deficits with default parameters
// (label deficits do not change pixels and are not shown), after "none".
func DefaultSheetDeficits() []Deficit {
	return []Deficit{MustParseDeficit("none"), MustParseDeficit("blur"), MustParseDeficit("gauss"),
		MustParseDeficit("vflip"), MustParseDeficit("noise")}
}

// ContactSheet draws the first PerClass training images of each of the first
// MaxClasses classes, one row per class, once clean and once under each
// deficit, with class and deficit names.
func ContactSheet(ds *Dataset, opts SheetOptions) (*image.RGBA, error) {
	if opts.PerClass <= 0 {
		opts.PerClass = 4
	}
	if opts.MaxClasses <= 0 {
		opts.MaxClasses = 10
	}
	if opts.Scale <= 0 {
		opts.Scale = 2
	}
	if opts.Deficits == nil {
		opts.Deficits = DefaultSheetDeficits()
	}
	s := ds.Train
	if s.C != 1 && s.C != 3 {
		return nil, fmt.Errorf("contact sheet: %d channels, want 1 or 3", s.C)
	}
	rows := min(opts.MaxClasses, s.Classes)
	picks := make([][]int, rows)
	for i, l := range s.Labels {
		if l < rows && len(picks[l]) < opts.PerClass {
			picks[l] = append(picks[l], i)
		}
	}
	face := basicfont.Face7x13
	const gap, groupGap = 2, 10
	labelW := 0
	for k := 0; k < rows; k++ {
		labelW = max(labelW, len(className(ds, k))*7)
	}
	labelW += 8
	cell := s.W*opts.Scale + gap
	groupW := opts.PerClass*cell + groupGap
	top := 18
	width := labelW + len(opts.Deficits)*groupW
	height := top + rows*(s.H*opts.Scale+gap) + 4
	sheet := image.NewRGBA(image.Rect(0, 0, width, height))
	draw.Draw(sheet, sheet.Bounds(), image.NewUniform(color.RGBA{32, 32, 32, 255}), image.Point{}, draw.Src)
	text := func(x, y int, str string) {
		d := font.Drawer{Dst: sheet, Src: image.NewUniform(color.RGBA{230, 230, 230, 255}), Face: face,
			Dot: fixed.P(x, y)}
		d.DrawString(str)
	}
	stats := s.BaseStats()
	buf := make([]uint8, s.SampleSize())
	for g, d := range opts.Deficits {
		if err := d.Validate(); err != nil {
			return nil, fmt.Errorf("contact sheet: %w", err)
		}
		x0 := labelW + g*groupW
		text(x0, 13, d.String())
		for k := 0; k < rows; k++ {
			y0 := top + k*(s.H*opts.Scale+gap)
			if g == 0 {
				text(2, y0+s.H*opts.Scale/2+4, className(ds, k))
			}
			for j, idx := range picks[k] {
				if err := d.ApplyImage(buf, s.Image(idx), s.C, s.H, s.W, idx, opts.Seed, stats); err != nil {
					return nil, fmt.Errorf("contact sheet: %w", err)
				}
				blit(sheet, buf, s.C, s.H, s.W, x0+j*cell, y0, opts.Scale)
			}
		}
	}
	return sheet, nil
}

func className(ds *Dataset, k int) string {
	if k < len(ds.Classes) {
		return ds.Classes[k]
	}
	return fmt.Sprintf("class%d", k)
}

func blit(dst *image.RGBA, img []uint8, c, h, w, x0, y0, scale int) {
	hw := h * w
	for y := 0; y < h*scale; y++ {
		for x := 0; x < w*scale; x++ {
			i := (y/scale)*w + x/scale
			r, g, b := img[i], img[i], img[i]
			if c == 3 {
				g, b = img[hw+i], img[2*hw+i]
			}
			o := dst.PixOffset(x0+x, y0+y)
			dst.Pix[o], dst.Pix[o+1], dst.Pix[o+2], dst.Pix[o+3] = r, g, b, 255
		}
	}
}

// WriteContactSheet draws a contact sheet and writes it as a PNG file,
// atomically.
func WriteContactSheet(path string, ds *Dataset, opts SheetOptions) error {
	img, err := ContactSheet(ds, opts)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		return fmt.Errorf("encode contact sheet: %w", err)
	}
	return atomicfile.Write(path, b.Bytes())
}
