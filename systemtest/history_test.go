package systemtest

import (
	"encoding/binary"
	"fmt"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"path/filepath"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/linkedin/goavro/v2"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// tableRecordsOf returns the opportunity table records of id on the broker, oldest first.
func tableRecordsOf(t *testing.T, broker, id string) []*sarama.ConsumerMessage {
	t.Helper()
	var out []*sarama.ConsumerMessage
	for _, m := range testkit.ReadAll(t, broker, topics.OpportunityTable) {
		if string(m.Key) == id {
			out = append(out, m)
		}
	}
	return out
}

// historyVersions reads the whole audit trail of id through GET /history, page by page
// (limit per page), and returns the versions in the order served.
func historyVersions(t *testing.T, s *testkit.Service, id string, limit int) []int64 {
	t.Helper()
	var out []int64
	cursor := ""
	for pages := 0; pages < 10_000; pages++ {
		path := fmt.Sprintf("/opportunities/%s/history?limit=%d", id, limit)
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		r := s.Do("GET", path, nil, nil)
		s.MustStatus(r, 200)
		m := r.JSON(t)
		for _, it := range m["items"].([]any) {
			out = append(out, int64(it.(map[string]any)["version"].(float64)))
		}
		next, _ := m["nextCursor"].(string)
		if next == "" {
			return out
		}
		cursor = next
	}
	t.Fatal("history paging does not end")
	return nil
}

func wantVersions(t *testing.T, what string, got []int64, n int64) {
	t.Helper()
	if int64(len(got)) != n {
		t.Fatalf("%s: %d events, want %d", what, len(got), n)
	}
	for i, v := range got {
		if v != int64(i)+1 {
			t.Fatalf("%s: item %d has version %d, want %d (oldest first, no gap)", what, i, v, i+1)
		}
	}
}

// TestStateRecordFlatHistoryOnItsTopic is finding 4 of the reliability issue: a deal's table
// record used to carry its whole history (up to 1,000 events), so every command rewrote it all
// (3,843 PATCHes of one deal wrote 3,189 MB). Now the record holds the state and the recent
// events only: its size, and so the bytes each command writes to the changelog, is the same
// at 100 and at 1,000 events, while the history endpoint still serves every event, oldest
// first, paged, from the history topic.
func TestStateRecordFlatHistoryOnItsTopic(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	const id, patches = "opp-busy", 1000
	s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody(id), testkit.Wait), 201)
	for i := 1; i <= patches; i++ {
		// The note grows the state a little, as a real deal's fields do; the amount changes.
		body := map[string]any{"amount": fmt.Sprintf("%d.00", 10000+i), "nextStep": fmt.Sprintf("call %d", i)}
		hdr := map[string]string{}
		if i == patches {
			hdr = testkit.Wait
		}
		s.MustStatus(s.Do("PATCH", "/opportunities/"+id, body, hdr), map[bool]int{true: 200, false: 202}[i == patches])
	}
	r := s.Do("GET", "/opportunities/"+id, nil, nil)
	s.MustStatus(r, 200)
	if v := r.JSON(t)["version"]; v != float64(patches+1) {
		t.Fatalf("version %v, want %d", v, patches+1)
	}
	sizes := map[int64]int{}
	for _, m := range tableRecordsOf(t, s.Run.BrokerAddr, id) {
		agg, err := codecs.DecodeAggregate(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		sizes[agg.State.Version] = len(m.Value)
		if agg.State.Version == patches+1 && (len(agg.Events) > 16 || !agg.HistoryOnTopic) {
			t.Fatalf("last state keeps %d events (history on topic %v)", len(agg.Events), agg.HistoryOnTopic)
		}
	}
	at1, at100, at1000 := sizes[1], sizes[100], sizes[1000]
	t.Logf("table record bytes per command: %d at 1 event, %d at 100, %d at 1,000", at1, at100, at1000)
	if at1 == 0 || at100 == 0 || at1000 == 0 {
		t.Fatalf("table records missing: %v", []int{at1, at100, at1000})
	}
	if at1000 > at100+at100/50 {
		t.Fatalf("the table record grows with the history: %d bytes at 100 events, %d at 1,000", at100, at1000)
	}
	if at1000 > 32<<10 {
		t.Fatalf("table record of %d bytes: more than the state and a bounded ring", at1000)
	}
	wantVersions(t, "history, default page", historyVersions(t, s, id, 1000), patches+1)
	wantVersions(t, "history, pages of 64", historyVersions(t, s, id, 64), patches+1)
	keys := map[string]bool{}
	for _, m := range testkit.ReadAll(t, s.Run.BrokerAddr, topics.History) {
		if oid, _, ok := topics.ParseHistoryKey(string(m.Key)); ok && oid == id {
			keys[string(m.Key)] = true
		}
	}
	if len(keys) != patches+1 {
		t.Fatalf("history topic holds %d versions of %s, want %d", len(keys), id, patches+1)
	}
}

// v1AggregateFingerprint is the fingerprint of schemas/v1/aggregate.avsc, the layout that
// kept the whole history in the table record.
const v1AggregateFingerprint = 0xa62bed784141b949

