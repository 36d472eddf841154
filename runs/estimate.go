package runs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/critlab/critlab/internal/progress"
)

// Estimate is what a sweep costs: the epochs and training images it
// trains, and the wall time expected on this machine with Source saying
// where that figure comes from (Wall is 0 when nothing was measured).
type Estimate struct {
	Epochs int
	Images int64
	Wall   time.Duration
	Source string
}

// EstimatePlan totals the epochs and images of plan (trainSize gives a
// run's training images per epoch, 0 when unknown) and estimates its wall
// time, workers runs at a time, from the first measurement there is: the
// epochs the sweep's runs already trained in plan.Dir (epoch_seconds,
// evaluation included), else `critlab bench --json` output at benchPath
// (train steps of the same model and width on all cores; evaluation
// excluded).
func EstimatePlan(plan Plan, trainSize func(Config) int, workers int, benchPath string) Estimate {
	var e Estimate
	for _, r := range plan.Runs {
		n := r.Config.Epochs - r.Config.BranchEpoch
		e.Epochs += n
		e.Images += int64(n) * int64(trainSize(r.Config))
	}
	workers = max(1, min(workers, len(plan.Runs)))
	var secs float64
	var epochs int
	for _, r := range plan.Runs {
		rows, err := readParquet[MetricsRow](filepath.Join(plan.Dir, r.ID, MetricsFile), true)
		if err != nil {
			continue
		}
		for _, row := range rows {
			secs += row.EpochSeconds
			epochs++
		}
	}
	if epochs > 0 {
		mean := secs / float64(epochs)
		e.Wall = time.Duration(float64(e.Epochs) * mean / float64(workers) * float64(time.Second))
		e.Source = fmt.Sprintf("%d epochs already in %s, %.1f s each, %d runs at a time", epochs, plan.Dir, mean, workers)
		return e
	}
	if ips, ok := benchRate(benchPath, plan.Runs[0].Config); ok && e.Images > 0 {
		e.Wall = time.Duration(float64(e.Images) / ips * float64(time.Second))
		e.Source = fmt.Sprintf("%s: %.0f img/s train steps of %s width %g on all cores; evaluation not counted", benchPath, ips, plan.Runs[0].Config.Model, plan.Runs[0].Config.Width)
		return e
	}
	e.Source = fmt.Sprintf("no throughput measured on this machine: run `critlab bench --json %s`, or start the sweep (its bar shows an ETA after the first epoch)", benchPath)
	return e
}

// benchRate is the train-step images/s that `critlab bench --json` wrote
// at path for cfg's model and width.
func benchRate(path string, cfg Config) (float64, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	var b struct {
		Models []struct {
			Model string  `json:"model"`
			Width float64 `json:"width"`
			Train struct {
				ImagesPerSec float64 `json:"images_per_sec"`
			} `json:"train_step"`
		} `json:"models"`
	}
	if json.Unmarshal(data, &b) != nil {
		return 0, false
	}
	for _, m := range b.Models {
		if m.Model == cfg.Model && m.Width == cfg.Width && m.Train.ImagesPerSec > 0 {
			return m.Train.ImagesPerSec, true
		}
	}
	return 0, false
}

// String is the estimate as `sweep --dry-run` prints it.
func (e Estimate) String() string {
	wall := "unknown: " + e.Source
	if e.Wall > 0 {
		wall = fmt.Sprintf("about %s (from %s)", progress.Duration(e.Wall), e.Source)
	}
	images := "unknown"
	if e.Images > 0 {
		images = fmt.Sprint(e.Images)
	}
	return fmt.Sprintf("total: %d epochs, %s training images; wall time %s\n", e.Epochs, images, wall)
}
