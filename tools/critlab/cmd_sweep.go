package main

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/critlab/critlab/configs"
	"github.com/critlab/critlab/preprocessing"
	"github.com/critlab/critlab/runs"
	"github.com/urfave/cli/v2"
)

// loadSweepSpec resolves --config: a YAML file, or the name of a preset
// built into the binary (configs/NAME.yaml), and returns it with the name
// it goes by.
func loadSweepSpec(name string) (runs.SweepSpec, string, error) {
	if _, err := os.Stat(name); err == nil {
		spec, err := runs.LoadSweep(name)
		return spec, strings.TrimSuffix(filepath.Base(name), filepath.Ext(name)), err
	}
	preset := strings.TrimSuffix(filepath.Base(name), ".yaml")
	data, err := fs.ReadFile(configs.FS, preset+".yaml")
	if err != nil {
		names, _ := fs.Glob(configs.FS, "*.yaml")
		for i := range names {
			names[i] = strings.TrimSuffix(names[i], ".yaml")
		}
		return runs.SweepSpec{}, "", fmt.Errorf("sweep config %q: not found: no such file or preset (presets: %s)", name, strings.Join(names, ", "))
	}
	spec, err := runs.ParseSweep(data)
	if err != nil {
		return spec, "", fmt.Errorf("preset %s: %w", preset, err)
	}
	return spec, preset, nil
}

// maxSeeds bounds a --seeds range: each seed is a set of training runs.
const maxSeeds = 1000

func parseSeeds(s string) ([]int64, error) {
	var seeds []int64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if a, b, ok := strings.Cut(f, "-"); ok && a != "" {
			lo, err1 := strconv.ParseInt(a, 10, 64)
			hi, err2 := strconv.ParseInt(b, 10, 64)
			if err1 != nil || err2 != nil || hi < lo {
				return nil, fmt.Errorf("%w: seeds %q: want a list like 0,1,2 or a range 0-4", runs.ErrInvalidConfig, s)
			}
			// Refused before any work (or memory) is spent on it.
			if hi-lo >= maxSeeds || hi-lo < 0 {
				return nil, fmt.Errorf("%w: seeds %q: a range of more than %d seeds (each seed is a set of training runs)", runs.ErrInvalidConfig, s, maxSeeds)
			}
			for x := lo; x <= hi; x++ {
				seeds = append(seeds, x)
			}
			continue
		}
		x, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%w: seeds %q: want a list like 0,1,2 or a range 0-4", runs.ErrInvalidConfig, s)
		}
		seeds = append(seeds, x)
	}
	return seeds, nil // a seed given twice is refused by the sweep's plan, as in a spec file
}

// checkSweepFlags refuses the flags a sweep would otherwise ignore or
// replace by their defaults.
func checkSweepFlags(c *cli.Context) error {
	executor := c.String("executor")
	switch executor {
	case executorLocal, executorSlurm, executorPlan:
	default:
		return fmt.Errorf("sweep: --executor %q: want %s, %s or %s", executor, executorLocal, executorSlurm, executorPlan)
	}
	for _, name := range []string{"jobs", "cores", "threads"} {
		if n := c.Int(name); n < 0 {
			return fmt.Errorf("sweep: --%s %d is negative\n---> HINT: leave it out for the default (see --help)", name, n)
		}
	}
	if executor == executorSlurm {
		return nil
	}
	for _, f := range slurmFlags() {
		if name := f.Names()[0]; name != "executor" && c.IsSet(name) {
			return fmt.Errorf("sweep: --%s is a setting of the slurm executor, and this sweep runs with --executor %s\n---> HINT: add --executor slurm to submit it as Slurm jobs, or drop --%s to run it here", name, executor, name)
		}
	}
	return nil
}

// sweepFields are the base config fields sweep takes as flags.
var sweepFields = []string{"data", "model", "width", "subset", "workers"}

