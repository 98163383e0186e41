package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/lovoo/goka/storage"
)

// Key layout. User keys are stored as dataPrefix+key; metadata lives under
// "m/". Because 'd' < 'e' < 'm', an iterator bounded to [d, e) sees exactly
// the user keys, whatever bytes they contain.
const (
	dataPrefix  = 'd'
	dataEnd     = 'e'
	offsetKey   = "m/offset"
	topicIDKey  = "m/topic-id"
	noOffset    = -1
	wipeSuffix  = ".wiping"
	flushPeriod = time.Second
)

// ErrClosed is returned (wrapped) by operations on a Store after Close.
var ErrClosed = errors.New("state: store closed")

// ErrNotOpen is returned (wrapped) by operations on a Store that was built
// but never successfully opened.
var ErrNotOpen = errors.New("state: store not open")

// Store is one table partition's cache in a pebble DB. It implements goka's
// storage.Storage and is safe for concurrent use: goka calls Set and Delete
// from the partition goroutine, SetOffset from the producer's ack goroutine,
// Get and iterators from request handlers, and Close from Stop.
type Store struct {
	path      string
	topic     string
	partition int32
	opts      Options
	log       *slog.Logger

	// flushEvery is how often the offset is persisted while recovering.
	// A field rather than a constant so tests can shorten it.
	flushEvery time.Duration

	// mu is held for reading by every operation that touches db and for
	// writing by Open and Close, so Close never pulls the DB from under a
	// running operation (pebble panics on use after Close).
	mu        sync.RWMutex
	db        *pebble.DB
	closed    bool
	flushStop chan struct{} // closed to stop the offset flusher
	flushDone chan struct{} // closed when the offset flusher has exited

	// itersMu guards iters, the live iterators. Pebble refuses to close a DB
	// with open iterators, and goka users may hold a view iterator across a
	// shutdown, so Close releases them itself.
	itersMu sync.Mutex
	iters   map[*iterator]struct{}

	offset    atomic.Int64 // last offset set; noOffset if none
	recovered atomic.Bool
	wiped     atomic.Bool

	// pendMu guards pending, the batch collecting writes while recovering
	// (see recovery.go); nil once recovered or when batching is disabled.
	// batching mirrors pending != nil so that reads after recovery check it
	// without a lock. Lock order: mu, pendMu, persistMu.
	pendMu    sync.Mutex
	pending   *pebble.Batch
	batchSize int
	batching  atomic.Bool
	// lost is set when a recovery batch failed to commit; see loseBatch.
	lost atomic.Pointer[error]

	// persistMu serialises offset writes so that the last write always
	// carries the newest value, whichever goroutine (ack, ticker, Close)
	// performs it. persisted is the value on disk.
	persistMu sync.Mutex
	persisted int64
}

var _ storage.Storage = (*Store)(nil)

// New returns an unopened Store for the DB in path; goka's Open call (or the
// caller's) opens it. topic and partition identify the table partition to
// Options.Validate. Building is separate from opening so that a builder
// stays cheap and all failures surface through Open, after which goka calls
// Close.
func New(path, topic string, partition int32, opts Options) *Store {
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Store{
		path:       path,
		topic:      topic,
		partition:  partition,
		opts:       opts,
		log:        log.With("component", "state", "path", path),
		flushEvery: flushPeriod,
		iters:      make(map[*iterator]struct{}),
		persisted:  noOffset,
	}
	s.offset.Store(noOffset)
	return s
}

// Open opens (creating if needed) the store in path, for tests and tools
// that work on a store outside goka. Such a store has no table identity:
// Options.Validate, if set, is called with topic "" and partition -1.
func Open(path string, opts Options) (*Store, error) {
	s := New(path, "", -1, opts)
	if err := s.Open(); err != nil {
		return nil, err
	}
	return s, nil
}

