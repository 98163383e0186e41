// Package views keeps local replicas (goka views, pebble on disk) of the opportunity table, the
// history, the analytics buckets and the configuration tables, and answers reads from them,
// including read-your-writes waiting for a command's outcome, and keeps the change feed the
// live stream replays from (feed.go). It is the read side of the query service (the gateway
// package is the write side); it writes no topic.
//
// Imports from this module: domain, analytics, codecs, topics (the README's package table, checked by imports_test.go).
package views

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// Config configures the views.
type Config struct {
	Brokers        []string
	Client         topics.ClientOptions
	StorageBuilder storage.Builder // pebble, under the service's data directory
	Logger         *slog.Logger
	Registerer     prometheus.Registerer
	// ReportingCurrency is the default currency of forecasts (--reporting-currency).
	ReportingCurrency string
	// Clock gives "today" for default periods and staleness; nil is time.Now.
	Clock func() time.Time
	// StorageDegraded names what the local disk refuses while stores wait for it (the
	// state.DiskGuard's Degraded); nil means never.
	StorageDegraded func() string
	// Partitions is the partition count of the copartitioned topics (the commands topic's):
	// the position tracker finds a bucket's store by it.
	Partitions int32
	// Feed configures the change feed of the live stream (replay window, epoch); the zero
	// value is DefaultFeedSize changes and a random epoch per process start.
	Feed FeedConfig
}

// Service owns the views.
type Service struct {
	cfg       Config
	opps      *goka.View
	pipelines *goka.View
	fx        *goka.View
	buckets   *goka.View
	history   *goka.View       // the audit trail, keyed <id>|<version>
	accounts  *goka.View       // Customer 360 accounts (raw values: another team's records)
	store     *analytics.Store // in-memory read model of every analytics bucket
	pos       *positions       // what this instance reflects, per commands partition
	commands  commandIndex     // recent command ids -> opportunity, for CommandOutcome
	bucketSt  *bucketStores

	mu      sync.Mutex
	waiters map[string]map[*waiter]struct{}
	sent    sentOffsets // command id -> offset of its record, for Await

	health     readiness
	configured atomic.Bool // the seeded configuration is visible (MarkConfigured)
	feed       *Feed       // the live stream's replay ring (feed.go)

	viewLatency prometheus.Histogram
	updates     prometheus.Counter
}

