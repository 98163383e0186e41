package codecs

import (
	"bytes"
	"errors"
	"maps"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
	"github.com/linkedin/goavro/v2"
)

// goavroWriter returns an append function of goavro's codec for a primitive schema, so that
// tests can assemble expected Avro bytes without this package's writers.
func goavroWriter(t *testing.T, schema string) func([]byte, any) []byte {
	t.Helper()
	c, err := goavro.NewCodec(schema)
	if err != nil {
		t.Fatal(err)
	}
	return func(b []byte, v any) []byte {
		out, err := c.BinaryFromNative(b, v)
		if err != nil {
			t.Fatalf("goavro %s: %v", schema, err)
		}
		return out
	}
}

// TestMapBytesAreSortedBlocks pins the deterministic map layout byte for byte, assembled with
// goavro's string and long encoders: one block holding every entry in bytewise key order,
// then the zero count; an empty map is the zero count alone.
func TestMapBytesAreSortedBlocks(t *testing.T) {
	str, long := goavroWriter(t, `"string"`), goavroWriter(t, `"long"`)
	sortedMap := func(b []byte, m map[string]int64) []byte {
		keys := slices.SortedFunc(maps.Keys(m), func(x, y string) int { return bytes.Compare([]byte(x), []byte(y)) })
		if len(keys) > 0 {
			b = long(b, int64(len(keys)))
		}
		for _, k := range keys {
			b = long(str(b, k), m[k])
		}
		return long(b, int64(0))
	}
	check := func(kind recordKind, name string, got []byte, err error, want []byte) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s/%s: %v", kind, name, err)
		}
		if !bytes.Equal(got[:headerLen], currentSchema[kind].Header[:]) {
			t.Errorf("%s/%s: header % x", kind, name, got[:headerLen])
		}
		if !bytes.Equal(got[headerLen:], want) {
			t.Errorf("%s/%s: body\n% x\nwant (sorted single block)\n% x", kind, name, got[headerLen:], want)
		}
	}
	for name, d := range deltaFixtures() {
		want := str(str(nil, d.Bucket), d.OpportunityID)
		want = sortedMap(long(want, d.Version), d.Values)
		want = long(str(want, d.Source), d.Position)
		got, err := EncodeDelta(d)
		check(kindDelta, name, got, err, want)
	}
	for name, b := range bucketFixtures() {
		got, err := EncodeBucket(b)
		check(kindBucket, name, got, err, sortedMap(sortedMap(nil, b.Values), b.Applied))
	}
	// Bytewise order, not rune or collation order: "Z" < "a" < "é" < "東" < "😀".
	got, _ := EncodeBucket(analytics.Bucket{Values: map[string]int64{"😀": 0, "a": 0, "東": 0, "Z": 0, "é": 0}})
	var keys []string
	d := avro.NewDecoder(got[headerLen:])
	for n := d.Block(avro.MinMapEntry); n > 0; n = d.Block(avro.MinMapEntry) {
		for range n {
			keys = append(keys, d.Str())
			d.Long()
		}
	}
	if want := []string{"Z", "a", "é", "東", "😀"}; !reflect.DeepEqual(keys, want) {
		t.Errorf("key order %q, want %q", keys, want)
	}
}

// Equal values give equal bytes however their maps were built: insertion order, capacity
// and deleted entries all change Go's iteration order, never the record.
func TestMapEncodingIsDeterministic(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 11))
	rebuild := func(m map[string]int64) map[string]int64 {
		if m == nil {
			return nil
		}
		keys := slices.Collect(maps.Keys(m))
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		out := make(map[string]int64, r.IntN(2*len(keys)+1))
		var extra []string
		for i, k := range keys {
			if i%3 == 0 { // entries added and deleted again also change the iteration order
				out["tmp-"+k] = 1
				extra = append(extra, "tmp-"+k)
			}
			out[k] = m[k]
		}
		for _, k := range extra {
			delete(out, k)
		}
		return out
	}
	for name, b := range bucketFixtures() {
		want, _ := EncodeBucket(b)
		for range 50 {
			got, err := EncodeBucket(analytics.Bucket{Values: rebuild(b.Values), Applied: rebuild(b.Applied)})
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("bucket/%s: encoding depends on how the maps were built (%v)", name, err)
			}
		}
	}
	for name, d := range deltaFixtures() {
		want, _ := EncodeDelta(d)
		for range 50 {
			e := d
			e.Values = rebuild(d.Values)
			if got, err := EncodeDelta(e); err != nil || !bytes.Equal(got, want) {
				t.Fatalf("delta/%s: encoding depends on how the map was built (%v)", name, err)
			}
		}
	}
}

