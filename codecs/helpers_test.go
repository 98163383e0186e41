package codecs

import (
	"errors"
	"reflect"
	"runtime"
	"testing"
	"time"
)

// wantDecodes requires decode to read b as want; what names the path or the writer in a
// difference.
func wantDecodes[T any](t *testing.T, what string, b []byte, decode func([]byte) (T, error), want T) {
	t.Helper()
	got, err := decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s read as\n %#v\nwant %#v", what, got, want)
	}
}

// allocatedBy is the bytes allocated while f runs (process-wide): the forged-count tests
// require a refusal before anything is allocated for the count.
func allocatedBy(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// wantGenericRefusesForgedCount requires the generic (goavro) path of kind to refuse forged,
// a body whose declared count the bytes left cannot hold, before goavro preallocates by it:
// its validating pre-pass refuses the count first.
func wantGenericRefusesForgedCount(t *testing.T, kind recordKind, forged []byte) {
	t.Helper()
	var err error
	n := allocatedBy(func() { _, err = currentSchema[kind].ReadNative(forged) })
	if !errors.Is(err, ErrMalformed) {
		t.Errorf("generic path, forged count: %v", err)
	}
	if n > 64<<10 {
		t.Errorf("generic path: forged count allocated %d bytes", n)
	}
}

func mustLoc(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		return time.FixedZone("test", -5*3600)
	}
	return loc
}