// New connects the views and emitters (goka connects in the constructors, so the topics must
// exist: provision them first).
func New(cfg Config) (*Service, error) {
	s := &Service{cfg: cfg, waiters: map[string]map[*waiter]struct{}{}, store: analytics.NewStore(), feed: NewFeed(cfg.Feed),
		bucketSt: &bucketStores{partitions: cfg.Partitions}}
	s.pos = newPositions(s.bucketSt.guard)
	s.pos.live = func() bool { return s.feed.Live() }
	s.health = readiness{now: time.Now, running: s.running}
	s.viewLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "crm_command_to_view_seconds",
		Help:    "Time from a command record's timestamp to its effect being applied to this instance's opportunity view.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	})
	s.updates = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crm_view_updates_total", Help: "Opportunity state records applied to the local view.",
	})
	cfg.Registerer.MustRegister(s.viewLatency, s.updates)

	viewOpts := func(name string, cb goka.UpdateCallback) []goka.ViewOption {
		o := []goka.ViewOption{
			goka.WithViewHasher(topics.Hasher()),
			goka.WithViewStorageBuilder(cfg.StorageBuilder),
			goka.WithViewConsumerSaramaBuilder(topics.ConsumerBuilder(cfg.Client)),
			goka.WithViewTopicManagerBuilder(topics.TopicManagerBuilder(cfg.Client, 1)),
			goka.WithViewLogger(topics.GokaLogger(cfg.Logger, "view-"+name)),
			goka.WithViewAutoReconnect(),
			// Reconnect within seconds of the broker's return (goka's default steps 10 s up
			// to 2 min, which keeps reads at 503 long after an outage ended).
			goka.WithViewBackoffBuilder(func() (goka.Backoff, error) {
				return goka.NewSimpleBackoff(500*time.Millisecond, 5*time.Second), nil
			}),
			goka.WithViewBackoffResetTimeout(30 * time.Second),
			goka.WithViewClientID("crm-pipeline-view-" + name),
		}
		if cb != nil {
			o = append(o, goka.WithViewCallback(cb))
		}
		return o
	}
	var err error
	oppOpts := append(viewOpts("opportunities", s.onOpportunity),
		goka.WithViewStorageBuilder(positionBuilder(cfg.StorageBuilder, s.onStoredAtOpen, cfg.Logger)))
	if s.opps, err = goka.NewView(cfg.Brokers, goka.Table(topics.OpportunityTable), new(codec.Bytes), oppOpts...); err != nil {
		return nil, fmt.Errorf("opportunity view: %w", err)
	}
	if s.pipelines, err = goka.NewView(cfg.Brokers, goka.Table(topics.Pipelines), codecs.PipelineCodec{}, viewOpts("pipelines", nil)...); err != nil {
		return nil, fmt.Errorf("pipelines view: %w", err)
	}
	if s.fx, err = goka.NewView(cfg.Brokers, goka.Table(topics.FXRates), codecs.FXRateCodec{}, viewOpts("fx-rates", nil)...); err != nil {
		return nil, fmt.Errorf("fx-rates view: %w", err)
	}
	if s.history, err = goka.NewView(cfg.Brokers, goka.Table(topics.History), new(codec.Bytes), viewOpts("history", nil)...); err != nil {
		return nil, fmt.Errorf("history view: %w", err)
	}
	if s.accounts, err = goka.NewView(cfg.Brokers, goka.Table(topics.Accounts), new(codec.Bytes), viewOpts("accounts", nil)...); err != nil {
		return nil, fmt.Errorf("accounts view: %w", err)
	}
	bucketOpts := append(viewOpts("analytics", nil),
		goka.WithViewStorageBuilder(bucketBuilder(cfg.StorageBuilder, s.store, cfg.Logger, s.bucketSt, s.pos.bucketWritten)))
	if s.buckets, err = goka.NewView(cfg.Brokers, goka.Table(topics.AnalyticsTable), codecs.BucketCodec{}, bucketOpts...); err != nil {
		return nil, fmt.Errorf("analytics view: %w", err)
	}
	return s, nil
}

// Run runs the views until ctx ends; then the change feed is closed, which ends its streams.
func (s *Service) Run(ctx context.Context) error {
	defer s.feed.Close()
	g, gctx := errgroup.WithContext(ctx)
	for _, v := range []*goka.View{s.opps, s.pipelines, s.fx, s.buckets, s.history, s.accounts} {
		g.Go(func() error { return v.Run(gctx) })
	}
	g.Go(func() error { s.publishAnalyticsChanges(gctx); return nil })
	err := g.Wait()
	if err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("views: %w", err)
	}
	return nil
}

