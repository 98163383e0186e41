package codecs

import (
	"embed"
	"encoding/binary"
	"fmt"
	"io/fs"
	"sort"
	"sync"

	"github.com/linkedin/goavro/v2"
)

// The .avsc files are the contract: they are embedded so that the binary, the tests and any
// tool (SchemaFiles) use byte-for-byte the files other teams read in the repository.
//
// Layout: schemas/<record>.avsc is the CURRENT schema of each record type, the one every
// encoder writes. schemas/vN/<record>.avsc are superseded versions that records on the topics
// may still carry; they are only ever read. To evolve a record: copy the current file to
// schemas/vN/, change the current file in a backward-compatible way (add fields with defaults),
// add the old file to schemaTable, and extend the generic reader if the change needs more than
// "absent field = zero value".
//
//go:embed schemas/*.avsc schemas/v1/*.avsc
var schemaFS embed.FS

// recordKind is a record type, i.e. a topic's value type.
type recordKind uint8

const (
	kindCommand recordKind = iota
	kindEvent
	kindAggregate
	kindPipeline
	kindAccount
	kindFXRate
	kindRejected
	kindClosedWon
	kindDelta
	kindBucket
	numKinds
)

var recordKindNames = [numKinds]string{
	kindCommand:   "command",
	kindEvent:     "event",
	kindAggregate: "aggregate",
	kindPipeline:  "pipeline",
	kindAccount:   "account",
	kindFXRate:    "fx rate",
	kindRejected:  "command rejection",
	kindClosedWon: "closed-won",
	kindDelta:     "analytics delta",
	kindBucket:    "analytics bucket",
}

func (k recordKind) String() string { return recordKindNames[k] }

// schemaTable lists every schema version the registry knows. Exactly one per kind is current.
var schemaTable = []struct {
	kind    recordKind
	path    string
	current bool
}{
	{kindCommand, "schemas/command.avsc", true},
	{kindCommand, "schemas/v1/command.avsc", false},
	{kindEvent, "schemas/event.avsc", true},
	{kindAggregate, "schemas/aggregate.avsc", true},
	{kindAggregate, "schemas/v1/aggregate.avsc", false},
	{kindPipeline, "schemas/pipeline.avsc", true},
	{kindAccount, "schemas/account.avsc", true},
	{kindFXRate, "schemas/fx_rate.avsc", true},
	{kindRejected, "schemas/command_rejected.avsc", true},
	{kindClosedWon, "schemas/closed_won.avsc", true},
	{kindDelta, "schemas/analytics_delta.avsc", true},
	{kindDelta, "schemas/v1/analytics_delta.avsc", false},
	{kindBucket, "schemas/analytics_bucket.avsc", true},
	{kindBucket, "schemas/v1/analytics_bucket.avsc", false},
}

// schemaEntry is one known writer schema.
type schemaEntry struct {
	kind        recordKind
	path        string
	text        string
	canonical   string
	fingerprint uint64
	current     bool
	header      [headerLen]byte // C3 01 + fingerprint, prepended to every record we write
	root        *schemaNode

	codecOnce sync.Once
	codec     *goavro.Codec
	codecErr  error
}

// goavroCodec returns the goavro codec of the schema, built on first use: only records
// written with an older schema version (and the tests) need it.
func (e *schemaEntry) goavroCodec() (*goavro.Codec, error) {
	e.codecOnce.Do(func() {
		e.codec, e.codecErr = goavro.NewCodec(e.text)
		if e.codecErr != nil {
			e.codecErr = fmt.Errorf("codecs: goavro cannot compile %s: %w", e.path, e.codecErr)
		}
	})
	return e.codec, e.codecErr
}

const headerLen = 10

// Registry: read-only after init, so safe for any number of goroutines.
var (
	byFingerprint = map[uint64]*schemaEntry{}
	currentSchema [numKinds]*schemaEntry
)

func init() {
	if err := loadRegistry(); err != nil {
		// The schemas are compiled into the binary; a bad one is a build defect that the
		// package tests catch, not a runtime condition.
		panic(err)
	}
}

func loadRegistry() error {
	for _, s := range schemaTable {
		text, err := schemaFS.ReadFile(s.path)
		if err != nil {
			return fmt.Errorf("codecs: embedded schema %s: %w", s.path, err)
		}
		root, err := parseSchema(string(text))
		if err != nil {
			return fmt.Errorf("codecs: %s: %w", s.path, err)
		}
		if root.kind != kRecord {
			return fmt.Errorf("codecs: %s is not a record schema", s.path)
		}
		e := &schemaEntry{kind: s.kind, path: s.path, text: string(text), current: s.current, root: root}
		e.canonical = root.canonical()
		e.fingerprint = crc64Avro([]byte(e.canonical))
		e.header[0], e.header[1] = 0xC3, 0x01
		binary.LittleEndian.PutUint64(e.header[2:], e.fingerprint)
		if prev, dup := byFingerprint[e.fingerprint]; dup {
			return fmt.Errorf("codecs: %s and %s have the same canonical form", prev.path, s.path)
		}
		byFingerprint[e.fingerprint] = e
		if s.current {
			if currentSchema[s.kind] != nil {
				return fmt.Errorf("codecs: two current schemas for %s", s.kind)
			}
			currentSchema[s.kind] = e
		}
	}
	for k, e := range currentSchema {
		if e == nil {
			return fmt.Errorf("codecs: no current schema for %s", recordKind(k))
		}
	}
	return nil
}

// SchemaFiles returns every embedded .avsc file, current and superseded, keyed by its path
// in this package ("schemas/command.avsc", "schemas/v1/command.avsc", ...), for documentation
// and for tools that register schemas elsewhere. The map and slices are fresh copies.
func SchemaFiles() map[string][]byte {
	out := make(map[string][]byte)
	_ = fs.WalkDir(schemaFS, "schemas", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := schemaFS.ReadFile(path)
		if err == nil {
			out[path] = b
		}
		return err
	})
	return out
}

// knownFingerprints lists the registry in a stable order (tests, error messages).
func knownFingerprints() []*schemaEntry {
	out := make([]*schemaEntry, 0, len(byFingerprint))
	for _, e := range byFingerprint {
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}
