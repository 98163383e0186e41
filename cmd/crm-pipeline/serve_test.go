package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestServeRefusesOpenNonLoopbackWithoutTokens(t *testing.T) {
	cfg, err := parseServe([]string{"--http", "0.0.0.0:0", "--data", t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	err = serve(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("serve on 0.0.0.0 without tokens: %v", err)
	}
	for addr, want := range map[string]bool{"127.0.0.1:9402": true, "[::1]:80": true, "localhost:1": true,
		"0.0.0.0:9402": false, ":9402": false, "10.1.2.3:9402": false} {
		if got := loopbackOnly(addr); got != want {
			t.Errorf("loopbackOnly(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestEnvFlags(t *testing.T) {
	t.Setenv("CRM_PIPELINE_REPORTING_CURRENCY", "EUR")
	t.Setenv("CRM_PIPELINE_PARTITIONS", "3")
	cfg, err := parseServe([]string{"--partitions", "5"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ReportingCurrency != "EUR" || cfg.Partitions != 5 {
		t.Fatalf("env/flag precedence: %+v", cfg)
	}
}

// Tokens on a non-loopback address need TLS (or the operator's --insecure-http); without
// tokens only loopback may be bound.
func TestHTTPExposureRules(t *testing.T) {
	for _, c := range []struct {
		args   []string
		tokens bool
		ok     bool
	}{
		{[]string{"--http", "127.0.0.1:9402"}, false, true},
		{[]string{"--http", "0.0.0.0:9402"}, false, false},
		{[]string{"--http", "0.0.0.0:9402"}, true, false},
		{[]string{"--http", "0.0.0.0:9402", "--insecure-http"}, true, true},
		{[]string{"--http", "0.0.0.0:9402", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, true, true},
		{[]string{"--http", "127.0.0.1:9402"}, true, true},
	} {
		cfg, err := parseServe(c.args, io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if err := checkHTTPExposure(cfg, c.tokens); (err == nil) != c.ok {
			t.Errorf("%v tokens=%v: %v, want ok=%v", c.args, c.tokens, err, c.ok)
		}
	}
	if _, err := parseServe([]string{"--tls-cert", "c.pem"}, io.Discard); err == nil {
		t.Error("--tls-cert without --tls-key accepted")
	}
}

// The connection caps leave the stores and Kafka their descriptors under any open-file limit.
func TestConnectionCapsFitTheFileLimit(t *testing.T) {
	for _, c := range []struct {
		limit                uint64
		partitions, max, per int
		wantMax, wantPer     int
	}{
		{1 << 20, 8, 4096, 1024, 4096, 1024},                                    // a roomy limit changes nothing
		{4096, 8, 4096, 1024, 4096 - (51*32 + 256), (4096 - (51*32 + 256)) / 4}, // 2,208 left for HTTP, a quarter per client as asked
		{1024, 8, 4096, 1024, minConnections, minConnections / 4},               // below the reserve: the floor
		{1024, 1, 480, 1000, 480, 480},                                          // under the limit: per-client only bounded by the total
		{2400, 1, 4096, 4096, 2400 - (9*32 + 256), 2400 - (9*32 + 256)},         // per-client never above the total
		{1 << 20, 8, 0, 0, 0, 0},                                                // no cap asked for: none
	} {
		gotMax, gotPer, _ := connectionCaps(c.limit, c.partitions, c.max, c.per)
		if gotMax != c.wantMax || gotPer != c.wantPer {
			t.Errorf("limit %d, %d partitions, caps %d/%d: got %d/%d, want %d/%d", c.limit, c.partitions, c.max, c.per, gotMax, gotPer, c.wantMax, c.wantPer)
		}
	}
}
