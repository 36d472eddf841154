package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/critlab/critlab/harness/ortbackend"
	"github.com/critlab/critlab/internal/progress"
	"github.com/critlab/critlab/models/graph"
	"github.com/critlab/critlab/runs"

	"github.com/urfave/cli/v2"
)

// newBackend makes the training backend; tests swap in a fake.
var newBackend = func(c *cli.Context) runs.Backend {
	return ortbackend.New(ortbackend.Options{Library: c.String("ort-lib"), MemArena: c.Bool("mem-arena")})
}

// multiFlag collects every occurrence of a repeatable flag as is (no
// splitting at commas, which deficit specs such as blur:size=4,up=linear
// contain).
type multiFlag struct{ vals []string }

func (m *multiFlag) Set(v string) error { m.vals = append(m.vals, v); return nil }
func (m *multiFlag) String() string     { return strings.Join(m.vals, " ") }

func multi(c *cli.Context, name string) []string {
	if m, ok := c.Generic(name).(*multiFlag); ok {
		return m.vals
	}
	return nil
}

// configFlags set the fields of runs.Config; a flag given on the command
// line overrides the config file, which overrides runs.Default().
func configFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML run config (keys as in config.yaml of a run dir)"},
		&cli.StringFlag{Name: "model", Usage: "zoo model (allcnn, resnet18, small) or .onnx file (default allcnn)"},
		&cli.Float64Flag{Name: "width", Usage: "width multiplier of a zoo model (default 1)"},
		&cli.StringFlag{Name: "data", Usage: "data set: cifar10[:PATH], synthetic[:train=N,...], archive:PATH, ... (default cifar10)"},
		&cli.IntFlag{Name: "subset", Usage: "train on N training images (class-balanced, drawn from the seed); 0: all"},
		&cli.IntFlag{Name: "epochs", Usage: "epochs to train (default 160)"},
		&cli.IntFlag{Name: "batch-size", Aliases: []string{"b"}, Usage: "training batch size (default 128)"},
		&cli.Float64Flag{Name: "lr", Usage: "initial learning rate (default 0.075)"},
		&cli.StringFlag{Name: "lr-schedule", Usage: "constant, step, exp (lr × decay^epoch) or cosine (default exp)"},
		&cli.Float64Flag{Name: "lr-decay", Usage: "decay factor of exp (per epoch, default 0.97) and step (default 0.1)"},
		&cli.IntFlag{Name: "lr-step", Usage: "epochs between decays of the step schedule"},
		&cli.BoolFlag{Name: "restart-at-deficit-end", Usage: "restart the lr schedule when a deficit window ends"},
		&cli.Float64Flag{Name: "momentum", Usage: "SGD momentum (default 0.9)"},
		&cli.BoolFlag{Name: "nesterov", Usage: "Nesterov momentum"},
		&cli.Float64Flag{Name: "weight-decay", Aliases: []string{"wd"}, Usage: "L2 weight decay (default 5e-4)"},
		&cli.BoolFlag{Name: "no-decay-bias-norm", Usage: "no weight decay on biases and BatchNorm parameters"},
		&cli.Float64Flag{Name: "label-smoothing", Usage: "label smoothing in [0, 1)"},
		&cli.StringFlag{Name: "optimizer", Usage: "sgd, adam or adamw, as in PyTorch (default sgd; param_groups in a --config file)"},
		&cli.IntFlag{Name: "warmup-epochs", Usage: "linear lr warmup over the first N epochs of any schedule"},
		&cli.Float64Flag{Name: "grad-clip", Usage: "clip gradients to this global L2 norm (0: off)"},
		&cli.Int64Flag{Name: "seed", Usage: "seed of initialisation, data order, augmentation and deficits"},
		&cli.IntFlag{Name: "workers", Usage: "data-loader goroutines per run (default 1; batches are identical for any value)"},
		&cli.GenericFlag{Name: "deficit", Value: &multiFlag{}, Usage: "deficit of a window: blur[:size=8], gauss, vflip, labelperm, noise, ... (repeatable, paired with --deficit-epochs)"},
		&cli.GenericFlag{Name: "deficit-epochs", Value: &multiFlag{}, Usage: "epochs START-END (end exclusive; START:END also accepted) of the matching --deficit (repeatable)"},
		&cli.StringFlag{Name: "init-from", Usage: "start from the weights of a run dir, checkpoint or .onnx model (fine-tuning)"},
		&cli.GenericFlag{Name: "freeze", Value: &multiFlag{}, Usage: "glob of parameter names not to train, e.g. 'conv1.*' (repeatable; needs --init-from)"},
		&cli.BoolFlag{Name: "hflip", Usage: "random horizontal flips (default on; --hflip=false to disable)"},
		&cli.BoolFlag{Name: "crop", Usage: "random crops after 4-pixel padding (default on; --crop=false to disable)"},
		&cli.IntSliceFlag{Name: "keep-checkpoints", Usage: "epochs whose checkpoint to keep beside the latest, e.g. 40,80"},
		&cli.IntFlag{Name: "fisher-images", Aliases: []string{"fisher"}, Usage: "N fixed clean training images for the Fisher-trace estimate (0: off)"},
		&cli.IntFlag{Name: "fisher-samples", Usage: "label samples per image of the Fisher-trace estimate (default 1 with --fisher)"},
		&cli.IntFlag{Name: "eval-every", Usage: "evaluate on the test set every K epochs and the last (default every epoch)"},
		&cli.IntFlag{Name: "fisher-every", Usage: "estimate the Fisher trace every K epochs (default 1 with --fisher; 0: never)"},
	}
}

