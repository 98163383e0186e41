// Package dirlock gives one process at a time a directory: an exclusive, non-blocking OS
// lock (flock) on a LOCK file inside it, as Kafka Streams locks its state directory and
// Kafka its log directories. A second process that asks for the same directory fails at once,
// before it reads or writes anything there, with a message naming the holder; the OS drops
// the lock when the holder exits, however it exits (kill -9 included), so there is no stale
// lock to clean up.
//
// Imports from this module: none (the README's package table, checked by imports_test.go).
package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// FileName is the lock file inside a locked directory.
const FileName = "LOCK"

// ErrLocked is what Acquire wraps when another process holds the directory.
var ErrLocked = errors.New("directory in use by another process")

// Lock is a held directory lock.
type Lock struct {
	f    *os.File
	path string
}

// Acquire creates dir if needed and locks it for this process; what says who holds it (for
// example "crm-pipeline serve") and is written into the lock file with the process id, so a
// refused second process can name the first. A second Acquire of the same directory in the
// same process fails too (each Acquire opens its own file description).
func Acquire(dir, what string) (*Lock, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	path := filepath.Join(dir, FileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder := readHolder(f)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s is held by %s; stop that process or give this one another --data", ErrLocked, dir, holder)
		}
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(what+" pid "+strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &Lock{f: f, path: path}, nil
}

// readHolder is the lock file's text, or a placeholder when it says nothing useful.
func readHolder(f *os.File) string {
	b := make([]byte, 256)
	n, _ := f.ReadAt(b, 0)
	if s := strings.TrimSpace(string(b[:n])); s != "" {
		return s
	}
	return "another process"
}

// Release gives the directory up. The file stays (removing it would let a third process lock
// a new file while a second still holds the old one).
func (l *Lock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := syscall.Flock(int(l.f.Fd()), syscall.LOCK_UN)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	if err != nil {
		return fmt.Errorf("release %s: %w", l.path, err)
	}
	return nil
}
