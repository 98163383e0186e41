package app

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
)

func TestServeRefusesOpenNonLoopbackWithoutTokens(t *testing.T) {
	cfg := Config{HTTP: "0.0.0.0:0", Data: t.TempDir()} // serve --http 0.0.0.0:0 --data <tmp>
	err := Run(context.Background(), cfg, slog.New(slog.DiscardHandler), io.Discard)
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

// Tokens on a non-loopback address need TLS (or the operator's --insecure-http); without
// tokens only loopback may be bound. (The flags these configurations come from are parsed by
// cmd/crm-pipeline, whose TestHTTPExposureRules checks that half.)
func TestHTTPExposureRules(t *testing.T) {
	for _, c := range []struct {
		cfg    Config
		tokens bool
		ok     bool
	}{
		{Config{HTTP: "127.0.0.1:9402"}, false, true},
		{Config{HTTP: "0.0.0.0:9402"}, false, false},
		{Config{HTTP: "0.0.0.0:9402"}, true, false},
		{Config{HTTP: "0.0.0.0:9402", InsecureHTTP: true}, true, true},
		{Config{HTTP: "0.0.0.0:9402", TLSCert: "c.pem", TLSKey: "k.pem"}, true, true},
		{Config{HTTP: "127.0.0.1:9402"}, true, true},
	} {
		if err := checkHTTPExposure(c.cfg, c.tokens); (err == nil) != c.ok {
			t.Errorf("%+v tokens=%v: %v, want ok=%v", c.cfg, c.tokens, err, c.ok)
		}
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
