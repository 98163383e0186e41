package systemtest

import (
	"bytes"
	"fmt"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// TestLifecycleOverHTTP drives a full opportunity lifecycle through the HTTP API and checks
// the answers, the audit trail on the events topic, the closed-won hand-off and the refusals.
func TestLifecycleOverHTTP(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	broker := s.Run.BrokerAddr

	r := s.Do("POST", "/opportunities", testkit.CreateBody("opp-life"), testkit.Wait)
	s.MustStatus(r, 201)
	o := r.JSON(t)
	if o["version"] != 1.0 || o["stageId"] != "qualification" || o["status"] != "open" ||
		o["probability"] != 10.0 || o["forecastCategory"] != "pipeline" || o["weightedAmount"] != "1250.00" {
		t.Fatalf("created opportunity: %s", r.Body)
	}

	// A probability override survives a stage change until cleared with null.
	r = s.Do("PATCH", "/opportunities/opp-life", map[string]any{"probability": 35}, testkit.Wait)
	s.MustStatus(r, 200)
	r = s.Do("POST", "/opportunities/opp-life/stage", map[string]any{"stageId": "proposal"}, testkit.Wait)
	s.MustStatus(r, 200)
	if o = r.JSON(t); o["probability"] != 35.0 || o["forecastCategory"] != "best_case" || o["stageId"] != "proposal" {
		t.Fatalf("after stage change with override: %s", r.Body)
	}
	r = s.Do("PATCH", "/opportunities/opp-life", `{"probability": null}`, testkit.Wait)
	s.MustStatus(r, 200)
	if o = r.JSON(t); o["probability"] != 50.0 || o["weightedAmount"] != "6250.00" {
		t.Fatalf("after clearing the override: %s", r.Body)
	}

	// Refusals.
	r = s.Do("POST", "/opportunities/opp-life/close-lost", map[string]any{}, testkit.Wait)
	if r.Status != 422 || !strings.Contains(string(r.Body), "reason") {
		t.Fatalf("close-lost without reason: %d %s", r.Status, r.Body)
	}
	r = s.Do("POST", "/opportunities/opp-life/stage", map[string]any{"stageId": "negotiation", "expectedVersion": 1}, testkit.Wait)
	if r.Status != 409 || r.Header.Get("Content-Type") != "application/problem+json" {
		t.Fatalf("stale expectedVersion: %d %s", r.Status, r.Body)
	}

	r = s.Do("POST", "/opportunities/opp-life/close-won", map[string]any{"amount": "13000.00"}, testkit.Wait)
	s.MustStatus(r, 200)
	if o = r.JSON(t); o["status"] != "won" || o["probability"] != 100.0 || o["forecastCategory"] != "closed" ||
		o["amount"] != "13000.00" || o["closedAt"] == nil || o["stageId"] != "closed_won" {
		t.Fatalf("after close-won: %s", r.Body)
	}
	r = s.Do("PATCH", "/opportunities/opp-life", map[string]any{"name": "x"}, testkit.Wait)
	if r.Status != 422 || !strings.Contains(string(r.Body), string(domain.CodeClosed)) {
		t.Fatalf("update of a closed deal: %d %s", r.Status, r.Body)
	}
	r = s.Do("POST", "/opportunities/opp-life/reopen", map[string]any{"stageId": "negotiation"}, testkit.Wait)
	s.MustStatus(r, 200)
	if o = r.JSON(t); o["status"] != "open" || o["closedAt"] != nil || o["probability"] != 80.0 || o["forecastCategory"] != "commit" {
		t.Fatalf("after reopen: %s", r.Body)
	}
	r = s.Do("POST", "/opportunities/opp-life/close-lost", map[string]any{"reason": "price", "competitor": "Acme"}, testkit.Wait)
	s.MustStatus(r, 200)
	if o = r.JSON(t); o["status"] != "lost" || o["lossReason"] != "price" || o["probability"] != 0.0 || o["forecastCategory"] != "omitted" {
		t.Fatalf("after close-lost: %s", r.Body)
	}
	finalVersion := int64(o["version"].(float64))

	// GET and history agree with the answers.
	r = s.Do("GET", "/opportunities/opp-life", nil, nil)
	s.MustStatus(r, 200)
	if got := r.JSON(t)["version"]; got != float64(finalVersion) {
		t.Fatalf("GET version %v, want %d", got, finalVersion)
	}
	r = s.Do("GET", "/opportunities/opp-life/history", nil, nil)
	s.MustStatus(r, 200)
	items := r.JSON(t)["items"].([]any)
	if int64(len(items)) != finalVersion {
		t.Fatalf("history has %d items, want %d", len(items), finalVersion)
	}
	for i, it := range items {
		if v := it.(map[string]any)["version"]; v != float64(i+1) {
			t.Fatalf("history item %d has version %v", i, v)
		}
	}

	// The audit trail: versions 1..n, one closed-won record, the refusals on their topic.
	events := testkit.EventsOf(t, broker, "opp-life")
	if int64(len(events)) != finalVersion {
		t.Fatalf("events topic has %d versions, want %d", len(events), finalVersion)
	}
	wantTypes := []domain.EventType{domain.EvtCreated, domain.EvtUpdated, domain.EvtStageChanged, domain.EvtUpdated,
		domain.EvtClosedWon, domain.EvtReopened, domain.EvtClosedLost}
	for i, e := range events {
		if e.Type != wantTypes[i] {
			t.Errorf("event %d: %s, want %s", i+1, e.Type, wantTypes[i])
		}
	}
	var won []domain.ClosedWon
	for _, m := range testkit.ReadAll(t, broker, topics.ClosedWon) {
		w, err := codecs.DecodeClosedWon(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if w.OpportunityID == "opp-life" {
			won = append(won, w)
		}
	}
	if len(won) != 1 || won[0].Amount != 1300000 || won[0].Currency != "USD" || won[0].EventID != "opp-life:5" {
		t.Fatalf("closed-won records: %+v", won)
	}
	codes := map[string]bool{}
	for _, m := range testkit.ReadAll(t, broker, topics.Rejections) {
		rej, err := codecs.DecodeRejected(m.Value)
		if err != nil {
			t.Fatal(err)
		}
		if rej.OpportunityID == "opp-life" {
			codes[rej.Code] = true
		}
	}
	if !codes[string(domain.CodeConflict)] || !codes[string(domain.CodeClosed)] {
		t.Fatalf("rejections topic codes for opp-life: %v", codes)
	}
}

// TestRefusals checks every refusal path end to end, with the HTTP status each maps to.
func TestRefusals(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody("opp-ref"), testkit.Wait), 201)

	strict := map[string]any{"id": "strict", "name": "Strict", "stages": []any{
		map[string]any{"id": "open1", "name": "Open", "probability": 10, "forecastCategory": "pipeline", "status": "open"},
		map[string]any{"id": "open2", "name": "Needs next step", "probability": 40, "forecastCategory": "commit", "status": "open", "requiredFields": []string{"nextStep"}},
		map[string]any{"id": "won", "name": "Won", "probability": 100, "forecastCategory": "closed", "status": "won"},
		map[string]any{"id": "lost", "name": "Lost", "probability": 0, "forecastCategory": "omitted", "status": "lost"},
	}}
	s.MustStatus(s.Do("PUT", "/pipelines/strict", strict, nil), 200)
	// A PUT answers once this instance's view has the pipeline; the processor's own lookup
	// view follows within milliseconds (configuration is eventually consistent, as a Kafka
	// Streams GlobalKTable is). With the required field the create is accepted.
	ok := testkit.CreateBody("opp-strict-ok")
	ok["pipelineId"], ok["stageId"], ok["nextStep"] = "strict", "open2", "send the quote"
	testkit.Eventually(t, "a create in the new pipeline", func() bool {
		return s.Do("POST", "/opportunities", ok, testkit.Wait).Status == 201
	})

	cases := []struct {
		name, method, path string
		body               any
		status             int
		code               domain.RejectCode
	}{
		{"unknown opportunity", "PATCH", "/opportunities/nope", map[string]any{"name": "x"}, 404, domain.CodeNotFound},
		{"create of an existing id", "POST", "/opportunities", testkit.CreateBody("opp-ref"), 409, domain.CodeAlreadyExists},
		{"unknown pipeline", "POST", "/opportunities", func() any { b := testkit.CreateBody("opp-p"); b["pipelineId"] = "nope"; return b }(), 422, domain.CodeUnknownPipeline},
		{"unknown stage", "POST", "/opportunities/opp-ref/stage", map[string]any{"stageId": "nope"}, 422, domain.CodeUnknownStage},
		{"stage move to won", "POST", "/opportunities/opp-ref/stage", map[string]any{"stageId": "closed_won"}, 422, domain.CodeInvalidTransition},
		{"reopen an open deal", "POST", "/opportunities/opp-ref/reopen", map[string]any{"stageId": "proposal"}, 422, domain.CodeNotClosed},
		{"required field missing", "POST", "/opportunities", func() any {
			b := testkit.CreateBody("opp-strict")
			b["pipelineId"], b["stageId"] = "strict", "open2"
			return b
		}(), 422, domain.CodeRequiredFields},
		{"closed category on an open deal", "PATCH", "/opportunities/opp-ref", map[string]any{"forecastCategory": "closed"}, 422, domain.CodeInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := s.Do(c.method, c.path, c.body, testkit.Wait)
			if r.Status != c.status || !strings.Contains(string(r.Body), string(c.code)) ||
				r.Header.Get("Content-Type") != "application/problem+json" {
				t.Fatalf("got %d %s, want %d with code %s", r.Status, r.Body, c.status, c.code)
			}
		})
	}
	// Hostile values are refused with a field-level error, before anything is sent.
	hostile := []struct {
		field string
		set   func(map[string]any)
	}{
		{"name", func(b map[string]any) { b["name"] = strings.Repeat("x", 10*1024) }},
		{"amount", func(b map[string]any) { b["amount"] = "99999999999999999999999.00" }},
		{"amount", func(b map[string]any) { b["amount"] = "-5.00" }},
		{"amount", func(b map[string]any) { b["amount"] = "1.001" }},
		{"closeDate", func(b map[string]any) { b["closeDate"] = "9999-12-31" }},
		{"closeDate", func(b map[string]any) { b["closeDate"] = "2026-02-30" }},
		{"currency", func(b map[string]any) { b["currency"] = "XYZ" }},
		{"probability", func(b map[string]any) { b["probability"] = 101 }},
	}
	for _, h := range hostile {
		b := testkit.CreateBody("opp-hostile")
		h.set(b)
		r := s.Do("POST", "/opportunities", b, testkit.Wait)
		if r.Status != 422 && r.Status != 400 || !strings.Contains(string(r.Body), `"field":"`+h.field+`"`) {
			t.Errorf("hostile %s: %d %s", h.field, r.Status, r.Body)
		}
	}
	uni := testkit.CreateBody("opp-unicode")
	uni["name"] = "Große Übernahme 株式会社 🚀"
	r := s.Do("POST", "/opportunities", uni, testkit.Wait)
	s.MustStatus(r, 201)
	if got := r.JSON(t)["name"]; got != uni["name"] {
		t.Fatalf("unicode name came back as %q", got)
	}

	// Bad requests never reach Kafka and are problem+json.
	for _, body := range []string{`{`, `{"name": 1}`, `{"amount": 12.5, "currency": "USD"}`} {
		r := s.Do("POST", "/opportunities", body, nil)
		if r.Status < 400 || r.Status >= 500 || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("body %s: %d %s", body, r.Status, r.Body)
		}
	}
}

