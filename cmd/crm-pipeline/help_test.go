package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
)

func TestHelpOfEveryCommand(t *testing.T) {
	for _, c := range subcommands {
		if c.name == "version" {
			continue
		}
		var out, errOut bytes.Buffer
		args := append(strings.Fields(c.name), "--help")
		if err := run(context.Background(), args, nil, &out, &errOut); err != nil {
			t.Fatalf("%s --help: %v", c.name, err)
		}
		help := out.String()
		for _, want := range []string{"crm-pipeline " + c.name, c.summary, "example:", "crm-pipeline " + strings.Fields(c.name)[0], "-brokers"} {
			if c.name == "broker" && want == "-brokers" {
				want = "-listen"
			}
			if !strings.Contains(help, want) {
				t.Errorf("%s --help lacks %q:\n%s", c.name, want, help)
			}
		}
		if c.description == "" || !strings.Contains(help, strings.SplitN(c.description, "\n", 2)[0]) {
			t.Errorf("%s --help has no description", c.name)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"--help"}, nil, &out, &out); err != nil || !strings.Contains(out.String(), "reset-analytics") {
		t.Fatalf("--help: %v\n%s", err, out.String())
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "version"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{arg}, nil, &out, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(out.String(), "crm-pipeline ") || !strings.Contains(out.String(), "go1.") {
			t.Fatalf("%s printed %q", arg, out.String())
		}
	}
}

func TestBadFlagsPointToHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	err := run(context.Background(), []string{"serve", "--no-such-flag"}, nil, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "crm-pipeline serve --help") {
		t.Fatalf("an unknown flag: %v", err)
	}
	for _, args := range [][]string{{"serve", "--log-format", "xml"}, {"broker", "--log-level", "loud"}} {
		if err := run(context.Background(), args, nil, &out, &errOut); err == nil || !strings.Contains(err.Error(), "--log-") {
			t.Fatalf("%v: %v", args, err)
		}
	}
}

// TestJSONModeKeepsStdoutJSON: with --log-format json (the default) serve's stdout carries
// JSON objects only (the start banner among them), and stderr's log lines are JSON too.
func TestJSONModeKeepsStdoutJSON(t *testing.T) {
	var out, errOut testkit.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--data", t.TempDir(), "--http", "127.0.0.1:0", "--embedded-broker", "127.0.0.1:0",
			"--partitions", "2", "--instance-id", "none"}, nil, &out, &errOut)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "crm-pipeline is up") {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no banner: %s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Stop once ready: this test is about the output, not about a stop in the middle of the
	// start (goka's lookup views of a processor that is still joining open their stores late).
	var banner0 map[string]any
	json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &banner0)
	root := strings.TrimSuffix(fmt.Sprint(banner0["http"]), "/api/v1")
	for !ready(root) {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("not ready: %s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"stdout": out.String(), "stderr": errOut.String()} {
		for line := range strings.SplitSeq(strings.TrimSpace(text), "\n") {
			var v map[string]any
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatalf("%s line is not JSON: %q", name, line)
			}
		}
	}
	var banner map[string]any
	json.Unmarshal([]byte(strings.SplitN(out.String(), "\n", 2)[0]), &banner)
	if !strings.HasPrefix(banner["http"].(string), "http://127.0.0.1:") || banner["firstCommand"] == nil {
		t.Fatalf("banner fields: %v", banner)
	}
}

// ready reports whether the service at root answers /readyz with 200.
func ready(root string) bool {
	resp, err := http.Get(root + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
