package views

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/lovoo/goka/storage"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// bucketStorage decorates the analytics view's partition stores so that the in-memory read
// model follows them exactly: every bucket already on disk is loaded when the store opens (a
// restart recovers only the changelog's tail, so an update callback alone would miss them),
// and every later Set or Delete is mirrored. goka writes a partition from one goroutine, so
// the model sees each bucket's writes in order.
//
// Every write is also reported to the position tracker (written, may be nil in tests), which
// resolves the commands whose deltas it folds, and each open store is listed in stores, so
// the tracker can read a bucket's guard.
type bucketStorage struct {
	storage.Storage
	model     *analytics.Store
	log       *slog.Logger
	written   func(key string, guard map[string]int64)
	stores    *bucketStores
	partition int32
	// mu makes a write and its mirror one step for guard readers: a guard read from the
	// store (the tracker's) must never see a bucket the read model does not have yet, or a
	// wait would end before the read that follows could see the write.
	mu sync.RWMutex
}

// storedGuard reads key's guard from the store, never between a write and its mirror.
func (b *bucketStorage) storedGuard(key string) (map[string]int64, bool) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	raw, err := b.Storage.Get(key)
	if err != nil {
		return nil, false
	}
	if len(raw) == 0 {
		return nil, true
	}
	bucket, err := codecs.DecodeBucket(raw)
	if err != nil {
		return nil, true // left out of the model too (mirror logs it); nothing will resolve it
	}
	return bucket.Applied, true
}

// bucketStores lists the analytics view's open partition stores, so that a bucket's current
// guard can be read without going through goka's View.Get (which refuses while the view
// initializes, when the position tracker may already ask).
type bucketStores struct {
	mu         sync.Mutex
	partitions int32
	open       map[int32]*bucketStorage
}

// guard reads key's per-source applied positions; ok is false while its store is not open.
func (bs *bucketStores) guard(key string) (map[string]int64, bool) {
	if bs.partitions <= 0 {
		return nil, false
	}
	bs.mu.Lock()
	st := bs.open[topics.PartitionOf(key, bs.partitions)]
	bs.mu.Unlock()
	if st == nil {
		return nil, false
	}
	return st.storedGuard(key)
}

func (bs *bucketStores) set(partition int32, st *bucketStorage) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.open == nil {
		bs.open = map[int32]*bucketStorage{}
	}
	if st == nil {
		delete(bs.open, partition)
		return
	}
	bs.open[partition] = st
}

// bucketBuilder wraps inner so that its stores feed model and the tracker.
func bucketBuilder(inner storage.Builder, model *analytics.Store, log *slog.Logger, stores *bucketStores,
	written func(string, map[string]int64)) storage.Builder {
	return func(topic string, partition int32) (storage.Storage, error) {
		st, err := inner(topic, partition)
		if err != nil {
			return nil, err
		}
		return &bucketStorage{Storage: st, model: model, log: log, written: written, stores: stores, partition: partition}, nil
	}
}

// Open opens the inner store (which may wipe a stale cache) and loads its buckets.
func (b *bucketStorage) Open() error {
	if err := b.Storage.Open(); err != nil {
		return err
	}
	// Listed for the tracker's guard reads only once every stored bucket is in the read
	// model: a guard must never show a bucket the model has not got.
	if err := eachStored(b.Storage, "load analytics buckets", "load analytics bucket", b.mirror); err != nil {
		return err
	}
	if b.stores != nil {
		b.stores.set(b.partition, b)
	}
	return nil
}

// eachStored calls fn with every record st holds, as the storages that mirror their records
// do when they open: errors name what (the iteration) or whatAt and the key (one value).
func eachStored(st storage.Storage, what, whatAt string, fn func(key string, value []byte)) error {
	it, err := st.Iterator()
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer it.Release()
	for it.Next() {
		v, err := it.Value()
		if err != nil {
			return fmt.Errorf("%s %q: %w", whatAt, it.Key(), err)
		}
		fn(string(it.Key()), v)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// Set stores a bucket and mirrors it into the read model.
func (b *bucketStorage) Set(key string, value []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.Storage.Set(key, value); err != nil {
		return err
	}
	b.mirror(key, value)
	return nil
}

// Delete removes a bucket from the store and the read model.
func (b *bucketStorage) Delete(key string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.Storage.Delete(key); err != nil {
		return err
	}
	b.mirror(key, nil)
	return nil
}

// Close closes the inner store and takes it off the tracker's list.
func (b *bucketStorage) Close() error {
	if b.stores != nil {
		b.stores.set(b.partition, nil)
	}
	return b.Storage.Close()
}

// mirror puts a stored bucket into the read model, then tells the tracker: a bucket is
// readable (in the store and the model) before the commands it folds count as reflected.
func (b *bucketStorage) mirror(key string, value []byte) {
	var bucket analytics.Bucket
	if len(value) > 0 {
		var err error
		if bucket, err = codecs.DecodeBucket(value); err != nil {
			// Left out of the model rather than stopping the view; logged for the operator.
			b.log.Error("undecodable analytics bucket", "key", key, "err", err)
			return
		}
	}
	b.model.Put(key, bucket)
	if b.written != nil {
		b.written(key, bucket.Applied)
	}
}

// positionStorage decorates the opportunity view's partition stores so that the service
// learns, when a store opens, what its records already hold (the highest command offset for
// the position tracker, the recent command ids for the command index): a restart that kept
// the local cache replays only the changelog's tail, which may be empty.
type positionStorage struct {
	storage.Storage
	partition int32
	opened    func(partition int32, key string, agg *domain.Aggregate)
	log       *slog.Logger
}

// positionBuilder wraps inner so that each store reports its records when it opens.
func positionBuilder(inner storage.Builder, opened func(int32, string, *domain.Aggregate), log *slog.Logger) storage.Builder {
	return func(topic string, partition int32) (storage.Storage, error) {
		st, err := inner(topic, partition)
		if err != nil {
			return nil, err
		}
		return &positionStorage{Storage: st, partition: partition, opened: opened, log: log}, nil
	}
}

// Open opens the inner store and reports each record. It decodes each state once at open
// (the events block is skipped); a record it cannot decode is left to the reads to report.
func (p *positionStorage) Open() error {
	if err := p.Storage.Open(); err != nil {
		return err
	}
	return eachStored(p.Storage, "read opportunity positions", "read opportunity positions at", func(key string, v []byte) {
		if len(v) == 0 {
			return
		}
		agg, err := codecs.DecodeAggregateState(v)
		if err != nil {
			p.log.Warn("undecodable opportunity state left out of the positions", "key", key, "err", err)
			return
		}
		p.opened(p.partition, key, &agg)
	})
}
