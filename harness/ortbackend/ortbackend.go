// Package ortbackend is the runs.Backend that trains with ONNX Runtime: it
// wires the run loop's interfaces (runs/backend.go) to harness, models/zoo,
// models/graph and preprocessing. It lives beside harness, not under runs,
// because it needs cgo: runs/... (the loop, configs, sweeps, reports and
// the fake backend of runstest) builds and tests without it.
package ortbackend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/critlab/critlab/harness"
	"github.com/critlab/critlab/harness/device"
	"github.com/critlab/critlab/models/graph"
	pb "github.com/critlab/critlab/models/onnxpb"
	"github.com/critlab/critlab/models/zoo"
	"github.com/critlab/critlab/preprocessing"
	"github.com/critlab/critlab/runs"
)

// Options configure the ONNX Runtime backend.
type Options struct {
	// Library is the ONNX Runtime library; empty means harness's search
	// ($CRITLAB_ORT_LIB, then .deps/onnxruntime).
	Library string
	// MemArena and Spin are harness.RuntimeOptions's.
	MemArena, Spin bool
}

// New returns the backend that trains with ONNX Runtime. It keeps the data
// sets it opens (and their subsets and cached deficits) for the runs that
// follow, so the runs of a sweep share them.
func New(o Options) runs.Backend {
	return &ortBackend{o: o, sets: map[string]*dataEntry{}, subsets: map[subsetKey]*preprocessing.Dataset{}, devices: map[string]bool{}}
}

type ortBackend struct {
	o       Options
	mu      sync.Mutex
	sets    map[string]*dataEntry
	subsets map[subsetKey]*preprocessing.Dataset
	devices map[string]bool // CUDA devices checkDevice found usable
}

type dataEntry struct {
	once sync.Once
	ds   *preprocessing.Dataset
	err  error
}

type subsetKey struct {
	spec string
	n    int
	seed uint64
}

// dataset opens a data set once per spec, even when runs ask at once.
func (b *ortBackend) dataset(spec string) (*preprocessing.Dataset, error) {
	b.mu.Lock()
	e, ok := b.sets[spec]
	if !ok {
		e = &dataEntry{}
		b.sets[spec] = e
	}
	b.mu.Unlock()
	e.once.Do(func() { e.ds, e.err = preprocessing.Open(spec, preprocessing.OpenOptions{}) })
	return e.ds, e.err
}

