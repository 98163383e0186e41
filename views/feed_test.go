package views

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

func liveFeed(size int) *Feed {
	f := NewFeed(FeedConfig{Size: size, Epoch: "ep1"})
	f.GoLive()
	return f
}

func opp(id string, version int64) *domain.Opportunity {
	return &domain.Opportunity{ID: id, Version: version, PipelineID: "default", OwnerID: "owner-1"}
}

func subscribe(t *testing.T, f *Feed, after string, filter FeedFilter) *Subscription {
	t.Helper()
	s, err := f.Subscribe(after, filter)
	if err != nil {
		t.Fatalf("Subscribe(%q): %v", after, err)
	}
	t.Cleanup(s.Close)
	return s
}

// drain polls until the subscription has nothing more, failing on an error.
func drain(t *testing.T, s *Subscription) []Change {
	t.Helper()
	var out []Change
	for {
		cs, wait, err := s.Poll(100)
		if err != nil {
			t.Fatalf("Poll: %v", err)
		}
		out = append(out, cs...)
		if len(cs) == 0 {
			select {
			case <-wait:
				continue // the scan bound: more to look at
			default:
				return out
			}
		}
	}
}

// describe renders changes as "id@version" / "analytics:position" / "reset:reason" with
// their tokens' sequence numbers.
func describe(cs []Change) string {
	var b []string
	for _, c := range cs {
		_, seq, _ := strings.Cut(c.Token, "-")
		switch c.Kind {
		case ChangeOpportunity:
			b = append(b, fmt.Sprintf("%s@%d#%s", c.Opportunity.ID, c.Opportunity.Version, seq))
		case ChangeAnalytics:
			b = append(b, fmt.Sprintf("analytics:%s#%s", c.Analytics.Position, seq))
		default:
			b = append(b, fmt.Sprintf("%s:%s#%s", c.Kind, c.Reason, seq))
		}
	}
	return strings.Join(b, " ")
}

func TestFeedReplaysAfterTokenExactlyOnce(t *testing.T) {
	f := liveFeed(16)
	for v := int64(1); v <= 6; v++ {
		f.PublishOpportunity(opp("o1", v))
	}
	s := subscribe(t, f, "ep1-3", FeedFilter{})
	if got, want := describe(drain(t, s)), "o1@4#4 o1@5#5 o1@6#6"; got != want {
		t.Fatalf("replay after ep1-3 = %q, want %q", got, want)
	}
	if got := drain(t, s); len(got) != 0 {
		t.Fatalf("a second poll handed out again: %s", describe(got))
	}
	f.PublishOpportunity(opp("o1", 7))
	if got, want := describe(drain(t, s)), "o1@7#7"; got != want {
		t.Fatalf("after a publish = %q, want %q", got, want)
	}
	if s.Token() != "ep1-7" {
		t.Fatalf("cursor token %q, want ep1-7", s.Token())
	}

	// Resuming from the last token received gives what followed it, and nothing of before.
	f.PublishOpportunity(opp("o2", 1))
	again := subscribe(t, f, "ep1-7", FeedFilter{})
	if got, want := describe(drain(t, again)), "o2@1#8"; got != want {
		t.Fatalf("resume after ep1-7 = %q, want %q", got, want)
	}
	// No token: only what happens from now on.
	fresh := subscribe(t, f, "", FeedFilter{})
	if got := drain(t, fresh); len(got) != 0 {
		t.Fatalf("a new subscription without token replayed %s", describe(got))
	}
	// The oldest change still held is replayed whole from the token just before it.
	small := liveFeed(4)
	for v := int64(1); v <= 6; v++ { // the ring holds 3..6
		small.PublishOpportunity(opp("o1", v))
	}
	if got, want := describe(drain(t, subscribe(t, small, "ep1-2", FeedFilter{}))), "o1@3#3 o1@4#4 o1@5#5 o1@6#6"; got != want {
		t.Fatalf("replay from the ring's edge = %q, want %q", got, want)
	}
}

