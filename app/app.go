package app

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/cockroachdb/pebble/v2"
	"github.com/lovoo/goka"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/crm-pipeline/crm-pipeline/connlimit"
	"github.com/crm-pipeline/crm-pipeline/dirlock"
	"github.com/crm-pipeline/crm-pipeline/gateway"
	"github.com/crm-pipeline/crm-pipeline/processors"
	"github.com/crm-pipeline/crm-pipeline/query"
	"github.com/crm-pipeline/crm-pipeline/state"
	"github.com/crm-pipeline/crm-pipeline/topics"
	"github.com/crm-pipeline/crm-pipeline/views"
	"github.com/crm-pipeline/crm-pipeline/web"
)

// DefaultCacheMiB is serve's --cache-mib, and bench's, so the bench measures the default.
const DefaultCacheMiB = 64

// Config is the configuration of `crm-pipeline serve` (API.md, Operations): the command line
// fills it from flags, tests and the benchmark fill it directly to run the service in process.
type Config struct {
	// Brokers are the Kafka bootstrap brokers (--brokers); empty starts the embedded broker.
	Brokers []string
	// Data is the directory of the local state and the embedded broker's log (--data).
	Data string
	// HTTP is the API's listen address (--http); port 0 picks a free one (Running.HTTPAddr).
	HTTP string
	// EmbeddedBroker is the embedded broker's listen address (--embedded-broker).
	EmbeddedBroker string
	// EmbeddedCompaction is the embedded broker's compaction interval (topics.BrokerOptions).
	EmbeddedCompaction time.Duration
	// EmbeddedNoSync turns off the embedded broker's fsync before acknowledging (--embedded-sync=false).
	EmbeddedNoSync bool
	// Partitions is the partition count of the topics this service creates (--partitions); an
	// existing commands topic wins.
	Partitions int
	// ReportingCurrency is the ISO 4217 currency forecasts are reported in (--reporting-currency).
	ReportingCurrency string
	// CacheMiB is the pebble block cache shared by all local stores (--cache-mib).
	CacheMiB int
	// MemTableMiB caps each local store's memtable (--memtable-mib; 0: state's default).
	MemTableMiB int
	// ShutdownTimeout bounds a clean stop (--shutdown-timeout).
	ShutdownTimeout time.Duration
	// InstanceID is the static group membership id (--instance-id): "" derives one (see
	// InstanceID), "none" uses dynamic membership.
	InstanceID string
	// Kafka is TLS and SASL for --brokers (not the embedded broker).
	Kafka topics.ClientOptions
	// MaxConns and MaxConnsPerClient cap the HTTP connections held open (connlimit).
	MaxConns          int
	MaxConnsPerClient int
	// TokensFile and TokenList are the HTTP bearer tokens (--tokens-file or --tokens, one of
	// them); none leaves the API open, which only loopback addresses allow.
	TokensFile string
	TokenList  string
	// AllowedHosts are Host names answered besides loopback names (--allowed-hosts).
	AllowedHosts []string
	// TLSCert and TLSKey serve HTTPS (and HTTP/2) instead of plain HTTP.
	TLSCert, TLSKey string
	// InsecureHTTP allows tokens over plain HTTP on a non-loopback address.
	InsecureHTTP bool
	// MaxStreams caps the live change streams open at once (--max-streams; 0: query's
	// default).
	MaxStreams int
	// StreamReplay is the live stream's replay window in changes (--stream-replay; 0:
	// views.DefaultFeedSize).
	StreamReplay int

	// Clock is the time the views and the HTTP API decide with (nil: time.Now); tests set it
	// to pin dates.
	Clock func() time.Time
	// LogFormat is --log-format: "json" makes the start banner on stdout one JSON object, so
	// stdout carries JSON only; anything else prints it as plain lines.
	LogFormat string
	// Started, when set, is called once with what the service exposes as soon as the HTTP
	// listener is up: tests and the benchmark learn the chosen addresses from it.
	Started func(s *Running)
}

