package avro

import (
	"encoding/binary"
	"fmt"
	"math"
	"time"
)

// internSlots is the size of the decoder's string cache (a power of two).
const internSlots = 32

// maxInterned: longer strings are rarely repeated and not worth hashing.
const maxInterned = 40

// Decoder reads Avro binary from a buffer. The first error sticks and moves the position to
// the end, so every later read returns a zero value: a corrupt record can never index out of
// range, and per-field code needs no error checks. It advances an index rather than
// re-slicing its buffer.
//
// The cache remembers recent short strings of one record: ids, actors, stage ids and field
// values repeat across an aggregate's events, and each repeat then costs no allocation. A
// Decoder is used for one record by one goroutine; make one per record with NewDecoder.
type Decoder struct {
	buf   []byte
	pos   int
	err   error
	cache [internSlots]string
}

// NewDecoder returns a decoder reading buf from its start.
func NewDecoder(buf []byte) Decoder { return Decoder{buf: buf} }

// Fail records err (the first error sticks) and moves to the end of the buffer.
func (d *Decoder) Fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.pos = len(d.buf)
}

// Err is the first error met, or nil.
func (d *Decoder) Err() error { return d.err }

func (d *Decoder) truncated(what string) {
	d.Fail(fmt.Errorf("%w: %w: data ends inside %s", ErrMalformed, ErrTruncated, what))
}

// Pos is the position of the next byte to read.
func (d *Decoder) Pos() int { return d.pos }

// Rest is the number of unread bytes.
func (d *Decoder) Rest() int { return len(d.buf) - d.pos }

// End returns the first error, or an ErrMalformed error when bytes are left after what was
// read as the whole of what (e.g. "the record").
func (d *Decoder) End(what string) error {
	if d.err == nil && d.Rest() != 0 {
		d.err = fmt.Errorf("%w: %d bytes after %s", ErrMalformed, d.Rest(), what)
	}
	return d.err
}

// Long reads an Avro long.
func (d *Decoder) Long() int64 {
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
			d.Fail(fmt.Errorf("%w: number longer than 64 bits", ErrMalformed))
		}
		return 0
	}
	d.pos += n
	return v
}

// Int reads an Avro int into a Go int, refusing values beyond 32 bits.
func (d *Decoder) Int() int {
	v := d.Long()
	if v < math.MinInt32 || v > math.MaxInt32 {
		d.Fail(fmt.Errorf("%w: int %d beyond 32 bits", ErrMalformed, v))
		return 0
	}
	return int(v)
}

// Length reads a string or bytes length and checks it against what is left.
func (d *Decoder) Length() int {
	n := d.Long()
	if n < 0 {
		d.Fail(fmt.Errorf("%w: negative length %d", ErrMalformed, n))
		return 0
	}
	if n > int64(d.Rest()) {
		d.truncated("a string")
		return 0
	}
	return int(n)
}

// Str reads an Avro string.
func (d *Decoder) Str() string {
	n := d.Length()
	if n == 0 {
		return ""
	}
	b := d.buf[d.pos : d.pos+n]
	d.pos += n
	return d.cached(b)
}

