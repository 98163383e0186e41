package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
	"github.com/crm-pipeline/crm-pipeline/views"
)

// --- scenario: consistency lag ------------------------------------------------------------

// consistency measures, at the latency scenario's rate, how long after the broker
// acknowledged a command (a) the opportunity view, (b) the analytics read model (every view,
// as Crm-Min-Position waits for it) and (c) the live change stream show it. Commands go
// through Kafka, so the acknowledgement is the producer's and its position is the one a
// producer would name in Crm-Min-Position.
func (b *bench) consistency(ctx context.Context) error {
	n := b.size("consistency", 20_000, 1000)
	rate := b.rate(2000, 100)
	dur := b.duration(30*time.Second, 2*time.Second)
	warm := b.warmup(dur)
	env, fx, svc, err := b.populated(ctx, "consistency", n)
	if err != nil {
		return err
	}
	defer env.close(b.keep)
	defer svc.stop()
	b.note("consistency: %d opportunities; %.0f updates/s through Kafka for %s after %s of warm-up; each timed from the producer's acknowledgement",
		n, rate, dur, warm)

	stream, err := openStream(ctx, svc.base+"/stream?types=opportunity")
	if err != nil {
		return err
	}
	defer stream.close()

	pcfg := topics.SaramaConfig(topics.ClientOptions{Brokers: env.brokers, ClientID: "crm-bench-consistency"})
	pcfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(topics.Hasher())
	pcfg.Producer.Return.Successes = true
	producer, err := sarama.NewAsyncProducer(env.brokers, pcfg)
	if err != nil {
		return err
	}
	defer producer.AsyncClose()
	go func() {
		for m := range producer.Successes() {
			m.Metadata.(chan *sarama.ProducerMessage) <- m
		}
	}()
	go func() {
		for e := range producer.Errors() {
			e.Msg.Metadata.(chan *sarama.ProducerMessage) <- nil
		}
	}()

	var seq atomic.Int64
	var rmu sync.Mutex
	r := rand.New(rand.NewPCG(21, 22))
	next := func() string {
		rmu.Lock()
		defer rmu.Unlock()
		ids := fx.open[r.IntN(len(fx.open))]
		return ids[r.IntN(len(ids))]
	}
	var lmu sync.Mutex
	var viewLag, analyticsLag, streamLag []time.Duration
	measure := true
	send := func(ctx context.Context, _ int) error {
		id := next()
		// A unique amount tells this update's stream event from any other of the deal.
		s := seq.Add(1)
		amount := 1_000_000 + s
		cmd := updateCommand(id, fmt.Sprintf("cl-%d", s), amount)
		v, err := codecs.EncodeCommand(cmd)
		if err != nil {
			return err
		}
		seen := stream.expect(id, domain.FormatAmount(amount, "USD"))
		defer stream.forget(id, domain.FormatAmount(amount, "USD"))
		acked := make(chan *sarama.ProducerMessage, 1)
		actx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		select {
		case producer.Input() <- &sarama.ProducerMessage{Topic: topics.Commands, Key: sarama.StringEncoder(id),
			Value: sarama.ByteEncoder(v), Metadata: acked}:
		case <-actx.Done():
			return fmt.Errorf("produce: %w", errTimeout)
		}
		var m *sarama.ProducerMessage
		select {
		case m = <-acked:
		case <-actx.Done():
			return fmt.Errorf("produce: %w", errTimeout)
		}
		if m == nil {
			return errors.New("produce failed")
		}
		at := time.Now()
		pos := views.Position{Partition: m.Partition, Offset: m.Offset}
		if _, err := svc.run.Views.Await(actx, cmd); err != nil {
			return fmt.Errorf("view: %w", errTimeout)
		}
		dView := time.Since(at)
		if err := svc.run.Views.WaitPositions(actx, []views.Position{pos}); err != nil {
			return fmt.Errorf("analytics: %w", errTimeout)
		}
		dAnalytics := time.Since(at)
		var dStream time.Duration
		select {
		case t := <-seen:
			dStream = t.Sub(at)
		case <-actx.Done():
			return fmt.Errorf("stream: %w", errTimeout)
		}
		lmu.Lock()
		if measure {
			viewLag = append(viewLag, dView)
			analyticsLag = append(analyticsLag, dAnalytics)
			streamLag = append(streamLag, max(dStream, 0))
		}
		lmu.Unlock()
		return nil
	}
	lmu.Lock()
	measure = false
	lmu.Unlock()
	openLoop(ctx, rate, warm, send)
	if err := b.drain(ctx, env); err != nil {
		return err
	}
	lmu.Lock()
	measure = true
	lmu.Unlock()
	cpu := startCPU()
	res := openLoop(ctx, rate, dur, send)
	if err := res.check("consistency"); err != nil {
		return err
	}
	b.note("consistency: %d updates measured (%.0f/s), %d failed (%d timed out); process CPU %s; stream events read %d",
		len(res.lat), res.rps(), res.errs, res.timeouts, cpu(), stream.events.Load())
	if res.firstEr != nil {
		b.note("consistency: first error: %v", res.firstEr)
	}
	lmu.Lock()
	defer lmu.Unlock()
	view := &loadResult{lat: viewLag}
	for _, l := range []struct {
		name string
		res  *loadResult
	}{{"analytics", &loadResult{lat: analyticsLag}}, {"stream", &loadResult{lat: streamLag}}} {
		for _, p := range []struct {
			name string
			q    float64
		}{{"p50", 0.50}, {"p95", 0.95}, {"p99", 0.99}} {
			// The baseline is the opportunity view's lag: what these two add to it.
			b.report("consistency."+l.name+"."+p.name, l.res.pct(p.q), "ms", view.pct(p.q))
		}
	}
	return nil
}

// sseClient reads GET /api/v1/stream and tells waiters when an opportunity event with a given
// id and amount arrives.
type sseClient struct {
	resp   *http.Response
	cancel context.CancelFunc
	mu     sync.Mutex
	wait   map[string]chan time.Time
	events atomic.Int64
}

func openStream(ctx context.Context, url string) (*sseClient, error) {
	sctx, cancel := context.WithCancel(ctx)
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, url, nil)
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("open the change stream: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		cancel()
		return nil, fmt.Errorf("open the change stream: %s", resp.Status)
	}
	c := &sseClient{resp: resp, cancel: cancel, wait: map[string]chan time.Time{}}
	go c.read()
	return c, nil
}

func (c *sseClient) expect(id, amount string) chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	c.wait[id+"|"+amount] = ch
	c.mu.Unlock()
	return ch
}

func (c *sseClient) forget(id, amount string) {
	c.mu.Lock()
	delete(c.wait, id+"|"+amount)
	c.mu.Unlock()
}

func (c *sseClient) read() {
	sc := bufio.NewScanner(c.resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(line[len("event:"):])
		case strings.HasPrefix(line, "data:") && event == "opportunity":
			at := time.Now()
			var o struct {
				ID     string `json:"id"`
				Amount string `json:"amount"`
			}
			if json.Unmarshal([]byte(strings.TrimSpace(line[len("data:"):])), &o) != nil {
				continue
			}
			c.events.Add(1)
			c.mu.Lock()
			ch := c.wait[o.ID+"|"+o.Amount]
			c.mu.Unlock()
			if ch != nil {
				select {
				case ch <- at:
				default:
				}
			}
		case line == "":
			event = ""
		}
	}
}

func (c *sseClient) close() {
	c.cancel()
	c.resp.Body.Close()
}
