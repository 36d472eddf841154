package tbevent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// FileVersion is the version string of the first event of every file.
const FileVersion = "brain.Event:2"

// Field numbers of event.proto and summary.proto.
const (
	eventWallTime    protowire.Number = 1 // double
	eventStep        protowire.Number = 2 // int64
	eventFileVersion protowire.Number = 3 // string
	eventSummary     protowire.Number = 5 // Summary
	summaryValue     protowire.Number = 1 // repeated Value
	valueTag         protowire.Number = 1 // string
	valueSimple      protowire.Number = 2 // float
)

// Scalar is one tagged value of an event.
type Scalar struct {
	Tag   string
	Value float32
}

// Event is a scalar summary at a step.
type Event struct {
	Step     int64
	WallTime float64 // seconds since the Unix epoch
	Scalars  []Scalar
}

// Writer appends events to one file.
type Writer struct {
	f    *os.File
	path string
}

// Create makes dir and a new event file in it, named as TensorBoard's
// writers name theirs (events.out.tfevents.SECONDS.HOST.PID), and writes
// the file-version event. Readers, TensorBoard's included, take a
// directory's files in name order, and TensorBoard takes a step lower than
// one it has read for a restart and drops the later steps. So the new file
// must sort after every file already there, even one written in the same
// second by a process with a larger PID (a run resumed at once after a
// kill): its SECONDS is past every existing file's.
func Create(dir string) (*Writer, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("tensorboard events: %w", err)
	}
	existing, err := Files(dir)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	host = strings.NewReplacer("/", "_", ".", "_").Replace(host)
	now := time.Now()
	secs := now.Unix()
	for _, f := range existing {
		if s, ok := fileSeconds(filepath.Base(f)); ok && s >= secs {
			secs = s + 1
		}
	}
	// The pid and a counter keep apart two files of one second.
	for i := 0; ; i++ {
		name := fmt.Sprintf("events.out.tfevents.%010d.%s.%d.%d", secs, host, os.Getpid(), i)
		path := filepath.Join(dir, name)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("tensorboard events: %w", err)
		}
		w := &Writer{f: f, path: path}
		var b []byte
		b = protowire.AppendTag(b, eventWallTime, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(wallTime(now)))
		b = protowire.AppendTag(b, eventFileVersion, protowire.BytesType)
		b = protowire.AppendString(b, FileVersion)
		if err := w.record(b); err != nil {
			f.Close()
			return nil, err
		}
		return w, nil
	}
}

// Path is the file the writer appends to.
func (w *Writer) Path() string { return w.path }

// Write appends one event with the scalars at step. Each event is one
// write call, so a reader sees whole events (or a torn last one, which
// TensorBoard's reader waits on).
func (w *Writer) Write(step int64, at time.Time, scalars []Scalar) error {
	if len(scalars) == 0 {
		return nil
	}
	var summary []byte
	for _, s := range scalars {
		var v []byte
		v = protowire.AppendTag(v, valueTag, protowire.BytesType)
		v = protowire.AppendString(v, s.Tag)
		v = protowire.AppendTag(v, valueSimple, protowire.Fixed32Type)
		v = protowire.AppendFixed32(v, math.Float32bits(s.Value))
		summary = protowire.AppendTag(summary, summaryValue, protowire.BytesType)
		summary = protowire.AppendBytes(summary, v)
	}
	var b []byte
	b = protowire.AppendTag(b, eventWallTime, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(wallTime(at)))
	b = protowire.AppendTag(b, eventStep, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(step))
	b = protowire.AppendTag(b, eventSummary, protowire.BytesType)
	b = protowire.AppendBytes(b, summary)
	return w.record(b)
}

// Close closes the file.
func (w *Writer) Close() error {
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("tensorboard events %s: %w", w.path, err)
	}
	return nil
}

