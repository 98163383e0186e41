package avro

import (
	"errors"
	"testing"

	"github.com/linkedin/goavro/v2"
)

// specCases are the cases of the Avro repository's share/test/data/schema-tests.txt, the
// cross-language test data for the Parsing Canonical Form and the CRC-64-AVRO fingerprint
// (fingerprints as the Java implementation prints them: signed 64-bit decimals; 0 = the file
// gives none for that case).
var specCases = []struct {
	input, canonical string
	fingerprint      int64
}{
	{`"null"`, `"null"`, 7195948357588979594},
	{`{"type":"null"}`, `"null"`, 0},
	{`"boolean"`, `"boolean"`, -6970731678124411036},
	{`{"type":"boolean"}`, `"boolean"`, 0},
	{`"int"`, `"int"`, 8247732601305521295},
	{`{"type":"int"}`, `"int"`, 0},
	{`"long"`, `"long"`, -3434872931120570953},
	{`{"type":"long"}`, `"long"`, 0},
	{`"float"`, `"float"`, 5583340709985441680},
	{`{"type":"float"}`, `"float"`, 0},
	{`"double"`, `"double"`, -8181574048448539266},
	{`{"type":"double"}`, `"double"`, 0},
	{`"bytes"`, `"bytes"`, 5746618253357095269},
	{`{"type":"bytes"}`, `"bytes"`, 0},
	{`"string"`, `"string"`, -8142146995180207161},
	{`{"type":"string"}`, `"string"`, 0},
	{`[  ]`, `[]`, -1241056759729112623},
	{`[ "int"  ]`, `["int"]`, -5232228896498058493},
	{`[ "int" , {"type":"boolean"} ]`, `["int","boolean"]`, 5392556393470105090},
	{`{"fields":[], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[], "type":"record", "name":"foo", "namespace":"x.y"}`, `{"name":"x.y.foo","type":"record","fields":[]}`, 5916914534497305771},
	{`{"fields":[], "type":"record", "name":"a.b.foo", "namespace":"x.y"}`, `{"name":"a.b.foo","type":"record","fields":[]}`, -4616218487480524110},
	{`{"fields":[], "type":"record", "name":"foo", "doc":"Useful info"}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[], "type":"record", "name":"foo", "aliases":["foo","bar"]}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[], "type":"record", "name":"foo", "doc":"foo", "aliases":["foo","bar"]}`, `{"name":"foo","type":"record","fields":[]}`, -4824392279771201922},
	{`{"fields":[{"type":{"type":"boolean"}, "name":"f1"}], "type":"record", "name":"foo"}`, `{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"}]}`, 7843277075252814651},
	{`{ "fields":[{"type":"boolean", "aliases":[], "name":"f1", "default":"true"},
            {"order":"descending","name":"f2","doc":"Hello","type":"int"}],
  "type":"record", "name":"foo"
}`, `{"name":"foo","type":"record","fields":[{"name":"f1","type":"boolean"},{"name":"f2","type":"int"}]}`, -4860222112080293046},
	{`{"type":"enum", "name":"foo", "symbols":["A1"]}`, `{"name":"foo","type":"enum","symbols":["A1"]}`, -6342190197741309591},
	{`{"namespace":"x.y.z", "type":"enum", "name":"foo", "doc":"foo bar", "symbols":["A1", "A2"]}`, `{"name":"x.y.z.foo","type":"enum","symbols":["A1","A2"]}`, -4448647247586288245},
	{`{"name":"foo","type":"fixed","size":15}`, `{"name":"foo","type":"fixed","size":15}`, 1756455273707447556},
	{`{"namespace":"x.y.z", "type":"fixed", "name":"foo", "doc":"foo bar", "size":32}`, `{"name":"x.y.z.foo","type":"fixed","size":32}`, -3064184465700546786},
	{`{ "items":{"type":"null"}, "type":"array"}`, `{"type":"array","items":"null"}`, -589620603366471059},
	{`{ "values":"string", "type":"map"}`, `{"type":"map","values":"string"}`, -8732877298790414990},
	{`{"name":"PigValue","type":"record",
   "fields":[{"name":"value", "type":["null", "int", "long", "PigValue"]}]}`, `{"name":"PigValue","type":"record","fields":[{"name":"value","type":["null","int","long","PigValue"]}]}`, -1759257747318642341},
}

func TestCanonicalFormSpecCases(t *testing.T) {
	for i, c := range specCases {
		got, err := CanonicalForm(c.input)
		if err != nil {
			t.Errorf("case %03d: %v", i, err)
			continue
		}
		if got != c.canonical {
			t.Errorf("case %03d: canonical form\n got %s\nwant %s", i, got, c.canonical)
		}
		fp, err := Fingerprint(c.input)
		if err != nil {
			t.Errorf("case %03d: %v", i, err)
			continue
		}
		if want := uint64(c.fingerprint); c.fingerprint != 0 && fp != want {
			t.Errorf("case %03d: fingerprint %016x (%d), want %016x (%d)", i, fp, int64(fp), want, c.fingerprint)
		}
	}
}

// The primitive fingerprints as unsigned hex, the way the single-object header carries them
// (little-endian) and tools print them.
func TestPrimitiveFingerprintsHex(t *testing.T) {
	for in, want := range map[string]uint64{
		`"null"`: 0x63dd24e7cc258f8a, `"boolean"`: 0x9f42fc78a4d4f764, `"int"`: 0x7275d51a3f395c8f,
		`"long"`: 0xd054e14493f41db7, `"float"`: 0x4d7c02cb3ea8d790, `"double"`: 0x8e7535c032ab957e,
		`"bytes"`: 0x4fc016dac3201965, `"string"`: 0x8f014872634503c7,
	} {
		if got, _ := Fingerprint(in); got != want {
			t.Errorf("%s: %016x, want %016x", in, got, want)
		}
	}
}

