package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"
	"github.com/cockroachdb/pebble/v2"
	"github.com/lovoo/goka"
	"github.com/lovoo/goka/storage"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/app"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/state"
	"github.com/crm-pipeline/crm-pipeline/step"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// `crm-pipeline bench` runs the performance scenarios of BENCHMARKS.md against the real
// service, in process, on loopback: an embedded broker per scenario, serve() with --brokers
// pointing at it and a fresh data directory. Each measured figure is printed as
//
//	BENCH <name> value=<v> unit=<u> baseline=<b> ratio=<v/b>
//
// and everything else (sizes, notes, targets) as lines starting with '#'.

// benchScenarios are the scenarios in the order they run. Scenario 6 of BENCHMARKS.md (cost
// per command) is the Go benchmarks, run by `make bench-go`.
var benchScenarios = []string{"throughput", "latency", "queries", "restore", "memory"}

// benchBudget scales a scenario down in the default run (no --scale) so that the whole run
// fits in 10 minutes on 2 cores; 1 means the full size. See BENCHMARKS.md.
var benchBudget = map[string]float64{
	"throughput": 0.4,
}

// benchPartitions is the partition count of every scenario (serve's default).
const benchPartitions = 8

type bench struct {
	scale    float64
	scaleSet bool
	root     string
	keep     bool
	profile  string // directory of --profile, "" when not profiling
	// memoryInProcess runs the memory scenario's service in this process instead of as a
	// child `crm-pipeline serve` (tests, whose executable is not crm-pipeline).
	memoryInProcess bool
	// serveEnv is added to the environment of the memory scenario's child serve.
	serveEnv []string
	// cacheMiB is the service's --cache-mib in every scenario (serve's default unless given).
	cacheMiB int
	out      io.Writer
	log      *slog.Logger
	// big is the broker holding the 1M-opportunity changelog, built by restore and reused by
	// memory within one run.
	big *fixtureEnv
}

type fixtureEnv struct {
	env *benchEnv
	fx  *fixture
}

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("bench", flag.ContinueOnError)
	scale := fset.Float64("scale", 1, "multiplies every size, rate and duration (1 = the sizes of BENCHMARKS.md)")
	list := fset.String("scenarios", strings.Join(benchScenarios, ","), "comma list of scenarios to run: "+strings.Join(benchScenarios, ", "))
	data := fset.String("data", "", "directory for the scenarios' brokers and local state (default: a temporary directory)")
	keep := fset.Bool("keep", false, "keep the scenarios' data directories")
	verbose := fset.Bool("v", false, "log the service's info messages to stderr")
	memHere := fset.Bool("memory-in-process", false, "run the memory scenario's service in this process (its RSS then includes the broker and harness) instead of as a child crm-pipeline serve")
	serveEnv := fset.String("serve-env", "", "comma list of KEY=VALUE added to the environment of the memory scenario's child serve (e.g. GOMEMLIMIT=768MiB)")
	cacheMiB := fset.Int("cache-mib", app.DefaultCacheMiB, "the service's --cache-mib (pebble block cache), for every scenario's serve and the restore scenario's views")
	profile := fset.String("profile", "", "write CPU, block, mutex and heap profiles of the whole run (service and load) to this directory")
	// Unlike serve, bench reads no CRM_PIPELINE_* variables: a --data meant for serve must
	// not become the bench's scratch directory.
	fset.SetOutput(stderr)
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fset.Args())
	}
	if !(*scale > 0) || *scale > 10 {
		return fmt.Errorf("bench: --scale %v: want a number in (0, 10]", *scale)
	}
	if *cacheMiB < 1 {
		return fmt.Errorf("bench: --cache-mib %d: want at least 1", *cacheMiB)
	}
	b := &bench{scale: *scale, out: stdout, keep: *keep, profile: *profile, memoryInProcess: *memHere, serveEnv: splitList(*serveEnv), cacheMiB: *cacheMiB}
	for _, kv := range b.serveEnv {
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("bench: --serve-env %q: want KEY=VALUE", kv)
		}
	}
	fset.Visit(func(f *flag.Flag) {
		if f.Name == "scale" {
			b.scaleSet = true
		}
	})
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	b.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	var chosen []string
	for _, s := range splitList(*list) {
		if !slices.Contains(benchScenarios, s) {
			return fmt.Errorf("bench: unknown scenario %q (have %s)", s, strings.Join(benchScenarios, ", "))
		}
		if !slices.Contains(chosen, s) {
			chosen = append(chosen, s)
		}
	}
	if len(chosen) == 0 {
		return errors.New("bench: no scenario given")
	}
	b.root = *data
	if b.root == "" {
		dir, err := os.MkdirTemp("", "crm-bench-")
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		b.root = dir
		if !b.keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(b.root, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer func() {
		if b.big != nil {
			b.big.env.close(b.keep)
		}
	}()

	if *profile != "" {
		stop, err := startProfiles(*profile)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer stop()
	}
	host, _ := os.Hostname()
	b.note("crm-pipeline bench: %s, %d CPUs (GOMAXPROCS %d), %s/%s, scale %g%s, data %s",
		host, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, b.scale,
		map[bool]string{true: "", false: " (default: budgeted scenarios scaled down)"}[b.scaleSet], b.root)
	b.note("load average at start %s (other processes on this machine compete with the measurement)", loadAvg())
	started := time.Now()
	var errs []error
	for _, s := range chosen {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		t0 := time.Now()
		var err error
		switch s {
		case "throughput":
			err = b.throughput(ctx)
		case "latency":
			err = b.latency(ctx)
		case "queries":
			err = b.queries(ctx)
		case "restore":
			err = b.restore(ctx, slices.Contains(chosen, "memory"))
		case "memory":
			err = b.memory(ctx)
		}
		if err != nil {
			b.note("%s FAILED after %s: %v", s, time.Since(t0).Round(time.Millisecond), err)
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
			continue
		}
		b.note("%s done in %s (load average %s)", s, time.Since(t0).Round(time.Millisecond), loadAvg())
	}
	b.note("bench finished in %s", time.Since(started).Round(time.Millisecond))
	if len(errs) > 0 {
		return fmt.Errorf("bench: %w", errors.Join(errs...))
	}
	return nil
}

// startProfiles starts the CPU profile and block and mutex sampling; stop writes them all.
func startProfiles(dir string) (stop func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, err
	}
	runtime.SetBlockProfileRate(int(100 * time.Microsecond))
	runtime.SetMutexProfileFraction(20)
	return func() {
		pprof.StopCPUProfile()
		cpu.Close()
		for _, name := range []string{"block", "mutex", "heap", "goroutine"} {
			if f, err := os.Create(filepath.Join(dir, name+".pprof")); err == nil {
				_ = pprof.Lookup(name).WriteTo(f, 0)
				f.Close()
			}
		}
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}, nil
}

// --- output -------------------------------------------------------------------------------

func (b *bench) note(format string, args ...any) {
	fmt.Fprintf(b.out, "# "+format+"\n", args...)
}

// report prints one BENCH line.
func (b *bench) report(name string, value float64, unit string, baseline float64) {
	ratio := math.NaN()
	if baseline > 0 {
		ratio = value / baseline
	}
	fmt.Fprintf(b.out, "BENCH %s value=%s unit=%s baseline=%s ratio=%s\n",
		name, fmtNum(value), unit, fmtNum(baseline), strconv.FormatFloat(ratio, 'f', 3, 64))
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 4, 64)
	}
}

// factor is the scale of a scenario: --scale, or in the default run the scenario's budget.
func (b *bench) factor(scenario string) float64 {
	if b.scaleSet {
		return b.scale
	}
	if f, ok := benchBudget[scenario]; ok {
		return b.scale * f
	}
	return b.scale
}

func (b *bench) size(scenario string, full, floor int) int {
	return max(floor, int(math.Round(float64(full)*b.factor(scenario))))
}

func (b *bench) duration(full, floor time.Duration) time.Duration {
	return max(floor, time.Duration(float64(full)*b.scale))
}

// warmup is the unmeasured run before a measured load: connections, fetch sessions and
// caches are set up, and the previous step's garbage is collected.
func (b *bench) warmup(measured time.Duration) time.Duration {
	return min(5*time.Second, max(500*time.Millisecond, measured/6)).Round(100 * time.Millisecond)
}

func (b *bench) rate(full, floor float64) float64 {
	return max(floor, full*b.scale)
}

