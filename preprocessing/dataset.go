package preprocessing

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Dataset is a labelled image data set with a training and a test split of
// the same image shape and classes.
type Dataset struct {
	Name    string   // kind: cifar10, cifar100, folder, synthetic
	Spec    string   // spec that reopens it (as given; canonical for synthetic, cifar10:/cifar100: for archive:)
	Classes []string // class names, index = label
	Train   *Split
	Test    *Split
}

// OpenOptions holds settings that are not part of a spec. The zero value
// means defaults.
type OpenOptions struct {
	// Synthetic configures the synthetic data set; nil means
	// DefaultSyntheticConfig(). Parameters in the spec
	// (synthetic:train=2000,...) override it.
	Synthetic *SyntheticConfig
	// ImageSize is the side folder images are resized to (imaging.Fill,
	// Lanczos, centre crop to keep the aspect ratio); 0 means 32.
	ImageSize int
	// NoResize makes a folder image of another size an error instead of
	// resizing it.
	NoResize bool
	// Workers decode folder images in parallel; 0 means GOMAXPROCS.
	Workers int
}

// DataDir returns the default data folder: $CRITLAB_DATA, or "data".
func DataDir() string {
	if d := os.Getenv("CRITLAB_DATA"); d != "" {
		return d
	}
	return "data"
}

// Specs lists the accepted data set spec forms, for help texts.
const Specs = "cifar10[:PATH], cifar100[:PATH], folder:PATH, archive:PATH, synthetic[:train=N,test=N,classes=K,size=S,mix=M,seed=X]"

// Open opens a data set from a spec:
//
//	cifar10:PATH    CIFAR-10 binary: the .tar.gz archive (streamed, not
//	                unpacked), the cifar-10-batches-bin folder or a folder
//	                holding either; PATH defaults to DataDir()
//	cifar100:PATH   CIFAR-100 binary (fine labels), same forms
//	archive:PATH    a CIFAR-10 or CIFAR-100 binary archive, told apart by
//	                its entries
//	folder:PATH     PATH/train/<class>/*.png|jpg, PATH/test/<class>/...
//	synthetic       generated, see SyntheticConfig; parameters as in
//	                synthetic:train=2000,test=500,mix=0.7
func Open(spec string, opts OpenOptions) (*Dataset, error) {
	kind, arg, _ := strings.Cut(strings.TrimSpace(spec), ":")
	var (
		ds  *Dataset
		err error
	)
	switch strings.ToLower(kind) {
	case "cifar10", "cifar-10":
		ds, err = openCIFAR(cifar10Layout, cifarPath(arg, cifar10Layout))
	case "cifar100", "cifar-100":
		ds, err = openCIFAR(cifar100Layout, cifarPath(arg, cifar100Layout))
	case "archive":
		if arg == "" {
			return nil, fmt.Errorf("open %q: %w: archive needs a path (archive:PATH)", spec, ErrUnknownSpec)
		}
		ds, err = OpenArchive(arg)
	case "folder":
		if arg == "" {
			return nil, fmt.Errorf("open %q: %w: folder needs a path (folder:PATH)", spec, ErrUnknownSpec)
		}
		ds, err = openFolder(arg, opts)
	case "synthetic":
		cfg := DefaultSyntheticConfig()
		if opts.Synthetic != nil {
			cfg = *opts.Synthetic
		}
		if err := cfg.parse(arg); err != nil {
			return nil, fmt.Errorf("open %q: %w", spec, err)
		}
		ds, err = Synthetic(cfg)
	default:
		// A bare path to an existing file is an archive (config files and
		// flags alike: ../shared/data/cifar-10-binary.tar.gz).
		st, serr := os.Stat(spec)
		if serr == nil && !st.IsDir() {
			kind = "archive"
			ds, err = OpenArchive(spec)
			break
		}
		if serr == nil { // a folder: say which kinds read one
			return nil, fmt.Errorf("open %q: %w: a folder, not an archive; give folder:%s (train/<class>/ and test/<class>/ images) or cifar10:%s (CIFAR-10 binary batches)", spec, ErrUnknownSpec, spec, spec)
		}
		// Something spelled like a path is a missing file, not a kind.
		if strings.ContainsRune(kind, os.PathSeparator) || strings.HasSuffix(kind, ".gz") || strings.HasSuffix(kind, ".tar") {
			return nil, fmt.Errorf("open %q: not found: %w (valid specs: %s)", spec, fs.ErrNotExist, Specs)
		}
		return nil, fmt.Errorf("open %q: %w %q; valid specs: %s (or the path of an archive)", spec, ErrUnknownSpec, kind, Specs)
	}
	if err != nil {
		return nil, err
	}
	if ds.Name != "synthetic" && !strings.EqualFold(kind, "archive") {
		ds.Spec = spec // as the user wrote it; synthetic and archive specs are made canonical
	}
	return ds, nil
}

// SpecPath returns the kind of a data set spec and the file or folder it
// reads, as Open resolves them: cifar10 and cifar100 (PATH defaults to
// DataDir()), archive (also a bare path) and folder; synthetic reads none
// (path "").
func SpecPath(spec string) (kind, path string) {
	kind, arg, _ := strings.Cut(strings.TrimSpace(spec), ":")
	switch k := strings.ToLower(kind); k {
	case "cifar10", "cifar-10":
		return "cifar10", cifarPath(arg, cifar10Layout)
	case "cifar100", "cifar-100":
		return "cifar100", cifarPath(arg, cifar100Layout)
	case "archive", "folder":
		return k, arg
	case "synthetic":
		return k, ""
	}
	return "archive", strings.TrimSpace(spec)
}

// cifarPath resolves the PATH of a cifar spec; empty means DataDir().
func cifarPath(arg string, _ *cifarLayout) string {
	if arg == "" {
		return DataDir()
	}
	return filepath.Clean(arg)
}

// Subset returns a copy of the data set whose training split is a
// class-balanced subset of n images (see Split.Subset); the test split is
// shared.
func (d *Dataset) Subset(n int, seed uint64) (*Dataset, error) {
	tr, err := d.Train.Subset(n, seed)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", d.Name, err)
	}
	out := *d
	out.Train = tr
	return &out, nil
}

// Bytes returns the memory held by both splits' pixels and labels.
func (d *Dataset) Bytes() int64 { return d.Train.Bytes() + d.Test.Bytes() }

// parseParams splits "a=1,b=2" into ordered key/value pairs.
func parseParams(s string) ([][2]string, error) {
	var out [][2]string
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("parameter %q: want key=value", kv)
		}
		out = append(out, [2]string{strings.ToLower(k), v})
	}
	return out, nil
}

func parseIntParam(k, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("parameter %s=%q: not an integer", k, v)
	}
	return n, nil
}

func parseFloatParam(k, v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0, fmt.Errorf("parameter %s=%q: not a number", k, v)
	}
	return f, nil
}
