package state_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lovoo/goka/storage"
)

// The tests in this file run the same assertions against goka's LevelDB
// storage and against ours, so passing them means identical behaviour.

func forEachBackend(t *testing.T, f func(t *testing.T, b backend)) {
	t.Helper()
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) { f(t, b) })
	}
}

func TestContractGetSetHasDelete(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := b.open(t, t.TempDir())

		expectValue(t, st, "missing", nil)
		must(t, st.Delete("missing")) // deleting a missing key is fine

		must(t, st.Set("a", []byte("1")))
		expectValue(t, st, "a", []byte("1"))
		must(t, st.Set("a", []byte("2")))
		expectValue(t, st, "a", []byte("2"))
		must(t, st.Delete("a"))
		expectValue(t, st, "a", nil)

		// An empty value is stored and reads back as a non-nil empty slice,
		// so it stays distinguishable from a missing key.
		must(t, st.Set("empty", nil))
		expectValue(t, st, "empty", []byte{})
		must(t, st.Set("empty2", []byte{}))
		expectValue(t, st, "empty2", []byte{})

		// The empty key and binary keys are ordinary keys.
		must(t, st.Set("", []byte("root")))
		expectValue(t, st, "", []byte("root"))
		must(t, st.Set("\x00\xff", []byte("bin")))
		expectValue(t, st, "\x00\xff", []byte("bin"))
	})
}

func TestContractCopySafety(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := b.open(t, t.TempDir())

		// The store copies what Set is given.
		buf := []byte("value-1")
		must(t, st.Set("k", buf))
		copy(buf, "XXXXXXX")
		expectValue(t, st, "k", []byte("value-1"))

		// Get returns a private copy: mutating it changes nothing stored.
		got, err := st.Get("k")
		must(t, err)
		copy(got, "YYYYYYY")
		expectValue(t, st, "k", []byte("value-1"))

		// A returned value stays intact across later operations, including
		// enough writes to flush memtables and churn the block cache.
		keep, err := st.Get("k")
		must(t, err)
		big := bytes.Repeat([]byte("z"), 1024)
		for i := range 6000 {
			must(t, st.Set(fmt.Sprintf("fill-%05d", i), big))
			if i%1000 == 0 {
				_, err := st.Get(fmt.Sprintf("fill-%05d", i/2))
				must(t, err)
			}
		}
		must(t, st.Set("k", []byte("value-2")))
		if string(keep) != "value-1" {
			t.Fatalf("value returned by Get changed to %q", keep)
		}

		// Appending to an iterator's key must not corrupt the next key.
		setAll(t, st, "ab", "1", "ac", "2")
		it, err := st.IteratorWithRange([]byte("a"), nil)
		must(t, err)
		defer it.Release()
		if !it.Next() {
			t.Fatal("no first key")
		}
		_ = append(it.Key(), 'Q')
		if !it.Next() || string(it.Key()) != "ac" {
			t.Fatalf("second key = %q, want \"ac\"", it.Key())
		}
	})
}

// reopenWithOffset sets offset n on st, which must show at once and survive
// Close, and returns st reopened.
func reopenWithOffset(t *testing.T, b backend, dir string, st *handle, n int64) *handle {
	t.Helper()
	must(t, st.SetOffset(n))
	expectOffset(t, st, -3, n)
	st.close(t)
	st = b.open(t, dir)
	expectOffset(t, st, -3, n)
	return st
}

func TestContractOffsets(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		st := b.open(t, dir)

		expectOffset(t, st, -3, -3) // nothing stored: the default
		must(t, st.Set("k", []byte("v")))

		// During recovery SetOffset is visible at once and survives Close.
		must(t, st.SetOffset(10))
		expectOffset(t, st, -3, 10)
		st = reopenWithOffset(t, b, dir, st, 11)
		expectValue(t, st, "k", []byte("v"))
		must(t, st.MarkRecovered())
		expectOffset(t, st, -3, 11)

		// After recovery too.
		st = reopenWithOffset(t, b, dir, st, 12)
		// A reopened store is recovering again until told otherwise.
		must(t, st.SetOffset(13))
		expectOffset(t, st, -3, 13)
		must(t, st.MarkRecovered())
		must(t, st.SetOffset(14))
		st.close(t)

		st = b.open(t, dir)
		expectOffset(t, st, -3, 14)
	})
}

func TestContractIteratorOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := b.open(t, t.TempDir())
		keys := []string{"b", "a", "c", "ab", "", "\x00", "\xff", "B"}
		for _, k := range keys {
			must(t, st.Set(k, []byte("v"+k)))
		}
		want := sortedPairs(keys, "v")

		it, err := st.Iterator()
		must(t, err)
		// A fresh iterator is not positioned.
		if it.Key() != nil {
			t.Fatalf("fresh iterator has key %q", it.Key())
		}
		if v, err := it.Value(); v != nil || err != nil {
			t.Fatalf("fresh iterator has value %q, %v", v, err)
		}
		expectSeq(t, "iteration", drain(t, it), want...)
		// Exhausted: stays exhausted, not positioned.
		if it.Next() || it.Key() != nil {
			t.Fatal("exhausted iterator moved")
		}
		it.Release()
		it.Release() // idempotent
		if it.Next() {
			t.Fatal("released iterator moved")
		}
		if it.Err() == nil {
			t.Fatal("Next on a released iterator should leave an error")
		}
	})
}

func TestContractIteratorSnapshot(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := b.open(t, t.TempDir())
		setAll(t, st, "a", "1", "c", "3")
		it, err := st.Iterator()
		must(t, err)
		defer it.Release()
		setAll(t, st, "b", "2", "a", "changed")
		must(t, st.Delete("c"))
		expectSeq(t, "snapshot", drain(t, it), kv("a", "1"), kv("c", "3"))
	})
}

func TestContractSeek(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := b.open(t, t.TempDir())
		setAll(t, st, "k1", "1", "k3", "3", "k5", "5")

		// Seek positions on the first key >= the target...
		it, err := st.Iterator()
		must(t, err)
		expectSeek(t, it, []byte("k2"), "after seek", kv("k3", "3"))
		// ...and the next Next moves past it.
		expectSeq(t, "next after seek", drain(t, it), kv("k5", "5"))
		// Seeking backwards on the same iterator works.
		expectSeek(t, it, []byte("k1"), "after seek back", kv("k1", "1"))
		it.Release()

		// An exact match positions on the key itself.
		it, err = st.Iterator()
		must(t, err)
		expectSeek(t, it, []byte("k3"), "exact seek", kv("k3", "3"))
		it.Release()

		// Seeking past the end finds nothing and leaves the iterator done.
		it, err = st.Iterator()
		must(t, err)
		if it.Seek([]byte("k6")) {
			t.Fatalf("seek past end found %q", it.Key())
		}
		if it.Key() != nil {
			t.Fatalf("key after failed seek = %q", it.Key())
		}
		if it.Next() {
			t.Fatalf("next after failed seek found %q", it.Key())
		}
		must(t, it.Err())
		it.Release()

		// Seek before everything lands on the first key.
		it, err = st.Iterator()
		must(t, err)
		expectSeek(t, it, nil, "seek nil", kv("k1", "1"))
		it.Release()
	})
}

func TestContractIteratorWithRange(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := b.open(t, t.TempDir())
		setAll(t, st,
			"a", "1", "b", "2", "ba", "3", "bz", "4", "b\xff", "5", "c", "6", "d", "7",
			"\xff", "8", "\xff\xff", "9", "\xff\xff\x01", "10")

		rng := func(start, limit []byte) []string {
			it, err := st.IteratorWithRange(start, limit)
			must(t, err)
			defer it.Release()
			return drain(t, it)
		}

		// An explicit limit is exclusive.
		expectSeq(t, "[b, d)", rng([]byte("b"), []byte("d")),
			kv("b", "2"), kv("ba", "3"), kv("bz", "4"), kv("b\xff", "5"), kv("c", "6"))
		expectSeq(t, "[nil, b)", rng(nil, []byte("b")), kv("a", "1"))
		// An empty limit means "prefix of start", not unbounded.
		expectSeq(t, "prefix b", rng([]byte("b"), nil),
			kv("b", "2"), kv("ba", "3"), kv("bz", "4"), kv("b\xff", "5"))
		expectSeq(t, "prefix b (empty limit)", rng([]byte("b"), []byte{}),
			kv("b", "2"), kv("ba", "3"), kv("bz", "4"), kv("b\xff", "5"))
		expectSeq(t, "prefix \\xff\\xff", rng([]byte("\xff\xff"), nil),
			kv("\xff\xff", "9"), kv("\xff\xff\x01", "10"))
		expectSeq(t, "prefix none", rng([]byte("x"), nil))
		// Neither bound: everything.
		if got := rng(nil, nil); len(got) != 10 {
			t.Fatalf("unbounded range returned %d pairs, want 10: %v", len(got), got)
		}
		// Inverted and empty ranges yield nothing.
		expectSeq(t, "[d, b)", rng([]byte("d"), []byte("b")))
		expectSeq(t, "[b, b)", rng([]byte("b"), []byte("b")))

		// Seek inside a range is clamped to it.
		it, err := st.IteratorWithRange([]byte("b"), []byte("d"))
		must(t, err)
		expectSeek(t, it, []byte("a"), "seek below range", kv("b", "2"))
		if !it.Seek([]byte("bb")) {
			t.Fatal("seek bb found nothing")
		}
		expectSeq(t, "seek bb then next", append([]string{pair(t, it)}, drain(t, it)...),
			kv("bz", "4"), kv("b\xff", "5"), kv("c", "6"))
		if it.Seek([]byte("d")) {
			t.Fatalf("seek at the limit found %q", it.Key())
		}
		it.Release()
	})
}

