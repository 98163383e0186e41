package state

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// DiskGuard is the file system of every local store: pebble's, with the errors of a disk that
// is full, read-only, out of descriptors or failing turned into a wait.
//
// Why: pebble cannot survive such an error. A failed WAL write or rotation panics inside
// pebble's locked section ("fatal commit error: no space left on device"; "sync: unlock of
// unlocked mutex" from rotateWAL on a read-only directory), which no recover can catch, and a
// failed flush is retried in a tight loop (511,210 log lines in 51 s). The stores are caches
// of Kafka, so nothing is lost by waiting: an operation that fails with one of those errors is
// retried with backoff until it succeeds, the goroutine that asked for it (a goka partition,
// a flush) waits, reads go on from what is stored, and Degraded names the cause for /readyz,
// the 503 of writes and the logs. Each cause is logged once, then summarised at most every
// 30 s, with its count.
//
// An fsync that failed may have dropped dirty pages for good (Linux's "fsyncgate"), so a
// later success proves nothing: SyncFailed tells the service not to trust the caches at the
// next start.
type DiskGuard struct {
	fs      vfs.FS
	log     *slog.Logger
	onError func(op, errno string)

	closed     chan struct{}
	closeOnce  sync.Once
	syncFailed atomic.Bool

	mu      sync.Mutex
	waiting int       // operations retrying now
	cause   string    // the last failure while waiting
	since   time.Time // when the first of the waiting operations failed
	causes  map[string]*causeCount
}

// causeCount is one logged cause (operation and errno) and what was said about it.
type causeCount struct {
	count, logged int64
	lastLog       time.Time
}

// guardSummaryEvery bounds how often a still-failing cause is logged again.
const guardSummaryEvery = 30 * time.Second

// Backoff of the retries: from guardFirstRetry doubling to guardMaxRetry.
const (
	guardFirstRetry = 50 * time.Millisecond
	guardMaxRetry   = time.Second
)

// NewDiskGuard guards fs (vfs.Default when nil). onError, if set, is called for every failed
// attempt with the operation and the errno's name, for metrics.
func NewDiskGuard(fs vfs.FS, log *slog.Logger, onError func(op, errno string)) *DiskGuard {
	if fs == nil {
		fs = vfs.Default
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &DiskGuard{fs: fs, log: log, onError: onError, closed: make(chan struct{}), causes: map[string]*causeCount{}}
}

// Degraded returns what the disk refuses while an operation waits for it, "" otherwise.
func (g *DiskGuard) Degraded() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.waiting == 0 {
		return ""
	}
	return g.cause
}

// SyncFailed reports whether an fsync failed during this process's life.
func (g *DiskGuard) SyncFailed() bool { return g.syncFailed.Load() }

// Close makes waiting and future operations give up and return their error. Only for the end
// of the process: pebble panics on the error.
func (g *DiskGuard) Close() { g.closeOnce.Do(func() { close(g.closed) }) }

// transientErrnos are the errors a disk gives that go away when an operator acts (frees space,
// restores permissions, closes descriptors) or the device recovers.
var transientErrnos = map[syscall.Errno]string{
	syscall.ENOSPC: "ENOSPC", syscall.EDQUOT: "EDQUOT", syscall.EROFS: "EROFS", syscall.EIO: "EIO",
	syscall.EMFILE: "EMFILE", syscall.ENFILE: "ENFILE", syscall.EACCES: "EACCES", syscall.EPERM: "EPERM",
	syscall.EFBIG: "EFBIG",
}

// transient returns the errno name of a retried error.
func transient(err error) (syscall.Errno, string, bool) {
	var errno syscall.Errno
	if !errors.As(err, &errno) {
		return 0, "", false
	}
	name, ok := transientErrnos[errno]
	return errno, name, ok
}

// anyTransient retries every transient errno; descriptorsOnly only their exhaustion, for
// operations that need no space.
func anyTransient(syscall.Errno) bool { return true }

func descriptorsOnly(e syscall.Errno) bool { return e == syscall.EMFILE || e == syscall.ENFILE }

