// Package dirlock gives one process at a time a directory: an exclusive
// flock(2) on a lock file inside it, which the kernel releases when the
// holder exits or dies, so a lock is never stale. The holder's PID is
// written into the file so a second process can name it.
package dirlock

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// FileName is the lock file in a locked directory.
const FileName = ".critlab.lock"

// ErrLocked means another process holds the directory.
var ErrLocked = errors.New("locked by another process")

// Lock is a held directory lock.
type Lock struct{ f *os.File }

// Acquire locks dir, which must exist, or fails at once with an error
// wrapping ErrLocked that names the holder's PID.
func Acquire(dir string) (*Lock, error) {
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%s is in use: %w (PID %s)\n---> HINT: wait for that process to finish, or stop it; a killed process releases the lock itself",
				dir, ErrLocked, holder(path))
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	// The PID is informative only; the flock is the lock.
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return &Lock{f: f}, nil
}

// Release unlocks the directory; the lock file stays (removing it would
// race with a process that has just opened it).
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	return err
}

// Holder reports whether a live process holds dir's lock, and its PID. It
// reads the kernel's table of locks (/proc/locks) rather than trying the
// lock, so asking never makes a process that is starting fail with "in
// use". Where that table is unreadable (not Linux) it reports false.
func Holder(dir string) (pid string, held bool) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, FileName), &st); err != nil {
		return "", false
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return "", false
	}
	defer f.Close()
	// "1: FLOCK  ADVISORY  WRITE 1989 fe:00:5522361 0 EOF"
	id := fmt.Sprintf("%02x:%02x:%d", unix.Major(st.Dev), unix.Minor(st.Dev), st.Ino)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 6 && fields[1] == "FLOCK" && fields[5] == id {
			return fields[4], true
		}
	}
	return "", false
}

// holder reads the PID a lock file names, or "unknown".
func holder(path string) string {
	b, err := os.ReadFile(path)
	if pid := strings.TrimSpace(string(b)); err == nil && pid != "" {
		return pid
	}
	return "unknown"
}
