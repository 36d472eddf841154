package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/critlab/critlab/runs"
	"github.com/urfave/cli/v2"
)

// Executors of `critlab sweep`.
const (
	executorLocal = "local"
	executorSlurm = "slurm"
	// executorPlan only writes the plan, for other engines to run with
	// run-point (a Kubernetes Indexed Job, GNU parallel).
	executorPlan = "plan"
)

// slurmFlags are the `critlab sweep` flags of the slurm executor; each
// overrides its field of the spec's slurm section.
func slurmFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "executor", Value: executorLocal, Usage: "local (runs in this process), slurm (sbatch job arrays; see README) or plan (write sweep.yaml and the run configs for another engine to run with `critlab sweep run-point`)"},
		&cli.StringFlag{Name: "partition", Usage: "slurm: sbatch --partition"},
		&cli.StringFlag{Name: "time", Usage: "slurm: each job's time limit (sbatch --time, e.g. 4:00:00)"},
		&cli.IntFlag{Name: "cpus-per-task", Usage: "slurm: CPUs (and threads) per run (default 1)"},
		&cli.IntFlag{Name: "gpus", Usage: "slurm: GPUs per run (sbatch --gres=gpu:N)"},
		&cli.StringFlag{Name: "mem", Usage: "slurm: memory per job (sbatch --mem, e.g. 8G)"},
		&cli.StringSliceFlag{Name: "sbatch-arg", Usage: "slurm: one more sbatch argument for every job (repeatable)"},
		&cli.StringFlag{Name: "critlab-bin", Usage: "slurm: the critlab binary on the nodes (default: this one)"},
		&cli.BoolFlag{Name: "requeue", Usage: "slurm: a job near its time limit stops at its last epoch and requeues itself"},
	}
}

// submitSweep is `critlab sweep --executor slurm`.
func submitSweep(c *cli.Context, spec runs.SweepSpec, dir string) error {
	set := runs.SlurmSpec{}
	if spec.Slurm != nil {
		set = *spec.Slurm
	}
	for name, field := range map[string]*string{"partition": &set.Partition, "time": &set.Time, "mem": &set.Mem, "critlab-bin": &set.Binary, "ort-lib": &set.ORTLib} {
		if c.IsSet(name) {
			*field = c.String(name)
		}
	}
	if c.IsSet("cpus-per-task") {
		set.CPUs = c.Int("cpus-per-task")
	}
	if c.IsSet("gpus") {
		set.GPUs = c.Int("gpus")
	}
	if c.IsSet("sbatch-arg") {
		set.Args = c.StringSlice("sbatch-arg")
	}
	if c.IsSet("requeue") {
		set.Requeue = c.Bool("requeue")
	}
	if set.ORTLib == "" {
		set.ORTLib = os.Getenv("CRITLAB_ORT_LIB")
	}
	spec.Slurm = &set
	if c.Bool("force") {
		return fmt.Errorf("sweep: --force with --executor slurm: remove the run directories to train again instead")
	}
	sub, err := runs.SubmitSweep(c.Context, spec, dir, runs.SlurmOptions{
		Backend:  newBackend(c),
		Throttle: c.Int("jobs"),
		NoReport: c.Bool("no-report"),
		Log:      c.App.Writer,
	})
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "sweep %s: %d runs: %d finished, %d submitted now, %d in jobs of an earlier submission\n",
		sub.Plan.Name, len(sub.Plan.Runs), sub.Finished, sub.Submitted, len(sub.Jobs)-sub.Submitted)
	if sub.Collect == "" {
		fmt.Fprintf(w, "nothing left to run; collecting here\n")
		return collect(c, dir)
	}
	_, err = fmt.Fprintf(w, "follow it with: critlab sweep status %s\n", dir)
	return err
}

// planSweep is `critlab sweep --executor plan`.
func planSweep(c *cli.Context, spec runs.SweepSpec, dir string) error {
	threads := c.Int("threads")
	if threads == 0 {
		threads = 1
	}
	plan, err := runs.PrepareSweep(spec, dir, newBackend(c), threads)
	if err != nil {
		return err
	}
	threads = plan.Runs[0].Config.Threads // the count the sweep pinned
	_, err = fmt.Fprintf(c.App.Writer, "sweep %s: %d runs planned in %s (%d threads each); run each with\n  critlab sweep run-point %s INDEX    # INDEX 0 to %d; see critlab sweep status %s\n",
		plan.Name, len(plan.Runs), dir, threads, dir, len(plan.Runs)-1, dir)
	return err
}

