package runs

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/critlab/critlab/internal/atomicfile"
)

// runLog collects a run's log lines and rewrites log.txt atomically on
// Flush, appending to what an earlier attempt of the run logged.
type runLog struct {
	mu   sync.Mutex
	path string
	buf  bytes.Buffer
	now  func() time.Time
}

func openRunLog(path string) *runLog {
	l := &runLog{path: path, now: time.Now}
	if old, err := os.ReadFile(path); err == nil {
		l.buf.Write(old)
	}
	return l
}

// Printf adds a timestamped line.
func (l *runLog) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.buf, "%s %s\n", l.now().Format("2006-01-02 15:04:05"), fmt.Sprintf(format, args...))
}

// Flush writes log.txt.
func (l *runLog) Flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return atomicfile.Write(l.path, l.buf.Bytes())
}
