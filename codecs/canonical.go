package codecs

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// This file implements the Avro specification's "Parsing Canonical Form" and its CRC-64-AVRO
// (Rabin) fingerprint from first principles. We do not use goavro's CanonicalSchema or Rabin:
// goavro keeps {"type":"long"} for a long with a logicalType (the specification, and the Java
// reference implementation, reduce it to "long") and mis-qualifies nested namespaces, so its
// fingerprints differ from every other Avro implementation for the schemas we ship. A record
// stamped with such a fingerprint would be unreadable to anyone else holding our .avsc files.

// rabinEmpty is the CRC-64-AVRO fingerprint of the empty string (the specification's EMPTY).
const rabinEmpty uint64 = 0xc15d213aa4d7a795

// rabinTable is the byte-at-a-time table of the CRC-64-AVRO polynomial, built exactly as the
// specification's reference code builds it.
var rabinTable = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for j := 0; j < 8; j++ {
			fp = (fp >> 1) ^ (rabinEmpty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()

// crc64Avro returns the CRC-64-AVRO fingerprint of data. Java prints the same value as a signed
// long; the bit pattern is identical.
func crc64Avro(data []byte) uint64 {
	fp := rabinEmpty
	for _, b := range data {
		fp = (fp >> 8) ^ rabinTable[byte(fp)^b]
	}
	return fp
}

// CanonicalForm returns the Parsing Canonical Form of an Avro schema, as the specification
// defines it: primitives in their simple form, full names without namespaces, only the
// attributes that matter for parsing (type, name, fields, symbols, items, values, size) in
// that order, no whitespace. Logical types reduce to their underlying type, so
// {"type":"bytes","logicalType":"decimal",...} is "bytes". Two schemas with the same canonical
// form read and write the same bytes, which is why the fingerprint is taken from it.
func CanonicalForm(schemaJSON string) (string, error) {
	n, err := parseSchema(schemaJSON)
	if err != nil {
		return "", err
	}
	return n.canonical(), nil
}

// Fingerprint returns the CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form: the
// 8 bytes (little-endian) that follow C3 01 in a single-object encoded record, and the value the
// Java reference implementation's SchemaNormalization.parsingFingerprint64 returns.
func Fingerprint(schemaJSON string) (uint64, error) {
	c, err := CanonicalForm(schemaJSON)
	if err != nil {
		return 0, err
	}
	return crc64Avro([]byte(c)), nil
}

// nodeKind is the Avro type of a schema node.
type nodeKind uint8

const (
	kNull nodeKind = iota
	kBoolean
	kInt
	kLong
	kFloat
	kDouble
	kBytes
	kString
	kRecord
	kEnum
	kFixed
	kArray
	kMap
	kUnion
)

var primitiveKinds = map[string]nodeKind{
	"null": kNull, "boolean": kBoolean, "int": kInt, "long": kLong,
	"float": kFloat, "double": kDouble, "bytes": kBytes, "string": kString,
}

var kindNames = [...]string{
	kNull: "null", kBoolean: "boolean", kInt: "int", kLong: "long", kFloat: "float",
	kDouble: "double", kBytes: "bytes", kString: "string", kRecord: "record", kEnum: "enum",
	kFixed: "fixed", kArray: "array", kMap: "map", kUnion: "union",
}

func (k nodeKind) String() string { return kindNames[k] }

// schemaNode is a parsed Avro schema. Named types are shared: every reference to a name points
// at the node of its definition, so recursive schemas are graphs.
type schemaNode struct {
	kind     nodeKind
	name     string // full name of a record, enum or fixed
	logical  string // logicalType, kept for tools; irrelevant to the canonical form
	fields   []schemaField
	symbols  []string
	size     int
	items    *schemaNode // array items or map values
	branches []*schemaNode
}

// schemaField is one field of a record, with its default value as parsed JSON (json.Number
// for numbers) when it has one.
type schemaField struct {
	name       string
	typ        *schemaNode
	def        any
	hasDefault bool
}

// named reports whether the node is a record, enum or fixed.
func (n *schemaNode) named() bool { return n.kind == kRecord || n.kind == kEnum || n.kind == kFixed }

// unionKey identifies a union branch: the full name of a named type, else its type name. A
// union may not hold two branches with the same key.
func (n *schemaNode) unionKey() string {
	if n.named() {
		return n.name
	}
	return n.kind.String()
}

// field returns the record field called name.
func (n *schemaNode) field(name string) (schemaField, bool) {
	for _, f := range n.fields {
		if f.name == name {
			return f, true
		}
	}
	return schemaField{}, false
}

// canonical writes the Parsing Canonical Form of the schema rooted at n.
func (n *schemaNode) canonical() string {
	var b strings.Builder
	n.writeCanonical(&b, make(map[*schemaNode]bool))
	return b.String()
}

func (n *schemaNode) writeCanonical(b *strings.Builder, seen map[*schemaNode]bool) {
	switch n.kind {
	case kUnion:
		b.WriteByte('[')
		for i, br := range n.branches {
			if i > 0 {
				b.WriteByte(',')
			}
			br.writeCanonical(b, seen)
		}
		b.WriteByte(']')
	case kArray:
		b.WriteString(`{"type":"array","items":`)
		n.items.writeCanonical(b, seen)
		b.WriteByte('}')
	case kMap:
		b.WriteString(`{"type":"map","values":`)
		n.items.writeCanonical(b, seen)
		b.WriteByte('}')
	case kRecord, kEnum, kFixed:
		// The first occurrence defines the name; later ones (including recursive references)
		// are just the quoted full name, as in the Java reference implementation.
		if seen[n] {
			b.WriteString(`"` + n.name + `"`)
			return
		}
		seen[n] = true
		b.WriteString(`{"name":"` + n.name + `","type":"` + n.kind.String() + `"`)
		switch n.kind {
		case kRecord:
			b.WriteString(`,"fields":[`)
			for i, f := range n.fields {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`{"name":"` + f.name + `","type":`)
				f.typ.writeCanonical(b, seen)
				b.WriteByte('}')
			}
			b.WriteByte(']')
		case kEnum:
			b.WriteString(`,"symbols":[`)
			for i, s := range n.symbols {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`"` + s + `"`)
			}
			b.WriteByte(']')
		case kFixed:
			b.WriteString(`,"size":` + strconv.Itoa(n.size))
		}
		b.WriteByte('}')
	default:
		// Primitives (with or without a logical type) are their quoted type name.
		b.WriteString(`"` + n.kind.String() + `"`)
	}
}