func (b *bench) dir(name string) (string, error) {
	dir := filepath.Join(b.root, name)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// --- broker and service ------------------------------------------------------------------

// benchEnv is one scenario's embedded broker with the service's topics provisioned.
type benchEnv struct {
	dir     string
	broker  *topics.Broker
	brokers []string
	client  sarama.Client
	admin   sarama.ClusterAdmin
}

func (b *bench) newEnv(name string) (*benchEnv, error) {
	dir, err := b.dir(name)
	if err != nil {
		return nil, err
	}
	br, err := topics.StartBroker(topics.BrokerOptions{DataDir: filepath.Join(dir, "broker"), Listen: "127.0.0.1:0", Logger: b.log})
	if err != nil {
		return nil, err
	}
	e := &benchEnv{dir: dir, broker: br, brokers: []string{br.Addr()}}
	e.client, err = topics.NewClient(topics.ClientOptions{Brokers: e.brokers, ClientID: "crm-bench-admin"})
	if err != nil {
		br.Close()
		return nil, err
	}
	e.admin, err = sarama.NewClusterAdminFromClient(e.client)
	if err != nil {
		e.client.Close()
		br.Close()
		return nil, err
	}
	if err := topics.Provision(e.admin, topics.Catalog(benchPartitions), 1, b.log); err != nil {
		e.close(false)
		return nil, err
	}
	// The default pipeline is on the pipelines table before any command, as serve would
	// seed it: pre-produced commands must not race the seeding.
	pv, err := codecs.EncodePipeline(domain.DefaultPipeline())
	if err != nil {
		e.close(false)
		return nil, err
	}
	p, err := benchSyncProducer(e.brokers)
	if err != nil {
		e.close(false)
		return nil, err
	}
	_, _, err = p.SendMessage(&sarama.ProducerMessage{Topic: topics.Pipelines, Key: sarama.StringEncoder(domain.DefaultPipelineID), Value: sarama.ByteEncoder(pv)})
	p.Close()
	if err != nil {
		e.close(false)
		return nil, fmt.Errorf("seed default pipeline: %w", err)
	}
	return e, nil
}

func (e *benchEnv) close(keep bool) {
	_ = e.admin.Close() // closes the client too
	e.broker.Close()
	if !keep {
		_ = os.RemoveAll(e.dir)
	}
}

// createTopic creates a plain delete-policy topic (the baselines' output topics).
func (e *benchEnv) createTopic(name string, partitions int32) error {
	err := e.admin.CreateTopic(name, &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1}, false)
	if err != nil && !errors.Is(err, sarama.ErrTopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", name, err)
	}
	return nil
}

