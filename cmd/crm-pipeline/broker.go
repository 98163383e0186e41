package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"

	"github.com/crm-pipeline/crm-pipeline/topics"
)

// runBroker runs the embedded broker alone until ctx ends, so that several serve instances
// (--brokers) can share it, and so that serve can be killed without the broker.
func runBroker(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	data := fs.String("data", "./data", "directory of the broker's log")
	listen := fs.String("listen", "127.0.0.1:9092", "listen address")
	sync := fs.Bool("sync", true, "fsync every produced batch before acknowledging it (false risks acknowledged records on a power cut)")
	compaction := fs.Duration("compaction-interval", topics.DefaultCompactionInterval, "how often the broker compacts table topics (it stalls every client while it does)")
	sasl := fs.Bool("sasl", false, "require SASL/SCRAM-SHA-512 with the credentials in <data>/broker/sasl-credentials (created when missing); needed to listen beyond loopback")
	lf := addLogFlags(fs)
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	var creds *topics.Credentials
	if *sasl {
		c, err := topics.LoadOrCreateCredentials(filepath.Join(*data, "broker", topics.CredentialsFile))
		if err != nil {
			return err
		}
		creds = &c
	}
	b, err := topics.StartBroker(topics.BrokerOptions{DataDir: filepath.Join(*data, "broker"), Listen: *listen, Logger: log,
		CompactionInterval: *compaction, NoSync: !*sync, SASL: creds})
	if err != nil {
		return err
	}
	defer b.Close()
	if lf.stdoutIsJSON() {
		slog.New(slog.NewJSONHandler(stdout, nil)).Info("embedded broker listening on "+b.Addr(), "addr", b.Addr(), "data", filepath.Join(*data, "broker"))
	} else {
		fmt.Fprintf(stdout, "embedded broker listening on %s (data in %s/broker)\n", b.Addr(), *data)
	}
	log.Info("embedded broker started", "addr", b.Addr())
	<-ctx.Done()
	log.Info("embedded broker stopping")
	return nil
}
