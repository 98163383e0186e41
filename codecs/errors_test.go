package codecs

import (
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

func wantDecodeError(t *testing.T, what string, err error, sentinel error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: no error", what)
		return
	}
	var de *DecodeError
	if !errors.As(err, &de) {
		t.Errorf("%s: %T is not a *DecodeError: %v", what, err, err)
	}
	if sentinel != nil && !errors.Is(err, sentinel) {
		t.Errorf("%s: %v does not wrap %v", what, err, sentinel)
	}
}

func TestDecodeHeaderErrors(t *testing.T) {
	valid, _ := EncodeCommand(commandFixtures()["create/full"])
	unknown := append([]byte{0xC3, 0x01}, binary.LittleEndian.AppendUint64(nil, 0x0123456789abcdef)...)
	unknown = append(unknown, valid[headerLen:]...)
	event, _ := EncodeEvent(fullEvent(1))
	cases := []struct {
		name     string
		in       []byte
		sentinel error
	}{
		{"empty", nil, ErrTruncated},
		{"one magic byte", []byte{0xC3}, ErrTruncated},
		{"header cut", valid[:9], ErrTruncated},
		{"bad first byte", append([]byte{0xC4}, valid[1:]...), ErrBadMagic},
		{"bad second byte", append([]byte{0xC3, 0x00}, valid[2:]...), ErrBadMagic},
		{"json", []byte(`{"type":"CreateOpportunity"}`), ErrBadMagic},
		{"single garbage byte", []byte{0x00}, ErrBadMagic},
		{"unknown fingerprint", unknown, ErrUnknownSchema},
		{"an event", event, ErrSchemaMismatch},
		{"header only", valid[:headerLen], ErrTruncated},
		{"garbage after header", append(append([]byte{}, valid[:headerLen]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), ErrMalformed},
		{"trailing bytes", append(append([]byte{}, valid...), 0), ErrMalformed},
	}
	for _, c := range cases {
		_, err := DecodeCommand(c.in)
		wantDecodeError(t, c.name, err, c.sentinel)
	}
	var de *DecodeError
	_, err := DecodeCommand(event)
	if errors.As(err, &de); de == nil || de.Schema != "schemas/event.avsc" || !strings.Contains(err.Error(), "schemas/event.avsc") {
		t.Errorf("mismatch error does not name the writer schema: %v", err)
	}
}

// Every prefix of every valid record, and every single-byte corruption, must give an error
// or a value, never a panic; prefixes must always be errors.
func TestTruncationAndCorruptionNeverPanic(t *testing.T) {
	for _, kc := range kindCases {
		for name, v := range kc.fixtures() {
			b, err := kc.encode(v)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < len(b); i++ {
				if _, err := kc.decode(b[:i]); err == nil {
					t.Errorf("%s/%s: prefix of %d/%d bytes decoded", kc.kind, name, i, len(b))
				}
			}
			for i := headerLen; i < len(b); i++ {
				for _, x := range []byte{0x00, 0x01, 0x7f, 0x80, 0xff} {
					c := append([]byte{}, b...)
					c[i] ^= x
					_, _ = kc.decode(c) // must not panic
				}
			}
		}
	}
}

func TestMalformedBodies(t *testing.T) {
	body := func(f func(b []byte) []byte) []byte {
		return f(append([]byte{}, currentSchema[kindCommand].Header[:]...))
	}
	prefix := func(b []byte) []byte { // commandId, opportunityId, issuedAt, actor, expectedVersion
		b = avro.AppendStr(b, "c")
		b = avro.AppendStr(b, "o")
		b = avro.AppendLong(b, 0)
		b = avro.AppendStr(b, "a")
		return append(b, avro.BranchNull)
	}
	cases := map[string][]byte{
		"enum index out of range": body(func(b []byte) []byte { return avro.AppendLong(avro.AppendLong(prefix(b), 6), 0) }),
		"negative enum index":     body(func(b []byte) []byte { return avro.AppendLong(avro.AppendLong(prefix(b), -1), 0) }),
		"type and body disagree":  body(func(b []byte) []byte { return avro.AppendStr(avro.AppendLong(avro.AppendLong(prefix(b), 2), 5), "s") }),
		"union index 2": body(func(b []byte) []byte {
			return avro.AppendLong(avro.AppendStr(avro.AppendLong(avro.AppendStr(avro.AppendStr(b, "c"), "o"), 0), "a"), 2)
		}),
		"negative string length":  body(func(b []byte) []byte { return avro.AppendLong(b, -5) }),
		"string longer than data": body(func(b []byte) []byte { return avro.AppendLong(b, 1<<40) }),
		"varint overflow": body(func(b []byte) []byte {
			return append(b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01)
		}),
		"bad boolean": body(func(b []byte) []byte {
			b = avro.AppendLong(avro.AppendLong(prefix(b), 1), 1) // UpdateOpportunity
			for i := 0; i < 8; i++ {
				b = append(b, avro.BranchNull)
			}
			return append(b, 7)
		}),
	}
	for name, b := range cases {
		_, err := DecodeCommand(b)
		wantDecodeError(t, name, err, ErrMalformed)
	}

	// A forged array count must be refused before anything is allocated for it.
	b, err := appendOpportunity(append([]byte{}, currentSchema[kindAggregate].Header[:]...), &domain.Opportunity{})
	if err != nil {
		t.Fatal(err)
	}
	forged := avro.AppendLong(b, math.MaxInt64/2) // events block count
	n := allocatedBy(func() { _, err = DecodeAggregate(forged) })
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("forged count: %v", err)
	}
	if n > 64<<10 {
		t.Errorf("forged count allocated %d bytes", n)
	}
	// The same on the generic (goavro) path, with a count goavro alone would try to
	// preallocate (2^30 items, 16 GiB): the validating pre-pass refuses it first.
	forged, _ = appendOpportunity(nil, &domain.Opportunity{})
	wantGenericRefusesForgedCount(t, kindAggregate, avro.AppendLong(forged, 1<<30))

	// int fields beyond 32 bits.
	p := append([]byte{}, currentSchema[kindPipeline].Header[:]...)
	p = avro.AppendStr(avro.AppendStr(p, "p"), "n")
	p = avro.AppendLong(p, 1)
	p = avro.AppendStr(avro.AppendStr(p, "s"), "s")
	p = avro.AppendLong(p, math.MaxInt32+1)
	_, err = DecodePipeline(p)
	wantDecodeError(t, "int overflow", err, ErrMalformed)
}

