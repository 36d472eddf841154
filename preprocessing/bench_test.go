package preprocessing

import (
	"fmt"
	"testing"
)

func TestBenchmarkPipeline(t *testing.T) {
	s := smallSplit(t, 300)
	cfg := DefaultLoaderConfig()
	cfg.BatchSize = 64
	res, err := BenchmarkPipeline(s, cfg, 10) // 4 batches an epoch: crosses epochs
	if err != nil {
		t.Fatal(err)
	}
	if res.Batches != 10 || res.Images != 640 || res.ImagesPerSec <= 0 {
		t.Fatalf("%+v", res)
	}
	t.Log(res)
	cfg.BatchSize = 1000
	if _, err := BenchmarkPipeline(s, cfg, 1); err == nil {
		t.Fatal("no error for a split smaller than a batch")
	}
}

// BenchmarkLoader measures augment+normalise+batch on CIFAR-sized data
// with a cached blur deficit, at batch 128, for several worker counts. It
// reports images/s (the figure to compare with the train step's).
func BenchmarkLoader(b *testing.B) {
	ds, err := Synthetic(SyntheticConfig{Train: 5120, Test: 10, Classes: 10, Size: 32, Mix: 0.5, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	train, err := ApplyDeficit(ds.Train, MustParseDeficit("blur"), 0)
	if err != nil {
		b.Fatal(err)
	}
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			cfg := DefaultLoaderConfig()
			cfg.Workers = workers
			b.ReportAllocs()
			b.ResetTimer()
			images := 0
			for i := 0; b.Loop(); i++ {
				cfg.Epoch = i
				l, err := NewLoader(train, cfg)
				if err != nil {
					b.Fatal(err)
				}
				for bt := range l.All() {
					images += bt.N
				}
			}
			b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// BenchmarkBlur measures computing the blur deficit over a split (done once
// per data set, then cached).
func BenchmarkBlur(b *testing.B) {
	ds, err := Synthetic(SyntheticConfig{Train: 1000, Test: 10, Classes: 10, Size: 32, Mix: 0.5, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	d := MustParseDeficit("blur")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (DeficitCache{}).compute(ds.Train, d, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "images/s")
}
