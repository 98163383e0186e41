package codecs

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// TestFastPathMatchesGoavro proves the hand-written readers and writers against goavro driven
// by the .avsc files: every fixture's body must decode with goavro, re-encode with goavro to
// the very same bytes, and convert through the generic path to the same domain value.
func TestFastPathMatchesGoavro(t *testing.T) {
	for _, kc := range kindCases {
		e := currentSchema[kc.kind]
		codec, err := e.Goavro()
		if err != nil {
			t.Fatal(err)
		}
		fx := kc.fixtures()
		for _, name := range sortedKeys(fx) {
			want := fx[name]
			b, err := kc.encode(want)
			if err != nil {
				t.Fatal(err)
			}
			body := b[headerLen:]
			native, rest, err := codec.NativeFromBinary(body)
			if err != nil {
				t.Fatalf("%s/%s: goavro cannot read our bytes: %v", kc.kind, name, err)
			}
			if len(rest) != 0 {
				t.Errorf("%s/%s: goavro left %d bytes", kc.kind, name, len(rest))
			}
			again, err := codec.BinaryFromNative(nil, native)
			if err != nil {
				t.Fatalf("%s/%s: goavro re-encode: %v", kc.kind, name, err)
			}
			if (kc.hasMaps || kc.sizedBlocks) && !bytes.Equal(again, body) {
				// goavro writes map entries in Go's map order, and arrays with positive
				// counts only: the same bytes up to the order of entries (or block headers),
				// which our fast reader must read back to the value.
				fromGoavro, err := kc.decode(append(e.Header[:], again...))
				sameLen := len(again) == len(body) || kc.sizedBlocks
				if err != nil || !sameLen || !reflect.DeepEqual(fromGoavro, want) {
					t.Errorf("%s/%s: goavro writes\n% x\n(read back as %#v, %v)\nwe write\n% x", kc.kind, name, again, fromGoavro, err, body)
				}
			} else if !bytes.Equal(again, body) {
				t.Errorf("%s/%s: goavro writes\n% x\nwe write\n% x", kc.kind, name, again, body)
			}
			// The generic path (used for older writers) on the current schema.
			var c avro.Native
			got := kc.generic(&c, native.(map[string]any))
			if c.Err() != nil {
				t.Fatalf("%s/%s: generic: %v", kc.kind, name, c.Err())
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s/%s: generic path\n got %#v\nwant %#v", kc.kind, name, got, want)
			}
			// And the validating pre-pass accepts it.
			if _, err := e.ReadNative(body); err != nil {
				t.Errorf("%s/%s: ReadNative: %v", kc.kind, name, err)
			}
		}
	}
}