// Open opens the pebble DB, loads the stored offset and checks the cache
// against Options.Validate, wiping it when stale. A DB that pebble reports
// as corrupt is wiped too: Kafka can rebuild it, a corrupt cache cannot be
// trusted. Opening an open store is a no-op; opening a closed one fails.
func (s *Store) Open() error {
	// Ask the broker before taking the lock: it may take a round trip, and
	// nothing on disk is needed for it.
	var expect *Expect
	if s.opts.Validate != nil {
		e, err := s.opts.Validate(s.topic, s.partition)
		if err != nil {
			return fmt.Errorf("state: validate cache of %s/%d: %w", s.topic, s.partition, err)
		}
		expect = &e
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("state: open %s: %w", s.path, ErrClosed)
	}
	if s.db != nil {
		return nil
	}

	// A previous wipe may have been interrupted after its rename.
	if err := os.RemoveAll(s.path + wipeSuffix); err != nil {
		return fmt.Errorf("state: remove interrupted wipe of %s: %w", s.path, err)
	}

	db, err := s.openDB()
	if err != nil && pebble.IsCorruptionError(err) {
		s.log.Warn("wiping corrupt local cache; it will be rebuilt from Kafka",
			"topic", s.topic, "partition", s.partition, "reason", WipeCorrupt, "error", err)
		db, err = s.wipeAndOpen(nil, WipeCorrupt)
	}
	if err != nil {
		return err
	}

	offset, topicID, err := readMeta(db)
	if err != nil {
		return errors.Join(err, closeDB(db))
	}

	if reason := staleReason(expect, offset, topicID); reason != "" {
		s.log.Warn("wiping stale local cache; it will be rebuilt from Kafka",
			"topic", s.topic, "partition", s.partition, "reason", reason,
			"stored_offset", offset, "stored_topic_id", topicID,
			"broker_topic_id", expect.TopicID, "broker_hwm", expect.HighWaterMark)
		if db, err = s.wipeAndOpen(db, reason); err != nil {
			return err
		}
		offset, topicID = noOffset, ""
	}

	if expect != nil && expect.TopicID != "" && expect.TopicID != topicID {
		// Synced: it is written once per open, and a stale cache must never
		// be mistaken for a fresh one.
		if err := db.Set([]byte(topicIDKey), []byte(expect.TopicID), pebble.Sync); err != nil {
			return errors.Join(fmt.Errorf("state: store topic id in %s: %w", s.path, err), closeDB(db))
		}
	}

	s.db = db
	s.offset.Store(offset)
	s.persistMu.Lock()
	s.persisted = offset
	s.persistMu.Unlock()

	if !s.recovered.Load() {
		s.startBatching(db)
	}
	s.flushStop = make(chan struct{})
	s.flushDone = make(chan struct{})
	go s.flushPeriodically(s.flushStop, s.flushDone)
	return nil
}

// WipeReason says why Open discarded a cache. The values are stable, so
// they can label a metric.
type WipeReason string

// The reasons Open wipes a cache.
const (
	// WipeTopicIDChanged: the table topic's ID differs from the one stored
	// with the cache, so the topic was recreated or the broker's data wiped.
	WipeTopicIDChanged WipeReason = "topic-id-changed"
	// WipeOffsetPastHighWaterMark: the stored offset is not below the
	// high-water mark, so the cache holds records Kafka does not have.
	WipeOffsetPastHighWaterMark WipeReason = "offset-past-hwm"
	// WipeCorrupt: pebble reported the DB as corrupt.
	WipeCorrupt WipeReason = "corrupt"
)

// staleReason says why a cache with the given stored offset and topic ID
// does not match what the broker expects, or "" if it does (or if nothing
// is expected).
func staleReason(expect *Expect, offset int64, topicID string) WipeReason {
	switch {
	case expect == nil:
		return ""
	case expect.TopicID != "" && topicID != "" && expect.TopicID != topicID:
		return WipeTopicIDChanged
	case offset > noOffset && expect.HighWaterMark >= 0 && offset >= expect.HighWaterMark:
		return WipeOffsetPastHighWaterMark
	default:
		return ""
	}
}

func (s *Store) memTableSize() uint64 {
	if s.opts.MemTableSize == 0 {
		return DefaultMemTableSize
	}
	return s.opts.MemTableSize
}

func (s *Store) openDB() (*pebble.DB, error) {
	po := &pebble.Options{
		Cache:              s.opts.Cache,
		MemTableSize:       s.memTableSize(),
		FormatMajorVersion: pebble.FormatNewest,
		Logger:             pebbleLogger{s.log},
		MaxOpenFiles:       s.opts.MaxOpenFiles,
	}
	if po.MaxOpenFiles == 0 {
		po.MaxOpenFiles = DefaultMaxOpenFiles
	}
	if s.opts.Disk != nil {
		po.FS = s.opts.Disk
	}
	setFilters(po)
	db, err := pebble.Open(s.path, po)
	if err != nil {
		return nil, fmt.Errorf("state: open pebble db %s: %w", s.path, err)
	}
	return db, nil
}

