package preprocessing

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// cifarLayout describes one binary CIFAR format.
type cifarLayout struct {
	name       string   // cifar10, cifar100
	recordSize int      // bytes per record: label bytes + 3072 pixels
	labelBytes int      // label bytes before the pixels
	labelIndex int      // which label byte is used (CIFAR-100: 1, fine)
	coarse     int      // CIFAR-100: coarse classes, checked at byte 0
	classes    int      // classes of the used label
	trainFiles []string // in order
	testFiles  []string
	meta       string // class names, one a line
	dirName    string // folder inside the archive
	archive    string // official archive file name
	names      []string
}

const cifarPixels = 3 * 32 * 32

var cifar10Layout = &cifarLayout{
	name: "cifar10", recordSize: 1 + cifarPixels, labelBytes: 1, labelIndex: 0, classes: 10,
	trainFiles: []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"},
	testFiles:  []string{"test_batch.bin"},
	meta:       "batches.meta.txt", dirName: "cifar-10-batches-bin", archive: "cifar-10-binary.tar.gz",
	names: []string{"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"},
}

var cifar100Layout = &cifarLayout{
	name: "cifar100", recordSize: 2 + cifarPixels, labelBytes: 2, labelIndex: 1, coarse: 20, classes: 100,
	trainFiles: []string{"train.bin"},
	testFiles:  []string{"test.bin"},
	meta:       "fine_label_names.txt", dirName: "cifar-100-binary", archive: "cifar-100-binary.tar.gz",
}

const hintCorrupt = "the archive is truncated or corrupt; fetch it again (critlab data fetch NAME) or check the copy you gave"

func (l *cifarLayout) hint(s string) string { return strings.ReplaceAll(s, "NAME", l.name) }

// openCIFAR opens a CIFAR binary data set from an archive, the folder it
// unpacks to, or a folder holding either.
func openCIFAR(lay *cifarLayout, p string) (*Dataset, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, fmt.Errorf("open %s data %s: %w\n---> HINT: %s", lay.name, p, err, lay.fetchHint(p))
	}
	if !fi.IsDir() {
		return readCIFARArchive(lay, p)
	}
	switch {
	case fileExists(filepath.Join(p, lay.trainFiles[0])):
		return readCIFARDir(lay, p)
	case fileExists(filepath.Join(p, lay.dirName, lay.trainFiles[0])):
		return readCIFARDir(lay, filepath.Join(p, lay.dirName))
	case fileExists(filepath.Join(p, lay.archive)):
		return readCIFARArchive(lay, filepath.Join(p, lay.archive))
	}
	return nil, fmt.Errorf("open %s data: %s holds neither %s, %s/ nor %s\n---> HINT: %s",
		lay.name, p, lay.archive, lay.dirName, lay.trainFiles[0], lay.fetchHint(p))
}

// fetchHint says how to download the data set to where openCIFAR looks
// for it at p: `critlab data fetch` writes the official archive name into
// its --dir, which defaults to DataDir() as the spec's path does.
func (l *cifarLayout) fetchHint(p string) string {
	switch {
	case p == filepath.Clean(DataDir()):
		return "download it with: critlab data fetch " + l.name
	case filepath.Base(p) == l.archive:
		return fmt.Sprintf("download it with: critlab data fetch %s --dir %s", l.name, filepath.Dir(p))
	case strings.HasSuffix(p, ".gz") || strings.HasSuffix(p, ".tar"):
		return fmt.Sprintf("download it with: critlab data fetch %s --dir %s, then pass --data %s:%s", l.name, filepath.Dir(p), l.name, filepath.Join(filepath.Dir(p), l.archive))
	}
	return fmt.Sprintf("download it with: critlab data fetch %s --dir %s", l.name, p)
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// OpenArchive opens a CIFAR-10 or CIFAR-100 binary archive (.tar.gz or .tar),
// telling the two apart by their entries.
func OpenArchive(p string) (*Dataset, error) {
	lay, err := detectArchive(p)
	if err != nil {
		return nil, err
	}
	ds, err := readCIFARArchive(lay, p)
	if err != nil {
		return nil, err
	}
	ds.Spec = lay.name + ":" + p
	return ds, nil
}

// detectArchive reads the first entries of a binary CIFAR archive and
// returns its layout.
func detectArchive(p string) (*cifarLayout, error) {
	var found *cifarLayout
	errStop := errors.New("stop")
	err := walkTar(p, func(name string, size int64, r io.Reader) error {
		base := path.Base(name)
		for _, lay := range []*cifarLayout{cifar10Layout, cifar100Layout} {
			if slices.Contains(lay.trainFiles, base) || slices.Contains(lay.testFiles, base) || base == lay.meta {
				found = lay
				return errStop
			}
		}
		if h := pythonHint(base); h != "" {
			return formatErr(p, name, -1, -1, h, "not a binary CIFAR archive")
		}
		return nil
	})
	if found != nil {
		return found, nil
	}
	if err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	return nil, formatErr(p, "", -1, -1, "give the binary version (cifar-10-binary.tar.gz or cifar-100-binary.tar.gz)",
		"no CIFAR-10 or CIFAR-100 binary entries (data_batch_1.bin, train.bin, ...) in the archive")
}

// walkTar streams the regular entries of a .tar.gz or .tar file to fn, then
// reads the gzip stream to its end so that its checksum is verified.
func walkTar(p string, fn func(name string, size int64, r io.Reader) error) error {
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("open archive: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open archive: %w", err)
	}
	cr := &countingReader{r: f}
	br := bufio.NewReaderSize(cr, 1<<20)
	var src io.Reader = br
	magic, _ := br.Peek(2)
	var gz *gzip.Reader
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err = gzip.NewReader(br)
		if err != nil {
			return formatErr(p, "", -1, -1, hintCorrupt, "gzip header: %v", err)
		}
		src = gz
	}
	where := func() string {
		return fmt.Sprintf("stopped at byte %d of the %d-byte archive", cr.n-int64(br.Buffered()), fi.Size())
	}
	tr := tar.NewReader(src)
	last := "(start)"
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return formatErr(p, "", -1, -1, hintCorrupt, "read tar header after entry %s %s: %v", last, where(), err)
		}
		last = hdr.Name
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if err := fn(hdr.Name, hdr.Size, tr); err != nil {
			var fe *FormatError
			if errors.As(err, &fe) && fe.Path == "" {
				fe.Path = p
				if fe.read {
					fe.Err = fmt.Errorf("%w (%s)", fe.Err, where())
				}
			}
			return err
		}
	}
	if gz != nil {
		if _, err := io.Copy(io.Discard, gz); err != nil {
			return formatErr(p, "", -1, -1, hintCorrupt, "gzip stream %s: %v", where(), err)
		}
	}
	return nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

