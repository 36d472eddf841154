package runs

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// SlurmSpec are the scheduler settings of a sweep submitted to Slurm (the
// `slurm:` section of a sweep spec; `critlab sweep --executor slurm` flags
// override them). They do not change results.
type SlurmSpec struct {
	// Partition is sbatch --partition; empty means the cluster's default.
	Partition string `yaml:"partition,omitempty"`
	// Time is each job's limit (sbatch --time, e.g. 4:00:00).
	Time string `yaml:"time,omitempty"`
	// CPUs per run (sbatch --cpus-per-task); 0 means the runs' thread
	// count, which a new sweep takes from CPUs (else 1) and then pins.
	CPUs int `yaml:"cpus,omitempty"`
	// GPUs per run (sbatch --gres=gpu:N).
	GPUs int `yaml:"gpus,omitempty"`
	// Mem is each job's memory (sbatch --mem, e.g. 8G).
	Mem string `yaml:"mem,omitempty"`
	// Args are more sbatch arguments for every job (e.g. --account=lab).
	Args []string `yaml:"args,omitempty"`
	// Binary is the critlab executable on the nodes; empty means this one.
	Binary string `yaml:"binary,omitempty"`
	// ORTLib is the ONNX Runtime library on the nodes; empty means the
	// nodes resolve it as critlab does ($CRITLAB_ORT_LIB, .deps/).
	ORTLib string `yaml:"ort_lib,omitempty"`
	// Requeue asks Slurm for SIGUSR1 Signal seconds before a job's time
	// limit (--signal=B:USR1@S --requeue): the run stops at its last
	// finished epoch and the job puts itself back in the queue.
	Requeue bool `yaml:"requeue,omitempty"`
	// Signal is those seconds; 0 means 120.
	Signal int `yaml:"signal,omitempty"`
}

// Files of a sweep directory that the slurm executor writes.
const (
	// SlurmDir holds the job record and the jobs' output.
	SlurmDir = "slurm"
	// slurmJobs records every submitted job, one "RUN\tJOB" line each;
	// the last line of a run wins.
	slurmJobs = "jobs.tsv"
	// collectID names the collecting job in slurmJobs.
	collectID = "(collect)"
)

// SlurmOptions are the knobs of SubmitSweep that are not scheduler
// settings.
type SlurmOptions struct {
	// Backend checks the runs before anything is submitted; required.
	Backend Backend
	// Throttle is how many runs of one array run at once (--array=...%K);
	// 0 means the spec's jobs, then no limit.
	Throttle int
	// NoReport makes the collecting job write sweep.parquet only.
	NoReport bool
	// Log receives one line per submitted job; nil means none.
	Log io.Writer
}

// Submission is what SubmitSweep did.
type Submission struct {
	Plan Plan
	// Jobs maps each unfinished run to its job: submitted now, or alive
	// from an earlier submission.
	Jobs map[string]string
	// Submitted counts the runs submitted now; Finished those already done.
	Submitted, Finished int
	// Collect is the job that writes sweep.parquet and the report, empty
	// when nothing was left to run.
	Collect string
}