// trainSet returns the data set of cfg, reduced to its training subset.
func (b *ortBackend) trainSet(cfg runs.Config) (*preprocessing.Dataset, error) {
	ds, err := b.dataset(cfg.Data)
	if err != nil {
		return nil, err
	}
	if cfg.TrainSubset == 0 || cfg.TrainSubset >= ds.Train.N {
		return ds, nil
	}
	key := subsetKey{cfg.Data, cfg.TrainSubset, uint64(cfg.Seed)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if sub, ok := b.subsets[key]; ok {
		return sub, nil
	}
	sub, err := ds.Subset(cfg.TrainSubset, uint64(cfg.Seed))
	if err != nil {
		return nil, err
	}
	b.subsets[key] = sub
	return sub, nil
}

// isModelFile reports whether a model setting names a file rather than a
// zoo model.
func isModelFile(model string) bool {
	if strings.HasSuffix(strings.ToLower(model), ".onnx") || strings.ContainsRune(model, os.PathSeparator) {
		return true
	}
	return !slices.Contains(zoo.Names(), model)
}

// model builds or loads the forward graph for cfg and data set ds.
func (b *ortBackend) model(cfg runs.Config, ds *preprocessing.Dataset) (*pb.ModelProto, error) {
	if isModelFile(cfg.Model) {
		m, err := graph.Load(cfg.Model)
		if err != nil {
			if !strings.HasSuffix(strings.ToLower(cfg.Model), ".onnx") {
				return nil, fmt.Errorf("model %q is neither a zoo model (%s) nor a readable .onnx file: %w", cfg.Model, strings.Join(zoo.Names(), ", "), err)
			}
			return nil, fmt.Errorf("model: %w", err)
		}
		if err := graph.CheckExport(m); err != nil {
			return nil, fmt.Errorf("model %s: %w", cfg.Model, err)
		}
		return m, nil
	}
	if ds.Train.H != ds.Train.W {
		return nil, fmt.Errorf("zoo model %s takes square images; data set %s has %d×%d", cfg.Model, cfg.Data, ds.Train.H, ds.Train.W)
	}
	return zoo.Build(cfg.Model, zoo.Options{Width: cfg.Width, Seed: uint64(cfg.Seed), Classes: ds.Train.Classes, ImageSize: ds.Train.H})
}

// Check opens the model and the data set and checks that they fit, and
// that ONNX Runtime can use a CUDA device (once per device).
func (b *ortBackend) Check(cfg runs.Config) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", runs.ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if err := b.checkDevice(cfg); err != nil {
		return err
	}
	deficits := make([]preprocessing.Deficit, len(cfg.Deficits))
	for i, w := range cfg.Deficits {
		d, err := preprocessing.ParseDeficit(w.Deficit)
		if err != nil {
			return bad("deficits[%d]: %v", i, err) // Validate, run first, lists the valid ones
		}
		deficits[i] = d
	}
	ds, err := b.dataset(cfg.Data)
	if err != nil {
		return bad("data %q: %v", cfg.Data, err)
	}
	for i, d := range deficits {
		if err := d.FitsImages(ds.Train.H, ds.Train.W); err != nil {
			return bad("deficits[%d] %s: %v", i, cfg.Deficits[i].Deficit, err)
		}
	}
	n := ds.Train.N
	if cfg.TrainSubset > n {
		return bad("subset %d is larger than the %d training images of %s", cfg.TrainSubset, n, cfg.Data)
	}
	if cfg.TrainSubset > 0 {
		n = cfg.TrainSubset
	}
	if cfg.BatchSize > n {
		return bad("batch_size %d is larger than the %d training images of %s: no full batch to train on (lower batch_size)", cfg.BatchSize, n, cfg.Data)
	}
	if cfg.Fisher.Images > n {
		return bad("fisher.images %d is more than the %d training images of %s", cfg.Fisher.Images, n, cfg.Data)
	}
	m, err := b.model(cfg, ds)
	if err != nil {
		return bad("%v", err)
	}
	if err := fits(m, ds); err != nil {
		return bad("model %s does not take data set %s: %v", cfg.Model, cfg.Data, err)
	}
	return nil
}

