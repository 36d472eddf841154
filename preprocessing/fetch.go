package preprocessing

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// DefaultBaseURL is where the official CIFAR archives are published.
const DefaultBaseURL = "https://www.cs.toronto.edu/~kriz/"

// Archive is a downloadable data set archive.
type Archive struct {
	Name string // data set name: cifar10, cifar100
	File string // file name under the base URL and in the data folder
	MD5  string // published checksum (hex)
}

// Archives lists the archives Fetch knows, by data set name.
var Archives = map[string]Archive{
	"cifar10":  {Name: "cifar10", File: "cifar-10-binary.tar.gz", MD5: "c32a1d4ab5d03f1284b67883e8d87530"},
	"cifar100": {Name: "cifar100", File: "cifar-100-binary.tar.gz", MD5: "03b5dce01913d631647c71ecec9e9cb8"},
}

func archiveNames() string {
	var names []string
	for k := range Archives {
		names = append(names, k)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}

func lookupArchive(name string) (Archive, error) {
	a, ok := Archives[strings.ToLower(name)]
	if !ok {
		return Archive{}, fmt.Errorf("%w %q; known archives: %s", ErrUnknownSpec, name, archiveNames())
	}
	return a, nil
}

// FetchOptions configures Fetch and ImportArchive. The zero value downloads
// into DataDir() from DefaultBaseURL with no retries and no output.
type FetchOptions struct {
	Dir      string       // destination folder; "" means DataDir()
	BaseURL  string       // "" means DefaultBaseURL
	Client   *http.Client // nil means http.DefaultClient
	Progress io.Writer    // progress bar; nil: none
	Log      io.Writer    // notices (resumes, restarts, non-official sums); nil: none
	Retries  int          // further attempts, each resuming, after an interrupted transfer
	Force    bool         // download again even when the file is present
	MD5      string       // expected checksum; "" means the published one
}

// DefaultFetchOptions returns options with 3 retries.
func DefaultFetchOptions() FetchOptions { return FetchOptions{Retries: 3} }

// FetchResult describes the file Fetch or ImportArchive placed.
type FetchResult struct {
	Path     string // the archive in the data folder
	MD5      string // its checksum
	Bytes    int64  // its size
	Official bool   // the checksum is the published one
	Present  bool   // it was already there; nothing was transferred
	Resumed  bool   // a partial transfer was resumed
	Notice   string // a remark the user should see (also written to Log), or ""
}

func (o *FetchOptions) logf(format string, args ...any) string {
	s := fmt.Sprintf(format, args...)
	if o.Log != nil {
		fmt.Fprintln(o.Log, s)
	}
	return s
}

// Fetch downloads the named archive (cifar10, cifar100) into the data
// folder. The transfer goes to FILE.part, resumed with an HTTP Range request
// when a partial file is there (or started over when the server ignores
// Range); only after the MD5 matches is FILE.part renamed to FILE, so a
// partial or corrupt download is never taken for a whole one. A checksum
// mismatch removes FILE.part. A file already present is kept.
func Fetch(ctx context.Context, name string, opts FetchOptions) (*FetchResult, error) {
	a, err := lookupArchive(name)
	if err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	dir := opts.Dir
	if dir == "" {
		dir = DataDir()
	}
	want := a.MD5
	if opts.MD5 != "" {
		want = strings.ToLower(opts.MD5)
	}
	dest := filepath.Join(dir, a.File)
	if !opts.Force && fileExists(dest) {
		sum, size, err := md5File(dest)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", a.Name, err)
		}
		res := &FetchResult{Path: dest, MD5: sum, Bytes: size, Official: sum == a.MD5, Present: true}
		if sum != want {
			res.Notice = opts.logf("notice: %s is already present with MD5 %s, not the published %s; keeping it (use --force to download the official archive again)", dest, sum, want)
		}
		return res, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", a.Name, err)
	}
	base := opts.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	url := strings.TrimSuffix(base, "/") + "/" + a.File
	client := opts.Client
	if client == nil {
		client = http.DefaultClient
	}
	part := dest + ".part"
	res := &FetchResult{Path: dest}
	for attempt := 0; ; attempt++ {
		resumed, err := download(ctx, client, url, part, a.File, &opts)
		res.Resumed = res.Resumed || resumed
		if err == nil {
			break
		}
		if !errors.Is(err, ErrInterrupted) || attempt >= opts.Retries || ctx.Err() != nil {
			if errors.Is(err, ErrInterrupted) {
				return nil, fmt.Errorf("fetch %s: %w; the partial file %s is kept: run the same command again to resume, or give a local copy with --archive FILE", a.Name, err, part)
			}
			return nil, fmt.Errorf("fetch %s: %w", a.Name, err)
		}
		opts.logf("notice: %v; resuming (retry %d of %d)", err, attempt+1, opts.Retries)
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("fetch %s: %w", a.Name, ctx.Err())
		case <-time.After(time.Duration(attempt+1) * 200 * time.Millisecond):
		}
	}
	sum, size, err := md5File(part)
	if err != nil {
		return nil, fmt.Errorf("fetch %s: %w", a.Name, err)
	}
	if sum != want {
		os.Remove(part)
		return nil, fmt.Errorf("fetch %s: %w", a.Name, &ChecksumError{Path: url, Got: sum, Want: want,
			Hint: "the download is corrupt and was removed; run the command again, or give a local copy with --archive FILE"})
	}
	if err := os.Rename(part, dest); err != nil {
		return nil, fmt.Errorf("fetch %s: %w", a.Name, err)
	}
	syncDir(dir)
	res.MD5, res.Bytes, res.Official = sum, size, sum == a.MD5
	return res, nil
}

