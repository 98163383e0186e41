package topics_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/codec"
	"github.com/lovoo/goka/storage"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/crm-pipeline/crm-pipeline/topics"
)

// The SCRAM-SHA-512 credentials seeded into the secure test broker. "admin" is a superuser;
// "reader" may only read the commands topic (ACLs are enforced).
const (
	adminUser    = "admin"
	adminPass    = "admin-secret"
	readerUser   = "reader"
	readerPass   = "reader-secret"
	scramSHA512  = "SCRAM-SHA-512" // kfake's mechanism name
	failFastTime = 5 * time.Second // bound on how long a refused connection may take
)

// startSecureBroker starts the embedded broker with a TLS-only listener and SASL/SCRAM-SHA-512
// authentication with ACLs, and returns it with the PKI that signed its certificate.
func startSecureBroker(t *testing.T) (*topics.Broker, testPKI) {
	t.Helper()
	pki := newTestPKI(t)
	b, err := topics.StartBroker(topics.BrokerOptions{
		DataDir: t.TempDir(),
		Listen:  "127.0.0.1:0",
		Extra: []kfake.Opt{
			kfake.TLS(pki.ServerTLS()),
			kfake.EnableSASL(),
			kfake.Superuser(scramSHA512, adminUser, adminPass),
			kfake.EnableACLs(),
			kfake.User(scramSHA512, readerUser, readerPass, kfake.ACL{
				Resource:  kmsg.ACLResourceTypeTopic,
				Name:      topics.Commands,
				Pattern:   kmsg.ACLResourcePatternTypeLiteral,
				Operation: kmsg.ACLOperationRead,
				Allow:     true,
			}),
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b, pki
}

// failFast shortens the timeouts and retries of a copy of the service configuration, so that a
// refused connection surfaces in about a second instead of after minutes of retries.
func failFast(cfg *sarama.Config) *sarama.Config {
	cfg.Net.DialTimeout = 2 * time.Second
	cfg.Net.ReadTimeout = 2 * time.Second
	cfg.Net.WriteTimeout = 2 * time.Second
	cfg.Metadata.Timeout = 3 * time.Second
	cfg.Metadata.Retry.Max = 0
	cfg.Metadata.Retry.Backoff = 10 * time.Millisecond
	return cfg
}

// connectErr opens a client with cfg and returns its error, failing the test if the client
// connects or takes longer than failFastTime to refuse.
func connectErr(t *testing.T, addr string, cfg *sarama.Config) error {
	t.Helper()
	start := time.Now()
	c, err := sarama.NewClient([]string{addr}, cfg)
	if took := time.Since(start); took > failFastTime {
		t.Errorf("refusal took %v, want under %v", took, failFastTime)
	}
	if err == nil {
		_ = c.Close()
		t.Fatal("client connected, want an error")
	}
	return err
}

// brokerErr opens a single broker connection with cfg and returns the raw connection error
// (the client wraps it in ErrOutOfBrokers).
func brokerErr(t *testing.T, addr string, cfg *sarama.Config) error {
	t.Helper()
	br := sarama.NewBroker(addr)
	if err := br.Open(cfg); err != nil {
		return err
	}
	defer func() { _ = br.Close() }()
	ok, err := br.Connected()
	if ok || err == nil {
		t.Fatalf("broker connection: connected=%v err=%v, want an error", ok, err)
	}
	return err
}

func TestSecureBrokerRoundTrip(t *testing.T) {
	b, pki := startSecureBroker(t)
	opts := topics.ClientOptions{
		Brokers:      []string{b.Addr()},
		TLS:          pki.ClientTLS(),
		SASLUser:     adminUser,
		SASLPassword: adminPass,
	}
	client, err := topics.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = client.Close() }()
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := topics.Provision(admin, topics.Catalog(4), 1, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("provision over SASL+TLS: %v", err)
	}
	existing, err := admin.ListTopics()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range topics.Catalog(4) {
		if _, ok := existing[s.Name]; !ok {
			t.Errorf("topic %s not provisioned", s.Name)
		}
	}

	// Produce with the service's own (idempotent, acks=all) configuration and, as every
	// producer of the service does, murmur2 partitioning.
	pcfg := topics.SaramaConfig(opts)
	pcfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(topics.Hasher())
	producer, err := sarama.NewSyncProducer(opts.Brokers, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = producer.Close() }()
	const key, value = "opp-1", "secret-payload"
	partition, offset, err := producer.SendMessage(&sarama.ProducerMessage{
		Topic: topics.Commands,
		Key:   sarama.StringEncoder(key),
		Value: sarama.StringEncoder(value),
	})
	if err != nil {
		t.Fatalf("produce over SASL+TLS: %v", err)
	}
	if want := topics.PartitionOf(key, 4); partition != want {
		t.Errorf("record landed on partition %d, want %d", partition, want)
	}

	got := consumeOne(t, opts, partition, offset)
	if string(got.Key) != key || string(got.Value) != value {
		t.Fatalf("consumed %q=%q, want %q=%q", got.Key, got.Value, key, value)
	}

	// The non-super user authenticates, may read the commands topic, and may not write to
	// the events topic: the broker sees the principal we authenticated as.
	readerOpts := opts
	readerOpts.SASLUser, readerOpts.SASLPassword = readerUser, readerPass
	got = consumeOne(t, readerOpts, partition, offset)
	if string(got.Value) != value {
		t.Fatalf("reader consumed %q, want %q", got.Value, value)
	}
	cfg := failFast(topics.SaramaConfig(readerOpts))
	cfg.Producer.Idempotent = false // isolate the topic ACL from the idempotent-write check
	cfg.Producer.Retry.Max = 0
	rp, err := sarama.NewSyncProducer(readerOpts.Brokers, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rp.Close() }()
	_, _, err = rp.SendMessage(&sarama.ProducerMessage{Topic: topics.Events, Value: sarama.StringEncoder("x")})
	if !errors.Is(err, sarama.ErrTopicAuthorizationFailed) {
		t.Errorf("reader producing to %s: %v, want %v", topics.Events, err, sarama.ErrTopicAuthorizationFailed)
	}
}

// consumeOne reads the record at offset of the commands topic with the service configuration.
func consumeOne(t *testing.T, opts topics.ClientOptions, partition int32, offset int64) *sarama.ConsumerMessage {
	t.Helper()
	consumer, err := sarama.NewConsumer(opts.Brokers, topics.SaramaConfig(opts))
	if err != nil {
		t.Fatalf("consumer as %s: %v", opts.SASLUser, err)
	}
	defer func() { _ = consumer.Close() }()
	pc, err := consumer.ConsumePartition(topics.Commands, partition, offset)
	if err != nil {
		t.Fatalf("consume as %s: %v", opts.SASLUser, err)
	}
	defer func() { _ = pc.Close() }()
	select {
	case m := <-pc.Messages():
		return m
	case err := <-pc.Errors():
		t.Fatalf("consume as %s: %v", opts.SASLUser, err)
	case <-time.After(5 * time.Second):
		t.Fatalf("consume as %s: no record within 5s", opts.SASLUser)
	}
	return nil
}

func TestSecureBrokerWrongPassword(t *testing.T) {
	b, pki := startSecureBroker(t)
	// Control: the same fail-fast configuration with the right password connects, so the
	// refusals below are due to the credentials alone.
	good := topics.ClientOptions{
		Brokers: []string{b.Addr()}, TLS: pki.ClientTLS(), SASLUser: adminUser, SASLPassword: adminPass,
	}
	c, err := sarama.NewClient(good.Brokers, failFast(topics.SaramaConfig(good)))
	if err != nil {
		t.Fatalf("right password: %v", err)
	}
	_ = c.Close()
	for _, c := range []struct{ name, user, pass string }{
		{"wrong password", adminUser, "not-the-secret"},
		{"unknown user", "mallory", adminPass},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := topics.ClientOptions{
				Brokers: []string{b.Addr()}, TLS: pki.ClientTLS(), SASLUser: c.user, SASLPassword: c.pass,
			}
			err := connectErr(t, b.Addr(), failFast(topics.SaramaConfig(opts)))
			if !errors.Is(err, sarama.ErrOutOfBrokers) {
				t.Errorf("client error %v, want %v", err, sarama.ErrOutOfBrokers)
			}
			// The connection itself fails during the SASL exchange: the TLS handshake
			// succeeded (no certificate error), the broker then dropped the session.
			err = brokerErr(t, b.Addr(), failFast(topics.SaramaConfig(opts)))
			var certErr x509.UnknownAuthorityError
			if errors.As(err, &certErr) {
				t.Errorf("broker error %v is a certificate error, want an authentication failure", err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

func TestSecureBrokerRefusesPlaintext(t *testing.T) {
	b, _ := startSecureBroker(t)
	opts := topics.ClientOptions{Brokers: []string{b.Addr()}, SASLUser: adminUser, SASLPassword: adminPass}
	err := connectErr(t, b.Addr(), failFast(topics.SaramaConfig(opts)))
	if !errors.Is(err, sarama.ErrOutOfBrokers) {
		t.Errorf("client error %v, want %v", err, sarama.ErrOutOfBrokers)
	}
	t.Logf("refused: %v", brokerErr(t, b.Addr(), failFast(topics.SaramaConfig(opts))))
}

func TestSecureBrokerUntrustedCertificate(t *testing.T) {
	b, pki := startSecureBroker(t)
	for _, c := range []struct {
		name string
		tls  *tls.Config
	}{
		// System roots only: the test CA is unknown.
		{"unknown CA", &tls.Config{ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}},
		// Another CA, as if the broker had been replaced.
		{"other CA", newTestPKI(t).ClientTLS()},
	} {
		t.Run(c.name, func(t *testing.T) {
			opts := topics.ClientOptions{
				Brokers: []string{b.Addr()}, TLS: c.tls, SASLUser: adminUser, SASLPassword: adminPass,
			}
			err := connectErr(t, b.Addr(), failFast(topics.SaramaConfig(opts)))
			var certErr x509.UnknownAuthorityError
			if !errors.As(err, &certErr) {
				t.Errorf("client error %v, want an x509.UnknownAuthorityError", err)
			}
		})
	}
	// The right CA but the wrong name is refused as well.
	wrongName := pki.ClientTLS()
	wrongName.ServerName = "kafka.example.com"
	opts := topics.ClientOptions{
		Brokers: []string{b.Addr()}, TLS: wrongName, SASLUser: adminUser, SASLPassword: adminPass,
	}
	err := connectErr(t, b.Addr(), failFast(topics.SaramaConfig(opts)))
	var nameErr x509.HostnameError
	if !errors.As(err, &nameErr) {
		t.Errorf("client error %v, want an x509.HostnameError", err)
	}
}

// TestSecureBrokerGoka runs goka's emitter and view, built only from our builders, over
// SASL+TLS: goka needs nothing beyond the sarama configuration they carry.
func TestSecureBrokerGoka(t *testing.T) {
	b, pki := startSecureBroker(t)
	opts := topics.ClientOptions{
		Brokers: []string{b.Addr()}, TLS: pki.ClientTLS(), SASLUser: adminUser, SASLPassword: adminPass,
	}
	client, err := topics.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		t.Fatal(err)
	}
	if err := topics.Provision(admin, topics.Catalog(4), 1, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	_ = admin.Close() // closes client too

	em, err := goka.NewEmitter(opts.Brokers, goka.Stream(topics.Pipelines), new(codec.String),
		goka.WithEmitterProducerBuilder(topics.ProducerBuilder(opts)),
		goka.WithEmitterTopicManagerBuilder(topics.TopicManagerBuilder(opts, 1)),
		goka.WithEmitterHasher(topics.Hasher()),
	)
	if err != nil {
		t.Fatalf("emitter over SASL+TLS: %v", err)
	}
	if err := em.EmitSync("pipeline-1", "stages-v1"); err != nil {
		t.Fatalf("emit: %v", err)
	}

	view, err := goka.NewView(opts.Brokers, goka.Table(topics.Pipelines), new(codec.String),
		goka.WithViewConsumerSaramaBuilder(topics.ConsumerBuilder(opts)),
		goka.WithViewTopicManagerBuilder(topics.TopicManagerBuilder(opts, 1)),
		goka.WithViewHasher(topics.Hasher()),
		goka.WithViewStorageBuilder(storage.MemoryBuilder()),
	)
	if err != nil {
		t.Fatalf("view over SASL+TLS: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	done := make(chan error, 1)
	go func() { done <- view.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("view: %v", err)
		}
	}()
	select {
	case <-view.WaitRunning():
	case err := <-done:
		done <- err
		t.Fatalf("view stopped before running: %v", err)
	case <-ctx.Done():
		t.Fatal("view not running within 10s")
	}

	// The first value was recovered; a second one arrives live.
	if err := em.EmitSync("pipeline-2", "stages-v2"); err != nil {
		t.Fatalf("emit: %v", err)
	}
	if err := em.Finish(); err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{"pipeline-1": "stages-v1", "pipeline-2": "stages-v2"} {
		for {
			v, err := view.Get(key)
			if err != nil {
				t.Fatalf("view get %s: %v", key, err)
			}
			if v != nil {
				if v.(string) != want {
					t.Fatalf("view %s = %v, want %s", key, v, want)
				}
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("view never saw %s", key)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// The embedded broker with BrokerOptions.SASL (what serve starts when HTTP tokens are
// configured) refuses clients without its credentials, so nobody who reaches the port can
// write a record; with them, the service's client provisions and produces as before. Without
// SASL it refuses to listen beyond loopback.
func TestEmbeddedBrokerSASL(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, topics.CredentialsFile)
	creds, err := topics.LoadOrCreateCredentials(path)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := topics.LoadOrCreateCredentials(path); err != nil || again != creds {
		t.Fatalf("credentials not kept: %v %v", again, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode: %v %v", fi, err)
	}
	if len(creds.Password) < 32 {
		t.Fatalf("weak generated password %q", creds.Password)
	}
	b, err := topics.StartBroker(topics.BrokerOptions{DataDir: dir, Listen: "127.0.0.1:0", SASL: &creds})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)

	for _, c := range []struct {
		name string
		opts topics.ClientOptions
	}{
		{"no credentials", topics.ClientOptions{Brokers: []string{b.Addr()}}},
		{"wrong password", topics.ClientOptions{Brokers: []string{b.Addr()}, SASLUser: creds.User, SASLPassword: "guess"}},
		{"unknown user", topics.ClientOptions{Brokers: []string{b.Addr()}, SASLUser: "boss", SASLPassword: creds.Password}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := failFast(topics.SaramaConfig(c.opts))
			c, err := sarama.NewClient([]string{b.Addr()}, cfg)
			if err != nil {
				return // refused at connect
			}
			defer c.Close()
			// Connected without authenticating: no request may succeed.
			if admin, err := sarama.NewClusterAdminFromClient(c); err == nil {
				if err := topics.Provision(admin, topics.Catalog(1), 1, slog.New(slog.DiscardHandler)); err == nil {
					t.Fatal("an unauthenticated client provisioned topics")
				}
			}
			p, err := sarama.NewSyncProducerFromClient(c)
			if err == nil {
				defer p.Close()
				if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topics.Commands, Value: sarama.StringEncoder("x")}); err == nil {
					t.Fatal("an unauthenticated client produced a record")
				}
			}
		})
	}
	ok := topics.ClientOptions{Brokers: []string{b.Addr()}, SASLUser: creds.User, SASLPassword: creds.Password}
	c, err := topics.NewClient(ok)
	if err != nil {
		t.Fatalf("client with the credentials: %v", err)
	}
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := topics.Provision(admin, topics.Catalog(1), 1, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("provision with the credentials: %v", err)
	}

	if _, err := topics.StartBroker(topics.BrokerOptions{DataDir: t.TempDir(), Listen: "0.0.0.0:0"}); err == nil ||
		!strings.Contains(err.Error(), "needs SASL") {
		t.Fatalf("embedded broker on 0.0.0.0 without SASL: %v", err)
	}
}
