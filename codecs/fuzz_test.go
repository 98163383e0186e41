package codecs

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"
)

// FuzzDecodeCommand: decoding arbitrary bytes must never panic (the processor reads the
// commands topic, which other services write), and whatever decodes must survive a
// re-encode/decode unchanged.
func FuzzDecodeCommand(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCommand(b)
		if err != nil {
			return
		}
		again, err := EncodeCommand(c)
		if err != nil {
			t.Fatalf("decoded command does not encode: %v\n%#v", err, c)
		}
		c2, err := DecodeCommand(again)
		if err != nil {
			t.Fatalf("re-encoded command does not decode: %v", err)
		}
		if !reflect.DeepEqual(c, c2) {
			t.Fatalf("round trip changed the command:\n%#v\n%#v", c, c2)
		}
	})
}

// fuzzSeeds: valid records of every command type in both schema versions, and garbage.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	fx := commandFixtures()
	names := make([]string, 0, len(fx))
	for n := range fx {
		names = append(names, n)
	}
	sort.Strings(names)
	v1 := currentSchema[kindCommand]
	for _, e := range byFingerprint {
		if e.kind == kindCommand && !e.current {
			v1 = e
		}
	}
	codec, _ := v1.Goavro()
	for _, n := range names {
		b, _ := EncodeCommand(fx[n])
		seeds = append(seeds, b)
		if body, err := codec.BinaryFromNative(nil, v1CommandNative(fx[n])); err == nil {
			seeds = append(seeds, append(v1.Header[:], body...))
		}
	}
	valid := seeds[0]
	seeds = append(seeds,
		nil,
		[]byte{0xC3, 0x01},
		valid[:headerLen],
		append(append([]byte{}, valid[:headerLen]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f),
		[]byte(`{"type":"CreateOpportunity","opportunityId":"o"}`),
	)
	return seeds
}

// TestWriteFuzzSeedCorpus regenerates testdata/fuzz/FuzzDecodeCommand (the committed seed
// corpus) when CODECS_WRITE_FUZZ_SEEDS=1, e.g. after a schema change.
func TestWriteFuzzSeedCorpus(t *testing.T) {
	if os.Getenv("CODECS_WRITE_FUZZ_SEEDS") != "1" {
		t.Skip("set CODECS_WRITE_FUZZ_SEEDS=1 to regenerate the seed corpus")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzDecodeCommand")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range fuzzSeeds() {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