// TestIdempotencyKey checks that a write retried with the same key takes effect once.
func TestIdempotencyKey(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	body := testkit.CreateBody("")
	delete(body, "id")
	key := map[string]string{"Prefer": "wait=10", "Idempotency-Key": "create-abc"}
	r1 := s.Do("POST", "/opportunities", body, key)
	s.MustStatus(r1, 201)
	r2 := s.Do("POST", "/opportunities", body, key)
	if r2.Status != 200 && r2.Status != 201 {
		t.Fatalf("retried create: %d %s", r2.Status, r2.Body)
	}
	id := r1.JSON(t)["id"].(string)
	if got := r2.JSON(t)["id"]; got != id || r2.JSON(t)["version"] != 1.0 {
		t.Fatalf("retried create answered %s, first was %s", r2.Body, r1.Body)
	}
	patch := map[string]string{"Prefer": "wait=10", "Idempotency-Key": "patch-1"}
	for i := 0; i < 3; i++ {
		r := s.Do("PATCH", "/opportunities/"+id, map[string]any{"amount": "99.00"}, patch)
		s.MustStatus(r, 200)
		if v := r.JSON(t)["version"]; v != 2.0 {
			t.Fatalf("attempt %d: version %v, want 2", i, v)
		}
	}
	if n := len(testkit.EventsOf(t, s.Run.BrokerAddr, id)); n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
}

