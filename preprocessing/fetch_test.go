package preprocessing

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// archiveServer serves content as cifar-10-binary.tar.gz. Its behaviour
// per request is chosen by the test: Range support, and cutting the
// connection after some bytes.
type archiveServer struct {
	t       *testing.T
	content []byte
	noRange bool
	cutAt   []int // cut the n-th response (by index) after cutAt[n] body bytes; -1: whole

	mu     sync.Mutex
	ranges []string // Range header of each request
}

func (s *archiveServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/files/cifar-10-binary.tar.gz" {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	n := len(s.ranges)
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.mu.Unlock()
	if n < len(s.cutAt) && s.cutAt[n] >= 0 {
		// Promise the whole file, send part of it, drop the connection.
		start := 0
		if rg := r.Header.Get("Range"); rg != "" && !s.noRange {
			fmt.Sscanf(rg, "bytes=%d-", &start)
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			s.t.Error(err)
			return
		}
		status := "200 OK"
		if start > 0 {
			status = "206 Partial Content"
			fmt.Fprintf(buf, "HTTP/1.1 %s\r\nContent-Range: bytes %d-%d/%d\r\nContent-Length: %d\r\n\r\n", status, start, len(s.content)-1, len(s.content), len(s.content)-start)
		} else {
			fmt.Fprintf(buf, "HTTP/1.1 %s\r\nContent-Length: %d\r\n\r\n", status, len(s.content))
		}
		buf.Write(s.content[start : start+s.cutAt[n]])
		buf.Flush()
		conn.Close()
		return
	}
	if s.noRange {
		w.Header().Set("Content-Length", fmt.Sprint(len(s.content)))
		w.Write(s.content)
		return
	}
	http.ServeContent(w, r, "x", time.Time{}, bytes.NewReader(s.content))
}

func newArchiveServer(t *testing.T, size int) (*archiveServer, string) {
	content := make([]byte, size)
	p := newPCG(1, 2, 3, 4)
	for i := range content {
		content[i] = byte(p.Uint64())
	}
	s := &archiveServer{t: t, content: content}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv.URL + "/files/"
}

func md5hex(b []byte) string {
	h := md5.Sum(b)
	return hex.EncodeToString(h[:])
}

