package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/views"
)

// fakeBackend is an in-memory Backend that applies commands synchronously through the real
// domain.Decide, the way the opportunity processor would, so handler tests see genuine
// rejections and states without Kafka.
type fakeBackend struct {
	mu        sync.Mutex
	ready     bool   // every view partition consuming
	degraded  bool   // recovered once, but a partition is reconnecting
	storage   string // StorageDegraded's cause
	now       func() time.Time
	aggs      map[string]*domain.Aggregate
	pipelines map[string]domain.Pipeline
	rates     map[string]string
	sent      []domain.Command
	outcomes  map[string]Outcome
	// fingerprints are the request fingerprints of the applied command ids.
	fingerprints map[string]uint64
	lastList     *ListFilter

	// analytics read model, fed by Send the way the aggregator is fed by the processor:
	// analytics.Deltas of each applied command, folded into buckets and Put into the store.
	store     *analytics.Store
	buckets   map[string]*analytics.Bucket
	reporting string // reporting currency; rates come from the rates map above

	// feed is a real change feed (views.Feed, live, epoch "test"): Send publishes every
	// applied command's state on it, as the opportunity view does.
	feed *views.Feed

	// knobs for error paths
	sendErr      error
	readErr      error
	putErr       error
	blockAwait   bool   // Await blocks until its context ends
	panicOnID    string // Opportunity(panicOnID) panics
	analyticsErr error  // every Analytics query fails with it
}

func newFakeBackend(now func() time.Time) *fakeBackend {
	return &fakeBackend{
		ready:        true,
		now:          now,
		aggs:         map[string]*domain.Aggregate{},
		pipelines:    map[string]domain.Pipeline{domain.DefaultPipelineID: domain.DefaultPipeline()},
		rates:        map[string]string{"USD": "1", "EUR": "1.0823"},
		outcomes:     map[string]Outcome{},
		fingerprints: map[string]uint64{},
		store:        analytics.NewStore(),
		buckets:      map[string]*analytics.Bucket{},
		reporting:    "USD",
		feed:         newTestFeed(),
	}
}

// testFeedEpoch is the epoch of the fake backend's feed: its tokens are "test-<seq>".
const testFeedEpoch = "test"

func newTestFeed() *views.Feed {
	f := views.NewFeed(views.FeedConfig{Size: 64, Epoch: testFeedEpoch})
	f.GoLive()
	return f
}

// Subscribe opens a cursor on the fake's feed, gated on recovery as the views gate it.
func (f *fakeBackend) Subscribe(after string, filter FeedFilter) (*Subscription, error) {
	if !f.Recovered() {
		return nil, fmt.Errorf("fake subscribe: %w", views.ErrNotRecovered)
	}
	return f.feed.Subscribe(after, filter)
}

func (f *fakeBackend) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeBackend) StorageDegraded() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.storage
}

func (f *fakeBackend) Recovered() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready || f.degraded
}

// setReady(false) is the first recovery still running: nothing may be read.
func (f *fakeBackend) setReady(v bool) {
	f.mu.Lock()
	f.ready, f.degraded = v, false
	f.mu.Unlock()
}

// setDegraded is a view partition reconnecting after the first recovery.
func (f *fakeBackend) setDegraded() {
	f.mu.Lock()
	f.ready, f.degraded = false, true
	f.mu.Unlock()
}

func cloneAgg(a *domain.Aggregate) *domain.Aggregate {
	c := *a
	c.Events = slices.Clone(a.Events)
	return &c
}

// Opportunity leaves the history out, as the views do, so a handler that needs it must ask
// History.
func (f *fakeBackend) Opportunity(id string) (*domain.Aggregate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicOnID != "" && id == f.panicOnID {
		panic("fake backend: boom")
	}
	if f.readErr != nil {
		return nil, f.readErr
	}
	a, ok := f.aggs[id]
	if !ok {
		return nil, nil
	}
	c := cloneAgg(a)
	c.Events = nil
	return c, nil
}