// onOpportunity stores a table record in the local view, wakes whoever waits on its key,
// tells the position tracker which command the record reflects and, once the views have
// recovered, puts the change on the live stream's feed.
func (s *Service) onOpportunity(ctx goka.UpdateContext, st storage.Storage, key string, value []byte) error {
	hdr := ctx.Headers()
	// For the change feed: a record that keeps the version is no change. The processor says
	// which it is (HeaderChanged); only a record without the header (a writer before it) costs
	// a read of the value held before.
	changed, marked := hdr[topics.HeaderChanged]
	prev := int64(-1)
	if !marked {
		prev = s.storedVersion(st, key)
	}
	if err := goka.DefaultUpdate(ctx, st, key, value); err != nil {
		return err
	}
	s.updates.Inc()
	if ts, err := strconv.ParseInt(string(hdr[topics.HeaderCommandTime]), 10, 64); err == nil && ts > 0 {
		s.viewLatency.Observe(time.Since(time.Unix(0, ts)).Seconds())
	}
	s.notify(key, value)
	if len(value) == 0 {
		return nil
	}
	agg, err := codecs.DecodeAggregateState(value)
	if err != nil {
		// Stored as it came (a read reports it); a record the tracker cannot read only
		// leaves its position to the next record of the partition.
		s.cfg.Logger.Warn("undecodable opportunity state", "key", key, "err", err)
		return nil
	}
	s.pos.noteRecord(ctx.Partition(), &agg)
	s.commands.note(key, &agg)
	if s.feed != nil && s.feed.Live() {
		switch {
		case !marked:
			s.publishAggregate(prev, &agg)
		case string(changed) == "1":
			s.publishAggregate(0, &agg)
		}
	}
	return nil
}

// onStoredAtOpen takes each record an opportunity store already holds when it opens: a
// restart that kept the local cache replays only the changelog's tail.
func (s *Service) onStoredAtOpen(partition int32, key string, agg *domain.Aggregate) {
	s.pos.seed(partition, agg.Position)
	s.commands.note(key, agg)
}

// WaitPositions blocks until this instance reflects every position in ps, in the opportunity
// view and the analytics read model, or ctx ends (then an error wrapping
// ErrPositionNotReached).
func (s *Service) WaitPositions(ctx context.Context, ps []Position) error {
	return s.pos.wait(ctx, ps)
}

// Ready reports whether this instance should take traffic (/readyz): the views have recovered
// once and no partition of any view has been away from running for longer than readyGrace.
//
// It is also what "degraded" means for /readyz: a partition leaves running whenever it lost
// the broker (goka's auto-reconnect puts it back to connecting on any consumer error, as a
// broker outage or a failing fetch causes) until it is consuming again; while the broker is
// down this turns false within readyGrace plus one fetch round trip (TestFaultBrokerRestart).
// The processors' health is deliberately not part of it: their partitions belong to the
// consumer group, not to this instance (a failing processor leaves the group and another
// member takes over), and their state is in crm_processor_restarts_total and
// crm_consumer_lag_records; a write whose outcome does not arrive in time is answered 202 as
// API.md says.
//
// It is false, too, until MarkConfigured: ready means the seeded configuration (the default
// pipeline) is visible, so a client that waits for /readyz never finds GET
// /pipelines/default answering 404.
func (s *Service) Ready() bool {
	recovered, ready := s.health.poll()
	s.noteRecovered(recovered)
	return ready && s.configured.Load()
}

// MarkConfigured records that the configuration the service seeds at start is visible in
// this instance's views (app.Run calls it once the gateway's EnsureDefaultPipeline returned).
func (s *Service) MarkConfigured() { s.configured.Store(true) }

// Recovered reports whether the views have been complete once. Reads are gated on it, not on
// Ready: before it they would serve partial state, after it the local views hold everything
// up to the last record they consumed, and a reconnecting partition (a moment after every
// start, longer in a broker outage) must not turn reads into 503s.
func (s *Service) Recovered() bool {
	recovered, _ := s.health.poll()
	s.noteRecovered(recovered)
	return recovered
}

// StorageDegraded names what the local disk refuses while stores wait for it, "" otherwise.
func (s *Service) StorageDegraded() string {
	if s.cfg.StorageDegraded == nil {
		return ""
	}
	return s.cfg.StorageDegraded()
}

// running reports whether every partition of every view is in goka's running state now.
func (s *Service) running() bool {
	return s.opps.Recovered() && s.pipelines.Recovered() && s.fx.Recovered() && s.buckets.Recovered() && s.history.Recovered() &&
		s.accounts.Recovered()
}