func TestFetch(t *testing.T) {
	const size = 300_000
	tests := []struct {
		name       string
		noRange    bool
		cutAt      []int
		retries    int
		partial    int    // bytes of a partial file present before the fetch
		wrongMD5   bool   // expect another checksum
		wantErr    string // substring; "" for success
		wantRanges []string
		wantLog    string
	}{
		{name: "plain", wantRanges: []string{""}},
		{name: "checksum mismatch", wrongMD5: true, wantErr: "does not match the expected", wantRanges: []string{""}},
		{name: "interrupted, no retry", cutAt: []int{100_000}, wantErr: "run the same command again to resume", wantRanges: []string{""}},
		{name: "interrupted then resumed", cutAt: []int{100_000}, retries: 2,
			wantRanges: []string{"", "bytes=100000-"}, wantLog: "resuming"},
		{name: "interrupted twice", cutAt: []int{1000, 2000}, retries: 3,
			wantRanges: []string{"", "bytes=1000-", "bytes=3000-"}},
		{name: "resume a partial file", partial: 123_456, wantRanges: []string{"bytes=123456-"}},
		{name: "partial file already whole", partial: size, wantRanges: []string{"bytes=300000-"}},
		{name: "server without Range", noRange: true, partial: 5000,
			wantRanges: []string{"bytes=5000-"}, wantLog: "does not resume transfers"},
		{name: "server without Range, interrupted", noRange: true, cutAt: []int{50_000}, retries: 1,
			wantRanges: []string{"", "bytes=50000-"}, wantLog: "starting cifar-10-binary.tar.gz over"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv, base := newArchiveServer(t, size)
			srv.noRange, srv.cutAt = tt.noRange, tt.cutAt
			dir := t.TempDir()
			dest := filepath.Join(dir, "cifar-10-binary.tar.gz")
			if tt.partial > 0 {
				writeFile(t, dest+".part", srv.content[:tt.partial])
			}
			want := md5hex(srv.content)
			if tt.wrongMD5 {
				want = md5hex([]byte("something else"))
			}
			var log, progress bytes.Buffer
			res, err := Fetch(context.Background(), "cifar10", FetchOptions{Dir: dir, BaseURL: base, MD5: want,
				Retries: tt.retries, Log: &log, Progress: &progress})
			if !strings.Contains(log.String(), tt.wantLog) {
				t.Errorf("log %q lacks %q", log.String(), tt.wantLog)
			}
			if strings.Join(srv.ranges, "|") != strings.Join(tt.wantRanges, "|") {
				t.Errorf("Range headers %q, want %q", srv.ranges, tt.wantRanges)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				if fileExists(dest) {
					t.Fatal("a failed fetch placed the archive")
				}
				if tt.wrongMD5 {
					if !errors.Is(err, ErrChecksum) || fileExists(dest+".part") {
						t.Fatalf("checksum failure: %v, part file kept: %v", err, fileExists(dest+".part"))
					}
				} else if !errors.Is(err, ErrInterrupted) || !fileExists(dest+".part") {
					t.Fatalf("interruption: %v, part file kept: %v", err, fileExists(dest+".part"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(dest)
			if err != nil || !bytes.Equal(got, srv.content) {
				t.Fatalf("placed file differs from the served one (%v)", err)
			}
			if fileExists(dest+".part") || res.Path != dest || res.MD5 != want || res.Bytes != size {
				t.Fatalf("result %+v", res)
			}
			if tt.partial == 0 && !strings.Contains(progress.String(), "100.0%") {
				t.Errorf("progress output %q lacks 100.0%%", progress.String())
			}
		})
	}
}

// An interrupted fetch resumes where it stopped when run again.
func TestFetchResumeAcrossCalls(t *testing.T) {
	srv, base := newArchiveServer(t, 200_000)
	srv.cutAt = []int{70_000}
	dir := t.TempDir()
	opts := FetchOptions{Dir: dir, BaseURL: base, MD5: md5hex(srv.content)}
	if _, err := Fetch(context.Background(), "cifar10", opts); !errors.Is(err, ErrInterrupted) {
		t.Fatalf("first fetch: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "cifar-10-binary.tar.gz.part")); err != nil || fi.Size() != 70_000 {
		t.Fatalf("partial file: %v", err)
	}
	res, err := Fetch(context.Background(), "cifar10", opts)
	if err != nil || !res.Resumed {
		t.Fatalf("second fetch: %+v %v", res, err)
	}
	if srv.ranges[1] != "bytes=70000-" {
		t.Fatalf("second request Range %q", srv.ranges[1])
	}
	// A third call finds the file and transfers nothing.
	res, err = Fetch(context.Background(), "cifar10", opts)
	if err != nil || !res.Present || len(srv.ranges) != 2 {
		t.Fatalf("third fetch: %+v %v (%d requests)", res, err, len(srv.ranges))
	}
	// Present with an unofficial sum: kept, with a notice.
	var log bytes.Buffer
	res, err = Fetch(context.Background(), "cifar10", FetchOptions{Dir: dir, BaseURL: base, Log: &log})
	if err != nil || res.Official || !strings.Contains(log.String(), "not the published") {
		t.Fatalf("unofficial present file: %+v %v %q", res, err, log.String())
	}
}

func TestFetchErrors(t *testing.T) {
	_, base := newArchiveServer(t, 10)
	dir := t.TempDir()
	if _, err := Fetch(context.Background(), "cifar100", FetchOptions{Dir: dir, BaseURL: base, Retries: 2}); err == nil ||
		!strings.Contains(err.Error(), "404") {
		t.Fatalf("missing file: %v", err)
	}
	if _, err := Fetch(context.Background(), "mnist", FetchOptions{Dir: dir}); !errors.Is(err, ErrUnknownSpec) ||
		!strings.Contains(err.Error(), "cifar10, cifar100") {
		t.Fatalf("unknown archive: %v", err)
	}
	if fileExists(filepath.Join(dir, "cifar-100-binary.tar.gz")) {
		t.Fatal("placed a file after a failure")
	}
	// A dead server: interrupted, with the hint.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	_, err := Fetch(context.Background(), "cifar10", FetchOptions{Dir: dir, BaseURL: url})
	if !errors.Is(err, ErrInterrupted) || !strings.Contains(err.Error(), "--archive") {
		t.Fatalf("dead server: %v", err)
	}
}

func TestImportArchive(t *testing.T) {
	entries, wantTrain, _ := tinyCIFAR(cifar10Layout, 2, 2)
	data := makeTarGz(t, entries)
	src := writeFile(t, filepath.Join(t.TempDir(), "copy.tar.gz"), data)
	dir := t.TempDir()
	var log bytes.Buffer
	res, err := ImportArchive("cifar10", src, FetchOptions{Dir: dir, Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if res.Official || !strings.Contains(res.Notice, "not the published c32a1d4ab5d03f1284b67883e8d87530") ||
		!strings.Contains(log.String(), "accepted as a local copy") {
		t.Fatalf("non-official archive accepted silently: %+v, log %q", res, log.String())
	}
	ds, err := Open("cifar10:"+dir, OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	sameSplit(t, "imported", ds.Train, wantTrain)
	// Importing the placed file onto itself is a check only.
	if _, err := ImportArchive("cifar10", res.Path, FetchOptions{Dir: dir}); err != nil {
		t.Fatal(err)
	}
	// A broken or wrong archive is refused and nothing is placed.
	for name, bad := range map[string][]byte{
		"truncated": data[:len(data)/2],
		"cifar100":  makeTarGz(t, func() []tarEntry { e, _, _ := tinyCIFAR(cifar100Layout, 1, 1); return e }()),
	} {
		d := t.TempDir()
		p := writeFile(t, filepath.Join(t.TempDir(), name+".tar.gz"), bad)
		if _, err := ImportArchive("cifar10", p, FetchOptions{Dir: d}); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v", name, err)
		}
		if ents, _ := os.ReadDir(d); len(ents) != 0 {
			t.Errorf("%s: left %v", name, ents)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	tests := []struct {
		in           string
		start, total int64
		ok           bool
	}{
		{"bytes 100-199/1000", 100, 1000, true},
		{"bytes */1000", -1, 1000, true},
		{"bytes 0-9/*", 0, -1, true},
		{"items 0-9/10", 0, 0, false},
		{"bytes x-9/10", 0, 0, false},
	}
	for _, tt := range tests {
		s, n, ok := parseContentRange(tt.in)
		if s != tt.start || n != tt.total || ok != tt.ok {
			t.Errorf("%q: %d %d %v", tt.in, s, n, ok)
		}
	}
}