func pythonHint(base string) string {
	switch base {
	case "data_batch_1", "test_batch", "batches.meta", "train", "test", "meta":
		return "this looks like the python version of CIFAR; critlab reads the binary version (cifar-10-binary.tar.gz, cifar-100-binary.tar.gz)"
	}
	if strings.HasSuffix(base, ".mat") {
		return "this looks like the MATLAB version of CIFAR; critlab reads the binary version (cifar-10-binary.tar.gz, cifar-100-binary.tar.gz)"
	}
	return ""
}

// cifarReader assembles a data set from the files of a CIFAR layout, fed in
// any order.
type cifarReader struct {
	lay         *cifarLayout
	train, test *assembler
	names       []string
	python      string
}

func newCIFARReader(lay *cifarLayout) *cifarReader {
	return &cifarReader{lay: lay, train: newAssembler(lay, lay.trainFiles), test: newAssembler(lay, lay.testFiles)}
}

// entry consumes one file. Errors leave Path empty for the caller to fill.
func (c *cifarReader) entry(name string, size int64, r io.Reader) error {
	base := path.Base(name)
	if base == c.lay.meta {
		b, err := io.ReadAll(io.LimitReader(r, 1<<20))
		if err != nil {
			return &FormatError{Entry: name, Record: -1, Offset: -1, Err: err, Hint: c.lay.hint(hintCorrupt), read: true}
		}
		var names []string
		for _, line := range strings.Split(string(b), "\n") {
			if s := strings.TrimSpace(line); s != "" {
				names = append(names, s)
			}
		}
		if len(names) == c.lay.classes {
			c.names = names
		}
		return nil
	}
	if i := slices.Index(c.lay.trainFiles, base); i >= 0 {
		return c.train.add(i, name, size, r)
	}
	if i := slices.Index(c.lay.testFiles, base); i >= 0 {
		return c.test.add(i, name, size, r)
	}
	if c.python == "" {
		c.python = pythonHint(base)
	}
	return nil
}

func (c *cifarReader) finish(p string) (*Dataset, error) {
	hint := "not a complete " + c.lay.name + " binary archive: " + c.lay.hint("fetch it again (critlab data fetch NAME) or check the copy you gave")
	if c.python != "" {
		hint = c.python
	}
	tr, err := c.train.finish(p, hint)
	if err != nil {
		return nil, err
	}
	te, err := c.test.finish(p, hint)
	if err != nil {
		return nil, err
	}
	names := c.names
	if names == nil {
		names = c.lay.names
	}
	if names == nil {
		for k := 0; k < c.lay.classes; k++ {
			names = append(names, fmt.Sprintf("class%02d", k))
		}
	}
	return &Dataset{Name: c.lay.name, Spec: c.lay.name + ":" + p, Classes: slices.Clone(names), Train: tr, Test: te}, nil
}

func readCIFARArchive(lay *cifarLayout, p string) (*Dataset, error) {
	c := newCIFARReader(lay)
	if err := walkTar(p, c.entry); err != nil {
		return nil, fmt.Errorf("read %s: %w", lay.name, err)
	}
	ds, err := c.finish(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", lay.name, err)
	}
	return ds, nil
}