func TestFeedResets(t *testing.T) {
	f := liveFeed(4)
	for v := int64(1); v <= 10; v++ {
		f.PublishOpportunity(opp("o1", v))
	}
	cases := []struct{ token, want string }{
		{"ep1-5", "reset:too_old#10"},         // 6 has left the ring (7..10 remain)
		{"ep0-9", "reset:unknown_token#10"},   // another process or instance
		{"ep1-11", "reset:unknown_token#10"},  // from the future: not this feed's
		{"garbage", "reset:unknown_token#10"}, // not a token at all
		{"ep1-x", "reset:unknown_token#10"},
	}
	subs := make([]*Subscription, len(cases))
	for i, tc := range cases {
		subs[i] = subscribe(t, f, tc.token, FeedFilter{})
		if got := describe(drain(t, subs[i])); got != tc.want {
			t.Errorf("after %q: %q, want %q", tc.token, got, tc.want)
		}
	}
	// After the reset each continues from the newest change.
	f.PublishOpportunity(opp("o2", 1))
	for i, tc := range cases {
		if got := describe(drain(t, subs[i])); got != "o2@1#11" {
			t.Errorf("after %q's reset: %q, want o2@1#11", tc.token, got)
		}
	}

	// A connected client the ring overtook gets a reset, then the changes after it.
	g := liveFeed(4)
	slow := subscribe(t, g, "", FeedFilter{})
	for v := int64(1); v <= 5; v++ {
		g.PublishOpportunity(opp("o1", v))
	}
	if got, want := describe(drain(t, slow)), "reset:fell_behind#5"; got != want {
		t.Fatalf("overtaken: %q, want %q", got, want)
	}
	g.PublishOpportunity(opp("o1", 6))
	if got, want := describe(drain(t, slow)), "o1@6#6"; got != want {
		t.Fatalf("after the reset: %q, want %q", got, want)
	}
	// The reset's token resumes exactly there.
	if got, want := describe(drain(t, subscribe(t, g, "ep1-5", FeedFilter{}))), "o1@6#6"; got != want {
		t.Fatalf("resume from the reset's token: %q, want %q", got, want)
	}
}