// hwms returns the high-water mark of every partition of topic.
func (e *benchEnv) hwms(topic string) ([]int64, error) {
	parts, err := e.client.Partitions(topic)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(parts))
	for i, p := range parts {
		if out[i], err = e.client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func sum64(v []int64) int64 {
	var s int64
	for _, x := range v {
		s += x
	}
	return s
}

// groupCaughtUp reports whether group has committed every partition of topic up to its
// high-water mark.
func (e *benchEnv) groupCaughtUp(group, topic string) (bool, error) {
	hwm, err := e.hwms(topic)
	if err != nil {
		return false, err
	}
	parts := make([]int32, len(hwm))
	for i := range parts {
		parts[i] = int32(i)
	}
	resp, err := e.admin.ListConsumerGroupOffsets(group, map[string][]int32{topic: parts})
	if err != nil {
		return false, err
	}
	for i, h := range hwm {
		blk := resp.GetBlock(topic, int32(i))
		if h == 0 {
			continue
		}
		if blk == nil || blk.Offset < h {
			return false, nil
		}
	}
	return true, nil
}

// benchService is app.Run running in this process.
type benchService struct {
	run     *app.Running
	cancel  context.CancelFunc
	done    chan error
	base    string
	data    string
	stopped sync.Once
	stopErr error
}

func (b *bench) startService(ctx context.Context, env *benchEnv, data string) (*benchService, error) {
	sctx, cancel := context.WithCancel(ctx)
	started := make(chan *app.Running, 1)
	cfg := app.Config{
		Brokers: env.brokers, Data: data, HTTP: "127.0.0.1:0", EmbeddedBroker: "127.0.0.1:0",
		Partitions: benchPartitions, ReportingCurrency: "USD", CacheMiB: b.cacheMiB, ShutdownTimeout: 20 * time.Second,
		Clock: time.Now, Started: func(r *app.Running) { started <- r },
	}
	s := &benchService{cancel: cancel, done: make(chan error, 1), data: data}
	go func() { s.done <- app.Run(sctx, cfg, b.log, io.Discard) }()
	select {
	case s.run = <-started:
	case err := <-s.done:
		cancel()
		return nil, fmt.Errorf("serve exited before starting: %v", err)
	case <-time.After(2 * time.Minute):
		cancel()
		return nil, errors.New("serve did not start within 2 minutes")
	}
	s.base = "http://" + s.run.HTTPAddr + "/api/v1"
	return s, nil
}

// waitReady waits until the views have recovered and the default pipeline is visible.
func (s *benchService) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := s.run.Views.WaitReady(ctx); err != nil {
		return fmt.Errorf("views not ready: %w", err)
	}
	for {
		if p, err := s.run.Views.Pipeline(domain.DefaultPipelineID); err == nil && p != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.New("default pipeline not visible")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// stop stops serve and waits for it; later calls return the first result.
func (s *benchService) stop() error {
	s.stopped.Do(func() {
		s.cancel()
		select {
		case s.stopErr = <-s.done:
		case <-time.After(90 * time.Second):
			s.stopErr = errors.New("serve did not stop within 90s")
		}
	})
	return s.stopErr
}

// --- producers ----------------------------------------------------------------------------

// benchSyncProducer is a producer with the service's client settings and murmur2
// partitioning.
func benchSyncProducer(brokers []string) (sarama.SyncProducer, error) {
	cfg := topics.SaramaConfig(topics.ClientOptions{Brokers: brokers, ClientID: "crm-bench"})
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(topics.Hasher())
	p, err := sarama.NewSyncProducer(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect producer to %v: %w", brokers, err)
	}
	return p, nil
}

// loader is an async producer for bulk loads, murmur2-partitioned like every producer of the
// service. Ordered (idempotent, one request in flight) when the order of a key's records
// matters.
type loader struct {
	p    sarama.AsyncProducer
	errs chan error
	wg   sync.WaitGroup
	n    atomic.Int64
}

func newLoader(brokers []string, ordered bool) (*loader, error) {
	cfg := topics.SaramaConfig(topics.ClientOptions{Brokers: brokers, ClientID: "crm-bench-loader", FlushFrequency: 5 * time.Millisecond})
	cfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(topics.Hasher())
	cfg.Producer.Flush.Bytes = 1 << 20
	cfg.ChannelBufferSize = 8192
	cfg.Producer.Return.Successes = false // goka's default config returns them
	if !ordered {
		cfg.Producer.Idempotent = false
		cfg.Net.MaxOpenRequests = 5
	}
	p, err := sarama.NewAsyncProducer(brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	l := &loader{p: p, errs: make(chan error, 1)}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for e := range p.Errors() {
			select {
			case l.errs <- e.Err:
			default:
			}
		}
	}()
	return l, nil
}

func (l *loader) send(ctx context.Context, topic, key string, value []byte) error {
	select {
	case l.p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.ByteEncoder(value)}:
		l.n.Add(1)
		return nil
	case err := <-l.errs:
		return fmt.Errorf("produce to %s: %w", topic, err)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// close flushes and reports the first error.
func (l *loader) close() error {
	l.p.AsyncClose()
	l.wg.Wait()
	select {
	case err := <-l.errs:
		return err
	default:
		return nil
	}
}

// --- the command mix ----------------------------------------------------------------------

var benchOwners = func() []string {
	o := make([]string, 200)
	for i := range o {
		o[i] = fmt.Sprintf("owner-%03d", i+1)
	}
	return o
}()

var (
	benchPipeline   = domain.DefaultPipeline()
	benchOpenStages = []string{"qualification", "discovery", "proposal", "negotiation"}
	benchReasons    = []string{"price", "timing", "no_decision", "competitor", "budget"}
	benchRivals     = []string{"", "", "Globex", "Initech", "Umbrella"}
)

func benchPipelines(id string) (*domain.Pipeline, bool) {
	if id == benchPipeline.ID {
		return &benchPipeline, true
	}
	return nil, false
}

func randAmount(r *rand.Rand) int64 { return 100_000 + r.Int64N(25_000_000) } // 1,000.00 .. 251,000.00 USD

// randCloseDate is a close date from six months ago to a year ahead of now.
func randCloseDate(r *rand.Rand, now time.Time) domain.Date {
	return domain.DateOf(now) + domain.Date(r.IntN(545)-180)
}

func benchCreate(r *rand.Rand, id, cmdID string, at, now time.Time) domain.Command {
	return domain.Command{
		Type: domain.CmdCreate, CommandID: cmdID, OpportunityID: id, IssuedAt: at, Actor: "bench",
		Create: &domain.CreateOpportunity{
			Name: "Deal " + id, AccountID: fmt.Sprintf("acc-%d", r.IntN(20000)),
			OwnerID: benchOwners[r.IntN(len(benchOwners))], Amount: domain.FormatAmount(randAmount(r), "USD"),
			Currency: "USD", CloseDate: randCloseDate(r, now).String(), Source: "bench",
		},
	}
}

// benchNext is a realistic next command for an opportunity in status st at stage stage: an
// open deal is mostly updated (amount, close date, next step) or moved, sometimes won or
// lost; a closed deal is reopened.
func benchNext(r *rand.Rand, id, cmdID string, st domain.Status, stage string, at, now time.Time) (domain.Command, int64) {
	cmd := domain.Command{CommandID: cmdID, OpportunityID: id, IssuedAt: at, Actor: "bench"}
	if st != domain.StatusOpen {
		cmd.Type = domain.CmdReopen
		cmd.Reopen = &domain.Reopen{StageID: benchOpenStages[r.IntN(len(benchOpenStages))]}
		return cmd, -1
	}
	switch x := r.IntN(100); {
	case x < 55:
		cmd.Type = domain.CmdUpdate
		u := &domain.UpdateOpportunity{}
		amount := randAmount(r)
		a := domain.FormatAmount(amount, "USD")
		u.Amount = &a
		if r.IntN(3) == 0 {
			d := randCloseDate(r, now).String()
			u.CloseDate = &d
		}
		if r.IntN(3) == 0 {
			n := fmt.Sprintf("call #%d", r.IntN(1000))
			u.NextStep = &n
		}
		cmd.Update = u
		return cmd, amount
	case x < 82:
		cmd.Type = domain.CmdChangeStage
		next := stage
		for next == stage {
			next = benchOpenStages[r.IntN(len(benchOpenStages))]
		}
		cmd.ChangeStage = &domain.ChangeStage{StageID: next}
	case x < 91:
		cmd.Type = domain.CmdCloseWon
		cmd.CloseWon = &domain.CloseWon{}
	default:
		cmd.Type = domain.CmdCloseLost
		cmd.CloseLost = &domain.CloseLost{Reason: benchReasons[r.IntN(len(benchReasons))], Competitor: benchRivals[r.IntN(len(benchRivals))]}
	}
	return cmd, -1
}

// --- scenario 1: throughput ---------------------------------------------------------------

// oppModel is what the throughput generator tracks per opportunity to produce valid commands
// and to know the final forecast.
type oppModel struct {
	status domain.Status
	stage  string
	amount int64
}

type mixResult struct {
	n        int
	byType   map[domain.CommandType]int
	last     map[int32]domain.Command // last command of each partition
	expected [3]struct{ count, amount int64 }
}

// produceMix produces n commands over opps opportunities to the commands topic: each
// opportunity gets n/opps commands, its create first, in a random interleaving, with issuedAt
// spread over the past year.
func produceMix(ctx context.Context, env *benchEnv, n, opps int, seed uint64) (*mixResult, error) {
	r := rand.New(rand.NewPCG(seed, 1))
	per := n / opps
	order := make([]int32, 0, per*opps)
	for i := range opps {
		for range per {
			order = append(order, int32(i))
		}
	}
	r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	models := make([]oppModel, opps)
	l, err := newLoader(env.brokers, true)
	if err != nil {
		return nil, err
	}
	res := &mixResult{n: len(order), byType: map[domain.CommandType]int{}, last: map[int32]domain.Command{}}
	now := time.Now().UTC()
	start := now.Add(-365 * 24 * time.Hour)
	step := (364 * 24 * time.Hour) / time.Duration(len(order))
	for k, oi := range order {
		id := fmt.Sprintf("opp-%07d", oi)
		cmdID := fmt.Sprintf("c-%d", k)
		at := start.Add(time.Duration(k) * step)
		m := &models[oi]
		var cmd domain.Command
		if m.status == "" {
			cmd = benchCreate(r, id, cmdID, at, now)
			m.status, m.stage = domain.StatusOpen, benchOpenStages[0]
			m.amount, _ = domain.ParseAmount(cmd.Create.Amount, "USD")
		} else {
			var amount int64
			cmd, amount = benchNext(r, id, cmdID, m.status, m.stage, at, now)
			switch cmd.Type {
			case domain.CmdUpdate:
				m.amount = amount
			case domain.CmdChangeStage:
				m.stage = cmd.ChangeStage.StageID
			case domain.CmdCloseWon:
				m.status, m.stage = domain.StatusWon, "closed_won"
			case domain.CmdCloseLost:
				m.status, m.stage = domain.StatusLost, "closed_lost"
			case domain.CmdReopen:
				m.status, m.stage = domain.StatusOpen, cmd.Reopen.StageID
			}
		}
		res.byType[cmd.Type]++
		res.last[topics.PartitionOf(id, benchPartitions)] = cmd
		v, err := codecs.EncodeCommand(cmd)
		if err != nil {
			l.close()
			return nil, err
		}
		if err := l.send(ctx, topics.Commands, id, v); err != nil {
			l.close()
			return nil, err
		}
	}
	if err := l.close(); err != nil {
		return nil, err
	}
	for _, m := range models {
		i := map[domain.Status]int{domain.StatusOpen: 0, domain.StatusWon: 1, domain.StatusLost: 2}[m.status]
		res.expected[i].count++
		res.expected[i].amount += m.amount
	}
	return res, nil
}

func (b *bench) throughput(ctx context.Context) error {
	n := b.size("throughput", 1_000_000, 1000)
	opps := max(10, n/10)
	if b.factor("throughput") < 1 && !b.scaleSet {
		b.note("throughput: scaled to %d commands over %d opportunities (%.0f%% of the issue's 1M/100k) to fit the 10-minute budget on 2 cores",
			n, opps, 100*b.factor("throughput"))
	}
	env, err := b.newEnv("throughput")
	if err != nil {
		return err
	}
	defer env.close(b.keep)
	t0 := time.Now()
	mix, err := produceMix(ctx, env, n, opps, 1)
	if err != nil {
		return err
	}
	var parts []string
	for _, t := range []domain.CommandType{domain.CmdCreate, domain.CmdUpdate, domain.CmdChangeStage, domain.CmdCloseWon, domain.CmdCloseLost, domain.CmdReopen} {
		parts = append(parts, fmt.Sprintf("%s %.1f%%", t, 100*float64(mix.byType[t])/float64(mix.n)))
	}
	b.note("throughput: %d commands over %d opportunities pre-produced in %s (%s)", mix.n, opps, time.Since(t0).Round(time.Millisecond), strings.Join(parts, ", "))

	// Baseline: a raw sarama consumer group copying every command record to another topic.
	baseDur, err := b.passthrough(ctx, env, int64(mix.n))
	if err != nil {
		return fmt.Errorf("passthrough baseline: %w", err)
	}

	data, err := b.dir("throughput-service")
	if err != nil {
		return err
	}
	if !b.keep {
		defer os.RemoveAll(data)
	}
	start := time.Now()
	svc, err := b.startService(ctx, env, data)
	if err != nil {
		return err
	}
	defer svc.stop()
	tctx, cancel := context.WithTimeout(ctx, 30*time.Minute)
	defer cancel()
	if err := b.waitEffects(tctx, env, svc, mix); err != nil {
		return err
	}
	dur := time.Since(start)
	events, _ := env.hwms(topics.Events)
	deltas, _ := env.hwms(topics.AnalyticsDeltas)
	table, _ := env.hwms(topics.OpportunityTable)
	buckets, _ := env.hwms(topics.AnalyticsTable)
	b.note("throughput: service applied every command in %s (effects: %d table records, %d events, %d deltas, %d bucket writes); passthrough copied them in %s",
		dur.Round(time.Millisecond), sum64(table), sum64(events), sum64(deltas), sum64(buckets), baseDur.Round(time.Millisecond))
	b.report("throughput", float64(mix.n)/dur.Seconds(), "commands/s", float64(mix.n)/baseDur.Seconds())
	if err := svc.stop(); err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	return nil
}

// waitEffects waits until every effect of the pre-produced commands is in the tables and
// views: the opportunity processor and the aggregator have committed their inputs up to the
// high-water marks, the opportunity view shows the last command of every partition and the
// forecast read model equals the generator's final states.
func (b *bench) waitEffects(ctx context.Context, env *benchEnv, svc *benchService, mix *mixResult) error {
	start := time.Now()
	var phases []string
	phase := func(name string) {
		phases = append(phases, fmt.Sprintf("%s %s", name, time.Since(start).Round(time.Millisecond)))
	}
	defer func() { b.note("throughput: caught up: %s", strings.Join(phases, ", ")) }()
	tick := func() error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
			return nil
		}
	}
	for {
		ok, err := env.groupCaughtUp(topics.OpportunityGroup, topics.Commands)
		if err == nil && ok {
			break
		}
		if err := tick(); err != nil {
			return fmt.Errorf("opportunity processor did not catch up: %w", err)
		}
	}
	phase("opportunity processor committed")
	for {
		ok, err := env.groupCaughtUp(topics.AnalyticsGroup, topics.AnalyticsDeltas)
		if err == nil && ok {
			break
		}
		if err := tick(); err != nil {
			return fmt.Errorf("aggregator did not catch up: %w", err)
		}
	}
	phase("aggregator committed")
	for p, cmd := range mix.last {
		if _, err := svc.run.Views.Await(ctx, cmd); err != nil {
			return fmt.Errorf("view of partition %d: %w", p, err)
		}
	}
	phase("opportunity view")
	want := [3]analytics.Measure{}
	for i, e := range mix.expected {
		want[i] = analytics.Measure{Count: e.count, Amount: domain.FormatAmount(e.amount, "USD")}
	}
	var got [3]analytics.Measure
	for {
		res, err := svc.run.Views.Forecast(analytics.ForecastQuery{From: domain.MinDate, To: domain.MaxDate, GroupBy: analytics.GroupNone, Currency: "USD"})
		if err == nil {
			got = [3]analytics.Measure{res.Total.Open, res.Total.ClosedWon, res.Total.ClosedLost}
			match := true
			for i := range got {
				match = match && got[i].Count == want[i].Count && got[i].Amount == want[i].Amount
			}
			if match {
				phase("analytics view")
				return nil
			}
		}
		if err := tick(); err != nil {
			return fmt.Errorf("forecast read model never matched: got open/won/lost %+v, want %+v: %w", got, want, err)
		}
	}
}

type passthroughHandler struct {
	producer sarama.AsyncProducer
	out      string
}

func (passthroughHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (passthroughHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h passthroughHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		h.producer.Input() <- &sarama.ProducerMessage{Topic: h.out, Partition: msg.Partition,
			Key: sarama.ByteEncoder(msg.Key), Value: sarama.ByteEncoder(msg.Value)}
		sess.MarkMessage(msg, "")
	}
	return nil
}

// passthrough is the throughput baseline: a sarama consumer group (the service's client
// settings) that produces every record of the commands topic to another topic, timed from
// start until its offsets are committed and every record is acknowledged.
func (b *bench) passthrough(ctx context.Context, env *benchEnv, n int64) (time.Duration, error) {
	const out, group = "crm-bench-passthrough", "crm-bench-passthrough"
	if err := env.createTopic(out, benchPartitions); err != nil {
		return 0, err
	}
	start := time.Now()
	pcfg := topics.SaramaConfig(topics.ClientOptions{Brokers: env.brokers, ClientID: "crm-bench-passthrough"})
	pcfg.Producer.Partitioner = sarama.NewManualPartitioner
	pcfg.Producer.Return.Successes = true
	producer, err := sarama.NewAsyncProducer(env.brokers, pcfg)
	if err != nil {
		return 0, err
	}
	var acked atomic.Int64
	var perr firstError
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range producer.Successes() {
			acked.Add(1)
		}
	}()
	go func() {
		defer wg.Done()
		for e := range producer.Errors() {
			perr.set(e.Err)
		}
	}()
	defer func() { producer.AsyncClose(); wg.Wait() }()
	ccfg := topics.SaramaConfig(topics.ClientOptions{Brokers: env.brokers, ClientID: "crm-bench-passthrough"})
	cg, err := sarama.NewConsumerGroup(env.brokers, group, ccfg)
	if err != nil {
		return 0, err
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		var err error
		for cctx.Err() == nil {
			if err = cg.Consume(cctx, []string{topics.Commands}, passthroughHandler{producer: producer, out: out}); err != nil && cctx.Err() == nil {
				break
			}
		}
		done <- err
	}()
	defer func() { cancel(); <-done; cg.Close() }()
	deadline := time.Now().Add(30 * time.Minute)
	for {
		if err := perr.get(); err != nil {
			return 0, fmt.Errorf("produce: %w", err)
		}
		if acked.Load() >= n {
			if ok, err := env.groupCaughtUp(group, topics.Commands); err == nil && ok {
				return time.Since(start), nil
			}
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("passthrough did not finish: %d of %d acknowledged", acked.Load(), n)
		}
		select {
		case err := <-done:
			return 0, fmt.Errorf("consumer group stopped: %v", err)
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// --- fixtures: the changelog of a populated service ---------------------------------------

// fixture is a population of opportunities written directly to the service's changelogs
// (opportunity table and analytics table), as the processors would have written them: each
// opportunity is the result of a create and up to four further commands decided by the
// domain, and the buckets are the folded analytics deltas of all of them.
type fixture struct {
	opps         int
	tableRecords int   // aggregates
	bucketCount  int   // analytics buckets
	aggBytes     int64 // keys + values of the aggregates
	bucketBytes  int64 // keys + values of the buckets
	ids          []string
	open         [][]string // open opportunity ids by partition
	fcFrom, fcTo domain.Date
	wlFrom, wlTo domain.Date
}

const fixtureKeepIDs = 200_000

func (b *bench) buildFixture(ctx context.Context, env *benchEnv, n int, seed uint64) (*fixture, error) {
	// The generator keeps every bucket in memory: collect less often while it runs (no
	// service runs in this process while a fixture is built).
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	now := time.Now().UTC()
	fx := &fixture{opps: n, open: make([][]string, benchPartitions)}
	fx.fcFrom, fx.fcTo = quarterBounds(domain.DateOf(now))
	fx.wlFrom, fx.wlTo = quarterBounds(fx.fcFrom - 1)
	l, err := newLoader(env.brokers, false)
	if err != nil {
		return nil, err
	}
	// Each worker simulates every workers-th opportunity with its own random source and
	// folds its deltas into its own buckets; buckets are merged at the end (opportunities
	// are disjoint, so values add up; the fixture's deltas carry no source position, so the
	// buckets start with an empty guard, as buckets nothing was redelivered to would).
	workers := max(1, runtime.GOMAXPROCS(0))
	parts := make([]*fixturePart, workers)
	var wg sync.WaitGroup
	for w := range workers {
		parts[w] = &fixturePart{buckets: map[string]*analytics.Bucket{}, open: make([][]string, benchPartitions)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[w].err = parts[w].run(ctx, l, n, w, workers, rand.New(rand.NewPCG(seed, uint64(w))), now)
		}()
	}
	wg.Wait()
	buckets := parts[0].buckets
	for _, p := range parts {
		if p.err != nil {
			l.close()
			return nil, p.err
		}
		fx.aggBytes += p.aggBytes
		fx.ids = append(fx.ids, p.ids...)
		for i := range p.open {
			fx.open[i] = append(fx.open[i], p.open[i]...)
		}
		if p == parts[0] {
			continue
		}
		for key, bk := range p.buckets {
			into := buckets[key]
			if into == nil {
				buckets[key] = bk
				continue
			}
			for name, v := range bk.Values {
				if into.Values == nil {
					into.Values = map[string]int64{}
				}
				if s := into.Values[name] + v; s != 0 {
					into.Values[name] = s
				} else {
					delete(into.Values, name)
				}
			}
		}
	}
	slices.Sort(fx.ids)
	for i := range fx.open {
		slices.Sort(fx.open[i])
	}
	fx.tableRecords = n
	for key, bk := range buckets {
		v, err := codecs.EncodeBucket(*bk)
		if err != nil {
			l.close()
			return nil, err
		}
		fx.bucketBytes += int64(len(key) + len(v))
		if err := l.send(ctx, topics.AnalyticsTable, key, v); err != nil {
			l.close()
			return nil, err
		}
	}
	fx.bucketCount = len(buckets)
	if err := l.close(); err != nil {
		return nil, err
	}
	for p, ids := range fx.open {
		if len(ids) == 0 {
			return nil, fmt.Errorf("fixture: no open opportunity on partition %d; use a larger --scale", p)
		}
	}
	return fx, nil
}

// fixturePart is one fixture worker's share.
type fixturePart struct {
	buckets  map[string]*analytics.Bucket
	aggBytes int64
	ids      []string
	open     [][]string
	err      error
}

// run simulates opportunities w, w+step, ... below n: a create and up to four further
// commands each, decided by the domain at times within the past year, and sends the final
// aggregates to the opportunity table.
func (fp *fixturePart) run(ctx context.Context, l *loader, n, w, stride int, r *rand.Rand, now time.Time) error {
	keepEvery := max(1, n/fixtureKeepIDs)
	for i := w; i < n; i += stride {
		id := fmt.Sprintf("opp-%07d", i)
		at := now.Add(-time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
		var cur *domain.Opportunity
		agg := domain.Aggregate{Position: -1, HistoryOnTopic: true}
		env := step.Env{Key: id, Pipelines: benchPipelines}
		more := r.IntN(5)
		for k := 0; k <= more; k++ {
			var cmd domain.Command
			cmdID := fmt.Sprintf("f-%d-%d", i, k)
			if k == 0 {
				cmd = benchCreate(r, id, cmdID, at, now)
			} else {
				at = at.Add(time.Hour + time.Duration(r.Int64N(int64(20*24*time.Hour))))
				if at.After(now.Add(-time.Hour)) {
					break
				}
				cmd, _ = benchNext(r, id, cmdID, cur.Status, cur.StageID, at, now)
			}
			// The processor's own step, at the record's time; position -1 and no source: the
			// fixture's deltas go straight into the buckets, unguarded.
			res := step.Apply(agg, cmd, at, step.Position{Offset: -1}, env)
			if res.Rejected != nil {
				return fmt.Errorf("fixture %s: %s: %s", cmdID, res.Rejected.Code, res.Rejected.Message)
			}
			for _, dl := range res.Deltas {
				bk := fp.buckets[dl.Bucket]
				if bk == nil {
					bk = &analytics.Bucket{}
					fp.buckets[dl.Bucket] = bk
				}
				bk.Apply(dl)
			}
			agg = res.Aggregate
			next := agg.State
			cur = &next
		}
		events := agg.Events // the fixture's table holds states and events, not re-emission rings
		for _, e := range events {
			b, err := codecs.EncodeEvent(e)
			if err != nil {
				return err
			}
			if err := l.send(ctx, topics.History, topics.HistoryKey(id, e.Version), b); err != nil {
				return err
			}
		}
		v, err := codecs.EncodeAggregate(domain.Aggregate{State: *cur, Events: events, Position: -1, HistoryOnTopic: true})
		if err != nil {
			return err
		}
		fp.aggBytes += int64(len(id) + len(v))
		if err := l.send(ctx, topics.OpportunityTable, id, v); err != nil {
			return err
		}
		if i%keepEvery == 0 {
			fp.ids = append(fp.ids, id)
		}
		if cur.Status == domain.StatusOpen {
			if p := topics.PartitionOf(id, benchPartitions); len(fp.open[p]) < fixtureKeepIDs/benchPartitions/stride {
				fp.open[p] = append(fp.open[p], id)
			}
		}
	}
	return nil
}

func quarterBounds(d domain.Date) (domain.Date, domain.Date) {
	t := d.Time()
	q := (int(t.Month()) - 1) / 3
	from := time.Date(t.Year(), time.Month(q*3+1), 1, 0, 0, 0, 0, time.UTC)
	to := from.AddDate(0, 3, -1)
	return domain.DateOf(from), domain.DateOf(to)
}

// populated builds a scenario's broker with a fixture of n opportunities and starts the
// service on it, ready, with the processor's table restored (one command per partition has
// gone through it).
func (b *bench) populated(ctx context.Context, name string, n int) (*benchEnv, *fixture, *benchService, error) {
	env, fx, err := b.fixtureEnv(ctx, name, n)
	if err != nil {
		return nil, nil, nil, err
	}
	svc, err := b.startService(ctx, env, filepath.Join(env.dir, "service"))
	if err != nil {
		env.close(b.keep)
		return nil, nil, nil, err
	}
	fail := func(err error) (*benchEnv, *fixture, *benchService, error) {
		svc.stop()
		env.close(b.keep)
		return nil, nil, nil, err
	}
	if err := svc.waitReady(ctx, 10*time.Minute); err != nil {
		return fail(err)
	}
	if err := warmUp(ctx, env, svc, fx); err != nil {
		return fail(err)
	}
	return env, fx, svc, nil
}

// fixtureEnv starts a scenario's broker and writes a fixture of n opportunities to it.
func (b *bench) fixtureEnv(ctx context.Context, name string, n int) (*benchEnv, *fixture, error) {
	env, err := b.newEnv(name)
	if err != nil {
		return nil, nil, err
	}
	t0 := time.Now()
	fx, err := b.buildFixture(ctx, env, n, 7)
	if err != nil {
		env.close(b.keep)
		return nil, nil, err
	}
	b.note("%s: fixture of %d opportunities (%d buckets, %.0f MiB of state) written to the changelogs in %s",
		name, fx.opps, fx.bucketCount, float64(fx.aggBytes+fx.bucketBytes)/(1<<20), time.Since(t0).Round(time.Millisecond))
	return env, fx, nil
}

// warmUp sends one update per partition through Kafka and waits for it in the view, so the
// processor has restored its table and joined its group before anything is measured.
func warmUp(ctx context.Context, env *benchEnv, svc *benchService, fx *fixture) error {
	p, err := benchSyncProducer(env.brokers)
	if err != nil {
		return err
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for part, ids := range fx.open {
		cmd := updateCommand(ids[0], fmt.Sprintf("warm-%d", part), 123_400)
		v, err := codecs.EncodeCommand(cmd)
		if err != nil {
			return err
		}
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topics.Commands, Key: sarama.StringEncoder(cmd.OpportunityID), Value: sarama.ByteEncoder(v)}); err != nil {
			return err
		}
		out, err := svc.run.Views.Await(ctx, cmd)
		if err != nil {
			return fmt.Errorf("warm-up command on partition %d: %w", part, err)
		}
		if out.Rejected != nil {
			return fmt.Errorf("warm-up command refused: %s %s", out.Rejected.Code, out.Rejected.Message)
		}
	}
	return nil
}

func updateCommand(id, cmdID string, amount int64) domain.Command {
	a := domain.FormatAmount(amount, "USD")
	return domain.Command{Type: domain.CmdUpdate, CommandID: cmdID, OpportunityID: id, IssuedAt: time.Now().UTC(),
		Actor: "bench", Update: &domain.UpdateOpportunity{Amount: &a}}
}

// --- load generation ----------------------------------------------------------------------

type loadResult struct {
	lat      []time.Duration
	errs     int64 // failed requests, timeouts included
	timeouts int64 // requests whose effect was not visible in time (errTimeout)
	elapsed  time.Duration
	firstEr  error
}

func (l *loadResult) rps() float64 { return float64(len(l.lat)) / l.elapsed.Seconds() }

func (l *loadResult) pct(q float64) float64 {
	if len(l.lat) == 0 {
		return 0
	}
	if !slices.IsSorted(l.lat) {
		slices.Sort(l.lat)
	}
	i := int(math.Ceil(q*float64(len(l.lat)))) - 1
	i = min(max(i, 0), len(l.lat)-1)
	return float64(l.lat[i]) / float64(time.Millisecond)
}

// check fails when no request completed or more than 1% failed for another reason than a
// timeout; timeouts are reported by the caller.
func (l *loadResult) check(what string) error {
	total := int64(len(l.lat)) + l.errs
	if len(l.lat) == 0 {
		return fmt.Errorf("%s: no request completed (%d failed, first: %v)", what, l.errs, l.firstEr)
	}
	if failed := l.errs - l.timeouts; failed*100 > total {
		return fmt.Errorf("%s: %d of %d requests failed, first: %v", what, failed, total, l.firstEr)
	}
	return nil
}

// openLoop issues rate requests per second for dur, each on its own goroutine at its
// scheduled time, and measures each from that scheduled time (so a stall is not hidden by
// the sender waiting for it: no coordinated omission).
func openLoop(ctx context.Context, rate float64, dur time.Duration, do func(ctx context.Context, i int) error) *loadResult {
	n := int(rate * dur.Seconds())
	lat := make([]time.Duration, n)
	ok := make([]bool, n)
	var errs, timeouts atomic.Int64
	var first firstError
	var wg sync.WaitGroup
	start := time.Now()
	interval := float64(time.Second) / rate
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(float64(i) * interval))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := do(ctx, i); err != nil {
				errs.Add(1)
				if errors.Is(err, errTimeout) {
					timeouts.Add(1)
				}
				first.set(err)
				return
			}
			lat[i], ok[i] = time.Since(at), true
		}()
	}
	wg.Wait()
	res := &loadResult{elapsed: time.Since(start), errs: errs.Load(), timeouts: timeouts.Load(), firstEr: first.get()}
	for i := range lat {
		if ok[i] {
			res.lat = append(res.lat, lat[i])
		}
	}
	return res
}

