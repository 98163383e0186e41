package state

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/lovoo/goka/storage"
)

// DefaultMemTableSize is the memtable size used when Options.MemTableSize is
// zero. Every table partition is its own pebble DB with its own memtable, so
// a process with 8 partitions of several tables holds dozens of them; pebble
// starts a memtable small and grows it up to this cap, which keeps idle
// partitions cheap while letting recovery write in large batches.
const DefaultMemTableSize = 4 << 20

// Options configure every Store a builder opens. The zero value works, but a
// process should at least share a Cache across all its stores.
type Options struct {
	// Cache is the block cache shared by all stores opened with these
	// options. Sharing one cache bounds the memory of all partitions together
	// instead of per partition. The caller owns the reference it created with
	// pebble.NewCache (each open store adds its own) and should Unref it once
	// the stores are closed. Nil gives every store a private 8 MiB cache.
	Cache *pebble.Cache

	// MemTableSize caps the memtable of each store. Zero means
	// DefaultMemTableSize.
	MemTableSize uint64

	// RecoveryBatchSize is the size in bytes at which the writes collected
	// while a store recovers are committed as one pebble batch (see
	// recovery.go). Zero means DefaultRecoveryBatchSize; a negative value
	// commits every write on its own, as after recovery.
	RecoveryBatchSize int

	// Validate, if set, is asked for the broker's view of a partition every
	// time a store opens, so a cache that no longer matches the table topic
	// (topic recreated, broker data wiped) is wiped instead of served. An
	// error from Validate fails Open: without it the cache cannot be trusted.
	Validate Validator

	// OnWipe, if set, is called (from Open) each time a store discards its
	// cache, so the caller can count rebuilds in its metrics: the stores goka
	// builds are never handed to the caller.
	OnWipe func(topic string, partition int32, reason WipeReason)

	// Logger receives the store's warnings (for instance why a cache was
	// wiped) and pebble's own log lines (pebble's info lines at Debug level).
	// Nil means slog.Default().
	Logger *slog.Logger

	// Disk, if set, is the file system of every store (one DiskGuard for the
	// process, so that one disk's trouble is one cause): a full, read-only or
	// descriptor-starved disk then makes writes wait instead of crashing the
	// process inside pebble. Nil uses the plain file system.
	Disk *DiskGuard

	// MaxOpenFiles caps the files each store keeps open (pebble's table
	// cache; its own default is 1,000 per store, which times dozens of
	// partition stores could take every descriptor the process has). Zero
	// means DefaultMaxOpenFiles.
	MaxOpenFiles int
}

// DefaultMaxOpenFiles is Options.MaxOpenFiles when unset: a partition's store
// holds tens of tables, so 64 keeps every table open while the process's
// stores together stay far below the connection reserve.
const DefaultMaxOpenFiles = 64

// Validator returns what the broker says about a table partition. It is
// called with the topic and partition goka passed to the builder, before the
// store touches the disk, so it may take a network round trip.
type Validator func(topic string, partition int32) (Expect, error)

// Expect is the broker's view of a table partition, used to detect a stale
// cache when a store opens.
type Expect struct {
	// TopicID is the Kafka topic ID (Metadata v10+). A topic that was deleted
	// and recreated under the same name gets a new ID, and so do all topics of
	// a broker whose data was wiped. Empty means unknown: no ID check.
	TopicID string

	// HighWaterMark is the partition's next offset. The stored offset is the
	// last table offset applied, so it must be below the high-water mark; if
	// it is not, the cache holds records Kafka does not have. Negative means
	// unknown: no offset check. Note that 0 means "known empty", which makes
	// any stored offset stale, so set -1 when the value is unknown.
	HighWaterMark int64
}

// NewBuilder returns a goka storage.Builder that creates one Store per table
// partition in <root>/<topic>.<partition>, the layout of goka's LevelDB
// builder. The topic is escaped for the file system, so any topic name maps
// to a distinct single directory. The stores are opened by goka's Open call,
// not by the builder, so Options.Validate runs inside Open and goka's error
// handling (Close after a failed Open) applies.
func NewBuilder(root string, opts Options) storage.Builder {
	return func(topic string, partition int32) (storage.Storage, error) {
		if topic == "" {
			return nil, fmt.Errorf("state: build storage in %s: empty topic name", root)
		}
		if partition < 0 {
			return nil, fmt.Errorf("state: build storage for %s: negative partition %d", topic, partition)
		}
		return New(filepath.Join(root, PartitionDir(topic, partition)), topic, partition, opts), nil
	}
}

// PartitionDir returns the directory name NewBuilder uses for a partition:
// "<topic>.<partition>" with every byte outside Kafka's topic alphabet
// [a-zA-Z0-9._-] written as %XX. Kafka topic names therefore keep their
// usual directory names, and no name can escape the root or collide with
// another.
func PartitionDir(topic string, partition int32) string {
	var b strings.Builder
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	fmt.Fprintf(&b, ".%d", partition)
	return b.String()
}

// bloomBitsPerKey sizes the sstables' bloom filters: 10 bits per key give
// about 1% false positives for 1.25 bytes per key.
const bloomBitsPerKey = 10

// setFilters gives the sstables of L0 to L5 a bloom filter and L6 none.
//
// Why: a point read consults every L0 file whose key range covers the key,
// and with keys written in hash order that is every L0 file. Without a
// filter each of them costs an index and a data block read, mostly block
// cache misses, since a flush's blocks start cold and one cache serves all
// partitions; with a filter a file that lacks the key costs one (small,
// cache-resident) filter probe. Pebble's Get never reads L6 filters (they
// would be as large as the data blocks they save), so building them there
// would only cost compaction CPU and disk.
func setFilters(o *pebble.Options) {
	for i := range o.Levels {
		o.Levels[i].FilterPolicy = bloom.FilterPolicy(bloomBitsPerKey)
	}
	o.Levels[len(o.Levels)-1].FilterPolicy = pebble.NoFilterPolicy
}

// pebbleLogger forwards pebble's log lines to slog. Pebble logs routine
// events (one "Found N WALs" per open, for example) at info level; with
// dozens of partitions that is noise, so they go to Debug.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug(fmt.Sprintf(format, args...), "source", "pebble")
}

func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...), "source", "pebble")
}

// Fatalf must not return (pebble's contract); it panics instead of exiting
// so deferred cleanup and the caller's recovery still run.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error(msg, "source", "pebble", "fatal", true)
	panic("pebble: " + msg)
}