// retry runs fn until it returns nil or an error that is not transient, or the guard closes.
func (g *DiskGuard) retry(op, path string, fn func() error) error {
	return g.retryIf(op, path, anyTransient, fn)
}

// retryDescriptors is retry for operations that only wait for descriptors.
func (g *DiskGuard) retryDescriptors(op, path string, fn func() error) error {
	return g.retryIf(op, path, descriptorsOnly, fn)
}

func (g *DiskGuard) retryIf(op, path string, retryable func(syscall.Errno) bool, fn func() error) error {
	err := fn()
	if err == nil {
		return nil
	}
	errno, name, ok := transient(err)
	if !ok || !retryable(errno) {
		return err
	}
	g.enter(op, path, name, err)
	defer g.leave(op, path)
	delay := guardFirstRetry
	for {
		select {
		case <-g.closed:
			return err
		case <-time.After(delay):
		}
		if err = fn(); err == nil {
			return nil
		}
		if errno, name, ok = transient(err); !ok || !retryable(errno) {
			return err
		}
		g.note(op, path, name, err)
		delay = min(2*delay, guardMaxRetry)
	}
}

func (g *DiskGuard) enter(op, path, errno string, err error) {
	g.mu.Lock()
	if g.waiting == 0 {
		g.since = time.Now()
	}
	g.waiting++
	g.mu.Unlock()
	g.note(op, path, errno, err)
}

func (g *DiskGuard) leave(op, path string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.waiting--
	if g.waiting > 0 {
		return
	}
	var total int64
	for _, c := range g.causes {
		total += c.count
	}
	g.log.Warn("local storage writes again", "after_ms", time.Since(g.since).Milliseconds(), "failed_attempts", total,
		"last_op", op, "path", path)
	g.cause = ""
	clear(g.causes)
}

// note counts a failure, logs a new cause at once and a known one at most every
// guardSummaryEvery, and keeps the latest as the cause.
func (g *DiskGuard) note(op, path, errno string, err error) {
	if g.onError != nil {
		g.onError(op, errno)
	}
	if op == "sync" {
		g.syncFailed.Store(true)
	}
	key := op + " " + errno
	now := time.Now()
	g.mu.Lock()
	g.cause = fmt.Sprintf("%s %s: %v", op, path, errnoText(err))
	c := g.causes[key]
	if c == nil {
		c = &causeCount{}
		g.causes[key] = c
	}
	c.count++
	logIt := c.logged == 0 || now.Sub(c.lastLog) >= guardSummaryEvery
	var count int64
	if logIt {
		count = c.count
		c.logged++
		c.lastLog = now
	}
	g.mu.Unlock()
	if !logIt {
		return
	}
	if count == 1 {
		g.log.Error("local storage refuses writes; waiting for it, reads go on", "op", op, "errno", errno, "path", path, "err", err)
		return
	}
	g.log.Error("local storage still refuses writes", "op", op, "errno", errno, "path", path, "failed_attempts", count)
}

// errnoText is the message of err's errno ("no space left on device"), or err's text.
func errnoText(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}

// ---- vfs.FS ----

// Create implements vfs.FS.
func (g *DiskGuard) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	var f vfs.File
	err := g.retry("create", name, func() (err error) { f, err = g.fs.Create(name, category); return err })
	return g.wrap(f, name), err
}

// Link implements vfs.FS.
func (g *DiskGuard) Link(oldname, newname string) error {
	return g.retry("link", newname, func() error { return g.fs.Link(oldname, newname) })
}

// Open implements vfs.FS. Reading needs no space, but a descriptor: only their exhaustion is
// waited out.
func (g *DiskGuard) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	var f vfs.File
	err := g.retryDescriptors("open", name, func() (err error) { f, err = g.fs.Open(name, opts...); return err })
	return f, err
}

// OpenReadWrite implements vfs.FS.
func (g *DiskGuard) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	var f vfs.File
	err := g.retry("open", name, func() (err error) { f, err = g.fs.OpenReadWrite(name, category, opts...); return err })
	return g.wrap(f, name), err
}

// OpenDir implements vfs.FS; the directory is synced after renames, so its Sync is guarded.
func (g *DiskGuard) OpenDir(name string) (vfs.File, error) {
	var f vfs.File
	err := g.retryDescriptors("open", name, func() (err error) { f, err = g.fs.OpenDir(name); return err })
	return g.wrap(f, name), err
}

