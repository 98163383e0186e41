package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// ResetConfig is the configuration of `crm-pipeline reset-analytics`.
type ResetConfig struct {
	// Brokers are the Kafka bootstrap brokers (--brokers); empty means the embedded broker of
	// Data: the one listening on EmbeddedBroker if any answers there, else one started here on
	// <Data>/broker for the time of the reset.
	Brokers []string
	// Data is serve's --data, where the embedded broker keeps its log.
	Data string
	// EmbeddedBroker is serve's --embedded-broker, where a running embedded broker listens.
	EmbeddedBroker string
	// Kafka is TLS and SASL for Brokers (or SASL for a running embedded broker; its
	// credentials file under Data is used when none are given).
	Kafka topics.ClientOptions
	// Wait is how long to wait for the service's consumer groups to have no member left
	// (a stopped instance with static membership stays a member for the session timeout).
	Wait time.Duration
	// Force rebuilds even while the groups have members. The running aggregator would then
	// overwrite rebuilt buckets with its own, so it is for a group left with stale members,
	// not for a running service.
	Force bool
	// DryRun computes and reports, and writes nothing.
	DryRun bool
	// AllowIncompleteHistory rebuilds a deal whose history cannot be replayed from version 1
	// from its state alone (forecast and win/loss; its funnel and changes entries are lost),
	// instead of refusing the whole reset.
	AllowIncompleteHistory bool
}

// ResetReport says what a reset read and wrote.
type ResetReport struct {
	// Opportunities are the deals folded; PreviousLayout of them had their history inside
	// the state record (HistoryOnTopic false); Events is the number of events replayed.
	Opportunities, PreviousLayout, Events int
	// Incomplete are the deals rebuilt from their state alone (AllowIncompleteHistory).
	Incomplete []string
	// Buckets were written with values, Emptied are existing keys the new derivation has no
	// values for, written as buckets without values (guard only).
	Buckets, Emptied int
	// Guard is the Applied guard every written bucket carries: per commands partition, the
	// highest input position the opportunity table records.
	Guard map[string]int64
	// Written is false for a dry run.
	Written bool
}

// resetBatch is how many bucket records one produce request carries.
const resetBatch = 500