// download appends the rest of url to part. Errors that a retry can resume
// wrap ErrInterrupted.
func download(ctx context.Context, client *http.Client, url, part, name string, opts *FetchOptions) (resumed bool, err error) {
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return false, err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	have, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false, err
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrInterrupted, err)
	}
	defer resp.Body.Close()
	restart := func() error {
		if err := f.Truncate(0); err != nil {
			return err
		}
		_, err := f.Seek(0, io.SeekStart)
		have = 0
		return err
	}
	total := int64(-1)
	switch {
	case resp.StatusCode == http.StatusPartialContent:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have {
			if err := restart(); err != nil {
				return false, err
			}
			return false, fmt.Errorf("%w: asked for bytes from %d, server sent Content-Range %q; starting over", ErrInterrupted, have, resp.Header.Get("Content-Range"))
		}
		resumed, total = true, size
		opts.logf("notice: resuming %s from byte %d", name, have)
	case resp.StatusCode == http.StatusOK:
		if have > 0 {
			opts.logf("notice: the server does not resume transfers (no Range support); starting %s over", name)
			if err := restart(); err != nil {
				return false, err
			}
		}
		total = resp.ContentLength
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		_, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if ok && size == have {
			return true, nil // the partial file is already whole; the checksum decides
		}
		if err := restart(); err != nil {
			return false, err
		}
		return false, fmt.Errorf("%w: server refused to resume from byte %d (%s); starting over", ErrInterrupted, have, resp.Status)
	case resp.StatusCode >= 500:
		return false, fmt.Errorf("%w: GET %s: %s", ErrInterrupted, url, resp.Status)
	default:
		return false, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var bar *progressBar
	if opts.Progress != nil {
		bar = newProgressBar(opts.Progress, name, have, total)
	}
	var w io.Writer = f
	if bar != nil {
		w = io.MultiWriter(f, bar)
	}
	n, err := io.CopyBuffer(w, resp.Body, make([]byte, 256<<10))
	bar.finish()
	got := have + n
	of := "?"
	if total >= 0 {
		of = strconv.FormatInt(total, 10)
	}
	if err != nil {
		return resumed, fmt.Errorf("%w after %d of %s bytes: %v", ErrInterrupted, got, of, err)
	}
	if total >= 0 && got != total {
		return resumed, fmt.Errorf("%w: the transfer ended after %d of %s bytes", ErrInterrupted, got, of)
	}
	return resumed, f.Sync()
}

// parseContentRange parses "bytes START-END/TOTAL" or "bytes */TOTAL"
// (START -1); TOTAL "*" gives -1.
func parseContentRange(s string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSpace(s), "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		t, err := strconv.ParseInt(tot, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		total = t
	}
	if rng == "*" {
		return -1, total, true
	}
	a, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	st, err := strconv.ParseInt(a, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return st, total, true
}

