package codecs

import (
	"reflect"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// DecodeAggregateState is DecodeAggregate without the history, for every fixture, whether the
// history block carries its size (our writer) or not (goavro's, i.e. any other writer).
func TestDecodeAggregateState(t *testing.T) {
	e := currentSchema[kindAggregate]
	codec, err := e.goavroCodec()
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range aggregateFixtures() {
		ours, err := EncodeAggregate(a)
		if err != nil {
			t.Fatal(err)
		}
		native, _, err := codec.NativeFromBinary(ours[headerLen:])
		if err != nil {
			t.Fatal(err)
		}
		unsized, err := codec.BinaryFromNative(nil, native)
		if err != nil {
			t.Fatal(err)
		}
		want := a
		want.Events = nil
		for form, b := range map[string][]byte{"sized": ours, "unsized": append(e.header[:], unsized...)} {
			got, err := DecodeAggregateState(b)
			if err != nil {
				t.Fatalf("%s/%s: %v", name, form, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s/%s: state decode\n got %#v\nwant %#v", name, form, got, want)
			}
			full, err := DecodeAggregate(b)
			if err != nil || !reflect.DeepEqual(full, a) {
				t.Errorf("%s/%s: full decode %v\n got %#v\nwant %#v", name, form, err, full, a)
			}
		}
	}
}

// A history block whose byte size disagrees with its events is malformed for both readers,
// and a size past the end is refused before anything is skipped.
func TestAggregateSizedBlockChecked(t *testing.T) {
	a := aggregateWithEvents(3)
	b, err := EncodeAggregate(a)
	if err != nil {
		t.Fatal(err)
	}
	var state []byte
	state, _ = appendOpportunity(state[:0], &a.State)
	at := headerLen + len(state) // the block header: count -3, then the size
	if b[at] != 0x05 {           // zig-zag -3
		t.Fatalf("expected a negative count at %d, found %#x", at, b[at])
	}
	size, n := readVarint(b[at+1:])
	for _, bad := range []int64{size - 1, size + 1, 1 << 40} {
		forged := append([]byte(nil), b[:at+1]...)
		forged = appendLong(forged, bad)
		forged = append(forged, b[at+1+n:]...)
		if _, err := DecodeAggregate(forged); err == nil {
			t.Errorf("full decode accepted a block size of %d (real %d)", bad, size)
		}
		if got, err := DecodeAggregateState(forged); err == nil && reflect.DeepEqual(got.State, a.State) && bad != size {
			// Skipping by a wrong size lands mid-record: what follows must not parse as
			// the rest of the aggregate.
			if got.Position == a.Position && reflect.DeepEqual(got.Rejections, a.Rejections) {
				t.Errorf("state decode read a forged size of %d as the original", bad)
			}
		}
	}
}

func readVarint(b []byte) (int64, int) {
	d := decoder{buf: b}
	v := d.long()
	return v, d.pos
}

func FuzzDecodeAggregateState(f *testing.F) {
	for _, a := range aggregateFixtures() {
		b, _ := EncodeAggregate(a)
		f.Add(b)
	}
	f.Add([]byte{0xc3, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		full, ferr := DecodeAggregate(b)
		st, serr := DecodeAggregateState(b)
		if ferr == nil {
			// Whatever decodes whole also decodes as state, to the same state.
			if serr != nil {
				t.Fatalf("full decode ok, state decode: %v", serr)
			}
			full.Events = nil
			if !reflect.DeepEqual(full, st) {
				t.Fatalf("state decode differs:\n%#v\n%#v", full, st)
			}
		}
		_ = domain.Aggregate{}
	})
}

func BenchmarkDecodeAggregateState(b *testing.B) {
	data, _ := EncodeAggregate(aggregateWithEvents(10))
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := DecodeAggregateState(data); err != nil {
			b.Fatal(err)
		}
	}
}