// Other writers may split arrays into several blocks and use negative block counts with a
// byte size; the fast readers must accept both.
func TestArrayBlocksFromOtherWriters(t *testing.T) {
	want := pipelineFixtures()["full"]
	stage := func(b []byte, st domain.Stage, negativeBlocks bool) []byte {
		b = avro.AppendStr(b, st.ID)
		b = avro.AppendStr(b, st.Name)
		b = avro.AppendInt(b, st.Probability)
		b = avro.AppendStr(b, string(st.ForecastCategory))
		b = avro.AppendStr(b, string(st.Status))
		if negativeBlocks && len(st.RequiredFields) > 0 {
			var items []byte
			for _, f := range st.RequiredFields {
				items = avro.AppendStr(items, f)
			}
			b = avro.AppendLong(b, -int64(len(st.RequiredFields)))
			b = avro.AppendLong(b, int64(len(items)))
			b = avro.AppendArrayEnd(append(b, items...))
		} else {
			b = avro.AppendStrings(b, st.RequiredFields)
		}
		return avro.AppendInt(b, st.StaleAfterDays)
	}
	b := append([]byte{}, currentSchema[kindPipeline].Header[:]...)
	b = avro.AppendStr(b, want.ID)
	b = avro.AppendStr(b, want.Name)
	// Block 1: the first stage, negative count and byte size. Block 2: the other two.
	first := stage(nil, want.Stages[0], true)
	b = avro.AppendLong(b, -1)
	b = avro.AppendLong(b, int64(len(first)))
	b = append(b, first...)
	b = avro.AppendLong(b, 2)
	for _, st := range want.Stages[1:] {
		b = stage(b, st, true)
	}
	b = avro.AppendArrayEnd(b)
	got, err := DecodePipeline(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	// The generic path reads it too.
	if _, err := currentSchema[kindPipeline].ReadNative(b[headerLen:]); err != nil {
		t.Errorf("generic path: %v", err)
	}
}

// TestGenericPathEndToEnd sends every kind's records through the public Decode functions
// with the current schema treated as an older version, i.e. through goavro and the
// converters, as a future schema change will.
func TestGenericPathEndToEnd(t *testing.T) {
	for _, kc := range kindCases {
		e := currentSchema[kc.kind]
		e.current = false // not parallel: no test in this package runs in parallel
		func() {
			defer func() { e.current = true }()
			fx := kc.fixtures()
			for _, name := range sortedKeys(fx) {
				b, err := kc.encode(fx[name])
				if err != nil {
					t.Fatal(err)
				}
				got, err := kc.decode(b)
				if err != nil {
					t.Fatalf("%s/%s: %v", kc.kind, name, err)
				}
				if !reflect.DeepEqual(got, fx[name]) {
					t.Errorf("%s/%s: generic path\n got %#v\nwant %#v", kc.kind, name, got, fx[name])
				}
				if _, err := kc.decode(append(b, 0)); !errors.Is(err, ErrMalformed) {
					t.Errorf("%s/%s: trailing byte on the generic path: %v", kc.kind, name, err)
				}
				if _, err := kc.decode(b[:len(b)-1]); err == nil {
					t.Errorf("%s/%s: truncated record decoded on the generic path", kc.kind, name)
				}
			}
		}()
	}
}

// Native values of the wrong Go type (a writer schema that changed a type incompatibly)
// are errors, never panics.
func TestConverterTypeErrors(t *testing.T) {
	bad := map[string]any{
		"commandId": 1, "issuedAt": "yesterday", "expectedVersion": "x", "type": "Reopen",
		"body":    map[string]any{"crm.pipeline.Reopen": map[string]any{"stageId": true}},
		"version": "v", "closeDate": 1.5, "stageHistory": "nope", "account": []any{},
		"probability": int64(1), "clearProbability": "no", "changes": []any{"x"},
		"state": 7, "events": map[string]any{}, "fields": []any{1}, "recentCommandIds": []any{1},
		"name": 5, "stages": 3, "rate": 2.5, "bucket": 1, "values": []any{}, "seen": map[string]any{"o": "1"},
	}
	for _, kc := range kindCases {
		var c avro.Native
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: converter panicked: %v", kc.kind, r)
				}
			}()
			kc.generic(&c, bad)
		}()
		if c.Err() == nil {
			t.Errorf("%s: no error for mistyped natives", kc.kind)
		}
	}
	var c avro.Native
	commandFromNative(&c, map[string]any{"type": "CreateOpportunity", "body": map[string]any{"crm.pipeline.Reopen": map[string]any{}}})
	if !errors.Is(c.Err(), ErrMalformed) {
		t.Errorf("type/body mismatch on the generic path: %v", c.Err())
	}
}

// The rings of the aggregate (rejections, won) hold the very records of command_rejected.avsc
// and closed_won.avsc: goavro, reading the aggregate with aggregate.avsc and re-writing each
// ring item with the item's own schema file, must produce the bytes EncodeRejected and
// EncodeClosedWon write. (TestNestedCopiesMatchTheirFiles checks the schemas; this checks
// the writers.)
func TestAggregateRingsMatchStandaloneRecords(t *testing.T) {
	a := fullAggregate()
	b, err := EncodeAggregate(a)
	if err != nil {
		t.Fatal(err)
	}
	aggCodec, err := currentSchema[kindAggregate].Goavro()
	if err != nil {
		t.Fatal(err)
	}
	native, _, err := aggCodec.NativeFromBinary(b[headerLen:])
	if err != nil {
		t.Fatal(err)
	}
	m := native.(map[string]any)
	for _, ring := range []struct {
		field string
		kind  recordKind
		n     int
		enc   func(i int) ([]byte, error)
	}{
		{"rejections", kindRejected, len(a.Rejections), func(i int) ([]byte, error) { return EncodeRejected(a.Rejections[i]) }},
		{"won", kindClosedWon, len(a.Won), func(i int) ([]byte, error) { return EncodeClosedWon(a.Won[i]) }},
	} {
		items, ok := m[ring.field].([]any)
		if !ok || len(items) != ring.n || ring.n == 0 {
			t.Fatalf("%s: goavro read %#v, want %d items", ring.field, m[ring.field], ring.n)
		}
		codec, err := currentSchema[ring.kind].Goavro()
		if err != nil {
			t.Fatal(err)
		}
		for i, it := range items {
			got, err := codec.BinaryFromNative(nil, it)
			if err != nil {
				t.Fatalf("%s[%d]: %s cannot write the nested record: %v", ring.field, i, currentSchema[ring.kind].Path, err)
			}
			want, err := ring.enc(i)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want[headerLen:]) {
				t.Errorf("%s[%d]: nested record\n% x\nstandalone record\n% x", ring.field, i, got, want[headerLen:])
			}
		}
	}
}

