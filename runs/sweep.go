package runs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/critlab/critlab/internal/atomicfile"
	"github.com/critlab/critlab/internal/dirlock"
	"github.com/critlab/critlab/internal/failpoint"
)

// SweepOptions are the knobs of RunSweep that are not part of the
// experiment.
type SweepOptions struct {
	// Backend builds trainers and data (ortbackend.New, or a fake in tests);
	// required.
	Backend Backend
	// Jobs overrides the spec's jobs (runs at once) when > 0.
	Jobs int
	// Cores is the number of cores the runs share; 0 means all.
	Cores int
	// Force retrains finished runs.
	Force bool
	// Progress receives the sweep's progress; nil means none.
	Progress *SweepProgress
}

// SweepResult is a finished sweep.
type SweepResult struct {
	Plan    Plan
	Results map[string]*Result
	// Rows are the rows of sweep.parquet.
	Rows []SweepRow
	// Jobs (runs at once) and Threads (per run) are the parallelism used.
	Jobs, Threads int
}

// RunSweep trains the plan of spec in dir: it locks dir, validates every
// run before any trains, then runs them under a worker limit (threads per
// run pinned, see SweepSpec.Workers), skipping finished runs and resuming
// unfinished ones, and writes the combined sweep.parquet, merged with the
// one already there. Runs name their parents relative to dir, so dir can
// be moved. A failed run does not stop the others; RunSweep then returns
// the failures joined, after writing sweep.parquet.
func RunSweep(ctx context.Context, spec SweepSpec, dir string, opts SweepOptions) (*SweepResult, error) {
	plan, err := spec.Plan(dir)
	if err != nil {
		return nil, err
	}
	backend := opts.Backend
	if backend == nil {
		return nil, ErrNoBackend
	}
	if err := CheckPlan(plan, backend); err != nil {
		return nil, err
	}
	if opts.Jobs < 0 || opts.Cores < 0 {
		return nil, fmt.Errorf("%w: sweep %s: jobs %d and cores %d must not be negative (0 means the default)", ErrInvalidConfig, plan.Name, opts.Jobs, opts.Cores)
	}
	cores := opts.Cores
	if cores <= 0 {
		cores = runtime.NumCPU()
	}
	workers := opts.Jobs
	if workers <= 0 {
		workers = spec.Jobs
	}
	if workers <= 0 {
		workers = cores
		if spec.Base.Device != "" && spec.Base.Device != "cpu" {
			workers = 1
		}
	}
	workers = max(1, min(workers, len(plan.Runs)))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("sweep %s: %w", plan.Name, err)
	}
	lock, err := dirlock.Acquire(dir)
	if err != nil {
		return nil, fmt.Errorf("sweep %s: %w", plan.Name, err)
	}
	defer lock.Release()
	for _, name := range []string{SweepFile, SweepSpecFile} {
		if err := atomicfile.Clean(filepath.Join(dir, name)); err != nil {
			return nil, err
		}
	}
	// Threads are part of a run's arithmetic (see runThreads): the sweep
	// pins them in sweep.yaml when it first starts, so runs started on
	// another machine or with another -j compute the same.
	threads := spec.Base.Threads
	if threads <= 0 {
		threads = pinnedThreads(dir)
	}
	if threads <= 0 {
		threads = max(1, cores/workers)
	}
	spec.Base.Threads = threads
	if err := atomicfile.Write(filepath.Join(dir, SweepSpecFile), spec.YAML()); err != nil {
		return nil, err
	}

	res := &SweepResult{Plan: plan, Results: map[string]*Result{}, Jobs: workers, Threads: threads}
	var prog Progress = NopProgress()
	if opts.Progress != nil {
		prog = opts.Progress
		opts.Progress.begin(plan, workers)
		prog.Logf("", "sweep %s: %d runs, %d at a time with %d threads each", plan.Name, len(plan.Runs), workers, threads)
	}

	type done struct {
		id  string
		res *Result
		err error
	}
	var (
		finished = map[string]error{}
		started  = map[string]bool{}
		out      = make(chan done)
		running  int
		errs     []error
	)
	ready := func(r PlannedRun) (bool, error) {
		for _, dep := range r.After {
			err, ok := finished[dep]
			if !ok {
				return false, nil
			}
			if err != nil {
				return true, fmt.Errorf("run %s: needs %s, which failed", r.ID, dep)
			}
		}
		return true, nil
	}
	for len(finished) < len(plan.Runs) {
		for _, r := range plan.Runs {
			if started[r.ID] || running >= workers || ctx.Err() != nil {
				continue
			}
			ok, depErr := ready(r)
			if !ok {
				continue
			}
			started[r.ID] = true
			if depErr != nil {
				finished[r.ID] = depErr
				errs = append(errs, depErr)
				if opts.Progress != nil {
					opts.Progress.RunDone(r.ID, depErr)
				}
				continue
			}
			running++
			go func(r PlannedRun) {
				rr, err := Run(ctx, r.Config, filepath.Join(dir, r.ID), Options{Backend: backend, Progress: prog, Force: opts.Force, RunID: r.ID, Root: dir, Threads: threads, Planned: true})
				out <- done{r.ID, rr, err}
			}(r)
		}
		if running == 0 {
			break // cancelled, or nothing left that can start
		}
		d := <-out
		running--
		finished[d.id] = d.err
		stopped := d.err != nil && ctx.Err() != nil && errors.Is(d.err, ctx.Err())
		switch {
		case stopped:
			// Reported once below, for the whole sweep.
			if opts.Progress != nil {
				opts.Progress.Logf(d.id, "%s: stopped, finished epochs kept", d.id)
			}
		case d.err != nil:
			errs = append(errs, d.err)
			if opts.Progress != nil {
				opts.Progress.Logf(d.id, "%s: FAILED: %v", d.id, d.err)
			}
		default:
			res.Results[d.id] = d.res
		}
		if opts.Progress != nil && !stopped {
			opts.Progress.RunDone(d.id, d.err)
		}
	}
	if err := ctx.Err(); err != nil {
		errs = append(errs, fmt.Errorf("sweep %s stopped with %d of %d runs finished: %w\n---> HINT: run the same command again to resume", plan.Name, len(res.Results), len(plan.Runs), err))
	}

	if res.Rows, err = writeSweepFiles(dir, spec, plan, res.Results); err != nil {
		errs = append(errs, err)
	}
	return res, errors.Join(errs...)
}

