package processors

import (
	"fmt"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// The state keeps exactly the newest MaxRecentEvents events, in order, and the deltas of
// their commands only, however many commands a deal has had, while every event also goes to
// the history topic under its <id>|<version> key (a unit test of the callback on goka's
// tester; the integration and kill -9 tests run it against the broker).
func TestStateKeepsRecentEventsHistoryGoesToTopic(t *testing.T) {
	r := newProcRig(t, 1)
	tt, history, send := r.tt, r.history, r.send
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	send(domain.Command{Type: domain.CmdCreate, CommandID: "c0", OpportunityID: "opp-1", Actor: "alice", IssuedAt: t0,
		Create: &domain.CreateOpportunity{Name: "Deal", AccountID: "acc-1", OwnerID: "u-1", Amount: "100.00", Currency: "USD", CloseDate: "2026-06-30"}})
	// Past both rings' bounds: the events' and the command ids' (with their fingerprints).
	full := max(MaxRecentEvents, domain.MaxRecentCommandIDs)
	updates := full + 50
	var sizes []int
	for i := 1; i <= updates; i++ {
		amount := fmt.Sprintf("%d.00", 100+i)
		send(domain.Command{Type: domain.CmdUpdate, CommandID: fmt.Sprintf("u%d", i), OpportunityID: "opp-1", Actor: "alice",
			IssuedAt: t0.Add(time.Duration(i) * time.Minute), Update: &domain.UpdateOpportunity{Amount: &amount}})
		raw, err := aggregateCodec{}.Encode(tt.TableValue(goka.Table(topics.OpportunityTable), "opp-1"))
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, len(raw))
		if i == 10 || i == updates {
			st, ok := tt.TableValue(goka.Table(topics.OpportunityTable), "opp-1").(*stored)
			if !ok {
				t.Fatalf("after %d updates: no stored aggregate", i)
			}
			if st.agg.Events != nil {
				t.Fatalf("after %d updates: the events were decoded on read", i)
			}
			if err := st.materialize(); err != nil {
				t.Fatal(err)
			}
			total := i + 1
			want := min(total, MaxRecentEvents)
			if len(st.agg.Events) != want {
				t.Fatalf("after %d updates: %d events stored, want %d", i, len(st.agg.Events), want)
			}
			for j, e := range st.agg.Events {
				if v := int64(total - want + j + 1); e.Version != v {
					t.Fatalf("after %d updates: event %d has version %d, want %d", i, j, e.Version, v)
				}
			}
			if len(st.agg.RecentDeltas) == 0 {
				t.Fatalf("after %d updates: no deltas kept for re-emission", i)
			}
			for _, d := range st.agg.RecentDeltas {
				if d.Position < st.agg.Events[0].Position {
					t.Fatalf("after %d updates: a delta of position %d outlived its events (oldest %d)", i, d.Position, st.agg.Events[0].Position)
				}
			}
			if !st.agg.HistoryOnTopic {
				t.Fatalf("after %d updates: a new state is not marked as having its history on the topic", i)
			}
			if st.agg.State.Version != int64(total) || st.agg.State.Amount != int64(100+i)*100 {
				t.Fatalf("after %d updates: state version %d amount %d", i, st.agg.State.Version, st.agg.State.Amount)
			}
		}
	}
	// The state record stops growing once the rings are full.
	if first, last := sizes[full], sizes[len(sizes)-1]; last > first+first/20 {
		t.Errorf("state record grew from %d to %d bytes between %d and %d updates", first, last, full, updates)
	}
	for v := int64(1); v <= int64(updates)+1; v++ {
		key, val, ok := history.NextRaw()
		if !ok {
			t.Fatalf("history topic ends before version %d", v)
		}
		e, err := codecs.DecodeEvent(val)
		if err != nil {
			t.Fatal(err)
		}
		if key != topics.HistoryKey("opp-1", v) || e.Version != v {
			t.Fatalf("history record %q holds version %d, want %q", key, e.Version, topics.HistoryKey("opp-1", v))
		}
	}
}