// firstError keeps the first error set from any goroutine.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// closedLoop runs workers clients back to back for dur.
func closedLoop(ctx context.Context, workers int, dur time.Duration, do func(ctx context.Context, w, i int) error) *loadResult {
	var mu sync.Mutex
	res := &loadResult{}
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(dur)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var errs int64
			var firstErr error
			for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
				t := time.Now()
				if err := do(ctx, w, i); err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errs += errs
			if res.firstEr == nil {
				res.firstEr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// newHTTPClient is a load client with at most 512 connections: beyond that requests queue
// in the client (and an open loop counts the queueing), instead of the load exhausting the
// process's file descriptors when the service falls behind.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: 512, MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512, IdleConnTimeout: time.Minute,
			DisableCompression: true,
		},
	}
}

// errTimeout marks a request whose effect was not visible in time (a 202 after Prefer: wait,
// an Await past its deadline): the service fell behind, which is a measurement, not a harness
// failure.
var errTimeout = errors.New("not visible in time")

// httpDo sends one request and reads the whole answer; any status but want is an error.
func httpDo(ctx context.Context, c *http.Client, method, url string, body string, hdr map[string]string, want int) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		if resp.StatusCode == http.StatusAccepted && hdr["Prefer"] != "" {
			return fmt.Errorf("%s %s: 202 after Prefer: %s: %w", method, url, hdr["Prefer"], errTimeout)
		}
		return fmt.Errorf("%s %s: status %d, want %d: %.200s", method, url, resp.StatusCode, want, b)
	}
	return nil
}