// writeSweepFiles writes sweep.parquet and the sweep's fisher.parquet for
// the finished runs of results, merged with what the files held, so that
// a partial resume or collect never shrinks them, and returns the rows.
func writeSweepFiles(dir string, spec SweepSpec, plan Plan, results map[string]*Result) ([]SweepRow, error) {
	rows := sweepRows(plan, results)
	path := filepath.Join(dir, SweepFile)
	old, err := readParquet[SweepRow](path, true)
	if err != nil {
		return rows, fmt.Errorf("%w\n---> HINT: move %s aside; the next resume or collect writes it again from the run directories", err, path)
	}
	if rows = mergeSweepRows(plan, rows, old); len(rows) == 0 {
		return rows, nil
	}
	failpoint.Hit("sweep-parquet")
	if err := WriteSweep(path, rows, spec.YAML()); err != nil {
		return rows, err
	}
	fresh := map[string]bool{}
	for id := range results {
		fresh[id] = true
	}
	return rows, WriteSweepFisher(dir, rows, fresh, spec.YAML())
}

// pinnedThreads is the thread count an earlier start of the sweep in dir
// recorded in sweep.yaml, or 0.
func pinnedThreads(dir string) int {
	old, err := LoadSweep(filepath.Join(dir, SweepSpecFile))
	if err != nil {
		return 0
	}
	return old.Base.Threads
}