// Other writers may split the rings into several blocks, with negative counts and byte sizes;
// both decoding paths must accept that.
func TestRingBlocksFromOtherWriters(t *testing.T) {
	want := fullAggregate()
	bare := want
	bare.Rejections, bare.Won, bare.RecentDeltas, bare.HistoryOnTopic, bare.Fingerprints = nil, nil, nil, false, nil
	b, err := EncodeAggregate(bare)
	if err != nil {
		t.Fatal(err)
	}
	b = b[:len(b)-5] // the three empty rings (one end-of-array byte each), the flag and the empty fingerprints
	// rejections: a negative-count block of one item with its byte size, then a block of two.
	first := appendRejected(nil, &want.Rejections[0])
	b = avro.AppendLong(b, -1)
	b = avro.AppendLong(b, int64(len(first)))
	b = append(b, first...)
	b = avro.AppendLong(b, int64(len(want.Rejections)-1))
	for i := 1; i < len(want.Rejections); i++ {
		b = appendRejected(b, &want.Rejections[i])
	}
	b = avro.AppendArrayEnd(b)
	// won: one item per block, every block with a negative count.
	for i := range want.Won {
		item := appendClosedWon(nil, &want.Won[i])
		b = avro.AppendLong(b, -1)
		b = avro.AppendLong(b, int64(len(item)))
		b = append(b, item...)
	}
	b = avro.AppendArrayEnd(b)
	// recentDeltas: one negative-count block with its byte size.
	var deltas []byte
	for _, sd := range want.RecentDeltas {
		deltas = avro.AppendLong(deltas, sd.Position)
		deltas = avro.AppendStr(deltas, string(sd.Record))
	}
	b = avro.AppendLong(b, -int64(len(want.RecentDeltas)))
	b = avro.AppendLong(b, int64(len(deltas)))
	b = append(b, deltas...)
	b = avro.AppendArrayEnd(b)
	b = avro.AppendBool(b, want.HistoryOnTopic)
	// fingerprints: a block of one, then a negative-count block of the rest with its size.
	b = avro.AppendLong(b, 1)
	b = avro.AppendStr(b, want.Fingerprints[0].CommandID)
	b = avro.AppendLong(b, int64(want.Fingerprints[0].Fingerprint))
	b = avro.AppendLong(b, want.Fingerprints[0].Position)
	var fps []byte
	for _, f := range want.Fingerprints[1:] {
		fps = avro.AppendStr(fps, f.CommandID)
		fps = avro.AppendLong(fps, int64(f.Fingerprint))
		fps = avro.AppendLong(fps, f.Position)
	}
	b = avro.AppendLong(b, -int64(len(want.Fingerprints)-1))
	b = avro.AppendLong(b, int64(len(fps)))
	b = append(b, fps...)
	b = avro.AppendArrayEnd(b)
	got, err := DecodeAggregate(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("fast path\n got %#v\nwant %#v", got, want)
	}
	got, err = decodeGeneric(currentSchema[kindAggregate], b[headerLen:], aggregateFromNative)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("generic path\n got %#v\nwant %#v", got, want)
	}
}

// Mistyped ring items are errors on the generic path, never panics.
func TestRingConverterTypeErrors(t *testing.T) {
	for name, m := range map[string]map[string]any{
		"rejections not an array": {"rejections": 1},
		"rejection not a record":  {"rejections": []any{1}},
		"rejection position":      {"rejections": []any{map[string]any{"position": "p"}}},
		"won not an array":        {"won": "x"},
		"won not a record":        {"won": []any{true}},
		"won version":             {"won": []any{map[string]any{"version": "v"}}},
	} {
		var c avro.Native
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("%s: converter panicked: %v", name, r)
				}
			}()
			aggregateFromNative(&c, m)
		}()
		if !errors.Is(c.Err(), ErrMalformed) {
			t.Errorf("%s: %v", name, c.Err())
		}
	}
}