// WaitReady blocks until the views have recovered and every partition runs (Ready but for
// MarkConfigured, which comes after it), or ctx ends.
func (s *Service) WaitReady(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if _, ready := s.health.poll(); ready {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// Opportunity returns the stored aggregate without its event history, or nil when the
// opportunity does not exist (a key that only holds refusals of commands for an unknown id does
// not exist either). The view keeps raw table values and decodes per read, so a state read
// skips the events block (the recent events, or a previous-layout state's whole history).
func (s *Service) Opportunity(id string) (*domain.Aggregate, error) {
	return s.readAggregate(id, codecs.DecodeAggregateState)
}

// History returns up to limit of the opportunity's events with versions after `after`, oldest
// first, and whether more follow; found is false when the opportunity does not exist.
//
// The events come from the history view (the audit trail, one key per version) merged with the
// recent events the state record keeps: the state is what Prefer: wait waited for, so a read
// right after a write includes the write's event even if the history view is a moment behind;
// a state of the previous layout, not yet migrated, holds its whole history and serves it.
func (s *Service) History(id string, after int64, limit int) (events []domain.Event, more, found bool, err error) {
	agg, err := s.readAggregate(id, codecs.DecodeAggregate)
	if err != nil || agg == nil {
		return nil, false, false, err
	}
	// The history view can lag the state; one deal's versions are contiguous, so a gap
	// between what the view has and what the state knows is the lag, and is waited out briefly.
	for attempt := 0; ; attempt++ {
		events, more, err = s.mergeHistory(id, agg, after, limit)
		if err != nil {
			return nil, false, true, err
		}
		if contiguous(events, more, agg.State.Version) || attempt >= historyCatchUpTries {
			return events, more, true, nil
		}
		time.Sleep(historyCatchUpPause)
	}
}

// How long History waits for a history view that lags the state: 50 × 20 ms.
const (
	historyCatchUpTries = 50
	historyCatchUpPause = 20 * time.Millisecond
)

// mergeHistory is the smallest limit+1 versions after `after` of the history view's events
// and the state's, deduplicated, cut to limit.
func (s *Service) mergeHistory(id string, agg *domain.Aggregate, after int64, limit int) ([]domain.Event, bool, error) {
	start, end := topics.HistoryRange(id, after)
	it, err := s.history.IteratorWithRange(start, end)
	if err != nil {
		return nil, false, fmt.Errorf("history of %s: %w", id, err)
	}
	defer it.Release()
	byVersion := map[int64]domain.Event{}
	taken := 0
	for taken <= limit && it.Next() {
		oid, _, ok := topics.ParseHistoryKey(it.Key())
		if !ok || oid != id {
			continue // another id's key inside the range (an id with the separator in it)
		}
		v, err := it.Value()
		if err != nil {
			return nil, false, fmt.Errorf("history of %s: %w", id, err)
		}
		raw, _ := v.([]byte)
		if len(raw) == 0 {
			continue
		}
		e, err := codecs.DecodeEvent(raw)
		if err != nil {
			return nil, false, fmt.Errorf("history of %s at %s: %w", id, it.Key(), err)
		}
		byVersion[e.Version] = e
		taken++
	}
	if err := it.Err(); err != nil {
		return nil, false, fmt.Errorf("history of %s: %w", id, err)
	}
	for _, e := range agg.Events {
		if e.Version > after {
			byVersion[e.Version] = e
		}
	}
	out := make([]domain.Event, 0, len(byVersion))
	for _, e := range byVersion {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b domain.Event) int { return cmp.Compare(a.Version, b.Version) })
	if len(out) > limit {
		return out[:limit], true, nil
	}
	return out, false, nil
}

// contiguous reports whether events have no gap between them and, unless more follow, reach
// the state's version. A gap before the first is allowed: a deal whose old history was trimmed
// by an earlier layout begins its trail at the oldest version that layout kept.
func contiguous(events []domain.Event, more bool, version int64) bool {
	for i := 1; i < len(events); i++ {
		if events[i].Version != events[i-1].Version+1 {
			return false
		}
	}
	if more || len(events) == 0 {
		return true
	}
	return events[len(events)-1].Version >= version
}

// joinAccount puts the current Customer 360 snapshot of o's account on o, as a Kafka Streams
// table-table join would: an account change shows on every deal of that account at once,
// not only after the deal's next command. The stored state (and its events) keep the snapshot
// the command was decided with; an unknown or malformed account record leaves that one.
func (s *Service) joinAccount(o *domain.Opportunity) {
	if o.AccountID == "" {
		return
	}
	v, err := s.accounts.Get(o.AccountID)
	raw, _ := v.([]byte)
	if err != nil || len(raw) == 0 {
		return
	}
	a, err := codecs.DecodeAccount(raw)
	if err != nil {
		return
	}
	o.Account = &a
}

func (s *Service) readAggregate(id string, decode func([]byte) (domain.Aggregate, error)) (*domain.Aggregate, error) {
	agg, err := s.getAggregate(id, decode)
	if err != nil {
		return nil, fmt.Errorf("read opportunity %s: %w", id, err)
	}
	if agg == nil || agg.State.Version == 0 {
		return nil, nil
	}
	s.joinAccount(&agg.State)
	return agg, nil
}

// getAggregate reads key's table value from the view and decodes it; nil when absent.
func (s *Service) getAggregate(key string, decode func([]byte) (domain.Aggregate, error)) (*domain.Aggregate, error) {
	v, err := s.opps.Get(key)
	if err != nil {
		return nil, err
	}
	raw, _ := v.([]byte)
	return decodeValue(raw, decode)
}

// decodeValue decodes a table value as the view stores it; nil for an empty one (a deletion).
func decodeValue(raw []byte, decode func([]byte) (domain.Aggregate, error)) (*domain.Aggregate, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	agg, err := decode(raw)
	if err != nil {
		return nil, err
	}
	return &agg, nil
}

// ListOpportunities scans the view in key order from the cursor and returns the matching page.
func (s *Service) ListOpportunities(f ListFilter) ([]domain.Opportunity, string, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	it, err := s.opps.Iterator()
	if err != nil {
		return nil, "", fmt.Errorf("iterate opportunities: %w", err)
	}
	defer it.Release()
	after, err := parseCursor(f.Cursor)
	if err != nil {
		return nil, "", err
	}
	if after != "" {
		it.Seek(after)
	}
	var items []domain.Opportunity
	for it.Next() {
		if after != "" && it.Key() <= after {
			continue
		}
		v, err := it.Value()
		if err != nil {
			return nil, "", fmt.Errorf("read opportunity %s: %w", it.Key(), err)
		}
		raw, _ := v.([]byte)
		if len(raw) == 0 {
			continue
		}
		agg, err := codecs.DecodeAggregateState(raw)
		if err != nil {
			return nil, "", fmt.Errorf("decode opportunity %s: %w", it.Key(), err)
		}
		if agg.State.Version == 0 || !f.Matches(agg.State) {
			continue
		}
		if len(items) == limit {
			return items, listCursor(items[len(items)-1].ID), nil
		}
		s.joinAccount(&agg.State)
		items = append(items, agg.State)
	}
	if err := it.Err(); err != nil {
		return nil, "", fmt.Errorf("iterate opportunities: %w", err)
	}
	return items, "", nil
}

// A list cursor is the last id of the page before, base64url after a version letter: opaque
// to clients (they pass nextCursor back as it is), and anything else is refused with
// ErrInvalidCursor rather than read as an id to start after.
const cursorVersion = "o"

func listCursor(lastID string) string {
	return cursorVersion + base64.RawURLEncoding.EncodeToString([]byte(lastID))
}

func parseCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	rest, ok := strings.CutPrefix(c, cursorVersion)
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if !ok || err != nil || !domain.IsID(string(raw)) {
		return "", fmt.Errorf("%w: %q is not a cursor this service gave", ErrInvalidCursor, c)
	}
	return string(raw), nil
}