// TestKafkaCommandsDLQAndForwarding produces commands with a plain Kafka producer: valid ones,
// an undecodable one between them on the same partition, and one on the wrong partition.
//
// The broker runs on its own here (as `crm-pipeline broker` does) and the service is given it
// with --brokers, the way it runs against an external cluster.
func TestKafkaCommandsDLQAndForwarding(t *testing.T) {
	b, err := topics.StartBroker(topics.BrokerOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	broker := b.Addr()
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir(), Brokers: []string{broker}})
	if s.Run.Broker != nil {
		t.Fatal("serve started an embedded broker although --brokers was given")
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	create := domain.Command{Type: domain.CmdCreate, CommandID: "k-c1", OpportunityID: "kafka-1", IssuedAt: now, Actor: "lead-service",
		Create: &domain.CreateOpportunity{Name: "From Kafka", AccountID: "acc-9", OwnerID: "o-9", Amount: "1000", Currency: "JPY", CloseDate: testkit.CloseDate(10)}}
	name := "Renamed"
	update := domain.Command{Type: domain.CmdUpdate, CommandID: "k-u1", OpportunityID: "kafka-1", IssuedAt: now, Actor: "lead-service",
		Update: &domain.UpdateOpportunity{Name: &name}}
	step := "call back"
	update2 := domain.Command{Type: domain.CmdUpdate, CommandID: "k-u2", OpportunityID: "kafka-1", IssuedAt: now, Actor: "lead-service",
		Update: &domain.UpdateOpportunity{NextStep: &step}}
	poison := []byte("\xc3\x01not avro at all")
	testkit.Produce(t, broker, topics.Commands,
		testkit.CommandMessage(t, create),
		&sarama.ProducerMessage{Key: sarama.StringEncoder("kafka-1"), Value: sarama.ByteEncoder(poison),
			Headers: []sarama.RecordHeader{{Key: []byte("origin"), Value: []byte("test")}}},
		testkit.CommandMessage(t, update),
		testkit.CommandMessage(t, update2),
	)
	testkit.Eventually(t, "kafka-1 at version 3", func() bool {
		r := s.Do("GET", "/opportunities/kafka-1", nil, nil)
		return r.Status == 200 && r.JSON(t)["version"] == 3.0
	})
	o := s.Do("GET", "/opportunities/kafka-1", nil, nil).JSON(t)
	if o["name"] != "Renamed" || o["nextStep"] != "call back" || o["amount"] != "1000" || o["currency"] != "JPY" {
		t.Fatalf("state after Kafka commands: %v", o)
	}
	var dlq []*sarama.ConsumerMessage
	testkit.Eventually(t, "the poison record in the DLQ", func() bool {
		dlq = testkit.ReadAll(t, broker, topics.DLQ)
		return len(dlq) > 0
	})
	m := dlq[0]
	if string(m.Key) != "kafka-1" || !bytes.Equal(m.Value, poison) {
		t.Fatalf("DLQ record key %q value %q", m.Key, m.Value)
	}
	hdr := map[string]string{}
	for _, h := range m.Headers {
		hdr[string(h.Key)] = string(h.Value)
	}
	want := topics.PartitionOf("kafka-1", 4)
	if hdr[topics.HeaderDLQTopic] != topics.Commands || hdr[topics.HeaderDLQPartition] != fmt.Sprint(want) ||
		hdr[topics.HeaderDLQOffset] != "1" || hdr[topics.HeaderDLQMessage] == "" || hdr["origin"] != "test" {
		t.Fatalf("DLQ headers: %v", hdr)
	}

	// A record produced to a partition its key does not map to (another partitioner) is
	// forwarded and applied where the key's state lives.
	wrong := (topics.PartitionOf("kafka-2", 4) + 1) % 4
	c2 := create
	c2.CommandID, c2.OpportunityID = "k-c2", "kafka-2"
	misplaced := testkit.CommandMessage(t, c2)
	misplaced.Partition = wrong
	if _, _, err := manualProducer(t, broker, "", 0).SendMessage(misplaced); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "kafka-2 created via forwarding", func() bool {
		return s.Do("GET", "/opportunities/kafka-2", nil, nil).Status == 200
	})
}

