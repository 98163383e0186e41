package processors

import (
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// OrderedProducerBuilder wraps goka's sarama producer so that promises resolve in the order
// the emits were issued and, once one emit has failed, every later one fails too. goka marks
// an input offset when all emits of that record are acknowledged, and sarama's MarkOffset only
// moves forward: without this wrapper a permanently failed emit followed by successful later
// ones lets the commit move past the failed record, which is then never redelivered
// (research/goka-kfake.md §2.3).
func OrderedProducerBuilder(cfg func() *sarama.Config) goka.ProducerBuilder {
	return func(brokers []string, clientID string, hasher func() hash.Hash32) (goka.Producer, error) {
		c := cfg()
		c.ClientID = clientID
		c.Producer.Partitioner = sarama.NewCustomHashPartitioner(hasher)
		inner, err := goka.NewProducer(brokers, c)
		if err != nil {
			return nil, fmt.Errorf("ordered producer: %w", err)
		}
		return NewOrderedProducer(inner), nil
	}
}

// OrderedProducer is the goka.Producer described at OrderedProducerBuilder.
type OrderedProducer struct {
	inner goka.Producer
	mu    sync.Mutex
	last  *goka.Promise // the promise of the previous emit; nil before the first
}

// NewOrderedProducer wraps inner.
func NewOrderedProducer(inner goka.Producer) *OrderedProducer {
	return &OrderedProducer{inner: inner}
}

// Emit sends a record; see EmitWithHeaders.
func (p *OrderedProducer) Emit(topic string, key string, value []byte) *goka.Promise {
	return p.EmitWithHeaders(topic, key, value, nil)
}

// EmitWithHeaders sends a record and returns a promise that resolves only after every earlier
// emit's promise, failing if any earlier emit failed.
func (p *OrderedProducer) EmitWithHeaders(topic string, key string, value []byte, headers goka.Headers) *goka.Promise {
	outer, finish := goka.NewPromiseWithFinisher()
	p.mu.Lock()
	prev := p.last
	p.last = outer
	inner := p.inner.EmitWithHeaders(topic, key, value, headers)
	p.mu.Unlock()
	inner.ThenWithMessage(func(msg *sarama.ProducerMessage, err error) {
		if prev == nil {
			finish(msg, err)
			return
		}
		prev.Then(func(prevErr error) {
			if err == nil && prevErr != nil {
				// Pass one value down the chain: wrapping at every link would make the error
				// of the n-th emit after a failure n levels deep.
				var ef *EarlierEmitFailed
				if !errors.As(prevErr, &ef) {
					ef = &EarlierEmitFailed{Cause: prevErr}
				}
				err = ef
			}
			finish(msg, err)
		})
	})
	return outer
}

// EarlierEmitFailed fails every emit issued after one that failed; Cause is that first failure.
type EarlierEmitFailed struct{ Cause error }

func (e *EarlierEmitFailed) Error() string { return "an earlier emit failed: " + e.Cause.Error() }

// Unwrap returns the first failure, so errors.Is sees through the chain.
func (e *EarlierEmitFailed) Unwrap() error { return e.Cause }

// Close closes the inner producer after its outstanding emits.
func (p *OrderedProducer) Close() error { return p.inner.Close() }
