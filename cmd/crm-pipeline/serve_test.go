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
