package systemtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/analytics/analyticstest"
	"github.com/crm-pipeline/crm-pipeline/app"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"github.com/crm-pipeline/crm-pipeline/query"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// TestScaleOutTwoInstances runs two serve processes in one consumer group on a shared broker
// process. One is stopped cleanly (SIGTERM) mid-load; being a static member it keeps its
// partitions until the session timeout, then they move to the other instance; it is started
// again while commands keep arriving and takes its share back. At the end every instance
// answers exactly what the replayed command log says.
func TestScaleOutTwoInstances(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	runScaleOut(t, 2, 4, 40, []scaleStep{
		sendCommands(130, 0),
		stopInstance(1, syscall.SIGTERM),
		sendCommands(130, 0), // instance 1's partitions wait for the session timeout
		awaitMembers(0),      // ... then move to instance 0
		restartInstance(1),
		sendCommands(80, 20*time.Millisecond), // while instance 1 starts and rejoins
		awaitMembers(0, 1),
		sendCommands(60, 0),
	})
}

// TestScaleOutThreeInstances runs three serve processes. Instance 1 is stopped cleanly and
// started again at once (static membership: it takes its partitions back); instance 0 is
// SIGKILLed mid-flight, its partitions move to the survivors after the session timeout (which
// rebuild them from the changelog and see the uncommitted records again), and it is started
// again later.
func TestScaleOutThreeInstances(t *testing.T) {
	t.Parallel() // long and mostly waiting: runs beside the other long tests
	runScaleOut(t, 3, 6, 40, []scaleStep{
		sendCommands(80, 0),
		stopInstance(1, syscall.SIGTERM),
		sendCommands(40, 0),
		restartInstance(1), // before the session timeout: no rebalance needed
		sendCommands(40, 20*time.Millisecond),
		awaitMembers(0, 1, 2),
		stopInstance(0, syscall.SIGKILL), // at a random moment while the next commands fly
		sendCommands(80, 0),
		awaitMembers(1, 2),
		restartInstance(0),
		sendCommands(80, 20*time.Millisecond),
		awaitMembers(0, 1, 2),
		sendCommands(80, 0),
	})
}

type scaleAction int

const (
	actSend scaleAction = iota
	actStop
	actRestart
	actAwaitMembers
)

// scaleStep is one step of a scale-out scenario.
type scaleStep struct {
	act     scaleAction
	n       int           // actSend: commands
	pace    time.Duration // actSend: pause between commands
	inst    int           // actStop, actRestart
	sig     syscall.Signal
	members []int // actAwaitMembers: the instances that must share the partitions
}

func sendCommands(n int, pace time.Duration) scaleStep {
	return scaleStep{act: actSend, n: n, pace: pace}
}
func stopInstance(i int, sig syscall.Signal) scaleStep {
	return scaleStep{act: actStop, inst: i, sig: sig}
}
func restartInstance(i int) scaleStep { return scaleStep{act: actRestart, inst: i} }
func awaitMembers(ids ...int) scaleStep {
	return scaleStep{act: actAwaitMembers, members: ids}
}

// scaleInstance is one serve process slot: its data directory and HTTP port survive restarts.
type scaleInstance struct {
	idx  int
	data string
	http string
	args []string

	mu      sync.Mutex
	p       *proc
	ready   bool
	stopped chan error // result of the last SIGTERM (exit status), nil if none pending
	stopDur time.Duration
	procs   []*proc // every process this slot ran, for their logs
}

func (in *scaleInstance) current() (*proc, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.p, in.ready && in.p != nil && !in.p.dead()
}

// start launches the process and marks it ready once its views have recovered and the
// default pipeline is visible; it does not block (no t.Fatal off the test goroutine).
func (in *scaleInstance) start(t *testing.T) chan error {
	t.Helper()
	p := execCommand(t, in.args...)
	in.mu.Lock()
	in.p, in.ready = p, false
	in.procs = append(in.procs, p)
	in.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		err := awaitProcReady(p)
		in.mu.Lock()
		in.ready = err == nil
		in.mu.Unlock()
		done <- err
	}()
	return done
}

