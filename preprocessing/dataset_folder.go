package preprocessing

import (
	"fmt"
	"image"
	_ "image/jpeg" // decoders for folder data sets
	_ "image/png"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/disintegration/imaging"
)

var imageExts = []string{".png", ".jpg", ".jpeg"}

// openFolder reads root/train/<class>/* and root/test/<class>/* image files.
// Classes are the sorted folder names under train/; test/ may lack a class
// but may not add one.
func openFolder(root string, opts OpenOptions) (*Dataset, error) {
	size := opts.ImageSize
	if size == 0 {
		size = 32
	}
	if size < 0 {
		return nil, configErr("image size %d: must be positive", size)
	}
	trainDir := filepath.Join(root, "train")
	classes, err := classFolders(trainDir)
	if err != nil {
		return nil, fmt.Errorf("open folder data set %s: %w (want %s/train/<class>/*.png|jpg and %s/test/<class>/...)", root, err, root, root)
	}
	if len(classes) == 0 {
		return nil, fmt.Errorf("open folder data set %s: %w: no class folders in %s (want %s/train/<class>/*.png|jpg)", root, ErrFormat, trainDir, root)
	}
	testDir := filepath.Join(root, "test")
	testClasses, err := classFolders(testDir)
	if err != nil {
		return nil, fmt.Errorf("open folder data set %s: %w (want %s/test/<class>/*.png|jpg)", root, err, root)
	}
	for _, c := range testClasses {
		if !slices.Contains(classes, c) {
			return nil, fmt.Errorf("open folder data set %s: %w: %s has no match in %s; every test class needs training images",
				root, ErrFormat, filepath.Join(testDir, c), trainDir)
		}
	}
	tr, err := readFolderSplit(trainDir, classes, classes, size, opts)
	if err != nil {
		return nil, fmt.Errorf("open folder data set %s: %w", root, err)
	}
	te, err := readFolderSplit(testDir, classes, testClasses, size, opts)
	if err != nil {
		return nil, fmt.Errorf("open folder data set %s: %w", root, err)
	}
	return &Dataset{Name: "folder", Spec: "folder:" + root, Classes: classes, Train: tr, Test: te}, nil
}

func classFolders(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

func readFolderSplit(dir string, classes, present []string, size int, opts OpenOptions) (*Split, error) {
	type item struct {
		path  string
		label int
	}
	var items []item
	for _, name := range present {
		cdir := filepath.Join(dir, name)
		ents, err := os.ReadDir(cdir)
		if err != nil {
			return nil, err
		}
		label := slices.Index(classes, name)
		n := 0
		for _, e := range ents {
			if e.IsDir() || !slices.Contains(imageExts, strings.ToLower(filepath.Ext(e.Name()))) {
				continue
			}
			items = append(items, item{filepath.Join(cdir, e.Name()), label})
			n++
		}
		if n == 0 {
			return nil, formatErr(cdir, "", -1, -1, "add images or remove the folder", "empty class folder: no .png, .jpg or .jpeg files")
		}
	}
	sz := 3 * size * size
	s := &Split{N: len(items), C: 3, H: size, W: size, Classes: len(classes),
		Images: make([]uint8, len(items)*sz), Labels: make([]int, len(items))}
	workers := opts.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	errs := make([]error, len(items))
	parallelFor(len(items), workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			s.Labels[i] = items[i].label
			errs[i] = loadImage(items[i].path, size, opts.NoResize, s.Images[i*sz:(i+1)*sz])
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// loadImage decodes one file into dst (3×size×size CHW), resizing it when
// allowed.
func loadImage(p string, size int, noResize bool, dst []uint8) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("read image: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return formatErr(p, "", -1, -1, "replace or remove the file", "cannot decode image: %v", err)
	}
	b := img.Bounds()
	if b.Dx() <= 0 || b.Dy() <= 0 {
		return formatErr(p, "", -1, -1, "replace or remove the file", "image has no pixels (%d×%d)", b.Dx(), b.Dy())
	}
	if b.Dx() != size || b.Dy() != size {
		if noResize {
			return formatErr(p, "", -1, -1, fmt.Sprintf("resize the images to %d×%d or allow resizing", size, size),
				"image is %d×%d, want %d×%d", b.Dx(), b.Dy(), size, size)
		}
		img = imaging.Fill(img, size, size, imaging.Center, imaging.Lanczos)
	}
	nrgbaToCHW(dst, imaging.Clone(img), 3)
	return nil
}

// parallelFor splits [0, n) into contiguous ranges run on up to workers
// goroutines.
func parallelFor(n, workers int, fn func(lo, hi int)) {
	if workers > n {
		workers = n
	}
	if workers <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	var wg sync.WaitGroup
	chunk := (n + workers - 1) / workers
	for lo := 0; lo < n; lo += chunk {
		hi := min(lo+chunk, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}

// chwToNRGBA writes a CHW image (C = 1 or 3) into an opaque NRGBA image.
func chwToNRGBA(src []uint8, c, h, w int, dst *image.NRGBA) {
	hw := h * w
	for i := 0; i < hw; i++ {
		p := dst.Pix[i*4 : i*4+4 : i*4+4]
		if c == 1 {
			p[0], p[1], p[2] = src[i], src[i], src[i]
		} else {
			p[0], p[1], p[2] = src[i], src[hw+i], src[2*hw+i]
		}
		p[3] = 255
	}
}

// nrgbaToCHW writes the colour channels of img into dst (C = 1: red only,
// the image being grey; C = 3: RGB). Alpha is ignored.
func nrgbaToCHW(dst []uint8, img *image.NRGBA, c int) {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	hw := h * w
	for y := 0; y < h; y++ {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := 0; x < w; x++ {
			i := y*w + x
			for k := 0; k < c; k++ {
				dst[k*hw+i] = row[x*4+k]
			}
		}
	}
}

func newNRGBA(w, h int) *image.NRGBA {
	return image.NewNRGBA(image.Rect(0, 0, w, h))
}
