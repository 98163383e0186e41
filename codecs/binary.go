package codecs

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// This file holds the Avro binary primitives used by the hand-written readers and writers of
// the current schemas. They follow the specification's binary encoding exactly (zig-zag
// varints for int and long, length-prefixed strings, union branch index as a long, arrays as
// counted blocks ending with a zero count); tests check every record byte-for-byte against
// goavro driven by the same .avsc files.
//
// Writers are append functions (b = appendX(b, v)) rather than methods on a struct holding
// the buffer: the slice then lives in registers, and no pointer is stored through a pointer
// per field, which would cost a GC write barrier per field whenever the collector runs.
// Likewise the decoder advances an index instead of re-slicing its buffer.

func appendLong(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

// appendInt writes an Avro int; the caller has checked the range with fitsInt.
func appendInt(b []byte, v int) []byte { return binary.AppendVarint(b, int64(v)) }

// fitsInt reports whether v fits an Avro int (32 bits).
func fitsInt(v int) bool { return v >= math.MinInt32 && v <= math.MaxInt32 }

func intError(field string, v int) error {
	return fmt.Errorf("%w: %s = %d does not fit an Avro int", ErrInvalidValue, field, v)
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendVarint(b, int64(len(s)))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendTimestamp writes timestamp-micros; sub-microsecond parts are truncated (toward the
// past, as time.UnixMicro does).
func appendTimestamp(b []byte, t time.Time) []byte { return binary.AppendVarint(b, t.UnixMicro()) }

// Union branch indexes are zig-zag longs: branch 0 is the byte 0x00, branch 1 the byte 0x02.
const (
	branchNull  = 0x00
	branchValue = 0x02
)

// appendOptStr writes ["null","string"].
func appendOptStr(b []byte, p *string) []byte {
	if p == nil {
		return append(b, branchNull)
	}
	return appendStr(append(b, branchValue), *p)
}

// appendStrOrNull writes ["null","string"] for a domain string where "" means absent.
func appendStrOrNull(b []byte, s string) []byte {
	if s == "" {
		return append(b, branchNull)
	}
	return appendStr(append(b, branchValue), s)
}

// appendOptLong writes ["null","long"].
func appendOptLong(b []byte, p *int64) []byte {
	if p == nil {
		return append(b, branchNull)
	}
	return appendLong(append(b, branchValue), *p)
}

// appendOptIntAsLong writes a Go *int into ["null","long"].
func appendOptIntAsLong(b []byte, p *int) []byte {
	if p == nil {
		return append(b, branchNull)
	}
	return appendLong(append(b, branchValue), int64(*p))
}

// appendOptTimestamp writes ["null",timestamp-micros].
func appendOptTimestamp(b []byte, p *time.Time) []byte {
	if p == nil {
		return append(b, branchNull)
	}
	return appendTimestamp(append(b, branchValue), *p)
}

// appendArrayStart writes the block count of an array of n items (nothing when empty);
// appendArrayEnd writes the closing zero count.
func appendArrayStart(b []byte, n int) []byte {
	if n > 0 {
		return binary.AppendVarint(b, int64(n))
	}
	return b
}

func appendArrayEnd(b []byte) []byte { return append(b, 0) }

func appendStrings(b []byte, ss []string) []byte {
	b = appendArrayStart(b, len(ss))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return appendArrayEnd(b)
}

// bufPool recycles encode buffers: an encode costs one allocation, the exact-size result.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxPooledBuf keeps one huge record from pinning its buffer in the pool forever.
const maxPooledBuf = 1 << 20

// startRecord takes a pooled buffer and writes the single-object header of the kind's
// current schema (C3 01 + fingerprint) into it.
func startRecord(kind recordKind) ([]byte, *[]byte) {
	bp := bufPool.Get().(*[]byte)
	return append((*bp)[:0], currentSchema[kind].header[:]...), bp
}

// finishRecord returns an exactly sized copy of the record and recycles the buffer.
func finishRecord(kind recordKind, bp *[]byte, b []byte, err error) ([]byte, error) {
	var out []byte
	if err == nil {
		out = make([]byte, len(b))
		copy(out, b)
	}
	if cap(b) <= maxPooledBuf {
		*bp = b[:0]
		bufPool.Put(bp)
	}
	if err != nil {
		return nil, fmt.Errorf("codecs: encode %s: %w", kind, err)
	}
	return out, nil
}

// internSlots is the size of the decoder's string cache (a power of two).
const internSlots = 32

// maxInterned: longer strings are rarely repeated and not worth hashing.
const maxInterned = 40

// decoder reads Avro binary from buf starting at pos. The first error sticks and moves pos to
// the end, so every later read returns a zero value: a corrupt record can never index out of
// range, and the per-field code needs no error checks.
//
// cache remembers recent short strings of this record: ids, actors, stage ids and field
// values repeat across an aggregate's events, and each repeat then costs no allocation.
type decoder struct {
	buf   []byte
	pos   int
	err   error
	cache [internSlots]string
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.pos = len(d.buf)
}

func (d *decoder) truncated(what string) {
	d.fail(fmt.Errorf("%w: %w: data ends inside %s", ErrMalformed, ErrTruncated, what))
}

// rest is the number of unread bytes.
func (d *decoder) rest() int { return len(d.buf) - d.pos }

func (d *decoder) long() int64 {
	if d.pos < len(d.buf) && d.buf[d.pos] < 0x80 { // one byte: small numbers, union indexes
		c := d.buf[d.pos]
		d.pos++
		return int64(c>>1) ^ -int64(c&1)
	}
	v, n := binary.Varint(d.buf[d.pos:])
	if n <= 0 {
		if n == 0 {
			d.truncated("a number")
		} else {
			d.fail(fmt.Errorf("%w: number longer than 64 bits", ErrMalformed))
		}
		return 0
	}
	d.pos += n
	return v
}

// int reads an Avro int into a Go int, refusing values beyond 32 bits.
func (d *decoder) int() int {
	v := d.long()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.fail(fmt.Errorf("%w: int %d beyond 32 bits", ErrMalformed, v))
		return 0
	}
	return int(v)
}

// length reads a string length and checks it against what is left.
func (d *decoder) length() int {
	n := d.long()
	if n < 0 {
		d.fail(fmt.Errorf("%w: negative length %d", ErrMalformed, n))
		return 0
	}
	if n > int64(d.rest()) {
		d.truncated("a string")
		return 0
	}
	return int(n)
}

func (d *decoder) str() string {
	n := d.length()
	if n == 0 {
		return ""
	}
	b := d.buf[d.pos : d.pos+n]
	d.pos += n
	return d.cached(b)
}

// cached returns b as a string, reusing the copy made for an equal earlier string of the same
// record when the cache still holds it.
func (d *decoder) cached(b []byte) string {
	if len(b) > maxInterned {
		return string(b)
	}
	// FNV-1a over the bytes picks the slot; comparing string(b) does not allocate.
	h := uint32(2166136261)
	for _, c := range b {
		h = (h ^ uint32(c)) * 16777619
	}
	slot := &d.cache[h&(internSlots-1)]
	if *slot == string(b) {
		return *slot
	}
	s := string(b)
	*slot = s
	return s
}

func (d *decoder) boolean() bool {
	if d.pos >= len(d.buf) {
		d.truncated("a boolean")
		return false
	}
	c := d.buf[d.pos]
	d.pos++
	if c > 1 {
		d.fail(fmt.Errorf("%w: boolean byte %d", ErrMalformed, c))
	}
	return c == 1
}

func (d *decoder) timestamp() time.Time { return time.UnixMicro(d.long()).UTC() }

// index reads a union branch or enum index and checks it is below n.
func (d *decoder) index(n int, what string) int {
	i := d.long()
	if i < 0 || i >= int64(n) {
		d.fail(fmt.Errorf("%w: %s index %d out of range [0,%d)", ErrMalformed, what, i, n))
		return 0
	}
	return int(i)
}

// nullable reads the branch index of a ["null", T] union: true when T follows.
func (d *decoder) nullable() bool { return d.index(2, "union") == 1 }

func (d *decoder) optStr() *string {
	if !d.nullable() {
		return nil
	}
	s := d.str()
	return &s
}

func (d *decoder) optLong() *int64 {
	if !d.nullable() {
		return nil
	}
	v := d.long()
	return &v
}

// optLongAsInt reads ["null","long"] into a Go *int.
func (d *decoder) optLongAsInt() *int {
	if !d.nullable() {
		return nil
	}
	v := d.long()
	if int64(int(v)) != v {
		d.fail(fmt.Errorf("%w: %d does not fit an int", ErrMalformed, v))
		return nil
	}
	i := int(v)
	return &i
}

func (d *decoder) optTimestamp() *time.Time {
	if !d.nullable() {
		return nil
	}
	t := d.timestamp()
	return &t
}

// block reads an array block header and returns its item count, 0 at the end of the array.
// A negative count is followed by the block's byte size (which we do not need). minItem is
// the least number of bytes one item can take (at least 1 is assumed); a count that cannot
// fit in what is left is refused before anything is allocated for it, so a forged count
// cannot exhaust memory.
func (d *decoder) block(minItem int) int {
	n, _ := d.sizedBlock(minItem)
	return n
}

// sizedBlock is block that also returns the block's byte size, or -1 when the writer did not
// give one (a positive count). A size beyond the remaining bytes is refused.
func (d *decoder) sizedBlock(minItem int) (int, int64) {
	n := d.long()
	size := int64(-1)
	if n < 0 {
		if n == math.MinInt64 {
			d.fail(fmt.Errorf("%w: array block count out of range", ErrMalformed))
			return 0, -1
		}
		n = -n
		if size = d.long(); size < 0 {
			d.fail(fmt.Errorf("%w: negative array block size", ErrMalformed))
			return 0, -1
		}
		if size > int64(d.rest()) {
			d.truncated("an array block")
			return 0, -1
		}
	}
	if d.err != nil {
		return 0, -1
	}
	if n > int64(d.rest()/max(minItem, 1)) {
		d.truncated("an array")
		return 0, -1
	}
	return int(n), size
}

func (d *decoder) strings() []string {
	var out []string
	for n := d.block(1); n > 0; n = d.block(1) {
		if out == nil {
			out = make([]string, 0, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			out = append(out, d.str())
		}
	}
	return out
}

// skip consumes n bytes.
func (d *decoder) skip(n int) {
	if d.err != nil {
		return
	}
	if n > d.rest() {
		d.truncated("a value")
		return
	}
	d.pos += n
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

// entryPool recycles the scratch slices appendLongMap sorts in, so that sorting costs no
// allocation per encode.
var entryPool = sync.Pool{New: func() any { s := make([]longEntry, 0, 64); return &s }}

// maxPooledEntries keeps one huge map from pinning its scratch slice in the pool forever.
const maxPooledEntries = 1 << 14

// appendLongMap writes an Avro map<long> as a single block with its entries sorted by key
// (bytewise, the order of Go's string comparison), then the closing zero count. Go's map
// iteration order is random, so without the sort equal maps would give different bytes;
// with it, equal values are equal records (compaction, change detection, tests). nil and
// empty maps are both the empty map: the zero count alone.
func appendLongMap(b []byte, m map[string]int64) []byte {
	switch len(m) {
	case 0:
	case 1:
		b = appendArrayStart(b, 1)
		for k, v := range m {
			b = appendLong(appendStr(b, k), v)
		}
	default:
		ep := entryPool.Get().(*[]longEntry)
		es := (*ep)[:0]
		for k, v := range m {
			es = append(es, longEntry{keyPrefix(k), k, v})
		}
		slices.SortFunc(es, compareEntries)
		b = appendArrayStart(b, len(es))
		for i := range es {
			b = appendLong(appendStr(b, es[i].key), es[i].val)
		}
		clear(es) // drop the key references before pooling
		if cap(es) <= maxPooledEntries {
			*ep = es[:0]
			entryPool.Put(ep)
		}
	}
	return appendArrayEnd(b)
}

// minMapEntry is the least encoded size of one map<long> entry: an empty key (its length
// byte) and a one-byte long (TestMinItemSizes derives it from the schemas).
const minMapEntry = 2

// maxMapHint caps the size hint a block count gives make: the count has been checked against
// the bytes left, but a map entry takes far more memory than its two least bytes, so a
// forged count in a large record would still preallocate many times the record's size.
// Maps beyond the cap grow as their entries actually arrive.
const maxMapHint = 1024

// keyArena lets the strings of one record share a single allocation: the first string read
// through it copies the rest of the body into one Go string, and that string and every later
// one are substrings of the copy. A decoded Bucket with 80 keys then costs one string
// allocation instead of 80. The copy (at most the record's size) stays alive as long as any
// of its substrings does, which for values decoded, updated and re-encoded per message is
// the lifetime of the message anyway.
type keyArena struct {
	s    string
	base int // buffer position of s[0]
}

// arenaStr reads a string as a substring of the arena's copy of the body.
func (d *decoder) arenaStr(a *keyArena) string {
	n := d.length()
	if n == 0 {
		return ""
	}
	if a.s == "" { // n > 0 bytes are left, so the copy is not empty
		a.s, a.base = string(d.buf[d.pos:]), d.pos
	}
	off := d.pos - a.base
	d.pos += n
	return a.s[off : off+n]
}

// longMap reads an Avro map<long>; an empty map is nil. Blocks may have negative counts with
// byte sizes and come in any key order. A repeated key is refused, as goavro (the generic
// path) refuses it: the value would depend on the reader. Forged counts are refused by block
// before anything is allocated.
func (d *decoder) longMap(a *keyArena) map[string]int64 {
	var m map[string]int64
	for n := d.block(minMapEntry); n > 0; n = d.block(minMapEntry) {
		if m == nil {
			m = make(map[string]int64, min(n, maxMapHint))
		}
		for i := 0; i < n && d.err == nil; i++ {
			k := d.arenaStr(a)
			v := d.long()
			if d.err != nil {
				break
			}
			size := len(m)
			m[k] = v
			if len(m) == size { // no new entry: costs nothing, unlike a lookup first
				if len(k) > 64 {
					k = k[:64] + "..."
				}
				d.fail(fmt.Errorf("%w: map key %q repeated", ErrMalformed, k))
			}
		}
	}
	return m
}