// errSchema marks a schema text that is not valid Avro.
var errSchema = errors.New("invalid Avro schema")

// parseSchema parses Avro schema JSON into a node graph, resolving names the way the
// specification says (and Java does): a dotted name is a full name; otherwise the namespace
// attribute, else the enclosing named type's namespace, qualifies it; a reference that does
// not resolve in the enclosing namespace is looked up in the null namespace.
func parseSchema(schemaJSON string) (*schemaNode, error) {
	dec := json.NewDecoder(strings.NewReader(schemaJSON))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", errSchema, err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%w: trailing data after the schema", errSchema)
	}
	p := &schemaParser{names: make(map[string]*schemaNode)}
	n, err := p.parse(v, "")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSchema, err)
	}
	return n, nil
}

type schemaParser struct {
	names map[string]*schemaNode
}

func (p *schemaParser) parse(v any, ns string) (*schemaNode, error) {
	switch s := v.(type) {
	case string:
		return p.reference(s, ns)
	case []any:
		return p.union(s, ns)
	case map[string]any:
		return p.object(s, ns)
	default:
		return nil, fmt.Errorf("a schema is a string, an array or an object, not %T", v)
	}
}

// reference resolves a type name: a primitive or a previously defined named type.
func (p *schemaParser) reference(s, ns string) (*schemaNode, error) {
	if k, ok := primitiveKinds[s]; ok {
		return &schemaNode{kind: k}, nil
	}
	if !strings.Contains(s, ".") && ns != "" {
		if n, ok := p.names[ns+"."+s]; ok {
			return n, nil
		}
	}
	if n, ok := p.names[s]; ok {
		return n, nil
	}
	return nil, fmt.Errorf("undefined type name %q", s)
}

func (p *schemaParser) union(branches []any, ns string) (*schemaNode, error) {
	n := &schemaNode{kind: kUnion}
	keys := make(map[string]bool, len(branches))
	for i, b := range branches {
		bn, err := p.parse(b, ns)
		if err != nil {
			return nil, fmt.Errorf("union branch %d: %w", i, err)
		}
		if bn.kind == kUnion {
			return nil, fmt.Errorf("union branch %d is itself a union", i)
		}
		if k := bn.unionKey(); keys[k] {
			return nil, fmt.Errorf("union holds %q twice", k)
		} else {
			keys[k] = true
		}
		n.branches = append(n.branches, bn)
	}
	return n, nil
}

