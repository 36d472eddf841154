package runs

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/critlab/critlab/internal/dirlock"
)

// PointState is where one planned run of a sweep stands.
type PointState string

const (
	// PointPlanned: nothing on disk and no job.
	PointPlanned PointState = "planned"
	// PointQueued: a scheduler's job waits to run it.
	PointQueued PointState = "queued"
	// PointRunning: a scheduler's job runs it, or a local process holds
	// its run directory's lock (Detail names the PID).
	PointRunning PointState = "running"
	// PointFinished: its directory holds the finished run.
	PointFinished PointState = "finished"
	// PointFailed: its last attempt stopped on an error.
	PointFailed PointState = "failed"
	// PointStopped: unfinished, with no live job or process on it:
	// stopped by a signal, a kill or a crash.
	PointStopped PointState = "stopped"
)

// Job is what a scheduler reports of the job of one run.
type Job struct {
	// ID is the scheduler's job id (for Slurm arrays JOBID_TASK).
	ID string
	// State is PointQueued or PointRunning while the job is alive, empty
	// once the scheduler no longer lists it.
	State PointState
	// Reason says why a queued job waits (Slurm's reason, e.g. Dependency).
	Reason string
	// Log is the job's output file, whose last line a failure reports.
	Log string
}

// PointStatus is one row of `critlab sweep status`.
type PointStatus struct {
	Index int
	ID    string
	State PointState
	// Epoch is the number of finished epochs, of Epochs.
	Epoch, Epochs int
	// Job is the scheduler's job id, when one was submitted.
	Job string
	// Detail is a queued job's reason or a failure's last error line.
	Detail string
}

// SweepStatus reads the state of every planned run of the sweep in dir
// from its run directory, and from jobs (by run id: what a scheduler
// knows; nil when none), never from a process's memory.
func SweepStatus(dir string, jobs map[string]Job) ([]PointStatus, error) {
	_, plan, err := LoadPlan(dir)
	if err != nil {
		return nil, err
	}
	out := make([]PointStatus, len(plan.Runs))
	for i, r := range plan.Runs {
		rdir := filepath.Join(dir, r.ID)
		st := PointStatus{Index: i, ID: r.ID, State: PointPlanned, Epochs: r.Config.Epochs}
		state, _, err := Inspect(rdir)
		if err != nil {
			return nil, err
		}
		if rows, err := readParquet[MetricsRow](filepath.Join(rdir, MetricsFile), true); err == nil {
			st.Epoch = len(rows)
		}
		job, hasJob := jobs[r.ID]
		st.Job = job.ID
		switch {
		case state == StateFinished:
			st.State = PointFinished
		case hasJob && job.State != "":
			st.State, st.Detail = job.State, job.Reason
		case state == StateUnfinished && !exists(filepath.Join(rdir, LogFile)):
			// Only the config.yaml that PrepareSweep wrote.
		case state == StateUnfinished:
			if pid, held := dirlock.Holder(rdir); held {
				// A local sweep or train trains it now.
				st.State, st.Detail = PointRunning, "PID "+pid
				break
			}
			st.State = PointStopped
			if line := lastLine(filepath.Join(rdir, LogFile)); strings.Contains(line, " stopped: ") {
				_, msg, _ := strings.Cut(line, " stopped: ")
				if !strings.HasSuffix(msg, context.Canceled.Error()) {
					st.State = PointFailed
				}
				st.Detail = msg
			}
		}
		// A job that ended before its run wrote anything, or whose error
		// only its output file holds (a crash, a time limit, a cancel).
		if hasJob && job.State == "" && st.State != PointFinished && job.Log != "" {
			if line := lastLine(job.Log); line != "" && st.Detail == "" {
				st.State, st.Detail = PointFailed, line
			}
		}
		out[i] = st
	}
	return out, nil
}

// lastLine is the last non-empty line of a file, empty when unreadable.
func lastLine(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	data = bytes.TrimRight(data, "\n")
	return string(data[bytes.LastIndexByte(data, '\n')+1:])
}

// WriteStatus prints points as a table and a count per state.
func WriteStatus(w io.Writer, points []PointStatus) error {
	table := [][]string{{"#", "RUN", "STATE", "EPOCH", "JOB", "DETAIL"}}
	count := map[PointState]int{}
	for _, p := range points {
		count[p.State]++
		table = append(table, []string{strconv.Itoa(p.Index), p.ID, string(p.State),
			fmt.Sprintf("%d/%d", p.Epoch, p.Epochs), p.Job, p.Detail})
	}
	// writeAligned right-aligns all but the first column; pad the names
	// and states to the left by hand.
	for _, col := range []int{1, 2, 5} {
		width := 0
		for _, row := range table {
			width = max(width, len(row[col]))
		}
		for _, row := range table {
			row[col] += strings.Repeat(" ", width-len(row[col]))
		}
	}
	writeAligned(w, table)
	var parts []string
	for _, s := range []PointState{PointFinished, PointRunning, PointQueued, PointStopped, PointFailed, PointPlanned} {
		if count[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[s], s))
		}
	}
	_, err := fmt.Fprintf(w, "%d runs: %s\n", len(points), strings.Join(parts, ", "))
	return err
}