// Running is what a started service exposes to tests and the benchmark (through
// Config.Started): the addresses it chose, its embedded broker and its views.
type Running struct {
	// HTTPAddr is the address the API listens on (host:port).
	HTTPAddr string
	// BrokerAddr is the first Kafka broker the service talks to (the embedded one's address
	// without --brokers).
	BrokerAddr string
	// Broker is the embedded broker; nil with --brokers.
	Broker *topics.Broker
	// BrokerCredentials are the embedded broker's SASL credentials; nil when it is open
	// (no tokens) or external.
	BrokerCredentials *topics.Credentials
	// Views are the service's read models, for callers that wait on them directly.
	Views *views.Service
}

// Run runs the whole service until ctx ends: embedded broker (unless --brokers), topic
// provisioning, the opportunity processor, the views and the HTTP API. It logs to log and
// writes the start banner to stdout; it returns nil after a clean stop.
func Run(ctx context.Context, cfg Config, log *slog.Logger, stdout io.Writer) error {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	tokens, err := loadTokens(cfg)
	if err != nil {
		return err
	}
	if err := checkHTTPExposure(cfg, tokens.Len() > 0); err != nil {
		return err
	}
	stateRoot := filepath.Join(cfg.Data, "state")
	// One process per state directory, taken before anything in it is read or wiped: a second
	// serve on the same --data would otherwise judge the live stores unclean and delete them.
	lock, err := dirlock.Acquire(stateRoot, "crm-pipeline serve")
	if err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	defer lock.Release()
	if err := dropDistrustedCaches(stateRoot, log); err != nil {
		return err
	}
	run := &Running{}
	brokers := cfg.Brokers
	var brokerCreds *topics.Credentials
	if len(brokers) == 0 && tokens.Len() > 0 {
		// The HTTP API needs tokens, so the broker behind it must not take records from
		// anyone who reaches its port: SASL/SCRAM with credentials kept beside its log.
		path := filepath.Join(cfg.Data, "broker", topics.CredentialsFile)
		c, err := topics.LoadOrCreateCredentials(path)
		if err != nil {
			return err
		}
		brokerCreds = &c
		run.BrokerCredentials = brokerCreds
		log.Info("embedded broker requires SASL/SCRAM-SHA-512", "credentials", path)
	}
	if len(brokers) == 0 {
		b, err := topics.StartBroker(topics.BrokerOptions{
			DataDir: filepath.Join(cfg.Data, "broker"), Listen: cfg.EmbeddedBroker, Logger: log,
			CompactionInterval: cfg.EmbeddedCompaction, NoSync: cfg.EmbeddedNoSync, SASL: brokerCreds,
		})
		if err != nil {
			return err
		}
		defer b.Close()
		run.Broker = b
		brokers = []string{b.Addr()}
		log.Info("embedded broker started", "addr", b.Addr(), "data", filepath.Join(cfg.Data, "broker"))
	}
	run.BrokerAddr = brokers[0]
	client := topics.ClientOptions{Brokers: brokers, InstanceID: InstanceID(cfg)}
	if len(cfg.Brokers) > 0 {
		client.TLS, client.SASLUser, client.SASLPassword = cfg.Kafka.TLS, cfg.Kafka.SASLUser, cfg.Kafka.SASLPassword
	} else if brokerCreds != nil {
		client.SASLUser, client.SASLPassword = brokerCreds.User, brokerCreds.Password
	}

	sc, err := connect(ctx, client)
	if err != nil {
		return err
	}
	defer sc.Close()
	partitions, err := provision(sc, int32(cfg.Partitions), log)
	if err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cache := pebble.NewCache(int64(cfg.CacheMiB) << 20)
	defer cache.Unref()
	validate := func(topic string, partition int32) (state.Expect, error) {
		f, err := topics.Facts(sc, topic, partition)
		if err != nil {
			return state.Expect{}, err
		}
		return state.Expect{TopicID: f.TopicID, HighWaterMark: f.HighWaterMark}, nil
	}
	storageErrors := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crm_storage_errors_total", Help: "Failed attempts of local-store file operations that are retried until the disk takes them (disk full, read-only, out of descriptors), by operation and errno.",
	}, []string{"op", "errno"})
	reg.MustRegister(storageErrors)
	disk := state.NewDiskGuard(nil, log, func(op, errno string) { storageErrors.WithLabelValues(op, errno).Inc() })
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "crm_storage_degraded", Help: "1 while local-store writes wait for the disk (writes are then refused with 503), else 0.",
	}, func() float64 {
		if disk.Degraded() != "" {
			return 1
		}
		return 0
	}))
	defer func() {
		if disk.SyncFailed() {
			markDistrusted(stateRoot, log)
		}
	}()
	storeOpts := state.Options{Cache: cache, Validate: validate, Logger: log, Disk: disk}
	if cfg.MemTableMiB > 0 {
		storeOpts.MemTableSize = uint64(cfg.MemTableMiB) << 20
	}

	vs, err := views.New(views.Config{
		Brokers: brokers, Client: client, Logger: log, Registerer: reg,
		ReportingCurrency: cfg.ReportingCurrency, Clock: cfg.Clock, StorageDegraded: disk.Degraded,
		StorageBuilder: state.NewBuilder(filepath.Join(stateRoot, "views"), storeOpts), Partitions: partitions,
		Feed: views.FeedConfig{Size: cfg.StreamReplay},
	})
	if err != nil {
		return err
	}
	run.Views = vs
	gw, err := gateway.New(gateway.Config{Brokers: brokers, Client: client, Logger: log, Views: vs})
	if err != nil {
		return err
	}
	defer func() {
		if err := gw.Close(); err != nil {
			log.Warn("flush the gateway's emitters", "err", err)
		}
	}()
	pm := processors.NewMetrics(reg)
	restarts := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "crm_processor_restarts_total", Help: "Supervised restarts of a processor after a failure, by consumer group.",
	}, []string{"group"})
	reg.MustRegister(restarts)
	lag := processors.NewLagCollector(sc, map[string]string{
		topics.OpportunityGroup: topics.Commands, topics.AnalyticsGroup: topics.AnalyticsDeltas,
	})
	reg.MustRegister(lag)

	// Live streams never finish by themselves and Shutdown waits for every handler: the
	// server's shutdown ends them (RegisterOnShutdown below; the views closing their feed
	// would too, but only once the views have stopped).
	streamsStop := make(chan struct{})
	handler, err := query.NewHandler(query.Config{
		Backend: query.Stream{Service: vs, Gateway: gw}, Logger: log, Registerer: reg, Gatherer: reg, Clock: cfg.Clock, Tokens: tokens,
		MaxStreams: cfg.MaxStreams, StreamsStop: streamsStop,
		// With tokens a rebinding page has no credential to send, so any Host is answered
		// unless the operator lists them.
		Hosts: query.HostPolicy{Allowed: cfg.AllowedHosts, Any: tokens.Len() > 0 && len(cfg.AllowedHosts) == 0},
	})
	if err != nil {
		return fmt.Errorf("build HTTP handler: %w", err)
	}
	// The dashboard's static files at / and /ui/ (they carry no data, so no token), the API
	// everywhere else; the page is a client of that API like any other.
	dashboard, err := web.New()
	if err != nil {
		return err
	}
	handler = dashboard.WithAPI(handler)
	maxConns, perClient := cfg.MaxConns, cfg.MaxConnsPerClient
	if limit := raiseFileLimit(log); limit > 0 {
		var reserve int
		maxConns, perClient, reserve = connectionCaps(limit, int(partitions), maxConns, perClient)
		if maxConns != cfg.MaxConns {
			log.Warn("HTTP connection cap lowered to leave the local stores and Kafka their descriptors",
				"open_file_limit", limit, "reserved", reserve, "max_connections", maxConns, "max_connections_per_client", perClient)
		}
	}
	rawLn, err := net.Listen("tcp", cfg.HTTP)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTP, err)
	}
	refusedConns := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "crm_http_connections_refused_total", Help: "HTTP connections closed at accept because a connection cap (total or per client) was reached.",
	})
	reg.MustRegister(refusedConns)
	ln := connlimit.New(rawLn, maxConns, perClient, refusedConns.Inc)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "crm_http_connections_open", Help: "HTTP connections held open now.",
	}, func() float64 { return float64(ln.Open()) }))
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		// Idle keep-alive connections hold a descriptor each: bounded, like Go's own
		// http.Transport keeps them on the client side.
		IdleTimeout: 30 * time.Second,
		ErrorLog:    slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	srv.RegisterOnShutdown(func() { close(streamsStop) })
	run.HTTPAddr = ln.Addr().String()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(runCtx)
	g.Go(func() error { return vs.Run(gctx) })
	for _, graph := range []*goka.GroupGraph{
		processors.OpportunityGraph(processors.OpportunityConfig{
			Partitions: partitions, Logger: log, Metrics: pm,
		}),
		processors.AggregatorGraph(processors.AggregatorConfig{Logger: log, Metrics: pm}),
	} {
		dir := filepath.Join(stateRoot, "processors", string(graph.Group()))
		g.Go(func() error {
			return superviseProcessor(gctx, processorConfig{
				Brokers: brokers, Client: client, Logger: log, Graph: graph,
				StateDir: dir, Storage: state.NewBuilder(dir, storeOpts),
				OnRestart: func(error) { restarts.WithLabelValues(string(graph.Group())).Inc() },
				Trusted:   func() bool { return !disk.SyncFailed() },
			})
		})
	}
	g.Go(func() error {
		if err := vs.WaitReady(gctx); err != nil {
			return nil
		}
		if err := gw.EnsureDefaultPipeline(gctx); err != nil {
			if gctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("seed default pipeline: %w", err)
		}
		vs.MarkConfigured()
		log.Info("views recovered; ready", "http", run.HTTPAddr)
		if n, err := gw.MigrateHistory(gctx); err != nil && gctx.Err() == nil {
			// Not fatal: an unmigrated state is served as it is and migrated by its next
			// command; the next start asks again.
			log.Warn("history migration", "asked", n, "err", err)
		} else if n > 0 {
			log.Info("history migration: states of the previous layout sent to the processor", "count", n)
		}
		return nil
	})
	g.Go(func() error {
		var err error
		if cfg.TLSCert != "" {
			err = srv.ServeTLS(ln, cfg.TLSCert, cfg.TLSKey) // HTTP/2 is negotiated by ALPN
		} else {
			err = srv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return fmt.Errorf("http: %w", err)
	})
	g.Go(func() error {
		<-gctx.Done()
		// Stop accepting HTTP first, let in-flight requests finish, then the stream side.
		sctx, scancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer scancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("http shutdown", "err", err)
		}
		return nil
	})

	log.Info("crm-pipeline serving", "http", run.HTTPAddr, "brokers", brokers, "partitions", partitions)
	scheme := "http"
	if cfg.TLSCert != "" {
		scheme = "https"
	}
	writeBanner(stdout, cfg, scheme, run)
	if cfg.Started != nil {
		cfg.Started(run)
	}
	err = waitStopped(ctx, g, cfg.ShutdownTimeout, disk, log)
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("crm-pipeline stopped cleanly")
	return nil
}

