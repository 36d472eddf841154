package preprocessing

import (
	"fmt"
	"time"
)

// PipelineResult is a pipeline throughput measurement.
type PipelineResult struct {
	Batches      int
	Images       int
	Elapsed      time.Duration
	ImagesPerSec float64
}

func (r PipelineResult) String() string {
	return fmt.Sprintf("%d batches, %d images in %v: %.0f images/s", r.Batches, r.Images, r.Elapsed.Round(time.Millisecond), r.ImagesPerSec)
}

// BenchmarkPipeline measures the loader's throughput: it consumes the given
// number of batches of split (starting new epochs as needed, as training
// would) and reports images per second of augmentation, normalisation and
// batching. Apply deficits before calling it so their (cached) cost is not
// counted.
func BenchmarkPipeline(split *Split, cfg LoaderConfig, batches int) (PipelineResult, error) {
	if batches <= 0 {
		return PipelineResult{}, configErr("benchmark: batches %d: must be positive", batches)
	}
	var res PipelineResult
	start := time.Now()
	for epoch := cfg.Epoch; res.Batches < batches; epoch++ {
		c := cfg
		c.Epoch = epoch
		l, err := NewLoader(split, c)
		if err != nil {
			return PipelineResult{}, fmt.Errorf("benchmark: %w", err)
		}
		if l.Len() == 0 {
			l.Close()
			return PipelineResult{}, configErr("benchmark: the split (%d images) has no full batch of %d", split.N, cfg.BatchSize)
		}
		for res.Batches < batches {
			b, ok := l.Next()
			if !ok {
				break
			}
			res.Batches++
			res.Images += b.N
		}
		l.Close()
	}
	res.Elapsed = time.Since(start)
	res.ImagesPerSec = float64(res.Images) / res.Elapsed.Seconds()
	return res, nil
}