func (f *fakeBackend) History(id string, after int64, limit int) ([]domain.Event, bool, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.panicOnID != "" && id == f.panicOnID {
		panic("fake backend: boom")
	}
	if f.readErr != nil {
		return nil, false, false, f.readErr
	}
	a, ok := f.aggs[id]
	if !ok {
		return nil, false, false, nil
	}
	var out []domain.Event
	for _, e := range cloneAgg(a).Events {
		if e.Version > after {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, func(a, b domain.Event) int { return cmp.Compare(a.Version, b.Version) })
	if len(out) > limit {
		return out[:limit], true, true, nil
	}
	return out, false, true, nil
}

func (f *fakeBackend) ListOpportunities(lf ListFilter) ([]domain.Opportunity, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastList = &lf
	if f.readErr != nil {
		return nil, "", f.readErr
	}
	after := ""
	if lf.Cursor != "" {
		var ok bool
		if after, ok = strings.CutPrefix(lf.Cursor, "after:"); !ok {
			return nil, "", errors.Join(ErrInvalidCursor, errors.New("no prefix"))
		}
	}
	ids := make([]string, 0, len(f.aggs))
	for id := range f.aggs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []domain.Opportunity
	for _, id := range ids {
		o := f.aggs[id].State
		switch {
		case id <= after,
			lf.PipelineID != "" && o.PipelineID != lf.PipelineID,
			lf.OwnerID != "" && o.OwnerID != lf.OwnerID,
			lf.AccountID != "" && o.AccountID != lf.AccountID,
			lf.StageID != "" && o.StageID != lf.StageID,
			lf.Status != "" && o.Status != lf.Status,
			lf.CloseFrom != nil && o.CloseDate < *lf.CloseFrom,
			lf.CloseTo != nil && o.CloseDate > *lf.CloseTo:
			continue
		}
		if len(out) == lf.Limit {
			return out, "after:" + out[len(out)-1].ID, nil
		}
		out = append(out, o)
	}
	return out, "", nil
}

func (f *fakeBackend) Pipelines() ([]domain.Pipeline, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readErr != nil {
		return nil, f.readErr
	}
	var out []domain.Pipeline
	for _, p := range f.pipelines {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b domain.Pipeline) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (f *fakeBackend) Pipeline(id string) (*domain.Pipeline, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.pipelineLocked(id)
}

func (f *fakeBackend) pipelineLocked(id string) (*domain.Pipeline, error) {
	if f.readErr != nil {
		return nil, f.readErr
	}
	p, ok := f.pipelines[id]
	if !ok {
		return nil, nil
	}
	return &p, nil
}

func (f *fakeBackend) PutPipeline(ctx context.Context, p domain.Pipeline) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.putErr != nil {
		return f.putErr
	}
	f.pipelines[p.ID] = p
	return nil
}

func (f *fakeBackend) FXRates() ([]domain.FXRate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.readErr != nil {
		return nil, f.readErr
	}
	var out []domain.FXRate
	for c, r := range f.rates {
		out = append(out, domain.FXRate{Currency: c, Rate: r})
	}
	return out, nil
}

func (f *fakeBackend) PutFXRate(ctx context.Context, r domain.FXRate) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.putErr != nil {
		return f.putErr
	}
	f.rates[r.Currency] = r.Rate
	return nil
}

// Send records cmd and, like the processor, applies or refuses it at once; its position is
// partition 0 at the count of commands sent before it.
func (f *fakeBackend) Send(ctx context.Context, cmd domain.Command) (Position, error) {
	pos, err := f.send(cmd)
	return pos, err
}

// WaitPositions: a position is reflected once a command at it has been sent (the fake
// applies at once), and never on another partition than 0.
func (f *fakeBackend) WaitPositions(ctx context.Context, ps []Position) error {
	for {
		f.mu.Lock()
		n := int64(len(f.sent))
		f.mu.Unlock()
		missing := false
		for _, p := range ps {
			if p.Partition != 0 || p.Offset >= n {
				missing = true
			}
		}
		if !missing {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrPositionNotReached, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

func (f *fakeBackend) send(cmd domain.Command) (Position, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return Position{}, f.sendErr
	}
	pos := Position{Offset: int64(len(f.sent))}
	f.sent = append(f.sent, cmd)
	var cur *domain.Opportunity
	agg := f.aggs[cmd.OpportunityID]
	if agg != nil {
		st := agg.State
		cur = &st
	}
	d, err := domain.Decide(cur, cmd, domain.DecideContext{
		Now: f.now(),
		Pipelines: func(id string) (*domain.Pipeline, bool) {
			p, _ := f.pipelineLocked(id)
			return p, p != nil
		},
	})
	// Like step.Apply: a command id applied before is a replay of the same request, a refusal
	// for another one.
	if fp, seen := f.fingerprints[cmd.CommandID]; err == nil && d.Duplicate && seen && fp != domain.Fingerprint(cmd) {
		err = &domain.Rejection{Code: domain.CodeIdempotencyKeyReused, Message: "key reused for another request", Fields: []domain.FieldError{{Field: "Idempotency-Key", Message: "reused"}}}
	}
	if err == nil && d.Duplicate {
		out := f.outcomes[cmd.CommandID]
		out.Replayed = true
		f.outcomes[cmd.CommandID] = out
		return pos, nil
	}
	if err == nil {
		f.fingerprints[cmd.CommandID] = domain.Fingerprint(cmd)
	}
	if err != nil {
		rej, ok := domain.AsRejection(err)
		if !ok {
			return pos, err
		}
		f.outcomes[cmd.CommandID] = Outcome{Rejected: &domain.RejectedCommand{
			CommandID: cmd.CommandID, OpportunityID: cmd.OpportunityID, CommandType: cmd.Type,
			Code: string(rej.Code), Message: rej.Message, Fields: rej.Fields, Actor: cmd.Actor, At: f.now(),
		}}
		return pos, nil
	}
	for _, delta := range analytics.Deltas(cur, d.Next, d.Events, nil) {
		b := f.buckets[delta.Bucket]
		if b == nil {
			b = &analytics.Bucket{}
			f.buckets[delta.Bucket] = b
		}
		if b.Apply(delta) {
			f.store.Put(delta.Bucket, *b)
		}
	}
	if agg == nil {
		agg = &domain.Aggregate{Position: -1}
		f.aggs[cmd.OpportunityID] = agg
	}
	agg.State = d.Next
	agg.Events = append(agg.Events, d.Events...)
	agg.Position++
	f.outcomes[cmd.CommandID] = Outcome{Aggregate: cloneAgg(agg)}
	published := d.Next
	f.feed.PublishOpportunity(&published)
	return pos, nil
}

func (f *fakeBackend) Await(ctx context.Context, cmd domain.Command) (Outcome, error) {
	f.mu.Lock()
	block := f.blockAwait
	out, ok := f.outcomes[cmd.CommandID]
	f.mu.Unlock()
	if block || !ok {
		<-ctx.Done()
		return Outcome{}, ctx.Err()
	}
	return out, nil
}

func (f *fakeBackend) sentCommands() []domain.Command {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sent)
}

// setNow moves the fake's clock (decisions, Today, staleness).
func (f *fakeBackend) setNow(t time.Time) {
	f.mu.Lock()
	f.now = func() time.Time { return t }
	f.mu.Unlock()
}

func (f *fakeBackend) Today() domain.Date {
	f.mu.Lock()
	defer f.mu.Unlock()
	return domain.DateOf(f.now())
}

func (f *fakeBackend) ReportingCurrency() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reporting
}

