package codecs

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"sort"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func TestRoundTripEveryKind(t *testing.T) {
	for _, kc := range kindCases {
		fx := kc.fixtures()
		for _, name := range sortedKeys(fx) {
			want := fx[name]
			b, err := kc.encode(want)
			if err != nil {
				t.Fatalf("%s/%s: encode: %v", kc.kind, name, err)
			}
			got, err := kc.decode(b)
			if err != nil {
				t.Fatalf("%s/%s: decode: %v", kc.kind, name, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s/%s: round trip\n got %#v\nwant %#v", kc.kind, name, got, want)
			}
		}
	}
}

func TestHeader(t *testing.T) {
	files := SchemaFiles()
	for _, kc := range kindCases {
		e := currentSchema[kc.kind]
		want, err := Fingerprint(string(files[e.Path]))
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range kc.fixtures() {
			b, err := kc.encode(v)
			if err != nil {
				t.Fatal(err)
			}
			if b[0] != 0xC3 || b[1] != 0x01 {
				t.Errorf("%s/%s: magic % x", kc.kind, name, b[:2])
			}
			if got := binary.LittleEndian.Uint64(b[2:10]); got != want {
				t.Errorf("%s/%s: header fingerprint %016x, Fingerprint(%s) = %016x", kc.kind, name, got, e.Path, want)
			}
		}
	}
}

// Times are truncated to the microsecond and come back in UTC.
func TestTimestampPrecisionAndZone(t *testing.T) {
	loc := mustLoc(t, "America/New_York")
	r := domain.RejectedCommand{At: ts(1741944413, 0).Add(123456789).In(loc)}
	b, err := EncodeRejected(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeRejected(b)
	if err != nil {
		t.Fatal(err)
	}
	if want := r.At.Truncate(1000).UTC(); !got.At.Equal(want) || got.At.Location().String() != "UTC" || got.At.Nanosecond()%1000 != 0 {
		t.Errorf("At = %v, want %v in UTC", got.At, want)
	}
	// time.Time{} survives (year 1 fits the micros range).
	r = domain.RejectedCommand{}
	b, _ = EncodeRejected(r)
	got, _ = DecodeRejected(b)
	if !reflect.DeepEqual(got, r) {
		t.Errorf("zero time: got %#v", got.At)
	}
}

// Nil and empty slices both decode as nil; inconsistent Change flags normalise.
func TestNormalisations(t *testing.T) {
	p := domain.Pipeline{ID: "p", Stages: []domain.Stage{{ID: "s", RequiredFields: []string{}}}}
	b, _ := EncodePipeline(p)
	got, _ := DecodePipeline(b)
	if got.Stages[0].RequiredFields != nil {
		t.Errorf("empty slice decoded as %#v, want nil", got.Stages[0].RequiredFields)
	}
	ev := domain.Event{EventID: "o:1", Type: domain.EvtUpdated, Changes: []domain.Change{{Field: "f", Before: "x", BeforeSet: false}}}
	b, _ = EncodeEvent(ev)
	gotEv, _ := DecodeEvent(b)
	if c := gotEv.Changes[0]; c.Before != "" || c.BeforeSet {
		t.Errorf("unset Before with text decoded as %#v", c)
	}
}

func TestGokaCodecs(t *testing.T) {
	type gokaCodec interface {
		Encode(any) ([]byte, error)
		Decode([]byte) (any, error)
	}
	cases := []struct {
		codec gokaCodec
		value any // a domain value; the codec must also take a pointer to it
	}{
		{AggregateCodec{}, aggregateWithEvents(2)},
		{PipelineCodec{}, pipelineFixtures()["full"]},
		{AccountCodec{}, *fullAccount()},
		{FXRateCodec{}, fxRateFixtures()["full"]},
		{CommandCodec{}, commandFixtures()["create/full"]},
		{EventCodec{}, fullEvent(1)},
		{RejectedCodec{}, rejectedFixtures()["full"]},
		{ClosedWonCodec{}, closedWonFixtures()["full"]},
		{DeltaCodec{}, deltaFixtures()["full"]},
		{BucketCodec{}, bucketFixtures()["full"]},
	}
	for _, c := range cases {
		name := reflect.TypeOf(c.codec).Name()
		byValue, err := c.codec.Encode(c.value)
		if err != nil {
			t.Fatalf("%s: encode value: %v", name, err)
		}
		p := reflect.New(reflect.TypeOf(c.value))
		p.Elem().Set(reflect.ValueOf(c.value))
		byPtr, err := c.codec.Encode(p.Interface())
		if err != nil {
			t.Fatalf("%s: encode pointer: %v", name, err)
		}
		if !bytes.Equal(byValue, byPtr) {
			t.Errorf("%s: value and pointer encode differently", name)
		}
		got, err := c.codec.Decode(byValue)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if !reflect.DeepEqual(got, p.Interface()) {
			t.Errorf("%s: decode returned %T %+v, want pointer to the value", name, got, got)
		}
		// Wrong types and nil pointers are errors, not panics.
		if _, err := c.codec.Encode("nope"); err == nil {
			t.Errorf("%s: encoding a string succeeded", name)
		}
		if _, err := c.codec.Encode(reflect.Zero(p.Type()).Interface()); err == nil {
			t.Errorf("%s: encoding a nil pointer succeeded", name)
		}
		if _, err := c.codec.Encode(nil); err == nil {
			t.Errorf("%s: encoding nil succeeded", name)
		}
		// A tombstone decodes to nil.
		if v, err := c.codec.Decode(nil); v != nil || err != nil {
			t.Errorf("%s: Decode(nil) = %v, %v; want nil, nil", name, v, err)
		}
		if _, err := c.codec.Decode([]byte{1, 2, 3}); err == nil {
			t.Errorf("%s: decoding garbage succeeded", name)
		}
	}
}

func TestSchemaFiles(t *testing.T) {
	files := SchemaFiles()
	var paths []string
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var table []string
	for _, s := range schemaTable {
		table = append(table, s.path)
	}
	sort.Strings(table)
	if !reflect.DeepEqual(paths, table) {
		t.Errorf("embedded files %v, registry %v: every .avsc must be registered", paths, table)
	}
	// The result is a copy: changing it changes nothing for the next caller.
	files["schemas/command.avsc"][0] = 'X'
	if SchemaFiles()["schemas/command.avsc"][0] == 'X' {
		t.Error("SchemaFiles shares its buffers")
	}
	for _, e := range knownFingerprints() {
		if _, err := e.Goavro(); err != nil {
			t.Errorf("%s: %v", e.Path, err)
		}
	}
}

func TestConcurrentUse(t *testing.T) {
	a := aggregateWithEvents(5)
	want, _ := EncodeAggregate(a)
	done := make(chan struct{})
	for g := 0; g < 8; g++ {
		go func() {
			defer func() { done <- struct{}{} }()
			var c AggregateCodec
			for i := 0; i < 200; i++ {
				b, err := c.Encode(&a)
				if err != nil || !bytes.Equal(b, want) {
					t.Error("concurrent encode differs")
					return
				}
				v, err := c.Decode(b)
				if err != nil || !reflect.DeepEqual(*v.(*domain.Aggregate), a) {
					t.Error("concurrent decode differs")
					return
				}
			}
		}()
	}
	for g := 0; g < 8; g++ {
		<-done
	}
}
