package preprocessing

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Errors returned by this package wrap one of these where it
// applies, so callers can test with errors.Is.
var (
	// ErrUnknownSpec: a data set spec names no known kind.
	ErrUnknownSpec = errors.New("preprocessing: unknown data set spec")
	// ErrUnknownDeficit: a deficit spec names no known deficit or parameter.
	ErrUnknownDeficit = errors.New("preprocessing: unknown deficit")
	// ErrFormat: a file is not in the expected layout (truncated, corrupt,
	// wrong record size, undecodable image, empty class folder).
	ErrFormat = errors.New("preprocessing: bad data")
	// ErrChecksum: a downloaded or imported file does not have the expected MD5.
	ErrChecksum = errors.New("preprocessing: checksum mismatch")
	// ErrInterrupted: a transfer stopped before the whole file arrived; the
	// partial file is kept and the next fetch resumes it.
	ErrInterrupted = errors.New("preprocessing: transfer interrupted")
	// ErrConfig: a configuration struct failed validation.
	ErrConfig = errors.New("preprocessing: invalid config")
)

// FormatError reports bad input data: which file (and archive entry), which
// record and byte offset where known, what is wrong and how to fix it.
type FormatError struct {
	Path   string // file or archive on disk
	Entry  string // entry inside the archive, or ""
	Record int    // record index inside the file, or -1
	Offset int64  // byte offset inside the file or entry, or -1
	Err    error  // what is wrong
	Hint   string // how to fix it, or ""

	read bool // a read failed (rather than the content being wrong)
}

func (e *FormatError) Error() string {
	var b strings.Builder
	b.WriteString(e.Path)
	if e.Entry != "" {
		b.WriteString(": entry ")
		b.WriteString(e.Entry)
	}
	switch {
	case e.Record >= 0 && e.Offset >= 0:
		fmt.Fprintf(&b, ": record %d (byte offset %d)", e.Record, e.Offset)
	case e.Record >= 0:
		fmt.Fprintf(&b, ": record %d", e.Record)
	case e.Offset >= 0:
		fmt.Fprintf(&b, ": byte offset %d", e.Offset)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	if e.Hint != "" {
		b.WriteString("; ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

// Unwrap returns ErrFormat and the underlying cause.
func (e *FormatError) Unwrap() []error { return []error{ErrFormat, e.Err} }

func formatErr(path, entry string, record int, offset int64, hint string, format string, args ...any) *FormatError {
	return &FormatError{Path: path, Entry: entry, Record: record, Offset: offset, Err: fmt.Errorf(format, args...), Hint: hint}
}

// ChecksumError reports a file whose MD5 is not the expected one.
type ChecksumError struct {
	Path      string
	Got, Want string // hex MD5 sums
	Hint      string
}

func (e *ChecksumError) Error() string {
	s := fmt.Sprintf("%s: MD5 %s does not match the expected %s", e.Path, e.Got, e.Want)
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

// Unwrap returns ErrChecksum.
func (e *ChecksumError) Unwrap() error { return ErrChecksum }

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}
