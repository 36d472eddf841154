package preprocessing

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"github.com/critlab/critlab/internal/atomicfile"
)

// DeficitCache applies deficits to splits once. Results are memoised on the
// source split (in memory, for the split's lifetime) keyed by the deficit's
// canonical spec and, for seeded deficits, the seed. With Dir set, image
// deficits (blur, gauss, noise) are also stored in Dir, keyed by a SHA-256 of
// the split's content, the spec and the seed, and written atomically; a
// missing, foreign or damaged cache file is recomputed and replaced.
type DeficitCache struct {
	Dir     string // on-disk cache folder; "" keeps results in memory only
	Workers int    // goroutines computing a deficit; 0 means GOMAXPROCS
}

type derivedEntry struct {
	once    sync.Once
	split   *Split
	err     error
	images  bool   // holds a copy of the pixels
	lastUse uint64 // Split.useClock at the last Apply
}

// MaxMemoImageDeficits is how many image deficit results (each a copy of
// the pixels: 154 MB for CIFAR-10) stay memoised per split; the least
// recently used is dropped beyond it (holders keep theirs valid; asking again
// recomputes it, or reads it from a DeficitCache folder). Label deficits
// share the pixels and are all kept.
const MaxMemoImageDeficits = 3

// ApplyDeficit returns split under deficit d for the seed, computed once per
// (split, deficit, seed) and memoised in memory (see DeficitCache). The
// result shares storage with split where d leaves it unchanged: label
// deficits share Images, image deficits share Labels, none and sham return
// split itself. Apply deficits to training splits only.
func ApplyDeficit(split *Split, d Deficit, seed uint64) (*Split, error) {
	return DeficitCache{}.Apply(split, d, seed)
}

// Apply is ApplyDeficit with the cache's settings.
func (c DeficitCache) Apply(src *Split, d Deficit, seed uint64) (*Split, error) {
	if err := d.Validate(); err != nil {
		return nil, fmt.Errorf("apply deficit: %w", err)
	}
	if d.Identity() {
		return src, nil
	}
	key := d.String()
	if d.Seeded() {
		key += "@" + strconv.FormatUint(seed, 10)
	}
	src.mu.Lock()
	if src.derived == nil {
		src.derived = map[string]*derivedEntry{}
	}
	e := src.derived[key]
	if e == nil {
		e = &derivedEntry{images: d.ChangesImages()}
		src.derived[key] = e
		if e.images {
			src.evictImageDeficits(key)
		}
	}
	src.useClock++
	e.lastUse = src.useClock
	src.mu.Unlock()
	e.once.Do(func() { e.split, e.err = c.compute(src, d, seed) })
	if e.err != nil {
		return nil, fmt.Errorf("apply deficit %s: %w", d, e.err)
	}
	return e.split, nil
}

// evictImageDeficits drops the least recently used image deficit results
// beyond MaxMemoImageDeficits, sparing keep. s.mu is held.
func (s *Split) evictImageDeficits(keep string) {
	for {
		n, oldest, oldestKey := 0, uint64(0), ""
		for k, e := range s.derived {
			if !e.images {
				continue
			}
			n++
			if k != keep && (oldestKey == "" || e.lastUse < oldest) {
				oldest, oldestKey = e.lastUse, k
			}
		}
		if n <= MaxMemoImageDeficits || oldestKey == "" {
			return
		}
		delete(s.derived, oldestKey)
	}
}

const (
	cacheMagic  = "CRLBDEF1"
	cacheHeader = 8 + 32 + 4*4
)

func (c DeficitCache) compute(src *Split, d Deficit, seed uint64) (*Split, error) {
	out := &Split{Images: src.Images, Labels: src.Labels, N: src.N, C: src.C, H: src.H, W: src.W,
		Classes: src.Classes, base: src.root()}
	if d.ChangesLabels() {
		out.Labels = d.MapLabels(src.Labels, src.Classes, seed)
	}
	if !d.ChangesImages() {
		return out, nil
	}
	onDisk := c.Dir != "" && d.Kind != "vflip"
	var path string
	var key [32]byte
	if onDisk {
		key = cacheKey(src, d, seed)
		path = filepath.Join(c.Dir, fmt.Sprintf("%s-%x.bin", d.Kind, key[:12]))
		if imgs, ok := readDeficitCache(path, key, src); ok {
			out.Images = imgs
			return out, nil
		}
	}
	buf := make([]byte, cacheHeader+len(src.Images))
	out.Images = buf[cacheHeader:]
	var stats Stats
	if d.Kind == "noise" {
		stats = src.BaseStats()
	}
	workers := c.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var once sync.Once
	var firstErr error
	parallelFor(src.N, workers, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			if err := d.ApplyImage(out.Image(i), src.Image(i), src.C, src.H, src.W, i, seed, stats); err != nil {
				once.Do(func() { firstErr = fmt.Errorf("sample %d: %w", i, err) })
				return
			}
		}
	})
	if firstErr != nil {
		return nil, firstErr
	}
	if onDisk {
		copy(buf, cacheMagic)
		copy(buf[8:], key[:])
		for i, v := range []int{src.N, src.C, src.H, src.W} {
			binary.LittleEndian.PutUint32(buf[40+4*i:], uint32(v))
		}
		if err := os.MkdirAll(c.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("deficit cache: %w", err)
		}
		if err := atomicfile.Write(path, buf); err != nil {
			return nil, fmt.Errorf("deficit cache: %w (set no cache folder to keep results in memory only)", err)
		}
	}
	return out, nil
}

func cacheKey(src *Split, d Deficit, seed uint64) [32]byte {
	h := sha256.New()
	ch := src.ContentHash()
	h.Write(ch[:])
	h.Write([]byte("\x00" + d.String() + "\x00"))
	if d.Seeded() {
		h.Write([]byte(strconv.FormatUint(seed, 10)))
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// readDeficitCache returns the cached images when path holds a complete
// cache file for key and src's shape.
func readDeficitCache(path string, key [32]byte, src *Split) ([]uint8, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	if len(b) != cacheHeader+len(src.Images) || string(b[:8]) != cacheMagic || !bytes.Equal(b[8:40], key[:]) {
		return nil, false
	}
	for i, v := range []int{src.N, src.C, src.H, src.W} {
		if binary.LittleEndian.Uint32(b[40+4*i:]) != uint32(v) {
			return nil, false
		}
	}
	return b[cacheHeader:], true
}
