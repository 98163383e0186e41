package systemtest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"github.com/crm-pipeline/crm-pipeline/topics"
	"github.com/crm-pipeline/crm-pipeline/views"
)

// The live change stream (GET /api/v1/stream) against the real service over TCP.

// streamEvent is one event of a live stream; id-only blocks (the stream's start, a
// filtered stream's heartbeat) come as events with an empty Event.
type streamEvent struct {
	Event, ID, Data string
}

// streamReader is a client of one live stream.
type streamReader struct {
	t      *testing.T
	resp   *http.Response
	cancel context.CancelFunc
	events chan streamEvent
	ended  chan struct{}
}

// openLiveStream opens s's stream at query with the header name, value pairs; it is closed
// when the test ends.
func openLiveStream(t *testing.T, s *testkit.Service, query string, headers ...string) *streamReader {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Base+"/stream"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		cancel()
		t.Fatalf("open the stream: %v", err)
	}
	r := &streamReader{t: t, resp: resp, cancel: cancel, events: make(chan streamEvent, 100000), ended: make(chan struct{})}
	t.Cleanup(r.close)
	if resp.StatusCode == http.StatusOK {
		go r.read()
	} else {
		close(r.ended)
	}
	return r
}

func (r *streamReader) close() {
	r.cancel()
	r.resp.Body.Close()
}

func (r *streamReader) read() {
	defer close(r.ended)
	sc := bufio.NewScanner(r.resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var e streamEvent
	fields := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if fields && (e.Event != "" || e.ID != "") {
				r.events <- e
			}
			e, fields = streamEvent{}, false
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		fields = true
		switch name {
		case "event":
			e.Event = value
		case "id":
			e.ID = value
		case "data":
			e.Data += value
		}
	}
}

// next returns the next event (not an id-only block), failing after d.
func (r *streamReader) next(d time.Duration) streamEvent {
	r.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-r.events:
			if e.Event != "" {
				return e
			}
		case <-deadline:
			r.t.Fatalf("no event on the stream within %v", d)
		}
	}
}

// startID is the id of the block the stream starts with (sent when no token was given).
func (r *streamReader) startID() string {
	r.t.Helper()
	select {
	case e := <-r.events:
		if e.Event != "" || e.ID == "" {
			r.t.Fatalf("first block %+v, want the id the stream starts at", e)
		}
		return e.ID
	case <-time.After(10 * time.Second):
		r.t.Fatal("no first block on the stream")
	}
	return ""
}

// none fails if an event arrives within d.
func (r *streamReader) none(d time.Duration) {
	r.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case e := <-r.events:
			if e.Event != "" {
				r.t.Fatalf("unexpected event %s %s: %.200s", e.Event, e.ID, e.Data)
			}
		case <-deadline:
			return
		}
	}
}

// opportunity decodes an opportunity event's data.
func (e streamEvent) opportunity(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if e.Event != "opportunity" {
		t.Fatalf("event %q (%s), want an opportunity: %.300s", e.Event, e.ID, e.Data)
	}
	if err := json.Unmarshal([]byte(e.Data), &m); err != nil {
		t.Fatalf("opportunity data: %v: %.300s", err, e.Data)
	}
	return m
}

func encodeCommand(t *testing.T, c domain.Command) sarama.ByteEncoder {
	t.Helper()
	b, err := codecs.EncodeCommand(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// kafkaCreate is a create command for id as an upstream producer writes it.
func kafkaCreate(t *testing.T, id, accountID string) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Key: sarama.StringEncoder(id), Value: encodeCommand(t, domain.Command{
		Type: domain.CmdCreate, CommandID: "c-" + id, OpportunityID: id, IssuedAt: time.Now().UTC().Truncate(time.Millisecond), Actor: "lead-service",
		Create: &domain.CreateOpportunity{Name: "Stream " + id, AccountID: accountID, OwnerID: "o-stream", Amount: "2500.00", Currency: "USD", CloseDate: testkit.CloseDate(20)},
	})}
}

