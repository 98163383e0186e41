package systemtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// testCert is a self-signed certificate for 127.0.0.1 and localhost, in PEM files.
type testCert struct {
	certFile, keyFile string
	pool              *x509.CertPool
}

func newTestCert(t *testing.T) *testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "crm-pipeline test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	c := &testCert{certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), pool: x509.NewCertPool()}
	if err := os.WriteFile(c.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c.pool.AddCert(cert)
	return c
}

// client trusts the certificate and speaks HTTP/2 when the server offers it.
func (c *testCert) client() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: c.pool}, ForceAttemptHTTP2: true,
	}}
}

// TestTokensShutEveryDoor serves the API over TLS with bearer tokens: requests go over HTTP/2,
// a plain-HTTP request to the port gets no API answer, and the embedded broker behind the API
// requires SASL, so the side door of finding 5 (a plain Kafka client writing a command "as
// boss") is shut while emit with the credentials file still works.
func TestTokensShutEveryDoor(t *testing.T) {
	cert := newTestCert(t)
	data := t.TempDir()
	s := startService(t, serviceOpts{data: data, tls: cert, tokens: "admin:s3cret-admin-token:ops"})
	s.mustStatus(s.do("POST", "/opportunities", createBody("opp-tls"), wait), 201)
	creds := s.run.BrokerCredentials
	if creds == nil {
		t.Fatal("with tokens the embedded broker runs without SASL")
	}
	asService := topics.ClientOptions{Brokers: []string{s.run.BrokerAddr}, SASLUser: creds.User, SASLPassword: creds.Password}
	var events []*sarama.ConsumerMessage
	for _, m := range readAllAs(t, asService, topics.Events) {
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

	resp, err := s.client.Get(s.base + "/opportunities/opp-tls")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.ProtoMajor != 2 {
		t.Fatalf("GET without a token over TLS: %d over %s, want 401 over HTTP/2", resp.StatusCode, resp.Proto)
	}
	if plain, err := http.Get("http://" + s.run.HTTPAddr + "/api/v1/opportunities/opp-tls"); err == nil {
		b, _ := io.ReadAll(plain.Body)
		plain.Body.Close()
		if plain.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP to the TLS port answered %d: %s", plain.StatusCode, b)
		}
	}

	// The side door: a command as "boss" straight to Kafka, without credentials.
	boss := `{"type":"ChangeStage","opportunityId":"opp-tls","actor":"boss","stageId":"proposal"}`
	if res := runEmitT(t, []string{"--brokers", s.run.BrokerAddr}, boss+"\n"); res.err == nil {
		t.Fatalf("emit without credentials succeeded: %s", res.stdout)
	}
	cfg := topics.SaramaConfig(topics.ClientOptions{Brokers: []string{s.run.BrokerAddr}})
	cfg.Net.DialTimeout, cfg.Metadata.Retry.Max = 2*time.Second, 0
	if p, err := sarama.NewSyncProducer([]string{s.run.BrokerAddr}, cfg); err == nil {
		_, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topics.Commands, Key: sarama.StringEncoder("opp-tls"), Value: sarama.StringEncoder(boss)})
		p.Close()
		if err == nil {
			t.Fatal("a plain Kafka producer wrote to the embedded broker behind a tokened API")
		}
	}
	r := s.do("GET", "/opportunities/opp-tls", nil, nil)
	s.mustStatus(r, 200)
	if st := r.json(t)["stageId"]; st != "qualification" {
		t.Fatalf("stage %v after the refused side-door writes", st)
	}
	// The front door of Kafka: emit with the credentials file the service keeps.
	file := filepath.Join(data, "broker", topics.CredentialsFile)
	if res := runEmitT(t, []string{"--brokers", s.run.BrokerAddr, "--kafka-sasl-credentials", file}, boss+"\n"); res.err != nil {
		t.Fatalf("emit with the credentials: %v\n%s", res.err, res.stderr)
	}
	eventually(t, "the emitted command applied", func() bool {
		r := s.do("GET", "/opportunities/opp-tls", nil, nil)
		return r.status == 200 && r.json(t)["stageId"] == "proposal"
	})
}

// TestBrowserWritesShut is finding 5's HTTP half against the real service without tokens: a
// web page the user visits could write through the user's browser (a text/plain or
// form-encoded POST with a foreign Origin was applied, 201) and, by DNS rebinding, read and
// write under its own host name. Each is refused now, and nothing of it is applied.
func TestBrowserWritesShut(t *testing.T) {
	s := startService(t, serviceOpts{data: t.TempDir()})
	body := `{"id":"opp-csrf","name":"x","accountId":"acc-1","ownerId":"o","amount":"1.00","currency":"USD","closeDate":"` + closeDate(30) + `"}`
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
		r := s.do("POST", "/opportunities", body, c.hdr)
		if r.status != c.status || r.header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("%s: %d %s, want %d problem", c.name, r.status, r.body, c.status)
		}
	}
	if r := s.do("GET", "/opportunities", nil, map[string]string{"Host": "evil.example"}); r.status != 403 {
		t.Errorf("read under a rebinding host name: %d", r.status)
	}
	// The same write as the service's own page or a script sends it is applied.
	s.mustStatus(s.do("POST", "/opportunities", body, map[string]string{"Prefer": "wait=10", "Origin": s.root, "Sec-Fetch-Site": "same-origin"}), 201)
	if r := s.do("GET", "/opportunities?limit=10", nil, nil); strings.Count(string(r.body), `"id":"opp-csrf"`) != 1 {
		t.Fatalf("opportunities after the refused writes: %s", r.body)
	}
	if n := len(eventsOf(t, s.run.BrokerAddr, "opp-csrf")); n != 1 {
		t.Fatalf("%d events for opp-csrf, want the one accepted create", n)
	}
}
