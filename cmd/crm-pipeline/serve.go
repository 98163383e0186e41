package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/crm-pipeline/crm-pipeline/app"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/query"
	"github.com/crm-pipeline/crm-pipeline/state"
	"github.com/crm-pipeline/crm-pipeline/topics"
	"github.com/crm-pipeline/crm-pipeline/views"
)

// parseServe turns serve's flags (and their CRM_PIPELINE_* variables) into the service's
// configuration, refusing inconsistent ones before anything starts.
func parseServe(args []string, stderr io.Writer) (app.Config, error) {
	cfg, _, err := parseServeTo(args, io.Discard, stderr)
	return cfg, err
}

// parseServeTo is parseServe with the help's writer, also returning the log flags.
func parseServeTo(args []string, stdout, stderr io.Writer) (app.Config, *logFlags, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	lf := addLogFlags(fs)
	brokers := fs.String("brokers", "", "comma-separated Kafka bootstrap brokers; empty starts the embedded broker")
	cfg := app.Config{Clock: time.Now}
	sec := addKafkaSecurityFlags(fs)
	fs.StringVar(&cfg.Data, "data", "./data", "directory of local state and the embedded broker's log")
	fs.StringVar(&cfg.HTTP, "http", "127.0.0.1:9402", "HTTP listen address")
	fs.StringVar(&cfg.EmbeddedBroker, "embedded-broker", "127.0.0.1:9092", "listen address of the embedded broker")
	fs.DurationVar(&cfg.EmbeddedCompaction, "embedded-compaction-interval", topics.DefaultCompactionInterval, "how often the embedded broker compacts table topics (it stalls every client while it does)")
	embeddedSync := fs.Bool("embedded-sync", true, "the embedded broker fsyncs every produced batch before acknowledging it (false risks acknowledged commands on a power cut)")
	fs.IntVar(&cfg.Partitions, "partitions", 8, "partitions of the topics this service creates")
	fs.StringVar(&cfg.ReportingCurrency, "reporting-currency", "USD", "ISO 4217 currency forecasts are reported in")
	fs.IntVar(&cfg.CacheMiB, "cache-mib", app.DefaultCacheMiB, "pebble block cache shared by all local stores, MiB")
	fs.IntVar(&cfg.MemTableMiB, "memtable-mib", state.DefaultMemTableSize>>20, "cap of each local store's pebble memtable, MiB (larger restores faster and costs up to twice this per busy partition in memory)")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 20*time.Second, "how long a clean stop may take")
	fs.StringVar(&cfg.InstanceID, "instance-id", "", "static consumer-group membership id of this instance (default: host name and a hash of --data); empty string via 'none' disables")
	fs.IntVar(&cfg.MaxConns, "max-connections", 4096, "HTTP connections held open at most; more are closed at accept (0: no cap)")
	fs.IntVar(&cfg.MaxConnsPerClient, "max-connections-per-client", 1024, "HTTP connections held open at most per client IP address (0: no cap)")
	fs.StringVar(&cfg.TokensFile, "tokens-file", "", "file of HTTP bearer tokens, lines '<role> <token> [name]' (roles read, write, admin)")
	fs.StringVar(&cfg.TokenList, "tokens", "", "HTTP bearer tokens as 'role:token[:name],...' (prefer the env var CRM_PIPELINE_TOKENS)")
	allowedHosts := fs.String("allowed-hosts", "", "comma-separated Host names the HTTP API answers besides loopback names ('*': any); default: loopback only without tokens, any with tokens")
	fs.StringVar(&cfg.TLSCert, "tls-cert", "", "PEM certificate (chain) file: serve HTTPS, with HTTP/2 (needs --tls-key)")
	fs.StringVar(&cfg.TLSKey, "tls-key", "", "PEM private key file of --tls-cert")
	fs.BoolVar(&cfg.InsecureHTTP, "insecure-http", false, "allow bearer tokens over plain HTTP on a non-loopback address (behind a TLS-terminating proxy)")
	fs.IntVar(&cfg.MaxStreams, "max-streams", query.DefaultMaxStreams, "live change streams (GET /api/v1/stream) open at once at most; past it 503")
	fs.IntVar(&cfg.StreamReplay, "stream-replay", views.DefaultFeedSize, "the live stream's replay window: the last N changes a client reconnecting with Last-Event-ID can resume from")
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return cfg, lf, err
	}
	cfg.LogFormat = lf.format
	cfg.Brokers = splitList(*brokers)
	cfg.AllowedHosts = splitList(*allowedHosts)
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return cfg, lf, errors.New("--tls-cert and --tls-key go together")
	}
	cfg.EmbeddedNoSync = !*embeddedSync
	if err := sec.apply(&cfg.Kafka); err != nil {
		return cfg, lf, err
	}
	if _, ok := domain.CurrencyExponent(cfg.ReportingCurrency); !ok {
		return cfg, lf, fmt.Errorf("--reporting-currency %q: not an ISO 4217 currency", cfg.ReportingCurrency)
	}
	if cfg.MaxStreams < 1 {
		return cfg, lf, fmt.Errorf("--max-streams %d: want at least 1", cfg.MaxStreams)
	}
	if cfg.StreamReplay < 1 || cfg.StreamReplay > 10_000_000 {
		return cfg, lf, fmt.Errorf("--stream-replay %d: want 1..10000000", cfg.StreamReplay)
	}
	if cfg.Partitions < 1 || cfg.Partitions > 1024 {
		return cfg, lf, fmt.Errorf("--partitions %d: want 1..1024", cfg.Partitions)
	}
	return cfg, lf, nil
}