// kafkaNextStep is an update of id's next step.
func kafkaNextStep(t *testing.T, id, commandID, step string) *sarama.ProducerMessage {
	return &sarama.ProducerMessage{Key: sarama.StringEncoder(id), Value: encodeCommand(t, domain.Command{
		Type: domain.CmdUpdate, CommandID: commandID, OpportunityID: id, IssuedAt: time.Now().UTC().Truncate(time.Millisecond), Actor: "lead-service",
		Update: &domain.UpdateOpportunity{NextStep: &step},
	})}
}

// TestStreamKafkaCommandAppears: a command a plain Kafka producer writes shows on the
// stream as the opportunity after it, in GET's shape; replayed later, the same change
// carries the Customer 360 account as it is then, as GET does.
func TestStreamKafkaCommandAppears(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	broker := s.Run.BrokerAddr
	st := openLiveStream(t, s, "?types=opportunity")
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache"} {
		if got := st.resp.Header.Get(k); got != want {
			t.Fatalf("%s = %q, want %q", k, got, want)
		}
	}
	start := st.startID()

	testkit.Produce(t, broker, topics.Commands, kafkaCreate(t, "kafka-s1", "acc-s1"))
	e := st.next(20 * time.Second)
	o := e.opportunity(t)
	if o["id"] != "kafka-s1" || o["version"] != 1.0 || o["stageName"] != "Qualification" || o["account"] != nil {
		t.Fatalf("event %v", o)
	}
	if got := s.Do("GET", "/opportunities/kafka-s1", nil, nil).JSON(t); !reflect.DeepEqual(o, got) {
		t.Fatalf("stream data\n%v\nGET\n%v", o, got)
	}

	// The account arrives afterwards, with no command for the deal: GET joins it at read
	// time, and so does the stream when it sends the change again.
	acc, err := codecs.EncodeAccount(domain.Account{ID: "acc-s1", Name: "Globex", Segment: "enterprise", Region: "EMEA"})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Produce(t, broker, topics.Accounts, &sarama.ProducerMessage{Key: sarama.StringEncoder("acc-s1"), Value: sarama.ByteEncoder(acc)})
	testkit.Eventually(t, "the account on GET", func() bool {
		a, _ := s.Do("GET", "/opportunities/kafka-s1", nil, nil).JSON(t)["account"].(map[string]any)
		return a != nil && a["name"] == "Globex"
	})
	again := openLiveStream(t, s, "?types=opportunity", "Last-Event-ID", start)
	replayed := again.next(10 * time.Second)
	if replayed.ID != e.ID {
		t.Fatalf("replayed %s, want %s", replayed.ID, e.ID)
	}
	if a, _ := replayed.opportunity(t)["account"].(map[string]any); a == nil || a["name"] != "Globex" || a["region"] != "EMEA" {
		t.Fatalf("replayed account %v", a)
	}
}

// TestStreamResumeExactlyOnce: a client reads some changes, goes away while more happen (a
// refusal among them, which changes nothing), and comes back with Last-Event-ID: it gets
// every later change once, in order, and nothing it had.
func TestStreamResumeExactlyOnce(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	st := openLiveStream(t, s, "?types=opportunity")
	st.startID()
	type change struct {
		id      string
		version float64
	}
	read := func(r *streamReader, n int) ([]change, string) {
		t.Helper()
		var got []change
		var last string
		for range n {
			e := r.next(20 * time.Second)
			o := e.opportunity(t)
			got = append(got, change{o["id"].(string), o["version"].(float64)})
			last = e.ID
		}
		return got, last
	}
	for i := 1; i <= 3; i++ {
		s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody(fmt.Sprintf("opp-res%d", i)), testkit.Wait), 201)
	}
	first, last := read(st, 3)
	if want := []change{{"opp-res1", 1}, {"opp-res2", 1}, {"opp-res3", 1}}; !reflect.DeepEqual(first, want) {
		t.Fatalf("first changes %v, want %v", first, want)
	}
	st.close()

	// Meanwhile: updates over HTTP and from Kafka, a refusal, a new deal.
	s.MustStatus(s.Do("PATCH", "/opportunities/opp-res1", map[string]any{"name": "Renamed"}, testkit.Wait), 200)
	r := s.Do("PATCH", "/opportunities/opp-res2", map[string]any{"name": "Stale", "expectedVersion": 7}, testkit.Wait)
	if r.Status < 400 {
		t.Fatalf("a stale update answered %d", r.Status)
	}
	testkit.Produce(t, s.Run.BrokerAddr, topics.Commands, kafkaNextStep(t, "opp-res3", "k-res3", "call"))
	s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody("opp-res4"), testkit.Wait), 201)
	testkit.Eventually(t, "opp-res3 at version 2", func() bool {
		return s.Do("GET", "/opportunities/opp-res3", nil, nil).JSON(t)["version"] == 2.0
	})
	s.MustStatus(s.Do("PATCH", "/opportunities/opp-res4", map[string]any{"nextStep": "demo"}, testkit.Wait), 200)

	back := openLiveStream(t, s, "?types=opportunity", "Last-Event-ID", last)
	later, _ := read(back, 4)
	want := []change{{"opp-res1", 2}, {"opp-res3", 2}, {"opp-res4", 1}, {"opp-res4", 2}}
	if !reflect.DeepEqual(later, want) {
		t.Fatalf("after reconnecting %v, want %v", later, want)
	}
	back.none(500 * time.Millisecond) // nothing twice, no refusal
	// And it goes on live.
	s.MustStatus(s.Do("PATCH", "/opportunities/opp-res2", map[string]any{"nextStep": "x"}, testkit.Wait), 200)
	if got, _ := read(back, 1); !reflect.DeepEqual(got, []change{{"opp-res2", 2}}) {
		t.Fatalf("live after the replay %v", got)
	}
}

