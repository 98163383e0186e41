package main

import (
	"bytes"
	"context"
	"math"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchLine is the format every measured figure of crm-bench is printed in.
var benchLine = regexp.MustCompile(`^BENCH (\S+) value=(\S+) unit=(\S+) baseline=(\S+) ratio=(\S+)$`)

// TestBenchSmoke runs every scenario of crm-bench at a tiny scale and checks the
// harness, not the service's speed: each scenario prints its well-formed BENCH lines with
// positive, finite figures. No thresholds.
func TestBenchSmoke(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	if testing.Short() {
		t.Skip("bench smoke test skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	start := time.Now()
	// The memory scenario runs serve in this process: the test has no crm-pipeline binary at hand.
	err := runBench(ctx, []string{"--scale", "0.001", "--data", t.TempDir(), "--memory-in-process"}, &stdout, &stderr)
	t.Logf("bench took %s:\n%s", time.Since(start).Round(time.Millisecond), stdout.String())
	if err != nil {
		t.Logf("stderr:\n%s", stderr.String())
		t.Fatalf("bench: %v", err)
	}

	got := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		m := benchLine.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("malformed line %q", line)
			continue
		}
		name := m[1]
		if got[name] {
			t.Errorf("%s printed twice", name)
		}
		got[name] = true
		for field, text := range map[string]string{"value": m[2], "baseline": m[4], "ratio": m[5]} {
			v, err := strconv.ParseFloat(text, 64)
			if err != nil || !(v > 0) || math.IsInf(v, 0) {
				t.Errorf("%s: %s %q is not a positive number", name, field, text)
			}
		}
		if m[3] == "" {
			t.Errorf("%s: no unit", name)
		}
	}
	want := []string{"throughput", "restore", "restore.ready", "restore.memtable32", "memory.rss", "memory.disk"}
	for _, path := range []string{"kafka", "http"} {
		for _, p := range []string{"p50", "p95", "p99", "max"} {
			want = append(want, "latency."+path+"."+p)
		}
	}
	for _, lag := range []string{"analytics", "stream"} {
		for _, p := range []string{"p50", "p95", "p99"} {
			want = append(want, "consistency."+lag+"."+p)
		}
	}
	for _, q := range []string{"get", "list", "forecast", "winloss"} {
		want = append(want, "queries."+q+".p99", "queries."+q+".rps")
	}
	for _, name := range want {
		if !got[name] {
			t.Errorf("no BENCH line for %s", name)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d BENCH lines, want %d", len(got), len(want))
	}
}

func TestBenchFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--scale", "0"},
		{"--scale", "-1"},
		{"--scenarios", "nope"},
		{"extra"},
	} {
		var out, errw bytes.Buffer
		if err := runBench(context.Background(), args, &out, &errw); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
