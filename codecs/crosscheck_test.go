package codecs

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// TestFastPathMatchesGoavro proves the hand-written readers and writers against goavro driven
// by the .avsc files: every fixture's body must decode with goavro, re-encode with goavro to
// the very same bytes, and convert through the generic path to the same domain value.
func TestFastPathMatchesGoavro(t *testing.T) {
	for _, kc := range kindCases {
		e := currentSchema[kc.kind]
		codec, err := e.goavroCodec()
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
			if !bytes.Equal(again, body) {
				t.Errorf("%s/%s: goavro writes\n% x\nwe write\n% x", kc.kind, name, again, body)
			}
			// The generic path (used for older writers) on the current schema.
			var c conv
			got := kc.generic(&c, native.(map[string]any))
			if c.err != nil {
				t.Fatalf("%s/%s: generic: %v", kc.kind, name, c.err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s/%s: generic path\n got %#v\nwant %#v", kc.kind, name, got, want)
			}
			// And the validating pre-pass accepts it.
			if _, err := readGeneric(e, body); err != nil {
				t.Errorf("%s/%s: readGeneric: %v", kc.kind, name, err)
			}
		}
	}
}

// Other writers may split arrays into several blocks and use negative block counts with a
// byte size; the fast readers must accept both.
func TestArrayBlocksFromOtherWriters(t *testing.T) {
	want := pipelineFixtures()["full"]
	stage := func(b []byte, st domain.Stage, negativeBlocks bool) []byte {
		b = appendStr(b, st.ID)
		b = appendStr(b, st.Name)
		b = appendInt(b, st.Probability)
		b = appendStr(b, string(st.ForecastCategory))
		b = appendStr(b, string(st.Status))
		if negativeBlocks && len(st.RequiredFields) > 0 {
			var items []byte
			for _, f := range st.RequiredFields {
				items = appendStr(items, f)
			}
			b = appendLong(b, -int64(len(st.RequiredFields)))
			b = appendLong(b, int64(len(items)))
			b = appendArrayEnd(append(b, items...))
		} else {
			b = appendStrings(b, st.RequiredFields)
		}
		return appendInt(b, st.StaleAfterDays)
	}
	b := append([]byte{}, currentSchema[kindPipeline].header[:]...)
	b = appendStr(b, want.ID)
	b = appendStr(b, want.Name)
	// Block 1: the first stage, negative count and byte size. Block 2: the other two.
	first := stage(nil, want.Stages[0], true)
	b = appendLong(b, -1)
	b = appendLong(b, int64(len(first)))
	b = append(b, first...)
	b = appendLong(b, 2)
	for _, st := range want.Stages[1:] {
		b = stage(b, st, true)
	}
	b = appendArrayEnd(b)
	got, err := DecodePipeline(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %#v\nwant %#v", got, want)
	}
	// The generic path reads it too.
	if _, err := readGeneric(currentSchema[kindPipeline], b[headerLen:]); err != nil {
		t.Errorf("generic path: %v", err)
	}
}