// TestStreamStalledClientDoesNotDelayOthers: a client that opens the stream and never reads
// (a small receive buffer, so its connection fills at once) while thousands of changes
// flow does not hold up the processor, the views or a second client: each of the second
// client's changes arrives promptly after the write that made it.
func TestStreamStalledClientDoesNotDelayOthers(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	addr := strings.TrimPrefix(s.Root, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "GET /api/v1/stream HTTP/1.1\r\nHost: %s\r\n\r\n", addr)

	reader := openLiveStream(t, s, "?types=opportunity&ownerId=owner-1")
	reader.startID()
	step := strings.Repeat("s", domain.MaxTextLen-10) // with the prefix below, within the limit
	const deals, rounds, perRound = 50, 3, 500
	var creates []*sarama.ProducerMessage
	for i := range deals {
		creates = append(creates, kafkaCreate(t, fmt.Sprintf("bulk-%d", i), "acc-1"))
	}
	// One producer sending each round as one batch, as a busy upstream service does.
	producer, err := topics.NewSyncProducer(topics.ClientOptions{Brokers: []string{s.Run.BrokerAddr}})
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	send := func(msgs []*sarama.ProducerMessage) {
		t.Helper()
		for _, m := range msgs {
			m.Topic = topics.Commands
		}
		if err := producer.SendMessages(msgs); err != nil {
			t.Fatal(err)
		}
	}
	send(creates)
	for round := range rounds {
		var msgs []*sarama.ProducerMessage
		for i := range perRound {
			id := fmt.Sprintf("bulk-%d", i%deals)
			msgs = append(msgs, kafkaNextStep(t, id, fmt.Sprintf("b-%d-%d", round, i), fmt.Sprintf("%d %s", i, step)))
		}
		send(msgs)
		// The marker: a change of the second client's filter, written after the flood.
		id := fmt.Sprintf("marker-%d", round)
		s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody(id), testkit.Wait), 201)
		applied := time.Now()
		e := reader.next(20 * time.Second)
		if o := e.opportunity(t); o["id"] != id {
			t.Fatalf("round %d: the second client got %v, want %s", round, o["id"], id)
		}
		if d := time.Since(applied); d > 2*time.Second {
			t.Fatalf("round %d: the second client got the change %v after it was applied", round, d)
		}
	}
	// The flood went through whole, stalled client or not.
	testkit.Eventually(t, "every update applied", func() bool {
		for i := range deals {
			if s.Do("GET", fmt.Sprintf("/opportunities/bulk-%d", i), nil, nil).JSON(t)["version"] != float64(1+rounds*perRound/deals) {
				return false
			}
		}
		return true
	})
}

