package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// cleanStopMarker is the file EndRunClean leaves in a cache directory.
const cleanStopMarker = ".clean-stop"

// BeginRun reports whether the previous run using dir stopped cleanly (it
// left the marker written by EndRunClean) and removes the marker, durably,
// so that a crash during this run is seen as unclean by the next one.
//
// Why: goka writes a processor's table locally before Kafka acknowledges
// the emit, so after a crash the local cache can hold state Kafka never got.
// A caller that gets wasClean == false should WipeDir the processor caches
// and let goka rebuild them from the table topics. dir is created if
// missing; a first run is reported as unclean, which costs nothing because
// there is no cache to wipe.
func BeginRun(dir string) (wasClean bool, err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("state: begin run in %s: %w", dir, err)
	}
	marker := filepath.Join(dir, cleanStopMarker)
	err = os.Remove(marker)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("state: begin run in %s: remove clean-stop marker: %w", dir, err)
	}
	if err := syncDir(dir); err != nil {
		return false, fmt.Errorf("state: begin run in %s: %w", dir, err)
	}
	return true, nil
}

// EndRunClean records that the run using dir stopped cleanly: call it only
// after every store in dir has been closed. The marker is written to a
// temporary file, synced and renamed, and the directory synced, so it is
// either fully present or absent after a crash.
func EndRunClean(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("state: end run in %s: %w", dir, err)
	}
	tmp := filepath.Join(dir, cleanStopMarker+".tmp")
	content := []byte("clean stop at " + time.Now().UTC().Format(time.RFC3339Nano) + "\n")
	if err := writeSynced(tmp, content); err != nil {
		return fmt.Errorf("state: end run in %s: %w", dir, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, cleanStopMarker)); err != nil {
		return fmt.Errorf("state: end run in %s: %w", dir, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("state: end run in %s: %w", dir, err)
	}
	return nil
}

// WipeDir deletes everything inside dir but keeps dir itself, which may be
// a mount point the process cannot recreate. A missing dir is not an error.
// It refuses an empty path and the file-system root, since a misconfigured
// cache path must not delete unrelated data. The stores in dir must be
// closed.
func WipeDir(dir string) error {
	if dir == "" {
		return errors.New("state: wipe dir: empty path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("state: wipe dir %s: %w", dir, err)
	}
	if abs == filepath.Dir(abs) {
		return fmt.Errorf("state: wipe dir %s: refusing to wipe the file-system root", dir)
	}
	entries, err := os.ReadDir(abs)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("state: wipe dir %s: %w", dir, err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(abs, e.Name())); err != nil {
			return fmt.Errorf("state: wipe dir %s: %w", dir, err)
		}
	}
	return nil
}

func writeSynced(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(err, f.Close())
	}
	return f.Close()
}

// syncDir makes a rename or removal in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	if err := d.Sync(); err != nil {
		return errors.Join(fmt.Errorf("sync dir %s: %w", dir, err), d.Close())
	}
	return d.Close()
}
