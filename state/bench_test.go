package state_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

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

func pebbleOpener(opts state.Options) opener {
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	return func(b *testing.B, dir string) storage.Storage {
		st, err := state.NewBuilder(dir, opts)("bench-table", 0)
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
	f(b, pebbleOpener(state.Options{Cache: cache}))
}

// set: the partition goroutine writing table values (recovered store).
func benchSet(b *testing.B, open opener) { benchWrites(b, open, false) }

// process: one processed message after recovery, Set from the partition
// goroutine plus SetOffset from the ack (kept in memory, persisted by the ticker).
func benchProcess(b *testing.B, open opener) { benchWrites(b, open, true) }

// benchWrites times Set on a recovered store, each followed by SetOffset when
// withOffset: set and process differ only in that.
func benchWrites(b *testing.B, open opener, withOffset bool) {
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
		if !withOffset {
			continue
		}
		if err := st.SetOffset(int64(i + 1)); err != nil {
			b.Fatal(err)
		}
	}
}

// openFilled opens a store holding every key of benchKeyList, for the read
// benchmarks; the caller closes it with closeUntimed.
func openFilled(b *testing.B, open opener) storage.Storage {
	st := open(b, b.TempDir())
	v := benchValue()
	for _, k := range benchKeyList {
		if err := st.Set(k, v); err != nil {
			b.Fatal(err)
		}
	}
	return st
}

// get: point reads of existing keys from a 100k-key partition.
func benchGet(b *testing.B, open opener) {
	st := openFilled(b, open)
	defer closeUntimed(b, st)
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
	benchRebuild(b, open, benchKeys, func(i int) (string, []byte) { return benchKeyList[i], v })
}