func (p *schemaParser) object(o map[string]any, ns string) (*schemaNode, error) {
	t, ok := o["type"]
	if !ok {
		return nil, errors.New(`schema object without "type"`)
	}
	ts, ok := t.(string)
	if !ok {
		// {"type": {...}} or {"type": [...]}: the attribute holds the schema itself.
		return p.parse(t, ns)
	}
	logical, _ := o["logicalType"].(string)
	if k, ok := primitiveKinds[ts]; ok {
		return &schemaNode{kind: k, logical: logical}, nil
	}
	switch ts {
	case "record", "error", "enum", "fixed":
		return p.named(o, ts, ns, logical)
	case "array", "map":
		attr := "items"
		kind := kArray
		if ts == "map" {
			attr, kind = "values", kMap
		}
		sub, ok := o[attr]
		if !ok {
			return nil, fmt.Errorf("%s without %q", ts, attr)
		}
		in, err := p.parse(sub, ns)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", ts, attr, err)
		}
		return &schemaNode{kind: kind, items: in, logical: logical}, nil
	default:
		// {"type":"SomeDefinedName"}
		return p.reference(ts, ns)
	}
}

func (p *schemaParser) named(o map[string]any, ts, ns, logical string) (*schemaNode, error) {
	name, ok := o["name"].(string)
	if !ok || name == "" {
		return nil, fmt.Errorf("%s without a name", ts)
	}
	var full, space string
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		full, space = name, name[:i]
	} else {
		space = ns
		if nsv, ok := o["namespace"]; ok && nsv != nil {
			s, ok := nsv.(string)
			if !ok {
				return nil, fmt.Errorf("%s %q: namespace is not a string", ts, name)
			}
			space = s
		}
		full = name
		if space != "" {
			full = space + "." + name
		}
	}
	if err := validFullName(full); err != nil {
		return nil, err
	}
	if _, ok := primitiveKinds[full]; ok {
		return nil, fmt.Errorf("%q is a primitive type and cannot be redefined", full)
	}
	if _, dup := p.names[full]; dup {
		return nil, fmt.Errorf("%q is defined twice", full)
	}
	n := &schemaNode{name: full, logical: logical}
	p.names[full] = n // defined before its fields: a record may refer to itself
	switch ts {
	case "record", "error":
		n.kind = kRecord
		fields, ok := o["fields"].([]any)
		if !ok {
			return nil, fmt.Errorf("record %q without a fields array", full)
		}
		seen := make(map[string]bool, len(fields))
		for i, fv := range fields {
			fo, ok := fv.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("record %q field %d is not an object", full, i)
			}
			fname, _ := fo["name"].(string)
			if !validName(fname) {
				return nil, fmt.Errorf("record %q field %d has an invalid name %q", full, i, fname)
			}
			if seen[fname] {
				return nil, fmt.Errorf("record %q has two fields %q", full, fname)
			}
			seen[fname] = true
			ft, ok := fo["type"]
			if !ok {
				return nil, fmt.Errorf("record %q field %q without a type", full, fname)
			}
			fn, err := p.parse(ft, space)
			if err != nil {
				return nil, fmt.Errorf("record %q field %q: %w", full, fname, err)
			}
			def, hasDef := fo["default"]
			n.fields = append(n.fields, schemaField{name: fname, typ: fn, def: def, hasDefault: hasDef})
		}
	case "enum":
		n.kind = kEnum
		syms, ok := o["symbols"].([]any)
		if !ok {
			return nil, fmt.Errorf("enum %q without a symbols array", full)
		}
		seen := make(map[string]bool, len(syms))
		for _, sv := range syms {
			s, _ := sv.(string)
			if !validName(s) || seen[s] {
				return nil, fmt.Errorf("enum %q has an invalid or repeated symbol %q", full, s)
			}
			seen[s] = true
			n.symbols = append(n.symbols, s)
		}
	case "fixed":
		n.kind = kFixed
		size, err := parseSize(o["size"])
		if err != nil {
			return nil, fmt.Errorf("fixed %q: %w", full, err)
		}
		n.size = size
	}
	return n, nil
}

// parseSize reads a fixed size: a JSON integer, or (leniently, as the specification's
// [INTEGERS] rule implies) an integer in a string.
func parseSize(v any) (int, error) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, errors.New("size is not an integer")
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("size %q is not a non-negative integer", s)
	}
	return int(n), nil
}

// validName checks an Avro name: [A-Za-z_][A-Za-z0-9_]*. Names are written unescaped into the
// canonical form, so anything else must be refused.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func validFullName(full string) error {
	for _, part := range strings.Split(full, ".") {
		if !validName(part) {
			return fmt.Errorf("invalid name %q", full)
		}
	}
	return nil
}