func sweepCommand() *cli.Command {
	return &cli.Command{
		Name:      "sweep",
		Usage:     "run a critical-period sweep (removal, sliding window, fine-tuning) from a preset or YAML spec",
		ArgsUsage: " ",
		Description: `Expands the spec (see configs/*.yaml) into runs, checks every one before any trains,
trains them in parallel (threads per run = cores / jobs), skips finished runs,
resumes unfinished ones, and writes OUT/sweep.parquet and the report (OUT/report/).

Example:
   critlab sweep --config demo                 # configs/demo.yaml into runs-out/demo
   critlab sweep --config demo --data cifar10  # the same sweep on CIFAR-10
   critlab sweep --config demo --executor slurm --time 1:00:00   # as Slurm job arrays
   critlab sweep status runs-out/demo          # where each run stands`,
		Flags: append([]cli.Flag{
			// Not Required: cli would demand it of the subcommands too.
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "sweep spec: a YAML file or a built-in preset (configs/NAME.yaml; required)"},
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "sweep directory (default runs-out/NAME)"},
			&cli.StringFlag{Name: "seeds", Usage: "override the seeds: 0,1,2 or 0-4"},
			&cli.IntFlag{Name: "jobs", Aliases: []string{"j"}, Usage: "runs at once (default: the spec's, else one per core)"},
			&cli.IntFlag{Name: "cores", Usage: "cores the runs share (default: all)"},
			&cli.BoolFlag{Name: "force", Usage: "train finished runs again"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "log lines instead of a progress bar"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print every epoch of every run"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the planned runs and exit"},
			&cli.BoolFlag{Name: "no-report", Usage: "do not write the report at the end"},
		}, append(append(fieldFlags(nil, " (default: the spec's)", sweepFields...), runtimeFlags()...), slurmFlags()...)...),
		Subcommands: sweepSubcommands(),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return fmt.Errorf("sweep: unexpected arguments %q (flags only; see --help)", c.Args().Slice())
			}
			if !c.IsSet("config") {
				return fmt.Errorf("sweep: --config is required (a YAML file or a preset: demo, cifar-cpu, ...)")
			}
			if err := checkSweepFlags(c); err != nil {
				return err
			}
			spec, name, err := loadSweepSpec(c.String("config"))
			if err != nil {
				return err
			}
			if spec.Name == "" {
				spec.Name = name
			}
			b := &spec.Base
			setFields(c, b, sweepFields...)
			if c.IsSet("device") {
				b.Device = c.String("device")
			}
			if c.IsSet("seeds") {
				if spec.Seeds, err = parseSeeds(c.String("seeds")); err != nil {
					return err
				}
			}
			dir := c.String("out")
			if dir == "" {
				dir = filepath.Join("runs-out", spec.Name)
			}
			plan, err := spec.Plan(dir)
			if err != nil {
				return err
			}
			if c.Bool("dry-run") {
				// The checks of the real sweep, before it trains.
				if err := runs.CheckPlan(plan, newBackend(c)); err != nil {
					return err
				}
				_, err := fmt.Fprint(c.App.Writer, plan.Describe(), dryRunEstimate(c, spec, plan))
				return err
			}
			switch c.String("executor") {
			case executorLocal:
			case executorSlurm:
				return submitSweep(c, spec, dir)
			case executorPlan:
				return planSweep(c, spec, dir)
			}
			cores := c.Int("cores")
			if cores == 0 && c.IsSet("threads") {
				cores = c.Int("threads")
			}
			prog := runs.NewSweepProgress(c.App.ErrWriter, spec.Name, len(plan.Runs), c.Bool("quiet"))
			prog.Verbose = c.Bool("verbose")
			_, runErr := runs.RunSweep(c.Context, spec, dir, runs.SweepOptions{
				Backend:  newBackend(c),
				Jobs:     c.Int("jobs"),
				Cores:    cores,
				Force:    c.Bool("force"),
				Progress: prog,
			})
			prog.Finish()
			if c.Bool("no-report") {
				return runErr
			}
			if _, statErr := os.Stat(filepath.Join(dir, runs.SweepFile)); statErr != nil {
				return runErr // nothing finished: nothing to report
			}
			if err := writeReport(c, dir); err != nil && runErr == nil {
				return err
			}
			return runErr
		},
	}
}

// dryRunEstimate is the cost line of `sweep --dry-run` (runs.EstimatePlan),
// with the runs at once the sweep would use and bench.json of the working
// directory as the fallback measurement.
func dryRunEstimate(c *cli.Context, spec runs.SweepSpec, plan runs.Plan) runs.Estimate {
	jobs := c.Int("jobs")
	if jobs <= 0 {
		jobs = spec.Jobs
	}
	if jobs <= 0 {
		jobs = runtime.NumCPU()
	}
	sizes := map[string]int{}
	trainSize := func(cfg runs.Config) int {
		if cfg.TrainSubset > 0 {
			return cfg.TrainSubset
		}
		n, ok := sizes[cfg.Data]
		if !ok {
			if ds, err := preprocessing.Open(cfg.Data, preprocessing.OpenOptions{}); err == nil {
				n = ds.Train.N
			}
			sizes[cfg.Data] = n
		}
		return n
	}
	return runs.EstimatePlan(plan, trainSize, jobs, "bench.json")
}
