package state_test

import (
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/lovoo/goka/storage"

	"github.com/crm-pipeline/crm-pipeline/state"
)

// backend opens one implementation of goka's storage.Storage in a directory.
// The contract tests run against both: goka's LevelDB storage is the
// reference, pebble is ours.
type backend struct {
	name string
	open func(tb testing.TB, dir string) *handle
}

func backends() []backend {
	return []backend{
		{name: "pebble", open: openPebble},
		{name: "leveldb", open: openLevelDB},
	}
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

func openPebble(tb testing.TB, dir string) *handle {
	tb.Helper()
	return openWith(tb, state.NewBuilder(dir, state.Options{Logger: quietLogger()}))
}

func openLevelDB(tb testing.TB, dir string) *handle {
	tb.Helper()
	return openWith(tb, storage.DefaultBuilder(dir))
}

// openWith builds and opens partition 0 of a table the way goka does:
// builder, then Open.
func openWith(tb testing.TB, build storage.Builder) *handle {
	tb.Helper()
	st, err := build("crm-table", 0)
	if err != nil {
		tb.Fatalf("build: %v", err)
	}
	if err := st.Open(); err != nil {
		tb.Fatalf("open: %v", err)
	}
	h := &handle{Storage: st}
	tb.Cleanup(func() { h.close(tb) })
	return h
}

// handle closes a storage at most once: goka's LevelDB storage panics on a
// second Close.
type handle struct {
	storage.Storage
	closed bool
}

func (h *handle) close(tb testing.TB) {
	tb.Helper()
	if h.closed {
		return
	}
	h.closed = true
	if err := h.Storage.Close(); err != nil {
		tb.Errorf("close: %v", err)
	}
}

func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

// show renders a byte slice so that nil and empty differ.
func show(b []byte) string {
	if b == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%q", b)
}

// drain calls Next until it returns false and renders every pair.
func drain(tb testing.TB, it storage.Iterator) []string {
	tb.Helper()
	var out []string
	for it.Next() {
		out = append(out, pair(tb, it))
	}
	if err := it.Err(); err != nil {
		tb.Fatalf("iterator error: %v", err)
	}
	return out
}

// pair renders the iterator's current pair.
func pair(tb testing.TB, it storage.Iterator) string {
	tb.Helper()
	v, err := it.Value()
	if err != nil {
		tb.Fatalf("value: %v", err)
	}
	return fmt.Sprintf("%s=%s", show(it.Key()), show(v))
}

// expectSeek seeks it to target and expects it on the pair want; what names
// the step in a failure.
func expectSeek(tb testing.TB, it storage.Iterator, target []byte, what, want string) {
	tb.Helper()
	if !it.Seek(target) {
		tb.Fatalf("%s: seek %q found nothing", what, target)
	}
	expectSeq(tb, what, []string{pair(tb, it)}, want)
}

func expectSeq(tb testing.TB, what string, got []string, want ...string) {
	tb.Helper()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		tb.Fatalf("%s:\n got  %v\n want %v", what, got, want)
	}
}

func expectValue(tb testing.TB, st storage.Storage, key string, want []byte) {
	tb.Helper()
	got, err := st.Get(key)
	if err != nil {
		tb.Fatalf("get %q: %v", key, err)
	}
	if show(got) != show(want) {
		tb.Fatalf("get %q = %s, want %s", key, show(got), show(want))
	}
	has, err := st.Has(key)
	if err != nil {
		tb.Fatalf("has %q: %v", key, err)
	}
	if has != (want != nil) {
		tb.Fatalf("has %q = %v, want %v", key, has, want != nil)
	}
}

func expectOffset(tb testing.TB, st storage.Storage, def, want int64) {
	tb.Helper()
	got, err := st.GetOffset(def)
	if err != nil {
		tb.Fatalf("get offset: %v", err)
	}
	if got != want {
		tb.Fatalf("offset = %d, want %d", got, want)
	}
}

func kv(k, v string) string { return fmt.Sprintf("%q=%q", k, v) }

// sortedPairs is what an iteration over keys, each stored with the value
// prefix+key, must yield: the pairs in key order.
func sortedPairs(keys []string, prefix string) []string {
	sorted := slices.Sorted(slices.Values(keys))
	want := make([]string, 0, len(sorted))
	for _, k := range sorted {
		want = append(want, kv(k, prefix+k))
	}
	return want
}

func setAll(tb testing.TB, st storage.Storage, pairs ...string) {
	tb.Helper()
	if len(pairs)%2 != 0 {
		tb.Fatal("setAll needs key/value pairs")
	}
	for i := 0; i < len(pairs); i += 2 {
		must(tb, st.Set(pairs[i], []byte(pairs[i+1])))
	}
}

func mustWriteFile(tb testing.TB, path, content string) {
	tb.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		tb.Fatal(err)
	}
}

// noErr is must for goroutines other than the test's own, where Fatal is
// not allowed.
func noErr(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Error(err)
	}
}