// Matches reports whether o passes every field of the filter but the cursor and the limit:
// the selection each backend of ListOpportunities (this view, the HTTP tests' fake) makes.
func (f ListFilter) Matches(o domain.Opportunity) bool {
	switch {
	case f.PipelineID != "" && o.PipelineID != f.PipelineID,
		f.OwnerID != "" && o.OwnerID != f.OwnerID,
		f.AccountID != "" && o.AccountID != f.AccountID,
		f.StageID != "" && o.StageID != f.StageID,
		f.Status != "" && o.Status != f.Status,
		f.CloseFrom != nil && o.CloseDate < *f.CloseFrom,
		f.CloseTo != nil && o.CloseDate > *f.CloseTo:
		return false
	}
	return true
}

// Pipelines lists every pipeline configuration.
func (s *Service) Pipelines() ([]domain.Pipeline, error) {
	var out []domain.Pipeline
	err := each(s.pipelines, func(v any) {
		if p, ok := v.(*domain.Pipeline); ok && p != nil {
			out = append(out, *p)
		}
	})
	return out, err
}

// Pipeline returns one pipeline, nil when unknown.
func (s *Service) Pipeline(id string) (*domain.Pipeline, error) {
	return viewValue[domain.Pipeline](s.pipelines, id, "pipeline")
}

