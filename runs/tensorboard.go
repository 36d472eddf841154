package runs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/critlab/critlab/internal/tbevent"
)

// TensorBoardDir is the folder of a run directory that holds its
// TensorBoard event files; `tensorboard --logdir` on a sweep directory
// shows each run as RUN/tb.
const TensorBoardDir = "tb"

// tensorBoard mirrors a run's metrics rows and Fisher traces into
// TensorBoard event files, one event per epoch (step = epoch). Event files
// are append-only, so each attempt of a run appends to a file of its own
// and writes only the (tag, step) values that no earlier file holds: a
// resumed run (which trains again the epochs after its checkpoint) never
// shows a step twice, and a reader watching the folder live is never
// handed a rewritten file.
type tensorBoard struct {
	dir     string
	w       *tbevent.Writer
	written map[tbKey]bool
}

type tbKey struct {
	tag  string
	step int64
}

// openTensorBoard reads what earlier attempts wrote in runDir; the file of
// this attempt is made on the first value to write.
func openTensorBoard(runDir string) (*tensorBoard, error) {
	dir := filepath.Join(runDir, TensorBoardDir)
	events, err := tbevent.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	tb := &tensorBoard{dir: dir, written: map[tbKey]bool{}}
	for _, e := range events {
		for _, s := range e.Scalars {
			tb.written[tbKey{s.Tag, e.Step}] = true
		}
	}
	return tb, nil
}

// sync writes the values of rows and fisher not written yet.
func (tb *tensorBoard) sync(rows []MetricsRow, fisher []FisherRow) error {
	byEpoch := map[int32][]FisherRow{}
	for _, f := range fisher {
		byEpoch[f.Epoch] = append(byEpoch[f.Epoch], f)
	}
	for _, r := range rows {
		var todo []tbevent.Scalar
		for _, s := range epochScalars(r, byEpoch[r.Epoch]) {
			if !tb.written[tbKey{s.Tag, int64(r.Epoch)}] {
				todo = append(todo, s)
			}
		}
		if len(todo) == 0 {
			continue
		}
		if tb.w == nil {
			w, err := tbevent.Create(tb.dir)
			if err != nil {
				return err
			}
			tb.w = w
		}
		if err := tb.w.Write(int64(r.Epoch), time.Now(), todo); err != nil {
			return err
		}
		for _, s := range todo {
			tb.written[tbKey{s.Tag, int64(r.Epoch)}] = true
		}
	}
	return nil
}

func (tb *tensorBoard) close() error {
	if tb == nil || tb.w == nil {
		return nil
	}
	return tb.w.Close()
}

// epochScalars are the TensorBoard values of an epoch: its metrics, and
// when Fisher was measured the trace and each layer's share of it.
func epochScalars(r MetricsRow, fisher []FisherRow) []tbevent.Scalar {
	s := []tbevent.Scalar{
		{Tag: "train/loss", Value: float32(r.TrainLoss)},
		{Tag: "train/acc", Value: float32(r.TrainAcc)},
		{Tag: "lr", Value: float32(r.LR)},
		{Tag: "images_per_sec", Value: float32(r.ImagesPerSec)},
		{Tag: "epoch_seconds", Value: float32(r.EpochSeconds)},
	}
	if r.TestLoss != nil && r.TestAcc != nil {
		s = append(s, tbevent.Scalar{Tag: "test/loss", Value: float32(*r.TestLoss)}, tbevent.Scalar{Tag: "test/acc", Value: float32(*r.TestAcc)})
	}
	if r.FisherTrace != nil {
		s = append(s, tbevent.Scalar{Tag: "fisher/trace", Value: float32(*r.FisherTrace)})
	}
	total := 0.0
	for _, f := range fisher {
		if f.Layer == FisherTotal {
			total = f.Trace
		}
	}
	for _, f := range fisher {
		if f.Layer != FisherTotal && total > 0 {
			s = append(s, tbevent.Scalar{Tag: "fisher/share/" + f.Layer, Value: float32(f.Trace / total)})
		}
	}
	return s
}

// clearTensorBoard removes a run's event files (see clearRun).
func clearTensorBoard(runDir string) error {
	dir := filepath.Join(runDir, TensorBoardDir)
	files, err := tbevent.Files(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := os.Remove(f); err != nil {
			return fmt.Errorf("clear run %s: %w", runDir, err)
		}
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) && !isNotEmpty(err) {
		return fmt.Errorf("clear run %s: %w", runDir, err)
	}
	return nil
}
