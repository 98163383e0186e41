package systemtest

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
)

// rywPairs is how many write-then-read pairs each read-your-writes test makes (RYW_PAIRS
// overrides; `make chaos` runs more).
func rywPairs(t *testing.T, def int) int {
	if v, err := strconv.Atoi(os.Getenv("RYW_PAIRS")); err == nil && v > 0 {
		return v
	}
	if testing.Short() {
		return def / 10
	}
	return def
}

// ownerBook is the model of one owner's deals: what every forecast of that owner must show.
type ownerBook struct {
	open      map[string]int64 // id -> amount in cents
	wonCount  int64
	wonAmount int64
}

func (b *ownerBook) openTotals() (n, sum int64) {
	for _, a := range b.open {
		n++
		sum += a
	}
	return n, sum
}

func cents(v int64) string { return fmt.Sprintf("%d.%02d", v/100, v%100) }

// rywModel is the expected state of every owner.
type rywModel map[string]*ownerBook

func (m rywModel) book(owner string) *ownerBook {
	if m[owner] == nil {
		m[owner] = &ownerBook{open: map[string]int64{}}
	}
	return m[owner]
}

// forecastPath covers every close date the tests use: created deals close in 30 days, won ones
// on the day they were won (or on their planned date, whichever calendar rule is in force).
func forecastPath(owner string) string {
	from := time.Now().UTC().AddDate(0, 0, -2).Format(time.DateOnly)
	to := time.Now().UTC().AddDate(0, 0, 40).Format(time.DateOnly)
	return "/forecast?ownerId=" + owner + "&from=" + from + "&to=" + to
}

// checkForecast reads owner's forecast (with hdr) and compares it with the model; "" when it
// agrees.
func checkForecast(s *testkit.Service, owner string, b *ownerBook, hdr map[string]string) string {
	r := s.Do("GET", forecastPath(owner), nil, hdr)
	if r.Status != http.StatusOK {
		return fmt.Sprintf("forecast answered %d: %s", r.Status, r.Body)
	}
	var f struct {
		Total struct {
			Open, ClosedWon struct {
				Count  int64  `json:"count"`
				Amount string `json:"amount"`
			}
		} `json:"total"`
	}
	if err := json.Unmarshal(r.Body, &f); err != nil {
		return err.Error()
	}
	n, sum := b.openTotals()
	if f.Total.Open.Count != n || f.Total.Open.Amount != cents(sum) ||
		f.Total.ClosedWon.Count != b.wonCount || f.Total.ClosedWon.Amount != cents(b.wonAmount) {
		return fmt.Sprintf("forecast open %d/%s won %d/%s, want open %d/%s won %d/%s", f.Total.Open.Count, f.Total.Open.Amount,
			f.Total.ClosedWon.Count, f.Total.ClosedWon.Amount, n, cents(sum), b.wonCount, cents(b.wonAmount))
	}
	return ""
}

// rywStep is one random command of the model: create, change the amount, or win a deal.
type rywStep struct {
	owner, id string
	typ       domain.CommandType
	amount    int64
	path      string
	method    string
	body      map[string]any
}

func nextStep(rng *rand.Rand, m rywModel, owners, seq int) rywStep {
	owner := fmt.Sprintf("ryw-owner-%d", rng.IntN(owners))
	b := m.book(owner)
	amount := 100 + rng.Int64N(5_000_000)
	var pick string
	for id := range b.open { // any open deal of the owner
		pick = id
		break
	}
	switch r := rng.IntN(10); {
	case pick != "" && r < 3:
		return rywStep{owner: owner, id: pick, typ: domain.CmdCloseWon, amount: b.open[pick],
			method: "POST", path: "/opportunities/" + pick + "/close-won", body: map[string]any{}}
	case pick != "" && r < 6:
		return rywStep{owner: owner, id: pick, typ: domain.CmdUpdate, amount: amount,
			method: "PATCH", path: "/opportunities/" + pick, body: map[string]any{"amount": cents(amount)}}
	default:
		id := fmt.Sprintf("ryw-%d", seq)
		body := testkit.CreateBody(id)
		body["ownerId"], body["amount"] = owner, cents(amount)
		return rywStep{owner: owner, id: id, typ: domain.CmdCreate, amount: amount,
			method: "POST", path: "/opportunities", body: body}
	}
}