// TestAccountSnapshotRefreshed publishes a Customer 360 account and checks that the next
// command's result carries it.
func TestAccountSnapshotRefreshed(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	body := testkit.CreateBody("opp-acc")
	body["accountId"] = "acc-42"
	r := s.Do("POST", "/opportunities", body, testkit.Wait)
	s.MustStatus(r, 201)
	if r.JSON(t)["account"] != nil {
		t.Fatalf("account before Customer 360 knows it: %s", r.Body)
	}
	if out, err := runCLI(t, "accounts", "put", "--brokers", s.Run.BrokerAddr, "--id", "acc-42", "--name", "Globex",
		"--segment", "enterprise", "--region", "EMEA"); err != nil {
		t.Fatalf("accounts put: %v: %s", err, out)
	}
	testkit.Eventually(t, "the account on the next command's result", func() bool {
		r := s.Do("PATCH", "/opportunities/opp-acc", map[string]any{"nextStep": fmt.Sprint(time.Now().UnixNano())}, testkit.Wait)
		acc, _ := r.JSON(t)["account"].(map[string]any)
		return r.Status == 200 && acc != nil && acc["name"] == "Globex" && acc["segment"] == "enterprise" && acc["region"] == "EMEA"
	})
}

// TestAccountContextCurrentWithoutACommand: a Customer 360 record shows on every opportunity
// of that account, in GET and in the list, without waiting for the deal's next command (a
// table-table join at read time), and a later change of the account shows too.
func TestAccountContextCurrentWithoutACommand(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	for _, id := range []string{"opp-j1", "opp-j2"} {
		body := testkit.CreateBody(id)
		body["accountId"] = "acc-77"
		s.MustStatus(s.Do("POST", "/opportunities", body, testkit.Wait), 201)
	}
	put := func(name string) {
		t.Helper()
		if out, err := runCLI(t, "accounts", "put", "--brokers", s.Run.BrokerAddr, "--id", "acc-77", "--name", name,
			"--segment", "mid-market", "--region", "APAC"); err != nil {
			t.Fatalf("accounts put: %v: %s", err, out)
		}
	}
	shows := func(name string) bool {
		for _, id := range []string{"opp-j1", "opp-j2"} {
			r := s.Do("GET", "/opportunities/"+id, nil, nil)
			acc, _ := r.JSON(t)["account"].(map[string]any)
			if r.Status != 200 || acc == nil || acc["name"] != name || acc["region"] != "APAC" {
				return false
			}
		}
		r := s.Do("GET", "/opportunities?accountId=acc-77", nil, nil)
		items, _ := r.JSON(t)["items"].([]any)
		if len(items) != 2 {
			return false
		}
		for _, it := range items {
			acc, _ := it.(map[string]any)["account"].(map[string]any)
			if acc == nil || acc["name"] != name {
				return false
			}
		}
		return true
	}
	put("Initech")
	testkit.Eventually(t, "the account on both deals without a command", func() bool { return shows("Initech") })
	put("Initech Global")
	testkit.Eventually(t, "the renamed account on both deals", func() bool { return shows("Initech Global") })
	// No command was needed: the deals are still at version 1.
	if v := s.Do("GET", "/opportunities/opp-j1", nil, nil).JSON(t)["version"]; v != 1.0 {
		t.Fatalf("version %v: the join took a command", v)
	}
}