// SubmitSweep runs the sweep in dir on Slurm: it plans and checks every
// run, writes sweep.yaml and each run's config.yaml, and submits each
// unfinished run that no live job of an earlier submission holds: runs
// that start from nothing as one job array, each group of runs that starts
// from the same parents as an array that depends on exactly those parents'
// array tasks (afterok), and a last job, after all of them, that runs
// `critlab sweep collect`. The array task id of a run is its index in the
// plan, which `critlab sweep run-point` reads. Jobs are recorded in
// dir/slurm/jobs.tsv; two submissions of one sweep are serialised by a
// lock (the sweep directory's), and the second submits only what the
// first did not.
func SubmitSweep(ctx context.Context, spec SweepSpec, dir string, opts SlurmOptions) (*Submission, error) {
	backend := opts.Backend
	if backend == nil {
		return nil, ErrNoBackend
	}
	set := SlurmSpec{}
	if spec.Slurm != nil {
		set = *spec.Slurm
	}
	if set.CPUs < 0 || set.GPUs < 0 || set.Signal < 0 {
		return nil, fmt.Errorf("%w: slurm: cpus %d, gpus %d, signal %d: want 0 or more", ErrInvalidConfig, set.CPUs, set.GPUs, set.Signal)
	}
	lock, err := lockSweep(dir)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	plan, err := prepareSweep(spec, dir, backend, set.CPUs)
	if err != nil {
		return nil, err
	}
	if set.CPUs == 0 && len(plan.Runs) > 0 {
		set.CPUs = plan.Runs[0].Config.Threads // the pinned count
	}
	if set.Binary == "" {
		if set.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("slurm: the critlab binary: %w (set slurm.binary)", err)
		}
	}
	throttle := opts.Throttle
	if throttle <= 0 {
		throttle = spec.Jobs
	}
	s, err := openSlurm(dir, plan.Name)
	if err != nil {
		return nil, err
	}
	live, stuck, err := s.liveJobs(ctx)
	if err != nil {
		return nil, err
	}
	if len(stuck) > 0 {
		// Jobs whose parents failed in an earlier submission wait forever.
		if err := s.command(ctx, "scancel", stuck...); err != nil {
			return nil, err
		}
	}
	sub := &Submission{Plan: plan, Jobs: map[string]string{}}
	type array struct {
		n       int // position in arrays
		deps    []string
		indices []string
		ids     []string
	}
	var arrays []*array
	level := map[string]int{}
	for i, r := range plan.Runs {
		level[r.ID] = 0
		var deps []string
		for _, p := range r.After {
			l, ok := level[p]
			if !ok {
				return nil, fmt.Errorf("sweep %s: run %s is planned before %s, which it starts from", plan.Name, p, r.ID)
			}
			level[r.ID] = max(level[r.ID], l+1)
			if job, ok := sub.Jobs[p]; ok {
				deps = append(deps, job)
			}
		}
		if state, _, err := Inspect(filepath.Join(dir, r.ID)); err != nil {
			return nil, err
		} else if state == StateFinished {
			sub.Finished++
			continue
		}
		if job, ok := live[r.ID]; ok {
			sub.Jobs[r.ID] = job.ID
			continue
		}
		slices.Sort(deps)
		deps = slices.Compact(deps)
		var a *array
		for _, b := range arrays {
			if slices.Equal(b.deps, deps) {
				a = b
			}
		}
		if a == nil {
			a = &array{n: len(arrays), deps: deps}
			arrays = append(arrays, a)
		}
		a.indices = append(a.indices, strconv.Itoa(i))
		a.ids = append(a.ids, r.ID)
		// The array's job id is known only once it is submitted; arrays
		// are submitted in order and a run's parents come before it.
		sub.Jobs[r.ID] = fmt.Sprintf("@%d_%d", a.n, i)
	}

	runCmd := []string{set.Binary, "sweep", "run-point", dir}
	if set.Requeue {
		runCmd = append(runCmd, "--requeue")
	}
	jobIDs := make([]string, len(arrays))
	resolve := func(ref string) string {
		if rest, ok := strings.CutPrefix(ref, "@"); ok {
			a, task, _ := strings.Cut(rest, "_")
			n, _ := strconv.Atoi(a)
			return jobIDs[n] + "_" + task
		}
		return ref
	}
	deps := func(refs []string) []string {
		out := make([]string, len(refs))
		for i, r := range refs {
			out[i] = resolve(r)
		}
		return out
	}
	var all []string
	for n, a := range arrays {
		args := s.jobArgs(set, true)
		tasks := strings.Join(a.indices, ",")
		if throttle > 0 && len(a.indices) > throttle {
			tasks += "%" + strconv.Itoa(throttle)
		}
		args = append(args, "--array="+tasks, "--output="+filepath.Join(s.dir, "logs", "%A_%a.out"))
		if len(a.deps) > 0 {
			args = append(args, "--dependency=afterok:"+strings.Join(deps(a.deps), ":"), "--kill-on-invalid-dep=yes")
		}
		id, err := s.sbatch(ctx, args, runCmd, set.ORTLib)
		if err != nil {
			return sub, fmt.Errorf("submit %s: %w", strings.Join(a.ids, ", "), err)
		}
		jobIDs[n] = id
		all = append(all, id)
		var rec []string
		for _, rid := range a.ids {
			sub.Jobs[rid] = resolve(sub.Jobs[rid])
			rec = append(rec, rid+"\t"+sub.Jobs[rid])
		}
		if err := s.record(rec...); err != nil {
			return sub, err
		}
		sub.Submitted += len(a.ids)
		if opts.Log != nil {
			after := ""
			if len(a.deps) > 0 {
				after = " after " + strings.Join(deps(a.deps), ", ")
			}
			fmt.Fprintf(opts.Log, "job %s: %d runs (%s)%s\n", id, len(a.ids), strings.Join(a.ids, " "), after)
		}
	}
	if len(sub.Jobs) == 0 {
		return sub, nil
	}
	for _, job := range live {
		all = append(all, job.ID)
	}
	slices.Sort(all)
	all = slices.Compact(all)
	collect := []string{set.Binary, "sweep", "collect", dir}
	if opts.NoReport {
		collect = append(collect, "--no-report")
	}
	args := append(s.jobArgs(set, false), "--output="+filepath.Join(s.dir, "logs", "collect-%j.out"),
		"--dependency=afterany:"+strings.Join(all, ":"))
	if sub.Collect, err = s.sbatch(ctx, args, collect, set.ORTLib); err != nil {
		return sub, fmt.Errorf("submit the collecting job: %w", err)
	}
	if opts.Log != nil {
		fmt.Fprintf(opts.Log, "job %s: sweep.parquet and the report, after the others\n", sub.Collect)
	}
	return sub, s.record(collectID + "\t" + sub.Collect)
}

