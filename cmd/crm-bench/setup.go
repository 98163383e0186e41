package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/app"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

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
	br, err := topics.StartBroker(topics.BrokerOptions{DataDir: filepath.Join(dir, "broker"), Listen: "127.0.0.1:0", Logger: b.log, NoSync: b.noSync})
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

// awaitCaughtUp polls groupCaughtUp every poll until it holds or ctx ends (its error then).
func (e *benchEnv) awaitCaughtUp(ctx context.Context, group, topic string, poll time.Duration) error {
	for {
		if ok, err := e.groupCaughtUp(group, topic); err == nil && ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(poll):
		}
	}
}

// benchService is app.Run running in this process (testkit.Instance).
type benchService struct {
	in   *testkit.Instance
	run  *app.Running
	base string
	data string
}

func (b *bench) startService(ctx context.Context, env *benchEnv, data string) (*benchService, error) {
	cfg := app.Config{
		Brokers: env.brokers, Data: data, HTTP: "127.0.0.1:0", EmbeddedBroker: "127.0.0.1:0",
		Partitions: benchPartitions, ReportingCurrency: "USD", CacheMiB: b.cacheMiB, ShutdownTimeout: 20 * time.Second,
		Clock: time.Now,
	}
	in, err := testkit.StartInstance(ctx, cfg, b.log, 2*time.Minute)
	if err != nil {
		return nil, err
	}
	s := &benchService{in: in, run: in.Run, data: data}
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
func (s *benchService) stop() error { return s.in.Stop(90 * time.Second) }

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

// benchAsyncProducer is an async producer with the service's client settings and murmur2
// partitioning, as the latency and consistency scenarios send commands; successes says
// whether it returns the acknowledged messages.
func benchAsyncProducer(brokers []string, clientID string, successes bool) (sarama.AsyncProducer, error) {
	cfg := topics.SaramaConfig(topics.ClientOptions{Brokers: brokers, ClientID: clientID})
	cfg.Producer.Partitioner = sarama.NewCustomHashPartitioner(topics.Hasher())
	cfg.Producer.Return.Successes = successes
	return sarama.NewAsyncProducer(brokers, cfg)
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
