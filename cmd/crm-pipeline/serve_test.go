package main

import (
	"io"
	"testing"
)

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

// The exposure flags parse into the configuration app.Run checks (app's TestHTTPExposureRules
// holds the rules themselves); a certificate without its key is refused here.
func TestHTTPExposureRules(t *testing.T) {
	for _, args := range [][]string{
		{"--http", "127.0.0.1:9402"},
		{"--http", "0.0.0.0:9402"},
		{"--http", "0.0.0.0:9402", "--insecure-http"},
		{"--http", "0.0.0.0:9402", "--tls-cert", "c.pem", "--tls-key", "k.pem"},
	} {
		if _, err := parseServe(args, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := parseServe([]string{"--tls-cert", "c.pem"}, io.Discard); err == nil {
		t.Error("--tls-cert without --tls-key accepted")
	}
}

func TestStreamFlags(t *testing.T) {
	cfg, err := parseServe(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxStreams != 256 || cfg.StreamReplay != 10000 {
		t.Fatalf("defaults: --max-streams %d --stream-replay %d", cfg.MaxStreams, cfg.StreamReplay)
	}
	t.Setenv("CRM_PIPELINE_MAX_STREAMS", "2")
	if cfg, err = parseServe([]string{"--stream-replay", "500"}, io.Discard); err != nil || cfg.MaxStreams != 2 || cfg.StreamReplay != 500 {
		t.Fatalf("env and flag: %+v, %v", cfg, err)
	}
	for _, args := range [][]string{{"--max-streams", "0"}, {"--stream-replay", "0"}} {
		if _, err := parseServe(args, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