// writeBanner tells the operator where the service is and how to send a first command: plain
// lines in text mode, one JSON object (the same text in msg, the addresses as fields) when
// the logs are JSON, so that stdout carries JSON only.
func writeBanner(stdout io.Writer, cfg Config, scheme string, run *Running) {
	up := fmt.Sprintf("crm-pipeline is up: HTTP on %s://%s/api/v1, Kafka at %s", scheme, run.HTTPAddr, run.BrokerAddr)
	dashboard := scheme + "://" + run.HTTPAddr + "/"
	first := fmt.Sprintf("curl -s -X POST %s://%s/api/v1/opportunities -H 'Content-Type: application/json' -H 'Prefer: wait=5' "+
		"-d '{\"name\":\"First deal\",\"accountId\":\"acc-1\",\"ownerId\":\"owner-1\",\"amount\":\"12500.00\",\"currency\":\"USD\",\"closeDate\":\"%s\"}'",
		scheme, run.HTTPAddr, cfg.Clock().AddDate(0, 1, 0).Format(time.DateOnly))
	if cfg.LogFormat == "json" {
		slog.New(slog.NewJSONHandler(stdout, nil)).Info(up,
			"http", scheme+"://"+run.HTTPAddr+"/api/v1", "kafka", run.BrokerAddr, "dashboard", dashboard, "firstCommand", first)
		return
	}
	fmt.Fprintf(stdout, "%s\nthe dashboard: %s\nsend a first command:\n  %s\n", up, dashboard, first)
}