// loadConfig resolves defaults < --config file < flags.
func loadConfig(c *cli.Context) (runs.Config, error) {
	cfg := runs.Default()
	if path := c.String("config"); path != "" {
		var err error
		if cfg, err = runs.LoadConfig(path, cfg); err != nil {
			return cfg, err
		}
	}
	return cfg, applyFlags(c, &cfg)
}

// applyFlags copies the flags given on the command line into cfg.
func applyFlags(c *cli.Context, cfg *runs.Config) error {
	set := func(name string, f func()) {
		if c.IsSet(name) {
			f()
		}
	}
	set("model", func() { cfg.Model = c.String("model") })
	set("width", func() { cfg.Width = c.Float64("width") })
	set("data", func() { cfg.Data = c.String("data") })
	set("subset", func() { cfg.TrainSubset = c.Int("subset") })
	set("epochs", func() { cfg.Epochs = c.Int("epochs") })
	set("batch-size", func() { cfg.BatchSize = c.Int("batch-size") })
	set("lr", func() { cfg.LR = c.Float64("lr") })
	set("lr-schedule", func() { cfg.LRSchedule = c.String("lr-schedule") })
	set("lr-decay", func() { cfg.LRDecay = c.Float64("lr-decay") })
	set("lr-step", func() { cfg.LRStep = c.Int("lr-step") })
	set("restart-at-deficit-end", func() { cfg.RestartAtDeficitEnd = c.Bool("restart-at-deficit-end") })
	set("momentum", func() { cfg.Momentum = c.Float64("momentum") })
	set("nesterov", func() { cfg.Nesterov = c.Bool("nesterov") })
	set("weight-decay", func() { cfg.WeightDecay = c.Float64("weight-decay") })
	set("no-decay-bias-norm", func() { cfg.NoDecayOnBiasAndNorm = c.Bool("no-decay-bias-norm") })
	set("label-smoothing", func() { cfg.LabelSmoothing = c.Float64("label-smoothing") })
	set("optimizer", func() { cfg.Optimizer = c.String("optimizer") })
	set("warmup-epochs", func() { cfg.WarmupEpochs = c.Int("warmup-epochs") })
	set("grad-clip", func() { cfg.GradClip = c.Float64("grad-clip") })
	set("seed", func() { cfg.Seed = c.Int64("seed") })
	set("workers", func() { cfg.Workers = c.Int("workers") })
	set("device", func() { cfg.Device = c.String("device") })
	set("threads", func() { cfg.Threads = c.Int("threads") })
	set("init-from", func() { cfg.InitFrom = c.String("init-from") })
	set("freeze", func() { cfg.Freeze = multi(c, "freeze") })
	set("hflip", func() { cfg.Augment.HFlip = c.Bool("hflip") })
	set("crop", func() { cfg.Augment.Crop = c.Bool("crop") })
	set("keep-checkpoints", func() { cfg.KeepCheckpoints = c.IntSlice("keep-checkpoints") })
	set("fisher-images", func() {
		// --fisher N alone means one label sample per image, every epoch.
		cfg.Fisher.Images = c.Int("fisher-images")
		if cfg.Fisher.Images > 0 && cfg.Fisher.Samples == 0 {
			cfg.Fisher.Samples = 1
		}
		if cfg.Fisher.Images > 0 && cfg.Fisher.Every == 0 {
			cfg.Fisher.Every = 1
		}
	})
	set("fisher-samples", func() { cfg.Fisher.Samples = c.Int("fisher-samples") })
	set("fisher-every", func() { cfg.Fisher.Every = c.Int("fisher-every") })
	set("eval-every", func() { cfg.EvalEvery = c.Int("eval-every") })

	kinds, epochs := multi(c, "deficit"), multi(c, "deficit-epochs")
	if len(kinds) != len(epochs) {
		return fmt.Errorf("%w: %d --deficit but %d --deficit-epochs: give one START-END per deficit, e.g. --deficit blur --deficit-epochs 0-40",
			runs.ErrInvalidConfig, len(kinds), len(epochs))
	}
	if len(kinds) > 0 {
		cfg.Deficits = nil
		for i, k := range kinds {
			start, end, err := runs.ParseEpochs(epochs[i])
			if err != nil {
				return err
			}
			cfg.Deficits = append(cfg.Deficits, runs.Window{Deficit: k, Start: start, End: end})
		}
	}
	return nil
}

