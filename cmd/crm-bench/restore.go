package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/state"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// --- scenario 4: restore ------------------------------------------------------------------

func (b *bench) bigFixture(ctx context.Context) (*fixtureEnv, error) {
	if b.big != nil {
		return b.big, nil
	}
	n := b.size("restore", 1_000_000, 2000)
	env, err := b.newEnv("big")
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	fx, err := b.buildFixture(ctx, env, n, 5)
	if err != nil {
		env.close(b.keep)
		return nil, err
	}
	b.note("restore: fixture of %d opportunities (%d buckets; %.0f MiB of aggregates, %.0f MiB of buckets) written to the changelogs in %s",
		fx.opps, fx.bucketCount, float64(fx.aggBytes)/(1<<20), float64(fx.bucketBytes)/(1<<20), time.Since(t0).Round(time.Millisecond))
	b.big = &fixtureEnv{env: env, fx: fx}
	return b.big, nil
}

func (b *bench) restore(ctx context.Context, keepForMemory bool) error {
	big, err := b.bigFixture(ctx)
	if err != nil {
		return err
	}
	if !keepForMemory {
		defer func() { big.env.close(b.keep); b.big = nil }()
	}
	env, fx := big.env, big.fx
	hwm, err := env.hwms(topics.OpportunityTable)
	if err != nil {
		return err
	}
	records := sum64(hwm)
	cache := pebble.NewCache(int64(b.cacheMiB) << 20)
	defer cache.Unref()
	opts := state.Options{Cache: cache, Logger: b.log, Validate: func(topic string, partition int32) (state.Expect, error) {
		f, err := topics.Facts(env.client, topic, partition)
		if err != nil {
			return state.Expect{}, err
		}
		return state.Expect{TopicID: f.TopicID, HighWaterMark: f.HighWaterMark}, nil
	}}
	dir := filepath.Join(env.dir, "restore-pebble")
	pebbleDur, err := b.timeViewRestore(ctx, env, state.NewBuilder(dir, opts), "pebble")
	if err != nil {
		return fmt.Errorf("pebble: %w", err)
	}
	pebbleDisk := dirSize(dir)
	if !b.keep {
		_ = os.RemoveAll(dir)
	}
	// The same with --memtable-mib 32: fewer, larger flushes and far less L0 compaction while
	// loading, for up to 32 MiB more memory per busy partition.
	bigOpts := opts
	bigOpts.MemTableSize = 32 << 20
	dir32 := filepath.Join(env.dir, "restore-pebble-memtable32")
	bigDur, err := b.timeViewRestore(ctx, env, state.NewBuilder(dir32, bigOpts), "pebble-memtable32")
	if err != nil {
		return fmt.Errorf("pebble with 32 MiB memtables: %w", err)
	}
	if !b.keep {
		_ = os.RemoveAll(dir32)
	}
	ldir := filepath.Join(env.dir, "restore-leveldb")
	levelDur, err := b.timeViewRestore(ctx, env, storage.DefaultBuilder(ldir), "leveldb")
	if err != nil {
		return fmt.Errorf("leveldb: %w", err)
	}
	levelDisk := dirSize(ldir)
	if !b.keep {
		_ = os.RemoveAll(ldir)
	}
	b.note("restore: %d records (%d opportunities) into a goka view of %s: pebble (state.NewBuilder) %s, %.0f MiB on disk; goka's default LevelDB %s, %.0f MiB",
		records, fx.opps, topics.OpportunityTable, pebbleDur.Round(time.Millisecond), float64(pebbleDisk)/(1<<20), levelDur.Round(time.Millisecond), float64(levelDisk)/(1<<20))
	b.report("restore", float64(records)/pebbleDur.Seconds(), "records/s", float64(records)/levelDur.Seconds())
	b.report("restore.ready", pebbleDur.Seconds(), "s", levelDur.Seconds())
	b.note("restore: with --memtable-mib 32 %s", bigDur.Round(time.Millisecond))
	b.report("restore.memtable32", float64(records)/bigDur.Seconds(), "records/s", float64(records)/levelDur.Seconds())
	return nil
}

// timeViewRestore times a goka view of the opportunity table, with the service's view
// options and the given storage, from creation until it has recovered every partition.
func (b *bench) timeViewRestore(ctx context.Context, env *benchEnv, builder storage.Builder, name string) (time.Duration, error) {
	client := topics.ClientOptions{Brokers: env.brokers}
	runtime.GC()
	start := time.Now()
	v, err := goka.NewView(env.brokers, goka.Table(topics.OpportunityTable), codecs.AggregateCodec{},
		goka.WithViewHasher(topics.Hasher()),
		goka.WithViewStorageBuilder(builder),
		goka.WithViewConsumerSaramaBuilder(topics.ConsumerBuilder(client)),
		goka.WithViewTopicManagerBuilder(topics.TopicManagerBuilder(client, 1)),
		goka.WithViewLogger(topics.GokaLogger(b.log, "bench-view-"+name)),
		goka.WithViewClientID("crm-bench-view-"+name),
	)
	if err != nil {
		return 0, err
	}
	vctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go pprof.Do(vctx, pprof.Labels("bench", "restore-"+name), func(ctx context.Context) { done <- v.Run(ctx) })
	deadline := time.After(20 * time.Minute)
	for !v.Recovered() {
		select {
		case err := <-done:
			cancel()
			return 0, fmt.Errorf("view stopped before recovering: %v", err)
		case <-deadline:
			cancel()
			<-done
			return 0, errors.New("view did not recover within 20 minutes")
		case <-time.After(5 * time.Millisecond):
		}
	}
	d := time.Since(start)
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return 0, fmt.Errorf("view run: %w", err)
	}
	return d, nil
}