// wipeAndOpen closes db (if any), deletes the store's directory and opens an
// empty DB. The directory is first renamed aside so that a crash mid-delete
// leaves either the old DB or nothing, never a half-deleted DB; Open removes
// the leftover.
func (s *Store) wipeAndOpen(db *pebble.DB, reason WipeReason) (*pebble.DB, error) {
	if db != nil {
		if err := db.Close(); err != nil {
			return nil, fmt.Errorf("state: close %s before wiping: %w", s.path, err)
		}
	}
	aside := s.path + wipeSuffix
	if err := os.Rename(s.path, aside); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("state: wipe %s: %w", s.path, err)
	}
	if err := syncDir(filepath.Dir(s.path)); err != nil {
		return nil, fmt.Errorf("state: wipe %s: %w", s.path, err)
	}
	if err := os.RemoveAll(aside); err != nil {
		return nil, fmt.Errorf("state: wipe %s: %w", s.path, err)
	}
	s.wiped.Store(true)
	if s.opts.OnWipe != nil {
		s.opts.OnWipe(s.topic, s.partition, reason)
	}
	return s.openDB()
}

func readMeta(db *pebble.DB) (offset int64, topicID string, err error) {
	raw, err := getCopy(db, []byte(offsetKey))
	if err != nil {
		return 0, "", fmt.Errorf("state: read stored offset: %w", err)
	}
	offset = noOffset
	if raw != nil {
		if len(raw) != 8 {
			return 0, "", fmt.Errorf("state: read stored offset: %d bytes, want 8", len(raw))
		}
		offset = int64(binary.BigEndian.Uint64(raw))
	}
	id, err := getCopy(db, []byte(topicIDKey))
	if err != nil {
		return 0, "", fmt.Errorf("state: read stored topic id: %w", err)
	}
	return offset, string(id), nil
}

// getCopy returns a copy of key's value, nil if the key is missing, and a
// non-nil empty slice for an empty value (as LevelDB does). Pebble's buffer
// is only valid until the closer is closed.
func getCopy(db *pebble.DB, key []byte) ([]byte, error) {
	v, closer, err := db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(v))
	copy(out, v)
	if err := closer.Close(); err != nil {
		return nil, err
	}
	return out, nil
}

func closeDB(db *pebble.DB) error {
	if err := db.Close(); err != nil {
		return fmt.Errorf("state: close pebble db: %w", err)
	}
	return nil
}

// Wiped reports whether Open discarded the cache because it was stale or
// corrupt, for callers holding the Store (tools, tests). Stores built by
// goka are not visible to the caller; Options.OnWipe reports those.
func (s *Store) Wiped() bool { return s.wiped.Load() }

// Path returns the store's directory, for logs and tools.
func (s *Store) Path() string { return s.path }

// Close persists the offset and closes the DB, releasing any iterator still
// open (those then report ErrClosed). It may be called more than once and
// on a store whose Open failed or never ran, because goka calls Close after
// a failed Open.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	stop, done := s.flushStop, s.flushDone
	s.flushStop, s.flushDone = nil, nil
	s.mu.Unlock()

	// The flusher takes mu for reading, so stop it before taking mu for
	// writing.
	if stop != nil {
		close(stop)
		<-done
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.db == nil {
		return nil
	}
	err := s.stopBatching(s.db)
	if err == nil {
		err = s.persistOffsetLocked(s.db)
	}
	s.releaseIterators()
	if cerr := s.db.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("state: close %s: %w", s.path, cerr))
	}
	s.db = nil
	return err
}

// readable returns why a point read of key cannot go to pebble: the store is
// not open, or the pending recovery writes it must see did not commit.
// Callers hold mu for reading.
func (s *Store) readable(op, key string) error {
	if s.db == nil {
		return s.unavailable(op)
	}
	if err := s.flushPending(s.db); err != nil {
		return fmt.Errorf("state: %s %q: %w", op, key, err)
	}
	return nil
}