func TestEncodeErrors(t *testing.T) {
	good := commandFixtures()["create/full"]
	unknown := good
	unknown.Type = "Frobnicate"
	missing := good
	missing.Create = nil
	extra := good
	extra.Reopen = &domain.Reopen{}
	wrong := good
	wrong.Type = domain.CmdReopen
	for name, c := range map[string]domain.Command{"unknown type": unknown, "missing body": missing, "extra body": extra, "body of another type": wrong, "zero": {}} {
		if _, err := EncodeCommand(c); !errors.Is(err, ErrInvalidValue) {
			t.Errorf("%s: err = %v, want ErrInvalidValue", name, err)
		}
	}
	if _, err := EncodeEvent(domain.Event{Type: "Nope"}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("event with unknown type: %v", err)
	}
	if _, err := EncodePipeline(domain.Pipeline{Stages: []domain.Stage{{Probability: math.MaxInt32 + 1}}}); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("stage probability beyond int32: %v", err)
	}
	o := aggregateWithEvents(1)
	o.State.CloseDatePushCount = math.MinInt32 - 1
	if _, err := EncodeAggregate(o); !errors.Is(err, ErrInvalidValue) {
		t.Errorf("push count beyond int32: %v", err)
	}
	// A failed encode leaves the pool usable.
	if _, err := EncodeCommand(good); err != nil {
		t.Error(err)
	}
}