// waitStopped waits for the service's goroutines. Once a stop is asked for it waits at most
// timeout more if a local store is blocked on the disk: such a write only returns when the
// disk takes it, and a stop must not hang on it. The caches are then left unmarked (rebuilt at
// the next start) and the process can exit.
func waitStopped(ctx context.Context, g *errgroup.Group, timeout time.Duration, disk *state.DiskGuard, log *slog.Logger) error {
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
	}
	if cause := disk.Degraded(); cause != "" {
		log.Error("stopped with local-store writes still waiting for the disk; the caches will be rebuilt at the next start", "cause", cause)
		return fmt.Errorf("stopped while local storage refused writes: %s", cause)
	}
	return <-done
}

// distrustFile, in the state directory, says a run saw an fsync fail: the caches may have lost
// pages a later fsync did not report, so the next start rebuilds all of them.
const distrustFile = ".fsync-failed"

// markDistrusted leaves distrustFile (best effort: if the disk refuses it too, the processors'
// missing clean-stop markers still rebuild theirs).
func markDistrusted(stateRoot string, log *slog.Logger) {
	if err := os.WriteFile(filepath.Join(stateRoot, distrustFile), []byte(time.Now().UTC().Format(time.RFC3339)+"\n"), 0o644); err != nil {
		log.Error("could not mark the local caches as untrusted", "err", err)
	}
}

