package systemtest

import (
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// TestTokensShutEveryDoor serves the API over TLS with bearer tokens: requests go over HTTP/2,
// a plain-HTTP request to the port gets no API answer, and the embedded broker behind the API
// requires SASL, so the side door of finding 5 (a plain Kafka client writing a command "as
// boss") is shut while emit with the credentials file still works.
func TestTokensShutEveryDoor(t *testing.T) {
	cert := testkit.NewCert(t)
	data := t.TempDir()
	s := testkit.StartService(t, testkit.ServiceOpts{Data: data, TLS: cert, Tokens: "admin:s3cret-admin-token:ops"})
	s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody("opp-tls"), testkit.Wait), 201)
	creds := s.Run.BrokerCredentials
	if creds == nil {
		t.Fatal("with tokens the embedded broker runs without SASL")
	}
	asService := topics.ClientOptions{Brokers: []string{s.Run.BrokerAddr}, SASLUser: creds.User, SASLPassword: creds.Password}
	var events []*sarama.ConsumerMessage
	for _, m := range testkit.ReadAllAs(t, asService, topics.Events) {
		if string(m.Key) == "opp-tls" {
			events = append(events, m)
		}
	}
	if len(events) != 1 {
		t.Fatalf("%d events of opp-tls, want 1", len(events))
	}
	if e, err := codecs.DecodeEvent(events[0].Value); err != nil || e.Actor != "ops" {
		t.Fatalf("event %+v (%v), want the token's name as actor", e, err)
	}

	resp, err := s.Client.Get(s.Base + "/opportunities/opp-tls")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.ProtoMajor != 2 {
		t.Fatalf("GET without a token over TLS: %d over %s, want 401 over HTTP/2", resp.StatusCode, resp.Proto)
	}
	if plain, err := http.Get("http://" + s.Run.HTTPAddr + "/api/v1/opportunities/opp-tls"); err == nil {
		b, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		if plain.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS port answered %d: %s", plain.StatusCode, b)
		}
	}

	// The side door: a command as "boss" straight to Kafka, without credentials.
	boss := `{"type":"ChangeStage","opportunityId":"opp-tls","actor":"boss","stageId":"proposal"}`
	if res := runEmitT(t, []string{"--brokers", s.Run.BrokerAddr}, boss+"\n"); res.Err == nil {
		t.Fatalf("emit without credentials succeeded: %s", res.Stdout)
	}
	cfg := topics.SaramaConfig(topics.ClientOptions{Brokers: []string{s.Run.BrokerAddr}})
	cfg.Net.DialTimeout, cfg.Metadata.Retry.Max = 2*time.Second, 0
	if p, err := sarama.NewSyncProducer([]string{s.Run.BrokerAddr}, cfg); err == nil {
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topics.Commands, Key: sarama.StringEncoder("opp-tls"), Value: sarama.StringEncoder(boss)})
		p.Close()
		if err == nil {
			t.Fatal("a plain Kafka producer wrote to the embedded broker behind a tokened API")
		}
	}
	r := s.Do("GET", "/opportunities/opp-tls", nil, nil)
	s.MustStatus(r, 200)
	if st := r.JSON(t)["stageId"]; st != "qualification" {
		t.Fatalf("stage %v after the refused side-door writes", st)
	}
	// The front door of Kafka: emit with the credentials file the service keeps.
	file := filepath.Join(data, "broker", topics.CredentialsFile)
	if res := runEmitT(t, []string{"--brokers", s.Run.BrokerAddr, "--kafka-sasl-credentials", file}, boss+"\n"); res.Err != nil {
		t.Fatalf("emit with the credentials: %v\n%s", res.Err, res.Stderr)
	}
	testkit.Eventually(t, "the emitted command applied", func() bool {
		r := s.Do("GET", "/opportunities/opp-tls", nil, nil)
		return r.Status == 200 && r.JSON(t)["stageId"] == "proposal"
	})
}

// TestBrowserWritesShut is finding 5's HTTP half against the real service without tokens: a
// web page the user visits could write through the user's browser (a text/plain or
// form-encoded POST with a foreign Origin was applied, 201) and, by DNS rebinding, read and
// write under its own host name. Each is refused now, and nothing of it is applied.
func TestBrowserWritesShut(t *testing.T) {
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	body := `{"id":"opp-csrf","name":"x","accountId":"acc-1","ownerId":"o","amount":"1.00","currency":"USD","closeDate":"` + testkit.CloseDate(30) + `"}`
	for _, c := range []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"text/plain from a foreign page", map[string]string{"Content-Type": "text/plain", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}, 403},
		{"text/plain, no browser headers", map[string]string{"Content-Type": "text/plain"}, 415},
		{"form-encoded", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 415},
		{"JSON from another site", map[string]string{"Origin": "http://evil.example"}, 403},
		{"JSON from another port of localhost", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://localhost:8000"}, 403},
		{"rebinding host name", map[string]string{"Host": "evil.example:9402"}, 403},
	} {
		r := s.Do("POST", "/opportunities", body, c.hdr)
		if r.Status != c.status || r.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d problem", c.name, r.Status, r.Body, c.status)
		}
	}
	if r := s.Do("GET", "/opportunities", nil, map[string]string{"Host": "evil.example"}); r.Status != 403 {
		t.Errorf("read under a rebinding host name: %d", r.Status)
	}
	// The same write as the service's own page or a script sends it is applied.
	s.MustStatus(s.Do("POST", "/opportunities", body, map[string]string{"Prefer": "wait=10", "Origin": s.Root, "Sec-Fetch-Site": "same-origin"}), 201)
	if r := s.Do("GET", "/opportunities?limit=10", nil, nil); strings.Count(string(r.Body), `"id":"opp-csrf"`) != 1 {
		t.Fatalf("opportunities after the refused writes: %s", r.Body)
	}
	if n := len(testkit.EventsOf(t, s.Run.BrokerAddr, "opp-csrf")); n != 1 {
		t.Fatalf("%d events for opp-csrf, want the one accepted create", n)
	}
}
