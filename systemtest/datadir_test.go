package systemtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
)

// TestSecondProcessOnSameDataRefused: a second serve, or a broker, on the data directory of a
// running serve fails at once with a message naming the holder and touches nothing: the
// first keeps serving its state, its stores are not wiped, and it still stops cleanly.
func TestSecondProcessOnSameDataRefused(t *testing.T) {
	data := t.TempDir()
	args := []string{"serve", "--data", data, "--http", "127.0.0.1:0", "--embedded-broker", "127.0.0.1:0", "--partitions", "4"}
	first := startProc(t, args...)
	s := testkit.Attach(t, "http://"+first.http+"/api/v1")
	s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody("opp-lock"), testkit.Wait), 201)

	for _, second := range [][]string{
		args,
		{"serve", "--data", data, "--http", "127.0.0.1:0", "--brokers", first.broker, "--partitions", "4"},
		{"broker", "--data", data, "--listen", "127.0.0.1:0"},
	} {
		start := time.Now()
		out, err := runCLI(t, second...)
		if err == nil {
			t.Fatalf("%v on a data directory in use exited 0:\n%s", second, out)
		}
		if !strings.Contains(out, "held by crm-pipeline") || !strings.Contains(out, "pid") {
			t.Fatalf("%v: the refusal does not name the holder:\n%s", second, out)
		}
		if strings.Contains(out, "wiping") || strings.Contains(out, "is up") {
			t.Fatalf("%v went on after the refusal:\n%s", second, out)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("%v took %v to refuse", second[:1], d)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "state", "LOCK")); err != nil {
		t.Fatal(err)
	}
	r := s.Do("GET", "/opportunities/opp-lock", nil, nil)
	s.MustStatus(r, 200)
	s.MustStatus(s.Do("PATCH", "/opportunities/opp-lock", map[string]any{"nextStep": "still here"}, testkit.Wait), 200)

	first.stop()
	again := startProc(t, args...)
	if strings.Contains(again.logs.String(), "wiping local processor state") {
		t.Fatalf("the restart after the refused second start wiped the caches:\n%s", again.logs.String())
	}
	s2 := testkit.Attach(t, "http://"+again.http+"/api/v1")
	got := s2.Do("GET", "/opportunities/opp-lock", nil, nil).JSON(t)
	if got["nextStep"] != "still here" {
		t.Fatalf("after the restart: %v", got)
	}
}