// TestRestartKeepsState stops the service cleanly and starts it again on the same data, then
// again with the local state folder deleted (restored from the changelog). Every opportunity
// must come back, and new commands continue the versions without a gap.
func TestRestartKeepsState(t *testing.T) {
	data := t.TempDir()
	s := testkit.StartService(t, testkit.ServiceOpts{Data: data})
	var want []map[string]any
	for i := 0; i < 12; i++ {
		id := fmt.Sprintf("opp-r%02d", i)
		s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody(id), testkit.Wait), 201)
		r := s.Do("POST", "/opportunities/"+id+"/stage", map[string]any{"stageId": "discovery"}, testkit.Wait)
		s.MustStatus(r, 200)
		want = append(want, r.JSON(t))
	}
	s.Stop()

	check := func(s *testkit.Service) {
		t.Helper()
		for _, w := range want {
			r := s.Do("GET", "/opportunities/"+w["id"].(string), nil, nil)
			s.MustStatus(r, 200)
			if got := r.JSON(t); !reflect.DeepEqual(got, w) {
				t.Fatalf("after restart:\n got %v\nwant %v", got, w)
			}
		}
	}
	s2 := testkit.StartService(t, testkit.ServiceOpts{Data: data})
	check(s2)
	r := s2.Do("POST", "/opportunities/opp-r00/stage", map[string]any{"stageId": "proposal"}, testkit.Wait)
	s2.MustStatus(r, 200)
	if v := r.JSON(t)["version"]; v != 3.0 {
		t.Fatalf("version after restart %v, want 3", v)
	}
	want[0] = r.JSON(t)
	s2.Stop()

	if err := os.RemoveAll(filepath.Join(data, "state")); err != nil {
		t.Fatal(err)
	}
	s3 := testkit.StartService(t, testkit.ServiceOpts{Data: data})
	check(s3)
	r = s3.Do("POST", "/opportunities/opp-r00/close-won", map[string]any{}, testkit.Wait)
	s3.MustStatus(r, 200)
	if v := r.JSON(t)["version"]; v != 4.0 {
		t.Fatalf("version after restore %v, want 4", v)
	}
	if n := len(testkit.EventsOf(t, s3.Run.BrokerAddr, "opp-r00")); n != 4 {
		t.Fatalf("opp-r00 has %d versions on the events topic, want 4", n)
	}
}