// Like slices, empty and nil maps are the same record and decode as nil.
func TestEmptyMapsDecodeAsNil(t *testing.T) {
	nilB, _ := EncodeBucket(analytics.Bucket{})
	emptyB, _ := EncodeBucket(analytics.Bucket{Values: map[string]int64{}, Applied: map[string]int64{}})
	if !bytes.Equal(nilB, emptyB) || len(nilB) != headerLen+2 {
		t.Errorf("nil maps % x, empty maps % x", nilB, emptyB)
	}
	got, err := DecodeBucket(emptyB)
	if err != nil || got.Values != nil || got.Applied != nil {
		t.Errorf("empty bucket decoded as %#v, %v", got, err)
	}
	nilD, _ := EncodeDelta(analytics.Delta{Bucket: "b"})
	emptyD, _ := EncodeDelta(analytics.Delta{Bucket: "b", Values: map[string]int64{}})
	if !bytes.Equal(nilD, emptyD) {
		t.Errorf("nil map % x, empty map % x", nilD, emptyD)
	}
	if d, err := DecodeDelta(emptyD); err != nil || d.Values != nil || d.Bucket != "b" {
		t.Errorf("empty delta decoded as %#v, %v", d, err)
	}
}

// Other writers may split maps into several blocks, with negative counts and byte sizes, in
// any key order; every reader (ours fast and generic, goavro) must give the same map. A
// repeated key is refused by all three.
func TestMapBlocksFromOtherWriters(t *testing.T) {
	entry := func(b []byte, k string, v int64) []byte { return avro.AppendLong(avro.AppendStr(b, k), v) }
	record := func(lastKey string) []byte {
		b := append([]byte{}, currentSchema[kindBucket].Header[:]...)
		// values: a negative-count block of two entries with its byte size, then a block of
		// two out of order.
		blk := entry(entry(nil, "z", 26), "a", 1)
		b = avro.AppendLong(b, -2)
		b = avro.AppendLong(b, int64(len(blk)))
		b = append(b, blk...)
		b = avro.AppendLong(b, 2)
		b = entry(entry(b, "m", math.MinInt64), lastKey, -26)
		b = avro.AppendArrayEnd(b)
		// seen: one entry per block.
		for _, k := range []string{"o-2", "o-1"} {
			b = avro.AppendLong(b, 1)
			b = entry(b, k, 3)
		}
		return avro.AppendArrayEnd(b)
	}
	codec, _ := currentSchema[kindBucket].Goavro()
	dup := record("z")
	if _, err := DecodeBucket(dup); !errors.Is(err, ErrMalformed) {
		t.Errorf("repeated key, fast path: %v", err)
	}
	if _, err := decodeGeneric(currentSchema[kindBucket], dup[headerLen:], bucketFromNative); !errors.Is(err, ErrMalformed) {
		t.Errorf("repeated key, generic path: %v", err)
	}
	if _, _, err := codec.NativeFromBinary(dup[headerLen:]); err == nil {
		t.Errorf("goavro now accepts repeated map keys: reconsider refusing them")
	}

	b := record("b")
	want := analytics.Bucket{Values: map[string]int64{"a": 1, "b": -26, "m": math.MinInt64, "z": 26}, Applied: map[string]int64{"o-1": 3, "o-2": 3}}

	got, err := DecodeBucket(b)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("fast path: %#v, %v", got, err)
	}
	gen, err := decodeGeneric(currentSchema[kindBucket], b[headerLen:], bucketFromNative)
	if err != nil || !reflect.DeepEqual(gen, want) {
		t.Errorf("generic path: %#v, %v", gen, err)
	}
	native, _, err := codec.NativeFromBinary(b[headerLen:])
	if err != nil {
		t.Fatal(err)
	}
	var c avro.Native
	if g := bucketFromNative(&c, native.(map[string]any)); c.Err() != nil || !reflect.DeepEqual(g, want) {
		t.Errorf("goavro: %#v, %v", g, c.Err())
	}
	// Our re-encoding is the canonical one: a single sorted block per map.
	again, _ := EncodeBucket(got)
	canonical, _ := EncodeBucket(want)
	if !bytes.Equal(again, canonical) {
		t.Errorf("re-encoding is not canonical")
	}
}

