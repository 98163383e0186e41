package state_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/lovoo/goka/storage"

	"github.com/crm-pipeline/crm-pipeline/state"
)

func TestBuilderLayout(t *testing.T) {
	root := t.TempDir()
	build := state.NewBuilder(root, state.Options{Logger: quietLogger()})
	for _, tc := range []struct {
		topic string
		part  int32
		dir   string
	}{
		{"crm-table", 0, "crm-table.0"},
		{"crm.opportunity_v2-table", 7, "crm.opportunity_v2-table.7"},
		{"../evil/topic", 1, "..%2Fevil%2Ftopic.1"},
		{"100%", 2, "100%25.2"},
	} {
		if got := state.PartitionDir(tc.topic, tc.part); got != tc.dir {
			t.Errorf("PartitionDir(%q, %d) = %q, want %q", tc.topic, tc.part, got, tc.dir)
		}
		st, err := build(tc.topic, tc.part)
		must(t, err)
		must(t, st.Open())
		must(t, st.Close())
		if fi, err := os.Stat(filepath.Join(root, tc.dir)); err != nil || !fi.IsDir() {
			t.Errorf("%q: no directory %s: %v", tc.topic, tc.dir, err)
		}
	}
	if _, err := build("", 0); err == nil {
		t.Error("empty topic accepted")
	}
	if _, err := build("t", -1); err == nil {
		t.Error("negative partition accepted")
	}
	var _ storage.Builder = build
}

// The stores of a process share one block cache and have small memtables;
// the cache reference stays the caller's to drop.
func TestSharedCacheAcrossPartitions(t *testing.T) {
	cache := pebble.NewCache(8 << 20)
	build := state.NewBuilder(t.TempDir(), state.Options{
		Cache:        cache,
		MemTableSize: 1 << 20,
		Logger:       quietLogger(),
	})
	var stores []storage.Storage
	for p := range int32(8) {
		st, err := build("crm-table", p)
		must(t, err)
		must(t, st.Open())
		stores = append(stores, st)
	}
	value := make([]byte, 256)
	for i := range 20000 { // about 5 MiB: several memtable flushes in total
		must(t, stores[i%8].Set(fmt.Sprintf("k%06d", i), value))
	}
	for i, st := range stores {
		got, err := st.Get(fmt.Sprintf("k%06d", i))
		must(t, err)
		if len(got) != len(value) {
			t.Fatalf("partition %d: got %d bytes", i, len(got))
		}
		must(t, st.Close())
	}
	cache.Unref() // panics if the stores dropped references they did not hold
}