// WaitPipeline returns once this instance's view shows p, so that a read after a write sees
// it (the gateway's PutPipeline).
func (s *Service) WaitPipeline(ctx context.Context, p domain.Pipeline) error {
	return waitValue(ctx, s.pipelines, p.ID, func(got *domain.Pipeline) bool { return samePipeline(*got, p) })
}

// samePipeline compares two configurations as they are stored: by their encoding, which does
// not tell an empty list (a PUT's "requiredFields": []) from an absent one (what the view
// decodes), as reflect.DeepEqual does.
func samePipeline(a, b domain.Pipeline) bool {
	ea, err1 := codecs.EncodePipeline(a)
	eb, err2 := codecs.EncodePipeline(b)
	return err1 == nil && err2 == nil && bytes.Equal(ea, eb)
}

// FXRates lists every exchange rate, the reporting currency's at its fixed 1 (a stored one,
// which an earlier version accepted, is not used).
func (s *Service) FXRates() ([]domain.FXRate, error) {
	out := []domain.FXRate{{Currency: s.cfg.ReportingCurrency, Rate: "1"}}
	err := each(s.fx, func(v any) {
		if r, ok := v.(*domain.FXRate); ok && r != nil && r.Currency != s.cfg.ReportingCurrency {
			out = append(out, *r)
		}
	})
	slices.SortFunc(out, func(a, b domain.FXRate) int { return cmp.Compare(a.Currency, b.Currency) })
	return out, err
}

// FXRate returns the rate of one currency, nil when unknown.
func (s *Service) FXRate(currency string) (*domain.FXRate, error) {
	return viewValue[domain.FXRate](s.fx, currency, "fx rate")
}

// WaitFXRate returns once this instance's view shows r.
func (s *Service) WaitFXRate(ctx context.Context, r domain.FXRate) error {
	return waitValue(ctx, s.fx, r.Currency, func(got *domain.FXRate) bool { return *got == r })
}

// viewValue is the configuration value (pipeline, FX rate) of key in view, nil when it has
// none; what names it in an error.
func viewValue[T any](view *goka.View, key, what string) (*T, error) {
	v, err := view.Get(key)
	if err != nil {
		return nil, fmt.Errorf("read %s %s: %w", what, key, err)
	}
	x, _ := v.(*T)
	return x, nil
}