func TestFeedFilters(t *testing.T) {
	f := liveFeed(64)
	byPipeline := subscribe(t, f, "", FeedFilter{PipelineID: "p2"})
	byOwner := subscribe(t, f, "", FeedFilter{OwnerID: "owner-2"})
	oppsOnly := subscribe(t, f, "", FeedFilter{Kinds: []ChangeKind{ChangeOpportunity}})
	analyticsOnly := subscribe(t, f, "", FeedFilter{Kinds: []ChangeKind{ChangeAnalytics}, PipelineID: "p2"})

	a := opp("a", 1)
	b := opp("b", 1)
	b.PipelineID, b.OwnerID = "p2", "owner-2"
	f.PublishOpportunity(a)                                                                      // 1
	f.PublishOpportunity(b)                                                                      // 2
	f.PublishAnalytics(AnalyticsChange{PipelineIDs: []string{"default"}, Position: "x"})         // 3
	f.PublishAnalytics(AnalyticsChange{PipelineIDs: []string{"default", "p2"}, Position: "y"})   // 4
	f.PublishAnalytics(AnalyticsChange{Position: "every"})                                       // 5: empty lists name every value
	f.PublishAnalytics(AnalyticsChange{OwnerIDs: []string{"owner-1"}, Position: "owner-1-only"}) // 6

	for _, tc := range []struct {
		name string
		s    *Subscription
		want string
	}{
		{"pipelineId=p2", byPipeline, "b@1#2 analytics:y#4 analytics:every#5 analytics:owner-1-only#6"},
		{"ownerId=owner-2", byOwner, "b@1#2 analytics:x#3 analytics:y#4 analytics:every#5"},
		{"types=opportunity", oppsOnly, "a@1#1 b@1#2"},
		{"types=analytics&pipelineId=p2", analyticsOnly, "analytics:y#4 analytics:every#5 analytics:owner-1-only#6"},
	} {
		if got := describe(drain(t, tc.s)); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	// The cursor moves past what the filter skips: its token resumes after all of it.
	if oppsOnly.Token() != "ep1-6" {
		t.Fatalf("cursor of a filtered subscription %q, want ep1-6", oppsOnly.Token())
	}
}

// A subscription whose filter matches nothing in a long run of changes is never handed the
// whole ring in one poll: the scan is bounded, and the next poll goes on at once.
func TestFeedScanIsBounded(t *testing.T) {
	f := liveFeed(3 * feedScanLimit)
	s := subscribe(t, f, "", FeedFilter{OwnerID: "nobody"})
	for i := 0; i < 2*feedScanLimit+1; i++ {
		f.PublishOpportunity(opp("o", int64(i+1)))
	}
	cs, wait, err := s.Poll(10)
	if err != nil || len(cs) != 0 {
		t.Fatalf("Poll = %v, %v", describe(cs), err)
	}
	select {
	case <-wait:
	default:
		t.Fatal("a poll stopped at the scan bound must say: poll again at once")
	}
	if s.Token() != "ep1-"+strconv.Itoa(feedScanLimit) {
		t.Fatalf("cursor after one bounded scan %s", s.Token())
	}
	if got := drain(t, s); len(got) != 0 || s.Token() != "ep1-"+strconv.Itoa(2*feedScanLimit+1) {
		t.Fatalf("drained %s to %s", describe(got), s.Token())
	}
}

func TestFeedDropsUntilLiveAndEndsOnClose(t *testing.T) {
	f := NewFeed(FeedConfig{Size: 8, Epoch: "ep1"})
	f.PublishOpportunity(opp("recovered", 1)) // the table replayed at start
	f.PublishAnalytics(AnalyticsChange{Position: "old"})
	f.GoLive()
	s := subscribe(t, f, "ep1-0", FeedFilter{})
	if got := drain(t, s); len(got) != 0 {
		t.Fatalf("changes published before GoLive were kept: %s", describe(got))
	}
	_, wait, _ := s.Poll(10)
	done := make(chan error, 1)
	go func() {
		<-wait
		_, _, err := s.Poll(10)
		done <- err
	}()
	f.Close()
	select {
	case err := <-done:
		if err != ErrFeedClosed {
			t.Fatalf("Poll after Close = %v, want ErrFeedClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a waiting subscriber was not woken by Close")
	}
	if _, err := f.Subscribe("", FeedFilter{}); err == nil {
		t.Fatal("Subscribe on a closed feed succeeded")
	}
	f.PublishOpportunity(opp("late", 1)) // no panic, nothing kept
}

// Every subscriber sees every change exactly once, in publish order, while several
// publishers (the views' partition goroutines) and subscribers run at once.
func TestFeedConcurrentPublishersAndSubscribers(t *testing.T) {
	const publishers, perPublisher, subscribers = 4, 2000, 4
	f := liveFeed(publishers * perPublisher)
	var subs []*Subscription
	for i := 0; i < subscribers; i++ {
		subs = append(subs, subscribe(t, f, "", FeedFilter{}))
	}
	var wg sync.WaitGroup
	results := make([][]Change, subscribers)
	for i, s := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for len(results[i]) < publishers*perPublisher {
				cs, wait, err := s.Poll(64)
				if err != nil {
					t.Errorf("Poll: %v", err)
					return
				}
				results[i] = append(results[i], cs...)
				if len(cs) == 0 {
					select {
					case <-wait:
					case <-time.After(10 * time.Second):
						t.Errorf("subscriber %d stuck at %d changes", i, len(results[i]))
						return
					}
				}
			}
		}()
	}
	var pub sync.WaitGroup
	for p := 0; p < publishers; p++ {
		pub.Add(1)
		go func() {
			defer pub.Done()
			for v := 1; v <= perPublisher; v++ {
				if v%2 == 0 {
					f.PublishAnalytics(AnalyticsChange{Position: fmt.Sprintf("p%d:%d", p, v)})
				} else {
					f.PublishOpportunity(opp(fmt.Sprintf("p%d", p), int64(v)))
				}
			}
		}()
	}
	pub.Wait()
	wg.Wait()
	for i, got := range results {
		if len(got) != publishers*perPublisher {
			t.Fatalf("subscriber %d got %d changes, want %d", i, len(got), publishers*perPublisher)
		}
		last := map[string]int{}
		for j, c := range got {
			if want := "ep1-" + strconv.Itoa(j+1); c.Token != want {
				t.Fatalf("subscriber %d change %d has token %s, want %s (lost or repeated)", i, j, c.Token, want)
			}
			var from string
			var v int
			if c.Kind == ChangeOpportunity {
				from, v = c.Opportunity.ID, int(c.Opportunity.Version)
			} else {
				p, n, _ := strings.Cut(c.Analytics.Position, ":")
				from = p
				v, _ = strconv.Atoi(n)
			}
			if v != last[from]+1 {
				t.Fatalf("subscriber %d: %s's change %d after %d (publish order lost)", i, from, v, last[from])
			}
			last[from] = v
		}
	}
}

