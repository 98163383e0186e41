package systemtest

// Broker fault tests: the real service in-process against a kfake broker the test starts and
// owns, so that it can make the broker fail produce, fetch and group-coordination requests
// (kfake's Fault API) or close and restart it on the same data directory and port, all while
// commands flow over HTTP (Prefer: wait, Idempotency-Key) and from a plain Kafka producer.
// Afterwards the crash test's oracle must hold exactly: every opportunity equals a replay of the
// commands topic through the pure domain, the events topic holds versions 1..n of each, the
// aggregates equal the naive recomputation, and no acknowledged command is missing from the log.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/analytics/analyticstest"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/query"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// faultPartitions is the partition count startService gives the keyed topics.
const faultPartitions = 4

// faultRig is one service under test and the broker it talks to, which the test owns.
type faultRig struct {
	t    *testing.T
	dir  string // the broker's data directory, kept across restarts
	addr string // the broker's listen address, kept across restarts
	log  *slog.Logger
	s    *testkit.Service

	mu sync.Mutex
	b  *topics.Broker // nil while the broker is down
}

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	if testing.Short() {
		t.Skip("broker fault tests skipped in -short mode")
	}
	logw := testkit.NewLogWriter(t)
	t.Cleanup(logw.Close) // registered first: runs after the broker and the service stopped
	r := &faultRig{t: t, dir: t.TempDir(),
		log: slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	r.startBroker("127.0.0.1:0")
	r.addr = r.broker().Addr()
	t.Cleanup(func() { // after the service (startService registers its stop later)
		r.mu.Lock()
		b := r.b
		r.b = nil
		r.mu.Unlock()
		if b != nil {
			b.Close()
		}
	})
	r.s = testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir(), Brokers: []string{r.addr}})
	for cur, rate := range crashRates {
		r.s.MustStatus(r.s.Do("PUT", "/fx-rates/"+cur, map[string]any{"rate": rate}, nil), 200)
	}
	return r
}

func (r *faultRig) startBroker(listen string) {
	r.t.Helper()
	var (
		b   *topics.Broker
		err error
	)
	// The port of a broker just closed may take a moment to be free again.
	for attempt := 0; attempt < 50; attempt++ {
		b, err = topics.StartBroker(topics.BrokerOptions{DataDir: r.dir, Listen: listen, Logger: r.log.With("side", "broker")})
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("start broker on %s: %v", listen, err)
	}
	r.mu.Lock()
	r.b = b
	r.mu.Unlock()
}

func (r *faultRig) broker() *topics.Broker {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b
}

func (r *faultRig) cluster() *kfake.Cluster { return r.broker().Cluster() }

// stopBroker closes the broker (it flushes its log to the data directory).
func (r *faultRig) stopBroker() {
	r.mu.Lock()
	b := r.b
	r.b = nil
	r.mu.Unlock()
	b.Close()
}

// ready asks /readyz; 0 when the request failed.
func (r *faultRig) ready() int {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + r.s.Run.HTTPAddr + "/readyz")
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func (r *faultRig) metricSum(name string) float64 {
	sum, _, err := testkit.MetricSum(r.s.Run.HTTPAddr, name)
	if err != nil {
		r.t.Fatalf("read metrics: %v", err)
	}
	return sum
}

// caughtUp reports whether both processors have committed everything on their inputs: every
// partition's lag series is present (a failed lag scrape leaves series out) and zero.
func (r *faultRig) caughtUp() bool {
	m, err := testkit.Metrics(r.s.Run.HTTPAddr, "crm_consumer_lag_records")
	if err != nil || len(m) != 2*faultPartitions {
		return false
	}
	for _, v := range m {
		if v != 0 {
			return false
		}
	}
	return true
}

// faultReadyWatch samples /readyz in the background.
type faultReadyWatch struct {
	stop     chan struct{}
	done     chan struct{}
	ok, not  atomic.Int64 // 200 and 503 answers
	failures atomic.Int64 // anything else, or no answer
}

