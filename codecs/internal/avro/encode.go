package avro

import (
	"encoding/binary"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// The Avro binary writers. They follow the specification's binary encoding exactly (zig-zag
// varints for int and long, length-prefixed strings, union branch index as a long, arrays as
// counted blocks ending with a zero count).
//
// Writers are append functions (b = AppendX(b, v)) rather than methods on a struct holding
// the buffer: the slice then lives in registers, and no pointer is stored through a pointer
// per field, which would cost a GC write barrier per field whenever the collector runs.

// AppendLong writes an Avro long.
func AppendLong(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// AppendInt writes an Avro int; the caller has checked the range with FitsInt.
func AppendInt(b []byte, v int) []byte { return binary.AppendVarint(b, int64(v)) }

// FitsInt reports whether v fits an Avro int (32 bits).
func FitsInt(v int) bool { return v >= math.MinInt32 && v <= math.MaxInt32 }

// AppendStr writes an Avro string.
func AppendStr(b []byte, s string) []byte {
	b = binary.AppendVarint(b, int64(len(s)))
	return append(b, s...)
}

// AppendBytes writes Avro bytes (the same layout as a string).
func AppendBytes(b []byte, p []byte) []byte {
	b = binary.AppendVarint(b, int64(len(p)))
	return append(b, p...)
}

// AppendBool writes an Avro boolean.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendTimestamp writes timestamp-micros; sub-microsecond parts are truncated (toward the
// past, as time.UnixMicro does).
func AppendTimestamp(b []byte, t time.Time) []byte { return binary.AppendVarint(b, t.UnixMicro()) }

// Union branch indexes are zig-zag longs: branch 0 is the byte 0x00, branch 1 the byte 0x02.
const (
	BranchNull  = 0x00
	BranchValue = 0x02
)

// AppendOptStr writes ["null","string"].
func AppendOptStr(b []byte, p *string) []byte {
	if p == nil {
		return append(b, BranchNull)
	}
	return AppendStr(append(b, BranchValue), *p)
}

// AppendStrOrNull writes ["null","string"] for a string where "" means absent.
func AppendStrOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, BranchNull)
	}
	return AppendStr(append(b, BranchValue), s)
}

// AppendOptLong writes ["null","long"].
func AppendOptLong(b []byte, p *int64) []byte {
	if p == nil {
		return append(b, BranchNull)
	}
	return AppendLong(append(b, BranchValue), *p)
}

// AppendOptIntAsLong writes a Go *int into ["null","long"].
func AppendOptIntAsLong(b []byte, p *int) []byte {
	if p == nil {
		return append(b, BranchNull)
	}
	return AppendLong(append(b, BranchValue), int64(*p))
}

// AppendOptTimestamp writes ["null",timestamp-micros].
func AppendOptTimestamp(b []byte, p *time.Time) []byte {
	if p == nil {
		return append(b, BranchNull)
	}
	return AppendTimestamp(append(b, BranchValue), *p)
}

// AppendArrayStart writes the block count of an array of n items (nothing when empty);
// AppendArrayEnd writes the closing zero count.
func AppendArrayStart(b []byte, n int) []byte {
	if n > 0 {
		return binary.AppendVarint(b, int64(n))
	}
	return b
}

// AppendArrayEnd writes the zero count that ends an array or a map.
func AppendArrayEnd(b []byte) []byte { return append(b, 0) }

// AppendStrings writes an array of strings.
func AppendStrings(b []byte, ss []string) []byte {
	b = AppendArrayStart(b, len(ss))
	for _, s := range ss {
		b = AppendStr(b, s)
	}
	return AppendArrayEnd(b)
}