// Remove implements vfs.FS.
func (g *DiskGuard) Remove(name string) error {
	return g.retry("remove", name, func() error { return g.fs.Remove(name) })
}

// RemoveAll implements vfs.FS.
func (g *DiskGuard) RemoveAll(name string) error {
	return g.retry("remove", name, func() error { return g.fs.RemoveAll(name) })
}

// Rename implements vfs.FS.
func (g *DiskGuard) Rename(oldname, newname string) error {
	return g.retry("rename", newname, func() error { return g.fs.Rename(oldname, newname) })
}

// ReuseForWrite implements vfs.FS.
func (g *DiskGuard) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	var f vfs.File
	err := g.retry("create", newname, func() (err error) { f, err = g.fs.ReuseForWrite(oldname, newname, category); return err })
	return g.wrap(f, newname), err
}

// MkdirAll implements vfs.FS.
func (g *DiskGuard) MkdirAll(dir string, perm os.FileMode) error {
	return g.retry("mkdir", dir, func() error { return g.fs.MkdirAll(dir, perm) })
}

// Lock implements vfs.FS.
func (g *DiskGuard) Lock(name string) (io.Closer, error) {
	var c io.Closer
	err := g.retry("lock", name, func() (err error) { c, err = g.fs.Lock(name); return err })
	return c, err
}

// List implements vfs.FS.
func (g *DiskGuard) List(dir string) ([]string, error) {
	var names []string
	err := g.retryDescriptors("list", dir, func() (err error) { names, err = g.fs.List(dir); return err })
	return names, err
}

// Stat implements vfs.FS.
func (g *DiskGuard) Stat(name string) (vfs.FileInfo, error) { return g.fs.Stat(name) }

// PathBase implements vfs.FS.
func (g *DiskGuard) PathBase(path string) string { return g.fs.PathBase(path) }

// PathJoin implements vfs.FS.
func (g *DiskGuard) PathJoin(elem ...string) string { return g.fs.PathJoin(elem...) }

// PathDir implements vfs.FS.
func (g *DiskGuard) PathDir(path string) string { return g.fs.PathDir(path) }

// GetDiskUsage implements vfs.FS.
func (g *DiskGuard) GetDiskUsage(path string) (vfs.DiskUsage, error) { return g.fs.GetDiskUsage(path) }

// Unwrap implements vfs.FS.
func (g *DiskGuard) Unwrap() vfs.FS { return g.fs }

// ---- vfs.File ----

func (g *DiskGuard) wrap(f vfs.File, name string) vfs.File {
	if f == nil {
		return nil
	}
	return &guardedFile{File: f, g: g, name: name}
}

// guardedFile retries its writes, syncs and preallocations like DiskGuard's operations. A
// partial write is continued where it stopped.
type guardedFile struct {
	vfs.File
	g    *DiskGuard
	name string
}

func (f *guardedFile) Write(p []byte) (int, error) {
	done := 0
	err := f.g.retry("write", f.name, func() error {
		n, err := f.File.Write(p[done:])
		done += n
		return err
	})
	return done, err
}

func (f *guardedFile) WriteAt(p []byte, off int64) (int, error) {
	done := 0
	err := f.g.retry("write", f.name, func() error {
		n, err := f.File.WriteAt(p[done:], off+int64(done))
		done += n
		return err
	})
	return done, err
}

func (f *guardedFile) Sync() error {
	return f.g.retry("sync", f.name, f.File.Sync)
}

func (f *guardedFile) SyncData() error {
	return f.g.retry("sync", f.name, f.File.SyncData)
}

func (f *guardedFile) SyncTo(length int64) (bool, error) {
	var full bool
	err := f.g.retry("sync", f.name, func() (err error) { full, err = f.File.SyncTo(length); return err })
	return full, err
}

func (f *guardedFile) Preallocate(offset, length int64) error {
	return f.g.retry("preallocate", f.name, func() error { return f.File.Preallocate(offset, length) })
}

var _ vfs.FS = (*DiskGuard)(nil)
