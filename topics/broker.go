package topics

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/crm-pipeline/crm-pipeline/dirlock"
)

// Broker is the embedded Kafka-wire-protocol broker (kfake) with its log on disk, for
// development, tests and single-machine deployments. Clients reach it over TCP exactly as
// they reach a real cluster.
type Broker struct {
	cluster *kfake.Cluster
	addr    string
	lock    *dirlock.Lock
}

// BrokerOptions configure the embedded broker.
type BrokerOptions struct {
	// DataDir keeps the log; a restart on the same directory keeps every record.
	DataDir string
	// Listen is host:port; port 0 picks a free one.
	Listen string
	Logger *slog.Logger
	// CompactionInterval is how often the broker compacts its compacted topics; zero means
	// DefaultCompactionInterval. kfake compacts inside its request loop, so every client of
	// the broker waits while it runs (seconds for a table of 100k opportunities): a real
	// Kafka cluster compacts in background threads.
	CompactionInterval time.Duration
	// NoSync turns off the fsync of every produced batch before it is acknowledged (kfake's
	// SyncWrites). Without it an acknowledged command can be lost on a power cut or a kernel
	// crash (a process crash loses nothing: the page cache survives it); its cost is in
	// BENCHMARKS.md. The zero value syncs.
	NoSync bool
	// SASL, when set, makes every client authenticate with SASL/SCRAM-SHA-512 as this user
	// (a superuser) before any request. Without it the broker must listen on loopback only:
	// anyone who reaches the port could write any record (an opportunity change as any
	// actor, say).
	SASL *Credentials
	// Extra options, such as SASL users, TLS or fault injection in tests.
	Extra []kfake.Opt
}

// Credentials are a SASL/SCRAM user name and password.
type Credentials struct {
	User, Password string
}

// SCRAMMechanism is the SASL mechanism of the embedded broker's users, the one ClientOptions
// speaks.
const SCRAMMechanism = "SCRAM-SHA-512"

// CredentialsFile is where serve keeps the embedded broker's credentials, under the broker's
// data directory: the one place the emit and accounts commands can read them from
// (--kafka-sasl-credentials), readable by the owner only.
const CredentialsFile = "sasl-credentials"

// LoadCredentials reads a credentials file: one line "<user> <password>".
func LoadCredentials(path string) (Credentials, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Credentials{}, fmt.Errorf("read broker credentials: %w", err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return Credentials{}, fmt.Errorf("broker credentials %s: want one line \"<user> <password>\"", path)
	}
	return Credentials{User: f[0], Password: f[1]}, nil
}

// LoadOrCreateCredentials reads path, or creates it (mode 0600) with the user "crm-pipeline"
// and a random 256-bit password.
func LoadOrCreateCredentials(path string) (Credentials, error) {
	c, err := LoadCredentials(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return c, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return Credentials{}, fmt.Errorf("generate broker password: %w", err)
	}
	c = Credentials{User: "crm-pipeline", Password: hex.EncodeToString(raw)}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return Credentials{}, fmt.Errorf("create broker data dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(c.User+" "+c.Password+"\n"), 0o600); err != nil {
		return Credentials{}, fmt.Errorf("write broker credentials: %w", err)
	}
	return c, nil
}

// loopbackHost reports whether host (of a listen address) is a loopback name or address; an
// empty host listens on every interface.
func loopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// DefaultCompactionInterval is kfake's own default, an hour. An earlier minute made the
// latency benchmark's p99 2.0 s instead of 0.11 s: one stop-the-world compaction in every
// 60-second window. Compaction cost grows with the live data, not the garbage, so rare
// compactions stall the broker far less in total.
const DefaultCompactionInterval = time.Hour

// StartBroker starts the embedded broker. Its cluster id is random per data directory and kept
// there, so a client can tell a wiped broker from the one it knew.
func StartBroker(o BrokerOptions) (*Broker, error) {
	host, portText, err := net.SplitHostPort(o.Listen)
	if err != nil {
		return nil, fmt.Errorf("embedded broker listen address %q: %w", o.Listen, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("embedded broker port %q: %w", portText, err)
	}
	if o.SASL == nil && !loopbackHost(host) {
		return nil, fmt.Errorf("embedded broker on %s: a non-loopback address needs SASL (configure HTTP tokens, which turn it on, or listen on 127.0.0.1)", o.Listen)
	}
	if port == 0 {
		// kfake needs the port up front; reserve a free one.
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		port = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	// One broker per log: a second one on the same directory would rewrite the first's
	// segments under it.
	lock, err := dirlock.Acquire(o.DataDir, "crm-pipeline embedded broker")
	if err != nil {
		return nil, fmt.Errorf("embedded broker data dir: %w", err)
	}
	b, err := startCluster(o, host, port)
	if err != nil {
		lock.Release()
		return nil, err
	}
	b.lock = lock
	return b, nil
}

func startCluster(o BrokerOptions, host string, port int) (*Broker, error) {
	compaction := o.CompactionInterval
	if compaction <= 0 {
		compaction = DefaultCompactionInterval
	}
	id, err := clusterID(o.DataDir)
	if err != nil {
		return nil, err
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		kfake.DataDir(o.DataDir),
		kfake.ClusterID(id),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.BrokerConfigs(map[string]string{
			"log.cleaner.backoff.ms": strconv.FormatInt(compaction.Milliseconds(), 10),
		}),
	}
	if !o.NoSync {
		opts = append(opts, kfake.SyncWrites())
	}
	if o.SASL != nil {
		opts = append(opts, kfake.EnableSASL(), kfake.Superuser(SCRAMMechanism, o.SASL.User, o.SASL.Password))
	}
	if o.Logger != nil {
		opts = append(opts, kfake.WithLogger(kfakeLogger{o.Logger}))
	}
	opts = append(opts, o.Extra...)
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s: %w", o.Listen, err)
	}
	return &Broker{cluster: c, addr: net.JoinHostPort(host, strconv.Itoa(port))}, nil
}

// Addr is the bootstrap address of the broker.
func (b *Broker) Addr() string { return b.addr }

// Cluster exposes kfake for tests (fault injection, compaction).
func (b *Broker) Cluster() *kfake.Cluster { return b.cluster }

// Close stops the broker, flushes its log and gives its directory up.
func (b *Broker) Close() {
	b.cluster.Close()
	b.lock.Release()
}

func clusterID(dir string) (string, error) {
	path := filepath.Join(dir, "cluster-id")
	b, err := os.ReadFile(path)
	if err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read cluster id: %w", err)
	}
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	id := "crm-" + hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(id+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write cluster id: %w", err)
	}
	return id, nil
}

// kfakeLogger forwards kfake's warnings and errors to slog; its info and debug chatter is
// dropped.
type kfakeLogger struct{ l *slog.Logger }

func (k kfakeLogger) Logf(level kfake.LogLevel, msg string, args ...any) {
	switch level {
	case kfake.LogLevelError:
		k.l.Error("kfake: " + fmt.Sprintf(msg, args...))
	case kfake.LogLevelWarn:
		k.l.Warn("kfake: " + fmt.Sprintf(msg, args...))
	}
}
