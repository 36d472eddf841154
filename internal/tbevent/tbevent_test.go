package tbevent

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/critlab/critlab/internal/pyenv"
)

// tensorboardScalars reads dir with TensorBoard's EventAccumulator and
// returns tag -> [[step, value], ...].
func tensorboardScalars(t *testing.T, dir string) map[string][][2]float64 {
	t.Helper()
	py := pyenv.Require(t, "tensorboard")
	script := `
import json, sys
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
acc = EventAccumulator(sys.argv[1], size_guidance={"scalars": 0})
acc.Reload()
print(json.dumps({tag: [[e.step, e.value] for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}))
`
	out, err := exec.Command(py, "-c", script, dir).Output()
	if err != nil {
		t.Fatalf("tensorboard reader: %v", err)
	}
	var got map[string][][2]float64
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("tensorboard reader output %q: %v", out, err)
	}
	return got
}

func TestTensorBoardReadsEvents(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 0)
	events := []Event{
		{Step: 0, Scalars: []Scalar{{"train/loss", 2.25}, {"lr", 0.1}}},
		{Step: 1, Scalars: []Scalar{{"train/loss", 1.5}, {"lr", 0.05}, {"fisher/share/conv 1", 0.375}}},
		{Step: 2, Scalars: []Scalar{{"train/loss", 1.125}}},
	}
	for _, e := range events {
		if err := w.Write(e.Step, at, e.Scalars); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	want := map[string][][2]float64{
		"train/loss":          {{0, 2.25}, {1, 1.5}, {2, 1.125}},
		"lr":                  {{0, float64(float32(0.1))}, {1, float64(float32(0.05))}},
		"fisher/share/conv 1": {{1, 0.375}},
	}
	// JSON rounds the float32 values TensorBoard returns as doubles.
	got := tensorboardScalars(t, dir)
	for tag, pts := range want {
		for i := range pts {
			pts[i][1] = float64(float32(pts[i][1]))
		}
		for i := range got[tag] {
			got[tag][i][1] = float64(float32(got[tag][i][1]))
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TensorBoard read %v, want %v", got, want)
	}

	// The package's own reader agrees.
	back, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for i := range back {
		if back[i].WallTime != 1700000000 {
			t.Errorf("event %d wall time %v, want 1700000000", i, back[i].WallTime)
		}
		back[i].WallTime = 0
	}
	if !reflect.DeepEqual(back, events) {
		t.Errorf("ReadDir = %v, want %v", back, events)
	}
}

// A writer killed mid-record leaves a torn tail: the reader keeps the
// events before it, and a bad checksum is an error.
func TestReadTornAndCorrupt(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []int64 // the file's size after each event
	for step := int64(0); step < 3; step++ {
		if err := w.Write(step, time.Now(), []Scalar{{"x", float32(step)}}); err != nil {
			t.Fatal(err)
		}
		st, err := os.Stat(w.Path())
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, st.Size())
	}
	w.Close()
	b, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		data  []byte
		steps int
		fails bool
	}{
		{"whole", b, 3, false},
		{"torn data", b[:len(b)-3], 2, false},
		{"torn header", b[:sizes[1]+6], 2, false},
		{"torn crc", b[:sizes[1]+14], 2, false},
		{"bad data crc", flip(b, len(b)-1), 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := t.TempDir() + "/events.out.tfevents.1"
			if err := os.WriteFile(p, tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
			evs, err := ReadFile(p)
			if (err != nil) != tc.fails {
				t.Fatalf("ReadFile error %v, want failure %v", err, tc.fails)
			}
			if !tc.fails && len(evs) != tc.steps {
				t.Errorf("read %d events, want %d", len(evs), tc.steps)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	c := append([]byte(nil), b...)
	c[i] ^= 1
	return c
}

// A run resumed in the same second as the process it follows, under a
// smaller PID, still writes a file that sorts after the first: otherwise
// TensorBoard reads the resumed steps first, takes the first file's
// lower steps for a restart and drops the resumed ones.
func TestCreateSortsAfterExistingFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(steps ...int64) string {
		w, err := Create(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			if err := w.Write(s, time.Now(), []Scalar{{"train/loss", float32(s)}}); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		return w.path
	}
	first := write(0, 1)
	// As the first process's file would be named in this same second by a
	// host and PID that sort after this process's.
	secs, _ := fileSeconds(filepath.Base(first))
	renamed := filepath.Join(dir, fmt.Sprintf("events.out.tfevents.%010d.zzzz.99999999.0", secs))
	if err := os.Rename(first, renamed); err != nil {
		t.Fatal(err)
	}
	second := write(2, 3)
	files, err := Files(dir)
	if err != nil || len(files) != 2 || files[1] != second {
		t.Fatalf("files %v (%v), want the new file %s last", files, err, second)
	}
	want := [][2]float64{{0, 0}, {1, 1}, {2, 2}, {3, 3}}
	if got := tensorboardScalars(t, dir)["train/loss"]; !reflect.DeepEqual(got, want) {
		t.Errorf("TensorBoard read train/loss %v, want %v", got, want)
	}
}
