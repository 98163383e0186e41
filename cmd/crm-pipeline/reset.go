package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/crm-pipeline/crm-pipeline/app"
)

// runResetAnalytics parses the flags of `crm-pipeline reset-analytics` and rebuilds the
// analytics table from the opportunity table and the history topic (app.ResetAnalytics),
// with the service stopped.
func runResetAnalytics(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reset-analytics", flag.ContinueOnError)
	brokers := fs.String("brokers", "", "comma-separated Kafka bootstrap brokers; empty: the embedded broker of --data (the running one on --embedded-broker, else its log opened here)")
	var cfg app.ResetConfig
	fs.StringVar(&cfg.Data, "data", "./data", "serve's --data: where the embedded broker keeps its log")
	fs.StringVar(&cfg.EmbeddedBroker, "embedded-broker", "127.0.0.1:9092", "serve's --embedded-broker, where a running embedded broker listens")
	fs.DurationVar(&cfg.Wait, "wait", 30*time.Second, "how long to wait for the service's consumer groups to have no member left")
	fs.BoolVar(&cfg.Force, "force", false, "rebuild even while the service's consumer groups have members (stale members only: a running service overwrites the rebuilt buckets)")
	fs.BoolVar(&cfg.DryRun, "dry-run", false, "compute and report, write nothing")
	fs.BoolVar(&cfg.AllowIncompleteHistory, "allow-incomplete-history", false, "rebuild a deal whose history does not reach back to version 1 from its state alone (its funnel and changes entries are lost) instead of refusing")
	sec := addKafkaSecurityFlags(fs)
	lf := addLogFlags(fs)
	if err := parseFlags(fs, args, stdout, stderr); err != nil {
		return err
	}
	logger, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("reset-analytics: unexpected arguments %q", fs.Args())
	}
	cfg.Brokers = splitList(*brokers)
	if err := sec.apply(&cfg.Kafka); err != nil {
		return fmt.Errorf("reset-analytics: %w", err)
	}
	_, err = app.ResetAnalytics(ctx, cfg, logger, stdout)
	return err
}
