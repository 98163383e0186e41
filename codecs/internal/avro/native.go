package avro

import (
	"fmt"
	"time"
)

// Native reads goavro's native values (what Schema.ReadNative returns) field by field. A
// field the writer did not have reads as its zero value, the reader default of every field of
// codecs' schemas; int is promoted to long where a long is read. The first type error sticks
// (Err): a native value of the wrong Go type, from a writer schema that changed a type
// incompatibly, is an error and never a panic. Its zero value is ready to use.
type Native struct{ err error }

// Err is the first type error met, or nil.
func (c *Native) Err() error { return c.err }

// Fail records err unless an error is already recorded.
func (c *Native) Fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

func (c *Native) mistyped(field, want string, got any) {
	c.Fail(fmt.Errorf("%w: field %s: want %s, got %T", ErrMalformed, field, want, got))
}

// Str reads a string field.
func (c *Native) Str(m map[string]any, k string) string {
	v, ok := m[k]
	if !ok {
		return "" // absent in the writer schema: reader default
	}
	s, ok := v.(string)
	if !ok {
		c.mistyped(k, "string", v)
	}
	return s
}

// StrOr reads a string field that older writers lack (it was added with a default), giving
// def when the writer's record has no such field.
func (c *Native) StrOr(m map[string]any, k, def string) string {
	if _, ok := m[k]; !ok {
		return def
	}
	return c.Str(m, k)
}

// Long reads a long field (or an int promoted to long).
func (c *Native) Long(m map[string]any, k string) int64 {
	switch v := m[k].(type) {
	case nil:
		return 0
	case int64:
		return v
	case int32: // int promoted to long
		return int64(v)
	default:
		c.mistyped(k, "long", v)
		return 0
	}
}

// LongOr is StrOr for a long.
func (c *Native) LongOr(m map[string]any, k string, def int64) int64 {
	if _, ok := m[k]; !ok {
		return def
	}
	return c.Long(m, k)
}

// nativeField reads field k of m as goavro's native T: the zero T when it is absent or null,
// and a type error (named want) when it holds anything else. It serves the fields whose native
// value has a single Go type.
func nativeField[T any](c *Native, m map[string]any, k, want string) T {
	switch v := m[k].(type) {
	case nil:
	case T:
		return v
	default:
		c.mistyped(k, want, v)
	}
	var zero T
	return zero
}

// Bytes reads a bytes field into a fresh slice.
func (c *Native) Bytes(m map[string]any, k string) []byte {
	return append([]byte(nil), nativeField[[]byte](c, m, k, "bytes")...)
}

// Int reads an int field.
func (c *Native) Int(m map[string]any, k string) int { return int(nativeField[int32](c, m, k, "int")) }

// Bool reads a boolean field.
func (c *Native) Bool(m map[string]any, k string) bool { return nativeField[bool](c, m, k, "boolean") }

func (c *Native) timestampOf(k string, v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t.UTC()
	case int64: // a writer without the logical type: microseconds
		return time.UnixMicro(t).UTC()
	default:
		c.mistyped(k, "timestamp-micros", v)
		return time.Time{}
	}
}

// Timestamp reads a timestamp-micros field as a UTC time; absent is the Unix epoch.
func (c *Native) Timestamp(m map[string]any, k string) time.Time {
	v, ok := m[k]
	if !ok {
		return time.Unix(0, 0).UTC()
	}
	return c.timestampOf(k, v)
}

// Date reads a date field (int, logicalType date) as days since 1970-01-01.
func (c *Native) Date(m map[string]any, k string) int {
	switch v := m[k].(type) {
	case nil:
		return 0
	case time.Time:
		return int(v.Unix() / 86400)
	case int32:
		return int(v)
	default:
		c.mistyped(k, "date", v)
		return 0
	}
}

// Union returns the value of a union field: nil for null (or absent), else the datum of
// goavro's single-key {"typeName": datum} map, with the branch name.
func (c *Native) Union(m map[string]any, k string) (string, any) {
	switch v := m[k].(type) {
	case nil:
		return "", nil
	case map[string]any:
		if len(v) == 1 {
			for name, datum := range v {
				return name, datum
			}
		}
		c.mistyped(k, "union", v)
	default:
		c.mistyped(k, "union", v)
	}
	return "", nil
}

// OptStr reads ["null","string"].
func (c *Native) OptStr(m map[string]any, k string) *string {
	_, v := c.Union(m, k)
	if v == nil {
		return nil
	}
	s, ok := v.(string)
	if !ok {
		c.mistyped(k, "string", v)
		return nil
	}
	return &s
}

// StrOrEmpty reads ["null","string"] into a string where absent is "".
func (c *Native) StrOrEmpty(m map[string]any, k string) string {
	if p := c.OptStr(m, k); p != nil {
		return *p
	}
	return ""
}

// OptLong reads ["null","long"].
func (c *Native) OptLong(m map[string]any, k string) *int64 {
	_, v := c.Union(m, k)
	switch x := v.(type) {
	case nil:
		return nil
	case int64:
		return &x
	case int32:
		y := int64(x)
		return &y
	default:
		c.mistyped(k, "long", v)
		return nil
	}
}

// OptInt reads ["null","long"] into a Go *int.
func (c *Native) OptInt(m map[string]any, k string) *int {
	p := c.OptLong(m, k)
	if p == nil {
		return nil
	}
	i := int(*p)
	return &i
}

// OptTimestamp reads ["null",timestamp-micros].
func (c *Native) OptTimestamp(m map[string]any, k string) *time.Time {
	_, v := c.Union(m, k)
	if v == nil {
		return nil
	}
	t := c.timestampOf(k, v)
	return &t
}

// Record checks that v, the value of field k, is a record.
func (c *Native) Record(k string, v any) map[string]any {
	r, ok := v.(map[string]any)
	if !ok {
		c.mistyped(k, "record", v)
	}
	return r
}

// OptRecord reads ["null", record]; null is a nil map.
func (c *Native) OptRecord(m map[string]any, k string) map[string]any {
	_, v := c.Union(m, k)
	if v == nil {
		return nil
	}
	return c.Record(k, v)
}

// Array reads an array field's items.
func (c *Native) Array(m map[string]any, k string) []any { return nativeField[[]any](c, m, k, "array") }

// Strings reads an array of strings; empty or absent is nil.
func (c *Native) Strings(m map[string]any, k string) []string {
	items := c.Array(m, k)
	if len(items) == 0 {
		return nil
	}
	out := make([]string, len(items))
	for i, it := range items {
		s, ok := it.(string)
		if !ok {
			c.mistyped(k, "string", it)
		}
		out[i] = s
	}
	return out
}

// LongMap reads a map<long> (or a map<int> promoted to long); empty or absent is nil, as
// Decoder.LongMap gives.
func (c *Native) LongMap(m map[string]any, k string) map[string]int64 {
	switch v := m[k].(type) {
	case nil:
		return nil
	case map[string]any:
		if len(v) == 0 {
			return nil
		}
		out := make(map[string]int64, len(v))
		for key, x := range v {
			switch n := x.(type) {
			case int64:
				out[key] = n
			case int32:
				out[key] = int64(n)
			default:
				c.mistyped(k, "long", x)
			}
		}
		return out
	default:
		c.mistyped(k, "map", v)
		return nil
	}
}
