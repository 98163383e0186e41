package state

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"
)

// errIterReleased is reported by Err once Next or Seek is called on a
// released iterator, as goleveldb does.
var errIterReleased = errors.New("state: iterator released")

// iterator adapts a bounded pebble iterator to goka's storage.Iterator with
// LevelDB's positioning rules, which goka's merge iterator depends on:
//
//   - a new iterator is positioned before the first pair; the first Next
//     moves to it;
//   - Seek(k) moves to the first pair >= k, reports whether there is one and
//     stays on it (Key and Value are valid), so the following Next moves
//     past it.
//
// mu makes Store.Close able to release an iterator that another goroutine
// is still using; a single iterator is otherwise meant for one goroutine.
type iterator struct {
	store *Store

	mu       sync.Mutex
	it       *pebble.Iterator // nil once released
	started  bool
	released bool  // Release was called
	err      error // sticky error: use after release, failed close, forced close
}

// gone reports whether the pebble iterator is closed, recording the misuse
// when the caller released it itself. Callers hold mu.
func (i *iterator) gone() bool {
	if i.it != nil {
		return false
	}
	if i.released && i.err == nil {
		i.err = errIterReleased
	}
	return true
}

// Next moves to the next pair (the first one on a fresh iterator) and
// reports whether there is one.
func (i *iterator) Next() bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.gone() {
		return false
	}
	if !i.started {
		i.started = true
		return i.it.First()
	}
	return i.it.Next()
}

// Seek moves to the first pair whose key is >= key and stays there.
func (i *iterator) Seek(key []byte) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.gone() {
		return false
	}
	i.started = true
	return i.it.SeekGE(dataKey(key))
}

// Key returns the current key without the store's prefix, or nil when not
// positioned. The slice is pebble's buffer, valid until the iterator moves;
// its capacity is clipped so an append by the caller cannot write into it.
func (i *iterator) Key() []byte {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.it == nil || !i.it.Valid() {
		return nil
	}
	k := i.it.Key()
	return k[1:len(k):len(k)]
}

// Value returns the current value, valid until the iterator moves, or nil
// when not positioned. An empty value is returned as a non-nil empty slice,
// matching LevelDB.
func (i *iterator) Value() ([]byte, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.it == nil || !i.it.Valid() {
		return nil, nil
	}
	v, err := i.it.ValueAndErr()
	if err != nil {
		return nil, fmt.Errorf("state: iterator value in %s: %w", i.store.path, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v[:len(v):len(v)], nil
}

// Err returns the error that stopped the iteration, if any.
func (i *iterator) Err() error {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.err != nil {
		return i.err
	}
	if i.it == nil {
		return nil
	}
	if err := i.it.Error(); err != nil {
		return fmt.Errorf("state: iterate %s: %w", i.store.path, err)
	}
	return nil
}

// Release closes the pebble iterator. It may be called more than once and
// after the store closed.
func (i *iterator) Release() {
	i.mu.Lock()
	i.released = true
	if i.it == nil {
		i.mu.Unlock()
		return
	}
	if err := i.it.Close(); err != nil {
		i.err = fmt.Errorf("state: release iterator in %s: %w", i.store.path, err)
	}
	i.it = nil
	i.mu.Unlock()
	i.store.forgetIterator(i)
}

// forceClose is Release on behalf of Store.Close.
func (i *iterator) forceClose() {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.it == nil {
		return
	}
	_ = i.it.Close() // the store is closing; the DB close reports real trouble
	i.it = nil
	i.err = fmt.Errorf("state: iterator in %s: %w", i.store.path, ErrClosed)
}