// TestStaleCacheAfterBrokerWipe keeps the local state but wipes the broker's data: the views
// must not serve the old opportunities (the table topic has a new id), and the processor must
// start from the empty changelog.
func TestStaleCacheAfterBrokerWipe(t *testing.T) {
	data := t.TempDir()
	s := testkit.StartService(t, testkit.ServiceOpts{Data: data})
	s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody("opp-old"), testkit.Wait), 201)
	s.Stop()
	if err := os.RemoveAll(filepath.Join(data, "broker")); err != nil {
		t.Fatal(err)
	}
	s2 := testkit.StartService(t, testkit.ServiceOpts{Data: data})
	if r := s2.Do("GET", "/opportunities/opp-old", nil, nil); r.Status != 404 {
		t.Fatalf("after the broker was wiped the old opportunity is still served: %d %s", r.Status, r.Body)
	}
	// The same id can be created afresh, at version 1.
	r := s2.Do("POST", "/opportunities", testkit.CreateBody("opp-old"), testkit.Wait)
	s2.MustStatus(r, 201)
	if v := r.JSON(t)["version"]; v != 1.0 {
		t.Fatalf("version %v, want 1", v)
	}
}

// TestRedeliveryIsAppliedOnceAndReemitted rewinds the processor's committed offsets to the
// start of the commands topic while its state is kept, so every command is delivered again, as
// after a crash. Nothing may be applied twice, yet every output is published again (the
// outputs of the last records before a crash may never have reached Kafka).
func TestRedeliveryIsAppliedOnceAndReemitted(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	data := t.TempDir()
	s := testkit.StartService(t, testkit.ServiceOpts{Data: data, InstanceID: "none"})
	var want []map[string]any
	for i := 0; i < 6; i++ {
		id := fmt.Sprintf("opp-d%d", i)
		s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody(id), testkit.Wait), 201)
		s.MustStatus(s.Do("PATCH", "/opportunities/"+id, map[string]any{"expectedVersion": 7}, testkit.Wait), 409)
		r := s.Do("POST", "/opportunities/"+id+"/close-won", map[string]any{}, testkit.Wait)
		s.MustStatus(r, 200)
		want = append(want, r.JSON(t))
	}
	broker := s.Run.BrokerAddr
	before := len(testkit.ReadAll(t, broker, topics.Events))
	rejBefore := len(testkit.ReadAll(t, broker, topics.Rejections))
	wonBefore := len(testkit.ReadAll(t, broker, topics.ClosedWon))
	s.Stop()

	// The broker keeps running in-process only while serve runs, so restart on the same data
	// with the group's offsets rewound through a separate broker session.
	b, err := topics.StartBroker(topics.BrokerOptions{DataDir: filepath.Join(data, "broker"), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	rewindGroup(t, b.Addr(), topics.OpportunityGroup, topics.Commands)
	s2 := testkit.StartService(t, testkit.ServiceOpts{Data: data, Brokers: []string{b.Addr()}, InstanceID: "none"})
	t.Cleanup(b.Close)
	testkit.Eventually(t, "every record redelivered and its outputs re-emitted", func() bool {
		return len(testkit.ReadAll(t, b.Addr(), topics.Events)) >= 2*before
	})
	for _, w := range want {
		r := s2.Do("GET", "/opportunities/"+w["id"].(string), nil, nil)
		s2.MustStatus(r, 200)
		if got := r.JSON(t); !reflect.DeepEqual(got, w) {
			t.Fatalf("after redelivery:\n got %v\nwant %v", got, w)
		}
		testkit.EventsOf(t, b.Addr(), w["id"].(string)) // versions 1..n, duplicates identical
	}
	if got := len(testkit.ReadAll(t, b.Addr(), topics.Events)); got != 2*before {
		t.Fatalf("events records %d, want exactly twice %d (each re-emitted once)", got, before)
	}
	if got := len(testkit.ReadAll(t, b.Addr(), topics.Rejections)); got != 2*rejBefore {
		t.Fatalf("rejection records %d, want twice %d", got, rejBefore)
	}
	if got := len(testkit.ReadAll(t, b.Addr(), topics.ClosedWon)); got != 2*wonBefore {
		t.Fatalf("closed-won records %d, want twice %d", got, wonBefore)
	}
	// New commands still apply after the redelivered ones.
	r := s2.Do("POST", "/opportunities/opp-d0/reopen", map[string]any{"stageId": "proposal"}, testkit.Wait)
	s2.MustStatus(r, 200)
	if v := r.JSON(t)["version"]; v != 3.0 {
		t.Fatalf("version %v, want 3", v)
	}
}

// rewindGroup commits offset 0 for every partition of topic in group (no member may be
// running).
func rewindGroup(t *testing.T, broker, group, topic string) {
	t.Helper()
	client, err := topics.NewClient(topics.ClientOptions{Brokers: []string{broker}})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	om, err := sarama.NewOffsetManagerFromClient(group, client)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		pom, err := om.ManagePartition(topic, p)
		if err != nil {
			t.Fatal(err)
		}
		pom.ResetOffset(0, "")
		pom.Close()
	}
	om.Commit()
	if err := om.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestForecastFollowsFXRates checks the forecast end to end in two currencies: a missing rate
// is a 422 naming the currency, and a new rate shows in the next query without reprocessing.
func TestForecastFollowsFXRates(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	usd := testkit.CreateBody("opp-fx-usd") // 12500.00 USD in qualification (10 %)
	jpy := testkit.CreateBody("opp-fx-jpy")
	jpy["amount"], jpy["currency"] = "1000000", "JPY"
	s.MustStatus(s.Do("POST", "/opportunities", usd, testkit.Wait), 201)
	s.MustStatus(s.Do("POST", "/opportunities", jpy, testkit.Wait), 201)
	cd := testkit.CloseDate(30)
	path := "/forecast?from=" + cd + "&to=" + cd
	var r testkit.Response
	testkit.Eventually(t, "the forecast to see both deals", func() bool {
		r = s.Do("GET", path, nil, nil)
		return r.Status == 422
	})
	if !strings.Contains(string(r.Body), "JPY") || !strings.Contains(string(r.Body), "missing_fx_rate") {
		t.Fatalf("missing rate answer: %s", r.Body)
	}
	total := func() map[string]any {
		r := s.Do("GET", path, nil, nil)
		s.MustStatus(r, 200)
		return r.JSON(t)["total"].(map[string]any)["open"].(map[string]any)
	}
	s.MustStatus(s.Do("PUT", "/fx-rates/JPY", map[string]any{"rate": "0.0067"}, nil), 200)
	// 12500.00 + 1000000 × 0.0067 = 19200.00; weighted 1250.00 + 100000 × 0.0067 = 1920.00.
	if got := total(); got["count"] != 2.0 || got["amount"] != "19200.00" || got["weighted"] != "1920.00" {
		t.Fatalf("open with JPY at 0.0067: %v", got)
	}
	s.MustStatus(s.Do("PUT", "/fx-rates/JPY", map[string]any{"rate": "0.0070"}, nil), 200)
	if got := total(); got["amount"] != "19500.00" || got["weighted"] != "1950.00" {
		t.Fatalf("open with JPY at 0.0070: %v", got)
	}
	// In JPY: 12500.00 USD / 0.0070 = 1785714.2857… → 1785714, plus 1000000.
	r = s.Do("GET", path+"&currency=JPY", nil, nil)
	s.MustStatus(r, 200)
	if got := r.JSON(t)["total"].(map[string]any)["open"].(map[string]any)["amount"]; got != "2785714" {
		t.Fatalf("open in JPY: %v", got)
	}
}
