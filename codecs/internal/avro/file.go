package avro

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"sync"

	"github.com/linkedin/goavro/v2"
)

// HeaderLen is the length of the single-object header: the marker C3 01 and the 8-byte
// little-endian fingerprint of the writer schema.
const HeaderLen = 10

// Schema is one writer schema read from a .avsc file: its parsed tree, Parsing Canonical
// Form, fingerprint and single-object header, and (built on first use) the goavro codec that
// reads and writes its records generically. Read-only once loaded, except for that codec,
// which is built once: safe for concurrent use.
type Schema struct {
	Path        string // the file's path in the file system it was loaded from
	Text        string
	Root        *Node
	Canonical   string
	Fingerprint uint64
	Header      [HeaderLen]byte // C3 01 + fingerprint, prepended to every record of the schema

	codecOnce sync.Once
	codec     *goavro.Codec
	codecErr  error
}

// Load reads and parses the record schema at path in fsys.
func Load(fsys fs.FS, path string) (*Schema, error) {
	text, err := fs.ReadFile(fsys, path)
	if err != nil {
		return nil, fmt.Errorf("embedded schema %s: %w", path, err)
	}
	root, err := Parse(string(text))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if root.Kind != Record {
		return nil, fmt.Errorf("%s is not a record schema", path)
	}
	s := &Schema{Path: path, Text: string(text), Root: root}
	s.Canonical = root.Canonical()
	s.Fingerprint = crc64Avro([]byte(s.Canonical))
	s.Header[0], s.Header[1] = 0xC3, 0x01
	binary.LittleEndian.PutUint64(s.Header[2:], s.Fingerprint)
	return s, nil
}

// Goavro returns the goavro codec of the schema, built on first use: only the records read or
// written generically (older writers, the records without hand-written codecs, tests) need it.
func (s *Schema) Goavro() (*goavro.Codec, error) {
	s.codecOnce.Do(func() {
		s.codec, s.codecErr = goavro.NewCodec(s.Text)
		if s.codecErr != nil {
			s.codecErr = fmt.Errorf("codecs: goavro cannot compile %s: %w", s.Path, s.codecErr)
		}
	})
	return s.codec, s.codecErr
}

// ReadNative validates body against the schema, then decodes it with goavro into goavro's
// native form (a map for the record).
//
// The validation pass exists because goavro preallocates arrays and maps by their declared
// block count (up to 2^31 items): a forged count in a few bytes could make it allocate
// gigabytes, which no recover() can catch. The validator refuses any count that cannot fit in
// the bytes that are left, so goavro only ever sees well-formed bodies.
func (s *Schema) ReadNative(body []byte) (m map[string]any, err error) {
	// goavro is third-party code on a path fed by other services' bytes: a panic in it must
	// become an error, not stop the goka processor that called us.
	defer func() {
		if r := recover(); r != nil {
			m, err = nil, fmt.Errorf("%w: goavro panicked: %v", ErrMalformed, r)
		}
	}()
	d := NewDecoder(body)
	skipValue(&d, s.Root, 0)
	if err := d.End("the record"); err != nil {
		return nil, err
	}
	codec, err := s.Goavro()
	if err != nil {
		return nil, err
	}
	native, rest, err := codec.NativeFromBinary(body)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the record", ErrMalformed, len(rest))
	}
	m, ok := native.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%w: top level is %T, not a record", ErrMalformed, native)
	}
	return m, nil
}

// AppendNative writes the record native (goavro's native form) with goavro, appending the
// body to b.
func (s *Schema) AppendNative(b []byte, native map[string]any) ([]byte, error) {
	codec, err := s.Goavro()
	if err != nil {
		return b, err
	}
	out, err := codec.BinaryFromNative(b, native)
	if err != nil {
		return b, fmt.Errorf("%w: %v", ErrInvalidValue, err)
	}
	return out, nil
}
