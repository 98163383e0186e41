package processors

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// The history carried encoded keeps exactly the newest MaxStoredEvents events, in order, as
// commands append to it one by one (a unit test of the callback on goka's tester; the
// integration and kill -9 tests run it against the broker).
func TestStoredHistoryKeepsNewest(t *testing.T) {
	tt := tester.New(t)
	cfg := OpportunityConfig{Partitions: 1, Logger: slog.New(slog.DiscardHandler), Metrics: NewMetrics(prometheus.NewRegistry())}
	proc, err := goka.NewProcessor(nil, OpportunityGraph(cfg), goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	tt.SetTableValue(goka.Table(topics.Pipelines), domain.DefaultPipelineID, domain.DefaultPipeline())

	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	send := func(c domain.Command) {
		t.Helper()
		b, err := codecs.EncodeCommand(c)
		if err != nil {
			t.Fatal(err)
		}
		tt.Consume(topics.Commands, c.OpportunityID, b)
	}
	send(domain.Command{Type: domain.CmdCreate, CommandID: "c0", OpportunityID: "opp-1", Actor: "alice", IssuedAt: t0,
		Create: &domain.CreateOpportunity{Name: "Deal", AccountID: "acc-1", OwnerID: "u-1", Amount: "100.00", Currency: "USD", CloseDate: "2026-06-30"}})
	const updates = MaxStoredEvents + 50
	for i := 1; i <= updates; i++ {
		amount := fmt.Sprintf("%d.00", 100+i)
		send(domain.Command{Type: domain.CmdUpdate, CommandID: fmt.Sprintf("u%d", i), OpportunityID: "opp-1", Actor: "alice",
			IssuedAt: t0.Add(time.Duration(i) * time.Minute), Update: &domain.UpdateOpportunity{Amount: &amount}})
		if i == 10 || i == updates {
			st, ok := tt.TableValue(goka.Table(topics.OpportunityTable), "opp-1").(*stored)
			if !ok {
				t.Fatalf("after %d updates: no stored aggregate", i)
			}
			if st.agg.Events != nil {
				t.Fatalf("after %d updates: the history was decoded on read", i)
			}
			if err := st.materialize(); err != nil {
				t.Fatal(err)
			}
			total := i + 1
			want := min(total, MaxStoredEvents)
			if len(st.agg.Events) != want {
				t.Fatalf("after %d updates: %d events stored, want %d", i, len(st.agg.Events), want)
			}
			for j, e := range st.agg.Events {
				if v := int64(total - want + j + 1); e.Version != v {
					t.Fatalf("after %d updates: event %d has version %d, want %d", i, j, e.Version, v)
				}
			}
			if st.agg.State.Version != int64(total) || st.agg.State.Amount != int64(100+i)*100 {
				t.Fatalf("after %d updates: state version %d amount %d", i, st.agg.State.Version, st.agg.State.Amount)
			}
		}
	}
}
