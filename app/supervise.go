package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
	"unicode/utf8"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/crm-pipeline/crm-pipeline/processors"
	"github.com/crm-pipeline/crm-pipeline/state"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// processorConfig configures a supervised processor. The supervision and the cache lifecycle
// (clean-stop markers, wipes) belong to the application: package processors only builds the
// graphs and their callbacks.
type processorConfig struct {
	Brokers []string
	Client  topics.ClientOptions
	Graph   *goka.GroupGraph
	// StateDir holds this processor's local caches (one pebble DB per partition).
	StateDir string
	// Storage builds the partition stores under StateDir.
	Storage storage.Builder
	Logger  *slog.Logger
	// Restarts counts supervised restarts after a failure.
	OnRestart func(err error)
	// Ready, when set, is called with the processor once it is built, so that callers can
	// watch its state.
	Started func(p *goka.Processor)
	// Trusted, when set, is asked at a clean stop whether the caches may be kept: false (an
	// fsync failed during the run, so pages may be lost) leaves them unmarked, and the next
	// start rebuilds them from the changelog.
	Trusted func() bool
}

// superviseProcessor runs the processor until ctx ends, restarting it with backoff after a failure. goka
// writes the local store before Kafka acknowledges the changelog write, so after anything but
// a clean stop the local caches may be ahead of Kafka: they are wiped and restored from the
// changelog (research/goka-kfake.md §1.4). A clean stop leaves a marker so the next start keeps
// the caches and replays only the tail.
func superviseProcessor(ctx context.Context, cfg processorConfig) error {
	backoff := 500 * time.Millisecond
	for {
		clean, err := state.BeginRun(cfg.StateDir)
		if err != nil {
			return fmt.Errorf("processor %s: %w", cfg.Graph.Group(), err)
		}
		if !clean && !isEmptyDir(cfg.StateDir) {
			cfg.Logger.Warn("no clean-stop marker: wiping local processor state, it will be restored from the changelog",
				"group", cfg.Graph.Group(), "dir", cfg.StateDir)
			if err := state.WipeDir(cfg.StateDir); err != nil {
				return fmt.Errorf("processor %s: %w", cfg.Graph.Group(), err)
			}
		}
		started := time.Now()
		err = runProcessorOnce(ctx, cfg)
		if err == nil && ctx.Err() != nil {
			if cfg.Trusted != nil && !cfg.Trusted() {
				cfg.Logger.Warn("an fsync failed during this run: local processor state left unmarked, it will be rebuilt",
					"group", cfg.Graph.Group())
				return nil
			}
			if merr := state.EndRunClean(cfg.StateDir); merr != nil {
				return fmt.Errorf("processor %s: mark clean stop: %w", cfg.Graph.Group(), merr)
			}
			return nil
		}
		if ctx.Err() != nil {
			return nil // stopping; the caches stay marked unclean and are rebuilt next time
		}
		if err == nil {
			err = errors.New("processor stopped without error")
		}
		cfg.Logger.Error("processor failed; restarting", "group", cfg.Graph.Group(), "err", errText(err), "backoff", backoff)
		if cfg.OnRestart != nil {
			cfg.OnRestart(err)
		}
		if time.Since(started) > time.Minute {
			backoff = 500 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 30*time.Second)
	}
}

// maxLoggedErr bounds the error text of one "processor failed" log line.
const maxLoggedErr = 4 << 10

// errText is err's text for a log line, cut to maxLoggedErr bytes: goka joins the errors of
// every in-flight record, so one failed emit under load can otherwise make a line of megabytes.
func errText(err error) string {
	s := err.Error()
	if len(s) <= maxLoggedErr {
		return s
	}
	cut := maxLoggedErr
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%s… [%d more bytes]", s[:cut], len(s)-cut)
}

// runProcessorOnce builds the processor with the service's Kafka settings and runs it once.
func runProcessorOnce(ctx context.Context, cfg processorConfig) error {
	p, err := goka.NewProcessor(cfg.Brokers, cfg.Graph,
		goka.WithHasher(topics.Hasher()),
		goka.WithStorageBuilder(cfg.Storage),
		goka.WithConsumerGroupBuilder(topics.ConsumerGroupBuilder(cfg.Client)),
		goka.WithConsumerSaramaBuilder(topics.ConsumerBuilder(cfg.Client)),
		goka.WithTopicManagerBuilder(topics.TopicManagerBuilder(cfg.Client, 1)),
		goka.WithProducerBuilder(processors.OrderedProducerBuilder(func() *sarama.Config { return topics.SaramaConfig(cfg.Client) })),
		goka.WithLogger(topics.GokaLogger(cfg.Logger, "processor-"+string(cfg.Graph.Group()))),
		goka.WithClientID("crm-pipeline-"+string(cfg.Graph.Group())),
		goka.WithBackoffResetTimeout(time.Minute),
		goka.WithBackoffBuilder(func() (goka.Backoff, error) {
			return goka.NewSimpleBackoff(500*time.Millisecond, 5*time.Second), nil
		}),
		// Empty and null records reach the callback (and the DLQ) instead of being dropped
		// silently.
		goka.WithNilHandling(goka.NilProcess),
	)
	if err != nil {
		return fmt.Errorf("build processor: %w", err)
	}
	if cfg.Started != nil {
		cfg.Started(p)
	}
	return p.Run(ctx)
}

// isEmptyDir reports whether dir is missing or empty (a first start, nothing to distrust).
func isEmptyDir(dir string) bool {
	entries, err := os.ReadDir(dir)
	return err != nil || len(entries) == 0
}