func TestCRC64AvroBasics(t *testing.T) {
	if got := crc64Avro(nil); got != rabinEmpty {
		t.Errorf("fingerprint of nothing = %016x, want EMPTY %016x", got, rabinEmpty)
	}
	// First entries of the reference table (the Java FP64 table, also goavro's rabinTable).
	for i, want := range []uint64{0, 3238593523956797946, 6477187047913595892, 8435907220062204430} {
		if rabinTable[i] != want {
			t.Errorf("table[%d] = %d, want %d", i, rabinTable[i], want)
		}
	}
}

// Logical types do not change how data is parsed, so they vanish from the canonical form and
// the fingerprint. goavro gets this wrong, which is why this package has its own.
func TestLogicalTypesReduceToUnderlyingType(t *testing.T) {
	cases := []struct{ logical, plain string }{
		{`{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`, `"bytes"`},
		{`{"type":"long","logicalType":"timestamp-micros"}`, `"long"`},
		{`{"type":"int","logicalType":"date"}`, `"int"`},
		{`{"type":"string","logicalType":"uuid"}`, `"string"`},
		{`{"type":"fixed","name":"d","size":8,"logicalType":"decimal","precision":10}`, `{"name":"d","type":"fixed","size":8}`},
	}
	for _, c := range cases {
		cf, err := CanonicalForm(c.logical)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := CanonicalForm(c.plain)
		if cf != want {
			t.Errorf("%s: canonical %s, want %s", c.logical, cf, want)
		}
		fl, _ := Fingerprint(c.logical)
		fp, _ := Fingerprint(c.plain)
		if fl != fp {
			t.Errorf("%s: fingerprint %016x differs from %s's %016x", c.logical, fl, c.plain, fp)
		}
	}

	// Document goavro's divergence: its canonical form keeps an object (and, for decimal, a
	// made-up name), so its fingerprints are not the specification's.
	for _, s := range []string{
		`{"type":"bytes","logicalType":"decimal","precision":4,"scale":2}`,
		`{"type":"long","logicalType":"timestamp-micros"}`,
	} {
		g, err := goavro.NewCodec(s)
		if err != nil {
			t.Fatal(err)
		}
		ours, _ := Fingerprint(s)
		if g.Rabin == ours {
			t.Logf("goavro now agrees for %s; the note in canonical.go can go", s)
		} else {
			t.Logf("goavro: %s -> %s (fingerprint %016x); specification: %016x", s, g.CanonicalSchema(), g.Rabin, ours)
		}
	}
}

func TestCanonicalFormNames(t *testing.T) {
	cases := []struct{ in, want string }{
		// Nested named types inherit the enclosing namespace; references resolve against it.
		{`{"type":"record","name":"R","namespace":"a.b","fields":[
			{"name":"x","type":{"type":"enum","name":"E","symbols":["P","Q"]}},
			{"name":"y","type":"E"},
			{"name":"z","type":{"type":"array","items":"a.b.E"}}]}`,
			`{"name":"a.b.R","type":"record","fields":[{"name":"x","type":{"name":"a.b.E","type":"enum","symbols":["P","Q"]}},{"name":"y","type":"a.b.E"},{"name":"z","type":{"type":"array","items":"a.b.E"}}]}`},
		// A dotted name sets the namespace for what it encloses; a namespace attribute of ""
		// is the null namespace.
		{`{"type":"record","name":"x.R","fields":[
			{"name":"a","type":{"type":"fixed","name":"F","size":2}},
			{"name":"b","type":{"type":"fixed","name":"G","namespace":"","size":1}},
			{"name":"c","type":"G"}]}`,
			`{"name":"x.R","type":"record","fields":[{"name":"a","type":{"name":"x.F","type":"fixed","size":2}},{"name":"b","type":{"name":"G","type":"fixed","size":1}},{"name":"c","type":"G"}]}`},
		// "error" is a record; maps, {"type": <schema>} wrappers, string sizes.
		{`{"type":"error","name":"Oops","fields":[{"name":"m","type":{"type":{"type":"map","values":{"type":"fixed","name":"H","size":"016"}}}}]}`,
			`{"name":"Oops","type":"record","fields":[{"name":"m","type":{"type":"map","values":{"name":"H","type":"fixed","size":16}}}]}`},
		// Escapes in the input text are gone in the output.
		{`{"type":"enum","name":"\u0045","symbols":["\u0041"]}`, `{"name":"E","type":"enum","symbols":["A"]}`},
	}
	for _, c := range cases {
		got, err := CanonicalForm(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if got != c.want {
			t.Errorf("canonical form\n got %s\nwant %s", got, c.want)
		}
	}
}

func TestCanonicalFormRejectsInvalidSchemas(t *testing.T) {
	for _, in := range []string{
		``, `{`, `42`, `"nosuchtype"`, `{"type":"record","name":"R"}`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":"Undefined"}]}`,
		`{"type":"record","name":"bad-name","fields":[]}`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":"int"},{"name":"a","type":"int"}]}`,
		`{"type":"enum","name":"E","symbols":["A","A"]}`,
		`["int","int"]`, `["null",["int"]]`, `{"type":"fixed","name":"F","size":-1}`,
		`{"type":"record","name":"int","fields":[]}`,
		`{"type":"array"}`, `"int" "long"`,
	} {
		if _, err := CanonicalForm(in); !errors.Is(err, errSchema) {
			t.Errorf("%q: err = %v, want an invalid schema error", in, err)
		}
	}
}