// --- scenario 2: update latency -----------------------------------------------------------

func (b *bench) latency(ctx context.Context) error {
	n := b.size("latency", 100_000, 2000)
	rate := b.rate(2000, 100)
	dur := b.duration(60*time.Second, 2*time.Second)
	warm := b.warmup(dur)
	baseDur := max(dur/4, 2*time.Second)
	env, fx, svc, err := b.populated(ctx, "latency", n)
	if err != nil {
		return err
	}
	defer env.close(b.keep)
	defer svc.stop()
	b.note("latency: %d opportunities; %.0f updates/s for %s through Kafka, then through HTTP (Prefer: wait=5), each after %s of unmeasured warm-up and with the service drained in between",
		n, rate, dur, warm)

	// Baseline first, with the service idle: the broker's own round trip, produce -> consume,
	// at the same rate.
	cpu := startCPU()
	base, err := rawRoundTrip(ctx, env, rate, baseDur, warm)
	if err != nil {
		return fmt.Errorf("raw round-trip baseline: %w", err)
	}
	b.note("latency: baseline raw sarama produce->consume round trip at %.0f/s over %s: p50 %.2f ms, p99 %.2f ms (process CPU %s)",
		rate, baseDur, base.pct(0.5), base.pct(0.99), cpu())

	var seq atomic.Int64
	var rmu sync.Mutex
	r := rand.New(rand.NewPCG(11, 12))
	next := func() (string, int64) {
		rmu.Lock()
		defer rmu.Unlock()
		ids := fx.open[r.IntN(len(fx.open))]
		return ids[r.IntN(len(ids))], randAmount(r)
	}

	// Through Kafka: a producer with the service's settings; visible = the view's Await.
	pcfg := topics.SaramaConfig(topics.ClientOptions{Brokers: env.brokers, ClientID: "crm-bench-latency"})
	pcfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(topics.Hasher())
	pcfg.Producer.Return.Successes = false
	producer, err := sarama.NewAsyncProducer(env.brokers, pcfg)
	if err != nil {
		return err
	}
	go func() {
		for e := range producer.Errors() {
			b.log.Warn("latency producer", "err", e.Err)
		}
	}()
	defer producer.AsyncClose()
	kafkaCmd := func(ctx context.Context, i int) error {
		id, amount := next()
		cmd := updateCommand(id, fmt.Sprintf("lk-%d", seq.Add(1)), amount)
		v, err := codecs.EncodeCommand(cmd)
		if err != nil {
			return err
		}
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		select {
		case producer.Input() <- &sarama.ProducerMessage{Topic: topics.Commands, Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(v)}:
		case <-actx.Done():
			return fmt.Errorf("produce: %w", errTimeout)
		}
		out, err := svc.run.Views.Await(actx, cmd)
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("await: %w", errTimeout)
			}
			return err
		}
		if out.Rejected != nil {
			return fmt.Errorf("refused: %s", out.Rejected.Code)
		}
		return nil
	}
	openLoop(ctx, rate, warm, kafkaCmd)
	if err := b.drain(ctx, env); err != nil {
		return err
	}
	cpu = startCPU()
	kafka := openLoop(ctx, rate, dur, kafkaCmd)
	kafkaCPU := cpu()
	if err := kafka.check("latency through Kafka"); err != nil {
		return err
	}
	if err := b.drain(ctx, env); err != nil {
		return err
	}

	// Through HTTP: PATCH with Prefer: wait=5; the answer comes once the view shows it.
	client := newHTTPClient()
	defer client.CloseIdleConnections()
	hdr := map[string]string{"Prefer": "wait=5"}
	patch := func(ctx context.Context, i int) error {
		id, amount := next()
		return httpDo(ctx, client, http.MethodPatch, svc.base+"/opportunities/"+id,
			`{"amount":"`+domain.FormatAmount(amount, "USD")+`"}`, hdr, http.StatusOK)
	}
	openLoop(ctx, rate, warm, patch)
	if err := b.drain(ctx, env); err != nil {
		return err
	}
	cpu = startCPU()
	web := openLoop(ctx, rate, dur, patch)
	webCPU := cpu()
	if err := web.check("latency through HTTP"); err != nil {
		return err
	}
	for _, l := range []struct {
		name, cpu string
		res       *loadResult
		timeout   string
	}{{"Kafka", kafkaCPU, kafka, "30s"}, {"HTTP", webCPU, web, "Prefer: wait=5"}} {
		b.note("latency: through %s %d updates completed (%.0f/s), %d failed (%d not visible within %s); process CPU %s",
			l.name, len(l.res.lat), l.res.rps(), l.res.errs, l.res.timeouts, l.timeout, l.cpu)
		if l.res.firstEr != nil {
			b.note("latency: first error through %s: %v", l.name, l.res.firstEr)
		}
	}
	for _, path := range []struct {
		name string
		res  *loadResult
	}{{"kafka", kafka}, {"http", web}} {
		for _, p := range []struct {
			name string
			q    float64
		}{{"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}, {"max", 1}} {
			b.report("latency."+path.name+"."+p.name, path.res.pct(p.q), "ms", base.pct(p.q))
		}
	}
	return nil
}