// awaitProcReady waits for the process's "up" line, /readyz and the default pipeline.
func awaitProcReady(p *proc) error {
	select {
	case m := <-p.up:
		p.http, p.broker = m[1], m[2]
	case err := <-p.exited:
		p.exited <- err
		return fmt.Errorf("exited before coming up: %v\n%s", err, p.logs.String())
	case <-time.After(60 * time.Second):
		return fmt.Errorf("did not come up within 60s\n%s", p.logs.String())
	}
	client := &http.Client{Timeout: 5 * time.Second}
	ok := func(path string) bool {
		resp, err := client.Get("http://" + p.http + path)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if p.dead() {
			return fmt.Errorf("exited while recovering\n%s", p.logs.String())
		}
		if ok("/readyz") && ok("/api/v1/pipelines/default") {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready within 60s\n%s", p.logs.String())
}

// groupAssignment is one consumer group as the broker describes it: member instance index
// (-1 for a member that is none of ours) to the partitions of the group's input topic.
type groupAssignment struct {
	state   string
	members map[int][]int32
	unknown []string
}

func (g groupAssignment) String() string {
	var ids []int
	for i := range g.members {
		ids = append(ids, i)
	}
	sort.Ints(ids)
	var parts []string
	for _, i := range ids {
		parts = append(parts, fmt.Sprintf("inst%d=%v", i, g.members[i]))
	}
	for _, u := range g.unknown {
		parts = append(parts, "unknown:"+u)
	}
	return g.state + " " + strings.Join(parts, " ")
}

// splitOK reports whether exactly the instances want are members, each owns at least one
// partition, and together they own every partition of the input topic once.
func (g groupAssignment) splitOK(want []int, partitions int) bool {
	if g.state != "Stable" || len(g.unknown) > 0 || len(g.members) != len(want) {
		return false
	}
	seen := map[int32]int{}
	for _, i := range want {
		ps, ok := g.members[i]
		if !ok || len(ps) == 0 {
			return false
		}
		for _, p := range ps {
			seen[p]++
		}
	}
	if len(seen) != partitions {
		return false
	}
	for p, n := range seen {
		if n != 1 || p < 0 || int(p) >= partitions {
			return false
		}
	}
	return true
}

// scaleGroups are the consumer groups every serve instance is a member of, with their input.
var scaleGroups = []struct{ group, topic string }{
	{topics.OpportunityGroup, topics.Commands},
	{topics.AnalyticsGroup, topics.AnalyticsDeltas},
}

func describeGroups(admin sarama.ClusterAdmin, insts []*scaleInstance) (map[string]groupAssignment, error) {
	var names []string
	for _, g := range scaleGroups {
		names = append(names, g.group)
	}
	descs, err := admin.DescribeConsumerGroups(names)
	if err != nil {
		return nil, err
	}
	out := map[string]groupAssignment{}
	for _, d := range descs {
		topic := ""
		for _, g := range scaleGroups {
			if g.group == d.GroupId {
				topic = g.topic
			}
		}
		ga := groupAssignment{state: d.State, members: map[int][]int32{}}
		for _, m := range d.Members {
			idx := -1
			if m.GroupInstanceId != nil {
				for _, in := range insts {
					if app.InstanceID(app.Config{Data: in.data})+"."+d.GroupId == *m.GroupInstanceId {
						idx = in.idx
					}
				}
			}
			a, err := m.GetMemberAssignment()
			if err != nil {
				return nil, fmt.Errorf("member %s assignment: %w", m.MemberId, err)
			}
			var ps []int32
			if a != nil {
				ps = slices.Clone(a.Topics[topic])
			}
			slices.Sort(ps)
			if idx < 0 {
				ga.unknown = append(ga.unknown, fmt.Sprintf("%s%v", m.MemberId, ps))
				continue
			}
			ga.members[idx] = append(ga.members[idx], ps...)
		}
		out[d.GroupId] = ga
	}
	return out, nil
}

func runScaleOut(t *testing.T, nInst, partitions, nOpps int, script []scaleStep) {
	if testing.Short() {
		t.Skip("scale-out test skipped in -short mode")
	}
	buildBinary(t) // not part of the timings below
	began := time.Now()
	brokerAddr := freePort(t)
	broker := startBrokerProc(t, t.TempDir(), brokerAddr)
	defer broker.kill()

	insts := make([]*scaleInstance, nInst)
	for i := range insts {
		in := &scaleInstance{idx: i, data: t.TempDir(), http: freePort(t)}
		in.args = []string{"serve", "--brokers", brokerAddr, "--data", in.data, "--http", in.http,
			"--partitions", strconv.Itoa(partitions)}
		insts[i] = in
	}
	dumpLogs := func() {
		for _, in := range insts {
			in.mu.Lock()
			procs := slices.Clone(in.procs)
			in.mu.Unlock()
			for run, p := range procs {
				t.Logf("--- instance %d run %d log (tail) ---\n%s", in.idx, run+1, tail(p.logs.String(), 6000))
			}
		}
	}
	defer func() { // the serve processes go before the broker they use
		for _, in := range insts {
			if p, _ := in.current(); p != nil {
				p.kill()
			}
		}
	}()
	defer func() {
		if t.Failed() {
			dumpLogs()
		}
	}()

	// All instances start together: concurrent topic provisioning and group formation.
	var starting []chan error
	for _, in := range insts {
		starting = append(starting, in.start(t))
	}
	for i, ch := range starting {
		if err := <-ch; err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	t.Logf("%d instances ready after %v", nInst, time.Since(began))

	cfg := topics.SaramaConfig(topics.ClientOptions{Brokers: []string{brokerAddr}, ClientID: "scaleout-test"})
	cfg.Producer.Return.Successes = true
	cfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(topics.Hasher())
	kc, err := sarama.NewClient([]string{brokerAddr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	admin, err := sarama.NewClusterAdminFromClient(kc)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close() // closes kc too
	producer, err := sarama.NewSyncProducer([]string{brokerAddr}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer producer.Close()
	if n, err := topics.Partitions(kc, topics.Commands); err != nil || int(n) != partitions {
		t.Fatalf("commands topic has %d partitions (%v), want %d", n, err, partitions)
	}

	var lastAssign map[string]groupAssignment
	awaitSplit := func(want []int) time.Duration {
		t.Helper()
		return testkit.WaitFor(t, fmt.Sprintf("instances %v to share the partitions", want), 60*time.Second, func() bool {
			a, err := describeGroups(admin, insts)
			if err != nil {
				return false
			}
			lastAssign = a
			for _, g := range scaleGroups {
				if !a[g.group].splitOK(want, partitions) {
					return false
				}
			}
			return true
		})
	}
	all := make([]int, nInst)
	for i := range all {
		all[i] = i
	}
	d := awaitSplit(all)
	t.Logf("initial split after %v more: %s: %s | %s: %s", d,
		topics.OpportunityGroup, lastAssign[topics.OpportunityGroup], topics.AnalyticsGroup, lastAssign[topics.AnalyticsGroup])
	initial := lastAssign

	setup := testkit.Attach(t, "http://"+insts[0].http+"/api/v1")
	for cur, rate := range crashRates {
		setup.MustStatus(setup.Do("PUT", "/fx-rates/"+cur, map[string]any{"rate": rate}, nil), 200)
	}

	// The load: the crash oracle's random commands, half over HTTP spread round-robin over the
	// ready instances (Idempotency-Key = command id, retried on another instance when one is
	// cut off), half from a plain Kafka producer.
	rng := rand.New(rand.NewPCG(7, uint64(nInst)))
	httpClient := &http.Client{Timeout: 5 * time.Second}
	sendKafka := func(cmd domain.Command) error {
		_, _, err := producer.SendMessage(testkit.CommandMessage(t, cmd))
		return err
	}
	next, rr := 0, 0
	httpSent, kafkaSent, retries := 0, 0, 0
	httpBy := make([]int, nInst)
	stops, kills, restarts := 0, 0, 0
	send := func(n int, pace time.Duration) {
		for k := 0; k < n; k++ {
			i := next
			next++
			id := fmt.Sprintf("opp-%03d", rng.IntN(nOpps))
			method, path, body, cmd := randomCommand(rng, id, i)
			viaHTTP := rng.IntN(2) == 0
			retries += sendUntilAccepted(t, i, func() error {
				if !viaHTTP {
					return sendKafka(cmd)
				}
				var target *scaleInstance
				for j := 0; j < nInst && target == nil; j++ {
					in := insts[(rr+j)%nInst]
					if _, ok := in.current(); ok {
						target = in
					}
				}
				rr++
				if target == nil {
					return fmt.Errorf("no instance ready")
				}
				err := sendCommandHTTP(t, httpClient, "http://"+target.http+"/api/v1", method, path, cmd.CommandID, body)
				if err == nil {
					httpBy[target.idx]++
				}
				return err
			}, func() { time.Sleep(20 * time.Millisecond) })
			if viaHTTP {
				httpSent++
			} else {
				kafkaSent++
			}
			if pace > 0 {
				time.Sleep(pace)
			}
		}
	}

	pendingStarts := map[int]chan error{}
	heldAtStop := map[int][]int32{} // partitions an instance owned when it was stopped
	wiped := map[int]bool{}         // instance -> whether its last stop was a SIGKILL
	for _, st := range script {
		switch st.act {
		case actSend:
			send(st.n, st.pace)
		case actStop:
			in := insts[st.inst]
			p, ok := in.current()
			if !ok {
				t.Fatalf("stop of instance %d, which is not running", st.inst)
			}
			if n, _, err := testkit.MetricSum(in.http, "crm_commands_processed_total"); err == nil {
				t.Logf("instance %d processed %v commands before its stop", in.idx, n)
			}
			heldAtStop[in.idx] = lastAssign[topics.OpportunityGroup].members[in.idx]
			switch st.sig {
			case syscall.SIGTERM:
				stops++
				in.mu.Lock()
				in.ready = false // a clean stop: take it out of the rotation first
				ch := make(chan error, 1)
				in.stopped = ch
				in.mu.Unlock()
				at := time.Now()
				if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
					t.Fatal(err)
				}
				go func() {
					select {
					case err := <-p.exited:
						p.exited <- err
						in.mu.Lock()
						in.stopDur = time.Since(at)
						in.mu.Unlock()
						ch <- err
					case <-time.After(40 * time.Second):
						ch <- fmt.Errorf("no exit within 40s of SIGTERM")
					}
				}()
				wiped[in.idx] = false
			case syscall.SIGKILL:
				// At a random moment while the next commands are in flight; HTTP requests cut
				// off are retried on another instance.
				kills++
				delay := time.Duration(rng.IntN(40)) * time.Millisecond
				go func() { time.Sleep(delay); p.kill() }()
				wiped[in.idx] = true
			default:
				t.Fatalf("signal %v", st.sig)
			}
			t.Logf("%s to instance %d at command %d (%v)", map[syscall.Signal]string{syscall.SIGTERM: "SIGTERM", syscall.SIGKILL: "SIGKILL"}[st.sig], in.idx, next, time.Since(began))
		case actRestart:
			in := insts[st.inst]
			in.mu.Lock()
			p, stopped := in.p, in.stopped
			in.stopped = nil
			in.mu.Unlock()
			if stopped != nil {
				if err := <-stopped; err != nil {
					t.Fatalf("instance %d after SIGTERM: %v\n%s", in.idx, err, p.logs.String())
				}
				if !strings.Contains(p.logs.String(), "stopped cleanly") {
					t.Fatalf("instance %d: no clean-stop log line after SIGTERM\n%s", in.idx, p.logs.String())
				}
				in.mu.Lock()
				t.Logf("instance %d stopped cleanly in %v", in.idx, in.stopDur)
				in.mu.Unlock()
			} else {
				p.kill() // waits for a SIGKILL sent above
				if !p.dead() {
					t.Fatalf("instance %d did not die", in.idx)
				}
			}
			restarts++
			pendingStarts[in.idx] = in.start(t)
			t.Logf("instance %d started again at command %d (%v)", in.idx, next, time.Since(began))
		case actAwaitMembers:
			d := awaitSplit(st.members)
			t.Logf("instances %v share the partitions after %v (at command %d, %v): %s: %s | %s: %s",
				st.members, d, next, time.Since(began),
				topics.OpportunityGroup, lastAssign[topics.OpportunityGroup], topics.AnalyticsGroup, lastAssign[topics.AnalyticsGroup])
			for _, i := range st.members {
				if held, ok := heldAtStop[i]; ok {
					t.Logf("instance %d owned %v when stopped and %v now", i, held, lastAssign[topics.OpportunityGroup].members[i])
					delete(heldAtStop, i)
				}
			}
		}
	}
	nCommands := next
	t.Logf("all %d commands sent after %v", nCommands, time.Since(began))
	for idx, ch := range pendingStarts {
		if err := <-ch; err != nil {
			t.Fatalf("instance %d restart: %v", idx, err)
		}
	}
	for _, in := range insts {
		if _, ok := in.current(); !ok {
			t.Fatalf("instance %d is not running at the end of the load", in.idx)
		}
	}
	awaitSplit(all)
	final := lastAssign
	t.Logf("final split: %s: %s | %s: %s", topics.OpportunityGroup, final[topics.OpportunityGroup],
		topics.AnalyticsGroup, final[topics.AnalyticsGroup])
	for idx, killed := range wiped {
		logs := insts[idx].p.logs.String()
		if w := strings.Contains(logs, "wiping local processor state"); w != killed {
			t.Errorf("instance %d restarted after a %s: wiped its processor caches = %v", idx,
				map[bool]string{true: "SIGKILL", false: "clean stop"}[killed], w)
		}
	}

	// Caught up: the group lag (every partition of both groups, as seen from each instance)
	// is 0, twice a second apart.
	lagZero := func() bool {
		for _, in := range insts {
			sum, series, err := testkit.MetricSum(in.http, "crm_consumer_lag_records")
			if err != nil || series != len(scaleGroups)*partitions || sum != 0 {
				return false
			}
		}
		return true
	}
	testkit.WaitFor(t, "consumer lag 0 on every instance", 60*time.Second, lagZero)
	time.Sleep(time.Second)
	testkit.WaitFor(t, "consumer lag 0 on every instance (again)", 30*time.Second, lagZero)
	t.Logf("caught up after %v", time.Since(began))

	// Every instance did part of the work since its last start.
	// Every instance did part of the work since its last start: commands accepted or refused
	// (crm_commands_processed_total counts accepted ones only, and most commands to a closed
	// deal are refused).
	processed := make([]string, nInst)
	for i, in := range insts {
		acc, _, err := testkit.MetricSum(in.http, "crm_commands_processed_total")
		if err != nil {
			t.Fatal(err)
		}
		ref, _, err := testkit.MetricSum(in.http, "crm_commands_refused_total")
		if err != nil {
			t.Fatal(err)
		}
		processed[i] = fmt.Sprintf("%v+%v", acc, ref)
		if acc+ref <= 0 {
			t.Errorf("instance %d handled no command since its last start (assignment %s)", i, final[topics.OpportunityGroup])
		}
		var counts []string
		for _, m := range []string{"crm_processor_restarts_total", "crm_records_redelivered_total",
			"crm_commands_duplicate_total", "crm_records_forwarded_total", "crm_commands_dlq_total"} {
			if v, _, err := testkit.MetricSum(in.http, m); err == nil && v != 0 {
				counts = append(counts, fmt.Sprintf("%s=%v", m, v))
			}
		}
		t.Logf("instance %d since its last start: %v accepted, %v refused %s", i, acc, ref, strings.Join(counts, " "))
	}

	oracle, aggOracle := replayCommandLog(t, brokerAddr)
	events := testkit.AllEvents(t, brokerAddr)
	var ids []string
	for id := range oracle {
		ids = append(ids, id)
	}
	sort.Strings(ids)

	// The views replicate the tables asynchronously: wait until each instance agrees with the
	// oracle (bounded), then compare for the record.
	analyticsWant := scaleAnalyticsExpectations(t, aggOracle)
	for _, in := range insts {
		s := testkit.Attach(t, "http://"+in.http+"/api/v1")
		start := time.Now()
		var last string
		for {
			last = scaleDiff(s, ids, oracle, analyticsWant)
			if last == "" || time.Since(start) > 30*time.Second {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if last != "" {
			t.Errorf("instance %d views never caught up with the oracle: %s", in.idx, last)
		} else {
			t.Logf("instance %d views caught up %v after the lag reached 0", in.idx, time.Since(start).Round(time.Millisecond))
		}
	}

	mismatches := 0
	for _, in := range insts {
		s := testkit.Attach(t, "http://"+in.http+"/api/v1")
		for _, id := range ids {
			want := oracle[id]
			r := s.Do("GET", "/opportunities/"+id, nil, nil)
			if want.Version == 0 {
				if r.Status != 404 {
					t.Errorf("instance %d, %s: oracle says it does not exist, service answered %d", in.idx, id, r.Status)
					mismatches++
				}
				continue
			}
			if r.Status != 200 {
				t.Errorf("instance %d, %s: status %d, oracle has version %d", in.idx, id, r.Status, want.Version)
				mismatches++
				continue
			}
			if diff := compareOpportunity(r.JSON(t), want); diff != "" {
				t.Errorf("instance %d, %s differs from the oracle: %s", in.idx, id, diff)
				mismatches++
			}
		}
		mismatches += compareAnalytics(t, s, aggOracle)
	}
	for _, id := range ids {
		if n := len(events[id]); int64(n) != oracle[id].Version {
			t.Errorf("%s: %d versions on the events topic, oracle has %d", id, n, oracle[id].Version)
			mismatches++
		}
	}
	// Any instance answers any read with the same data: whole bodies, not only the fields
	// the oracle knows.
	paths := []string{"/opportunities?limit=100", "/fx-rates", "/pipelines"}
	for _, id := range ids {
		paths = append(paths, "/opportunities/"+id, "/opportunities/"+id+"/history")
	}
	for _, path := range paths {
		var first testkit.Response
		for _, in := range insts {
			s := testkit.Attach(t, "http://"+in.http+"/api/v1")
			r := s.Do("GET", path, nil, nil)
			if in.idx == 0 {
				first = r
				continue
			}
			if r.Status != first.Status || !jsonEqual(r.Body, first.Body) {
				t.Errorf("GET %s: instance %d answered %d %s; instance 0 answered %d %s", path, in.idx, r.Status,
					bytes.TrimSpace(r.Body), first.Status, bytes.TrimSpace(first.Body))
				mismatches++
			}
		}
	}

	// Errors and warnings the instances logged (informational: rebalances and kills log some).
	for _, in := range insts {
		for run, p := range in.procs {
			msgs := map[string]int{}
			for _, line := range strings.Split(p.logs.String(), "\n") {
				var rec struct {
					Level, Msg, Route string
					Status            int
				}
				if json.Unmarshal([]byte(line), &rec) == nil && (rec.Level == "ERROR" || rec.Level == "WARN") {
					if rec.Route != "" {
						rec.Msg += fmt.Sprintf(" %s %d", rec.Route, rec.Status)
					}
					msgs[rec.Level+" "+tail(rec.Msg, 160)]++
				}
			}
			if len(msgs) > 0 {
				t.Logf("instance %d run %d logged: %v", in.idx, run+1, msgs)
			}
		}
	}

	existing := 0
	for _, o := range oracle {
		if o.Version > 0 {
			existing++
		}
	}
	t.Logf("initial assignment: %s: %s | %s: %s", topics.OpportunityGroup, initial[topics.OpportunityGroup],
		topics.AnalyticsGroup, initial[topics.AnalyticsGroup])
	t.Logf("scale-out: %d instances, %d partitions, %d commands (%d HTTP %v by instance, %d Kafka), %d retried sends, "+
		"%d opportunities (%d exist), %d SIGTERM, %d SIGKILL, %d restarts, accepted+refused since last start %v, %d mismatches, %v",
		nInst, partitions, nCommands, httpSent, httpBy, kafkaSent, retries, len(oracle), existing, stops, kills, restarts,
		processed, mismatches, time.Since(began).Round(time.Millisecond))
}

type pathWant struct {
	path string
	want []byte
}

// scaleAnalyticsExpectations are the analytics answers compareAnalytics checks, precomputed
// so that the wait for the views can poll them without failing the test.
func scaleAnalyticsExpectations(t *testing.T, o *analyticstest.Oracle) []pathWant {
	t.Helper()
	rates := analytics.MapRates("USD", crashRates)
	from, _ := domain.ParseDate("2026-01-01")
	to, _ := domain.ParseDate("2026-12-31")
	var out []pathWant
	add := func(path string, want any, err error) {
		if err != nil {
			t.Fatalf("oracle %s: %v", path, err)
		}
		b, err := query.MarshalAnalytics(want) // the body the handler sends for the oracle's answer
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pathWant{path, b})
	}
	for _, g := range []string{"none", "owner", "month", "category"} {
		want, err := o.Forecast(analytics.ForecastQuery{From: from, To: to, GroupBy: g, Currency: "USD"}, rates)
		add(fmt.Sprintf("/forecast?from=2026-01-01&to=2026-12-31&groupBy=%s&currency=USD", g), want, err)
	}
	for _, g := range []string{"none", "owner"} {
		want, err := o.WinLoss(analytics.WinLossQuery{From: from, To: to, GroupBy: g, Currency: "USD"}, rates)
		add("/analytics/win-loss?from=2026-01-01&to=2026-12-31&groupBy="+g, want, err)
	}
	fw, err := o.Funnel(analytics.FunnelQuery{From: from, To: to, PipelineID: "default"}, domain.DefaultPipeline())
	add("/analytics/funnel?pipelineId=default&from=2026-01-01&to=2026-12-31", fw, err)
	ch, err := o.Changes(analytics.ChangesQuery{From: from, To: to, Currency: "USD"}, rates)
	add("/analytics/changes?from=2026-01-01&to=2026-12-31", ch, err)
	return out
}

// scaleDiff returns the first difference between an instance's answers and the oracle, or "".
func scaleDiff(s *testkit.Service, ids []string, oracle map[string]domain.Opportunity, an []pathWant) string {
	for _, id := range ids {
		want := oracle[id]
		r := s.Do("GET", "/opportunities/"+id, nil, nil)
		switch {
		case want.Version == 0 && r.Status != 404:
			return fmt.Sprintf("%s: status %d, oracle: does not exist", id, r.Status)
		case want.Version == 0:
		case r.Status != 200:
			return fmt.Sprintf("%s: status %d, oracle version %d", id, r.Status, want.Version)
		default:
			var got map[string]any
			if err := json.Unmarshal(r.Body, &got); err != nil {
				return fmt.Sprintf("%s: %v", id, err)
			}
			if diff := compareOpportunity(got, want); diff != "" {
				return id + ": " + diff
			}
		}
	}
	for _, a := range an {
		r := s.Do("GET", a.path, nil, nil)
		if r.Status != 200 || !jsonEqual(r.Body, a.want) {
			return fmt.Sprintf("%s: %d %s, want %s", a.path, r.Status, r.Body, a.want)
		}
	}
	return ""
}

// jsonEqual compares two JSON answers, ignoring the per-request "requestId" of problem bodies.
func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return bytes.Equal(a, b)
	}
	for _, v := range []any{x, y} {
		if m, ok := v.(map[string]any); ok {
			delete(m, "requestId")
		}
	}
	return reflect.DeepEqual(x, y)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
