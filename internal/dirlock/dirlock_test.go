package dirlock

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestAcquire(t *testing.T) {
	dir := t.TempDir()
	if pid, held := Holder(dir); held {
		t.Fatalf("Holder of a fresh directory: PID %s", pid)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatal(err)
	}
	if pid, held := Holder(dir); !held || pid != strconv.Itoa(os.Getpid()) {
		t.Fatalf("Holder while held: %q %v, want PID %d", pid, held, os.Getpid())
	}
	// flock locks belong to the open file description, so a second open in
	// this process conflicts as another process's would.
	_, err = Acquire(dir)
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "PID "+strconv.Itoa(os.Getpid())) {
		t.Fatalf("second Acquire: %v, want ErrLocked naming PID %d", err, os.Getpid())
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
}

// A lock held by a process that died is free: the kernel drops it.
func TestAcquireAfterHolderDies(t *testing.T) {
	if dir := os.Getenv("DIRLOCK_HOLD"); dir != "" {
		// The helper process: hold the lock, say so, wait to be killed.
		if _, err := Acquire(dir); err != nil {
			t.Fatal(err)
		}
		os.Stdout.WriteString("held\n")
		time.Sleep(time.Minute)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcquireAfterHolderDies$")
	cmd.Env = append(os.Environ(), "DIRLOCK_HOLD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "held\n" {
		t.Fatalf("helper: %q, %v", line, err)
	}
	_, err = Acquire(dir)
	if want := "PID " + strconv.Itoa(cmd.Process.Pid); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), want) {
		t.Fatalf("Acquire while the helper holds the lock: %v, want ErrLocked naming %s", err, want)
	}
	if pid, held := Holder(dir); !held || pid != strconv.Itoa(cmd.Process.Pid) {
		t.Fatalf("Holder while the helper holds the lock: %q %v, want PID %d", pid, held, cmd.Process.Pid)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if pid, held := Holder(dir); held {
		t.Fatalf("Holder after the holder was killed: PID %s", pid)
	}
	l, err := Acquire(dir)
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	l.Release()
}
