package views

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// This file is the source of the live change stream (GET /api/v1/stream): a replay ring of
// the instance's last changes, read by cursors. Nothing is copied or queued per client: a
// subscription is a sequence number into the ring, so a client that reads slowly costs the
// publishers nothing, and one that falls out of the ring is told to reload (a reset) instead
// of holding memory for it.

// DefaultFeedSize is the replay window when FeedConfig.Size is zero: the last 10,000
// changes of this instance (about 10 MB of decoded opportunities), enough for a client to
// reconnect after a minute of a busy instance's traffic without a reset.
const DefaultFeedSize = 10000

// feedScanLimit bounds the ring entries one Poll looks at under the read lock, so a
// subscription with a narrow filter behind a long run of others' changes never holds off a
// publisher for more than a few microseconds.
const feedScanLimit = 1024

// ErrFeedClosed is what Subscribe and Poll return once the feed is closed (the views
// stopped): a stream then ends and its client reconnects elsewhere or later.
var ErrFeedClosed = errors.New("change feed closed")

// ChangeKind is the kind of one Change, and the SSE event name it is sent as.
type ChangeKind string

// The kinds of change. Reset is not stored in the ring: a subscription produces it when it
// cannot continue from where its client was.
const (
	ChangeOpportunity ChangeKind = "opportunity"
	ChangeAnalytics   ChangeKind = "analytics"
	ChangeReset       ChangeKind = "reset"
)

// Why a subscription resets, carried on the reset Change so a client (and its operator) can
// tell a restart from a slow reader.
const (
	// ResetUnknownToken: the resume token is not one of this feed's (another instance, an
	// earlier process, or not a token at all).
	ResetUnknownToken = "unknown_token"
	// ResetTooOld: the token is this feed's, but changes after it have left the ring.
	ResetTooOld = "too_old"
	// ResetFellBehind: a connected client read so slowly that the ring overtook it.
	ResetFellBehind = "fell_behind"
)

// AnalyticsChange says which aggregates changed: those over any of PipelineIDs and
// OwnerIDs with close dates in From..To, as of Position (a comma list of position tokens
// a client sends back as Crm-Min-Position to read figures that include the change). The
// analytics side publishes it once a command's deltas are reflected in this instance's
// buckets.
type AnalyticsChange struct {
	PipelineIDs, OwnerIDs []string
	From, To              domain.Date
	Position              string
}

// Change is one item a subscription hands out. Exactly one of Opportunity and Analytics is
// set, except for a reset, which has neither. Token is the resume token of the change: a
// client that sends it back (Last-Event-ID) receives every later change, once.
type Change struct {
	Kind  ChangeKind
	Token string
	// Opportunity is the state after the change, with the current Customer 360 account
	// joined (as GET answers it). It is the subscriber's own copy.
	Opportunity *domain.Opportunity
	// Analytics is shared by every subscriber: read it, never modify it.
	Analytics *AnalyticsChange
	// Reason says why a reset happened (ResetUnknownToken, ResetTooOld, ResetFellBehind).
	Reason string
}

// FeedFilter selects the changes a subscription receives. Opportunity changes pass when the
// opportunity is in PipelineID and owned by OwnerID; analytics changes when their lists
// contain the filter's value or are empty (a change of every pipeline, say). Empty fields
// select everything.
type FeedFilter struct {
	Kinds      []ChangeKind // ChangeOpportunity, ChangeAnalytics; empty: both
	PipelineID string
	OwnerID    string
}

func (f FeedFilter) matches(e feedEntry) bool {
	switch {
	case e.opp != nil:
		return f.wants(ChangeOpportunity) &&
			(f.PipelineID == "" || e.opp.PipelineID == f.PipelineID) &&
			(f.OwnerID == "" || e.opp.OwnerID == f.OwnerID)
	case e.an != nil:
		return f.wants(ChangeAnalytics) && listPasses(e.an.PipelineIDs, f.PipelineID) && listPasses(e.an.OwnerIDs, f.OwnerID)
	}
	return false
}

func (f FeedFilter) wants(k ChangeKind) bool { return len(f.Kinds) == 0 || slices.Contains(f.Kinds, k) }

// listPasses: an empty list names every value.
func listPasses(list []string, want string) bool {
	return want == "" || len(list) == 0 || slices.Contains(list, want)
}