// benchRebuild times whole recoveries of records records, record i being
// record(i), each into a fresh directory; the recovery benchmarks differ only
// in their records.
func benchRebuild(b *testing.B, open opener, records int, record func(i int) (string, []byte)) {
	root := b.TempDir()
	b.ReportAllocs()
	cpu := startCPU()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		st := open(b, filepath.Join(root, fmt.Sprint(n)))
		for i := range records {
			k, v := record(i)
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
	b.ReportMetric(float64(records)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	cpu.report(b, records*b.N)
}

// iterate: a full scan of a 100k-key partition. One op is one key.
func benchIterate(b *testing.B, open opener) {
	st := openFilled(b, open)
	defer closeUntimed(b, st)
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

// benchPool is incompressible value material, so that sstable sizes (and
// with them flushes, compactions and block-cache misses) are realistic; the
// repeated alphabet of benchValue compresses several times over.
var benchPool = func() []byte {
	p := make([]byte, 1<<16)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range p {
		p[i] = byte(rng.Uint32())
	}
	return p
}()

// poolValue returns the i-th value of benchValueLen bytes from benchPool.
func poolValue(i int) []byte {
	off := (i * 4099) % (len(benchPool) - benchValueLen)
	return benchPool[off : off+benchValueLen]
}

// Large recovery: 1M changelog records over 250k keys with incompressible
// values (about 145 MB written, 36 MB live), the size of the service's
// end-to-end restore measurement. It goes through several memtable
// flushes and L0 compactions, which the 100k benchmark barely touches.
const (
	largeRecords = 1_000_000
	largeKeys    = 250_000
)

func benchRecoveryLarge(b *testing.B, open opener) {
	keys := make([]string, largeKeys)
	for i := range keys {
		keys[i] = fmt.Sprintf("opportunity-%08d", (i*7919)%largeKeys)
	}
	benchRebuild(b, open, largeRecords, func(i int) (string, []byte) { return keys[i%largeKeys], poolValue(i) })
}

// Cold point reads: a partition of coldKeys keys (about 30 MB) written,
// partly updated, closed and reopened, so every pair sits in sstables
// (pebble flushes the replayed WAL on open) and the block cache starts
// empty; the cache
// (coldCache) is far smaller than the data, as in the service, where one
// 64 MiB cache serves some 43 stores. Existing keys are the even numbers,
// missing keys the odd ones in between, so the sstables' key ranges cannot
// rule the missing keys out: only a filter can.
const (
	coldKeys  = 200_000
	coldCache = 8 << 20 // goka's LevelDB default block cache, per store
)

func coldKey(i int) string { return fmt.Sprintf("account-%08d", i) }

// coldDirs caches the populated partitions across benchmark runs (the
// setup takes seconds and the benchmark only reads); TestMain removes them.
var coldDirs = map[string]string{}

func coldDir(b *testing.B, name string, open opener) string {
	if dir, ok := coldDirs[name]; ok {
		return dir
	}
	dir, err := os.MkdirTemp("", "state-bench-"+name+"-")
	if err != nil {
		b.Fatal(err)
	}
	st := open(b, dir)
	if err := st.MarkRecovered(); err != nil {
		b.Fatal(err)
	}
	for i := range coldKeys {
		k := (i * 7919) % coldKeys // scattered order: overlapping sstables
		if err := st.Set(coldKey(2*k), poolValue(k)); err != nil {
			b.Fatal(err)
		}
	}
	// Then a live partition's later updates (a fifth of the keys, about
	// 6 MB): in pebble they land in fresh L0 files on top of the compacted
	// levels, which every Get must consult, as in the service.
	for i := range coldKeys / 5 {
		k := (i * 104729) % coldKeys
		if err := st.Set(coldKey(2*k), poolValue(k+1)); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	coldDirs[name] = dir
	return dir
}

func benchGetCold(b *testing.B, name string, open opener, missing bool) {
	st := open(b, coldDir(b, name, open))
	defer closeUntimed(b, st)
	rng := rand.New(rand.NewPCG(3, 4))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := 2 * rng.IntN(coldKeys)
		if missing {
			k++
		}
		got, err := st.Get(coldKey(k))
		if err != nil {
			b.Fatal(err)
		}
		if (got == nil) != missing {
			b.Fatalf("get %s: %d bytes, missing=%v", coldKey(k), len(got), missing)
		}
	}
}

func coldPebble(b *testing.B, missing bool, opts state.Options) {
	cache := pebble.NewCache(coldCache)
	defer cache.Unref()
	opts.Cache = cache
	benchGetCold(b, "pebble", pebbleOpener(opts), missing)
}

func coldLevelDB(b *testing.B, missing bool) {
	benchGetCold(b, "leveldb", levelDBOpener, missing)
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range coldDirs {
		_ = os.RemoveAll(dir)
	}
	os.Exit(code)
}

func BenchmarkRecoveryLarge(b *testing.B)        { withPebble(b, benchRecoveryLarge) }
func BenchmarkLevelDBRecoveryLarge(b *testing.B) { benchRecoveryLarge(b, levelDBOpener) }

func BenchmarkGetCold(b *testing.B)               { coldPebble(b, false, state.Options{}) }
func BenchmarkLevelDBGetCold(b *testing.B)        { coldLevelDB(b, false) }
func BenchmarkGetColdMissing(b *testing.B)        { coldPebble(b, true, state.Options{}) }
func BenchmarkLevelDBGetColdMissing(b *testing.B) { coldLevelDB(b, true) }

// cpuClock measures the process's CPU time (user+system, all goroutines,
// so pebble's background flushes and compactions count). On a shared
// machine wall-clock throughput varies with the neighbours' load; CPU per
// record is the steadier figure to compare.
type cpuClock struct{ start time.Duration }

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func startCPU() cpuClock { return cpuClock{processCPU()} }

func (c cpuClock) report(b *testing.B, records int) {
	b.ReportMetric(float64(processCPU()-c.start)/float64(records), "cpu-ns/record")
}

// The same with 16 MiB memtables (Options.MemTableSize): fewer flushes and
// L0 compactions during the load, at up to two such memtables per busy
// partition.
func BenchmarkRecoveryLargeMemTable16(b *testing.B) {
	cache := pebble.NewCache(64 << 20)
	defer cache.Unref()
	benchRecoveryLarge(b, pebbleOpener(state.Options{Cache: cache, MemTableSize: 16 << 20}))
}