// sweepSubcommands are the commands a scheduler's jobs and their user run.
func sweepSubcommands() []*cli.Command {
	return []*cli.Command{
		{
			Name:      "run-point",
			Usage:     "train one planned run of a sweep directory (what each scheduler job runs)",
			ArgsUsage: "DIR [INDEX]",
			Description: `INDEX is the run's position in the plan (the # column of critlab sweep status DIR);
without it, $SLURM_ARRAY_TASK_ID, then $JOB_COMPLETION_INDEX (a Kubernetes Indexed Job).
A finished run is skipped; an unfinished one resumes from its latest checkpoint. The runs
it starts from must have finished (--wait waits for them). SIGTERM, SIGINT and SIGUSR1
stop it after the current step, keeping every finished epoch; with --requeue, SIGUSR1
(sbatch --signal=B:USR1@S before the time limit) also puts the Slurm job back in the queue.`,
			Flags: append([]cli.Flag{
				&cli.DurationFlag{Name: "wait", Usage: "wait this long for the runs this one starts from (engines without job dependencies)"},
				&cli.BoolFlag{Name: "requeue", Usage: "on SIGUSR1, requeue this Slurm job ($SLURM_JOB_ID) after stopping"},
				&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "log lines instead of a progress bar"},
			}, runtimeFlags()...),
			Action: runPoint,
		},
		{
			Name:      "collect",
			Usage:     "write sweep.parquet and the report from a sweep directory's finished runs",
			ArgsUsage: "DIR",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "no-report", Usage: "write sweep.parquet only"},
			},
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return fmt.Errorf("sweep collect: want one sweep directory, got %d arguments", c.NArg())
				}
				return collect(c, c.Args().First())
			},
		},
		{
			Name:      "status",
			Usage:     "each planned run's state: planned, queued, running, finished, stopped or failed, with its epoch and job",
			ArgsUsage: "DIR",
			Description: `Read from the run directories and, for sweeps submitted to Slurm, from the job record
DIR/slurm/jobs.tsv and squeue. Exit status 0 whatever the states.`,
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return fmt.Errorf("sweep status: want one sweep directory, got %d arguments", c.NArg())
				}
				dir := c.Args().First()
				jobs, err := runs.SlurmJobs(c.Context, dir)
				if err != nil {
					return err
				}
				points, err := runs.SweepStatus(dir, jobs)
				if err != nil {
					return err
				}
				return runs.WriteStatus(c.App.Writer, points)
			},
		},
	}
}

// collect writes sweep.parquet of dir and, unless --no-report, the report
// (of what finished, also when runs are missing).
func collect(c *cli.Context, dir string) error {
	res, err := runs.CollectSweep(dir)
	if res == nil || len(res.Rows) == 0 || c.Bool("no-report") {
		return err
	}
	if rerr := writeReport(c, dir); rerr != nil && err == nil {
		err = rerr
	}
	return err
}

// pointIndex is run-point's INDEX: the argument, else the index a
// scheduler gives the job.
func pointIndex(c *cli.Context) (int, error) {
	s, from := c.Args().Get(1), "INDEX"
	for _, env := range []string{"SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"} {
		if s == "" {
			s, from = os.Getenv(env), "$"+env
		}
	}
	if s == "" {
		return 0, fmt.Errorf("sweep run-point: no INDEX, $SLURM_ARRAY_TASK_ID or $JOB_COMPLETION_INDEX: which run? (the # column of critlab sweep status DIR)")
	}
	i, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("sweep run-point: %s %q is not a run index", from, s)
	}
	return i, nil
}

func runPoint(c *cli.Context) error {
	if n := c.NArg(); n < 1 || n > 2 {
		return fmt.Errorf("sweep run-point: want DIR [INDEX], got %d arguments", n)
	}
	index, err := pointIndex(c)
	if err != nil {
		return err
	}
	// SIGTERM and SIGINT already cancel c.Context (main); SIGUSR1 is
	// Slurm's warning before a time limit.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	defer signal.Stop(usr1)
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	warned := make(chan struct{})
	go func() {
		select {
		case <-usr1:
			close(warned)
			cancel()
		case <-ctx.Done():
		}
	}()
	_, err = runs.RunPoint(ctx, c.Args().First(), index, runs.PointOptions{
		Backend:  newBackend(c),
		Threads:  c.Int("threads"),
		Wait:     c.Duration("wait"),
		Progress: runs.NewProgress(c.App.ErrWriter, c.Bool("quiet")),
	})
	select {
	case <-warned:
		if !errors.Is(err, context.Canceled) || !c.Bool("requeue") {
			return err
		}
		job := os.Getenv("SLURM_JOB_ID")
		if job == "" {
			return fmt.Errorf("%w (--requeue: no $SLURM_JOB_ID to requeue)", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if out, rerr := exec.CommandContext(ctx, "scontrol", "requeue", job).CombinedOutput(); rerr != nil {
			return fmt.Errorf("%w; scontrol requeue %s: %v: %s", err, job, rerr, out)
		}
		fmt.Fprintf(c.App.ErrWriter, "critlab: stopped before the time limit, job %s requeued; it resumes from the last finished epoch\n", job)
		return nil
	default:
		return err
	}
}
