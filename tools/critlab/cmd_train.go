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
	return ortbackend.New(ortbackend.Options{Library: c.String("ort-lib"), MemArena: c.Bool("mem-arena"), Spin: c.Bool("spin")})
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

// configFlags are train's flags for the config: --config and the fields
// of configFields, with runs.Default()'s values as defaults, and the
// deficit windows.
func configFlags() []cli.Flag {
	def := runs.Default()
	return append([]cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "YAML run config (keys as in config.yaml of a run dir)"},
	}, append(fieldFlags(&def, ""),
		&cli.GenericFlag{Name: "deficit", Value: &multiFlag{}, Usage: "deficit of a window: blur[:size=8], gauss, vflip, labelperm, noise, ... (repeatable, paired with --deficit-epochs)"},
		&cli.GenericFlag{Name: "deficit-epochs", Value: &multiFlag{}, Usage: "epochs START-END (end exclusive; START:END also accepted) of the matching --deficit (repeatable)"},
	)...)
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
	before := *cfg
	setFields(c, cfg)
	if err := runs.CheckStepDecay(before, *cfg, c.IsSet("lr-decay"), "--lr-decay"); err != nil {
		return err
	}
	if c.IsSet("device") {
		cfg.Device = c.String("device")
	}
	if c.IsSet("threads") {
		cfg.Threads = c.Int("threads")
	}
	// --fisher N alone means one label sample per image, every epoch.
	if cfg.Fisher.Images > 0 && c.IsSet("fisher-images") {
		if cfg.Fisher.Samples == 0 && !c.IsSet("fisher-samples") {
			cfg.Fisher.Samples = 1
		}
		if cfg.Fisher.Every == 0 && !c.IsSet("fisher-every") {
			cfg.Fisher.Every = 1
		}
	}

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
		&cli.BoolFlag{Name: "print-config", Usage: "print the resolved config, once checked (not against the model or data), and exit"},
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
			// Checked before printing too, without the model or the data.
			// Run checks those, then the settings without effect of a new
			// run (a model file's width after the model); a printed config
			// is one for new runs.
			check := runs.Check
			if c.Bool("print-config") {
				check = runs.CheckNew
			}
			if err := check(cfg, nil); err != nil {
				return err
			}
			for _, n := range cfg.Notes() {
				fmt.Fprintf(c.App.ErrWriter, "NOTE: %s\n", n)
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