// cached returns b as a string, reusing the copy made for an equal earlier string of the same
// record when the cache still holds it.
func (d *Decoder) cached(b []byte) string {
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

// Symbol reads a string that is usually one of known (a table mapping each string to
// itself): those are returned without allocating; others go through the record's string
// cache like any string. Lookups with a []byte key do not allocate.
func (d *Decoder) Symbol(known map[string]string) string {
	n := d.Length()
	if n == 0 {
		return ""
	}
	b := d.buf[d.pos : d.pos+n]
	d.pos += n
	if s, ok := known[string(b)]; ok {
		return s
	}
	return d.cached(b)
}

// SymbolOrEmpty reads ["null","string"] into a string where absent is "", via Symbol.
func (d *Decoder) SymbolOrEmpty(known map[string]string) string {
	if !d.Nullable() {
		return ""
	}
	return d.Symbol(known)
}

// Bool reads an Avro boolean.
func (d *Decoder) Bool() bool {
	if d.pos >= len(d.buf) {
		d.truncated("a boolean")
		return false
	}
	c := d.buf[d.pos]
	d.pos++
	if c > 1 {
		d.Fail(fmt.Errorf("%w: boolean byte %d", ErrMalformed, c))
	}
	return c == 1
}

// Timestamp reads timestamp-micros as a UTC time.
func (d *Decoder) Timestamp() time.Time { return time.UnixMicro(d.Long()).UTC() }

// Index reads a union branch or enum index and checks it is below n.
func (d *Decoder) Index(n int, what string) int {
	i := d.Long()
	if i < 0 || i >= int64(n) {
		d.Fail(fmt.Errorf("%w: %s index %d out of range [0,%d)", ErrMalformed, what, i, n))
		return 0
	}
	return int(i)
}

// Nullable reads the branch index of a ["null", T] union: true when T follows.
func (d *Decoder) Nullable() bool { return d.Index(2, "union") == 1 }

// OptStr reads ["null","string"].
func (d *Decoder) OptStr() *string {
	if !d.Nullable() {
		return nil
	}
	s := d.Str()
	return &s
}

// OptLong reads ["null","long"].
func (d *Decoder) OptLong() *int64 {
	if !d.Nullable() {
		return nil
	}
	v := d.Long()
	return &v
}

// OptLongAsInt reads ["null","long"] into a Go *int.
func (d *Decoder) OptLongAsInt() *int {
	if !d.Nullable() {
		return nil
	}
	v := d.Long()
	if int64(int(v)) != v {
		d.Fail(fmt.Errorf("%w: %d does not fit an int", ErrMalformed, v))
		return nil
	}
	i := int(v)
	return &i
}

// OptTimestamp reads ["null",timestamp-micros].
func (d *Decoder) OptTimestamp() *time.Time {
	if !d.Nullable() {
		return nil
	}
	t := d.Timestamp()
	return &t
}

// Block reads an array block header and returns its item count, 0 at the end of the array.
// A negative count is followed by the block's byte size (which Block does not return).
// minItem is the least number of bytes one item can take (at least 1 is assumed); a count
// that cannot fit in what is left is refused before anything is allocated for it, so a
// forged count cannot exhaust memory.
func (d *Decoder) Block(minItem int) int {
	n, _ := d.SizedBlock(minItem)
	return n
}

// SizedBlock is Block that also returns the block's byte size, or -1 when the writer did not
// give one (a positive count). A size beyond the remaining bytes is refused.
func (d *Decoder) SizedBlock(minItem int) (int, int64) {
	n := d.Long()
	size := int64(-1)
	if n < 0 {
		if n == math.MinInt64 {
			d.Fail(fmt.Errorf("%w: array block count out of range", ErrMalformed))
			return 0, -1
		}
		n = -n
		if size = d.Long(); size < 0 {
			d.Fail(fmt.Errorf("%w: negative array block size", ErrMalformed))
			return 0, -1
		}
		if size > int64(d.Rest()) {
			d.truncated("an array block")
			return 0, -1
		}
	}
	if d.err != nil {
		return 0, -1
	}
	if n > int64(d.Rest()/max(minItem, 1)) {
		d.truncated("an array")
		return 0, -1
	}
	return int(n), size
}

// Strings reads an array of strings; an empty array is nil.
func (d *Decoder) Strings() []string {
	var out []string
	for n := d.Block(1); n > 0; n = d.Block(1) {
		if out == nil {
			out = make([]string, 0, n)
		}
		for i := 0; i < n && d.err == nil; i++ {
			out = append(out, d.Str())
		}
	}
	return out
}

// Skip consumes n bytes.
func (d *Decoder) Skip(n int) {
	if d.err != nil {
		return
	}
	if n > d.Rest() {
		d.truncated("a value")
		return
	}
	d.pos += n
}

// Raw consumes n bytes and returns them, sharing the decoder's buffer (with its capacity
// cut at the end, so appending to them cannot overwrite what follows); nil after an error.
func (d *Decoder) Raw(n int) []byte {
	start := d.pos
	d.Skip(n)
	if d.err != nil {
		return nil
	}
	return d.buf[start:d.pos:d.pos]
}

// Bytes reads Avro bytes into a fresh slice; empty is nil.
func (d *Decoder) Bytes() []byte {
	l := d.Length()
	if d.err != nil {
		return nil
	}
	out := append([]byte(nil), d.buf[d.pos:d.pos+l]...)
	d.pos += l
	return out
}

// ---- maps ----

// MinMapEntry is the least encoded size of one map<long> entry: an empty key (its length
// byte) and a one-byte long.
const MinMapEntry = 2

// maxMapHint caps the size hint a block count gives make: the count has been checked against
// the bytes left, but a map entry takes far more memory than its two least bytes, so a
// forged count in a large record would still preallocate many times the record's size.
// Maps beyond the cap grow as their entries actually arrive.
const maxMapHint = 1024

// KeyArena lets the strings of one record share a single allocation: the first string read
// through it copies the rest of the body into one Go string, and that string and every later
// one are substrings of the copy. A decoded record with 80 map keys then costs one string
// allocation instead of 80. The copy (at most the record's size) stays alive as long as any
// of its substrings does, which for values decoded, updated and re-encoded per message is
// the lifetime of the message anyway. Its zero value is ready to use, for one decoder.
type KeyArena struct {
	s    string
	base int // buffer position of s[0]
}

// ArenaStr reads a string as a substring of the arena's copy of the body.
func (d *Decoder) ArenaStr(a *KeyArena) string {
	n := d.Length()
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

// LongMap reads an Avro map<long>, its keys through a; an empty map is nil. Blocks may have
// negative counts with byte sizes and come in any key order. A repeated key is refused, as
// goavro refuses it: the value would depend on the reader. Forged counts are refused by
// Block before anything is allocated.
func (d *Decoder) LongMap(a *KeyArena) map[string]int64 {
	var m map[string]int64
	for n := d.Block(MinMapEntry); n > 0; n = d.Block(MinMapEntry) {
		if m == nil {
			m = make(map[string]int64, min(n, maxMapHint))
		}
		for i := 0; i < n && d.err == nil; i++ {
			k := d.ArenaStr(a)
			v := d.Long()
			if d.err != nil {
				break
			}
			size := len(m)
			m[k] = v
			if len(m) == size { // no new entry: costs nothing, unlike a lookup first
				if len(k) > 64 {
					k = k[:64] + "..."
				}
				d.Fail(fmt.Errorf("%w: map key %q repeated", ErrMalformed, k))
			}
		}
	}
	return m
}
