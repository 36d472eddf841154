// Package atomicfile writes files so that readers and crashes see either the
// old content or the new, never a torn write.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/critlab/critlab/internal/failpoint"
)

// Write writes data to path through a synced temporary file, a rename
// and a sync of the directory. A crash leaves at most a temporary file
// .NAME.tmp*, which Clean removes.
func Write(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	// CreateTemp makes the file 0600; results are meant to be shared.
	err = f.Chmod(0o644)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		failpoint.Hit("rename")
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Clean removes the temporary files that writes of path killed before
// their rename left behind.
func Clean(path string) error {
	temps, err := filepath.Glob(filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp*"))
	if err != nil {
		return fmt.Errorf("clean %s: %w", path, err)
	}
	for _, t := range temps {
		if err := os.Remove(t); err != nil {
			return fmt.Errorf("clean %s: %w", path, err)
		}
	}
	return nil
}