// drain waits until the opportunity processor and the aggregator have committed everything
// on their inputs, so that one measured phase does not pay for the backlog of the previous.
func (b *bench) drain(ctx context.Context, env *benchEnv) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for _, g := range []struct{ group, topic string }{
		{topics.OpportunityGroup, topics.Commands}, {topics.AnalyticsGroup, topics.AnalyticsDeltas},
	} {
		for {
			if ok, err := env.groupCaughtUp(g.group, g.topic); err == nil && ok {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("drain %s: %w", g.group, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// startCPU starts measuring this process's CPU time; the function it returns reports it as
// cores used over the wall time since.
func startCPU() func() string {
	t0, c0 := time.Now(), cpuTime()
	return func() string {
		return fmt.Sprintf("%.2f of %d cores", (cpuTime()-c0).Seconds()/time.Since(t0).Seconds(), runtime.NumCPU())
	}
}

// cpuTime is the user + system CPU time of this process.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rawRoundTrip measures produce -> consume latency on the broker alone, with the service's
// producer settings and sarama partition consumers.
func rawRoundTrip(ctx context.Context, env *benchEnv, rate float64, dur, warm time.Duration) (*loadResult, error) {
	const topic = "crm-bench-roundtrip"
	if err := env.createTopic(topic, benchPartitions); err != nil {
		return nil, err
	}
	cfg := topics.SaramaConfig(topics.ClientOptions{Brokers: env.brokers, ClientID: "crm-bench-roundtrip"})
	consumer, err := sarama.NewConsumer(env.brokers, cfg)
	if err != nil {
		return nil, err
	}
	defer consumer.Close()
	var mu sync.Mutex
	waiting := map[string]chan struct{}{}
	for p := range int32(benchPartitions) {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetNewest)
		if err != nil {
			return nil, err
		}
		defer pc.AsyncClose()
		go func() {
			for m := range pc.Messages() {
				mu.Lock()
				ch := waiting[string(m.Value)]
				delete(waiting, string(m.Value))
				mu.Unlock()
				if ch != nil {
					close(ch)
				}
			}
		}()
	}
	pcfg := topics.SaramaConfig(topics.ClientOptions{Brokers: env.brokers, ClientID: "crm-bench-roundtrip"})
	pcfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(topics.Hasher())
	pcfg.Producer.Return.Successes = false
	producer, err := sarama.NewAsyncProducer(env.brokers, pcfg)
	if err != nil {
		return nil, err
	}
	defer producer.AsyncClose()
	var seq atomic.Int64
	send := func(ctx context.Context, _ int) error {
		key := strconv.FormatInt(seq.Add(1), 10)
		ch := make(chan struct{})
		mu.Lock()
		waiting[key] = ch
		mu.Unlock()
		producer.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(key)}
		select {
		case <-ch:
			return nil
		case <-time.After(10 * time.Second):
			return errors.New("record not consumed within 10s")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	openLoop(ctx, rate, warm, send)
	res := openLoop(ctx, rate, dur, send)
	return res, res.check("raw round trip")
}

// --- scenario 3: queries ------------------------------------------------------------------

func (b *bench) queries(ctx context.Context) error {
	n := b.size("queries", 100_000, 2000)
	getRate := b.rate(5000, 200)
	dur := b.duration(10*time.Second, time.Second)
	const workers = 4
	// The service runs as a child crm-pipeline serve, so the load comes from another process
	// (this one); tests, whose executable is not crm-pipeline, run it in process.
	var env *benchEnv
	var fx *fixture
	var base, healthURL, where string
	if b.memoryInProcess {
		e, f, svc, err := b.populated(ctx, "queries", n)
		if err != nil {
			return err
		}
		defer e.close(b.keep)
		defer svc.stop() // before the broker closes
		env, fx, base, healthURL = e, f, svc.base, "http://"+svc.run.HTTPAddr+"/healthz"
		where = "the service in this process"
	} else {
		e, f, err := b.fixtureEnv(ctx, "queries", n)
		if err != nil {
			return err
		}
		env, fx = e, f
		defer env.close(b.keep)
		c, err := b.startChild(ctx, env, filepath.Join(env.dir, "service"))
		if err != nil {
			return err
		}
		defer c.stop() // before the broker closes
		if err := c.warm(ctx, fx, "queries"); err != nil {
			return err
		}
		base, healthURL = c.addr+"/api/v1", c.addr+"/healthz"
		where = "a child crm-pipeline serve"
	}
	b.note("queries: %d opportunities, %d owners, served by %s; GET by id open-loop at %.0f req/s, the others %d concurrent clients back to back; %s each after %s of unmeasured warm-up; load from goroutines of the bench process (own http.Client); baseline GET /healthz under the same load",
		n, len(benchOwners), where, getRate, workers, dur, b.warmup(dur))
	rng := func(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 3)) }

	// GET one opportunity, open loop at the target rate; baseline /healthz at the same rate.
	client := newHTTPClient()
	var mu sync.Mutex
	r := rng(1)
	getOne := func(ctx context.Context, i int) error {
		mu.Lock()
		id := fx.ids[r.IntN(len(fx.ids))]
		mu.Unlock()
		return httpDo(ctx, client, http.MethodGet, base+"/opportunities/"+id, "", nil, http.StatusOK)
	}
	warm := b.warmup(dur)
	openLoop(ctx, getRate, warm, getOne)
	get := openLoop(ctx, getRate, dur, getOne)
	if err := get.check("GET by id"); err != nil {
		return err
	}
	health := func(ctx context.Context, i int) error {
		return httpDo(ctx, client, http.MethodGet, healthURL, "", nil, http.StatusOK)
	}
	openLoop(ctx, getRate, warm, health)
	getBase := openLoop(ctx, getRate, dur, health)
	if err := getBase.check("GET /healthz"); err != nil {
		return err
	}
	client.CloseIdleConnections()
	b.report("queries.get.p99", get.pct(0.99), "ms", getBase.pct(0.99))
	b.report("queries.get.rps", get.rps(), "req/s", getBase.rps())

	// Closed loop: baseline /healthz, then a filtered list page, a quarter's forecast by owner
	// and a quarter's win/loss.
	closed := func(url func(r *rand.Rand) string) *loadResult {
		clients := make([]*http.Client, workers)
		rs := make([]*rand.Rand, workers)
		for w := range clients {
			clients[w], rs[w] = newHTTPClient(), rng(uint64(100+w))
		}
		defer func() {
			for _, c := range clients {
				c.CloseIdleConnections()
			}
		}()
		do := func(ctx context.Context, w, i int) error {
			return httpDo(ctx, clients[w], http.MethodGet, url(rs[w]), "", nil, http.StatusOK)
		}
		closedLoop(ctx, workers, warm, do)
		return closedLoop(ctx, workers, dur, do)
	}
	healthz := closed(func(*rand.Rand) string { return healthURL })
	if err := healthz.check("closed-loop /healthz"); err != nil {
		return err
	}
	cases := []struct {
		name string
		url  func(r *rand.Rand) string
	}{
		{"list", func(r *rand.Rand) string {
			return base + "/opportunities?status=open&limit=50&ownerId=" + benchOwners[r.IntN(len(benchOwners))]
		}},
		{"forecast", func(*rand.Rand) string {
			return base + "/forecast?groupBy=owner&from=" + fx.fcFrom.String() + "&to=" + fx.fcTo.String()
		}},
		{"winloss", func(*rand.Rand) string {
			return base + "/analytics/win-loss?from=" + fx.wlFrom.String() + "&to=" + fx.wlTo.String()
		}},
	}
	for _, c := range cases {
		res := closed(c.url)
		if err := res.check(c.name); err != nil {
			return err
		}
		b.report("queries."+c.name+".p99", res.pct(0.99), "ms", healthz.pct(0.99))
		b.report("queries."+c.name+".rps", res.rps(), "req/s", healthz.rps())
	}
	if err := checkForecastShape(ctx, base, fx); err != nil {
		return err
	}
	return nil
}

// checkForecastShape makes sure the measured forecast is the one the issue asks for: a
// quarter grouped by owner, with deals of (nearly) all 200 owners.
func checkForecastShape(ctx context.Context, base string, fx *fixture) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/forecast?groupBy=owner&from="+fx.fcFrom.String()+"&to="+fx.fcTo.String(), nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	// Only the groups are looked at; the wire names are the HTTP answer's (API.md), not
	// analytics.ForecastResult's, whose fields carry no JSON names.
	var res struct {
		Groups []struct {
			Key string `json:"key"`
		} `json:"groups"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return fmt.Errorf("forecast answer: %w", err)
	}
	if len(res.Groups) == 0 {
		return errors.New("forecast of the quarter has no owner group: the fixture misses the quarter")
	}
	return nil
}

// --- scenario 4: restore ------------------------------------------------------------------

func (b *bench) bigFixture(ctx context.Context) (*fixtureEnv, error) {
	if b.big != nil {
		return b.big, nil
	}
	n := b.size("restore", 1_000_000, 2000)
	env, err := b.newEnv("big")
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	fx, err := b.buildFixture(ctx, env, n, 5)
	if err != nil {
		env.close(b.keep)
		return nil, err
	}
	b.note("restore: fixture of %d opportunities (%d buckets; %.0f MiB of aggregates, %.0f MiB of buckets) written to the changelogs in %s",
		fx.opps, fx.bucketCount, float64(fx.aggBytes)/(1<<20), float64(fx.bucketBytes)/(1<<20), time.Since(t0).Round(time.Millisecond))
	b.big = &fixtureEnv{env: env, fx: fx}
	return b.big, nil
}

func (b *bench) restore(ctx context.Context, keepForMemory bool) error {
	big, err := b.bigFixture(ctx)
	if err != nil {
		return err
	}
	if !keepForMemory {
		defer func() { big.env.close(b.keep); b.big = nil }()
	}
	env, fx := big.env, big.fx
	hwm, err := env.hwms(topics.OpportunityTable)
	if err != nil {
		return err
	}
	records := sum64(hwm)
	cache := pebble.NewCache(int64(b.cacheMiB) << 20)
	defer cache.Unref()
	opts := state.Options{Cache: cache, Logger: b.log, Validate: func(topic string, partition int32) (state.Expect, error) {
		f, err := topics.Facts(env.client, topic, partition)
		if err != nil {
			return state.Expect{}, err
		}
		return state.Expect{TopicID: f.TopicID, HighWaterMark: f.HighWaterMark}, nil
	}}
	dir := filepath.Join(env.dir, "restore-pebble")
	pebbleDur, err := b.timeViewRestore(ctx, env, state.NewBuilder(dir, opts), "pebble")
	if err != nil {
		return fmt.Errorf("pebble: %w", err)
	}
	pebbleDisk := dirSize(dir)
	if !b.keep {
		_ = os.RemoveAll(dir)
	}
	// The same with --memtable-mib 32: fewer, larger flushes and far less L0 compaction while
	// loading, for up to 32 MiB more memory per busy partition.
	bigOpts := opts
	bigOpts.MemTableSize = 32 << 20
	dir32 := filepath.Join(env.dir, "restore-pebble-memtable32")
	bigDur, err := b.timeViewRestore(ctx, env, state.NewBuilder(dir32, bigOpts), "pebble-memtable32")
	if err != nil {
		return fmt.Errorf("pebble with 32 MiB memtables: %w", err)
	}
	if !b.keep {
		_ = os.RemoveAll(dir32)
	}
	ldir := filepath.Join(env.dir, "restore-leveldb")
	levelDur, err := b.timeViewRestore(ctx, env, storage.DefaultBuilder(ldir), "leveldb")
	if err != nil {
		return fmt.Errorf("leveldb: %w", err)
	}
	levelDisk := dirSize(ldir)
	if !b.keep {
		_ = os.RemoveAll(ldir)
	}
	b.note("restore: %d records (%d opportunities) into a goka view of %s: pebble (state.NewBuilder) %s, %.0f MiB on disk; goka's default LevelDB %s, %.0f MiB",
		records, fx.opps, topics.OpportunityTable, pebbleDur.Round(time.Millisecond), float64(pebbleDisk)/(1<<20), levelDur.Round(time.Millisecond), float64(levelDisk)/(1<<20))
	b.report("restore", float64(records)/pebbleDur.Seconds(), "records/s", float64(records)/levelDur.Seconds())
	b.report("restore.ready", pebbleDur.Seconds(), "s", levelDur.Seconds())
	b.note("restore: with --memtable-mib 32 %s", bigDur.Round(time.Millisecond))
	b.report("restore.memtable32", float64(records)/bigDur.Seconds(), "records/s", float64(records)/levelDur.Seconds())
	return nil
}

// timeViewRestore times a goka view of the opportunity table, with the service's view
// options and the given storage, from creation until it has recovered every partition.
func (b *bench) timeViewRestore(ctx context.Context, env *benchEnv, builder storage.Builder, name string) (time.Duration, error) {
	client := topics.ClientOptions{Brokers: env.brokers}
	runtime.GC()
	start := time.Now()
	v, err := goka.NewView(env.brokers, goka.Table(topics.OpportunityTable), codecs.AggregateCodec{},
		goka.WithViewHasher(topics.Hasher()),
		goka.WithViewStorageBuilder(builder),
		goka.WithViewConsumerSaramaBuilder(topics.ConsumerBuilder(client)),
		goka.WithViewTopicManagerBuilder(topics.TopicManagerBuilder(client, 1)),
		goka.WithViewLogger(topics.GokaLogger(b.log, "bench-view-"+name)),
		goka.WithViewClientID("crm-bench-view-"+name),
	)
	if err != nil {
		return 0, err
	}
	vctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go pprof.Do(vctx, pprof.Labels("bench", "restore-"+name), func(ctx context.Context) { done <- v.Run(ctx) })
	deadline := time.After(20 * time.Minute)
	for !v.Recovered() {
		select {
		case err := <-done:
			cancel()
			return 0, fmt.Errorf("view stopped before recovering: %v", err)
		case <-deadline:
			cancel()
			<-done
			return 0, errors.New("view did not recover within 20 minutes")
		case <-time.After(5 * time.Millisecond):
		}
	}
	d := time.Since(start)
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		return 0, fmt.Errorf("view run: %w", err)
	}
	return d, nil
}

// --- scenario 5: memory and disk ----------------------------------------------------------

func (b *bench) memory(ctx context.Context) error {
	big, err := b.bigFixture(ctx)
	if err != nil {
		return err
	}
	defer func() { big.env.close(b.keep); b.big = nil }()
	env, fx := big.env, big.fx
	data := filepath.Join(env.dir, "service")
	_ = os.RemoveAll(data)
	var m memoryFigures
	if b.memoryInProcess {
		m, err = b.memoryHere(ctx, env, fx, data)
	} else {
		m, err = b.memoryChild(ctx, env, fx, data)
	}
	if err != nil {
		return err
	}
	disk := dirSize(filepath.Join(data, "state"))
	views := dirSize(filepath.Join(data, "state", "views"))
	logical := fx.aggBytes + fx.bucketBytes
	b.note("memory: %s on %d opportunities with local state deleted: views ready after %s, a command through every partition after %s",
		m.what, fx.opps, m.ready.Round(time.Millisecond), m.processed.Round(time.Millisecond))
	b.note("memory: RSS %.0f MiB once ready (%s %.0f MiB)%s; local state %.0f MiB on disk (views %.0f MiB, processors %.0f MiB); baseline = logical state (aggregates + buckets, keys + values) %.0f MiB",
		mib(m.rss), m.peakWhat, mib(m.peak), m.extra, mib(disk), mib(views), mib(disk-views), mib(logical))
	b.report("memory.rss", mib(m.rss), "MiB", mib(logical))
	b.report("memory.disk", mib(disk), "MiB", mib(logical))
	return nil
}

type memoryFigures struct {
	what, peakWhat   string
	ready, processed time.Duration
	rss, peak        int64
	extra            string
}

// memoryChild runs `crm-pipeline serve --brokers <the fixture's broker>` as its own process
// (this executable) and reads its VmRSS: the service alone, as deployed with a broker.
func (b *bench) memoryChild(ctx context.Context, env *benchEnv, fx *fixture, data string) (memoryFigures, error) {
	m := memoryFigures{what: "crm-pipeline serve (child process)", peakWhat: "peak while restoring"}
	if len(b.serveEnv) > 0 {
		m.what += " with " + strings.Join(b.serveEnv, " ")
	}
	t0 := time.Now()
	c, err := b.startChild(ctx, env, data)
	if err != nil {
		return m, err
	}
	defer c.stop()
	m.ready = time.Since(t0)
	if err := c.warm(ctx, fx, "memory"); err != nil {
		return m, err
	}
	m.processed = time.Since(t0)
	time.Sleep(2 * time.Second)
	m.rss, m.peak = procMemory(c.cmd.Process.Pid)
	if m.rss == 0 {
		return m, c.fail(errors.New("no VmRSS for the serve process (is /proc mounted?)"))
	}
	client := newHTTPClient()
	defer client.CloseIdleConnections()
	if g := goMemory(ctx, client, c.addr+"/metrics"); g != "" {
		m.extra = " (" + g + ")"
	}
	return m, nil
}

// childServe is `crm-pipeline serve --brokers <the scenario's broker>` run as a child process:
// what the memory scenario measures, and what the queries scenario loads from this process.
type childServe struct {
	cmd    *exec.Cmd
	exited chan error
	addr   string // http://host:port
	log    string
}

// startChild starts serve on an empty data directory and waits until it answers /readyz and
// reads the default pipeline.
func (b *bench) startChild(ctx context.Context, env *benchEnv, data string) (*childServe, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(env.dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(exe, "serve", "--brokers", strings.Join(env.brokers, ","), "--data", data, "--http", addr,
		"--partitions", strconv.Itoa(benchPartitions), "--cache-mib", strconv.Itoa(b.cacheMiB), "--instance-id", "none")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), b.serveEnv...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start serve: %w", err)
	}
	c := &childServe{cmd: cmd, exited: make(chan error, 1), addr: "http://" + addr, log: logf.Name()}
	go func() { c.exited <- cmd.Wait() }()
	client := newHTTPClient()
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Minute)
	for httpDo(ctx, client, http.MethodGet, c.addr+"/readyz", "", nil, http.StatusOK) != nil ||
		httpDo(ctx, client, http.MethodGet, c.addr+"/api/v1/pipelines/default", "", nil, http.StatusOK) != nil {
		var err error
		select {
		case e := <-c.exited:
			c.exited <- e
			err = fmt.Errorf("serve exited: %v", e)
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				err = errors.New("serve not ready within 20 minutes")
			}
		}
		if err != nil {
			c.stop()
			return nil, c.fail(err)
		}
	}
	return c, nil
}

