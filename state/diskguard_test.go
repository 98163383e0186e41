package state

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// faultFS is an in-memory file system that answers every write-side operation with errno
// while failing is set; a write that fails writes half of its bytes first, as a disk that
// fills mid-write does.
type faultFS struct {
	vfs.FS
	failing atomic.Bool
	errno   syscall.Errno
	faults  atomic.Int64
}

func (f *faultFS) fail(op, name string) error {
	if !f.failing.Load() {
		return nil
	}
	f.faults.Add(1)
	return &os.PathError{Op: op, Path: name, Err: f.errno}
}

func (f *faultFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if err := f.fail("open", name); err != nil {
		return nil, err
	}
	file, err := f.FS.Create(name, c)
	return &faultFile{File: file, fs: f, name: name}, err
}

func (f *faultFS) ReuseForWrite(o, n string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if err := f.fail("open", n); err != nil {
		return nil, err
	}
	file, err := f.FS.ReuseForWrite(o, n, c)
	return &faultFile{File: file, fs: f, name: n}, err
}

func (f *faultFS) Rename(o, n string) error {
	if err := f.fail("rename", n); err != nil {
		return err
	}
	return f.FS.Rename(o, n)
}

type faultFile struct {
	vfs.File
	fs   *faultFS
	name string
}

func (f *faultFile) Write(p []byte) (int, error) {
	if err := f.fs.fail("write", f.name); err != nil {
		n, _ := f.File.Write(p[:len(p)/2])
		return n, err
	}
	return f.File.Write(p)
}

func (f *faultFile) Sync() error {
	if err := f.fs.fail("sync", f.name); err != nil {
		return err
	}
	return f.File.Sync()
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A pebble DB on a disk that fills up waits instead of panicking: writes block while the disk
// refuses them, Degraded names the cause, reads go on, each cause is logged once however many
// retries, and when space returns the blocked writes complete with nothing lost.
func TestDiskGuardWaitsOutAFullDisk(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EROFS, syscall.EMFILE} {
		t.Run(errno.Error(), func(t *testing.T) {
			ffs := &faultFS{FS: vfs.NewMem(), errno: errno}
			logs := &syncBuffer{}
			var counted atomic.Int64
			g := NewDiskGuard(ffs, slog.New(slog.NewTextHandler(logs, nil)), func(op, e string) { counted.Add(1) })
			db, err := pebble.Open("db", &pebble.Options{FS: g, MemTableSize: 256 << 10, Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
			if err != nil {
				t.Fatal(err)
			}
			val := bytes.Repeat([]byte("v"), 512)
			put := func(from, to int) error {
				for i := from; i < to; i++ {
					if err := db.Set(fmt.Appendf(nil, "k%06d", i), val, pebble.NoSync); err != nil {
						return err
					}
				}
				return nil
			}
			if err := put(0, 100); err != nil {
				t.Fatal(err)
			}
			ffs.failing.Store(true)
			done := make(chan error, 1)
			go func() { done <- put(100, 3000) }() // several memtables: WAL rotations and flushes
			deadline := time.Now().Add(10 * time.Second)
			for g.Degraded() == "" {
				if time.Now().After(deadline) {
					t.Fatal("writes on a failing disk never waited")
				}
				time.Sleep(10 * time.Millisecond)
			}
			if cause := g.Degraded(); !strings.Contains(cause, errno.Error()) {
				t.Fatalf("cause %q does not name %q", cause, errno.Error())
			}
			select {
			case err := <-done:
				t.Fatalf("writes finished on a failing disk: %v", err)
			case <-time.After(500 * time.Millisecond):
			}
			if v, closer, err := db.Get([]byte("k000042")); err != nil || !bytes.Equal(v, val) {
				t.Fatalf("read while the disk fails: %v", err)
			} else {
				closer.Close()
			}
			time.Sleep(1200 * time.Millisecond) // several retries of the same cause
			ffs.failing.Store(false)
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("writes did not resume after the disk recovered")
			}
			if err := db.Flush(); err != nil {
				t.Fatal(err)
			}
			eventually(t, func() bool { return g.Degraded() == "" })
			for i := 0; i < 3000; i += 97 {
				v, closer, err := db.Get(fmt.Appendf(nil, "k%06d", i))
				if err != nil || !bytes.Equal(v, val) {
					t.Fatalf("key %d after recovery: %v", i, err)
				}
				closer.Close()
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			if ffs.faults.Load() < 2 || counted.Load() != ffs.faults.Load() {
				t.Fatalf("%d faults, %d counted", ffs.faults.Load(), counted.Load())
			}
			out := logs.String()
			for _, line := range strings.Split(out, "\n") {
				if strings.Contains(line, "refuses writes") && strings.Count(out, line) > 1 {
					t.Fatalf("a cause was logged more than once:\n%s", out)
				}
			}
			if n := strings.Count(out, "refuses writes"); n == 0 || int64(n) >= ffs.faults.Load() {
				t.Fatalf("%d cause lines for %d faults:\n%s", n, ffs.faults.Load(), out)
			}
			if !strings.Contains(out, "local storage writes again") {
				t.Fatalf("recovery not logged:\n%s", out)
			}
		})
	}
}

// A write the disk cut short goes on where it stopped; a failed sync is remembered.
func TestDiskGuardPartialWriteAndSync(t *testing.T) {
	ffs := &faultFS{FS: vfs.NewMem(), errno: syscall.ENOSPC}
	g := NewDiskGuard(ffs, nil, nil)
	f, err := g.Create("f", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	ffs.failing.Store(true)
	time.AfterFunc(200*time.Millisecond, func() { ffs.failing.Store(false) })
	const want = "0123456789abcdef"
	p := []byte(want) // pebble's MemFS mangles a written buffer in race builds (invariants)
	if n, err := f.Write(p); err != nil || n != len(p) {
		t.Fatalf("write: %d %v", n, err)
	}
	ffs.failing.Store(true)
	time.AfterFunc(200*time.Millisecond, func() { ffs.failing.Store(false) })
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if !g.SyncFailed() {
		t.Fatal("a failed fsync was forgotten")
	}
	f.Close()
	r, err := ffs.Open("f")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 64)
	n, _ := r.Read(got)
	if string(got[:n]) != want {
		t.Fatalf("file holds %q, want %q", got[:n], want)
	}
	// Not transient: returned at once.
	if _, err := g.Open("missing"); err == nil {
		t.Fatal("opening a missing file succeeded")
	}
	// Closed: a failing operation gives up.
	ffs.failing.Store(true)
	g.Close()
	if _, err := g.Create("g", vfs.WriteCategoryUnspecified); err == nil {
		t.Fatal("a closed guard waited or succeeded on a failing disk")
	}
}

func eventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