// unavailable explains why db is nil. Callers hold mu.
func (s *Store) unavailable(op string) error {
	if s.closed {
		return fmt.Errorf("state: %s in %s: %w", op, s.path, ErrClosed)
	}
	return fmt.Errorf("state: %s in %s: %w", op, s.path, ErrNotOpen)
}

func dataKey(key []byte) []byte {
	k := make([]byte, 1+len(key))
	k[0] = dataPrefix
	copy(k[1:], key)
	return k
}

func dataKeyString(key string) []byte {
	k := make([]byte, 1+len(key))
	k[0] = dataPrefix
	copy(k[1:], key)
	return k
}

// Has reports whether key is stored. Pebble has no existence check, so it
// costs a Get without the copy.
func (s *Store) Has(key string) (bool, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.readable("has", key); err != nil {
		return false, err
	}
	_, closer, err := s.db.Get(dataKeyString(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("state: has %q in %s: %w", key, s.path, err)
	}
	if err := closer.Close(); err != nil {
		return false, fmt.Errorf("state: has %q in %s: %w", key, s.path, err)
	}
	return true, nil
}

// Get returns a copy of key's value, which the caller may keep and modify,
// or nil and no error if the key is missing. An empty stored value is
// returned as a non-nil empty slice, as LevelDB does, so callers can tell
// it from a missing key.
func (s *Store) Get(key string) ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if err := s.readable("get", key); err != nil {
		return nil, err
	}
	v, err := getCopy(s.db, dataKeyString(key))
	if err != nil {
		return nil, fmt.Errorf("state: get %q in %s: %w", key, s.path, err)
	}
	return v, nil
}

// Set stores value under key without syncing: Kafka is the source of truth,
// and pebble's WAL keeps a crash consistent with the persisted offset.
// The caller may reuse value afterwards.
func (s *Store) Set(key string, value []byte) error { return s.write(key, value, false) }

// Delete removes key; deleting a missing key is not an error.
func (s *Store) Delete(key string) error { return s.write(key, nil, true) }

// write is Set, or Delete when del: both go to the recovery batch while there
// is one, else straight to pebble.
func (s *Store) write(key string, value []byte, del bool) error {
	op := "set"
	if del {
		op = "delete"
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return s.unavailable(op)
	}
	if s.batching.Load() {
		if batched, err := s.batchWrite(s.db, key, value, del); batched {
			return err
		}
	}
	var err error
	if del {
		err = s.db.Delete(dataKeyString(key), pebble.NoSync)
	} else {
		err = s.db.Set(dataKeyString(key), value, pebble.NoSync)
	}
	if err != nil {
		return fmt.Errorf("state: %s %q in %s: %w", op, key, s.path, err)
	}
	return nil
}

// GetOffset returns the last table offset applied to the store, or def if
// none has been stored. Unlike goka's LevelDB storage, offset 0 is a real
// offset here, not "unset".
func (s *Store) GetOffset(def int64) (int64, error) {
	if o := s.offset.Load(); o > noOffset {
		return o, nil
	}
	return def, nil
}

// SetOffset records the last table offset applied. goka calls it for every
// record, while recovering and after (a view for every changelog record, a
// processor on every changelog acknowledgement), so it only updates memory;
// a background ticker persists it once a second, and Close and
// MarkRecovered persist it too. Persisting on every call was a second pebble
// commit per record (3.4% of the service's CPU in the throughput profile).
// A persisted offset that lags the data is safe: after a crash the store
// replays a few records it already holds, which rewrites the same values;
// it is never ahead of the data, because it is read after the write it
// covers returned. Negative offsets are rejected: they would read back as
// "no offset".
func (s *Store) SetOffset(offset int64) error {
	if offset < 0 {
		return fmt.Errorf("state: set offset %d in %s: negative offset", offset, s.path)
	}
	s.offset.Store(offset)
	return nil
}

// MarkRecovered commits the writes batched during recovery with the
// offset and switches Set and Delete to direct writes. Calling it again is
// harmless.
func (s *Store) MarkRecovered() error {
	if err := s.endRecovery(); err != nil {
		return fmt.Errorf("state: mark recovered: %w", err)
	}
	s.recovered.Store(true)
	// Persist the offset of the last recovered record now rather than at the
	// next tick (a no-op if the batch commit already wrote it).
	if err := s.persistOffset(); err != nil {
		return fmt.Errorf("state: mark recovered: %w", err)
	}
	return nil
}

