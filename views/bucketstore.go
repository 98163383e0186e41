package views

import (
	"fmt"
	"log/slog"

	"github.com/lovoo/goka/storage"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
)

// bucketStorage decorates the analytics view's partition stores so that the in-memory read
// model follows them exactly: every bucket already on disk is loaded when the store opens (a
// restart recovers only the changelog's tail, so an update callback alone would miss them),
// and every later Set or Delete is mirrored. goka writes a partition from one goroutine, so
// the model sees each bucket's writes in order.
type bucketStorage struct {
	storage.Storage
	model *analytics.Store
	log   *slog.Logger
}

// bucketBuilder wraps inner so that its stores feed model.
func bucketBuilder(inner storage.Builder, model *analytics.Store, log *slog.Logger) storage.Builder {
	return func(topic string, partition int32) (storage.Storage, error) {
		st, err := inner(topic, partition)
		if err != nil {
			return nil, err
		}
		return &bucketStorage{Storage: st, model: model, log: log}, nil
	}
}

// Open opens the inner store (which may wipe a stale cache) and loads its buckets.
func (b *bucketStorage) Open() error {
	if err := b.Storage.Open(); err != nil {
		return err
	}
	it, err := b.Storage.Iterator()
	if err != nil {
		return fmt.Errorf("load analytics buckets: %w", err)
	}
	defer it.Release()
	for it.Next() {
		v, err := it.Value()
		if err != nil {
			return fmt.Errorf("load analytics bucket %q: %w", it.Key(), err)
		}
		b.mirror(string(it.Key()), v)
	}
	return it.Err()
}

// Set stores a bucket and mirrors it into the read model.
func (b *bucketStorage) Set(key string, value []byte) error {
	if err := b.Storage.Set(key, value); err != nil {
		return err
	}
	b.mirror(key, value)
	return nil
}

// Delete removes a bucket from the store and the read model.
func (b *bucketStorage) Delete(key string) error {
	if err := b.Storage.Delete(key); err != nil {
		return err
	}
	b.model.Put(key, analytics.Bucket{})
	return nil
}

func (b *bucketStorage) mirror(key string, value []byte) {
	if len(value) == 0 {
		b.model.Put(key, analytics.Bucket{})
		return
	}
	bucket, err := codecs.DecodeBucket(value)
	if err != nil {
		// Left out of the model rather than stopping the view; logged for the operator.
		b.log.Error("undecodable analytics bucket", "key", key, "err", err)
		return
	}
	b.model.Put(key, bucket)
}
