package state_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/lovoo/goka/storage"

	"github.com/crm-pipeline/crm-pipeline/state"
)

// Benchmarks of our store against goka's LevelDB storage on the same
// workloads: a table partition of 100k keys with 128-byte values.

const (
	benchKeys     = 100_000
	benchValueLen = 128
)

var benchKeyList = func() []string {
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("account-%08d", (i*7919)%benchKeys) // scattered order
	}
	return keys
}()

func benchValue() []byte {
	v := make([]byte, benchValueLen)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}

type opener func(b *testing.B, dir string) storage.Storage

func pebbleOpener(cache *pebble.Cache) opener {
	return func(b *testing.B, dir string) storage.Storage {
		st, err := state.NewBuilder(dir, state.Options{Cache: cache, Logger: quietLogger()})("bench-table", 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := st.Open(); err != nil {
			b.Fatal(err)
		}
		return st
	}
}

func levelDBOpener(b *testing.B, dir string) storage.Storage {
	st, err := storage.DefaultBuilder(dir)("bench-table", 0)
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Open(); err != nil {
		b.Fatal(err)
	}
	return st
}

// closeUntimed keeps Close (which flushes the WAL) out of per-op figures.
func closeUntimed(b *testing.B, st storage.Storage) {
	b.StopTimer()
	if err := st.Close(); err != nil {
		b.Error(err)
	}
}

func withPebble(b *testing.B, f func(b *testing.B, open opener)) {
	cache := pebble.NewCache(64 << 20)
	defer cache.Unref()
	f(b, pebbleOpener(cache))
}

// set: the partition goroutine writing table values (recovered store).
func benchSet(b *testing.B, open opener) {
	st := open(b, b.TempDir())
	defer closeUntimed(b, st)
	if err := st.MarkRecovered(); err != nil {
		b.Fatal(err)
	}
	v := benchValue()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := st.Set(benchKeyList[i%benchKeys], v); err != nil {
			b.Fatal(err)
		}
	}
}

// process: one processed message after recovery, Set from the partition
// goroutine plus SetOffset from the ack (persisted on every call).
func benchProcess(b *testing.B, open opener) {
	st := open(b, b.TempDir())
	defer closeUntimed(b, st)
	if err := st.MarkRecovered(); err != nil {
		b.Fatal(err)
	}
	v := benchValue()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := st.Set(benchKeyList[i%benchKeys], v); err != nil {
			b.Fatal(err)
		}
		if err := st.SetOffset(int64(i + 1)); err != nil {
			b.Fatal(err)
		}
	}
}

// get: point reads of existing keys from a 100k-key partition.
func benchGet(b *testing.B, open opener) {
	st := open(b, b.TempDir())
	defer closeUntimed(b, st)
	v := benchValue()
	for _, k := range benchKeyList {
		if err := st.Set(k, v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		got, err := st.Get(benchKeyList[(i*31)%benchKeys])
		if err != nil || len(got) != benchValueLen {
			b.Fatalf("get: %d bytes, %v", len(got), err)
		}
	}
}

// recovery: rebuilding a partition from its table topic, i.e. Set and
// SetOffset for 100k records, then MarkRecovered and Close. One op is one
// whole recovery.
func benchRecovery(b *testing.B, open opener) {
	v := benchValue()
	root := b.TempDir()
	b.ReportAllocs()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		st := open(b, filepath.Join(root, fmt.Sprint(n)))
		for i, k := range benchKeyList {
			if err := st.Set(k, v); err != nil {
				b.Fatal(err)
			}
			if err := st.SetOffset(int64(i + 1)); err != nil {
				b.Fatal(err)
			}
		}
		if err := st.MarkRecovered(); err != nil {
			b.Fatal(err)
		}
		if err := st.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(benchKeys)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// iterate: a full scan of a 100k-key partition. One op is one key.
func benchIterate(b *testing.B, open opener) {
	st := open(b, b.TempDir())
	defer closeUntimed(b, st)
	v := benchValue()
	for _, k := range benchKeyList {
		if err := st.Set(k, v); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	var it storage.Iterator
	for i := 0; i < b.N; i++ {
		if it == nil {
			var err error
			if it, err = st.Iterator(); err != nil {
				b.Fatal(err)
			}
		}
		if !it.Next() {
			it.Release()
			it = nil
			continue
		}
		if _, err := it.Value(); err != nil || it.Key() == nil {
			b.Fatal(err)
		}
	}
	if it != nil {
		it.Release()
	}
}

func BenchmarkSet(b *testing.B)        { withPebble(b, benchSet) }
func BenchmarkLevelDBSet(b *testing.B) { benchSet(b, levelDBOpener) }

func BenchmarkProcess(b *testing.B)        { withPebble(b, benchProcess) }
func BenchmarkLevelDBProcess(b *testing.B) { benchProcess(b, levelDBOpener) }

func BenchmarkGet(b *testing.B)        { withPebble(b, benchGet) }
func BenchmarkLevelDBGet(b *testing.B) { benchGet(b, levelDBOpener) }

func BenchmarkRecovery(b *testing.B)        { withPebble(b, benchRecovery) }
func BenchmarkLevelDBRecovery(b *testing.B) { benchRecovery(b, levelDBOpener) }

func BenchmarkIterate(b *testing.B)        { withPebble(b, benchIterate) }
func BenchmarkLevelDBIterate(b *testing.B) { benchIterate(b, levelDBOpener) }