// AppendSizedBlock wraps the items appended to b since start, n of them, into one array block
// with a negative count and its byte size (both allowed by the specification), so that a
// reader can skip the block without parsing it. It does not end the array.
func AppendSizedBlock(b []byte, start, n int) []byte {
	var hdr [2 * binary.MaxVarintLen64]byte
	hd := binary.AppendVarint(hdr[:0], int64(-n))
	hd = binary.AppendVarint(hd, int64(len(b)-start))
	b = append(b, hd...)
	copy(b[start+len(hd):], b[start:len(b)-len(hd)])
	copy(b[start:], hd)
	return b
}

// ---- records ----

// bufPool recycles encode buffers: an encode costs one allocation, the exact-size result.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooledBuf keeps one huge record from pinning its buffer in the pool forever.
const maxPooledBuf = 1 << 20

// StartRecord takes a pooled buffer and writes header (the single-object header of the
// writer schema) into it. Hand the buffer back with FinishRecord.
func StartRecord(header []byte) ([]byte, *[]byte) {
	bp := bufPool.Get().(*[]byte)
	return append((*bp)[:0], header...), bp
}

// FinishRecord returns an exactly sized copy of the record b (nil when failed) and recycles
// the buffer bp that StartRecord gave.
func FinishRecord(bp *[]byte, b []byte, failed bool) []byte {
	var out []byte
	if !failed {
		out = make([]byte, len(b))
		copy(out, b)
	}
	if cap(b) <= maxPooledBuf {
		*bp = b[:0]
		bufPool.Put(bp)
	}
	return out
}

// ---- maps ----

// longEntry is one entry of a map<long> being written. prefix is the key's first 8 bytes as
// a big-endian number (zero-padded), so that most comparisons of the sort are one integer
// comparison: prefix order never contradicts bytewise key order, only ties need the keys.
type longEntry struct {
	prefix uint64
	key    string
	val    int64
}

func keyPrefix(s string) uint64 {
	if len(s) >= 8 {
		return uint64(s[0])<<56 | uint64(s[1])<<48 | uint64(s[2])<<40 | uint64(s[3])<<32 |
			uint64(s[4])<<24 | uint64(s[5])<<16 | uint64(s[6])<<8 | uint64(s[7])
	}
	var p uint64
	for i := range 8 {
		p <<= 8
		if i < len(s) {
			p |= uint64(s[i])
		}
	}
	return p
}

func compareEntries(x, y longEntry) int {
	if x.prefix != y.prefix {
		if x.prefix < y.prefix {
			return -1
		}
		return 1
	}
	return strings.Compare(x.key, y.key)
}

// entryPool recycles the scratch slices AppendLongMap sorts in, so that sorting costs no
// allocation per encode.
var entryPool = sync.Pool{New: func() any { s := make([]longEntry, 0, 64); return &s }}

// maxPooledEntries keeps one huge map from pinning its scratch slice in the pool forever.
const maxPooledEntries = 1 << 14

// AppendLongMap writes an Avro map<long> as a single block with its entries sorted by key
// (bytewise, the order of Go's string comparison), then the closing zero count. Go's map
// iteration order is random, so without the sort equal maps would give different bytes;
// with it, equal values are equal records (compaction, change detection, tests). nil and
// empty maps are both the empty map: the zero count alone.
func AppendLongMap(b []byte, m map[string]int64) []byte {
	switch len(m) {
	case 0:
	case 1:
		b = AppendArrayStart(b, 1)
		for k, v := range m {
			b = AppendLong(AppendStr(b, k), v)
		}
	default:
		ep := entryPool.Get().(*[]longEntry)
		es := (*ep)[:0]
		for k, v := range m {
			es = append(es, longEntry{keyPrefix(k), k, v})
		}
		slices.SortFunc(es, compareEntries)
		b = AppendArrayStart(b, len(es))
		for i := range es {
			b = AppendLong(AppendStr(b, es[i].key), es[i].val)
		}
		clear(es) // drop the key references before pooling
		if cap(es) <= maxPooledEntries {
			*ep = es[:0]
			entryPool.Put(ep)
		}
	}
	return AppendArrayEnd(b)
}