// waitValue returns once view holds a value of key that is the one written (same), so that a
// read after a configuration write sees it.
func waitValue[T any](ctx context.Context, view *goka.View, key string, same func(got *T) bool) error {
	return poll(ctx, func() bool {
		v, err := view.Get(key)
		got, _ := v.(*T)
		return err == nil && got != nil && same(got)
	})
}

// NoteSent records the position of a command record the gateway sent, so that Await for it
// knows which table record answers it and which position to wait for.
func (s *Service) NoteSent(commandID string, pos Position) { s.sent.put(commandID, pos) }

// Await blocks until the processor has applied or refused cmd, as this instance's view shows,
// and, for a command this instance sent, until every view and the analytics reflect its
// position, so the caller reads its own write in every read that follows. A refusal counts
// only if it is of this sending (a retried command id may have been refused before and
// accepted now). It reads the view once; after that each update of the key hands the waiter
// the value just stored, so a wake-up costs a decode, not another pebble read.
func (s *Service) Await(ctx context.Context, cmd domain.Command) (Outcome, error) {
	minPos := int64(-1)
	sent, wasSent := s.sent.take(cmd.CommandID)
	if wasSent {
		minPos = sent.Offset
	}
	out, err := s.awaitOutcome(ctx, cmd, minPos)
	if err != nil || !wasSent {
		return out, err
	}
	if err := s.pos.wait(ctx, []Position{sent}); err != nil {
		return Outcome{}, fmt.Errorf("await %s: %w", cmd.CommandID, err)
	}
	return out, nil
}

// awaitOutcome is Await's first half: the command's outcome in the opportunity view.
func (s *Service) awaitOutcome(ctx context.Context, cmd domain.Command, minPos int64) (Outcome, error) {
	w := s.subscribe(cmd.OpportunityID)
	defer s.unsubscribe(cmd.OpportunityID, w)
	agg, err := s.getAggregate(cmd.OpportunityID, codecs.DecodeAggregateState)
	for {
		if err != nil {
			return Outcome{}, fmt.Errorf("await %s: %w", cmd.CommandID, err)
		}
		if out, ok := outcomeIn(agg, cmd.CommandID, minPos); ok {
			if out.Aggregate != nil {
				s.joinAccount(&out.Aggregate.State)
			}
			return out, nil
		}
		select {
		case <-w.ch:
		case <-ctx.Done():
			return Outcome{}, ctx.Err()
		}
		if raw, ok := w.take(); ok {
			agg, err = decodeValue(raw, codecs.DecodeAggregateState)
		} else {
			agg, err = s.getAggregate(cmd.OpportunityID, codecs.DecodeAggregateState)
		}
	}
}

// outcomeIn finds the outcome of command id in agg. For a sending at minPos (-1: unknown)
// the state must have got that far: a command id applied before is in the state while the
// processor has yet to see the new sending, which may be refused (its id reused for another
// request); a refusal of this sending comes first, and an applied id whose fingerprint says it
// was applied before this sending is a replay.
func outcomeIn(agg *domain.Aggregate, id string, minPos int64) (Outcome, bool) {
	if agg == nil || minPos >= 0 && agg.Position < minPos {
		return Outcome{}, false
	}
	for i := len(agg.Rejections) - 1; i >= 0; i-- {
		if r := agg.Rejections[i]; r.CommandID == id && r.Position >= minPos && minPos >= 0 {
			return Outcome{Rejected: &r}, true
		}
	}
	if agg.State.Version > 0 && agg.State.ContainsCommand(id) {
		f, ok := agg.FingerprintOf(id)
		return Outcome{Aggregate: agg, Replayed: minPos >= 0 && (!ok || f.Position < minPos)}, true
	}
	for i := len(agg.Rejections) - 1; i >= 0; i-- {
		if r := agg.Rejections[i]; r.CommandID == id && r.Position >= minPos {
			return Outcome{Rejected: &r}, true
		}
	}
	return Outcome{}, false
}

