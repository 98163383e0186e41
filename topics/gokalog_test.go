package topics

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
)

func TestGokaLoggerStructuresComposites(t *testing.T) {
	var buf bytes.Buffer
	l := GokaLogger(slog.New(slog.NewJSONHandler(&buf, nil)), "processor")
	l.Printf("Assigned partitions: %v (generation %d)", map[string][]int32{"crm.pipeline.opportunity.commands": {0, 1}}, 3)
	l.Printf("partition %d: %s", 2, "running")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines: %s", len(lines), buf.String())
	}
	var first, second map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(lines[0], "map[") {
		t.Fatalf("a Go map leaked into the log: %s", lines[0])
	}
	arg1, ok := first["arg1"].(map[string]any)
	if !ok || first["arg2"] != 3.0 || first["component"] != "processor" {
		t.Fatalf("structured line = %v", first)
	}
	if parts, ok := arg1["crm.pipeline.opportunity.commands"].([]any); !ok || len(parts) != 2 {
		t.Fatalf("arg1 = %v", arg1)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil || second["msg"] != "partition 2: running" {
		t.Fatalf("scalar line = %v (%v)", second, err)
	}
}