// ImportArchive places a local copy of the named archive (src) in the data
// folder instead of downloading it: it is copied to FILE.part, checked to be
// a complete binary CIFAR archive of that kind, and renamed. A checksum other
// than the published one is accepted with a notice (Log and
// FetchResult.Notice), not silently.
func ImportArchive(name, src string, opts FetchOptions) (*FetchResult, error) {
	a, err := lookupArchive(name)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	lay := cifar10Layout
	if a.Name == "cifar100" {
		lay = cifar100Layout
	}
	dir := opts.Dir
	if dir == "" {
		dir = DataDir()
	}
	dest := filepath.Join(dir, a.File)
	in, err := os.Open(src)
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", a.Name, err)
	}
	defer in.Close()
	sfi, err := in.Stat()
	if err != nil {
		return nil, fmt.Errorf("import %s: %w", a.Name, err)
	}
	if !sfi.Mode().IsRegular() {
		return nil, fmt.Errorf("import %s: %s is not a regular file; give the .tar.gz archive", a.Name, src)
	}
	if err := checkArchive(lay, src); err != nil {
		return nil, fmt.Errorf("import %s: %w", a.Name, err)
	}
	var sum string
	if dfi, err := os.Stat(dest); err == nil && os.SameFile(sfi, dfi) {
		if sum, _, err = md5File(dest); err != nil {
			return nil, fmt.Errorf("import %s: %w", a.Name, err)
		}
	} else {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("import %s: %w", a.Name, err)
		}
		part := dest + ".part"
		sum, err = copyFile(part, in, sfi.Size(), a.File, opts.Progress)
		if err != nil {
			os.Remove(part)
			return nil, fmt.Errorf("import %s: copy %s to %s: %w", a.Name, src, part, err)
		}
		if err := os.Rename(part, dest); err != nil {
			return nil, fmt.Errorf("import %s: %w", a.Name, err)
		}
		syncDir(dir)
	}
	res := &FetchResult{Path: dest, MD5: sum, Bytes: sfi.Size(), Official: sum == a.MD5}
	if !res.Official {
		res.Notice = opts.logf("notice: %s has MD5 %s, not the published %s of the official %s; accepted as a local copy "+
			"(a re-encoded copy, such as one made through JPEG, has pixels close to but not identical with the official ones)",
			src, sum, a.MD5, a.File)
	}
	return res, nil
}

// checkArchive streams an archive and checks that it holds every file of
// the layout with a whole number of records.
func checkArchive(lay *cifarLayout, p string) error {
	seen := map[string]bool{}
	rs := int64(lay.recordSize)
	err := walkTar(p, func(name string, size int64, r io.Reader) error {
		base := filepath.Base(name)
		if slices.Contains(lay.trainFiles, base) || slices.Contains(lay.testFiles, base) {
			if size%rs != 0 || size == 0 {
				return &FormatError{Entry: name, Record: int(size / rs), Offset: size - size%rs,
					Err:  fmt.Errorf("file length %d is not a positive multiple of the %d-byte record", size, rs),
					Hint: "not a " + lay.name + " binary archive or truncated"}
			}
			seen[base] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, f := range append(slices.Clone(lay.trainFiles), lay.testFiles...) {
		if !seen[f] {
			return formatErr(p, "", -1, -1, "give the "+lay.archive+" archive (binary version)", "no %s in the archive: not a complete %s binary archive", f, lay.name)
		}
	}
	return nil
}

func copyFile(dst string, src io.Reader, size int64, name string, progress io.Writer) (string, error) {
	f, err := os.Create(dst)
	if err != nil {
		return "", err
	}
	h := md5.New()
	var w io.Writer = io.MultiWriter(f, h)
	var bar *progressBar
	if progress != nil {
		bar = newProgressBar(progress, name, 0, size)
		w = io.MultiWriter(f, h, bar)
	}
	_, err = io.CopyBuffer(w, src, make([]byte, 1<<20))
	bar.finish()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return hex.EncodeToString(h.Sum(nil)), err
}

func md5File(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := md5.New()
	n, err := io.CopyBuffer(h, f, make([]byte, 1<<20))
	if err != nil {
		return "", 0, fmt.Errorf("checksum %s: %w", p, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
