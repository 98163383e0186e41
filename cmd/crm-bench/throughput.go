package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

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
	for _, g := range []struct{ group, topic, who string }{
		{topics.OpportunityGroup, topics.Commands, "opportunity processor"},
		{topics.AnalyticsGroup, topics.AnalyticsDeltas, "aggregator"},
	} {
		if err := env.awaitCaughtUp(ctx, g.group, g.topic, 20*time.Millisecond); err != nil {
			return fmt.Errorf("%s did not catch up: %w", g.who, err)
		}
		phase(g.who + " committed")
	}
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