// record writes data in TFRecord framing: length, masked CRC-32C of the
// length, data, masked CRC-32C of the data.
func (w *Writer) record(data []byte) error {
	b := make([]byte, 0, len(data)+16)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(data)))
	b = binary.LittleEndian.AppendUint32(b, maskedCRC(b[:8]))
	b = append(b, data...)
	b = binary.LittleEndian.AppendUint32(b, maskedCRC(data))
	if _, err := w.f.Write(b); err != nil {
		return fmt.Errorf("tensorboard events %s: %w", w.path, err)
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

func wallTime(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// fileSeconds is the SECONDS field of an event file's name.
func fileSeconds(name string) (int64, bool) {
	_, rest, ok := strings.Cut(name, "tfevents.")
	if !ok {
		return 0, false
	}
	field, _, _ := strings.Cut(rest, ".")
	s, err := strconv.ParseInt(field, 10, 64)
	return s, err == nil
}

// Files returns the event files of dir in the order TensorBoard reads them
// (by name); none when dir does not exist.
func Files(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("tensorboard events: %w", err)
	}
	var files []string
	for _, e := range ents {
		if !e.IsDir() && strings.Contains(e.Name(), "tfevents") {
			files = append(files, filepath.Join(dir, e.Name()))
		}
	}
	sort.Strings(files)
	return files, nil
}

// ReadDir returns the scalar events of every event file of dir, file by
// file in reading order.
func ReadDir(dir string) ([]Event, error) {
	files, err := Files(dir)
	if err != nil {
		return nil, err
	}
	var events []Event
	for _, f := range files {
		evs, err := ReadFile(f)
		if err != nil {
			return nil, err
		}
		events = append(events, evs...)
	}
	return events, nil
}

// ReadFile returns the scalar events of an event file. A torn last record
// (a writer killed mid-write) ends the file; a bad checksum elsewhere is an
// error.
func ReadFile(path string) ([]Event, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("tensorboard events: %w", err)
	}
	var events []Event
	for len(b) > 0 {
		if len(b) < 12 {
			break // torn
		}
		n := binary.LittleEndian.Uint64(b)
		if maskedCRC(b[:8]) != binary.LittleEndian.Uint32(b[8:]) {
			return nil, fmt.Errorf("tensorboard events %s: bad length checksum", path)
		}
		if uint64(len(b)-12) < n+4 {
			break // torn
		}
		data := b[12 : 12+n]
		if maskedCRC(data) != binary.LittleEndian.Uint32(b[12+n:]) {
			return nil, fmt.Errorf("tensorboard events %s: bad data checksum", path)
		}
		b = b[16+n:]
		ev, err := decodeEvent(data)
		if err != nil {
			return nil, fmt.Errorf("tensorboard events %s: %w", path, err)
		}
		if len(ev.Scalars) > 0 {
			events = append(events, ev)
		}
	}
	return events, nil
}

// decodeEvent reads the fields of an Event this package writes, skipping
// the others.
func decodeEvent(b []byte) (Event, error) {
	var ev Event
	err := walk(b, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
		switch {
		case num == eventWallTime && typ == protowire.Fixed64Type:
			ev.WallTime = math.Float64frombits(x)
		case num == eventStep && typ == protowire.VarintType:
			ev.Step = int64(x)
		case num == eventSummary && typ == protowire.BytesType:
			return walk(v, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
				if num != summaryValue || typ != protowire.BytesType {
					return nil
				}
				var s Scalar
				hasValue := false
				err := walk(v, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
					switch {
					case num == valueTag && typ == protowire.BytesType:
						s.Tag = string(v)
					case num == valueSimple && typ == protowire.Fixed32Type:
						s.Value, hasValue = math.Float32frombits(uint32(x)), true
					}
					return nil
				})
				if err == nil && hasValue {
					ev.Scalars = append(ev.Scalars, s)
				}
				return err
			})
		}
		return nil
	})
	return ev, err
}

// walk calls f for each field of a protobuf message: v holds a bytes
// field's content, x a number field's bits.
func walk(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		var (
			v []byte
			x uint64
		)
		switch typ {
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		case protowire.Fixed32Type:
			var x32 uint32
			x32, n = protowire.ConsumeFixed32(b)
			x = uint64(x32)
		case protowire.Fixed64Type:
			x, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := f(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}