// apply moves the model by a step that was accepted.
func (m rywModel) apply(st rywStep) {
	b := m.book(st.owner)
	switch st.typ {
	case domain.CmdCloseWon:
		delete(b.open, st.id)
		b.wonCount++
		b.wonAmount += st.amount
	default:
		b.open[st.id] = st.amount
	}
}

// TestReadYourWritesHTTP: thousands of writes answered under Prefer: wait, alternating
// between two instances sharing one broker; right after each, the writing instance's
// forecast (no header) and the other instance's (with the answer's Crm-Position) must show
// the write. The forecast is the view furthest from the write: command, processor, delta
// topic, aggregator, bucket view.
func TestReadYourWritesHTTP(t *testing.T) {
	a := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	b := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir(), Brokers: []string{a.Run.BrokerAddr}})
	insts := []*testkit.Service{a, b}
	rng := rand.New(rand.NewPCG(11, uint64(time.Now().UnixNano())))
	m := rywModel{}
	n := rywPairs(t, 1000)
	for i := range n {
		st := nextStep(rng, m, 12, i)
		w, other := insts[i%2], insts[(i+1)%2]
		r := w.Do(st.method, st.path, st.body, map[string]string{"Prefer": "wait=10"})
		if r.Status != http.StatusOK && r.Status != http.StatusCreated {
			t.Fatalf("write %d (%s %s) answered %d: %s", i, st.method, st.path, r.Status, r.Body)
		}
		token := r.Header.Get("Crm-Position")
		if token == "" {
			t.Fatalf("write %d answered without Crm-Position", i)
		}
		m.apply(st)
		if d := checkForecast(w, st.owner, m.book(st.owner), nil); d != "" {
			t.Fatalf("write %d (%s on instance %d), read on the same instance: %s", i, st.typ, i%2, d)
		}
		if d := checkForecast(other, st.owner, m.book(st.owner), map[string]string{
			"Crm-Min-Position": token, "Prefer": "wait=10"}); d != "" {
			t.Fatalf("write %d (%s on instance %d), read on the other with Crm-Min-Position %s: %s", i, st.typ, i%2, token, d)
		}
	}
	t.Logf("%d write-then-read pairs over HTTP, each read on both instances", n)
}