// slurm talks to Slurm's commands for one sweep directory.
type slurm struct {
	dir     string // dir/slurm, absolute
	jobName string
}

func openSlurm(sweepDir, name string) (*slurm, error) {
	abs, err := filepath.Abs(filepath.Join(sweepDir, SlurmDir))
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(abs, "logs"), 0o755); err != nil {
		return nil, fmt.Errorf("slurm: %w", err)
	}
	return &slurm{dir: abs, jobName: "critlab-" + name}, nil
}

// jobArgs are the sbatch arguments of every job; perRun adds the
// resources of one run.
func (s *slurm) jobArgs(set SlurmSpec, perRun bool) []string {
	wd, _ := os.Getwd()
	args := []string{"--parsable", "--job-name=" + s.jobName, "--chdir=" + wd, "--open-mode=append"}
	if set.Partition != "" {
		args = append(args, "--partition="+set.Partition)
	}
	if set.Time != "" {
		args = append(args, "--time="+set.Time)
	}
	if set.Mem != "" {
		args = append(args, "--mem="+set.Mem)
	}
	if perRun {
		args = append(args, "--cpus-per-task="+strconv.Itoa(max(1, set.CPUs)))
		if set.GPUs > 0 {
			args = append(args, "--gres=gpu:"+strconv.Itoa(set.GPUs))
		}
		if set.Requeue {
			signal := set.Signal
			if signal == 0 {
				signal = 120
			}
			args = append(args, "--requeue", fmt.Sprintf("--signal=B:USR1@%d", signal))
		}
	}
	return append(args, set.Args...)
}