// A state of the previous layout (its whole history in the state) is migrated by a
// topics.HeaderMigrateHistory record: its events go to the history topic once, the state keeps only
// the recent ones, and a repeat does nothing.
func TestMigrateHistoryRecord(t *testing.T) {
	r := newProcRig(t, 1)
	tt, history, metrics := r.tt, r.history, r.metrics

	const n = 40
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	cmds := []domain.Command{{Type: domain.CmdCreate, CommandID: "c0", OpportunityID: "opp-1", Actor: "alice", IssuedAt: t0,
		Create: &domain.CreateOpportunity{Name: "Deal", AccountID: "acc-1", OwnerID: "u-1", Amount: "100.00", Currency: "USD", CloseDate: "2026-06-30"}}}
	for i := 1; i < n; i++ {
		amount := fmt.Sprintf("%d.00", 100+i)
		cmds = append(cmds, domain.Command{Type: domain.CmdUpdate, CommandID: fmt.Sprintf("u%d", i), OpportunityID: "opp-1",
			Actor: "alice", IssuedAt: t0.Add(time.Duration(i) * time.Minute), Update: &domain.UpdateOpportunity{Amount: &amount}})
	}
	var old domain.Aggregate
	old.Position = n - 1
	for i, c := range cmds {
		var cur *domain.Opportunity
		if old.State.Version > 0 {
			cur = &old.State
		}
		dec, err := domain.Decide(cur, c, domain.DecideContext{Now: c.IssuedAt, Pipelines: func(string) (*domain.Pipeline, bool) {
			p := domain.DefaultPipeline()
			return &p, true
		}})
		if err != nil {
			t.Fatal(err)
		}
		for j := range dec.Events {
			dec.Events[j].Position = int64(i)
		}
		old.State, old.Events = dec.Next, append(old.Events, dec.Events...)
	}
	b, err := codecs.EncodeAggregate(old) // HistoryOnTopic false: the previous layout's meaning
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ { // take the offsets the old commands had (these go to the DLQ)
		tt.Consume(topics.Commands, "filler", []byte{})
	}
	tt.SetTableValue(goka.Table(topics.OpportunityTable), "opp-1", b)

	migrate := func() {
		tt.Consume(topics.Commands, "opp-1", []byte{}, tester.WithHeaders(goka.Headers{topics.HeaderMigrateHistory: []byte("1")}))
	}
	migrate()
	for v := int64(1); v <= n; v++ {
		key, _, ok := history.NextRaw()
		if !ok || key != topics.HistoryKey("opp-1", v) {
			t.Fatalf("history record %d: %q, %v", v, key, ok)
		}
	}
	st := tt.TableValue(goka.Table(topics.OpportunityTable), "opp-1").(*stored)
	if err := st.materialize(); err != nil {
		t.Fatal(err)
	}
	if !st.agg.HistoryOnTopic || len(st.agg.Events) != MaxRecentEvents || st.agg.Events[0].Version != n-MaxRecentEvents+1 ||
		st.agg.Position != n-1 || st.agg.State.Version != n {
		t.Fatalf("migrated state: flag %v, %d events from version %d, position %d, version %d",
			st.agg.HistoryOnTopic, len(st.agg.Events), st.agg.Events[0].Version, st.agg.Position, st.agg.State.Version)
	}
	migrate()
	if key, _, ok := history.NextRaw(); ok {
		t.Fatalf("a repeated migration wrote %q again", key)
	}
	if got := counterValue(t, metrics.Migrated); got != 1 {
		t.Fatalf("crm_state_history_migrated_total = %v, want 1", got)
	}
	// The next command continues the history on the topic.
	stage := domain.Command{Type: domain.CmdChangeStage, CommandID: "s1", OpportunityID: "opp-1", Actor: "alice",
		IssuedAt: t0.Add(time.Hour), ChangeStage: &domain.ChangeStage{StageID: "discovery"}}
	cb, err := codecs.EncodeCommand(stage)
	if err != nil {
		t.Fatal(err)
	}
	tt.Consume(topics.Commands, "opp-1", cb)
	if key, _, ok := history.NextRaw(); !ok || key != topics.HistoryKey("opp-1", n+1) {
		t.Fatalf("after the migration the next event went to %q (%v)", key, ok)
	}
}