// legacyAggregate builds the table value the previous layout wrote for an opportunity after a
// create and n-1 updates: the whole history inside, stamped with the v1 schema. goavro reading
// it with the v1 file proves it is one.
func legacyAggregate(t *testing.T, id string, n int, now time.Time) []byte {
	t.Helper()
	pipes := func(string) (*domain.Pipeline, bool) { p := domain.DefaultPipeline(); return &p, true }
	var agg domain.Aggregate
	agg.Position = -1
	at := now.Add(-time.Duration(n) * time.Hour)
	for i := 0; i < n; i++ {
		var c domain.Command
		if i == 0 {
			c = domain.Command{Type: domain.CmdCreate, CommandID: id + "-c", OpportunityID: id, Actor: "legacy", IssuedAt: at,
				Create: &domain.CreateOpportunity{Name: "Legacy deal", AccountID: "acc-1", OwnerID: "owner-1", Amount: "5000.00",
					Currency: "USD", CloseDate: now.AddDate(0, 2, 0).Format(time.DateOnly)}}
		} else {
			amount := fmt.Sprintf("%d.00", 5000+i)
			c = domain.Command{Type: domain.CmdUpdate, CommandID: fmt.Sprintf("%s-u%d", id, i), OpportunityID: id, Actor: "legacy",
				IssuedAt: at.Add(time.Duration(i) * time.Hour), Update: &domain.UpdateOpportunity{Amount: &amount}}
		}
		var cur *domain.Opportunity
		if agg.State.Version > 0 {
			cur = &agg.State
		}
		dec, err := domain.Decide(cur, c, domain.DecideContext{Now: c.IssuedAt, Pipelines: pipes})
		if err != nil {
			t.Fatal(err)
		}
		for j := range dec.Events {
			dec.Events[j].Position = -1
		}
		agg.State, agg.Events = dec.Next, append(agg.Events, dec.Events...)
	}
	cur, err := codecs.EncodeAggregate(agg) // no recentDeltas, historyOnTopic false, no fingerprints: the three trailing bytes
	if err != nil {
		t.Fatal(err)
	}
	const headerLen = 10
	body := cur[headerLen : len(cur)-3]
	codec, err := goavro.NewCodec(string(codecs.SchemaFiles()["schemas/v1/aggregate.avsc"]))
	if err != nil {
		t.Fatal(err)
	}
	if _, rest, err := codec.NativeFromBinary(body); err != nil || len(rest) != 0 {
		t.Fatalf("legacy body is not a v1 aggregate: %v (%d bytes left)", err, len(rest))
	}
	out := make([]byte, headerLen, headerLen+len(body))
	out[0], out[1] = 0xC3, 0x01
	binary.LittleEndian.PutUint64(out[2:], v1AggregateFingerprint)
	return append(out, body...)
}

// TestPreviousLayoutMigratedAtStart puts a table record of the previous layout (the whole
// history inside) on the opportunity table, as a store written by the earlier release holds
// it, and starts the service on it: the start asks the processor to migrate it, the history
// moves to the history topic, the state record shrinks to the new layout, the history endpoint
// serves every event throughout, and the deal goes on from there.
func TestPreviousLayoutMigratedAtStart(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	data := t.TempDir()
	b, err := topics.StartBroker(topics.BrokerOptions{DataDir: filepath.Join(data, "broker"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	s := testkit.StartService(t, testkit.ServiceOpts{Data: data, Brokers: []string{b.Addr()}})
	s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody("opp-current"), testkit.Wait), 201)
	s.Stop()

	const id, n = "opp-legacy", 40
	testkit.Produce(t, b.Addr(), topics.OpportunityTable, &sarama.ProducerMessage{
		Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(legacyAggregate(t, id, n, time.Now().UTC())),
	})
	s2 := testkit.StartService(t, testkit.ServiceOpts{Data: data, Brokers: []string{b.Addr()}})
	testkit.Eventually(t, "the legacy state stored in the new layout", func() bool {
		recs := tableRecordsOf(t, b.Addr(), id)
		agg, err := codecs.DecodeAggregate(recs[len(recs)-1].Value)
		return err == nil && agg.HistoryOnTopic && len(agg.Events) <= 16 && agg.State.Version == n
	})
	got := map[int64]bool{}
	for _, m := range testkit.ReadAll(t, b.Addr(), topics.History) {
		if oid, v, ok := topics.ParseHistoryKey(string(m.Key)); ok && oid == id {
			got[v] = true
		}
	}
	if len(got) != n {
		t.Fatalf("history topic holds %d versions of the legacy deal, want %d", len(got), n)
	}
	wantVersions(t, "legacy history after migration", historyVersions(t, s2, id, 7), n)
	r := s2.Do("POST", "/opportunities/"+id+"/stage", map[string]any{"stageId": "discovery"}, testkit.Wait)
	s2.MustStatus(r, 200)
	if v := r.JSON(t)["version"]; v != float64(n+1) {
		t.Fatalf("version after migration %v, want %d", v, n+1)
	}
	wantVersions(t, "legacy history after a new command", historyVersions(t, s2, id, 1000), n+1)
	wantVersions(t, "the current-layout deal", historyVersions(t, s2, "opp-current", 1000), 1)
	expectMigrated(t, s2, 1, "the start on the previous layout")
	// A second start finds nothing left to migrate.
	s2.Stop()
	s3 := testkit.StartService(t, testkit.ServiceOpts{Data: data, Brokers: []string{b.Addr()}})
	wantVersions(t, "legacy history after another start", historyVersions(t, s3, id, 1000), n+1)
	expectMigrated(t, s3, 0, "a second start migrated again")
}

// expectMigrated fails the test unless the service's crm_state_history_migrated_total is want.
func expectMigrated(t *testing.T, s *testkit.Service, want float64, what string) {
	t.Helper()
	m, err := testkit.Metrics(s.Run.HTTPAddr, "crm_state_history_migrated_total")
	if err != nil {
		t.Fatal(err)
	}
	if v, ok := m[""]; !ok || v != want {
		t.Fatalf("%s: crm_state_history_migrated_total is %v, want %v", what, m, want)
	}
}
