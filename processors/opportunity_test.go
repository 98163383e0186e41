package processors

import (
	"bytes"
	"context"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lovoo/goka"
	"github.com/lovoo/goka/tester"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// procRig is the opportunity processor on goka's tester, one partition, with trackers on its
// outputs.
type procRig struct {
	t       *testing.T
	tt      *tester.Tester
	metrics *Metrics
	events  *tester.QueueTracker
	history *tester.QueueTracker
	deltas  *tester.QueueTracker
	dlq     *tester.QueueTracker
}

func newProcRig(t *testing.T, partitions int32) *procRig {
	t.Helper()
	tt := tester.New(t)
	m := NewMetrics(prometheus.NewRegistry())
	cfg := OpportunityConfig{Partitions: partitions, Logger: slog.New(slog.DiscardHandler), Metrics: m}
	proc, err := goka.NewProcessor(nil, OpportunityGraph(cfg), goka.WithTester(tt))
	if err != nil {
		t.Fatal(err)
	}
	r := &procRig{t: t, tt: tt, metrics: m, events: tt.NewQueueTracker(topics.Events), history: tt.NewQueueTracker(topics.History),
		deltas: tt.NewQueueTracker(topics.AnalyticsDeltas), dlq: tt.NewQueueTracker(topics.DLQ)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- proc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	tt.SetTableValue(goka.Table(topics.Pipelines), domain.DefaultPipelineID, domain.DefaultPipeline())
	return r
}

func (r *procRig) send(c domain.Command) {
	r.t.Helper()
	b, err := codecs.EncodeCommand(c)
	if err != nil {
		r.t.Fatal(err)
	}
	r.tt.Consume(topics.Commands, c.OpportunityID, b)
}

// counterValue reads a counter through the registry's own exposition.
func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil || len(mfs) != 1 || len(mfs[0].GetMetric()) != 1 {
		t.Fatalf("gather: %v (%d families)", err, len(mfs))
	}
	return mfs[0].GetMetric()[0].GetCounter().GetValue()
}

// drain returns what a tracker holds now, key and raw value.
func drain(q *tester.QueueTracker) (keys []string, values [][]byte) {
	for {
		k, v, ok := q.NextRaw()
		if !ok {
			return keys, values
		}
		keys, values = append(keys, k), append(values, v)
	}
}

func (r *procRig) stored(id string) *stored {
	r.t.Helper()
	st, ok := r.tt.TableValue(goka.Table(topics.OpportunityTable), id).(*stored)
	if !ok {
		r.t.Fatalf("no stored aggregate for %s", id)
	}
	if err := st.materialize(); err != nil {
		r.t.Fatal(err)
	}
	return st
}

var tp0 = time.Date(2026, 4, 1, 9, 0, 0, 0, time.UTC)

func createCmd(id, cmdID string) domain.Command {
	return domain.Command{Type: domain.CmdCreate, CommandID: cmdID, OpportunityID: id, Actor: "alice", IssuedAt: tp0,
		Create: &domain.CreateOpportunity{Name: "Deal", AccountID: "acc-1", OwnerID: "u-1", Amount: "100.00", Currency: "USD", CloseDate: "2026-06-30"}}
}

func stageCmd(id, cmdID, stage string) domain.Command {
	return domain.Command{Type: domain.CmdChangeStage, CommandID: cmdID, OpportunityID: id, Actor: "bob",
		IssuedAt: tp0.Add(time.Hour), ChangeStage: &domain.ChangeStage{StageID: stage}}
}

// A record at or below the stored position is a redelivery after a crash: it changes nothing,
// but its own outputs, the event (on the events and the history topics) and the analytics
// deltas stored with its position, are published again, identical, and the state is written
// again. The crash is simulated by moving the stored outputs of the last record to the offset
// the redelivered copy arrives at.
func TestRedeliveryReemitsStoredOutputs(t *testing.T) {
	r := newProcRig(t, 1)
	r.send(createCmd("opp-1", "c1"))             // offset 0
	r.send(stageCmd("opp-1", "c2", "discovery")) // offset 1
	_, firstEvents := drain(r.events)
	_, _ = drain(r.history)
	_, firstDeltas := drain(r.deltas)
	if len(firstEvents) != 2 || len(firstDeltas) == 0 {
		t.Fatalf("first delivery: %d events, %d deltas", len(firstEvents), len(firstDeltas))
	}
	st := r.stored("opp-1")
	agg := *st.agg
	// The deltas of offset 1, as first published.
	var wantDeltas [][]byte
	for _, d := range agg.RecentDeltas {
		if d.Position == 1 {
			wantDeltas = append(wantDeltas, d.Record)
		}
	}
	// As if offset 2 had carried the stage change and its commit had been lost.
	agg.Position = 2
	for i := range agg.Events {
		if agg.Events[i].Position == 1 {
			agg.Events[i].Position = 2
		}
	}
	for i := range agg.RecentDeltas {
		if agg.RecentDeltas[i].Position == 1 {
			agg.RecentDeltas[i].Position = 2
		}
	}
	b, err := codecs.EncodeAggregate(agg)
	if err != nil {
		t.Fatal(err)
	}
	r.tt.SetTableValue(goka.Table(topics.OpportunityTable), "opp-1", b)
	r.send(stageCmd("opp-1", "c2", "discovery")) // offset 2: the redelivered copy

	keys, events := drain(r.events)
	if len(events) != 1 || keys[0] != "opp-1" {
		t.Fatalf("re-emitted %d events, want the stage change again", len(events))
	}
	again, err := codecs.DecodeEvent(events[0])
	if err != nil {
		t.Fatal(err)
	}
	first, err := codecs.DecodeEvent(firstEvents[1])
	if err != nil {
		t.Fatal(err)
	}
	first.Position = 2 // moved with the simulated crash; everything else is the same event
	if !reflect.DeepEqual(again, first) {
		t.Fatalf("re-emitted event\n %+v\nwant\n %+v", again, first)
	}
	hkeys, _ := drain(r.history)
	if len(hkeys) != 1 || hkeys[0] != topics.HistoryKey("opp-1", 2) {
		t.Fatalf("re-emitted history %v", hkeys)
	}
	_, deltas := drain(r.deltas)
	if !reflect.DeepEqual(deltas, wantDeltas) {
		t.Fatalf("re-emitted %d deltas, want the %d of the first delivery byte for byte", len(deltas), len(wantDeltas))
	}
	after := r.stored("opp-1")
	if after.agg.State.Version != 2 || after.agg.Position != 2 || len(after.agg.Events) != 2 {
		t.Fatalf("a redelivery changed the state: version %d, position %d, %d events", after.agg.State.Version, after.agg.Position, len(after.agg.Events))
	}
	if got := counterValue(t, r.metrics.Redelivered); got != 1 {
		t.Fatalf("crm_records_redelivered_total = %v", got)
	}
}

// Undecodable and empty records go to the DLQ with the reason and the source position in
// KIP-1034 headers, the original bytes kept; the partition goes on with the next record. A
// record on the wrong partition that is too large to forward goes there too.
func TestPoisonRecordsGoToTheDLQ(t *testing.T) {
	r := newProcRig(t, 4)
	// A key of partition 0 of 4, which is the tester's only partition.
	key := ""
	for i := 0; ; i++ {
		if k := "opp-" + strings.Repeat("x", i); topics.PartitionOf(k, 4) == 0 {
			key = k
			break
		}
	}
	r.tt.Consume(topics.Commands, key, []byte("not avro"))
	r.tt.Consume(topics.Commands, key, []byte{})
	var wrong string
	for i := 0; ; i++ {
		if k := "opp-w" + strings.Repeat("y", i); topics.PartitionOf(k, 4) != 0 {
			wrong = k
			break
		}
	}
	r.tt.Consume(topics.Commands, wrong, bytes.Repeat([]byte("z"), topics.MaxMessageBytes))
	r.send(createCmd(key, "c1"))

	var reasons []string
	for {
		hdr, k, v, ok := r.dlq.NextRawWithHeaders()
		if !ok {
			break
		}
		if string(hdr[topics.HeaderDLQTopic]) != topics.Commands || string(hdr[topics.HeaderDLQPartition]) != "0" || len(hdr[topics.HeaderDLQOffset]) == 0 ||
			len(hdr[topics.HeaderDLQMessage]) == 0 {
			t.Fatalf("DLQ record of %q lacks its source headers: %v", k, hdr)
		}
		reasons = append(reasons, string(hdr[topics.HeaderDLQMessage]))
		if k == key && len(v) > 0 && string(v) != "not avro" {
			t.Fatalf("DLQ changed the original bytes: %q", v)
		}
		if k == wrong && string(hdr[topics.HeaderDLQTruncated]) != "true" {
			t.Fatalf("the oversized record was not marked truncated: %v", hdr)
		}
	}
	if len(reasons) != 3 {
		t.Fatalf("%d DLQ records, want 3: %q", len(reasons), reasons)
	}
	if !strings.Contains(reasons[1], "empty") || !strings.Contains(reasons[2], "too large") {
		t.Fatalf("DLQ reasons %q", reasons)
	}
	if st := r.stored(key); st.agg.State.Version != 1 {
		t.Fatalf("the record after the poison ones was not applied: version %d", st.agg.State.Version)
	}
}
