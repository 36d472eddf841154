// Package failpoint kills the process at a named point, for crash tests of
// the real binary: CRITLAB_FAILPOINT=NAME[:N] sends SIGKILL to the process
// itself the N-th time (default the first) execution reaches Hit(NAME). A
// SIGKILL runs no deferred code and flushes nothing, like a power cut
// short of losing the page cache. Unset, Hit costs a map lookup.
package failpoint

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// Env names the failpoint to crash at.
const Env = "CRITLAB_FAILPOINT"

var (
	mu     sync.Mutex
	name   string
	target = -1 // hits of name to pass before the kill; -1: off
	hits   int
)

func init() {
	v := os.Getenv(Env)
	if v == "" {
		return
	}
	n := 1
	name = v
	if a, b, ok := strings.Cut(v, ":"); ok {
		var err error
		if n, err = strconv.Atoi(b); err != nil || n < 1 {
			fmt.Fprintf(os.Stderr, "critlab: %s=%q: want NAME or NAME:N with N >= 1\n", Env, v)
			os.Exit(2)
		}
		name = a
	}
	target = n
}

// Hit kills the process when it is the failpoint's N-th hit.
func Hit(point string) {
	if target < 0 || point != name {
		return
	}
	mu.Lock()
	defer mu.Unlock()
	if hits++; hits == target {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