// ResetAnalytics rebuilds the analytics table (crm-pipeline-analytics-table) from the
// opportunity table and the history topic, in the spirit of Kafka Streams' application reset
// tool: for a deployment whose buckets were summed under a previous derivation (such as the
// rule before every report placed a closed deal on its close date), or after any later change
// of the derivation. Run it with the service stopped; it refuses while the consumer groups of
// the opportunity processor or the aggregator have members, unless cfg.Force.
//
// For every opportunity in the table it replays its whole history (the history topic's
// events, merged with the events the state record keeps, which for a state of the previous
// layout are the whole history) with the processor's own derivation (analytics.Rebuild), and
// checks that the replay ends in the stored state. It then writes every rebuilt bucket, and
// a bucket without values for every existing key the rebuild does not have (rather than a
// tombstone, so that its guard stays), each with the Applied guard set to the highest input
// position per commands partition that the table records: deltas of those commands still on
// crm-pipeline-analytics-deltas, computed under the old rule, are then skipped by the
// aggregator as re-emissions, and every later command's deltas are applied.
//
// The local caches need nothing: the aggregator's table and the analytics view recover their
// partitions from their stored offset to the topic's end when the service starts, so they
// read the records written here (and a cache that did not stop cleanly is rebuilt whole).
// The writes are not atomic: a reset that stops midway must be run again before the service
// starts. It holds the encoded history of every deal in memory while it runs.
func ResetAnalytics(ctx context.Context, cfg ResetConfig, log *slog.Logger, stdout io.Writer) (ResetReport, error) {
	var rep ResetReport
	opts, closeBroker, err := resetBrokers(cfg, log)
	if err != nil {
		return rep, err
	}
	defer closeBroker()
	opts.ClientID = "crm-pipeline-reset-analytics"
	client, err := connect(ctx, opts)
	if err != nil {
		return rep, err
	}
	defer client.Close()
	for _, t := range []string{topics.OpportunityTable, topics.History, topics.AnalyticsTable} {
		if _, err := topics.Partitions(client, t); err != nil {
			return rep, fmt.Errorf("reset-analytics: topic %s: %w", t, err)
		}
	}
	if err := waitGroupsIdle(ctx, client, cfg, log); err != nil {
		return rep, err
	}

	// The opportunity table: the latest record per deal, and per partition (= commands
	// partition) the highest position applied.
	aggs := map[string]domain.Aggregate{}
	rep.Guard = map[string]int64{}
	err = readLatest(ctx, client, topics.OpportunityTable, func(p int32, key string, value []byte) error {
		if len(value) == 0 {
			delete(aggs, key)
			return nil
		}
		agg, err := codecs.DecodeAggregate(value)
		if err != nil {
			return fmt.Errorf("opportunity %q: %w", key, err)
		}
		aggs[key] = agg
		if agg.Position >= 0 {
			src := strconv.Itoa(int(p))
			if cur, ok := rep.Guard[src]; !ok || agg.Position > cur {
				rep.Guard[src] = agg.Position
			}
		}
		return nil
	})
	if err != nil {
		return rep, err
	}

	// The history topic, kept encoded until its deal is folded.
	history := map[string]map[int64][]byte{}
	err = readLatest(ctx, client, topics.History, func(_ int32, key string, value []byte) error {
		id, v, ok := topics.ParseHistoryKey(key)
		if !ok {
			return nil
		}
		if _, known := aggs[id]; !known {
			return nil
		}
		if history[id] == nil {
			history[id] = map[int64][]byte{}
		}
		if len(value) == 0 {
			delete(history[id], v)
		} else {
			history[id][v] = value
		}
		return nil
	})
	if err != nil {
		return rep, err
	}

	r := analytics.NewRebuild()
	ids := make([]string, 0, len(aggs))
	for id, agg := range aggs {
		if agg.State.Version > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for _, id := range ids {
		agg := aggs[id]
		events, err := historyOf(id, agg, history[id])
		if err != nil {
			return rep, err
		}
		delete(history, id)
		if !agg.HistoryOnTopic {
			rep.PreviousLayout++
		}
		if events == nil {
			rep.Incomplete = append(rep.Incomplete, id)
			if cfg.AllowIncompleteHistory {
				r.AddState(agg.State)
				rep.Opportunities++
			}
			continue
		}
		st, err := r.AddHistory(events)
		if err != nil {
			return rep, fmt.Errorf("reset-analytics: opportunity %q: %w", id, err)
		}
		if diff := stateDiff(st, agg.State); diff != "" {
			return rep, fmt.Errorf("reset-analytics: opportunity %q: its replayed history differs from its stored state (%s); nothing written", id, diff)
		}
		rep.Opportunities++
		rep.Events += len(events)
	}
	if len(rep.Incomplete) > 0 && !cfg.AllowIncompleteHistory {
		shown := rep.Incomplete[:min(10, len(rep.Incomplete))]
		return rep, fmt.Errorf("reset-analytics: %d opportunities have no complete history (versions 1..n) on %s or in their state, e.g. %s; nothing written (--allow-incomplete-history rebuilds them from their state alone, without their funnel and changes entries)",
			len(rep.Incomplete), topics.History, strings.Join(shown, ", "))
	}

	existing := map[string]bool{}
	err = readLatest(ctx, client, topics.AnalyticsTable, func(_ int32, key string, value []byte) error {
		existing[key] = len(value) > 0
		return nil
	})
	if err != nil {
		return rep, err
	}
	guard := rep.Guard
	if len(guard) == 0 {
		guard = nil
	}
	buckets := r.Buckets(guard)
	var msgs []*sarama.ProducerMessage
	add := func(key string, b analytics.Bucket) error {
		v, err := codecs.EncodeBucket(b)
		if err != nil {
			return fmt.Errorf("reset-analytics: encode bucket %s: %w", key, err)
		}
		if !topics.FitsRecord(key, v, nil) {
			return fmt.Errorf("reset-analytics: bucket %s is %d bytes, more than a record may be", key, len(v))
		}
		msgs = append(msgs, &sarama.ProducerMessage{Topic: topics.AnalyticsTable, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(v)})
		return nil
	}
	keys := make([]string, 0, len(buckets))
	for k := range buckets {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := add(k, buckets[k]); err != nil {
			return rep, err
		}
	}
	rep.Buckets = len(keys)
	var emptied []string
	for k, live := range existing {
		if _, ok := buckets[k]; !ok && live {
			emptied = append(emptied, k)
		}
	}
	slices.Sort(emptied)
	for _, k := range emptied {
		if err := add(k, analytics.Bucket{Applied: guard}); err != nil {
			return rep, err
		}
	}
	rep.Emptied = len(emptied)

	if !cfg.DryRun {
		p, err := topics.NewSyncProducer(opts)
		if err != nil {
			return rep, err
		}
		for i := 0; i < len(msgs); i += resetBatch {
			if err := ctx.Err(); err != nil {
				p.Close()
				return rep, fmt.Errorf("reset-analytics: interrupted after %d of %d records (run it again before starting the service): %w", i, len(msgs), err)
			}
			if err := p.SendMessages(msgs[i:min(i+resetBatch, len(msgs))]); err != nil {
				p.Close()
				return rep, fmt.Errorf("reset-analytics: write %s after %d of %d records (run it again before starting the service): %w", topics.AnalyticsTable, i, len(msgs), err)
			}
		}
		if err := p.Close(); err != nil {
			return rep, fmt.Errorf("reset-analytics: close producer: %w", err)
		}
		rep.Written = true
	}
	printReset(stdout, rep, cfg)
	return rep, nil
}

// resetBrokers resolves where the reset talks to: the given brokers, a running embedded
// broker, or the embedded broker's log opened here (closed by the returned function).
func resetBrokers(cfg ResetConfig, log *slog.Logger) (topics.ClientOptions, func(), error) {
	opts := cfg.Kafka
	if len(cfg.Brokers) > 0 {
		opts.Brokers = cfg.Brokers
		return opts, func() {}, nil
	}
	if opts.SASLUser == "" {
		// The embedded broker of a service with tokens requires SASL with these.
		if c, err := topics.LoadCredentials(filepath.Join(cfg.Data, "broker", topics.CredentialsFile)); err == nil {
			opts.SASLUser, opts.SASLPassword = c.User, c.Password
		}
	}
	if cfg.EmbeddedBroker != "" {
		if conn, err := net.DialTimeout("tcp", cfg.EmbeddedBroker, time.Second); err == nil {
			conn.Close()
			log.Info("reset-analytics: using the running embedded broker", "addr", cfg.EmbeddedBroker)
			opts.Brokers = []string{cfg.EmbeddedBroker}
			return opts, func() {}, nil
		}
	}
	dir := filepath.Join(cfg.Data, "broker")
	if _, err := os.Stat(dir); err != nil {
		return opts, nil, fmt.Errorf("reset-analytics: no --brokers, nothing listens on %s and there is no embedded broker log: %w", cfg.EmbeddedBroker, err)
	}
	// Only this process reaches it: loopback, a free port, no SASL needed.
	b, err := topics.StartBroker(topics.BrokerOptions{DataDir: dir, Listen: "127.0.0.1:0", Logger: log})
	if err != nil {
		return opts, nil, err
	}
	log.Info("reset-analytics: embedded broker started on its log", "data", dir, "addr", b.Addr())
	opts.Brokers = []string{b.Addr()}
	opts.SASLUser, opts.SASLPassword = "", ""
	return opts, b.Close, nil
}

// waitGroupsIdle waits up to cfg.Wait for the consumer groups of the opportunity processor
// and the aggregator to have no member: a running aggregator would go on writing buckets of
// its own over the rebuilt ones, and a running processor emitting deltas the guard does not
// cover. With cfg.Force it only warns.
func waitGroupsIdle(ctx context.Context, client sarama.Client, cfg ResetConfig, log *slog.Logger) error {
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		return fmt.Errorf("reset-analytics: cluster admin: %w", err)
	}
	deadline := time.Now().Add(cfg.Wait)
	logged := false
	for {
		busy, err := activeGroups(admin)
		switch {
		case err == nil && len(busy) == 0:
			return nil
		case cfg.Force:
			log.Warn("reset-analytics: --force: rebuilding although the service's consumer groups may be active", "groups", busy, "err", err)
			return nil
		case time.Now().After(deadline):
			if err != nil {
				return fmt.Errorf("reset-analytics: cannot tell whether the service is stopped: %w (--force rebuilds anyway)", err)
			}
			return fmt.Errorf("reset-analytics: the service is running: %s; stop every `crm-pipeline serve` first (a stopped instance with static membership leaves the group after the 10 s session timeout), or pass --force", strings.Join(busy, "; "))
		}
		if !logged {
			log.Info("reset-analytics: waiting for the service's consumer groups to empty", "groups", busy, "wait", cfg.Wait)
			logged = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// activeGroups describes the service's consumer groups and lists those with members.
func activeGroups(admin sarama.ClusterAdmin) ([]string, error) {
	groups := []string{topics.OpportunityGroup, topics.AnalyticsGroup}
	desc, err := admin.DescribeConsumerGroups(groups)
	if err != nil {
		return nil, fmt.Errorf("describe consumer groups %v: %w", groups, err)
	}
	var busy []string
	for _, g := range desc {
		if g.Err != sarama.ErrNoError && !errors.Is(g.Err, sarama.ErrGroupIDNotFound) {
			return nil, fmt.Errorf("describe consumer group %s: %w", g.GroupId, g.Err)
		}
		if len(g.Members) == 0 {
			continue
		}
		var who []string
		for _, m := range g.Members {
			who = append(who, m.ClientId+"@"+m.ClientHost)
		}
		slices.Sort(who)
		busy = append(busy, fmt.Sprintf("group %s has %d member(s) (%s)", g.GroupId, len(g.Members), strings.Join(who, ", ")))
	}
	return busy, nil
}

// readLatest calls fn for every record of topic, partition by partition, from the oldest
// offset to the high-water mark as it was when the partition was started: a compacted topic
// read whole, whose later records of a key replace the earlier ones.
func readLatest(ctx context.Context, client sarama.Client, topic string, fn func(partition int32, key string, value []byte) error) error {
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		return fmt.Errorf("reset-analytics: consumer: %w", err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		return fmt.Errorf("reset-analytics: partitions of %s: %w", topic, err)
	}
	for _, p := range parts {
		hwm, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			return fmt.Errorf("reset-analytics: end of %s/%d: %w", topic, p, err)
		}
		first, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			return fmt.Errorf("reset-analytics: start of %s/%d: %w", topic, p, err)
		}
		if hwm <= first {
			continue
		}
		if err := readPartition(ctx, consumer, topic, p, first, hwm, fn); err != nil {
			return err
		}
	}
	return nil
}

func readPartition(ctx context.Context, consumer sarama.Consumer, topic string, p int32, first, hwm int64, fn func(int32, string, []byte) error) error {
	pc, err := consumer.ConsumePartition(topic, p, first)
	if err != nil {
		return fmt.Errorf("reset-analytics: read %s/%d: %w", topic, p, err)
	}
	defer pc.Close()
	for {
		select {
		case m := <-pc.Messages():
			if err := fn(p, string(m.Key), m.Value); err != nil {
				return fmt.Errorf("reset-analytics: %s/%d offset %d: %w", topic, p, m.Offset, err)
			}
			if m.Offset >= hwm-1 {
				return nil
			}
		case err := <-pc.Errors():
			return fmt.Errorf("reset-analytics: read %s/%d: %w", topic, p, err)
		case <-time.After(30 * time.Second):
			return fmt.Errorf("reset-analytics: read %s/%d: no record for 30 s before offset %d", topic, p, hwm)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// historyOf is a deal's history at versions 1..its state's version, from the history topic
// and the events its state record keeps (a state of the previous layout keeps all of them),
// or nil when a version is missing from both. Events after the state's version (written
// before a state write a crash lost) are left out: the table is what the processor goes on
// from.
func historyOf(id string, agg domain.Aggregate, onTopic map[int64][]byte) ([]domain.Event, error) {
	byVersion := make(map[int64]domain.Event, len(onTopic)+len(agg.Events))
	for v, raw := range onTopic {
		if v > agg.State.Version {
			continue
		}
		e, err := codecs.DecodeEvent(raw)
		if err != nil {
			return nil, fmt.Errorf("reset-analytics: history of %q version %d: %w", id, v, err)
		}
		byVersion[v] = e
	}
	for _, e := range agg.Events {
		if _, ok := byVersion[e.Version]; !ok && e.Version <= agg.State.Version {
			byVersion[e.Version] = e
		}
	}
	out := make([]domain.Event, 0, agg.State.Version)
	for v := int64(1); v <= agg.State.Version; v++ {
		e, ok := byVersion[v]
		if !ok {
			return nil, nil
		}
		out = append(out, e)
	}
	return out, nil
}

// stateDiff names the fields the analytics read in which a replayed state differs from the
// stored one ("" when none): the rebuild must reflect what the table holds.
func stateDiff(got, want domain.Opportunity) string {
	var diffs []string
	check := func(name string, same bool) {
		if !same {
			diffs = append(diffs, name)
		}
	}
	check("version", got.Version == want.Version)
	check("pipelineId", got.PipelineID == want.PipelineID)
	check("ownerId", got.OwnerID == want.OwnerID)
	check("stageId", got.StageID == want.StageID)
	check("status", got.Status == want.Status)
	check("amount", got.Amount == want.Amount && got.Currency == want.Currency)
	check("closeDate", got.CloseDate == want.CloseDate)
	check("probability", got.Probability == want.Probability && got.ForecastCategory == want.ForecastCategory)
	check("createdAt", got.CreatedAt.UnixMilli() == want.CreatedAt.UnixMilli())
	check("lossReason", got.LossReason == want.LossReason && got.Competitor == want.Competitor)
	return strings.Join(diffs, ", ")
}

// printReset writes the report for the operator.
func printReset(w io.Writer, rep ResetReport, cfg ResetConfig) {
	srcs := make([]string, 0, len(rep.Guard))
	for s := range rep.Guard {
		srcs = append(srcs, s)
	}
	slices.SortFunc(srcs, func(a, b string) int {
		x, _ := strconv.Atoi(a)
		y, _ := strconv.Atoi(b)
		return x - y
	})
	var guard []string
	for _, s := range srcs {
		guard = append(guard, fmt.Sprintf("%s:%d", s, rep.Guard[s]))
	}
	verb := "wrote"
	if !rep.Written {
		verb = "would write (dry run)"
	}
	fmt.Fprintf(w, "reset-analytics: folded %d opportunities (%d events; %d of the previous layout; %d from their state alone)\n",
		rep.Opportunities, rep.Events, rep.PreviousLayout, len(rep.Incomplete))
	fmt.Fprintf(w, "reset-analytics: %s %d buckets and %d emptied keys to %s, guarded at commands positions %s\n",
		verb, rep.Buckets, rep.Emptied, topics.AnalyticsTable, strings.Join(guard, " "))
	if rep.Written {
		fmt.Fprintf(w, "reset-analytics: done; the service's local analytics caches under %s read the new buckets when it starts\n", filepath.Join(cfg.Data, "state"))
	}
}
