package avro

import (
	"strconv"
	"strings"
)

// This file implements the Avro specification's "Parsing Canonical Form" and its CRC-64-AVRO
// (Rabin) fingerprint from first principles. goavro's CanonicalSchema and Rabin are not used:
// goavro keeps {"type":"long"} for a long with a logicalType (the specification, and the Java
// reference implementation, reduce it to "long") and mis-qualifies nested namespaces, so its
// fingerprints differ from every other Avro implementation for the schemas codecs ships. A
// record stamped with such a fingerprint would be unreadable to anyone else holding the .avsc
// files.

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
	n, err := Parse(schemaJSON)
	if err != nil {
		return "", err
	}
	return n.Canonical(), nil
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

// Canonical returns the Parsing Canonical Form of the schema rooted at n.
func (n *Node) Canonical() string {
	var b strings.Builder
	n.writeCanonical(&b, make(map[*Node]bool))
	return b.String()
}

func (n *Node) writeCanonical(b *strings.Builder, seen map[*Node]bool) {
	switch n.Kind {
	case Union:
		b.WriteByte('[')
		for i, br := range n.Branches {
			if i > 0 {
				b.WriteByte(',')
			}
			br.writeCanonical(b, seen)
		}
		b.WriteByte(']')
	case Array:
		b.WriteString(`{"type":"array","items":`)
		n.Items.writeCanonical(b, seen)
		b.WriteByte('}')
	case Map:
		b.WriteString(`{"type":"map","values":`)
		n.Items.writeCanonical(b, seen)
		b.WriteByte('}')
	case Record, Enum, Fixed:
		// The first occurrence defines the name; later ones (including recursive references)
		// are just the quoted full name, as in the Java reference implementation.
		if seen[n] {
			b.WriteString(`"` + n.Name + `"`)
			return
		}
		seen[n] = true
		b.WriteString(`{"name":"` + n.Name + `","type":"` + n.Kind.String() + `"`)
		switch n.Kind {
		case Record:
			b.WriteString(`,"fields":[`)
			for i, f := range n.Fields {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`{"name":"` + f.Name + `","type":`)
				f.Type.writeCanonical(b, seen)
				b.WriteByte('}')
			}
			b.WriteByte(']')
		case Enum:
			b.WriteString(`,"symbols":[`)
			for i, s := range n.Symbols {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(`"` + s + `"`)
			}
			b.WriteByte(']')
		case Fixed:
			b.WriteString(`,"size":` + strconv.Itoa(n.Size))
		}
		b.WriteByte('}')
	default:
		// Primitives (with or without a logical type) are their quoted type name.
		b.WriteString(`"` + n.Kind.String() + `"`)
	}
}
