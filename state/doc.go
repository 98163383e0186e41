// Package state is the local table cache of the pipeline: a pebble/v2
// implementation of goka's storage.Storage, its storage.Builder, and the
// helpers that keep a cache from outliving the Kafka data it mirrors.
//
// goka keeps one Storage per table partition (group tables, joins and views)
// and rebuilds it from the compacted table topic, so the cache is disposable:
// Kafka is the source of truth. That decides most of the design:
//
//   - Writes use pebble.NoSync. After a crash the WAL holds a prefix of the
//     writes, so the persisted offset is never ahead of the data it describes
//     and replaying from offset+1 is idempotent.
//   - While a partition recovers, writes are collected in one pebble batch
//     and committed together with the offset (recovery.go): per-record
//     commits made a restore slower than LevelDB's. Reads commit the batch
//     first, so they still see every write that returned.
//   - SetOffset, which goka calls for every record, only updates memory; a
//     ticker (and Close) persists it. A lagging persisted offset only means
//     a few records are replayed after a crash.
//   - Sstables above L6 carry bloom filters, so a point read skips the L0
//     files that lack the key instead of reading a cold block from each.
//   - User keys live under the prefix 'd', metadata under "m/" (m/offset,
//     m/topic-id). Iterators are bounded to [d, e), so metadata never shows up
//     in iteration or Seek, and no user key can collide with it. goka's
//     LevelDB storage keeps its offset as the user key "__offset" instead.
//   - Iterators copy LevelDB's positioning rules, because goka's merge
//     iterator (storage.NewMultiIterator, used by View.Iterator) relies on
//     them: Seek positions on the found pair and the next Next moves past it.
//   - A cache can be stale (the broker was wiped, or the topic recreated).
//     Options.Validate lets the caller compare the cache with the broker's
//     topic ID and high-water mark when a partition opens; a stale cache is
//     wiped and rebuilt instead of silently serving old data. BeginRun,
//     EndRunClean and WipeDir cover the other case: processor caches that
//     ran ahead of Kafka because the process did not stop cleanly.
//
// Imports from this module: none (the README's package table, checked by imports_test.go).
package state
