package preprocessing_test

import (
	"fmt"

	"github.com/critlab/critlab/preprocessing"
)

func ExampleParseDeficit() {
	for _, spec := range []string{"blur", "blur:size=4,down=lanczos", "gauss:sigma=2", "labelperm"} {
		d, err := preprocessing.ParseDeficit(spec)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(d)
	}
	_, err := preprocessing.ParseDeficit("sharpen")
	fmt.Println(err)
	// Output:
	// blur:size=8,down=box,up=linear
	// blur:size=4,down=lanczos,up=linear
	// gauss:sigma=2
	// labelperm
	// parse deficit "sharpen": preprocessing: unknown deficit "sharpen"; valid deficits: none, blur[:size=8,down=box,up=linear], gauss[:sigma=1.5], vflip, labelperm, labelshuffle, noise, sham
}

func ExampleNewLoader() {
	ds, err := preprocessing.Open("synthetic:train=1000,test=200,mix=0.7", preprocessing.OpenOptions{})
	if err != nil {
		panic(err)
	}
	// The deficit is computed once; later calls return the memoised split.
	train, err := preprocessing.ApplyDeficit(ds.Train, preprocessing.MustParseDeficit("blur"), 1)
	if err != nil {
		panic(err)
	}
	cfg := preprocessing.DefaultLoaderConfig().WithStats(ds.Train.Stats())
	for epoch := 0; epoch < 2; epoch++ {
		cfg.Epoch = epoch
		l, err := preprocessing.NewLoader(train, cfg)
		if err != nil {
			panic(err)
		}
		n := 0
		for b := range l.All() {
			n += b.N // b.Images: float32 NCHW, b.Labels: int64; valid until the next batch
		}
		fmt.Printf("epoch %d: %d batches, %d images\n", epoch, l.Len(), n)
	}
	eval, err := preprocessing.NewEvalLoader(ds.Test, cfg)
	if err != nil {
		panic(err)
	}
	defer eval.Close()
	fmt.Println("eval batches:", eval.Len())
	// Output:
	// epoch 0: 7 batches, 896 images
	// epoch 1: 7 batches, 896 images
	// eval batches: 2
}