// TestReadYourWritesKafka: commands produced straight to the commands topic by a plain sarama
// producer with Kafka's default (murmur2) partitioner; the token is built from the producer's
// acknowledgement, "<partition>:<offset>", and a read naming it must show the command.
func TestReadYourWritesKafka(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Producer.Partitioner = sarama.NewMurmur2Partitioner
	pr, err := sarama.NewSyncProducer([]string{s.Run.BrokerAddr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	rng := rand.New(rand.NewPCG(12, uint64(time.Now().UnixNano())))
	m := rywModel{}
	n := rywPairs(t, 1000)
	for i := range n {
		st := nextStep(rng, m, 12, i)
		cmd := kafkaCommand(t, st, i)
		part, off, err := pr.SendMessage(testkit.CommandMessage(t, cmd))
		if err != nil {
			t.Fatal(err)
		}
		m.apply(st)
		token := fmt.Sprintf("%d:%d", part, off)
		if d := checkForecast(s, st.owner, m.book(st.owner), map[string]string{
			"Crm-Min-Position": token, "Prefer": "wait=10"}); d != "" {
			t.Fatalf("command %d (%s) at %s: %s", i, st.typ, token, d)
		}
		// The opportunity view reflects it too.
		r := s.Do("GET", "/opportunities/"+st.id, nil, map[string]string{"Crm-Min-Position": token, "Prefer": "wait=10"})
		if r.Status != http.StatusOK {
			t.Fatalf("command %d: GET %s answered %d", i, st.id, r.Status)
		}
	}
	t.Logf("%d write-then-read pairs over Kafka", n)
}

// kafkaCommand is st as the command record an upstream service would produce.
func kafkaCommand(t *testing.T, st rywStep, i int) domain.Command {
	t.Helper()
	cmd := domain.Command{Type: st.typ, CommandID: fmt.Sprintf("ryw-kafka-%d", i), OpportunityID: st.id,
		IssuedAt: time.Now().UTC(), Actor: "upstream"}
	amount := cents(st.amount)
	switch st.typ {
	case domain.CmdCreate:
		cmd.Create = &domain.CreateOpportunity{Name: "Deal " + st.id, AccountID: "acc-1", OwnerID: st.owner,
			PipelineID: "default", Amount: amount, Currency: "USD", CloseDate: testkit.CloseDate(30)}
	case domain.CmdUpdate:
		cmd.Update = &domain.UpdateOpportunity{Amount: &amount}
	case domain.CmdCloseWon:
		cmd.CloseWon = &domain.CloseWon{}
	}
	return cmd
}

// TestCommandOutcomeWithoutWait: a write answered 202 points (Location) to its command's
// status, which any instance of the group answers: pending or applied with the version for an
// accepted command, refused with the problem for a refused one.
func TestCommandOutcomeWithoutWait(t *testing.T) {
	a := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	b := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir(), Brokers: []string{a.Run.BrokerAddr}})
	status := func(s *testkit.Service, loc string, want string) map[string]any {
		t.Helper()
		var m map[string]any
		testkit.Eventually(t, "command "+want, func() bool {
			r := s.Do("GET", strings.TrimPrefix(loc, "/api/v1"), nil, nil)
			if r.Status != http.StatusOK {
				t.Fatalf("GET %s answered %d: %s", loc, r.Status, r.Body)
			}
			m = r.JSON(t)
			if m["status"] != "pending" && m["status"] != want {
				t.Fatalf("GET %s: %v, want %s", loc, m, want)
			}
			return m["status"] == want
		})
		return m
	}
	r := a.Do("POST", "/opportunities", testkit.CreateBody("opp-outcome"), nil)
	a.MustStatus(r, http.StatusAccepted)
	loc := r.Header.Get("Location")
	for _, s := range []*testkit.Service{a, b} {
		if m := status(s, loc, "applied"); m["opportunityId"] != "opp-outcome" || m["version"] != 1.0 {
			t.Fatalf("applied: %v", m)
		}
	}
	r = a.Do("POST", "/opportunities/opp-outcome/stage", map[string]any{"stageId": "no-such-stage"}, nil)
	a.MustStatus(r, http.StatusAccepted)
	for _, s := range []*testkit.Service{b, a} {
		m := status(s, r.Header.Get("Location"), "refused")
		if p, _ := m["problem"].(map[string]any); p == nil || p["code"] != "unknown_stage" || p["status"] != 422.0 {
			t.Fatalf("refused: %v", m)
		}
	}
	// By its id alone, once processed: found through the instance's index of recent commands.
	id := r.Header.Get("X-Command-Id")
	if m := b.Do("GET", "/commands/"+id, nil, nil).JSON(t); m["status"] != "refused" {
		t.Fatalf("by id alone: %v", m)
	}
}

// TestIdempotencyKeyOverHTTP: against the real processor, a retried request with its key is
// answered with the first outcome and Idempotent-Replayed, the same key with another body is
// a 422 naming the key and changes nothing, a later request with a new key applies.
func TestIdempotencyKeyOverHTTP(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody("opp-idem"), testkit.Wait), http.StatusCreated)
	patch := func(key, amount string) testkit.Response {
		return s.Do("PATCH", "/opportunities/opp-idem", map[string]any{"amount": amount},
			map[string]string{"Prefer": "wait=10", "Idempotency-Key": key})
	}
	first := patch("k-15000", "15000.00")
	s.MustStatus(first, http.StatusOK)
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Fatal("the first request is marked as a replay")
	}
	retry := patch("k-15000", "15000.00")
	s.MustStatus(retry, http.StatusOK)
	if retry.Header.Get("Idempotent-Replayed") != "true" || retry.JSON(t)["version"] != first.JSON(t)["version"] {
		t.Fatalf("retry: %v %s", retry.Header, retry.Body)
	}
	reused := patch("k-15000", "16000.00")
	s.MustStatus(reused, http.StatusUnprocessableEntity)
	if p := reused.JSON(t); p["code"] != "idempotency_key_reused" || !strings.Contains(string(reused.Body), `"field":"Idempotency-Key"`) {
		t.Fatalf("reused key: %s", reused.Body)
	}
	if got := s.Do("GET", "/opportunities/opp-idem", nil, nil).JSON(t); got["amount"] != "15000.00" {
		t.Fatalf("the refused request changed the deal: %v", got["amount"])
	}
	s.MustStatus(patch("k-16000", "16000.00"), http.StatusOK)
}
