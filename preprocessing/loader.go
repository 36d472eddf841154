package preprocessing

import (
	"iter"
	"math/rand/v2"
	"sync"
)

// LoaderConfig configures a Loader. The zero value is not valid (BatchSize
// must be set); DefaultLoaderConfig gives the training recipe.
type LoaderConfig struct {
	BatchSize int    // images per batch; must be > 0
	DropLast  bool   // drop the last partial batch (fixed shapes in training)
	Shuffle   bool   // visit samples in a random order, a pure function of (Seed, Epoch)
	Seed      uint64 // seeds the order and every augmentation choice
	Epoch     int    // epoch index, from 0: selects the order and augmentations
	Workers   int    // goroutines filling batches; <= 0 means 1
	Prefetch  int    // batches prepared ahead of the consumer; <= 0 means 2
	Augment   AugmentConfig
}

// DefaultLoaderConfig returns batches of 128, drop-last, shuffled, with
// DefaultAugmentConfig, 1 worker and 4 batches of prefetch. One worker
// fills a few hundred thousand 32×32 images a second, far ahead of a
// training step; more workers only help for much larger images.
func DefaultLoaderConfig() LoaderConfig {
	return LoaderConfig{BatchSize: 128, DropLast: true, Shuffle: true, Workers: 1, Prefetch: 4,
		Augment: DefaultAugmentConfig()}
}

// Validate checks the fields' ranges.
func (c LoaderConfig) Validate() error {
	if c.BatchSize <= 0 {
		return configErr("loader: batch size %d: must be positive", c.BatchSize)
	}
	if c.Epoch < 0 {
		return configErr("loader: epoch %d: must be >= 0", c.Epoch)
	}
	return c.Augment.Validate()
}

// WithStats returns c with normalisation statistics set to st (typically
// the clean training split's Stats, for evaluation loaders).
func (c LoaderConfig) WithStats(st Stats) LoaderConfig {
	c.Augment.Mean, c.Augment.Std = st.Mean, st.Std
	return c
}

// Batch is a batch of float32 NCHW images and int64 labels, ready to feed to
// a model.
//
// Ownership: a batch returned by Loader.Next belongs to the loader. It stays
// valid until the next call to Next (or Close), when the loader takes it
// back and refills it; copy what must outlive that (Clone).
type Batch struct {
	Images     []float32 // N*C*H*W values, sample j at [j*C*H*W, (j+1)*C*H*W)
	Labels     []int64   // N labels
	Indices    []int     // the samples' indices in the split
	N, C, H, W int
	Index      int // batch number within the epoch, from 0

	done chan struct{}
}

// Clone returns a copy of b that the caller owns.
func (b *Batch) Clone() *Batch {
	return &Batch{Images: append([]float32(nil), b.Images...), Labels: append([]int64(nil), b.Labels...),
		Indices: append([]int(nil), b.Indices...), N: b.N, C: b.C, H: b.H, W: b.W, Index: b.Index}
}

// Loader produces the batches of one epoch of a split. A bounded pool of
// worker goroutines fills up to Prefetch batches ahead of the consumer, in
// reusable buffers. Every batch is a pure function of (split, config, batch
// index): the order depends on (Seed, Epoch) only and each sample's crop and
// flip on (Seed, Epoch, sample index), so batches are bit-identical whatever
// Workers and Prefetch are.
//
// Next is for one consumer goroutine. Close stops the workers; it is safe
// to call more than once and from another goroutine, and needed only when
// the epoch is left unfinished (a finished epoch stops its goroutines).
type Loader struct {
	split *Split
	cfg   LoaderConfig
	t     *transform
	order []int
	nb    int
	nbuf  int

	free  chan *Batch
	jobs  chan *Batch
	ready chan *Batch
	quit  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
	prev  *Batch
}

// NewLoader starts the workers for one epoch of split.
func NewLoader(split *Split, cfg LoaderConfig) (*Loader, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	t, err := newTransform(split, cfg.Augment)
	if err != nil {
		return nil, err
	}
	workers := max(cfg.Workers, 1)
	prefetch := cfg.Prefetch
	if prefetch <= 0 {
		prefetch = 2
	}
	l := &Loader{split: split, cfg: cfg, t: t, order: EpochOrder(split.N, cfg.Shuffle, cfg.Seed, cfg.Epoch)}
	l.nb = split.N / cfg.BatchSize
	if !cfg.DropLast && split.N%cfg.BatchSize != 0 {
		l.nb++
	}
	l.nbuf = prefetch + 1
	l.free = make(chan *Batch, l.nbuf)
	l.jobs = make(chan *Batch, l.nbuf)
	l.ready = make(chan *Batch, l.nbuf)
	l.quit = make(chan struct{})
	l.wg.Add(1 + workers)
	go l.dispatch()
	for i := 0; i < workers; i++ {
		go l.work()
	}
	return l, nil
}