// TestStreamCap: with --max-streams 2 a third concurrent stream is refused with 503, and a
// slot frees when a client goes. Open streams do not hold up a clean stop: they end when
// the HTTP server shuts down.
func TestStreamCap(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir(), MaxStreams: 2})
	first := openLiveStream(t, s, "")
	first.startID()
	openLiveStream(t, s, "").startID()
	third := openLiveStream(t, s, "")
	if third.resp.StatusCode != http.StatusServiceUnavailable || third.resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third stream: %d (Retry-After %q), want 503", third.resp.StatusCode, third.resp.Header.Get("Retry-After"))
	}
	var p struct{ Code string }
	if err := json.NewDecoder(third.resp.Body).Decode(&p); err != nil || p.Code != "too_many_streams" {
		t.Fatalf("third stream's problem: %+v, %v", p, err)
	}
	s.MustStatus(s.Do("GET", "/pipelines", nil, nil), 200) // other reads are not capped
	first.close()
	var open *streamReader
	testkit.Eventually(t, "a stream slot after a client went", func() bool {
		open = openLiveStream(t, s, "")
		if open.resp.StatusCode != http.StatusOK {
			open.close()
			return false
		}
		return true
	})
	start := time.Now()
	s.Stop()
	if d := time.Since(start); d > 5*time.Second { // the harness's shutdown timeout is 10 s
		t.Fatalf("a clean stop with two open streams took %v", d)
	}
	select {
	case <-open.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end with the service")
	}
}

// TestStreamAnalyticsEvents: a write's effect on the aggregates is announced on the stream
// (types=analytics) naming its owner, pipeline and close date, with a position that covers
// the write's Crm-Position; a read naming that position shows the write, on this instance
// and on another one sharing the broker.
func TestStreamAnalyticsEvents(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	other := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir(), Brokers: []string{s.Run.BrokerAddr}})
	st := openLiveStream(t, s, "?types=analytics&ownerId=owner-analytics")
	st.startID()
	body := testkit.CreateBody("opp-analytics")
	body["ownerId"], body["amount"] = "owner-analytics", "777.00"
	r := s.Do("POST", "/opportunities", body, nil) // 202: no wait, the stream says when
	s.MustStatus(r, http.StatusAccepted)
	written, err := views.ParsePositions(r.Header.Get("Crm-Position"))
	if err != nil || len(written) != 1 {
		t.Fatalf("Crm-Position %q: %v", r.Header.Get("Crm-Position"), err)
	}
	var change struct {
		PipelineIDs []string `json:"pipelineIds"`
		OwnerIDs    []string `json:"ownerIds"`
		Dates       struct{ From, To string }
		Position    string `json:"position"`
	}
	for {
		e := st.next(10 * time.Second)
		if e.Event != "analytics" {
			t.Fatalf("event %q on a types=analytics stream", e.Event)
		}
		if err := json.Unmarshal([]byte(e.Data), &change); err != nil {
			t.Fatalf("analytics data %q: %v", e.Data, err)
		}
		ps, err := views.ParsePositions(change.Position)
		if err != nil {
			t.Fatalf("position %q: %v", change.Position, err)
		}
		covered := false
		for _, p := range ps {
			covered = covered || p.Partition == written[0].Partition && p.Offset >= written[0].Offset
		}
		if covered {
			break
		}
	}
	if !slices.Contains(change.OwnerIDs, "owner-analytics") || !slices.Contains(change.PipelineIDs, "default") {
		t.Fatalf("analytics change %+v does not name the write's owner and pipeline", change)
	}
	if change.Dates.From > body["closeDate"].(string) || change.Dates.To < body["closeDate"].(string) {
		t.Fatalf("analytics change %+v does not span the close date %s", change, body["closeDate"])
	}
	for _, inst := range []*testkit.Service{s, other} {
		f := inst.Do("GET", "/forecast?ownerId=owner-analytics&from="+change.Dates.From+"&to="+change.Dates.To, nil,
			map[string]string{"Crm-Min-Position": change.Position, "Prefer": "wait=10"}).JSON(t)
		total := f["total"].(map[string]any)["open"].(map[string]any)
		if total["count"] != 1.0 || total["amount"] != "777.00" {
			t.Fatalf("forecast at the announced position: %v", total)
		}
	}
}