func TestAnalyticsMalformed(t *testing.T) {
	bucket := func(f func(b []byte) []byte) []byte {
		return f(append([]byte{}, currentSchema[kindBucket].Header[:]...))
	}
	delta, _ := EncodeDelta(deltaFixtures()["full"])
	full, _ := EncodeBucket(bucketFixtures()["small"])
	cases := []struct {
		name     string
		in       []byte
		sentinel error
	}{
		{"a delta", delta, ErrSchemaMismatch},
		{"header only", full[:headerLen], ErrTruncated},
		{"trailing byte", append(append([]byte{}, full...), 0), ErrMalformed},
		{"missing end of seen", full[:len(full)-1], ErrTruncated},
		{"negative key length", bucket(func(b []byte) []byte { return avro.AppendLong(avro.AppendLong(b, 1), -3) }), ErrMalformed},
		{"key longer than data", bucket(func(b []byte) []byte { return append(avro.AppendLong(avro.AppendLong(b, 1), 40), "abc"...) }), ErrTruncated},
		{"value missing", bucket(func(b []byte) []byte { return avro.AppendStr(avro.AppendLong(b, 1), "k") }), ErrTruncated},
		{"value beyond 64 bits", bucket(func(b []byte) []byte {
			return append(avro.AppendStr(avro.AppendLong(b, 1), "k"), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
		}), ErrMalformed},
		{"count beyond the data", bucket(func(b []byte) []byte {
			return avro.AppendArrayEnd(avro.AppendLong(avro.AppendStr(avro.AppendLong(b, 3), "k"), 1))
		}), ErrTruncated},
		{"repeated key", bucket(func(b []byte) []byte {
			return avro.AppendArrayEnd(avro.AppendArrayEnd(avro.AppendLong(avro.AppendStr(avro.AppendLong(avro.AppendStr(avro.AppendLong(b, 2), "k"), 1), "k"), 2)))
		}), ErrMalformed},
		{"repeated key across blocks", bucket(func(b []byte) []byte {
			b = avro.AppendLong(avro.AppendStr(avro.AppendLong(b, 1), "k"), 1)
			return avro.AppendArrayEnd(avro.AppendArrayEnd(avro.AppendLong(avro.AppendStr(avro.AppendLong(b, 1), "k"), 1)))
		}), ErrMalformed},
		{"count MinInt64", bucket(func(b []byte) []byte { return avro.AppendLong(b, math.MinInt64) }), ErrMalformed},
		{"negative block size", bucket(func(b []byte) []byte { return avro.AppendLong(avro.AppendLong(b, -1), -4) }), ErrMalformed},
	}
	for _, c := range cases {
		_, err := DecodeBucket(c.in)
		wantDecodeError(t, c.name, err, c.sentinel)
		var de *DecodeError
		if errors.As(err, &de) && de.Record != "analytics bucket" {
			t.Errorf("%s: record %q", c.name, de.Record)
		}
		if _, err := (BucketCodec{}).Decode(c.in); err == nil {
			t.Errorf("%s: BucketCodec decoded it", c.name)
		}
	}
	bucketRec, _ := EncodeBucket(bucketFixtures()["full"])
	_, err := DecodeDelta(bucketRec)
	wantDecodeError(t, "a bucket as a delta", err, ErrSchemaMismatch)
	_, err = DecodeDelta(delta[:len(delta)-3])
	wantDecodeError(t, "truncated delta", err, ErrTruncated)
	_, err = DecodeDelta([]byte(`{"bucket":"b"}`))
	wantDecodeError(t, "json delta", err, ErrBadMagic)
}

// Forged map counts are refused before anything is allocated for them, on both paths.
func TestForgedMapCounts(t *testing.T) {
	for name, b := range map[string][]byte{
		"values": avro.AppendLong(append([]byte{}, currentSchema[kindBucket].Header[:]...), math.MaxInt64/2),
		"seen":   avro.AppendLong(avro.AppendArrayEnd(append([]byte{}, currentSchema[kindBucket].Header[:]...)), 1<<40),
		"delta":  avro.AppendLong(avro.AppendLong(avro.AppendStr(avro.AppendStr(append([]byte{}, currentSchema[kindDelta].Header[:]...), "b"), "o"), 1), -(1 << 50)),
	} {
		var err error
		n := allocatedBy(func() {
			if name == "delta" {
				_, err = DecodeDelta(b)
			} else {
				_, err = DecodeBucket(b)
			}
		})
		wantDecodeError(t, name, err, ErrMalformed)
		if n > 64<<10 {
			t.Errorf("%s: forged count allocated %d bytes", name, n)
		}
	}
	// goavro preallocates a map by its declared count: the validating pre-pass must refuse
	// a count the bytes left cannot hold before goavro sees it.
	forged := avro.AppendLong(nil, 1<<30)
	forged = append(forged, make([]byte, 64)...)
	wantGenericRefusesForgedCount(t, kindBucket, forged)
	// A count the bytes left can hold in entries of two bytes (an empty key and a zero),
	// followed by such entries: refused at the second entry, with the map's size hint capped.
	zeros := avro.AppendLong(append([]byte{}, currentSchema[kindBucket].Header[:]...), 1<<18)
	zeros = append(zeros, make([]byte, 2<<18)...)
	zeros = avro.AppendArrayEnd(avro.AppendArrayEnd(zeros))
	var err error
	n := allocatedBy(func() { _, err = DecodeBucket(zeros) })
	wantDecodeError(t, "repeated empty keys", err, ErrMalformed)
	if n > 256<<10 {
		t.Errorf("count of %d allocated %d bytes", 1<<18, n)
	}
}

// The generic converter reads promoted ints and refuses mistyped values without panicking.
func TestLongMapConverter(t *testing.T) {
	var c avro.Native
	got := c.LongMap(map[string]any{"m": map[string]any{"a": int32(-5), "b": int64(math.MaxInt64)}}, "m")
	if c.Err() != nil || !reflect.DeepEqual(got, map[string]int64{"a": -5, "b": math.MaxInt64}) {
		t.Errorf("got %#v, %v", got, c.Err())
	}
	if got := c.LongMap(map[string]any{"m": map[string]any{}}, "m"); got != nil {
		t.Errorf("empty map: %#v", got)
	}
	if got := c.LongMap(map[string]any{}, "m"); got != nil || c.Err() != nil {
		t.Errorf("absent map: %#v, %v", got, c.Err())
	}
	for name, m := range map[string]map[string]any{
		"not a map":   {"m": []any{}},
		"string":      {"m": map[string]any{"a": "1"}},
		"float":       {"m": map[string]any{"a": 1.0}},
		"typed map":   {"m": map[string]int64{"a": 1}},
		"nested null": {"m": map[string]any{"a": nil}},
	} {
		var c avro.Native
		c.LongMap(m, "m")
		if !errors.Is(c.Err(), ErrMalformed) {
			t.Errorf("%s: %v", name, c.Err())
		}
	}
}

// Decoding takes one allocation for all of a record's strings, plus the maps themselves.
func TestAnalyticsDecodeAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	b, _ := EncodeBucket(benchBucket(50, 8))
	bucketAllocs := testing.AllocsPerRun(50, func() { _, _ = DecodeBucket(b) })
	d, _ := EncodeDelta(benchDelta())
	deltaAllocs := testing.AllocsPerRun(50, func() { _, _ = DecodeDelta(d) })
	// Two maps of 50 and 30 entries take a handful of allocations each; one per key would
	// be over 80.
	if bucketAllocs > 16 {
		t.Errorf("DecodeBucket: %.0f allocations", bucketAllocs)
	}
	if deltaAllocs > 4 {
		t.Errorf("DecodeDelta: %.0f allocations", deltaAllocs)
	}
	// Decoded strings share the copy but not the input: changing the input changes nothing.
	c := append([]byte{}, d...)
	got, _ := DecodeDelta(c)
	for i := headerLen; i < len(c); i++ {
		c[i] = 'X'
	}
	if !reflect.DeepEqual(got, benchDelta()) {
		t.Errorf("decoded delta aliases its input: %#v", got)
	}
}