// NewEvalLoader returns a loader for evaluation: samples in order, no
// augmentation, the last partial batch kept. Normalisation follows
// cfg.Augment; with Normalize set, Mean and Std must be given (use the
// training split's statistics: cfg.WithStats(train.BaseStats())).
func NewEvalLoader(split *Split, cfg LoaderConfig) (*Loader, error) {
	cfg.Shuffle, cfg.DropLast = false, false
	cfg.Augment.Crop, cfg.Augment.HFlip = false, false
	if cfg.Augment.Normalize && cfg.Augment.Mean == nil {
		return nil, configErr("eval loader: normalisation needs the training statistics: set Augment.Mean and Std (cfg.WithStats(train.BaseStats()))")
	}
	return NewLoader(split, cfg)
}

// EpochOrder returns the order samples are visited in an epoch: 0..n-1, or
// with shuffle a random permutation that is a pure function of (seed, epoch).
func EpochOrder(n int, shuffle bool, seed uint64, epoch int) []int {
	if !shuffle {
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		return order
	}
	return permutation(newPCG(seed, streamShuffle, epoch, 0), n)
}

// Len returns the number of batches in the epoch.
func (l *Loader) Len() int { return l.nb }

// Next returns the next batch, or false at the end of the epoch or after
// Close. The previous batch is taken back (see Batch).
func (l *Loader) Next() (*Batch, bool) {
	if l.prev != nil {
		l.free <- l.prev // never blocks: the channel holds every buffer
		l.prev = nil
	}
	select {
	case <-l.quit: // checked first: after Close, Next never returns a batch
		return nil, false
	default:
	}
	select {
	case <-l.quit:
		return nil, false
	case b, ok := <-l.ready:
		if !ok {
			return nil, false
		}
		select {
		case <-b.done:
		case <-l.quit:
			return nil, false
		}
		l.prev = b
		return b, true
	}
}

// All returns an iterator over the remaining batches; leaving the loop
// early closes the loader.
func (l *Loader) All() iter.Seq[*Batch] {
	return func(yield func(*Batch) bool) {
		for {
			b, ok := l.Next()
			if !ok {
				return
			}
			if !yield(b) {
				l.Close()
				return
			}
		}
	}
}

// Close stops the workers and waits for them to exit.
func (l *Loader) Close() {
	l.once.Do(func() { close(l.quit) })
	l.wg.Wait()
}

func (l *Loader) dispatch() {
	defer l.wg.Done()
	defer close(l.ready)
	defer close(l.jobs)
	allocated := 0
	bs := l.cfg.BatchSize
	for k := 0; k < l.nb; k++ {
		var b *Batch
		select {
		case b = <-l.free:
		default:
			if allocated < l.nbuf {
				allocated++
				b = l.newBatch()
			} else {
				select {
				case b = <-l.free:
				case <-l.quit:
					return
				}
			}
		}
		lo, hi := k*bs, min((k+1)*bs, l.split.N)
		b.Index, b.N = k, hi-lo
		b.Indices = append(b.Indices[:0], l.order[lo:hi]...)
		select {
		case l.jobs <- b:
		case <-l.quit:
			return
		}
		select {
		case l.ready <- b:
		case <-l.quit:
			return
		}
	}
}

func (l *Loader) newBatch() *Batch {
	s, bs := l.split, l.cfg.BatchSize
	return &Batch{Images: make([]float32, bs*s.SampleSize()), Labels: make([]int64, bs),
		Indices: make([]int, 0, bs), C: s.C, H: s.H, W: s.W, done: make(chan struct{}, 1)}
}

func (l *Loader) work() {
	defer l.wg.Done()
	var p rand.PCG
	for {
		select {
		case <-l.quit:
			return
		case b, ok := <-l.jobs:
			if !ok {
				return
			}
			l.fill(b, &p)
			b.done <- struct{}{}
		}
	}
}

func (l *Loader) fill(b *Batch, p *rand.PCG) {
	s := l.split
	sz := s.SampleSize()
	b.Images = b.Images[:b.N*sz]
	b.Labels = b.Labels[:b.N]
	for j, idx := range b.Indices {
		dx, dy, flip := l.t.draw(p, l.cfg.Seed, l.cfg.Epoch, idx)
		l.t.apply(b.Images[j*sz:(j+1)*sz], s.Image(idx), dx, dy, flip)
		b.Labels[j] = int64(s.Labels[idx])
	}
}