// checkDevice opens the runtime of a CUDA config once, which loads the CUDA
// provider (see harness.Open): a set-up without one is refused before any
// data is read or run directory written.
func (b *ortBackend) checkDevice(cfg runs.Config) error {
	if dev, err := device.Parse(cfg.Device); err != nil || dev.Kind != "cuda" {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.devices[cfg.Device] {
		return nil
	}
	rt, err := harness.Open(harness.RuntimeOptions{Library: b.o.Library, Device: cfg.Device, Threads: 1, CUDA: cfg.CUDA})
	if err != nil {
		return err
	}
	b.devices[cfg.Device] = true
	return rt.Close()
}

// fits checks the model's input (N×C×H×W) and output (N×classes) against
// the data set; symbolic dimensions fit anything.
func fits(m *pb.ModelProto, ds *preprocessing.Dataset) error {
	g := m.GetGraph()
	init := map[string]bool{}
	for _, x := range g.GetInitializer() {
		init[x.GetName()] = true
	}
	var in *pb.ValueInfoProto
	for _, v := range g.GetInput() {
		if !init[v.GetName()] {
			in = v
			break
		}
	}
	if in == nil || len(g.GetOutput()) == 0 {
		return errors.New("model has no image input or no output")
	}
	dims, _ := graph.Dims(in)
	want := []int64{-1, int64(ds.Train.C), int64(ds.Train.H), int64(ds.Train.W)}
	if len(dims) != 4 {
		return fmt.Errorf("input %s has shape %v, want N×C×H×W", in.GetName(), dims)
	}
	for i := 1; i < 4; i++ {
		if dims[i] > 0 && dims[i] != want[i] {
			return fmt.Errorf("input %s has shape %v, images are %d×%d×%d", in.GetName(), dims, ds.Train.C, ds.Train.H, ds.Train.W)
		}
	}
	out, _ := graph.Dims(g.GetOutput()[0])
	if len(out) == 2 && out[1] > 0 && out[1] != int64(ds.Train.Classes) {
		return fmt.Errorf("output has %d classes, data set %d", out[1], ds.Train.Classes)
	}
	return nil
}

// Open builds the runtime, model, trainer and data of a run.
func (b *ortBackend) Open(ctx context.Context, cfg runs.Config) (runs.Trainer, runs.Data, error) {
	ds, err := b.trainSet(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("data: %w", err)
	}
	forward, err := b.model(cfg, ds)
	if err != nil {
		return nil, nil, err
	}
	rt, err := harness.Open(harness.RuntimeOptions{Library: b.o.Library, Device: cfg.Device, Threads: cfg.Threads, MemArena: b.o.MemArena, Spin: b.o.Spin, CUDA: cfg.CUDA})
	if err != nil {
		return nil, nil, err
	}
	tr, err := harness.NewTrainer(rt, forward, harness.TrainerOptions{
		BatchSize: cfg.BatchSize,
		Compile:   cfg.CompileOptions(),
	})
	if err != nil {
		rt.Close()
		return nil, nil, err
	}
	loader := preprocessing.LoaderConfig{
		BatchSize: cfg.BatchSize,
		Seed:      uint64(cfg.Seed),
		Workers:   max(cfg.Workers, 1),
		Augment: preprocessing.AugmentConfig{
			Crop: cfg.Augment.Crop, Pad: 4, HFlip: cfg.Augment.HFlip, Normalize: true,
		},
	}.WithStats(ds.Train.BaseStats())
	return &ortTrainer{Trainer: tr, rt: rt, seed: uint64(cfg.Seed)}, &ortData{cfg: cfg, ds: ds, loader: loader}, nil
}

// ortTrainer adapts harness.Trainer to runs.Trainer and runs.FisherTrainer
// and owns its runtime.
type ortTrainer struct {
	*harness.Trainer
	rt   *harness.Runtime
	seed uint64 // the run's seed
}

var (
	_ runs.FisherTrainer = (*ortTrainer)(nil)
	_ runs.EpochSeeder   = (*ortTrainer)(nil)
)

// dropoutStream keeps the dropout masks' random streams apart from the
// other users of the run's seed; epoch E draws from stream dropoutStream+E.
const dropoutStream = 0x64726f706f757400 // "dropout"

// SeedEpoch restarts the dropout masks at epoch's stream of the run's seed.
func (t *ortTrainer) SeedEpoch(epoch int) {
	t.SeedDropout(t.seed, dropoutStream+uint64(epoch))
}

// fisherStream keeps the Fisher labels' random stream apart from the other
// users of the run's seed.
const fisherStream = 0x66697368657200 // "fisher"

// Fisher estimates Tr F with labels drawn from the model as a function of
// the run's seed and the image's index: the same draws (relative to the
// model's predictive distribution) every epoch, so epochs compare on
// common random numbers.
func (t *ortTrainer) Fisher(next runs.Batches, samples int) (runs.FisherResult, error) {
	r, err := t.Trainer.Fisher(next, samples, t.seed^fisherStream)
	if err != nil {
		return runs.FisherResult{}, err
	}
	res := runs.FisherResult{Total: r.Total, Layers: make(map[string]float64, len(r.Layers))}
	for _, l := range r.Layers {
		res.Layers[l.Layer] = l.Trace
	}
	return res, nil
}

func (t *ortTrainer) Evaluate(next runs.Batches) (runs.EvalResult, error) {
	r, err := t.Trainer.Evaluate(next)
	return runs.EvalResult{Loss: r.Loss, Accuracy: r.Accuracy, N: r.N}, err
}

// LoadCheckpoint marks a checkpoint that fails its checksum as
// runs.ErrCorrupt (the loop then names an earlier checkpoint to fall back
// to); the message stays harness's.
func (t *ortTrainer) LoadCheckpoint(path string) (map[string]string, error) {
	meta, err := t.Trainer.LoadCheckpoint(path)
	if errors.Is(err, harness.ErrCorrupt) {
		err = corruptError{err}
	}
	return meta, err
}

type corruptError struct{ error }

func (e corruptError) Is(target error) bool { return target == runs.ErrCorrupt }
func (e corruptError) Unwrap() error        { return e.error }

func (t *ortTrainer) Close() error {
	return errors.Join(t.Trainer.Close(), t.rt.Close())
}

// ortData serves a run's batches from preprocessing loaders.
type ortData struct {
	cfg    runs.Config
	ds     *preprocessing.Dataset
	loader preprocessing.LoaderConfig
}

func (d *ortData) TrainSize() int { return d.ds.Train.N }

func (d *ortData) Checksums() (train, test [32]byte) {
	return d.ds.Train.ContentHash(), d.ds.Test.ContentHash()
}

func (t *ortTrainer) RuntimeInfo() (ortVersion, provider string) {
	return t.rt.Version(), t.rt.Device().String()
}

// split returns the training split under a deficit (computed once per
// split and deficit, then memoised by preprocessing).
func (d *ortData) split(deficit string) (*preprocessing.Split, error) {
	if deficit == "" {
		return d.ds.Train, nil
	}
	def, err := preprocessing.ParseDeficit(deficit)
	if err != nil {
		return nil, err
	}
	return preprocessing.ApplyDeficit(d.ds.Train, def, uint64(d.cfg.Seed))
}

func (d *ortData) Train(epoch int, deficit string) (runs.Batches, func(), error) {
	split, err := d.split(deficit)
	if err != nil {
		return nil, nil, err
	}
	cfg := d.loader
	cfg.Epoch, cfg.Shuffle, cfg.DropLast = epoch, true, true
	l, err := preprocessing.NewLoader(split, cfg)
	if err != nil {
		return nil, nil, err
	}
	return loaderBatches(l, -1), l.Close, nil
}

func (d *ortData) Test() (runs.Batches, func(), error) {
	l, err := preprocessing.NewEvalLoader(d.ds.Test, d.loader)
	if err != nil {
		return nil, nil, err
	}
	return loaderBatches(l, -1), l.Close, nil
}

func (d *ortData) Probe(n int) (runs.Batches, func(), error) {
	split, err := d.split("")
	if err != nil {
		return nil, nil, err
	}
	l, err := preprocessing.NewEvalLoader(split, d.loader)
	if err != nil {
		return nil, nil, err
	}
	return loaderBatches(l, n), l.Close, nil
}

// loaderBatches yields a loader's batches, at most limit images (all when
// limit < 0).
func loaderBatches(l *preprocessing.Loader, limit int) runs.Batches {
	seen := 0
	return func() ([]float32, []int64, bool, error) {
		if limit >= 0 && seen >= limit {
			return nil, nil, false, nil
		}
		b, ok := l.Next()
		if !ok {
			return nil, nil, false, nil
		}
		n := len(b.Labels)
		if limit >= 0 && seen+n > limit {
			n = limit - seen
		}
		seen += n
		return b.Images[:n*b.C*b.H*b.W], b.Labels[:n], true, nil
	}
}
