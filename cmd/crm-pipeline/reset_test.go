package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"github.com/crm-pipeline/crm-pipeline/step"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// TestResetAnalyticsOnTheEmbeddedBrokersLog runs reset-analytics as an operator of the
// embedded broker does: no --brokers, the service (and with it the broker) stopped. The
// command opens the broker's log under --data itself, folds the opportunity table, and
// writes the rebuilt buckets there: the won deal on its close date with its cycle in days,
// guarded at the table's position, a stale key emptied. A deal whose history does not reach
// back to version 1 is refused, unless --allow-incomplete-history; a dry run writes nothing.
func TestResetAnalyticsOnTheEmbeddedBrokersLog(t *testing.T) {
	data := t.TempDir()
	dir := filepath.Join(data, "broker")
	b, err := topics.StartBroker(topics.BrokerOptions{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	provisionFor(t, b.Addr())

	// A deal created on 2027-01-01 and won two days later: its events are the state
	// record's recent ones (the history topic is left empty).
	env := step.Env{Key: "won-1", Pipelines: func(string) (*domain.Pipeline, bool) { p := domain.DefaultPipeline(); return &p, true }}
	created := time.Date(2027, 1, 1, 9, 0, 0, 0, time.UTC)
	res := step.Apply(domain.Aggregate{Position: -1, HistoryOnTopic: true}, domain.Command{Type: domain.CmdCreate, CommandID: "c", OpportunityID: "won-1",
		IssuedAt: created, Actor: "a", Create: &domain.CreateOpportunity{Name: "Deal", AccountID: "acc", OwnerID: "u-1", Amount: "10.00", Currency: "USD", CloseDate: "2027-03-31"}},
		created, step.Position{Source: "0", Offset: 4}, env)
	res = step.Apply(res.Aggregate, domain.Command{Type: domain.CmdCloseWon, CommandID: "w", OpportunityID: "won-1", Actor: "a",
		IssuedAt: created.Add(50 * time.Hour), CloseWon: &domain.CloseWon{}}, created, step.Position{Source: "0", Offset: 9}, env)
	if res.Rejected != nil || res.Aggregate.State.CloseDate.String() != "2027-01-03" {
		t.Fatalf("won: %+v", res.Rejected)
	}
	won, err := codecs.EncodeAggregate(res.Aggregate)
	if err != nil {
		t.Fatal(err)
	}
	// A deal whose state keeps only its last event: no complete history anywhere.
	trimmed := res.Aggregate
	trimmed.State.ID, trimmed.Events = "trimmed-1", trimmed.Events[1:]
	trimmed.State.OwnerID = "u-2"
	part, err := codecs.EncodeAggregate(trimmed)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := codecs.EncodeBucket(analytics.Bucket{Values: map[string]int64{"won/count": 1, "won/cycleMs": 86400000}})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Produce(t, b.Addr(), topics.OpportunityTable, &sarama.ProducerMessage{Key: sarama.StringEncoder("won-1"), Value: sarama.ByteEncoder(won)})
	testkit.Produce(t, b.Addr(), topics.OpportunityTable, &sarama.ProducerMessage{Key: sarama.StringEncoder("trimmed-1"), Value: sarama.ByteEncoder(part)})
	testkit.Produce(t, b.Addr(), topics.AnalyticsTable, &sarama.ProducerMessage{Key: sarama.StringEncoder("W|default|2027-01-03|u-1"), Value: sarama.ByteEncoder(stale)},
		&sarama.ProducerMessage{Key: sarama.StringEncoder("W|default|2027-01-02|u-1"), Value: sarama.ByteEncoder(stale)})
	b.Close()

	reset := func(extra ...string) (string, error) {
		t.Helper()
		var out, errOut bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		// Nothing listens on port 1: the command opens the log itself.
		args := append([]string{"--data", data, "--embedded-broker", "127.0.0.1:1", "--wait", "1s"}, extra...)
		err := runResetAnalytics(ctx, append(args, "--log-format", "text"), &out, &errOut)
		t.Logf("reset-analytics %q: %v\n%s%s", extra, err, out.String(), errOut.String())
		return out.String(), err
	}
	if _, err := reset(); err == nil || !strings.Contains(err.Error(), "trimmed-1") || !strings.Contains(err.Error(), "nothing written") {
		t.Fatalf("an incomplete history: %v", err)
	}
	out, err := reset("--allow-incomplete-history", "--dry-run")
	if err != nil || !strings.Contains(out, "would write (dry run) 6 buckets and 1 emptied keys") {
		t.Fatalf("dry run: %v\n%s", err, out)
	}
	if got := bucketsOn(t, dir); len(got) != 2 || got["W|default|2027-01-02|u-1"].Values["won/cycleMs"] != 86400000 {
		t.Fatalf("a refused reset or a dry run wrote: %v", got)
	}
	out, err = reset("--allow-incomplete-history")
	// won-1: forecast, win/loss, the creation's and the closing's event buckets; trimmed-1:
	// forecast and win/loss only.
	if err != nil || !strings.Contains(out, "folded 2 opportunities (2 events; 0 of the previous layout; 1 from their state alone)") ||
		!strings.Contains(out, "wrote 6 buckets and 1 emptied keys") {
		t.Fatalf("reset: %v\n%s", err, out)
	}

	got := bucketsOn(t, dir)
	guard := map[string]int64{strconv.Itoa(int(topics.PartitionOf("won-1", 4))): 9}
	if topics.PartitionOf("won-1", 4) != topics.PartitionOf("trimmed-1", 4) {
		guard[strconv.Itoa(int(topics.PartitionOf("trimmed-1", 4)))] = 9
	}
	w := got["W|default|2027-01-03|u-1"]
	if w.Values["won/count"] != 1 || w.Values["won/cycleDays"] != 3 || w.Values["won/cycleMs"] != 0 || len(w.Applied) != len(guard) {
		t.Fatalf("won deal's bucket %+v, guard want %v", w, guard)
	}
	for src, pos := range guard {
		if w.Applied[src] != pos {
			t.Fatalf("guard %v, want %v", w.Applied, guard)
		}
	}
	if e := got["W|default|2027-01-02|u-1"]; len(e.Values) != 0 || len(e.Applied) == 0 {
		t.Fatalf("the stale key is not emptied with a guard: %+v", e)
	}
	if e := got["E|default|2027-01-03|u-1"]; e.Values["won/count"] != 1 || e.Values["move/qualification/closed_won"] != 1 {
		t.Fatalf("the closing event's entries are not on the close date: %+v", e)
	}
	if f := got["F|default|2027-01-03|u-2"]; f.Values["closedWon/count"] != 1 {
		t.Fatalf("the trimmed deal's state contribution: %+v", f)
	}
	if _, ok := got["E|default|2027-01-01|u-2"]; ok {
		t.Fatal("the trimmed deal has event entries")
	}

	err = runResetAnalytics(context.Background(), []string{"--data", t.TempDir(), "--embedded-broker", "127.0.0.1:1"},
		&bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no embedded broker log") {
		t.Fatalf("an empty --data: %v", err)
	}
}

// provisionFor creates the service's topics on a broker, as serve does.
func provisionFor(t *testing.T, addr string) {
	t.Helper()
	c, err := topics.NewClient(topics.ClientOptions{Brokers: []string{addr}, ClientID: "reset-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := topics.Provision(admin, topics.Catalog(4), 1, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
}

// bucketsOn opens the broker's log again and reads its analytics table as compaction leaves it.
func bucketsOn(t *testing.T, dir string) map[string]analytics.Bucket {
	t.Helper()
	b, err := topics.StartBroker(topics.BrokerOptions{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	out := map[string]analytics.Bucket{}
	for _, m := range testkit.ReadAll(t, b.Addr(), topics.AnalyticsTable) {
		if len(m.Value) == 0 {
			delete(out, string(m.Key))
			continue
		}
		bk, err := codecs.DecodeBucket(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		out[string(m.Key)] = bk
	}
	return out
}
