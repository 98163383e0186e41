// Package gateway is the write side of the query service: it publishes commands, pipeline
// configurations and FX rates to their topics and answers once the broker has them (and, for
// configuration, once this instance's views show them). It is apart from views, the read
// side, so that each has one job: views never write a topic, the gateway never reads a table
// but through views.
//
// Imports from this module: domain, codecs, topics, views (the README's package table, checked by imports_test.go).
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
	"github.com/crm-pipeline/crm-pipeline/views"
)

// Config configures the emitters.
type Config struct {
	Brokers []string
	Client  topics.ClientOptions
	Logger  *slog.Logger
	// Views are this instance's read side: sent command offsets are noted there for Await,
	// and configuration writes wait until they show there.
	Views *views.Service
}

// Gateway owns the three emitters.
type Gateway struct {
	views    *views.Service
	commands *goka.Emitter
	pipeEmit *goka.Emitter
	fxEmit   *goka.Emitter
}

// New connects the emitters (goka connects in the constructors, so the topics must exist).
func New(cfg Config) (*Gateway, error) {
	if cfg.Views == nil {
		return nil, errors.New("gateway: Config.Views is required")
	}
	emitter := func(topic string, c goka.Codec) (*goka.Emitter, error) {
		return goka.NewEmitter(cfg.Brokers, goka.Stream(topic), c,
			goka.WithEmitterHasher(topics.Hasher()),
			goka.WithEmitterProducerBuilder(topics.ProducerBuilder(cfg.Client)),
			goka.WithEmitterTopicManagerBuilder(topics.TopicManagerBuilder(cfg.Client, 1)),
			goka.WithEmitterLogger(topics.GokaLogger(cfg.Logger, "emitter")),
			goka.WithEmitterClientID("crm-pipeline-gateway"))
	}
	g := &Gateway{views: cfg.Views}
	var err error
	if g.commands, err = emitter(topics.Commands, codecs.CommandCodec{}); err != nil {
		return nil, fmt.Errorf("commands emitter: %w", err)
	}
	if g.pipeEmit, err = emitter(topics.Pipelines, codecs.PipelineCodec{}); err != nil {
		return nil, fmt.Errorf("pipelines emitter: %w", err)
	}
	if g.fxEmit, err = emitter(topics.FXRates, codecs.FXRateCodec{}); err != nil {
		return nil, fmt.Errorf("fx-rates emitter: %w", err)
	}
	return g, nil
}

// Close flushes the emitters; call it once the HTTP server no longer takes writes.
func (g *Gateway) Close() error {
	var err error
	for _, e := range []*goka.Emitter{g.commands, g.pipeEmit, g.fxEmit} {
		if ferr := e.Finish(); ferr != nil && err == nil {
			err = ferr
		}
	}
	return err
}

// Send publishes a command and returns once the broker acknowledged it, with the record's
// position (the Crm-Position of the answer); the position is noted in the views, for Await.
func (g *Gateway) Send(ctx context.Context, cmd domain.Command) (views.Position, error) {
	promise, err := g.commands.Emit(cmd.OpportunityID, cmd)
	if err != nil {
		return views.Position{}, fmt.Errorf("send command %s: %w", cmd.CommandID, err)
	}
	type acked struct {
		pos views.Position
		err error
	}
	done := make(chan acked, 1)
	promise.ThenWithMessage(func(msg *sarama.ProducerMessage, err error) {
		var pos views.Position
		if err == nil && msg != nil {
			pos = views.Position{Partition: msg.Partition, Offset: msg.Offset}
			g.views.NoteSent(cmd.CommandID, pos)
		}
		done <- acked{pos, err}
	})
	select {
	case a := <-done:
		if a.err != nil {
			return views.Position{}, fmt.Errorf("send command %s: %w", cmd.CommandID, a.err)
		}
		return a.pos, nil
	case <-ctx.Done():
		return views.Position{}, ctx.Err()
	}
}

// PutPipeline publishes a pipeline configuration and returns once this instance's view shows
// it, so that a following read sees the write.
func (g *Gateway) PutPipeline(ctx context.Context, p domain.Pipeline) error {
	if err := g.pipeEmit.EmitSync(p.ID, p); err != nil {
		return fmt.Errorf("publish pipeline %s: %w", p.ID, err)
	}
	return g.views.WaitPipeline(ctx, p)
}

// PutFXRate publishes a rate and returns once this instance's view shows it.
func (g *Gateway) PutFXRate(ctx context.Context, r domain.FXRate) error {
	if err := g.fxEmit.EmitSync(r.Currency, r); err != nil {
		return fmt.Errorf("publish fx rate %s: %w", r.Currency, err)
	}
	return g.views.WaitFXRate(ctx, r)
}

// EnsureDefaultPipeline publishes the default pipeline when none exists yet.
func (g *Gateway) EnsureDefaultPipeline(ctx context.Context) error {
	p, err := g.views.Pipeline(domain.DefaultPipelineID)
	if err != nil || p != nil {
		return err
	}
	return g.PutPipeline(ctx, domain.DefaultPipeline())
}

// MigrateHistory asks the opportunity processor to move the history of every state still in
// the previous layout (its whole history inside the table record) to the history topic: one
// empty command record with topics.HeaderMigrateHistory per such key, so that the key's
// owner does the copy in order with its commands, whichever instance that is. It returns how
// many it asked for. A repeat (another instance, another start before the processor got to
// it) is a no-op for the processor, so this needs no coordination.
func (g *Gateway) MigrateHistory(ctx context.Context) (int, error) {
	keys, err := g.views.PreviousLayoutKeys(ctx)
	if err != nil {
		return 0, err
	}
	promises := make([]*goka.Promise, 0, len(keys))
	for _, k := range keys {
		p, err := g.commands.EmitWithHeaders(k, nil, goka.Headers{topics.HeaderMigrateHistory: []byte("1")})
		if err != nil {
			return len(promises), fmt.Errorf("ask migration of %s: %w", k, err)
		}
		promises = append(promises, p)
	}
	for _, p := range promises {
		done := make(chan error, 1)
		p.Then(func(err error) { done <- err })
		select {
		case err := <-done:
			if err != nil {
				return len(promises), fmt.Errorf("ask migration: %w", err)
			}
		case <-ctx.Done():
			return len(promises), ctx.Err()
		}
	}
	return len(promises), nil
}
