package state_test

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
	"sort"
	"testing"

	"github.com/lovoo/goka/storage"
)

// goka's View.Iterator merges one iterator per partition with
// storage.NewMultiIterator. These tests run it over several of our stores
// and over several LevelDB stores and expect the same, documented results.
func TestMergeIteratorOverPartitions(t *testing.T) {
	const partitions = 4
	var keys []string
	for i := range 60 {
		keys = append(keys, fmt.Sprintf("k%d", i))
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)

	results := map[string][]string{}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			root := t.TempDir()
			var stores []*handle
			for p := range partitions {
				st := b.open(t, filepath.Join(root, fmt.Sprint(p)))
				// Offsets as a real table partition has them.
				must(t, st.SetOffset(int64(100+p)))
				must(t, st.MarkRecovered())
				stores = append(stores, st)
			}
			for _, k := range keys {
				h := fnv.New32a()
				h.Write([]byte(k))
				must(t, stores[h.Sum32()%partitions].Set(k, []byte("v"+k)))
			}
			multi := func() storage.Iterator {
				var iters []storage.Iterator
				for _, st := range stores {
					it, err := st.Iterator()
					must(t, err)
					iters = append(iters, it)
				}
				return storage.NewMultiIterator(iters)
			}

			// Full iteration is a sorted merge.
			it := multi()
			var want []string
			for _, k := range sorted {
				want = append(want, kv(k, "v"+k))
			}
			all := drain(t, it)
			expectSeq(t, "merged", all, want...)
			it.Release()

			// Seek then Next returns the sought key first: the merge iterator
			// re-seeks every partition and Next pops the smallest, so it relies
			// on Seek leaving each partition positioned on its key.
			it = multi()
			if !it.Seek([]byte("k5")) {
				t.Fatal("seek k5 found nothing")
			}
			after := drain(t, it)
			i := sort.SearchStrings(sorted, "k5")
			expectSeq(t, "seek k5 then next", after, want[i:]...)
			if after[0] != kv("k5", "vk5") {
				t.Fatalf("first after seek = %s, want k5", after[0])
			}
			it.Release()

			// A seek between keys starts at the next key; past the end, nothing.
			it = multi()
			if !it.Seek([]byte("k55x")) {
				t.Fatal("seek k55x found nothing")
			}
			between := drain(t, it)
			expectSeq(t, "seek k55x", between[:1], kv("k56", "vk56"))
			it.Release()

			it = multi()
			if it.Seek([]byte("l")) {
				t.Fatal("seek past end found something")
			}
			expectSeq(t, "after seek past end", drain(t, it))
			it.Release()

			results[b.name] = append(all, after...)
		})
	}
	if fmt.Sprint(results["pebble"]) != fmt.Sprint(results["leveldb"]) {
		t.Fatal("pebble and leveldb merged differently")
	}
}
