package state_test

import (
	"errors"
	"testing"

	"github.com/lovoo/goka/storage"

	"github.com/crm-pipeline/crm-pipeline/state"
)

// Where goka's LevelDB storage legitimately differs from ours, these tests
// pin both behaviours: ours because callers rely on it, LevelDB's so that a
// goka upgrade that changes it is noticed.

// LevelDB keeps its offset as the user key "__offset"; ours keeps metadata
// out of the user keyspace, so "__offset" is an ordinary key.
func TestOffsetKeyIsOrdinaryKey(t *testing.T) {
	dir := t.TempDir()
	st := openPebble(t, dir)
	must(t, st.SetOffset(7))
	must(t, st.MarkRecovered())
	must(t, st.Set("__offset", []byte("user data")))
	expectValue(t, st, "__offset", []byte("user data"))
	expectOffset(t, st, -1, 7)
	it, err := st.Iterator()
	must(t, err)
	expectSeq(t, "iteration", drain(t, it), kv("__offset", "user data"))
	it.Release()
	st.close(t)

	st = openPebble(t, dir)
	expectOffset(t, st, -1, 7)
	expectValue(t, st, "__offset", []byte("user data"))
}

func TestLevelDBOffsetKeyCollides(t *testing.T) {
	st := openLevelDB(t, t.TempDir())
	must(t, st.Set("__offset", []byte("user data")))
	// The user value is parsed as the offset...
	if _, err := st.GetOffset(-1); err == nil {
		t.Fatal("leveldb: expected GetOffset to fail on a user value under __offset")
	}
	// ...and hidden from iteration.
	it, err := st.Iterator()
	must(t, err)
	expectSeq(t, "leveldb iteration", drain(t, it))
	it.Release()
}

// LevelDB's iterator skips "__offset" only when Next reaches it; Seek can
// land on it, and goka's merge iterator (View.Iterator) then yields the
// offset as if it were a table entry. Ours cannot: metadata is outside the
// iterator's bounds.
func TestSeekNeverLandsOnOffset(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			st := b.open(t, t.TempDir())
			must(t, st.SetOffset(5))
			must(t, st.MarkRecovered())
			setAll(t, st, "A", "1", "z", "2")

			it, err := st.Iterator()
			must(t, err)
			multi := storage.NewMultiIterator([]storage.Iterator{it})
			defer multi.Release()
			if !multi.Seek([]byte("_")) {
				t.Fatal("seek found nothing")
			}
			got := drain(t, multi)
			if b.name == "leveldb" {
				expectSeq(t, "leveldb view after seek", got, kv("__offset", "5"), kv("z", "2"))
				return
			}
			expectSeq(t, "pebble view after seek", got, kv("z", "2"))
		})
	}
}

// LevelDB treats offset 0 as "unset" (goka never acks offset 0 as a table
// write, but recovery does replay offset 0); ours stores it.
func TestOffsetZero(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			dir := t.TempDir()
			st := b.open(t, dir)
			must(t, st.SetOffset(0))
			want := int64(0)
			if b.name == "leveldb" {
				want = -3
			}
			expectOffset(t, st, -3, want)
			st.close(t)
			st = b.open(t, dir)
			expectOffset(t, st, -3, want)
		})
	}
}

func TestNegativeOffsetRejected(t *testing.T) {
	st := openPebble(t, t.TempDir())
	must(t, st.SetOffset(3))
	if err := st.SetOffset(-1); err == nil {
		t.Fatal("SetOffset(-1) succeeded")
	}
	expectOffset(t, st, -3, 3)
}

// goka's LevelDB Close panics when called twice; ours is idempotent and
// reports ErrClosed on later use.
func TestCloseIdempotentAndErrClosed(t *testing.T) {
	s, err := state.Open(t.TempDir(), state.Options{Logger: quietLogger()})
	must(t, err)
	must(t, s.Close())
	must(t, s.Close())
	if _, err := s.Get("k"); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Get after Close: %v, want ErrClosed", err)
	}
	if err := s.MarkRecovered(); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("MarkRecovered after Close: %v, want ErrClosed", err)
	}
	if _, err := s.Iterator(); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Iterator after Close: %v, want ErrClosed", err)
	}
	if err := s.Open(); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Open after Close: %v, want ErrClosed", err)
	}
}

// goka calls Close after a failed Open, and may build a storage it never
// opens.
func TestCloseAfterFailedOrMissingOpen(t *testing.T) {
	never := state.New(t.TempDir(), "t", 0, state.Options{})
	must(t, never.Close())
	if err := never.Set("k", nil); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Set on closed never-opened store: %v", err)
	}

	unopened := state.New(t.TempDir(), "t", 0, state.Options{})
	if _, err := unopened.Get("k"); !errors.Is(err, state.ErrNotOpen) {
		t.Fatalf("Get before Open: %v, want ErrNotOpen", err)
	}

	// A path below a regular file cannot be opened.
	file := t.TempDir() + "/file"
	failing := state.New(file+"/sub", "t", 0, state.Options{Logger: quietLogger()})
	mustWriteFile(t, file, "x")
	if err := failing.Open(); err == nil {
		t.Fatal("Open below a file succeeded")
	}
	must(t, failing.Close())
	must(t, failing.Close())

	// A failing validator fails Open; Close is still fine.
	bad := state.New(t.TempDir(), "t", 0, state.Options{
		Logger: quietLogger(),
		Validate: func(string, int32) (state.Expect, error) {
			return state.Expect{}, errors.New("broker unreachable")
		},
	})
	if err := bad.Open(); err == nil {
		t.Fatal("Open with a failing validator succeeded")
	}
	must(t, bad.Close())
}

// Iterators still open when the store closes are released by Close
// (pebble refuses to close with live iterators) and report ErrClosed.
func TestCloseReleasesIterators(t *testing.T) {
	s, err := state.Open(t.TempDir(), state.Options{Logger: quietLogger()})
	must(t, err)
	must(t, s.Set("a", []byte("1")))
	must(t, s.Set("b", []byte("2")))
	it, err := s.Iterator()
	must(t, err)
	if !it.Next() {
		t.Fatal("no first pair")
	}
	must(t, s.Close())
	if it.Next() {
		t.Fatal("iterator moved after Close")
	}
	if it.Key() != nil {
		t.Fatal("iterator has a key after Close")
	}
	if err := it.Err(); !errors.Is(err, state.ErrClosed) {
		t.Fatalf("iterator error after Close: %v, want ErrClosed", err)
	}
	it.Release()
}

// Two stores on one directory (say two views misconfigured to share a
// path) must not both open it: pebble's lock refuses the second, as
// LevelDB's does.
func TestSameDirOpenedTwiceFails(t *testing.T) {
	dir := t.TempDir()
	a, err := state.Open(dir, state.Options{Logger: quietLogger()})
	must(t, err)
	defer a.Close()
	if b, err := state.Open(dir, state.Options{Logger: quietLogger()}); err == nil {
		_ = b.Close()
		t.Fatal("second Open of the same directory succeeded")
	}
}