// Keys that look like metadata keys are ordinary keys in both stores and
// leave the offset alone. ("__offset" is the exception; see
// TestLevelDBOffsetKeyCollides.)
func TestContractMetadataLookingKeys(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		dir := t.TempDir()
		st := b.open(t, dir)
		must(t, st.SetOffset(42))
		must(t, st.MarkRecovered())
		keys := []string{"m/offset", "m/topic-id", "m", "d", "e", "offset", "__offset_x", "_"}
		for _, k := range keys {
			must(t, st.Set(k, []byte("user:"+k)))
		}
		for _, k := range keys {
			expectValue(t, st, k, []byte("user:"+k))
		}
		expectOffset(t, st, -1, 42)
		st.close(t)

		st = b.open(t, dir)
		expectOffset(t, st, -1, 42)
		want := sortedPairs(keys, "user:")
		it, err := st.Iterator()
		must(t, err)
		defer it.Release()
		expectSeq(t, "iteration", drain(t, it), want...)
	})
}

func TestContractUseAfterClose(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b backend) {
		st := b.open(t, t.TempDir())
		must(t, st.Set("k", []byte("v")))
		st.close(t)
		if _, err := st.Get("k"); err == nil {
			t.Error("Get after Close succeeded")
		}
		if err := st.Set("k", []byte("v")); err == nil {
			t.Error("Set after Close succeeded")
		}
		if err := st.Delete("k"); err == nil {
			t.Error("Delete after Close succeeded")
		}
	})
}

// TestContractDifferential applies the same random operations to both
// stores and compares every observable result.
func TestContractDifferential(t *testing.T) {
	peb := openPebble(t, t.TempDir())
	ldb := openLevelDB(t, t.TempDir())
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []string{"a", "b", "\x00", "\xff", "z"}
	key := func() []byte {
		n := r.IntN(4)
		var k []byte
		for range n {
			k = append(k, alphabet[r.IntN(len(alphabet))]...)
		}
		return k
	}
	value := func() []byte {
		if r.IntN(8) == 0 {
			return nil
		}
		return fmt.Appendf(nil, "v%d", r.IntN(1000))
	}
	both := func(f func(st storage.Storage) string) (string, string) {
		return f(peb), f(ldb)
	}

	for step := range 4000 {
		var desc string
		var f func(st storage.Storage) string
		switch op := r.IntN(10); {
		case op < 4:
			k, v := key(), value()
			desc = fmt.Sprintf("set %q %q", k, v)
			f = func(st storage.Storage) string { return fmt.Sprint(st.Set(string(k), v)) }
		case op < 5:
			k := key()
			desc = fmt.Sprintf("delete %q", k)
			f = func(st storage.Storage) string { return fmt.Sprint(st.Delete(string(k))) }
		case op < 7:
			k := key()
			desc = fmt.Sprintf("get/has %q", k)
			f = func(st storage.Storage) string {
				v, err := st.Get(string(k))
				h, herr := st.Has(string(k))
				return fmt.Sprint(show(v), err, h, herr)
			}
		default:
			var start, limit, seek []byte
			if r.IntN(4) > 0 {
				start = key()
			}
			if r.IntN(2) == 0 {
				limit = key()
			}
			doSeek := r.IntN(2) == 0
			if doSeek {
				seek = key()
			}
			full := r.IntN(5) == 0
			desc = fmt.Sprintf("range full=%v [%q, %q) seek=%v %q", full, start, limit, doSeek, seek)
			f = func(st storage.Storage) string {
				var it storage.Iterator
				var err error
				if full {
					it, err = st.Iterator()
				} else {
					it, err = st.IteratorWithRange(start, limit)
				}
				if err != nil {
					return err.Error()
				}
				defer it.Release()
				out := ""
				if doSeek {
					ok := it.Seek(seek)
					out = fmt.Sprintf("seek=%v at %s; ", ok, pair(t, it))
				}
				return out + fmt.Sprint(drain(t, it))
			}
		}
		p, l := both(f)
		if p != l {
			t.Fatalf("step %d: %s\n pebble:  %s\n leveldb: %s", step, desc, p, l)
		}
	}
}