// FeedConfig configures a Feed.
type FeedConfig struct {
	// Size is the replay window in changes (DefaultFeedSize when 0).
	Size int
	// Epoch names this feed in its tokens; empty draws a random one, so that every process
	// start (and every instance) has its own and a token of another is recognised as foreign.
	Epoch string
}

// feedEntry is one change in the ring: exactly one field is set. Both are immutable once
// published.
type feedEntry struct {
	opp *domain.Opportunity
	an  *AnalyticsChange
}

// Feed is the replay ring of an instance's last changes, with a monotonically increasing
// sequence number per change. Publishers (the views' partition goroutines) append in O(1)
// under a short lock and never wait for a subscriber; subscribers are cursors that read the
// ring under a read lock, a bounded number of entries at a time.
//
// A resume token is `<epoch>-<seq>`: the feed's epoch and the sequence number of the last
// change the client has. A token of another epoch, or older than the ring, resets the
// subscription rather than replaying from a place that means something else here.
//
// The feed drops every publish until GoLive: the views call it once they have recovered, so
// replaying the table topic at start does not fill the ring with thousands of old states.
type Feed struct {
	epoch string
	live  atomic.Bool

	mu     sync.RWMutex
	ring   []feedEntry
	next   uint64        // sequence number of the next change; the first is 1
	wake   chan struct{} // closed by the next publish that finds waited set
	waited atomic.Bool   // a subscriber holds wake (set under the read lock, read under the write lock)
	closed bool

	again       chan struct{} // always closed: "poll again at once"
	subscribers atomic.Int64
}

// NewFeed makes an empty feed that drops publishes until GoLive.
func NewFeed(cfg FeedConfig) *Feed {
	size := cfg.Size
	if size <= 0 {
		size = DefaultFeedSize
	}
	epoch := cfg.Epoch
	if epoch == "" {
		var b [6]byte
		_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
		epoch = hex.EncodeToString(b[:])
	}
	again := make(chan struct{})
	close(again)
	return &Feed{epoch: epoch, ring: make([]feedEntry, size), next: 1, wake: make(chan struct{}), again: again}
}

// GoLive opens the feed to publishes (idempotent).
func (f *Feed) GoLive() { f.live.Store(true) }

// Live reports whether publishes are kept; a publisher can skip preparing a change when not.
func (f *Feed) Live() bool { return f.live.Load() }

// Subscribers is the number of open subscriptions.
func (f *Feed) Subscribers() int { return int(f.subscribers.Load()) }

// PublishOpportunity appends the state of an opportunity after a change. It never blocks on
// a subscriber: it takes the lock for an append and wakes whoever waits. The feed keeps o
// (without its command-id ring, which no reader shows); the caller must not modify it after.
func (f *Feed) PublishOpportunity(o *domain.Opportunity) {
	if o == nil || !f.Live() {
		return
	}
	o.RecentCommandIDs = nil
	f.publish(feedEntry{opp: o})
}

// PublishAnalytics appends a change of aggregates, with the same guarantees as
// PublishOpportunity; c's lists are copied, so the caller may reuse them.
func (f *Feed) PublishAnalytics(c AnalyticsChange) {
	if !f.Live() {
		return
	}
	c.PipelineIDs, c.OwnerIDs = slices.Clone(c.PipelineIDs), slices.Clone(c.OwnerIDs)
	f.publish(feedEntry{an: &c})
}

func (f *Feed) publish(e feedEntry) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.ring[f.next%uint64(len(f.ring))] = e
	f.next++
	if f.waited.Load() {
		close(f.wake)
		f.wake = make(chan struct{})
		f.waited.Store(false)
	}
}

// Close ends the feed: every subscription's Poll returns ErrFeedClosed from now on, and
// whoever waits is woken to learn it.
func (f *Feed) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	f.closed = true
	close(f.wake)
}

// Token is the resume token of sequence number seq in this feed.
func (f *Feed) Token(seq uint64) string { return f.epoch + "-" + strconv.FormatUint(seq, 10) }

// parseToken returns the sequence number of a token of this feed.
func (f *Feed) parseToken(tok string) (uint64, bool) {
	epoch, seq, ok := strings.Cut(tok, "-")
	if !ok || epoch != f.epoch {
		return 0, false
	}
	n, err := strconv.ParseUint(seq, 10, 64)
	return n, err == nil
}