// warm applies one update per partition (PATCH, answered once applied), so the processor has
// restored its table and joined its group before anything is measured.
func (c *childServe) warm(ctx context.Context, fx *fixture, tag string) error {
	client := newHTTPClient()
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Minute)
	for p, ids := range fx.open {
		for {
			err := httpDo(ctx, client, http.MethodPatch, c.addr+"/api/v1/opportunities/"+ids[0], `{"nextStep":"warm-up"}`,
				map[string]string{"Prefer": "wait=30", "Idempotency-Key": fmt.Sprintf("%s-warm-%d", tag, p)}, http.StatusOK)
			if err == nil {
				break
			}
			if !errors.Is(err, errTimeout) || time.Now().After(deadline) {
				return c.fail(fmt.Errorf("warm-up update on partition %d: %w", p, err))
			}
		}
	}
	return nil
}

func (c *childServe) fail(err error) error { return fmt.Errorf("%w (serve log: %s)", err, c.log) }

// stop ends serve cleanly (SIGTERM), or kills it after a minute.
func (c *childServe) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(60 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// goMemory reads the Go runtime's view of the service's memory from its /metrics.
func goMemory(ctx context.Context, c *http.Client, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ""
	}
	resp, err := c.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	want := map[string]string{
		"go_memstats_heap_inuse_bytes": "Go heap in use", "go_memstats_heap_idle_bytes": "heap idle",
		"go_memstats_heap_released_bytes": "released to the OS", "go_memstats_sys_bytes": "Go sys",
	}
	got := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && want[f[0]] != "" {
			got[f[0]], _ = strconv.ParseFloat(f[1], 64)
		}
	}
	var parts []string
	for _, k := range []string{"go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_sys_bytes"} {
		if v, ok := got[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0f MiB", want[k], v/(1<<20)))
		}
	}
	return strings.Join(parts, ", ")
}

