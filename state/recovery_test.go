package state

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// newBatchingStore opens a recovering store in dir with the given recovery
// batch threshold; the ticker never fires unless flushEvery says so.
func newBatchingStore(t *testing.T, dir string, batch int, flushEvery time.Duration) *Store {
	t.Helper()
	s := New(dir, "t", 0, Options{Logger: slog.New(slog.DiscardHandler), RecoveryBatchSize: batch})
	s.flushEvery = flushEvery
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// rawGet reads a user key straight from pebble, bypassing the pending
// batch: what a crash would leave (pebble's WAL holds the committed
// batches in order).
func rawGet(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, err := getCopy(s.db, dataKeyString(key))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func pendingCount(s *Store) uint32 {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	if s.pending == nil {
		return 0
	}
	return s.pending.Count()
}

func mustT(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// While recovering, writes are held in the pending batch, and every read
// (Get, Has, iterators) still sees them, deletions included.
func TestRecoveryReadYourWrites(t *testing.T) {
	s := newBatchingStore(t, t.TempDir(), 64<<20, time.Hour)

	mustT(t, s.Set("a", []byte("1")))
	mustT(t, s.Set("b", []byte("2")))
	if n := pendingCount(s); n != 2 {
		t.Fatalf("pending writes = %d, want 2 (writes not batched)", n)
	}
	if v := rawGet(t, s, "a"); v != nil {
		t.Fatalf("write reached pebble before any commit: %q", v)
	}
	got, err := s.Get("a")
	mustT(t, err)
	if string(got) != "1" {
		t.Fatalf("get a = %q, want 1", got)
	}

	// Delete a committed key and a pending one; set an empty value.
	mustT(t, s.Delete("a"))
	mustT(t, s.Set("c", []byte("3")))
	mustT(t, s.Delete("c"))
	mustT(t, s.Set("e", []byte{}))
	if n := pendingCount(s); n != 4 {
		t.Fatalf("pending writes = %d, want 4", n)
	}
	for key, want := range map[string][]byte{"a": nil, "b": []byte("2"), "c": nil, "e": {}} {
		got, err := s.Get(key)
		mustT(t, err)
		if (got == nil) != (want == nil) || string(got) != string(want) {
			t.Fatalf("get %q = %v, want %v", key, got, want)
		}
	}

	mustT(t, s.Set("d", []byte("4")))
	mustT(t, s.Delete("b"))
	has, err := s.Has("b")
	mustT(t, err)
	if has {
		t.Fatal("has b after a pending delete")
	}
	mustT(t, s.Set("b", []byte("5")))
	it, err := s.Iterator()
	mustT(t, err)
	var seen []string
	for it.Next() {
		v, err := it.Value()
		mustT(t, err)
		seen = append(seen, fmt.Sprintf("%s=%s", it.Key(), v))
	}
	mustT(t, it.Err())
	it.Release()
	if fmt.Sprint(seen) != "[b=5 d=4 e=]" {
		t.Fatalf("iterator saw %v", seen)
	}
}

// The persisted offset is never ahead of the data committed: after every
// step of a recovery, whatever pebble holds (what a crash would leave) has
// every record up to the persisted offset. Small batches and a fast ticker
// make commits happen from both the writer and the ticker.
func TestRecoveryOffsetNeverAheadOfData(t *testing.T) {
	s := newBatchingStore(t, t.TempDir(), 4<<10, time.Millisecond)
	const n = 3000
	key := func(i int) string { return fmt.Sprintf("k%05d", i) }
	for i := range n {
		if i%5 == 4 {
			mustT(t, s.Delete(key(i-1)))
		} else {
			mustT(t, s.Set(key(i), fmt.Appendf(nil, "v%d", i)))
		}
		mustT(t, s.SetOffset(int64(i)))
		if i%97 != 0 {
			continue
		}
		off := int(rawOffset(t, s))
		// Every record up to off must be in pebble (later ones may be too):
		// check the last ones. Record j sets key j, except that a record
		// j%5 == 4 deletes key j-1 instead.
		for j := max(0, off-8); j <= off; j++ {
			v := rawGet(t, s, key(j))
			want := fmt.Sprintf("v%d", j)
			switch {
			case j%5 == 4: // never set
			case j%5 == 3 && j < off: // deleted by record j+1 <= off
				if v != nil {
					t.Fatalf("offset %d persisted before the delete of %s", off, key(j))
				}
			case j%5 == 3 && v == nil: // deleted by record j+1 > off: allowed
			case string(v) != want:
				t.Fatalf("offset %d persisted, but %s = %q in pebble, want %q", off, key(j), v, want)
			}
		}
	}
	mustT(t, s.MarkRecovered())
	if got := rawOffset(t, s); got != n-1 {
		t.Fatalf("offset after MarkRecovered = %d, want %d", got, n-1)
	}
	if v := rawGet(t, s, key(n-2)); v != nil { // deleted by the last record
		t.Fatalf("last delete not committed by MarkRecovered: %q", v)
	}
	if v := rawGet(t, s, key(n-3)); string(v) != fmt.Sprintf("v%d", n-3) {
		t.Fatalf("last set not committed by MarkRecovered: %q", v)
	}
}

// The batch is committed with the offset when it reaches the threshold,
// and not before.
func TestRecoveryBatchCommitsAtThreshold(t *testing.T) {
	s := newBatchingStore(t, t.TempDir(), 64<<10, time.Hour)
	value := make([]byte, 100)
	i := 0
	for ; rawOffset(t, s) == noOffset; i++ {
		if i > 1000 {
			t.Fatal("no commit after 1000 writes of 300 bytes each with a 64 KiB threshold")
		}
		mustT(t, s.Set(fmt.Sprintf("k%04d", i), value))
		mustT(t, s.SetOffset(int64(i)))
	}
	// The commit happened inside Set(i-1), before SetOffset(i-1).
	if got := rawOffset(t, s); got != int64(i-2) {
		t.Fatalf("offset committed with the batch = %d, want %d", got, i-2)
	}
	if i < 100 {
		t.Fatalf("batch committed after only %d writes", i)
	}
	if n := pendingCount(s); n != 0 {
		t.Fatalf("%d writes pending right after the commit", n)
	}
}

// The recovery ticker commits pending writes, so a slow trickle of
// records does not sit in memory.
func TestRecoveryTickerCommits(t *testing.T) {
	s := newBatchingStore(t, t.TempDir(), 64<<20, 5*time.Millisecond)
	mustT(t, s.Set("a", []byte("1")))
	mustT(t, s.SetOffset(1))
	deadline := time.Now().Add(5 * time.Second)
	for rawOffset(t, s) != 1 || rawGet(t, s, "a") == nil {
		if time.Now().After(deadline) {
			t.Fatal("pending write and offset not committed by the ticker")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// MarkRecovered commits the batch and switches to direct writes; Close of a
// store still recovering commits it too.
func TestRecoveryEndsOnMarkRecoveredAndClose(t *testing.T) {
	dir := t.TempDir()
	s := newBatchingStore(t, dir, 64<<20, time.Hour)
	mustT(t, s.Set("a", []byte("1")))
	mustT(t, s.SetOffset(3))
	mustT(t, s.MarkRecovered())
	if s.batching.Load() || s.pending != nil {
		t.Fatal("still batching after MarkRecovered")
	}
	if v := rawGet(t, s, "a"); string(v) != "1" {
		t.Fatalf("a = %q in pebble after MarkRecovered", v)
	}
	mustT(t, s.Set("b", []byte("2")))
	if v := rawGet(t, s, "b"); string(v) != "2" {
		t.Fatal("write after recovery not direct")
	}
	mustT(t, s.MarkRecovered()) // harmless
	mustT(t, s.Close())

	dir2 := t.TempDir()
	s = newBatchingStore(t, dir2, 64<<20, time.Hour)
	mustT(t, s.Set("x", []byte("9")))
	mustT(t, s.Delete("missing"))
	mustT(t, s.SetOffset(7))
	mustT(t, s.Close())
	s = newBatchingStore(t, dir2, 64<<20, time.Hour)
	got, err := s.Get("x")
	mustT(t, err)
	if string(got) != "9" {
		t.Fatalf("x = %q after close while recovering", got)
	}
	off, err := s.GetOffset(-1)
	mustT(t, err)
	if off != 7 {
		t.Fatalf("offset = %d after close while recovering, want 7", off)
	}
}

// A negative RecoveryBatchSize turns batching off; the threshold is capped
// at a quarter of the memtable so pebble never turns a batch into an L0
// file of its own.
func TestRecoveryBatchSizeOption(t *testing.T) {
	for _, c := range []struct {
		opt      int
		memtable uint64
		want     int
	}{
		{0, 0, DefaultRecoveryBatchSize},
		{-1, 0, 0},
		{100 << 10, 0, 100 << 10},
		{64 << 20, 0, DefaultMemTableSize / 4},
		{0, 1 << 20, 256 << 10},
	} {
		s := &Store{opts: Options{RecoveryBatchSize: c.opt, MemTableSize: c.memtable}}
		if got := s.recoveryBatchSize(); got != c.want {
			t.Errorf("RecoveryBatchSize %d, memtable %d: threshold %d, want %d", c.opt, c.memtable, got, c.want)
		}
	}
	s := newBatchingStore(t, t.TempDir(), -1, time.Hour)
	mustT(t, s.Set("a", []byte("1")))
	if v := rawGet(t, s, "a"); string(v) != "1" {
		t.Fatal("write batched with batching disabled")
	}
}

// A failed commit loses the batch's writes, so the store must refuse to
// persist any offset past them, and keep failing writes.
func TestRecoveryLostBatchIsSticky(t *testing.T) {
	s := newBatchingStore(t, t.TempDir(), 64<<20, time.Hour)
	mustT(t, s.Set("a", []byte("1")))
	mustT(t, s.SetOffset(1))
	s.pendMu.Lock()
	_ = s.loseBatch(errors.New("disk on fire"))
	s.pendMu.Unlock()
	if err := s.Set("b", []byte("2")); err == nil {
		t.Fatal("write accepted after a lost batch")
	}
	if err := s.MarkRecovered(); err == nil {
		t.Fatal("MarkRecovered succeeded after a lost batch")
	}
	if err := s.persistOffset(); err == nil {
		t.Fatal("offset persisted after a lost batch")
	}
	if err := s.Close(); err == nil {
		t.Fatal("Close reported no error after a lost batch")
	}
	if got := s.persisted; got != noOffset {
		t.Fatalf("persisted offset %d after a lost batch", got)
	}
}

// Writer, offset acks, readers, the ticker and MarkRecovered all at once,
// checked against a model: run with -race.
func TestRecoveryConcurrentModel(t *testing.T) {
	s := newBatchingStore(t, t.TempDir(), 2<<10, time.Millisecond)
	const n = 4000
	keys := 64
	var mu sync.Mutex
	model := map[string]string{} // writes that returned
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		rng := rand.New(rand.NewPCG(5, 6))
		for i := range n {
			k := fmt.Sprintf("k%02d", rng.IntN(keys))
			mu.Lock()
			if rng.IntN(4) == 0 {
				if err := s.Delete(k); err != nil {
					t.Error(err)
				}
				delete(model, k)
			} else {
				v := fmt.Sprint(i)
				if err := s.Set(k, []byte(v)); err != nil {
					t.Error(err)
				}
				model[k] = v
			}
			mu.Unlock()
			if err := s.SetOffset(int64(i)); err != nil {
				t.Error(err)
			}
			if i == n*3/4 {
				if err := s.MarkRecovered(); err != nil {
					t.Error(err)
				}
			}
		}
	}()
	var readers sync.WaitGroup
	for r := range 2 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			rng := rand.New(rand.NewPCG(7, uint64(r)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("k%02d", rng.IntN(keys))
				// Holding mu keeps the writer still, so the store must agree
				// with the model exactly.
				mu.Lock()
				got, err := s.Get(k)
				want, ok := model[k]
				mu.Unlock()
				if err != nil {
					t.Error(err)
					return
				}
				if (got != nil) != ok || string(got) != want {
					t.Errorf("get %s = %q, model has %q (%v)", k, got, want, ok)
					return
				}
				it, err := s.Iterator()
				if err != nil {
					t.Error(err)
					return
				}
				for it.Next() {
				}
				if err := it.Err(); err != nil {
					t.Error(err)
				}
				it.Release()
			}
		}()
	}
	wg.Wait()
	close(stop)
	readers.Wait()
	mustT(t, s.Close())
}

// Bloom filters let a point read skip the sstables that lack the key.
func TestBloomFiltersSkipTables(t *testing.T) {
	s := newBatchingStore(t, t.TempDir(), 0, time.Hour)
	mustT(t, s.MarkRecovered())
	for i := range 2000 {
		mustT(t, s.Set(fmt.Sprintf("k%05d", 2*i), []byte("v")))
	}
	s.mu.RLock()
	err := s.db.Flush()
	s.mu.RUnlock()
	mustT(t, err)
	for i := range 200 {
		got, err := s.Get(fmt.Sprintf("k%05d", 2*i+1))
		mustT(t, err)
		if got != nil {
			t.Fatalf("missing key found: %q", got)
		}
	}
	s.mu.RLock()
	m := s.db.Metrics()
	s.mu.RUnlock()
	if m.Filter.Hits == 0 {
		t.Fatalf("no bloom filter hits (misses %d): filters not written or not read", m.Filter.Misses)
	}
}