// oldestLocked is the sequence number of the oldest change the ring holds (next when empty).
func (f *Feed) oldestLocked() uint64 {
	if held := f.next - 1; held > uint64(len(f.ring)) {
		return f.next - uint64(len(f.ring))
	}
	return 1
}

// Subscribe opens a cursor after the change named by the resume token after: the first Poll
// returns the changes that followed it. An empty token starts at the newest change (only
// what happens from now on). A token of another feed, from the future, or older than the
// ring starts at the newest change too, but the first Poll returns a reset first, so the
// client knows to reload. The error is ErrFeedClosed, wrapped.
func (f *Feed) Subscribe(after string, filter FeedFilter) (*Subscription, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return nil, fmt.Errorf("subscribe: %w", ErrFeedClosed)
	}
	head := f.next - 1
	s := &Subscription{feed: f, filter: filter, after: head}
	if after != "" {
		seq, ok := f.parseToken(after)
		switch {
		case !ok || seq > head:
			s.reset = ResetUnknownToken
		case seq+1 < f.oldestLocked():
			s.reset = ResetTooOld
		default:
			s.after = seq
		}
	}
	f.subscribers.Add(1)
	return s, nil
}

// Subscription is one client's cursor into a Feed. It is used by one goroutine.
type Subscription struct {
	feed   *Feed
	filter FeedFilter
	after  uint64 // the last sequence number handed out or skipped by the filter
	reset  string // a reset to hand out first, with its reason
	closed bool
	// join puts the current account on an opportunity handed out (views.Service's
	// joinAccount); nil leaves the one the state carries.
	join func(*domain.Opportunity)
}

// Token is the resume token of the cursor: every change up to it that the filter selects
// has been handed out. A stream can send it (an SSE id without data) so that a client whose
// filter skipped many changes resumes from here rather than from its last event.
func (s *Subscription) Token() string { return s.feed.Token(s.after) }

// Poll returns up to max changes after the cursor and moves the cursor past them, without
// blocking. When it returns none, wait is closed once there may be more (a publish, the
// feed's close, or at once when Poll stopped at its scan bound). A cursor the ring has
// overtaken yields a single reset change, and continues from the newest change.
func (s *Subscription) Poll(max int) (changes []Change, wait <-chan struct{}, err error) {
	if max <= 0 {
		max = 1
	}
	f := s.feed
	type picked struct {
		seq uint64
		e   feedEntry
	}
	var got []picked
	f.mu.RLock()
	if f.closed || s.closed {
		f.mu.RUnlock()
		return nil, nil, ErrFeedClosed
	}
	head := f.next - 1
	if s.reset == "" && s.after+1 < f.oldestLocked() {
		s.reset = ResetFellBehind
	}
	if s.reset != "" {
		reason := s.reset
		s.reset, s.after = "", head
		f.mu.RUnlock()
		return []Change{{Kind: ChangeReset, Token: f.Token(head), Reason: reason}}, nil, nil
	}
	for scanned := 0; s.after < head && len(got) < max && scanned < feedScanLimit; scanned++ {
		s.after++
		if e := f.ring[s.after%uint64(len(f.ring))]; s.filter.matches(e) {
			got = append(got, picked{s.after, e})
		}
	}
	if len(got) == 0 {
		if s.after < head {
			wait = f.again
		} else {
			f.waited.Store(true)
			wait = f.wake
		}
	}
	f.mu.RUnlock()

	// Outside the lock: tokens, copies and the account join (a local read) cost the
	// publishers nothing.
	changes = make([]Change, 0, len(got))
	for _, p := range got {
		c := Change{Token: f.Token(p.seq)}
		if p.e.opp != nil {
			o := *p.e.opp
			if s.join != nil {
				s.join(&o)
			}
			c.Kind, c.Opportunity = ChangeOpportunity, &o
		} else {
			c.Kind, c.Analytics = ChangeAnalytics, p.e.an
		}
		changes = append(changes, c)
	}
	return changes, wait, nil
}

// Close releases the subscription; Poll returns ErrFeedClosed afterwards.
func (s *Subscription) Close() {
	if s.closed {
		return
	}
	s.closed = true
	s.feed.subscribers.Add(-1)
}