// memoryHere runs serve in this process (for tests, where this executable is not
// crm-pipeline): its RSS includes the embedded broker and the bench harness.
func (b *bench) memoryHere(ctx context.Context, env *benchEnv, fx *fixture, data string) (memoryFigures, error) {
	m := memoryFigures{what: "serve in the bench process (RSS includes the broker and harness)", peakWhat: "process lifetime peak"}
	runtime.GC()
	debug.FreeOSMemory()
	before, _ := procMemory(os.Getpid())
	t0 := time.Now()
	svc, err := b.startService(ctx, env, data)
	if err != nil {
		return m, err
	}
	defer svc.stop()
	if err := svc.waitReady(ctx, 20*time.Minute); err != nil {
		return m, err
	}
	m.ready = time.Since(t0)
	if err := warmUp(ctx, env, svc, fx); err != nil {
		return m, err
	}
	m.processed = time.Since(t0)
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(time.Second)
	m.rss, m.peak = procMemory(os.Getpid())
	if b.profile != "" {
		if f, err := os.Create(filepath.Join(b.profile, "memory-heap.pprof")); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.extra = fmt.Sprintf(" (%.0f MiB before serve started; Go heap in use %.0f MiB)", mib(before), mib(int64(ms.HeapInuse)))
	return m, svc.stop()
}

// loadAvg is the 1, 5 and 15 minute load averages (Linux), "?" elsewhere.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// procMemory is VmRSS and VmHWM (peak RSS) of process pid (Linux), zeros where /proc is
// missing.
func procMemory(pid int) (rss, peak int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	kib := func(rest string) int64 {
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		kb, _ := strconv.ParseInt(fields[0], 10, 64)
		return kb << 10
	}
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			rss = kib(rest)
		} else if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			peak = kib(rest)
		}
	}
	return rss, peak
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
