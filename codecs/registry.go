package codecs

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"

	"github.com/crm-pipeline/crm-pipeline/codecs/internal/avro"
)

// The .avsc files are the contract: they are embedded so that the binary, the tests and any
// tool (SchemaFiles) use byte-for-byte the files other teams read in the repository.
//
// Layout: schemas/<record>.avsc is the CURRENT schema of each record type, the one every
// encoder writes. schemas/vN/<record>.avsc are superseded versions that records on the topics
// may still carry; they are only ever read. To evolve a record: copy the current file to
// schemas/vN/, change the current file in a backward-compatible way (add fields with defaults),
// add the old file to schemaTable, change the record's family file (its writer, fast reader
// and generic-map conversion sit together there), and extend the generic-map conversion if
// the change needs more than "absent field = zero value".
//
//go:embed schemas/*.avsc schemas/v1/*.avsc schemas/v2/*.avsc
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
	{kindCommand, "schemas/v2/command.avsc", false},
	{kindCommand, "schemas/v1/command.avsc", false},
	{kindEvent, "schemas/event.avsc", true},
	{kindAggregate, "schemas/aggregate.avsc", true},
	{kindAggregate, "schemas/v2/aggregate.avsc", false},
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

// schemaEntry is one known writer schema: the file with its fingerprint and header
// (avro.Schema), the record type it belongs to and whether it is that type's current one.
type schemaEntry struct {
	*avro.Schema
	kind    recordKind
	current bool
}

const headerLen = avro.HeaderLen

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
		sc, err := avro.Load(schemaFS, s.path)
		if err != nil {
			return fmt.Errorf("codecs: %w", err)
		}
		e := &schemaEntry{Schema: sc, kind: s.kind, current: s.current}
		if prev, dup := byFingerprint[e.Fingerprint]; dup {
			return fmt.Errorf("codecs: %s and %s have the same canonical form", prev.Path, s.path)
		}
		byFingerprint[e.Fingerprint] = e
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
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// CanonicalForm returns the Parsing Canonical Form of an Avro schema, as the specification
// defines it: primitives in their simple form, full names without namespaces, only the
// attributes that matter for parsing (type, name, fields, symbols, items, values, size) in
// that order, no whitespace. Logical types reduce to their underlying type, so
// {"type":"bytes","logicalType":"decimal",...} is "bytes". Two schemas with the same canonical
// form read and write the same bytes, which is why the fingerprint is taken from it.
func CanonicalForm(schemaJSON string) (string, error) { return avro.CanonicalForm(schemaJSON) }

// Fingerprint returns the CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form: the
// 8 bytes (little-endian) that follow C3 01 in a single-object encoded record, and the value the
// Java reference implementation's SchemaNormalization.parsingFingerprint64 returns.
func Fingerprint(schemaJSON string) (uint64, error) { return avro.Fingerprint(schemaJSON) }