func (r *faultRig) watchReady() *faultReadyWatch {
	w := &faultReadyWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			switch r.ready() {
			case 200:
				w.ok.Add(1)
			case 503:
				w.not.Add(1)
			default:
				w.failures.Add(1)
			}
			select {
			case <-w.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *faultReadyWatch) halt() string {
	close(w.stop)
	<-w.done
	return fmt.Sprintf("/readyz sampled %d×200, %d×503, %d×other", w.ok.Load(), w.not.Load(), w.failures.Load())
}

// faultLoad sends the crash test's random commands, half over HTTP (Prefer: wait,
// Idempotency-Key = command id) and half from a plain Kafka producer, each retried with the
// same command id until the service or the broker has it.
type faultLoad struct {
	t        *testing.T
	base     string
	broker   string
	opps     int
	seed     uint64
	patience time.Duration // per command
	pace     time.Duration // pause of each sender between two commands
	client   *http.Client
	quit     chan struct{} // closed when the test ends
	quitOnce sync.Once

	httpSent, kafkaSent, retries atomic.Int64
	mu                           sync.Mutex
	statuses                     map[int]int    // final HTTP answers
	retryCauses                  map[string]int // why sends were retried
	acked                        map[string]bool
}

func (r *faultRig) newLoad(opps int, seed uint64) *faultLoad {
	return &faultLoad{t: r.t, base: r.s.Base, broker: r.addr, opps: opps, seed: seed, patience: 45 * time.Second,
		client: &http.Client{Timeout: 20 * time.Second}, quit: make(chan struct{}),
		statuses: map[int]int{}, retryCauses: map[string]int{}, acked: map[string]bool{}}
}

// start sends commands from..to-1 in the background; the result arrives on the channel. A
// test that ends early stops the senders before the service stops.
func (l *faultLoad) start(from, to, workers int) <-chan error {
	done := make(chan error, 1)
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		done <- l.run(from, to, workers)
	}()
	l.t.Cleanup(func() {
		l.quitOnce.Do(func() { close(l.quit) })
		<-finished
	})
	return done
}

// wait waits for a background run.
func (l *faultLoad) wait(done <-chan error, timeout time.Duration) {
	l.t.Helper()
	select {
	case err := <-done:
		if err != nil {
			l.t.Fatal(err)
		}
	case <-time.After(timeout):
		l.t.Fatalf("commands not all sent within %v", timeout)
	}
}

// errFaultQuit is what the senders return once the test has ended.
var errFaultQuit = errors.New("test ended")

// errFaultFatal marks an answer no retry can fix.
var errFaultFatal = errors.New("unexpected answer")