// A subscriber that never polls costs publishers nothing: they keep appending at full
// speed, and the stalled subscriber learns it fell behind when it looks again.
func TestFeedPublishNeverBlocksOnAStalledSubscriber(t *testing.T) {
	f := liveFeed(1000)
	stalled := subscribe(t, f, "", FeedFilter{})
	if _, wait, _ := stalled.Poll(10); wait == nil { // it holds the wake channel and never reads it
		t.Fatal("no wait channel")
	}
	reader := subscribe(t, f, "", FeedFilter{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 1; i <= 100_000; i++ {
			f.PublishOpportunity(opp("o", int64(i)))
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("publishing 100,000 changes with a stalled subscriber did not finish")
	}
	if got := describe(drain(t, stalled)); got != "reset:fell_behind#100000" {
		t.Fatalf("the stalled subscriber: %q", got)
	}
	if got := describe(drain(t, reader)); got != "reset:fell_behind#100000" {
		t.Fatalf("an idle reader: %q", got)
	}
	if f.Subscribers() != 2 {
		t.Fatalf("%d subscribers, want 2", f.Subscribers())
	}
	stalled.Close()
	stalled.Close()
	if f.Subscribers() != 1 {
		t.Fatalf("%d subscribers after a Close (twice), want 1", f.Subscribers())
	}
}

// Each subscriber gets its own copy of an opportunity, with the account joined when it is
// handed out; the ring keeps the state as published.
func TestFeedJoinsAccountOnACopy(t *testing.T) {
	f := liveFeed(8)
	o := opp("o1", 1)
	o.AccountID = "acc-1"
	o.RecentCommandIDs = []string{"c1"}
	f.PublishOpportunity(o)
	s := subscribe(t, f, "ep1-0", FeedFilter{})
	s.join = func(o *domain.Opportunity) { o.Account = &domain.Account{ID: o.AccountID, Name: "Globex"} }
	cs := drain(t, s)
	if len(cs) != 1 || cs[0].Opportunity.Account == nil || cs[0].Opportunity.Account.Name != "Globex" {
		t.Fatalf("handed out %+v", cs)
	}
	if cs[0].Opportunity.RecentCommandIDs != nil {
		t.Fatal("the command-id ring was kept in the feed")
	}
	plain := drain(t, subscribe(t, f, "ep1-0", FeedFilter{}))
	if plain[0].Opportunity.Account != nil {
		t.Fatal("one subscriber's join showed on another's copy")
	}
}

// updateCtx is the goka.UpdateContext of a table record in tests.
type updateCtx struct{}

func (updateCtx) Topic() goka.Stream    { return "crm-pipeline-cg-table" }
func (updateCtx) Partition() int32      { return 0 }
func (updateCtx) Offset() int64         { return 0 }
func (updateCtx) Headers() goka.Headers { return nil }
func (updateCtx) Timestamp() time.Time  { return time.Time{} }

// The opportunity view's callback puts on the feed what changed a version, and only after
// the views recovered: not the records replayed at start, nor a refusal or a redelivery that
// writes the same state again.
func TestOnOpportunityPublishesChanges(t *testing.T) {
	s := &Service{
		cfg:         Config{Logger: slog.New(slog.DiscardHandler)},
		waiters:     map[string]map[*waiter]struct{}{},
		feed:        NewFeed(FeedConfig{Size: 64, Epoch: "ep1"}),
		updates:     prometheus.NewCounter(prometheus.CounterOpts{Name: "u"}),
		viewLatency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "l"}),
		pos:         newPositions(func(string) (map[string]int64, bool) { return nil, false }),
	}
	st := storage.NewMemory()
	put := func(a domain.Aggregate) {
		t.Helper()
		raw, err := codecs.EncodeAggregate(a)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.onOpportunity(updateCtx{}, st, a.State.ID, raw); err != nil {
			t.Fatal(err)
		}
	}
	state := func(id string, v int64) domain.Aggregate {
		return domain.Aggregate{State: domain.Opportunity{ID: id, Version: v, PipelineID: "default"}, Position: v, HistoryOnTopic: true}
	}
	put(state("o1", 1)) // recovery: replayed, not published
	put(state("o1", 2))
	s.noteRecovered(false)
	put(state("o2", 1))
	s.noteRecovered(true)
	sub := subscribe(t, s.feed, "", FeedFilter{})

	put(state("o1", 3))
	refused := state("o1", 3)
	refused.Position = 9
	refused.Rejections = []domain.RejectedCommand{{CommandID: "c9", OpportunityID: "o1", Code: "version_conflict"}}
	put(refused)                                                        // a refusal: same version
	put(refused)                                                        // a redelivery writing it again
	put(state("o2", 2))                                                 // another key
	if err := s.onOpportunity(updateCtx{}, st, "o3", nil); err != nil { // a deletion
		t.Fatal(err)
	}
	if err := s.onOpportunity(updateCtx{}, st, "bad", []byte("not avro")); err != nil {
		t.Fatal(err)
	}
	put(state("o1", 4))
	if got, want := describe(drain(t, sub)), "o1@3#1 o2@2#2 o1@4#3"; got != want {
		t.Fatalf("published %q, want %q", got, want)
	}
	// PublishAnalytics on the Service reaches the same feed.
	s.PublishAnalytics(AnalyticsChange{PipelineIDs: []string{"default"}, Position: "0:12"})
	if got, want := describe(drain(t, sub)), "analytics:0:12#4"; got != want {
		t.Fatalf("analytics %q, want %q", got, want)
	}
}