// sbatch submits a job that execs cmd and returns its id.
func (s *slurm) sbatch(ctx context.Context, args, cmd []string, ortLib string) (string, error) {
	script := "exec " + shellJoin(cmd)
	if ortLib != "" {
		script = "export CRITLAB_ORT_LIB=" + shellQuote(ortLib) + "\n" + script
	}
	var out, stderr bytes.Buffer
	c := exec.CommandContext(ctx, "sbatch", append(args, "--wrap="+script)...)
	c.Stdout, c.Stderr = &out, &stderr
	if err := c.Run(); err != nil {
		return "", fmt.Errorf("sbatch %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	id, _, _ := strings.Cut(strings.TrimSpace(out.String()), ";")
	if _, err := strconv.Atoi(id); err != nil {
		return "", fmt.Errorf("sbatch printed %q, want a job id", out.String())
	}
	return id, nil
}

func (s *slurm) command(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

func (s *slurm) record(lines ...string) error {
	f, err := os.OpenFile(filepath.Join(s.dir, slurmJobs), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("slurm: %w", err)
	}
	_, err = f.WriteString(strings.Join(lines, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("slurm: record jobs: %w", err)
	}
	return nil
}

// recorded is the last job recorded for each run.
func (s *slurm) recorded() (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join(s.dir, slurmJobs))
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("slurm: %w", err)
	}
	jobs := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if run, job, ok := strings.Cut(sc.Text(), "\t"); ok {
			jobs[run] = job
		}
	}
	return jobs, nil
}

// neverRuns is Slurm's reason for a job whose dependency failed.
const neverRuns = "DependencyNeverSatisfied"

// liveJobs returns the recorded jobs Slurm still lists, by run, and the
// ids of those that wait for a dependency that failed. Without squeue it
// returns none.
func (s *slurm) liveJobs(ctx context.Context) (map[string]Job, []string, error) {
	rec, err := s.recorded()
	if err != nil || len(rec) == 0 {
		return nil, nil, err
	}
	if _, err := exec.LookPath("squeue"); err != nil {
		return nil, nil, nil
	}
	var stderr bytes.Buffer
	c := exec.CommandContext(ctx, "squeue", "-h", "-r", "-n", s.jobName, "-o", "%i|%T|%r")
	c.Stderr = &stderr
	out, err := c.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("squeue: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	type entry struct{ state, reason string }
	queue := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Split(line, "|"); len(f) == 3 {
			queue[f[0]] = entry{f[1], f[2]}
		}
	}
	live := map[string]Job{}
	var stuck []string
	for run, id := range rec {
		e, ok := queue[id]
		switch {
		case !ok:
		case e.reason == neverRuns:
			stuck = append(stuck, id)
		case run == collectID:
		default:
			state := PointQueued
			switch e.state {
			case "RUNNING", "COMPLETING", "STAGE_OUT":
				state = PointRunning
			}
			reason := e.reason
			if reason == "None" {
				reason = ""
			}
			live[run] = Job{ID: id, State: state, Reason: reason}
		}
	}
	slices.Sort(stuck)
	return live, stuck, nil
}

// SlurmJobs is what Slurm and the job record of the sweep in dir say of
// its runs, for SweepStatus: every recorded job with its state while
// squeue lists it and its output file.
func SlurmJobs(ctx context.Context, dir string) (map[string]Job, error) {
	s := &slurm{dir: filepath.Join(dir, SlurmDir)}
	rec, err := s.recorded()
	if err != nil || len(rec) == 0 {
		return nil, err
	}
	_, plan, err := LoadPlan(dir)
	if err != nil {
		return nil, err
	}
	s.jobName = "critlab-" + plan.Name
	live, _, err := s.liveJobs(ctx)
	if err != nil {
		return nil, err
	}
	jobs := map[string]Job{}
	for run, id := range rec {
		if run == collectID {
			continue
		}
		j, ok := live[run]
		if !ok {
			j = Job{ID: id}
		}
		j.Log = filepath.Join(s.dir, "logs", id+".out")
		jobs[run] = j
	}
	return jobs, nil
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r == ':' || r == '=' || r == '@' || r == '+' || r == ',' ||
			('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') || ('0' <= r && r <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func shellJoin(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}