// run sends commands from..to-1 with workers concurrent senders.
func (l *faultLoad) run(from, to, workers int) error {
	var (
		next  atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	next.Store(int64(from))
	began := time.Now()
	stop := make(chan struct{})
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var producer sarama.SyncProducer
			defer func() {
				if producer != nil {
					producer.Close()
				}
			}()
			for {
				select {
				case <-stop:
					return
				case <-l.quit:
					return
				case <-time.After(l.pace):
				}
				i := int(next.Add(1) - 1)
				if i >= to {
					return
				}
				if err := l.send(i, &producer); err != nil {
					once.Do(func() { first = err; close(stop) })
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-l.quit:
		return errFaultQuit // the test has ended: no more logging
	default:
	}
	l.t.Logf("commands %d..%d sent in %v", from, to-1, time.Since(began).Round(time.Millisecond))
	return first
}

func (l *faultLoad) send(i int, producer *sarama.SyncProducer) error {
	rng := rand.New(rand.NewPCG(l.seed, uint64(i)))
	id := fmt.Sprintf("opp-%03d", rng.IntN(l.opps))
	method, path, body, cmd := randomCommand(rng, id, i)
	viaHTTP := rng.IntN(2) == 0
	deadline := time.Now().Add(l.patience)
	for attempt := 0; ; attempt++ {
		var err error
		if viaHTTP {
			err = l.sendHTTP(method, path, body, cmd)
		} else {
			err = l.sendKafka(cmd, producer)
		}
		if err == nil {
			if viaHTTP {
				l.httpSent.Add(1)
			} else {
				l.kafkaSent.Add(1)
			}
			return nil
		}
		if errors.Is(err, errFaultFatal) {
			return fmt.Errorf("command %d: %w", i, err)
		}
		l.retries.Add(1)
		l.mu.Lock()
		l.retryCauses[faultRetryCause(viaHTTP, err)]++
		l.mu.Unlock()
		if time.Now().After(deadline) {
			return fmt.Errorf("command %d (%s %s) not accepted within %v, %d attempts: %v", i, method, path, l.patience, attempt+1, err)
		}
		select {
		case <-l.quit:
			return errFaultQuit
		case <-time.After(min(50*time.Millisecond<<min(attempt, 5), time.Second)):
		}
	}
}

func faultRetryCause(viaHTTP bool, err error) string {
	if !viaHTTP {
		var perr sarama.ProducerErrors
		if errors.As(err, &perr) && len(perr) > 0 {
			err = perr[0].Err
		}
		return "kafka: " + err.Error()
	}
	msg := err.Error()
	if i := strings.Index(msg, ": "); i > 0 && strings.HasPrefix(msg, "status") {
		msg = msg[:i]
	} else if strings.Contains(msg, "connection refused") || strings.Contains(msg, "EOF") || strings.Contains(msg, "Timeout") {
		msg = "transport error"
	}
	return "http: " + msg
}

func (l *faultLoad) sendHTTP(method, path string, body map[string]any, cmd domain.Command) error {
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, l.base+path, bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", cmd.CommandID)
	req.Header.Set("Prefer", "wait=5")
	resp, err := l.client.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	switch resp.StatusCode {
	case 200, 201, 202, 404, 409, 422:
		l.mu.Lock()
		l.statuses[resp.StatusCode]++
		// Location is set once the broker acknowledged the command record; a 422 without it
		// is a stateless validation failure that never reached the log.
		if resp.Header.Get("Location") != "" {
			l.acked[cmd.CommandID] = true
		}
		l.mu.Unlock()
		return nil
	case 500, 502, 503, 504:
		return fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(b))
	default:
		return fmt.Errorf("%w: %s %s: status %d: %s", errFaultFatal, method, path, resp.StatusCode, b)
	}
}

func (l *faultLoad) sendKafka(cmd domain.Command, producer *sarama.SyncProducer) error {
	if *producer == nil {
		p, err := topics.NewSyncProducer(topics.ClientOptions{Brokers: []string{l.broker}, ClientID: "fault-test-producer"})
		if err != nil {
			return err
		}
		*producer = p
	}
	b, err := codecs.EncodeCommand(cmd)
	if err != nil {
		return fmt.Errorf("%w: encode: %v", errFaultFatal, err)
	}
	_, _, err = (*producer).SendMessage(&sarama.ProducerMessage{Topic: topics.Commands,
		Key: sarama.StringEncoder(cmd.OpportunityID), Value: sarama.ByteEncoder(b)})
	if err != nil {
		(*producer).Close()
		*producer = nil
		return err
	}
	l.mu.Lock()
	l.acked[cmd.CommandID] = true
	l.mu.Unlock()
	return nil
}

func (l *faultLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	causes := make([]string, 0, len(l.retryCauses))
	for c, n := range l.retryCauses {
		causes = append(causes, fmt.Sprintf("%d× %s", n, c))
	}
	sort.Strings(causes)
	return fmt.Sprintf("%d commands (%d HTTP, %d Kafka; %d acknowledged by the broker, all on the log), HTTP answers %v, %d retried sends [%s]",
		l.httpSent.Load()+l.kafkaSent.Load(), l.httpSent.Load(), l.kafkaSent.Load(), len(l.acked), l.statuses,
		l.retries.Load(), strings.Join(causes, "; "))
}

// verify waits until the service has caught up with everything sent and compares it with the
// oracle, strictly; it returns the number of opportunities and of mismatches.
func (r *faultRig) verify(l *faultLoad) (opps, mismatches int) {
	t := r.t
	t.Helper()
	began := time.Now()
	defer func() { t.Logf("verified in %v", time.Since(began).Round(time.Millisecond)) }()
	testkit.WaitFor(t, "both processors caught up (lag 0 on every partition)", 45*time.Second, r.caughtUp)
	time.Sleep(time.Second)
	testkit.WaitFor(t, "both processors caught up (again)", 30*time.Second, r.caughtUp)
	testkit.WaitFor(t, "/readyz 200", 30*time.Second, func() bool { return r.ready() == 200 })

	// Loses nothing: every command the broker acknowledged is on the commands topic.
	onLog := map[string]bool{}
	for _, m := range testkit.ReadAll(t, r.addr, topics.Commands) {
		if cmd, err := codecs.DecodeCommand(m.Value); err == nil {
			onLog[cmd.CommandID] = true
		}
	}
	l.mu.Lock()
	for id := range l.acked {
		if !onLog[id] {
			t.Errorf("command %s was acknowledged but is not on %s", id, topics.Commands)
			mismatches++
		}
	}
	l.mu.Unlock()

	oracle, aggOracle := replayCommandLog(t, r.addr)
	// The views may trail the committed offsets by a moment: wait (quietly) for every
	// opportunity's version, then compare strictly once.
	_ = faultPoll(30*time.Second, func() bool {
		for id, want := range oracle {
			resp := r.s.Do("GET", "/opportunities/"+id, nil, nil)
			switch {
			case want.Version == 0 && resp.Status != 404:
				return false
			case want.Version == 0:
			case resp.Status != 200:
				return false
			default:
				var got struct{ Version int64 }
				if json.Unmarshal(resp.Body, &got) != nil || got.Version != want.Version {
					return false
				}
			}
		}
		return true
	})
	events := testkit.AllEvents(t, r.addr)
	mismatches += compareStates(t, r.s, oracle, events)
	for id := range events {
		if _, ok := oracle[id]; !ok {
			t.Errorf("%s has events but no command in the log", id)
			mismatches++
		}
	}
	// The analytics view may trail the aggregator's commits too: wait for one figure, then
	// compare every figure strictly.
	_ = faultPoll(30*time.Second, func() bool { return r.forecastMatches(aggOracle) })
	mismatches += compareAnalytics(t, r.s, aggOracle)
	return len(oracle), mismatches
}

// forecastMatches compares one analytics answer with the oracle without failing the test.
func (r *faultRig) forecastMatches(o *analyticstest.Oracle) bool {
	from, _ := domain.ParseDate("2026-01-01")
	to, _ := domain.ParseDate("2026-12-31")
	want, err := o.Forecast(analytics.ForecastQuery{From: from, To: to, GroupBy: "owner", Currency: "USD"},
		analytics.MapRates("USD", crashRates))
	if err != nil {
		return false
	}
	resp := r.s.Do("GET", "/forecast?from=2026-01-01&to=2026-12-31&groupBy=owner&currency=USD", nil, nil)
	if resp.Status != 200 {
		return false
	}
	wantJSON, _ := query.MarshalAnalytics(want)
	var got, exp any
	_ = json.Unmarshal(resp.Body, &got)
	_ = json.Unmarshal(wantJSON, &exp)
	return reflect.DeepEqual(got, exp)
}

// faultPoll polls cond until it holds or timeout passes, and says which.
func faultPoll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// faultEvery returns a kfake Fault.When that accepts one in n of the entities it is asked about,
// so that a fault is spread over the run rather than spent on its first requests.
func faultEvery(n int64) func(kmsg.Request) bool {
	var seen atomic.Int64
	return func(kmsg.Request) bool { return seen.Add(1)%n == 0 }
}

// checkRestarts fails the test when the supervised processor restarts are not bounded.
func (r *faultRig) checkRestarts(limit float64) float64 {
	n := r.metricSum("crm_processor_restarts_total")
	if n > limit {
		r.t.Errorf("crm_processor_restarts_total = %v, want at most %v", n, limit)
	}
	return n
}

// faultRun is a fault test that injects errors, from its start to its report: the rig, the
// commands it sends and the /readyz samples taken meanwhile.
type faultRun struct {
	*faultRig
	l      *faultLoad
	watch  *faultReadyWatch
	began  time.Time
	faults []faultEntry // installed, in order
}

// faultEntry is one installed fault, for the report.
type faultEntry struct {
	name string
	h    *kfake.FaultHandle
}

// startFaultRun starts a rig and sends the first 40 commands (on 40 opportunities, from seed)
// before any fault is installed, so that the faults meet a service in its stride.
func startFaultRun(t *testing.T, seed uint64) *faultRun {
	t.Helper()
	r := newFaultRig(t)
	f := &faultRun{faultRig: r, l: r.newLoad(40, seed), watch: r.watchReady(), began: time.Now()}
	f.send(0, 40)
	return f
}

// send sends commands from..to-1 with four senders.
func (f *faultRun) send(from, to int) {
	f.t.Helper()
	if err := f.l.run(from, to, 4); err != nil {
		f.t.Fatal(err)
	}
}

// install adds a fault to the broker, under a name for the report.
func (f *faultRun) install(name string, fault kfake.Fault) *kfake.FaultHandle {
	h := f.cluster().Fault(fault)
	f.faults = append(f.faults, faultEntry{name: name, h: h})
	return h
}

// removeFaults removes every fault installed; what they did stays for the report.
func (f *faultRun) removeFaults() {
	for _, e := range f.faults {
		e.h.Remove()
	}
}

// finish sends the last 40 commands once the faults are removed, fails the test for each fault
// that never fired (but those mayStayUnspent names), verifies the service against the oracle
// and bounds the processor restarts, and logs what the kind of faults did; it returns the
// restarts.
func (f *faultRun) finish(kind string, mayStayUnspent func(name string) bool) float64 {
	t := f.t
	t.Helper()
	f.send(200, 240)
	total, parts := 0, make([]string, 0, len(f.faults))
	for _, e := range f.faults {
		total += e.h.Hits()
		parts = append(parts, fmt.Sprintf("%s=%d", e.name, e.h.Hits()))
		if e.h.Hits() == 0 && (mayStayUnspent == nil || !mayStayUnspent(e.name)) {
			t.Errorf("fault %s never fired", e.name)
		}
	}
	opps, mismatches := f.verify(f.l)
	restarts := f.checkRestarts(10)
	t.Logf("%s faults: %d injected (%s); %s; %d opportunities; %v processor restarts; %s; %d mismatches; %v",
		kind, total, strings.Join(parts, ", "), f.l.summary(), opps, restarts, f.watch.halt(), mismatches, time.Since(f.began).Round(time.Millisecond))
	return restarts
}

// TestFaultProduceErrors makes the broker refuse produce requests with retriable errors
// (NOT_LEADER_FOR_PARTITION and NOT_ENOUGH_REPLICAS before the append, REQUEST_TIMED_OUT after
// it, so the retry is a duplicate the idempotent producer must absorb), spread over a bounded
// number of requests of every producer: the gateway's emitter, the processors' producers and
// the test's own Kafka producer.
func TestFaultProduceErrors(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	f := startFaultRun(t, 1)
	produce := []kmsg.Key{kmsg.Produce}
	// First (it answers first): one burst longer than the producer's retries (sarama's
	// Producer.Retry.Max is 10, and the retries of the first failed batch spend it): an emit of
	// the opportunity processor fails for good, the processor fails and is restarted, and the
	// record is delivered again.
	burst := f.install("NOT_ENOUGH_REPLICAS burst on events/0", kfake.Fault{Keys: produce, Topic: topics.Events, Partitions: []int32{0},
		Err: kerr.NotEnoughReplicas, Count: 12})
	f.install("NOT_LEADER_FOR_PARTITION", kfake.Fault{Keys: produce, Err: kerr.NotLeaderForPartition, Count: 40, When: faultEvery(3)})
	f.install("NOT_ENOUGH_REPLICAS", kfake.Fault{Keys: produce, Err: kerr.NotEnoughReplicas, Count: 25, When: faultEvery(5)})
	f.install("REQUEST_TIMED_OUT(after append)", kfake.Fault{Keys: produce, Err: kerr.RequestTimedOut, Count: 25, When: faultEvery(7)})
	f.send(40, 200)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	if err := burst.Wait(ctx, 12); err != nil {
		t.Errorf("the burst on events/0 fired %d times of 12", burst.Hits())
	}
	cancel()
	f.removeFaults()
	if restarts := f.finish("produce", nil); restarts == 0 {
		t.Errorf("an emit failed beyond the producer's retries, yet no processor was restarted")
	}
}

// TestFaultFetchErrors makes fetch requests fail for a while: NOT_LEADER_FOR_PARTITION (sarama
// re-dispatches the partition), KAFKA_STORAGE_ERROR (reported to the consumer: goka's view
// partitions reconnect) and a top-level UNKNOWN_SERVER_ERROR (the whole fetch answered empty).
func TestFaultFetchErrors(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	f := startFaultRun(t, 2)
	fetch := []kmsg.Key{kmsg.Fetch}
	// sarama re-dispatches a partition at once on NOT_LEADER_FOR_PARTITION: without a budget
	// the fault would spin the consumers.
	f.install("NOT_LEADER_FOR_PARTITION", kfake.Fault{Keys: fetch, Err: kerr.NotLeaderForPartition, Count: 400, When: faultEvery(4)})
	f.install("KAFKA_STORAGE_ERROR", kfake.Fault{Keys: fetch, Err: kerr.KafkaStorageError, Count: 30, When: faultEvery(11)})
	f.install("UNKNOWN_SERVER_ERROR(top level)", kfake.Fault{Keys: fetch, TopLevel: true, Err: kerr.UnknownServerError, Count: 10, When: faultEvery(13)})
	f.send(40, 200)
	f.removeFaults()
	f.finish("fetch", nil)
}

// TestFaultCoordinatorErrors fails the group protocol of both processors' consumer groups
// while commands flow: offset commits fail (NOT_COORDINATOR before, REQUEST_TIMED_OUT after the
// commit), a heartbeat answered NOT_COORDINATOR sends the members to FindCoordinator, which
// answers COORDINATOR_NOT_AVAILABLE, and a heartbeat answered REBALANCE_IN_PROGRESS forces a
// rejoin, which meets failing JoinGroup (COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR), SyncGroup
// (REBALANCE_IN_PROGRESS) and OffsetFetch (COORDINATOR_LOAD_IN_PROGRESS) requests.
func TestFaultCoordinatorErrors(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	f := startFaultRun(t, 3)
	k := func(keys ...kmsg.Key) []kmsg.Key { return keys }
	for _, g := range []string{topics.OpportunityGroup, topics.AnalyticsGroup} {
		short := strings.TrimPrefix(g, "crm-pipeline-")
		// Per request key the fault added first answers first.
		f.install(short+" OffsetCommit NOT_COORDINATOR", kfake.Fault{Keys: k(kmsg.OffsetCommit), Group: g, Err: kerr.NotCoordinator, Count: 3, When: faultEvery(2)})
		f.install(short+" OffsetCommit REQUEST_TIMED_OUT", kfake.Fault{Keys: k(kmsg.OffsetCommit), Group: g, Err: kerr.RequestTimedOut, Count: 3, When: faultEvery(3)})
		f.install(short+" Heartbeat NOT_COORDINATOR", kfake.Fault{Keys: k(kmsg.Heartbeat), Group: g, Err: kerr.NotCoordinator, Count: 1})
		f.install(short+" Heartbeat REBALANCE_IN_PROGRESS", kfake.Fault{Keys: k(kmsg.Heartbeat), Group: g, Err: kerr.RebalanceInProgress, Count: 1})
		f.install(short+" FindCoordinator COORDINATOR_NOT_AVAILABLE", kfake.Fault{Keys: k(kmsg.FindCoordinator), Group: g, Err: kerr.CoordinatorNotAvailable, Count: 2})
		f.install(short+" JoinGroup COORDINATOR_NOT_AVAILABLE", kfake.Fault{Keys: k(kmsg.JoinGroup), Group: g, Err: kerr.CoordinatorNotAvailable, Count: 1})
		f.install(short+" JoinGroup NOT_COORDINATOR", kfake.Fault{Keys: k(kmsg.JoinGroup), Group: g, Err: kerr.NotCoordinator, Count: 1})
		f.install(short+" SyncGroup REBALANCE_IN_PROGRESS", kfake.Fault{Keys: k(kmsg.SyncGroup), Group: g, Err: kerr.RebalanceInProgress, Count: 1})
		f.install(short+" OffsetFetch COORDINATOR_LOAD_IN_PROGRESS", kfake.Fault{Keys: k(kmsg.OffsetFetch), Group: g, Err: kerr.CoordinatorLoadInProgress, Count: 1})
	}
	// Commands keep flowing, paced, while the groups go through the faults: the rejoin the
	// heartbeat fault forces takes a while (goka waits 5 s before it consumes again).
	f.l.pace = 80 * time.Millisecond
	load := f.l.start(40, 200, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	for _, e := range f.faults {
		if strings.Contains(e.name, "JoinGroup") || strings.Contains(e.name, "SyncGroup") {
			_ = e.h.Wait(ctx, 1) // checked below
		}
	}
	cancel()
	f.removeFaults()
	f.l.wait(load, 60*time.Second)
	f.l.pace = 0
	// FindCoordinator and OffsetFetch are also asked by the lag collector, and an OffsetFetch
	// may come after the faults are gone: those may stay unspent.
	f.finish("coordinator", func(name string) bool {
		return strings.Contains(name, "FindCoordinator") || strings.Contains(name, "OffsetFetch")
	})
}

// TestFaultBrokerRestart closes the broker while commands flow and starts a new one on the
// same data directory and port a few seconds later. While it is down /readyz must answer 503;
// once it is back the service must come back by itself and converge on the oracle.
func TestFaultBrokerRestart(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	r := newFaultRig(t)
	l := r.newLoad(40, 4)
	l.patience = 50 * time.Second
	began := time.Now()
	const total = 240
	load := l.start(0, total, 3)
	testkit.WaitFor(t, "a first third of the commands", 40*time.Second, func() bool {
		return l.httpSent.Load()+l.kafkaSent.Load() >= total/3
	})
	r.stopBroker()
	down := time.Now()
	t.Logf("broker closed after %d commands", l.httpSent.Load()+l.kafkaSent.Load())
	toNotReady := testkit.WaitFor(t, "/readyz 503 while the broker is down", 20*time.Second, func() bool { return r.ready() == 503 })
	// Stay down a while; /readyz must keep telling the truth.
	const outage = 8 * time.Second
	lies := 0
	for time.Since(down) < toNotReady+outage {
		if code := r.ready(); code != 503 {
			lies++
			t.Errorf("/readyz answered %d while the broker was down", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.startBroker(r.addr)
	up := time.Now()
	toReady := testkit.WaitFor(t, "/readyz 200 after the broker came back", 45*time.Second, func() bool { return r.ready() == 200 })
	t.Logf("broker down %v; /readyz 503 after %v, 200 again %v after the restart", up.Sub(down).Round(time.Millisecond),
		toNotReady.Round(time.Millisecond), toReady.Round(time.Millisecond))
	l.wait(load, 90*time.Second)
	opps, mismatches := r.verify(l)
	restarts := r.checkRestarts(20)
	t.Logf("broker restart: 1 restart (%v down), %d /readyz lies; %s; %d opportunities; %v processor restarts; %d mismatches; %v",
		up.Sub(down).Round(time.Millisecond), lies, l.summary(), opps, restarts, mismatches, time.Since(began).Round(time.Millisecond))
}