// The pooled sort scratch is safe under concurrent encoders (run with -race).
func TestConcurrentAnalyticsEncode(t *testing.T) {
	fx := bucketFixtures()
	names := slices.Sorted(maps.Keys(fx))
	want := map[string][]byte{}
	for _, n := range names {
		want[n], _ = EncodeBucket(fx[n])
	}
	done := make(chan struct{})
	for g := range 8 {
		go func() {
			defer func() { done <- struct{}{} }()
			var c BucketCodec
			for i := range 100 {
				n := names[(g+i)%len(names)]
				b, err := c.Encode(fx[n])
				if err != nil || !bytes.Equal(b, want[n]) {
					t.Errorf("%s: concurrent encode differs", n)
					return
				}
				v, err := c.Decode(b)
				if err != nil || !reflect.DeepEqual(*v.(*analytics.Bucket), fx[n]) {
					t.Errorf("%s: concurrent decode differs", n)
					return
				}
			}
		}()
	}
	for range 8 {
		<-done
	}
}

// FuzzDecodeBucket: arbitrary bytes never panic; whatever decodes re-encodes to a record
// that decodes to the same value, and encoding is canonical (a second round trip gives the
// same bytes).
func FuzzDecodeBucket(f *testing.F) {
	for name, b := range bucketFixtures() {
		if name == "full" {
			continue // 1.5 KB: minimizing the inputs found from it stalls the fuzzer for minutes
		}
		rec, _ := EncodeBucket(b)
		f.Add(rec)
	}
	f.Add([]byte{0xC3, 0x01})
	f.Add(avro.AppendLong(append([]byte{}, currentSchema[kindBucket].Header[:]...), -1))
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, b, "bucket", DecodeBucket, EncodeBucket) })
}