func (s *Store) endRecovery() error { return s.withDB("end recovery", s.stopBatching) }

func (s *Store) persistOffset() error { return s.withDB("persist offset", s.persistOffsetLocked) }

// withDB runs f on the open database with mu held for reading, so that Close
// waits for it; op names it when the store is not open.
func (s *Store) withDB(op string, f func(db *pebble.DB) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return s.unavailable(op)
	}
	return f(s.db)
}

// persistOffsetLocked writes the current offset if it differs from the one
// on disk. While recovering it commits the pending batch with it, so the
// offset never lands before the data it describes. Callers hold mu (either
// mode).
func (s *Store) persistOffsetLocked(db *pebble.DB) error {
	if s.batching.Load() {
		s.pendMu.Lock()
		defer s.pendMu.Unlock()
		if s.pending != nil {
			return s.commitPendingLocked(db)
		}
	}
	if err := s.lostErr(); err != nil {
		return err
	}
	s.persistMu.Lock()
	defer s.persistMu.Unlock()
	cur := s.offset.Load()
	if cur <= noOffset || cur == s.persisted {
		return nil
	}
	var buf [8]byte
	binary.BigEndian.PutUint64(buf[:], uint64(cur))
	if err := db.Set([]byte(offsetKey), buf[:], pebble.NoSync); err != nil {
		return fmt.Errorf("state: persist offset %d in %s: %w", cur, s.path, err)
	}
	s.persisted = cur
	return nil
}

// flushPeriodically persists the offset every flushEvery until the store is
// closed: while recovering it commits the recovery batch with it, so a crash
// during a long recovery resumes near where it stopped instead of from the
// start and a slow trickle of records does not sit uncommitted; after
// recovery it is the only routine offset write (SetOffset stays in memory).
func (s *Store) flushPeriodically(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.flushEvery)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			if err := s.persistOffset(); err != nil {
				s.log.Warn("persisting offset failed", "error", err)
			}
		}
	}
}

// Iterator returns an iterator over a snapshot of all keys in order. Like
// LevelDB's, it starts before the first pair: call Next (or Seek) first.
func (s *Store) Iterator() (storage.Iterator, error) {
	return s.newIterator([]byte{dataPrefix}, []byte{dataEnd})
}

// IteratorWithRange returns an iterator over [start, limit). An empty limit
// means "every key with prefix start", which is what goka's LevelDB storage
// does (util.BytesPrefix) even though the interface comment says unbounded;
// a nil start with an empty limit therefore covers all keys. A limit at or
// below start gives an empty iterator.
func (s *Store) IteratorWithRange(start, limit []byte) (storage.Iterator, error) {
	lo := dataKey(start)
	var hi []byte
	if len(limit) > 0 {
		hi = dataKey(limit)
	} else {
		hi = prefixEnd(lo)
	}
	if bytes.Compare(hi, lo) < 0 {
		hi = lo
	}
	return s.newIterator(lo, hi)
}

// prefixEnd returns the smallest key greater than every key with the given
// prefix. prefix starts with dataPrefix (< 0xff), so one always exists.
func prefixEnd(prefix []byte) []byte {
	end := bytes.Clone(prefix)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return []byte{dataEnd} // unreachable for data keys
}

func (s *Store) newIterator(lo, hi []byte) (storage.Iterator, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.db == nil {
		return nil, s.unavailable("iterate")
	}
	if err := s.flushPending(s.db); err != nil {
		return nil, fmt.Errorf("state: new iterator: %w", err)
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("state: new iterator in %s: %w", s.path, err)
	}
	i := &iterator{store: s, it: it}
	s.itersMu.Lock()
	s.iters[i] = struct{}{}
	s.itersMu.Unlock()
	return i, nil
}

// releaseIterators closes every live iterator. Callers hold mu for writing.
// The set is detached first so that iterator locks are never taken while
// holding itersMu (Release takes them in the other order).
func (s *Store) releaseIterators() {
	s.itersMu.Lock()
	live := s.iters
	s.iters = make(map[*iterator]struct{})
	s.itersMu.Unlock()
	for i := range live {
		i.forceClose()
	}
}

func (s *Store) forgetIterator(i *iterator) {
	s.itersMu.Lock()
	delete(s.iters, i)
	s.itersMu.Unlock()
}
