package dirlock

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestSecondAcquireFailsAndNamesTheHolder(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	l, err := Acquire(dir, "crm-pipeline serve")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(dir, "crm-pipeline broker")
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "crm-pipeline serve pid") {
		t.Fatalf("second Acquire = %v, want ErrLocked naming the holder", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l2, err := Acquire(dir, "again")
	if err != nil {
		t.Fatalf("Acquire after Release: %v", err)
	}
	l2.Release()
	if err := l2.Release(); err != nil {
		t.Fatalf("a second Release: %v", err)
	}
}

// TestLockHeldByAnotherProcess runs the test binary as a child that locks the directory; the
// parent's Acquire must fail while the child holds it and succeed once it is gone (killed:
// the OS drops the lock).
func TestLockHeldByAnotherProcess(t *testing.T) {
	if dir := os.Getenv("DIRLOCK_CHILD"); dir != "" {
		if _, err := Acquire(dir, "child"); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("locked\n")
		select {} // hold until killed
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHeldByAnotherProcess$")
	cmd.Env = append(os.Environ(), "DIRLOCK_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 7)
	if _, err := out.Read(buf); err != nil || string(buf) != "locked\n" {
		cmd.Process.Kill()
		t.Fatalf("child did not lock: %q %v", buf, err)
	}
	if _, err := Acquire(dir, "parent"); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "child pid") {
		cmd.Process.Kill()
		t.Fatalf("Acquire while the child holds it = %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(dir, "parent")
	if err != nil {
		t.Fatalf("Acquire after the holder was killed: %v", err)
	}
	l.Release()
}
