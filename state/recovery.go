package state

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// Batched writes while recovering.
//
// goka rebuilds a partition by calling Set (or Delete) and SetOffset once
// per changelog record. Committing each of those to pebble on its own costs
// a trip through the commit pipeline and a WAL record per record, which made
// recovery several times slower than goka's LevelDB storage. So while the
// store is not yet recovered, writes go into one pending pebble batch that
// is committed (NoSync) as a whole:
//
//   - when it reaches Options.RecoveryBatchSize bytes,
//   - on the periodic offset flush (flushEvery),
//   - before a read (Get, Has, a new iterator), so readers see every write
//     that returned before they started,
//   - on MarkRecovered, which then switches to direct writes, and on Close.
//
// Each commit carries the offset key in the same batch as the data. goka
// calls SetOffset(n) only after the write of record n returned, so the
// offset read at commit time never describes data outside the batch or the
// DB: after a crash the persisted offset is never ahead of the data, and
// replaying from it is idempotent, exactly as with per-record commits.
// Pebble's WAL stays on; a crash loses at most the uncommitted batch, whose
// offset was not persisted either.

// DefaultRecoveryBatchSize is the size at which the pending recovery batch
// is committed when Options.RecoveryBatchSize is zero, measured as pebble
// measures a batch's memtable footprint (about 200 bytes of skiplist per
// entry on top of key and value). Past a few hundred KiB a larger batch
// saves nothing more on commits, and it wastes memtable space: a batch
// that does not fit in the rest of the memtable rotates it, so with 4 MiB
// memtables 1 MiB batches caused 25% more flushes than 512 KiB ones.
const DefaultRecoveryBatchSize = 512 << 10

// recoveryBatchSize returns the commit threshold of the recovery batch, or
// 0 when batching is disabled. It is capped at a quarter of the memtable:
// pebble commits a batch of half the memtable or more as a flushable of
// its own, one extra L0 file per batch.
func (s *Store) recoveryBatchSize() int {
	n := s.opts.RecoveryBatchSize
	switch {
	case n < 0:
		return 0
	case n == 0:
		n = DefaultRecoveryBatchSize
	}
	return min(n, int(s.memTableSize()/4))
}

// startBatching gives a recovering store its pending batch. Callers hold mu
// for writing.
func (s *Store) startBatching(db *pebble.DB) {
	size := s.recoveryBatchSize()
	if size == 0 {
		return
	}
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	// Retain up to twice the threshold so the buffer is reused across
	// commits instead of regrown from 1 KB each time.
	s.pending = db.NewBatch(pebble.WithMaxRetainedSizeBytes(2 * size))
	s.batchSize = size
	s.batching.Store(true)
}

// stopBatching commits the pending batch (data and offset) and switches the
// store to direct writes. Callers hold mu (either mode).
func (s *Store) stopBatching(db *pebble.DB) error {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	if s.pending == nil {
		return nil
	}
	err := s.commitPendingLocked(db)
	// Stop batching even if the commit failed: the failure is sticky
	// (s.lost), so the offset can no longer be persisted past it.
	if cerr := s.pending.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("state: release recovery batch in %s: %w", s.path, cerr)
	}
	s.pending = nil
	s.batching.Store(false)
	return err
}

// batchWrite adds the user key's change to the pending batch: its deletion
// when del, else its pair with value. It reports false if the store is not
// batching (any more), in which case the caller writes directly. Callers
// hold mu for reading.
func (s *Store) batchWrite(db *pebble.DB, key string, value []byte, del bool) (bool, error) {
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	if s.pending == nil {
		return false, nil
	}
	if err := s.lostErr(); err != nil {
		return true, err
	}
	// Deferred so the prefixed key is built in the batch's buffer, without
	// an allocation.
	var (
		op   *pebble.DeferredBatchOp
		what = "set"
	)
	if del {
		op, what = s.pending.DeleteDeferred(1+len(key)), "delete"
	} else {
		op = s.pending.SetDeferred(1+len(key), len(value))
		copy(op.Value, value)
	}
	op.Key[0] = dataPrefix
	copy(op.Key[1:], key)
	if err := op.Finish(); err != nil {
		return true, fmt.Errorf("state: %s %q in recovery batch of %s: %w", what, key, s.path, err)
	}
	return true, s.maybeCommitLocked(db)
}

// memTableEntryOverhead approximates what a pebble memtable spends per
// entry beyond its key and value (a skiplist node of maximal height plus
// the internal key trailer; pebble's memTableEntrySize). Pebble commits a
// batch whose entries would take half the memtable or more as a separate
// flushable, so the threshold is measured the way pebble measures.
const memTableEntryOverhead = 200

// pendingSize is the memtable footprint of the pending batch, as pebble
// estimates it. Callers hold pendMu.
func (s *Store) pendingSize() int {
	return s.pending.Len() + int(s.pending.Count())*memTableEntryOverhead
}

func (s *Store) maybeCommitLocked(db *pebble.DB) error {
	if s.pendingSize() < s.batchSize {
		return nil
	}
	return s.commitPendingLocked(db)
}

// flushPending commits the pending batch, if there is one and it holds
// writes, so that a read sees them. It costs one atomic load once the
// store is recovered. Callers hold mu (either mode).
func (s *Store) flushPending(db *pebble.DB) error {
	if !s.batching.Load() {
		return nil
	}
	s.pendMu.Lock()
	defer s.pendMu.Unlock()
	if s.pending == nil || s.pending.Empty() {
		return nil
	}
	return s.commitPendingLocked(db)
}

// commitPendingLocked commits the pending batch together with the current
// offset and resets it for reuse. The offset is read here, after every
// write in the batch returned, so it never describes data the batch lacks.
// A failed commit loses the batch's writes; it is recorded in s.lost so that
// no later commit or offset write can persist an offset past them (the
// store keeps failing writes, and goka restarts the partition). Callers
// hold pendMu and mu (either mode).
func (s *Store) commitPendingLocked(db *pebble.DB) error {
	if err := s.lostErr(); err != nil {
		return err
	}
	s.persistMu.Lock()
	defer s.persistMu.Unlock()
	cur := s.offset.Load()
	writeOffset := cur > noOffset && cur != s.persisted
	if s.pending.Empty() && !writeOffset {
		return nil
	}
	if writeOffset {
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(cur))
		if err := s.pending.Set([]byte(offsetKey), buf[:], nil); err != nil {
			return s.loseBatch(fmt.Errorf("state: add offset %d to recovery batch of %s: %w", cur, s.path, err))
		}
	}
	if err := s.pending.Commit(pebble.NoSync); err != nil {
		return s.loseBatch(fmt.Errorf("state: commit recovery batch of %s: %w", s.path, err))
	}
	if writeOffset {
		s.persisted = cur
	}
	s.pending.Reset()
	return nil
}

// loseBatch records that the pending batch's writes are lost and returns
// err. Callers hold pendMu.
func (s *Store) loseBatch(err error) error {
	s.lost.Store(&err)
	s.pending.Reset()
	return err
}

// lostErr returns the sticky error of a failed recovery commit, if any.
func (s *Store) lostErr() error {
	if p := s.lost.Load(); p != nil {
		return fmt.Errorf("state: writes to %s refused after a failed recovery commit: %w", s.path, *p)
	}
	return nil
}