// dropDistrustedCaches wipes every local cache when the last run left distrustFile.
func dropDistrustedCaches(stateRoot string, log *slog.Logger) error {
	if _, err := os.Stat(filepath.Join(stateRoot, distrustFile)); err != nil {
		return nil
	}
	log.Warn("the last run saw an fsync fail: rebuilding every local cache from Kafka", "dir", stateRoot)
	if err := state.WipeDir(stateRoot); err != nil {
		return fmt.Errorf("drop untrusted caches: %w", err)
	}
	return nil
}

// raiseFileLimit raises the soft limit of open files to the hard limit, as servers do at
// start (Kafka's own scripts and systemd units set it high): pebble and the Kafka clients need
// descriptors besides the HTTP connections, which the connection caps keep below it.
//
// It returns the soft limit in force afterwards (0 when unknown).
func raiseFileLimit(log *slog.Logger) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("read the open-file limit", "err", err)
		return 0
	}
	if lim.Cur >= lim.Max {
		return lim.Cur
	}
	old := lim.Cur
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		log.Warn("raise the open-file limit", "from", old, "to", lim.Max, "err", err)
		return old
	}
	log.Debug("raised the open-file limit", "from", old, "to", lim.Max)
	return lim.Cur
}

// Descriptors kept for everything but HTTP connections: per local store (the views' and the
// processors' tables and lookups, about six per partition) its WAL, manifest, lock, directory
// and open tables, and a base for the Kafka connections, the log and the process itself.
const (
	descriptorsPerStore = 32
	descriptorsBase     = 256
	minConnections      = 16
)

// connectionCaps fits the HTTP connection caps under the open-file limit, so that a flood of
// connections, refused at the cap, can never take the descriptors a store or a Kafka client
// needs. A lowered total lowers the per-client cap in proportion, so one address still cannot
// take every slot. A cap of 0 (none) stays 0: the operator asked for it.
func connectionCaps(limit uint64, partitions, maxConns, perClient int) (int, int, int) {
	stores := 6*partitions + 3
	reserve := stores*descriptorsPerStore + descriptorsBase
	avail := minConnections
	if limit > uint64(reserve+minConnections) {
		avail = int(min(limit-uint64(reserve), 1<<30))
	}
	if maxConns > avail {
		if perClient > 0 {
			perClient = max(1, int(int64(perClient)*int64(avail)/int64(maxConns)))
		}
		maxConns = avail
	}
	if maxConns > 0 && perClient > maxConns {
		perClient = maxConns
	}
	return maxConns, perClient, reserve
}

