// Package preprocessing owns critlab's data: data sets, deficits,
// augmentation and the batch pipeline that feeds the harness.
//
// # Data sets
//
// Open reads a data set from a spec (see Specs): CIFAR-10 and CIFAR-100 in
// the official binary layout (the .tar.gz archive is streamed, never
// unpacked to disk; the folder it unpacks to works too), image folders
// (root/train/<class>/*.png|jpg, root/test/<class>/...), or a generated
// synthetic set whose classes differ partly in fine texture and partly in
// coarse structure (SyntheticConfig). A Dataset holds a training and a test
// Split: uint8 images, channel-major (CHW), in one contiguous slice, and int
// labels. Fetch downloads the CIFAR archives (resumable, MD5-checked, placed
// atomically); ImportArchive takes a local copy instead.
//
// # Deficits
//
// A Deficit (ParseDeficit: blur, gauss, vflip, labelperm, labelshuffle,
// noise, sham, none) is a pure function of (image, label, sample index, seed) and
// its parameters. ApplyDeficit computes a deficit over a whole training
// split once and memoises it on the split, so epochs reuse it; a
// DeficitCache with a folder also keeps image deficits on disk across runs.
//
// # Batches
//
// NewLoader produces one epoch of float32 NCHW batches with int64 labels,
// filled by a bounded pool of goroutines a few batches ahead of the
// consumer. The epoch order is a pure function of (seed, epoch) and each
// sample's random crop and flip of (seed, epoch, sample index), so the
// batches are bit-identical for a seed whatever the worker count, and a
// resumed run sees the same batches as an uninterrupted one. Batches are
// reused: one returned by Next is valid until the following Next.
// NewEvalLoader iterates in order, without augmentation, keeping the last
// partial batch.
//
//	ds, err := preprocessing.Open("cifar10:data", preprocessing.OpenOptions{})
//	blur := preprocessing.MustParseDeficit("blur:size=8")
//	train, err := preprocessing.ApplyDeficit(ds.Train, blur, seed) // once
//	cfg := preprocessing.DefaultLoaderConfig().WithStats(ds.Train.Stats())
//	for epoch := 0; epoch < epochs; epoch++ {
//		cfg.Epoch = epoch
//		l, err := preprocessing.NewLoader(train, cfg)
//		for b := range l.All() {
//			loss, correct, err := tr.Step(b.Images, b.Labels, lr)
//		}
//	}
//
// # Memory
//
// A split takes N·C·H·W bytes of pixels plus 8 bytes a label: CIFAR-10 is
// 153.6 MB (train) + 30.7 MB (test) + 0.5 MB of labels = 184.8 MB (185 MB
// of heap measured after Open). Each memoised image deficit (blur, gauss,
// noise, vflip) adds a copy of the training pixels, 153.6 MB for CIFAR-10:
// 339 MB of heap with one cached blur, as measured. At most
// MaxMemoImageDeficits such copies stay memoised per split. Label deficits
// share the pixels and add 0.4 MB. Reading an archive needs no more than
// the final splits and a 1 MB buffer when its entries are in the official
// order. Computing blur or gauss makes short-lived garbage (imaging's
// intermediate images), so the process's peak RSS while computing one can
// approach twice the live heap (690 MB for CIFAR-10 with GOGC=100; set
// GOMEMLIMIT to cap it). A loader holds Prefetch+1 batch buffers of
// BatchSize·C·H·W float32 (1.6 MB each at batch 128 on 32×32 RGB: 8 MB with
// the defaults). An on-disk deficit cache file is the size of the training
// pixels plus a 56-byte header.
//
// # Speed
//
// On a 2-core AMD EPYC, one loader worker produces about 400,000 augmented,
// normalised 32×32 images a second from a cached blurred CIFAR-10
// (BenchmarkLoader, BenchmarkPipeline), over a thousand times a CPU
// training step. Computing the blur over CIFAR-10's 50,000 training images
// takes 1.5 s; opening the archive 1.7 s.
package preprocessing
