package codecs

import (
	"encoding/binary"
	"fmt"

	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// record is the codec of one record type T, the one piece every record's Encode, Decode and
// goka codec go through. A family file (commands.go, events.go, aggregate.go,
// configuration.go, analytics.go) declares one per record, naming:
//
//   - write and read: the record's hand-written writer and fast reader of the current schema,
//     or nil for a record written and read with goavro (toNative then gives goavro the value
//     to write);
//   - fromNative: the conversion from goavro's native map, which reads records of older
//     writers (and, without read, every record).
//
// write and read are closures around the hand-written functions, taking and returning T by
// value, and read runs its reader through readBody: Go cannot see through a function value,
// so a pointer handed to one escapes to the heap, and passing the value or the decoder that
// way would cost one allocation per record on the hottest paths (BenchmarkEncodeCommand,
// BenchmarkDecodeDelta, ...). With the value passed by value and the reader a static argument
// of an inlined readBody, both stay on the closure's stack.
//
// record holds no state beyond these, so one value serves every goroutine.
type record[T any] struct {
	kind       recordKind
	codec      string // the goka codec's type name, for its errors
	write      func(b []byte, v T) ([]byte, error)
	read       func(body []byte) (v T, rest int, err error)
	toNative   func(v T) (map[string]any, error)
	fromNative func(n *avro.Native, m map[string]any) T
}

// readBody runs read, a hand-written reader, over body: the value, the number of bytes left
// unread and the first error. It is small enough to be inlined into the read closure that
// calls it with a static reader, which keeps the value and the decoder off the heap (see
// record).
func readBody[T any](body []byte, read func(d *avro.Decoder, v *T)) (v T, rest int, err error) {
	d := avro.NewDecoder(body)
	read(&d, &v)
	return v, d.Rest(), d.Err()
}

// encode writes *v as a single-object record with the current schema.
func (r *record[T]) encode(v *T) ([]byte, error) {
	if r.write == nil {
		return r.encodeWith(v, r.appendNative)
	}
	return r.encodeWith(v, r.write)
}

// encodeWith is encode with write as the body's writer. v is only read (its value is what
// write gets), so it does not escape.
func (r *record[T]) encodeWith(v *T, write func(b []byte, v T) ([]byte, error)) ([]byte, error) {
	b, bp := avro.StartRecord(currentSchema[r.kind].Header[:])
	b, err := write(b, *v)
	out := avro.FinishRecord(bp, b, err != nil)
	if err != nil {
		return nil, fmt.Errorf("codecs: encode %s: %w", r.kind, err)
	}
	return out, nil
}

// appendNative writes v through goavro.
func (r *record[T]) appendNative(b []byte, v T) ([]byte, error) {
	m, err := r.toNative(v)
	if err != nil {
		return b, err
	}
	return currentSchema[r.kind].AppendNative(b, m)
}

// decode reads a record written with any known version of T's schema.
func (r *record[T]) decode(b []byte) (T, error) {
	var v T
	err := r.decodeInto(b, &v, r.read)
	return v, err
}

// decodeInto is decode into *v, with read as the fast reader of the current schema (nil:
// goavro reads it). Records of older writers are read with goavro and fromNative. A record
// the fast reader fails on is left as far as it was read, with the error. v is only written
// through, so it does not escape.
func (r *record[T]) decodeInto(b []byte, v *T, read func(body []byte) (T, int, error)) error {
	e, body, err := openRecord(b, r.kind)
	if err != nil {
		return err
	}
	if !e.current || read == nil {
		*v, err = decodeGeneric(e, body, r.fromNative)
		return err
	}
	var rest int
	*v, rest, err = read(body)
	if err == nil && rest != 0 {
		err = fmt.Errorf("%w: %d bytes after the record", ErrMalformed, rest)
	}
	return e.decodeError(err)
}

// The goka codec adapters. goka calls a topic's or table's codec from many goroutines; these
// are stateless (all package state is read-only after init), so one value may serve them all.
//
// Encode accepts the domain value or a non-nil pointer to it. Decode returns a pointer
// (*domain.Aggregate, ...), and (nil, nil) for an empty record: that is a Kafka tombstone
// (goka's default nil handling decodes nil values on input streams), and nil is also what goka
// hands callbacks for a missing table key.
//
// Note for input streams: goka stops the whole processor when an input codec's Decode fails.
// For a topic that can carry undecodable records (the commands topic is written by other
// services), subscribe with goka's codec.Bytes and call DecodeCommand in the callback, so a
// bad record can go to the DLQ instead.

// gokaEncode is the Encode of T's goka codec.
func (r *record[T]) gokaEncode(value any) ([]byte, error) {
	switch v := value.(type) {
	case T:
		return r.encode(&v)
	case *T:
		if v != nil {
			return r.encode(v)
		}
	}
	return nil, fmt.Errorf("codecs: %s.Encode: %w: got %T", r.codec, ErrInvalidValue, value)
}

// gokaDecode is the Decode of T's goka codec.
func (r *record[T]) gokaDecode(data []byte) (any, error) {
	if len(data) == 0 {
		return nil, nil
	}
	v := new(T)
	if err := r.decodeInto(data, v, r.read); err != nil {
		return nil, err
	}
	return v, nil
}

// openRecord checks the single-object header and finds the writer schema.
func openRecord(b []byte, kind recordKind) (*schemaEntry, []byte, error) {
	if len(b) >= headerLen && b[0] == 0xC3 && b[1] == 0x01 {
		fp := binary.LittleEndian.Uint64(b[2:headerLen])
		e := currentSchema[kind]
		if fp != e.Fingerprint {
			var ok bool
			if e, ok = byFingerprint[fp]; !ok {
				return nil, nil, &DecodeError{Record: kind.String(), Fingerprint: fp,
					Err: fmt.Errorf("%w: %016x is none of the %d schemas this build knows", ErrUnknownSchema, fp, len(byFingerprint))}
			}
			if e.kind != kind {
				return nil, nil, &DecodeError{Record: kind.String(), Fingerprint: fp, Schema: e.Path,
					Err: fmt.Errorf("%w: the record is a %s", ErrSchemaMismatch, e.kind)}
			}
		}
		return e, b[headerLen:], nil
	}
	magic := [2]byte{0xC3, 0x01}
	for i := 0; i < len(b) && i < 2; i++ {
		if b[i] != magic[i] {
			return nil, nil, &DecodeError{Record: kind.String(),
				Err: fmt.Errorf("%w: first bytes % x, want c3 01", ErrBadMagic, b[:min(len(b), 2)])}
		}
	}
	return nil, nil, &DecodeError{Record: kind.String(),
		Err: fmt.Errorf("%w: %d bytes, a single-object header alone takes %d", ErrTruncated, len(b), headerLen)}
}

// decodeError is nil for a nil err, else err as the *DecodeError of a record of writer e.
func (e *schemaEntry) decodeError(err error) error {
	if err == nil {
		return nil
	}
	return &DecodeError{Record: e.kind.String(), Fingerprint: e.Fingerprint, Schema: e.Path, Err: err}
}

// decodeGeneric reads a record body of writer e through goavro (validating it first) and
// build, the record's conversion from goavro's native map.
func decodeGeneric[T any](e *schemaEntry, body []byte, build func(*avro.Native, map[string]any) T) (T, error) {
	var zero T
	m, err := e.ReadNative(body)
	if err == nil {
		var n avro.Native
		v := build(&n, m)
		if err = n.Err(); err == nil {
			return v, nil
		}
	}
	return zero, e.decodeError(err)
}

// nativeArray converts the array field name of goavro's map m record by record with item (a
// record's fromNative, or the conversion of a nested record): the one loop behind every list
// of the generic-map conversions. An absent or empty array is nil, as the fast readers leave
// it.
func nativeArray[T any](c *avro.Native, m map[string]any, name string, item func(c *avro.Native, r map[string]any) T) []T {
	items := c.Array(m, name)
	if len(items) == 0 {
		return nil
	}
	out := make([]T, len(items))
	for i, it := range items {
		out[i] = item(c, c.Record(name, it))
	}
	return out
}

// wellKnown holds the strings that recur in almost every record (statuses, categories, type
// names, currency codes, the default pipeline's ids, the field names of changes), so that
// decoding reuses one copy of each instead of allocating it for every record: the fast
// readers read such fields with Decoder.Symbol(wellKnown). Read-only after init.
var wellKnown = func() map[string]string {
	m := map[string]string{}
	add := func(s string) { m[s] = s }
	for _, s := range []string{
		string(domain.StatusOpen), string(domain.StatusWon), string(domain.StatusLost),
		string(domain.CategoryPipeline), string(domain.CategoryBestCase), string(domain.CategoryCommit),
		string(domain.CategoryClosed), string(domain.CategoryOmitted),
		"default", "qualification", "discovery", "proposal", "negotiation", "closed_won", "closed_lost",
		"id", "name", "accountId", "account", "ownerId", "pipelineId", "stageId", "stageName", "status",
		"amount", "currency", "probability", "forecastCategory", "closeDate", "nextStep", "leadId",
		"source", "closedAt", "lossReason", "competitor", "note", "lossNote", "reason", "version",
		"createdAt", "updatedAt", "stageEnteredAt", "expectedVersion",
	} {
		add(s)
	}
	for _, t := range commandTypes {
		add(string(t))
	}
	for _, t := range eventTypes {
		add(string(t))
	}
	// Every currency code the domain accepts (ISO 4217 codes are three letters A-Z).
	code := []byte("AAA")
	for a := byte('A'); a <= 'Z'; a++ {
		for b := byte('A'); b <= 'Z'; b++ {
			for c := byte('A'); c <= 'Z'; c++ {
				code[0], code[1], code[2] = a, b, c
				if _, ok := domain.CurrencyExponent(string(code)); ok {
					add(string(code))
				}
			}
		}
	}
	return m
}()

// readDate reads an Avro date (int, days since 1970-01-01).
func readDate(d *avro.Decoder) domain.Date { return domain.Date(d.Int()) }
