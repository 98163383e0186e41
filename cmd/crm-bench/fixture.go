package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/step"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

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

// openPicker draws open opportunities of a fixture at random, for the concurrent senders of
// the update scenarios: a partition, then an id in it, from a generator of fixed seeds.
type openPicker struct {
	mu   sync.Mutex
	r    *rand.Rand
	open [][]string
}

func (fx *fixture) picker(seed1, seed2 uint64) *openPicker {
	return &openPicker{r: rand.New(rand.NewPCG(seed1, seed2)), open: fx.open}
}

func (p *openPicker) id() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.draw()
}

// idAndAmount is an id and a random amount for its update.
func (p *openPicker) idAndAmount() (string, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.draw(), randAmount(p.r)
}

func (p *openPicker) draw() string {
	ids := p.open[p.r.IntN(len(p.open))]
	return ids[p.r.IntN(len(ids))]
}

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
			analytics.ApplyAll(fp.buckets, res.Deltas)
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