// FuzzDecodeDelta: the same for deltas.
func FuzzDecodeDelta(f *testing.F) {
	for _, d := range deltaFixtures() {
		rec, _ := EncodeDelta(d)
		f.Add(rec)
	}
	f.Fuzz(func(t *testing.T, b []byte) { fuzzRoundTrip(t, b, "delta", DecodeDelta, EncodeDelta) })
}

// fuzzRoundTrip is the body of the analytics records' fuzz targets: bytes that do not decode
// fail with a *DecodeError; a value that decodes re-encodes to a record that decodes to the
// same value, and encoding is canonical (a second round trip gives the same bytes).
func fuzzRoundTrip[T any](t *testing.T, b []byte, what string, decode func([]byte) (T, error), encode func(T) ([]byte, error)) {
	t.Helper()
	v, err := decode(b)
	if err != nil {
		var de *DecodeError
		if !errors.As(err, &de) {
			t.Fatalf("%T is not a *DecodeError", err)
		}
		return
	}
	again, err := encode(v)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := decode(again)
	if err != nil || !reflect.DeepEqual(v, v2) {
		t.Fatalf("round trip changed the %s: %v\n%#v\n%#v", what, err, v, v2)
	}
	if third, _ := encode(v2); !bytes.Equal(third, again) {
		t.Fatalf("encoding is not canonical")
	}
}