// mergeSweepRows keeps the rows of an existing sweep.parquet for the runs
// this attempt did not finish, so a partial resume never shrinks it: rows
// of planned runs in plan order, each from this attempt when it finished
// the run, else from old; then old rows of runs no longer planned.
func mergeSweepRows(plan Plan, rows, old []SweepRow) []SweepRow {
	byRun := func(rs []SweepRow) map[string][]SweepRow {
		m := map[string][]SweepRow{}
		for _, r := range rs {
			m[r.RunID] = append(m[r.RunID], r)
		}
		return m
	}
	fresh, kept := byRun(rows), byRun(old)
	var out []SweepRow
	planned := map[string]bool{}
	for _, r := range plan.Runs {
		planned[r.ID] = true
		if rs, ok := fresh[r.ID]; ok {
			out = append(out, rs...)
		} else {
			out = append(out, kept[r.ID]...)
		}
	}
	for _, r := range old {
		if !planned[r.RunID] {
			out = append(out, r)
		}
	}
	return out
}

// CheckPlan validates every run of a plan before any trains (and what
// `critlab sweep --dry-run` checks). A run that initialises from another
// run of the sweep is checked without that path, which does not exist yet.
// Runs not on disk yet are checked as new runs (CheckNew); a run that other
// runs continue (a trunk, a pretraining run) may end inside their warmup.
func CheckPlan(plan Plan, backend Backend) error {
	var errs []error
	checked := map[string]bool{}
	span := map[string]int{}
	for i := len(plan.Runs) - 1; i >= 0; i-- { // parents come before the runs that name them
		r := plan.Runs[i]
		span[r.ID] = max(span[r.ID], r.Config.Epochs)
		for _, dep := range r.After {
			span[dep] = max(span[dep], span[r.ID])
		}
	}
	refused := map[string]bool{}
	for _, r := range plan.Runs {
		cfg := r.Config
		if len(r.After) > 0 {
			cfg.InitFrom, cfg.BranchFrom, cfg.BranchEpoch = "", "", 0
		}
		if err := cfg.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("run %s: %w", r.ID, err))
			continue
		}
		// The backend's checks depend on these fields only.
		key := fmt.Sprintf("%s|%g|%s|%s|%d|%d|%d|%s", cfg.Model, cfg.Width, cfg.Data, cfg.DeficitWindows(), cfg.TrainSubset, cfg.BatchSize, cfg.Fisher.Images, cfg.Device)
		var err error
		if !checked[key] {
			checked[key] = true
			err = backend.Check(cfg)
		}
		if err == nil && !holds(filepath.Join(plan.Dir, r.ID), r.Config, plan.Dir) {
			err = cfg.checkEffect(span[r.ID]) // after the model's own checks, as CheckNew orders them
			if err != nil && refused[err.Error()] {
				continue // said for an earlier run
			}
		}
		if err != nil {
			refused[err.Error()] = true
			errs = append(errs, fmt.Errorf("run %s: %w", r.ID, err))
		}
	}
	return errors.Join(errs...)
}

// sweepRows labels the rows of the finished runs, in plan order.
func sweepRows(plan Plan, results map[string]*Result) []SweepRow {
	configs := map[string]Config{}
	for _, r := range plan.Runs {
		configs[r.ID] = r.Config
	}
	var rows []SweepRow
	for _, r := range plan.Runs {
		res, ok := results[r.ID]
		if !ok {
			continue
		}
		for _, l := range r.Labels {
			for _, m := range res.Rows {
				rows = append(rows, sweepRow(m, plan.Name, l.Variant, l.Point, r.Config, trainedBy(configs, r.ID, int(m.Epoch))))
			}
		}
	}
	return rows
}

// trainedBy is the run of the sweep that trained epoch of run id: the run
// itself, or for the epochs before a branch epoch the parent's (and so on
// up the chain).
func trainedBy(configs map[string]Config, id string, epoch int) string {
	for {
		cfg := configs[id]
		if cfg.BranchFrom == "" || epoch >= cfg.BranchEpoch {
			return id
		}
		id = filepath.Base(filepath.Clean(cfg.BranchFrom))
	}
}
