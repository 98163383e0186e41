package state_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/state"
)

func TestRunMarker(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "processor")

	// First run: no marker, so unclean (and the dir is created).
	clean, err := state.BeginRun(dir)
	must(t, err)
	if clean {
		t.Fatal("first run reported clean")
	}
	must(t, state.EndRunClean(dir))

	// After a clean stop: clean once, and the marker is consumed, so a crash
	// in this run is seen as unclean by the next.
	clean, err = state.BeginRun(dir)
	must(t, err)
	if !clean {
		t.Fatal("run after EndRunClean reported unclean")
	}
	clean, err = state.BeginRun(dir)
	must(t, err)
	if clean {
		t.Fatal("marker survived BeginRun")
	}

	// EndRunClean leaves no temporary file behind and can be repeated.
	must(t, state.EndRunClean(dir))
	must(t, state.EndRunClean(dir))
	entries, err := os.ReadDir(dir)
	must(t, err)
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries after EndRunClean, want just the marker", len(entries))
	}
}

func TestWipeDir(t *testing.T) {
	dir := t.TempDir()
	s, err := state.Open(filepath.Join(dir, "crm-table.0"), state.Options{Logger: quietLogger()})
	must(t, err)
	must(t, s.Set("k", []byte("v")))
	must(t, s.Close())
	mustWriteFile(t, filepath.Join(dir, "loose-file"), "x")

	must(t, state.WipeDir(dir))
	entries, err := os.ReadDir(dir)
	must(t, err)
	if len(entries) != 0 {
		t.Fatalf("%d entries left after WipeDir", len(entries))
	}
	// The directory itself stays (it may be a mount point); a store opened
	// there again is empty.
	s, err = state.Open(filepath.Join(dir, "crm-table.0"), state.Options{Logger: quietLogger()})
	must(t, err)
	defer s.Close()
	expectValue(t, s, "k", nil)

	must(t, state.WipeDir(filepath.Join(dir, "missing")))
	if err := state.WipeDir(""); err == nil {
		t.Fatal("WipeDir(\"\") succeeded")
	}
	if err := state.WipeDir("/"); err == nil {
		t.Fatal("WipeDir(\"/\") succeeded")
	}
}