// waiter is one Await on a key: woken through ch, it finds the newest value stored for the
// key since it last looked.
type waiter struct {
	ch  chan struct{}
	mu  sync.Mutex
	raw []byte
	has bool
}

// take returns the newest value handed over since the last take, if any.
func (w *waiter) take() ([]byte, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	raw, has := w.raw, w.has
	w.raw, w.has = nil, false
	return raw, has
}

func (s *Service) subscribe(key string) *waiter {
	w := &waiter{ch: make(chan struct{}, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waiters[key] == nil {
		s.waiters[key] = map[*waiter]struct{}{}
	}
	s.waiters[key][w] = struct{}{}
	return w
}

func (s *Service) unsubscribe(key string, w *waiter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.waiters[key], w)
	if len(s.waiters[key]) == 0 {
		delete(s.waiters, key)
	}
}

// notify hands value, just stored for key by the view's partition goroutine, to every waiter
// on key. Updates of a key are stored and notified in order by one goroutine, so the value a
// waiter takes is never older than the store's. goka does not reuse value after the update
// callback, and waiters only read it.
func (s *Service) notify(key string, value []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for w := range s.waiters[key] {
		w.mu.Lock()
		w.raw, w.has = value, true
		w.mu.Unlock()
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}
}

func each(v *goka.View, fn func(any)) error {
	it, err := v.Iterator()
	if err != nil {
		return fmt.Errorf("iterate %s: %w", v.Topic(), err)
	}
	defer it.Release()
	for it.Next() {
		val, err := it.Value()
		if err != nil {
			return fmt.Errorf("decode %s/%s: %w", v.Topic(), it.Key(), err)
		}
		fn(val)
	}
	return it.Err()
}

func poll(ctx context.Context, done func() bool) error {
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for !done() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// sentOffsets remembers the offsets of recently sent commands, bounded so that commands sent
// without anyone awaiting them (202 answers) cannot grow it without limit.
type sentOffsets struct {
	mu    sync.Mutex
	m     map[string]Position
	order []string
}

const maxSentOffsets = 10000

func (s *sentOffsets) put(id string, off Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Position{}
	}
	s.m[id] = off
	s.order = append(s.order, id)
	if len(s.order) > 2*maxSentOffsets { // drop in chunks: amortised O(1) per put
		drop := s.order[:len(s.order)-maxSentOffsets]
		for _, d := range drop {
			delete(s.m, d)
		}
		s.order = append([]string(nil), s.order[len(drop):]...)
	}
}

// has reports whether id was sent by this instance and not yet awaited.
func (s *sentOffsets) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[id]
	return ok
}

func (s *sentOffsets) take(id string) (Position, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off, ok := s.m[id]
	delete(s.m, id)
	return off, ok
}

// PreviousLayoutKeys lists the opportunities whose stored state still has the previous
// layout (the whole history inside the table record), for the gateway's MigrateHistory.
func (s *Service) PreviousLayoutKeys(ctx context.Context) ([]string, error) {
	it, err := s.opps.Iterator()
	if err != nil {
		return nil, fmt.Errorf("iterate opportunities: %w", err)
	}
	defer it.Release()
	var keys []string
	for it.Next() && ctx.Err() == nil {
		v, err := it.Value()
		if err != nil {
			return nil, fmt.Errorf("read opportunity %s: %w", it.Key(), err)
		}
		raw, _ := v.([]byte)
		if len(raw) == 0 {
			continue
		}
		agg, err := codecs.DecodeAggregateState(raw)
		if err != nil {
			s.cfg.Logger.Warn("history migration: undecodable state left alone", "opportunityId", it.Key(), "err", err)
			continue
		}
		if !agg.HistoryOnTopic && agg.State.Version > 0 {
			keys = append(keys, it.Key())
		}
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate opportunities: %w", err)
	}
	return keys, ctx.Err()
}