// analyticsRates snapshots the FX table (and the error knob) for one query.
func (f *fakeBackend) analyticsRates() (analytics.Rates, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.analyticsErr != nil {
		return nil, f.analyticsErr
	}
	return analytics.MapRates(f.reporting, maps.Clone(f.rates)), nil
}

func (f *fakeBackend) Forecast(q analytics.ForecastQuery) (analytics.ForecastResult, error) {
	rates, err := f.analyticsRates()
	if err != nil {
		return analytics.ForecastResult{}, err
	}
	return f.store.Forecast(q, rates)
}

func (f *fakeBackend) WinLoss(q analytics.WinLossQuery) (analytics.WinLossResult, error) {
	rates, err := f.analyticsRates()
	if err != nil {
		return analytics.WinLossResult{}, err
	}
	return f.store.WinLoss(q, rates)
}

func (f *fakeBackend) Funnel(q analytics.FunnelQuery) (analytics.FunnelResult, error) {
	if _, err := f.analyticsRates(); err != nil {
		return analytics.FunnelResult{}, err
	}
	p, err := f.Pipeline(q.PipelineID)
	if err != nil {
		return analytics.FunnelResult{}, err
	}
	if p == nil {
		return analytics.FunnelResult{}, fmt.Errorf("pipeline %q: %w", q.PipelineID, ErrUnknownPipeline)
	}
	return f.store.Funnel(q, *p)
}

func (f *fakeBackend) Velocity(q analytics.VelocityQuery) (analytics.VelocityResult, error) {
	rates, err := f.analyticsRates()
	if err != nil {
		return analytics.VelocityResult{}, err
	}
	return f.store.Velocity(q, rates)
}

func (f *fakeBackend) Changes(q analytics.ChangesQuery) (analytics.ChangesResult, error) {
	rates, err := f.analyticsRates()
	if err != nil {
		return analytics.ChangesResult{}, err
	}
	return f.store.Changes(q, rates)
}

func (f *fakeBackend) Stale(pipelineID, ownerID string) ([]analytics.StaleDeal, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.analyticsErr != nil {
		return nil, f.analyticsErr
	}
	var opps []domain.Opportunity
	for _, a := range f.aggs {
		o := a.State
		if (pipelineID == "" || o.PipelineID == pipelineID) && (ownerID == "" || o.OwnerID == ownerID) {
			opps = append(opps, o)
		}
	}
	return analytics.Stale(opps, func(id string) (*domain.Pipeline, bool) {
		p, _ := f.pipelineLocked(id)
		return p, p != nil
	}, f.now()), nil
}

// CommandOutcome: the fake decides at Send, so a command it was sent is applied or refused;
// with blockAwait it stays pending (as a slow processor would leave it).
func (f *fakeBackend) CommandOutcome(ctx context.Context, q CommandQuery) (CommandOutcome, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out, ok := f.outcomes[q.CommandID]
	switch {
	case !ok:
		return CommandOutcome{State: views.CommandUnknown}, nil
	case f.blockAwait:
		return CommandOutcome{State: views.CommandPending, OpportunityID: q.OpportunityID}, nil
	case out.Rejected != nil:
		return CommandOutcome{State: views.CommandRefused, OpportunityID: out.Rejected.OpportunityID, Rejected: out.Rejected}, nil
	}
	return CommandOutcome{State: views.CommandApplied, OpportunityID: out.Aggregate.State.ID, Version: out.Aggregate.State.Version}, nil
}