// connect opens a sarama client, retrying while the brokers come up.
func connect(ctx context.Context, o topics.ClientOptions) (sarama.Client, error) {
	var lastErr error
	for attempt := 0; attempt < 30; attempt++ {
		c, err := topics.NewClient(o)
		if err == nil {
			return c, nil
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
	return nil, lastErr
}

// provision creates the topics and returns the partition count of the commands topic, which
// every copartitioned topic shares (an existing commands topic wins over --partitions).
func provision(c sarama.Client, want int32, log *slog.Logger) (int32, error) {
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		return 0, fmt.Errorf("cluster admin: %w", err)
	}
	if n, err := topics.Partitions(c, topics.Commands); err == nil && n > 0 && n != want {
		log.Warn("commands topic exists with another partition count; using it", "partitions", n, "flag", want)
		want = n
	}
	if err := topics.Provision(admin, topics.Catalog(want), 1, log); err != nil {
		return 0, err
	}
	return want, nil
}

// loadTokens reads the HTTP bearer tokens from --tokens-file or --tokens (one of them).
func loadTokens(cfg Config) (*query.Tokens, error) {
	switch {
	case cfg.TokensFile != "" && cfg.TokenList != "":
		return nil, fmt.Errorf("give --tokens-file or --tokens, not both")
	case cfg.TokensFile != "":
		f, err := os.Open(cfg.TokensFile)
		if err != nil {
			return nil, fmt.Errorf("tokens file: %w", err)
		}
		defer f.Close()
		t, err := query.LoadTokens(f)
		if err != nil {
			return nil, fmt.Errorf("tokens file %s: %w", cfg.TokensFile, err)
		}
		return t, nil
	case cfg.TokenList != "":
		t, err := query.ParseTokenList(cfg.TokenList)
		if err != nil {
			return nil, fmt.Errorf("tokens: %w", err)
		}
		return t, nil
	}
	return nil, nil
}

// checkHTTPExposure refuses the two ways of exposing the API by mistake: without tokens on a
// non-loopback address (anyone on the network could write), and with tokens over plain HTTP
// on a non-loopback address (the tokens would cross the network in clear) unless
// --insecure-http says a TLS-terminating proxy is in front.
func checkHTTPExposure(cfg Config, tokens bool) error {
	if loopbackOnly(cfg.HTTP) {
		return nil
	}
	if !tokens {
		return fmt.Errorf("--http %s is not a loopback address and no tokens are configured: "+
			"give --tokens-file or CRM_PIPELINE_TOKENS, or listen on 127.0.0.1", cfg.HTTP)
	}
	if cfg.TLSCert == "" && !cfg.InsecureHTTP {
		return fmt.Errorf("--http %s is not a loopback address and would carry bearer tokens in clear: "+
			"give --tls-cert and --tls-key, or --insecure-http behind a TLS-terminating proxy", cfg.HTTP)
	}
	return nil
}

// loopbackOnly reports whether addr binds only loopback interfaces, the one place the service
// may listen without authentication.
func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// InstanceID is this instance's static group membership id: --instance-id, or the host name
// and a hash of the absolute data directory, which is stable across restarts of the same
// instance and differs between instances on one host (they cannot share a data directory).
func InstanceID(cfg Config) string {
	switch cfg.InstanceID {
	case "none":
		return ""
	case "":
	default:
		return cfg.InstanceID
	}
	host, _ := os.Hostname()
	abs, err := filepath.Abs(cfg.Data)
	if err != nil {
		abs = cfg.Data
	}
	sum := sha256.Sum256([]byte(abs))
	return fmt.Sprintf("%s-%x", strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '_' {
			return r
		}
		return '-'
	}, host), sum[:6])
}
