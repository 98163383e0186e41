package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

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
	kafka, kafkaCPU, err := b.latencyPhase(ctx, env, rate, warm, dur, "latency through Kafka", kafkaCmd)
	if err != nil {
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
	web, webCPU, err := b.latencyPhase(ctx, env, rate, warm, dur, "latency through HTTP", patch)
	if err != nil {
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

// latencyPhase runs do open-loop at rate: for warm unmeasured, then, with the service drained of
// the warm-up's backlog, for dur measured. It returns the measured result and the process CPU it
// took; an error if the drain did not finish or too many calls failed (name says which phase).
func (b *bench) latencyPhase(ctx context.Context, env *benchEnv, rate float64, warm, dur time.Duration, name string,
	do func(ctx context.Context, i int) error) (*loadResult, string, error) {
	openLoop(ctx, rate, warm, do)
	if err := b.drain(ctx, env); err != nil {
		return nil, "", err
	}
	cpu := startCPU()
	res := openLoop(ctx, rate, dur, do)
	used := cpu()
	if err := res.check(name); err != nil {
		return nil, "", err
	}
	return res, used, nil
}

// drain waits until the opportunity processor and the aggregator have committed everything
// on their inputs, so that one measured phase does not pay for the backlog of the previous.
func (b *bench) drain(ctx context.Context, env *benchEnv) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for _, g := range []struct{ group, topic string }{
		{topics.OpportunityGroup, topics.Commands}, {topics.AnalyticsGroup, topics.AnalyticsDeltas},
	} {
		if err := env.awaitCaughtUp(ctx, g.group, g.topic, 50*time.Millisecond); err != nil {
			return fmt.Errorf("drain %s: %w", g.group, err)
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
