package processors

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/IBM/sarama"
	"github.com/lovoo/goka"
)

// fakeProducer hands out promises that the test resolves in any order.
type fakeProducer struct {
	mu       sync.Mutex
	finishes []goka.PromiseFinisher
}

func (f *fakeProducer) Emit(topic, key string, value []byte) *goka.Promise {
	return f.EmitWithHeaders(topic, key, value, nil)
}

func (f *fakeProducer) EmitWithHeaders(topic, key string, value []byte, _ goka.Headers) *goka.Promise {
	p, fin := goka.NewPromiseWithFinisher()
	f.mu.Lock()
	f.finishes = append(f.finishes, fin)
	f.mu.Unlock()
	return p
}

func (f *fakeProducer) Close() error { return nil }

func TestOrderedProducerResolvesInIssueOrder(t *testing.T) {
	inner := &fakeProducer{}
	p := NewOrderedProducer(inner)
	var mu sync.Mutex
	var order []int
	for i := 0; i < 3; i++ {
		p.Emit("t", "k", nil).Then(func(err error) {
			mu.Lock()
			order = append(order, i)
			mu.Unlock()
		})
	}
	// The broker acknowledges them in reverse.
	inner.finishes[2](&sarama.ProducerMessage{Offset: 2}, nil)
	inner.finishes[1](&sarama.ProducerMessage{Offset: 1}, nil)
	if len(order) != 0 {
		t.Fatalf("promises resolved before the first emit was acknowledged: %v", order)
	}
	inner.finishes[0](&sarama.ProducerMessage{Offset: 0}, nil)
	if len(order) != 3 || order[0] != 0 || order[1] != 1 || order[2] != 2 {
		t.Fatalf("resolution order %v, want [0 1 2]", order)
	}
}

func TestOrderedProducerFailureIsSticky(t *testing.T) {
	inner := &fakeProducer{}
	p := NewOrderedProducer(inner)
	boom := errors.New("message too large")
	var errs [3]error
	var offsets [3]int64
	for i := 0; i < 3; i++ {
		p.Emit("t", "k", nil).ThenWithMessage(func(m *sarama.ProducerMessage, err error) {
			errs[i] = err
			if m != nil {
				offsets[i] = m.Offset
			}
		})
	}
	inner.finishes[0](&sarama.ProducerMessage{Offset: 10}, nil)
	inner.finishes[1](nil, boom)
	inner.finishes[2](&sarama.ProducerMessage{Offset: 12}, nil)
	if errs[0] != nil || offsets[0] != 10 {
		t.Errorf("first emit: err %v offset %d", errs[0], offsets[0])
	}
	if !errors.Is(errs[1], boom) {
		t.Errorf("second emit: %v, want %v", errs[1], boom)
	}
	if !errors.Is(errs[2], boom) {
		t.Errorf("third emit after a failure: %v, want it to fail with %v", errs[2], boom)
	}
	// Later emits fail too.
	var late error
	p.Emit("t", "k", nil).Then(func(err error) { late = err })
	inner.finishes[3](&sarama.ProducerMessage{Offset: 13}, nil)
	if !errors.Is(late, boom) {
		t.Errorf("emit after the failure: %v, want it to fail", late)
	}
	// The failure is passed on, not wrapped again at every link.
	if n := strings.Count(late.Error(), "an earlier emit failed"); n != 1 {
		t.Errorf("error of a late emit nests %d times: %v", n, late)
	}
}
