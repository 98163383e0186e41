package codecs

import (
	"reflect"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// DecodeAggregateState is DecodeAggregate without the history, for every fixture, whether the
// history block carries its size (our writer) or not (goavro's, i.e. any other writer).
func TestDecodeAggregateState(t *testing.T) {
	e := currentSchema[kindAggregate]
	codec, err := e.Goavro()
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
		for form, b := range map[string][]byte{"sized": ours, "unsized": append(e.Header[:], unsized...)} {
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
		forged = avro.AppendLong(forged, bad)
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
	d := avro.NewDecoder(b)
	v := d.Long()
	return v, d.Pos()
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
	b.SetBytes(int64(len(data)))
	benchLoop(b, data, DecodeAggregateState)
}

// A history carried encoded and appended to gives byte for byte what encoding the whole
// aggregate gives, also after dropping its oldest events; an unsized history (another writer)
// is decoded instead.
func TestAggregateHistoryAppend(t *testing.T) {
	e := currentSchema[kindAggregate]
	codec, err := e.Goavro()
	if err != nil {
		t.Fatal(err)
	}
	for name, a := range map[string]domain.Aggregate{"ten": aggregateWithEvents(10), "one": aggregateWithEvents(1), "none": aggregateWithEvents(0)} {
		b, err := EncodeAggregate(a)
		if err != nil {
			t.Fatal(err)
		}
		got, h, err := DecodeAggregateHistory(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Events != nil || h.Len() != len(a.Events) {
			t.Fatalf("%s: %d events decoded, history of %d, want 0 and %d", name, len(got.Events), h.Len(), len(a.Events))
		}
		evs, err := h.Events()
		if err != nil || len(evs) != len(a.Events) || (len(evs) > 0 && !reflect.DeepEqual(evs, a.Events)) {
			t.Fatalf("%s: history decodes to %d events (%v)", name, len(evs), err)
		}
		more := aggregateWithEvents(12).Events[10:] // versions 11 and 12
		got.Events = more
		appended, err := EncodeAggregateHistory(got, h)
		if err != nil {
			t.Fatal(err)
		}
		whole := a
		whole.Events = append(slicesClone(a.Events), more...)
		want, _ := EncodeAggregate(whole)
		if !reflect.DeepEqual(appended, want) {
			t.Fatalf("%s: appended encoding differs from the whole aggregate's", name)
		}
		for _, k := range []int{1, 3, len(a.Events), len(a.Events) + 5} {
			hk := h
			if err := hk.DropOldest(k); err != nil {
				t.Fatal(err)
			}
			trimmed := whole
			trimmed.Events = whole.Events[min(k, len(a.Events)):]
			got.Events = more
			b1, _ := EncodeAggregateHistory(got, hk)
			b2, _ := EncodeAggregate(trimmed)
			if !reflect.DeepEqual(b1, b2) {
				t.Fatalf("%s: drop %d: encodings differ", name, k)
			}
		}
		// Another writer's unsized block is decoded, not kept.
		native, _, err := codec.NativeFromBinary(b[headerLen:])
		if err != nil {
			t.Fatal(err)
		}
		unsized, _ := codec.BinaryFromNative(nil, native)
		g2, h2, err := DecodeAggregateHistory(append(e.Header[:], unsized...))
		if err != nil || h2.Len() != 0 || !reflect.DeepEqual(g2, a) {
			t.Fatalf("%s: unsized: %v, history %d, %+v", name, err, h2.Len(), g2)
		}
	}
}

func slicesClone(evs []domain.Event) []domain.Event { return append([]domain.Event(nil), evs...) }

func BenchmarkAppendAggregateHistory(b *testing.B) {
	data, _ := EncodeAggregate(aggregateWithEvents(10))
	next := aggregateWithEvents(11).Events[10:]
	b.ReportAllocs()
	for b.Loop() {
		a, h, err := DecodeAggregateHistory(data)
		if err != nil {
			b.Fatal(err)
		}
		a.Events = next
		if _, err := EncodeAggregateHistory(a, h); err != nil {
			b.Fatal(err)
		}
	}
}
