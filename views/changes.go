package views

import (
	"errors"
	"fmt"

	"github.com/lovoo/goka/storage"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// This file connects the Service to its change feed (feed.go): what the opportunity view
// publishes, what the analytics side publishes, and the subscriptions of the live stream.

// ErrNotRecovered is what Subscribe wraps before the views have recovered once: the stream,
// like every read, waits for complete views.
var ErrNotRecovered = errors.New("views not recovered yet")

// Subscribe opens a cursor on this instance's change feed after the resume token after ("":
// from now on); see Feed.Subscribe. The opportunities it hands out carry the Customer 360
// account as it is when the client is sent the change, as every GET joins it at read time.
func (s *Service) Subscribe(after string, f FeedFilter) (*Subscription, error) {
	if !s.Recovered() { // also what makes the feed live, if no probe did yet
		return nil, fmt.Errorf("subscribe: %w", ErrNotRecovered)
	}
	sub, err := s.feed.Subscribe(after, f)
	if err != nil {
		return nil, err
	}
	sub.join = s.joinAccount
	return sub, nil
}

// PublishAnalytics puts a change of aggregates on the stream; the analytics side calls it
// once a command's deltas are reflected in this instance's buckets. It never blocks.
func (s *Service) PublishAnalytics(c AnalyticsChange) { s.feed.PublishAnalytics(c) }

// noteRecovered makes the feed live once the views have recovered: records replayed before
// (the table topic at start) are the past, not changes a client could have missed, and no
// client can hold a token of this process's feed from before then (Subscribe waits for the
// same latch).
func (s *Service) noteRecovered(recovered bool) {
	if recovered && s.feed != nil {
		s.feed.GoLive()
	}
}

// storedVersion is the version of key's opportunity in the view before a record replaces
// it (0 for none), read only while the feed is live: a table record that leaves the version
// as it was (a refusal, a redelivery writing the same state again, a history migration) is
// no change for the stream.
func (s *Service) storedVersion(st storage.Storage, key string) int64 {
	if s.feed == nil || !s.feed.Live() {
		return 0
	}
	raw, err := st.Get(key)
	if err != nil || len(raw) == 0 {
		return 0
	}
	agg, err := codecs.DecodeAggregateState(raw)
	if err != nil {
		return 0
	}
	return agg.State.Version
}

// publishChange puts the opportunity of a table record on the stream when it is a change:
// a state whose version is above the one stored before (prev). It runs on the view's
// partition goroutine, after the record is stored and its waiters woken; the feed's append
// is O(1) and never waits for a client. The account is joined when a client is sent the
// change, not here, so the partition goroutine does no lookup and a client sees the account
// as it is then.
func (s *Service) publishChange(prev int64, value []byte) {
	if s.feed == nil || !s.feed.Live() || len(value) == 0 {
		return
	}
	agg, err := codecs.DecodeAggregateState(value)
	if err != nil {
		if s.cfg.Logger != nil {
			s.cfg.Logger.Debug("change feed: undecodable opportunity state skipped", "err", err)
		}
		return
	}
	s.publishAggregate(prev, &agg)
}

// publishAggregate is publishChange for a decoded record.
func (s *Service) publishAggregate(prev int64, agg *domain.Aggregate) {
	if agg.State.Version == 0 || agg.State.Version <= prev {
		return
	}
	o := agg.State
	s.feed.PublishOpportunity(&o)
}
