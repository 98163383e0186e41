package state

import (
	"encoding/binary"
	"log/slog"
	"testing"
	"time"
)

// rawOffset reads m/offset straight from pebble: what a crash would leave.
func rawOffset(t *testing.T, s *Store) int64 {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	v, err := getCopy(s.db, []byte(offsetKey))
	if err != nil {
		t.Fatal(err)
	}
	if v == nil {
		return noOffset
	}
	return int64(binary.BigEndian.Uint64(v))
}

func newTestStore(t *testing.T, flushEvery time.Duration) *Store {
	t.Helper()
	s := New(t.TempDir(), "t", 0, Options{Logger: slog.New(slog.DiscardHandler)})
	s.flushEvery = flushEvery
	if err := s.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// awaitRawOffset waits for the flush ticker to persist offset want: the ticker
// runs on its own goroutine, so the test cannot know when it has fired.
func awaitRawOffset(t *testing.T, s *Store, want int64, what string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for rawOffset(t, s) != want {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// While recovering, SetOffset only updates memory; the ticker persists it.
func TestOffsetFlushedWhileRecovering(t *testing.T) {
	s := newTestStore(t, 10*time.Millisecond)
	if err := s.SetOffset(7); err != nil {
		t.Fatal(err)
	}
	awaitRawOffset(t, s, 7, "offset not persisted by the recovery ticker")
}

func TestOffsetPersistence(t *testing.T) {
	s := newTestStore(t, time.Hour) // ticker never fires
	if err := s.SetOffset(5); err != nil {
		t.Fatal(err)
	}
	if got := rawOffset(t, s); got != noOffset {
		t.Fatalf("offset persisted during recovery without a tick: %d", got)
	}
	// MarkRecovered persists...
	if err := s.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	if got := rawOffset(t, s); got != 5 {
		t.Fatalf("after MarkRecovered raw offset = %d, want 5", got)
	}
	// ...but after recovery SetOffset still only updates memory (the ticker, which never
	// fires here, and Close persist it): a pebble commit per record was too dear.
	if err := s.SetOffset(6); err != nil {
		t.Fatal(err)
	}
	if got := rawOffset(t, s); got != 5 {
		t.Fatalf("after recovery raw offset = %d before a tick or Close, want 5", got)
	}
	if got, _ := s.GetOffset(-1); got != 6 {
		t.Fatalf("GetOffset = %d, want 6", got)
	}
	path := s.Path()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	again, err := Open(path, Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if got, _ := again.GetOffset(-1); got != 6 {
		t.Fatalf("after Close and reopen offset = %d, want 6", got)
	}
}

// After recovery the ticker keeps persisting the offset.
func TestOffsetFlushedAfterRecovery(t *testing.T) {
	s := newTestStore(t, 10*time.Millisecond)
	if err := s.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOffset(11); err != nil {
		t.Fatal(err)
	}
	awaitRawOffset(t, s, 11, "offset not persisted by the ticker after recovery")
}

// User keys that spell metadata keys cannot touch the metadata.
func TestKeyspacesSeparate(t *testing.T) {
	s := newTestStore(t, time.Hour)
	if err := s.SetOffset(3); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkRecovered(); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{offsetKey, topicIDKey, "m", ""} {
		if err := s.Set(k, []byte("garbage")); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(k); err != nil {
			t.Fatal(err)
		}
	}
	if got := rawOffset(t, s); got != 3 {
		t.Fatalf("raw offset = %d, want 3", got)
	}
}

func TestPrefixEnd(t *testing.T) {
	for in, want := range map[string]string{
		"d":         "e",
		"da":        "db",
		"da\xff":    "db",
		"d\xff\xff": "e",
	} {
		if got := string(prefixEnd([]byte(in))); got != want {
			t.Errorf("prefixEnd(%q) = %q, want %q", in, got, want)
		}
	}
}
