// Package avro is the record-independent Avro machinery of package codecs: what any Avro
// record needs and no record of this service defines.
//
//   - schema.go: the schema tree (Node, Field, Kind) and Parse, which resolves names as the
//     specification (and the Java implementation) does.
//   - canonical.go: the Parsing Canonical Form and its CRC-64-AVRO fingerprint, implemented
//     from the specification because goavro's CanonicalSchema and Rabin disagree with it for
//     logical types and nested namespaces (so goavro's single-object headers are not ours).
//   - file.go: Schema, one .avsc file loaded with its canonical form, fingerprint and
//     single-object header (C3 01 + the fingerprint, little-endian), and the goavro codec
//     that reads (ReadNative, after validating the body) and writes (AppendNative) its
//     records generically.
//   - encode.go and decode.go: the binary primitives of the hand-written codecs, Append*
//     writers and the Decoder, exact to the specification's binary encoding; maps are
//     written as one block sorted by key, so equal values give equal bytes.
//   - validate.go: the walk that checks a body against its schema before goavro sees it,
//     refusing forged counts that would make goavro preallocate gigabytes.
//   - native.go: Native, which reads goavro's native maps field by field.
//
// Which records exist, their schemas' files and kinds, and how each maps to a domain value
// are package codecs' business, not this package's. Every error of the primitives wraps
// ErrMalformed (and ErrTruncated when the data ends early) or ErrInvalidValue, which codecs
// exports under the same names.
//
// Everything here is safe for concurrent use except a Decoder and a Native, which serve one
// record on one goroutine.
package avro