func readCIFARDir(lay *cifarLayout, dir string) (*Dataset, error) {
	c := newCIFARReader(lay)
	files := append(append([]string{lay.meta}, lay.trainFiles...), lay.testFiles...)
	for _, name := range files {
		p := filepath.Join(dir, name)
		f, err := os.Open(p)
		if err != nil {
			if name == lay.meta && errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("read %s: open %s: %w", lay.name, p, err)
		}
		fi, err := f.Stat()
		if err == nil {
			err = c.entry(name, fi.Size(), bufio.NewReaderSize(f, 1<<20))
		}
		f.Close()
		if err != nil {
			var fe *FormatError
			if errors.As(err, &fe) {
				fe.Path, fe.Entry = p, ""
			}
			return nil, fmt.Errorf("read %s: %w", lay.name, err)
		}
	}
	ds, err := c.finish(dir)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", lay.name, err)
	}
	return ds, nil
}

// assembler joins the records of several files into one split, in file
// order. Files read in order are appended in place; others wait.
type assembler struct {
	lay     *cifarLayout
	files   []string
	seen    []bool
	next    int
	labels  []int
	images  []uint8
	pending map[int]*chunk
}

type chunk struct {
	labels []int
	images []uint8
}

func newAssembler(lay *cifarLayout, files []string) *assembler {
	return &assembler{lay: lay, files: files, seen: make([]bool, len(files)), pending: map[int]*chunk{}}
}

func (a *assembler) add(i int, name string, size int64, r io.Reader) error {
	lay := a.lay
	if a.seen[i] {
		return &FormatError{Entry: name, Record: -1, Offset: -1, Err: fmt.Errorf("%s appears twice", a.files[i]), Hint: "the archive is not an official CIFAR archive"}
	}
	a.seen[i] = true
	rs := int64(lay.recordSize)
	if size%rs != 0 || size == 0 {
		return &FormatError{Entry: name, Record: int(size / rs), Offset: size - size%rs,
			Err: fmt.Errorf("file length %d is not a positive multiple of the %d-byte record (%d whole records and %d bytes over)",
				size, rs, size/rs, size%rs),
			Hint: "the file is truncated or not in the " + lay.name + " binary layout (1 label byte" +
				map[bool]string{true: "s", false: ""}[lay.labelBytes > 1] + " + 3072 pixel bytes per record); " +
				lay.hint("fetch it again (critlab data fetch NAME)")}
	}
	n := int(size / rs)
	if i == a.next {
		if a.images == nil {
			a.images = make([]uint8, 0, len(a.files)*n*cifarPixels)
			a.labels = make([]int, 0, len(a.files)*n)
		}
		if err := readRecords(lay, name, r, n, &a.labels, &a.images); err != nil {
			return err
		}
		a.next++
		for c := a.pending[a.next]; c != nil; c = a.pending[a.next] {
			a.labels = append(a.labels, c.labels...)
			a.images = append(a.images, c.images...)
			delete(a.pending, a.next)
			a.next++
		}
		return nil
	}
	c := &chunk{labels: make([]int, 0, n), images: make([]uint8, 0, n*cifarPixels)}
	if err := readRecords(lay, name, r, n, &c.labels, &c.images); err != nil {
		return err
	}
	a.pending[i] = c
	return nil
}

func (a *assembler) finish(p, hint string) (*Split, error) {
	for i, ok := range a.seen {
		if !ok {
			return nil, formatErr(p, "", -1, -1, hint, "no entry %s", a.files[i])
		}
	}
	n := len(a.labels)
	return &Split{Images: a.images, Labels: a.labels, N: n, C: 3, H: 32, W: 32, Classes: a.lay.classes}, nil
}

// readRecords appends n records from r to labels and images.
func readRecords(lay *cifarLayout, name string, r io.Reader, n int, labels *[]int, images *[]uint8) error {
	rs := lay.recordSize
	const block = 256
	buf := make([]byte, block*rs)
	for rec := 0; rec < n; {
		k := min(block, n-rec)
		got, err := io.ReadFull(r, buf[:k*rs])
		if err != nil {
			off := int64(rec)*int64(rs) + int64(got)
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return &FormatError{Entry: name, Record: int(off / int64(rs)), Offset: off,
				Err: fmt.Errorf("reading %d records: %w", n, err), Hint: lay.hint(hintCorrupt), read: true}
		}
		for j := 0; j < k; j++ {
			r := buf[j*rs : (j+1)*rs]
			if lay.coarse > 0 && int(r[0]) >= lay.coarse {
				return &FormatError{Entry: name, Record: rec + j, Offset: int64(rec+j) * int64(rs),
					Err:  fmt.Errorf("coarse label %d out of range [0, %d)", r[0], lay.coarse),
					Hint: "the file is not in the " + lay.name + " binary layout or is corrupt"}
			}
			l := int(r[lay.labelIndex])
			if l >= lay.classes {
				return &FormatError{Entry: name, Record: rec + j, Offset: int64(rec+j)*int64(rs) + int64(lay.labelIndex),
					Err:  fmt.Errorf("label %d out of range [0, %d)", l, lay.classes),
					Hint: "the file is not in the " + lay.name + " binary layout or is corrupt"}
			}
			*labels = append(*labels, l)
			*images = append(*images, r[lay.labelBytes:]...)
		}
		rec += k
	}
	return nil
}