// defaultRunDir names a run after its model, data set, seed and config.
func defaultRunDir(cfg runs.Config) string {
	model := strings.TrimSuffix(filepath.Base(cfg.Model), ".onnx")
	return filepath.Join("runs-out", "train", fmt.Sprintf("%s-%s-s%d-%s", model, dataName(cfg.Data), cfg.Seed, cfg.Hash()[:8]))
}

func trainCommand() *cli.Command {
	flags := append(configFlags(), runtimeFlags()...)
	flags = append(flags,
		&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "run directory (default runs-out/train/MODEL-DATA-sSEED-HASH)"},
		&cli.BoolFlag{Name: "force", Usage: "train again over a finished run or a run of another config in --out"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "one line per epoch instead of a progress bar (for logs)"},
		&cli.BoolFlag{Name: "print-config", Usage: "print the resolved config and exit"},
	)
	return &cli.Command{
		Name:  "train",
		Usage: "train one run: defaults < --config file < flags; resumes an unfinished run in --out",
		Description: `Trains, epoch by epoch, with the deficit windows given, evaluating on the clean test set,
and writes into the run directory: config.yaml, metrics.parquet (one row per epoch),
checkpoints/, log.txt and, at the end, model.onnx. Ctrl-C stops after the current step;
running the same command again resumes from the last finished epoch.

Example (Achille et al. 2019, blur removed at epoch 40):
   critlab train --model allcnn --data cifar10 --deficit blur --deficit-epochs 0-40 --epochs 200`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("train: unexpected arguments %q (flags only; see --help)", c.Args().Slice())
			}
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			if c.Bool("print-config") {
				_, err := c.App.Writer.Write(cfg.YAML())
				return err
			}
			dir := c.String("out")
			if dir == "" {
				dir = defaultRunDir(cfg)
			}
			if m, err := graph.Load(cfg.Model); err == nil {
				// A model file: say what its exporter did (refusals come
				// from the run's model check).
				for _, f := range graph.ExportFindings(m) {
					if !f.Refuse {
						fmt.Fprintf(c.App.ErrWriter, "NOTE: %s: %s\n", cfg.Model, f)
					}
				}
			}
			res, err := runs.Run(c.Context, cfg, dir, runs.Options{
				Backend:  newBackend(c),
				Progress: runs.NewProgress(c.App.ErrWriter, c.Bool("quiet")),
				Force:    c.Bool("force"),
			})
			if errors.Is(err, context.Canceled) {
				return fmt.Errorf("%w\n---> HINT: finished epochs are kept; run the same command again to resume", err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "run %s (%s): final test accuracy %.2f%% (last epoch), %.2f%% (mean of the last %d evaluated epochs)\n",
				dir, res.Status, 100*runs.FinalAccuracy(res.Rows), 100*runs.LastKAccuracy(res.Rows), runs.FinalEpochs)
			if res.Images > 0 {
				fmt.Fprintf(c.App.Writer, "trained %d images in %s: %.0f img/s (evaluation included)\n",
					res.Images, progress.Duration(res.Wall), float64(res.Images)/max(res.Wall.Seconds(), 1e-9))
			}
			fmt.Fprintf(c.App.Writer, "metrics: %s\nmodel:   %s\n", filepath.Join(dir, runs.MetricsFile), filepath.Join(dir, runs.ModelFile))
			return nil
		},
	}
}
