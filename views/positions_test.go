package views

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// guards is a fake bucket store: the per-source guard of each bucket as "the store" holds it.
type guards struct {
	mu sync.Mutex
	m  map[string]map[string]int64
}

func (g *guards) get(key string) (map[string]int64, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.m[key], true
}

// fold stores key's guard at source/offset and reports it, as bucketStorage does: the store
// first, then the tracker.
func (g *guards) fold(p *positions, key, source string, offset int64) {
	g.mu.Lock()
	if g.m == nil {
		g.m = map[string]map[string]int64{}
	}
	if g.m[key] == nil {
		g.m[key] = map[string]int64{}
	}
	g.m[key][source] = offset
	guard := map[string]int64{}
	for k, v := range g.m[key] {
		guard[k] = v
	}
	g.mu.Unlock()
	p.bucketWritten(key, guard)
}

// record is a table record of a command at offset whose deltas go to buckets.
func record(t *testing.T, partition int32, offset int64, buckets ...string) *domain.Aggregate {
	t.Helper()
	agg := &domain.Aggregate{Position: offset}
	for _, b := range buckets {
		raw, err := codecs.EncodeDelta(analytics.Delta{Bucket: b, OpportunityID: "o", Version: 1,
			Values: map[string]int64{"n": 1}, Source: itoa(partition), Position: offset})
		if err != nil {
			t.Fatal(err)
		}
		agg.RecentDeltas = append(agg.RecentDeltas, domain.StoredDelta{Position: offset, Record: raw})
	}
	// A delta of an older command stays in the ring; it is not this record's.
	old, _ := codecs.EncodeDelta(analytics.Delta{Bucket: "F|x|2027-01-01|old", Values: map[string]int64{"n": 1},
		Source: itoa(partition), Position: offset - 1})
	agg.RecentDeltas = append([]domain.StoredDelta{{Position: offset - 1, Record: old}}, agg.RecentDeltas...)
	return agg
}

func itoa(p int32) string { return strconv.Itoa(int(p)) }

func reached(p *positions, pos Position) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reachedLocked(pos)
}

const (
	bucketA = "F|default|2027-01-31|alice"
	bucketB = "W|default|2027-02-01|bob"
)

func TestPositionReachedOnlyWhenTheDeltasAreFolded(t *testing.T) {
	g := &guards{}
	p := newPositions(g.get)
	pos := Position{Partition: 2, Offset: 10}
	if reached(p, pos) {
		t.Fatal("reached before the opportunity view showed anything")
	}
	p.noteRecord(2, record(t, 2, 10, bucketA, bucketB))
	if reached(p, pos) {
		t.Fatal("reached with both deltas still unfolded")
	}
	g.fold(p, bucketA, "2", 10)
	if reached(p, pos) {
		t.Fatal("reached with one delta still unfolded")
	}
	if !reached(p, Position{Partition: 2, Offset: 9}) {
		t.Fatal("an earlier position of the partition, with nothing pending below it, is not reached")
	}
	g.fold(p, bucketB, "2", 10)
	if !reached(p, pos) {
		t.Fatal("not reached after every delta was folded")
	}
	if reached(p, Position{Partition: 2, Offset: 11}) || reached(p, Position{Partition: 3, Offset: 0}) {
		t.Fatal("a later position, or one of another partition, counts as reached")
	}
}

func TestPositionFoldedBeforeTheViewShowsTheCommand(t *testing.T) {
	g := &guards{}
	p := newPositions(g.get)
	g.fold(p, bucketA, "0", 5) // the aggregator was first
	p.noteRecord(0, record(t, 0, 5, bucketA))
	if !reached(p, Position{Partition: 0, Offset: 5}) {
		t.Fatal("a command whose delta was already folded is not reached")
	}
	// An older guard of another partition does not count.
	g.fold(p, bucketB, "1", 99)
	p.noteRecord(0, record(t, 0, 6, bucketB))
	if reached(p, Position{Partition: 0, Offset: 6}) {
		t.Fatal("another partition's guard resolved this partition's delta")
	}
	g.fold(p, bucketB, "0", 6)
	if !reached(p, Position{Partition: 0, Offset: 6}) {
		t.Fatal("not reached after the fold")
	}
}

func TestPositionQueueDrainsInOffsetOrder(t *testing.T) {
	g := &guards{}
	p := newPositions(g.get)
	p.noteRecord(1, record(t, 1, 3, bucketA))
	p.noteRecord(1, record(t, 1, 4, bucketB))
	g.fold(p, bucketB, "1", 4) // the later command's delta lands first
	if reached(p, Position{Partition: 1, Offset: 4}) {
		t.Fatal("reached while an earlier command of the partition is unfolded")
	}
	g.fold(p, bucketA, "1", 3)
	if !reached(p, Position{Partition: 1, Offset: 4}) {
		t.Fatal("not reached once both were folded")
	}
	if len(p.queue) != 0 || len(p.byBucket) != 0 {
		t.Fatalf("pending left behind: %d queues, %d buckets", len(p.queue), len(p.byBucket))
	}
}

func TestPositionDeletedBucketResolves(t *testing.T) {
	g := &guards{}
	p := newPositions(g.get)
	p.noteRecord(0, record(t, 0, 1, bucketA))
	p.bucketWritten(bucketA, nil)
	if !reached(p, Position{Partition: 0, Offset: 1}) {
		t.Fatal("a deleted bucket keeps its command pending")
	}
}

func TestPositionFirstOffsetOfAnEmptyBucket(t *testing.T) {
	p := newPositions((&guards{}).get) // every bucket absent: no guard at all
	p.noteRecord(0, record(t, 0, 0, bucketA))
	if reached(p, Position{Partition: 0, Offset: 0}) {
		t.Fatal("offset 0 counts as folded into a bucket that does not exist yet")
	}
}

func TestPositionSeedAndRefusal(t *testing.T) {
	p := newPositions((&guards{}).get)
	p.seed(4, 100) // a store that opened with records up to offset 100
	if !reached(p, Position{Partition: 4, Offset: 100}) || reached(p, Position{Partition: 4, Offset: 101}) {
		t.Fatal("seed does not set the partition's position")
	}
	p.seed(4, 50)                                     // a lower seed (another store of the partition) does not go back
	p.noteRecord(4, &domain.Aggregate{Position: 101}) // a refusal: no deltas
	if !reached(p, Position{Partition: 4, Offset: 101}) {
		t.Fatal("a command without deltas is not reached once the view shows it")
	}
}

func TestWaitPositions(t *testing.T) {
	g := &guards{}
	p := newPositions(g.get)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := p.wait(ctx, []Position{{Partition: 0, Offset: 1}})
	cancel()
	if !errors.Is(err, ErrPositionNotReached) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait past its deadline = %v, want ErrPositionNotReached and the deadline", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- p.wait(context.Background(), []Position{{Partition: 0, Offset: 1}, {Partition: 1, Offset: 7}})
	}()
	p.noteRecord(0, record(t, 0, 1, bucketA))
	p.noteRecord(1, &domain.Aggregate{Position: 7})
	select {
	case err := <-done:
		t.Fatalf("wait returned %v with a delta unfolded", err)
	case <-time.After(20 * time.Millisecond):
	}
	g.fold(p, bucketA, "0", 1)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return once both positions were reached")
	}
}

func TestPositionTokens(t *testing.T) {
	ps, err := ParsePositions(" 3:1042, ,0:0")
	if err != nil || len(ps) != 2 || ps[0] != (Position{3, 1042}) || ps[1] != (Position{0, 0}) {
		t.Fatalf("ParsePositions = %v, %v", ps, err)
	}
	if got := FormatPositions(ps); got != "3:1042,0:0" {
		t.Fatalf("FormatPositions = %q", got)
	}
	for _, bad := range []string{"3", "a:1", "1:b", "-1:3", "1:-3", "1:2:3", "99999999999:1"} {
		if _, err := ParsePositions(bad); !errors.Is(err, ErrBadPosition) {
			t.Errorf("ParsePositions(%q) = %v, want ErrBadPosition", bad, err)
		}
	}
}

func TestPositionTouchedScope(t *testing.T) {
	g := &guards{}
	p := newPositions(g.get)
	if _, ok := p.drainTouched(); ok {
		t.Fatal("something touched before any command")
	}
	p.noteRecord(0, record(t, 0, 1, bucketA))
	if _, ok := p.drainTouched(); ok {
		t.Fatal("a command counts as touching the analytics before its delta is folded")
	}
	g.fold(p, bucketA, "0", 1)
	p.noteRecord(1, record(t, 1, 8, bucketB))
	g.fold(p, bucketB, "1", 8)
	sc, ok := p.drainTouched()
	if !ok {
		t.Fatal("nothing touched after two folded commands")
	}
	if got := setKeys(sc.owners); len(got) != 2 || got[0] != "alice" || got[1] != "bob" {
		t.Fatalf("owners = %v", got)
	}
	if sc.from.String() != "2027-01-31" || sc.to.String() != "2027-02-01" || sc.reached[0] != 1 || sc.reached[1] != 8 {
		t.Fatalf("scope = %v..%v %v", sc.from, sc.to, sc.reached)
	}
	if _, ok := p.drainTouched(); ok {
		t.Fatal("drain does not reset")
	}
}

func TestTouchedScopeAsAStreamEvent(t *testing.T) {
	var sc touchedScope
	sc.merge(&touchedScope{pipelines: map[string]struct{}{"p2": {}, "p1": {}}, owners: map[string]struct{}{"o": {}},
		from: 10, to: 12}, Position{Partition: 3, Offset: 40})
	sc.merge(&touchedScope{pipelines: map[string]struct{}{"p1": {}}, owners: map[string]struct{}{"a": {}},
		from: 5, to: 11}, Position{Partition: 0, Offset: 7})
	c := sc.change()
	if strings.Join(c.PipelineIDs, ",") != "p1,p2" || strings.Join(c.OwnerIDs, ",") != "a,o" || c.From != 5 || c.To != 12 ||
		c.Position != "0:7,3:40" {
		t.Fatalf("change = %+v", c)
	}
}

// A delta folded before its command showed, whose guard is not among the recent writes (the
// aggregator far ahead, or a restart), is found by the stale check asking the bucket store.
func TestPositionStaleCheckAsksTheStore(t *testing.T) {
	g := &guards{m: map[string]map[string]int64{bucketA: {"0": 5}}} // in the store, never reported
	p := newPositions(g.get)
	p.noteRecord(0, record(t, 0, 5, bucketA))
	if reached(p, Position{Partition: 0, Offset: 5}) {
		t.Fatal("reached without the store being asked")
	}
	p.checkStale(time.Now()) // too young: not asked yet
	if reached(p, Position{Partition: 0, Offset: 5}) {
		t.Fatal("a delta younger than staleAfter was checked")
	}
	p.checkStale(time.Now().Add(staleAfter + time.Millisecond))
	if !reached(p, Position{Partition: 0, Offset: 5}) {
		t.Fatal("the stale check did not resolve a folded delta")
	}
	// A bucket the store does not hold yet is not folded (it once counted as deleted, and a
	// write answered before the analytics had it).
	p.noteRecord(0, record(t, 0, 6, bucketB))
	p.checkStale(time.Now().Add(staleAfter + time.Millisecond))
	if reached(p, Position{Partition: 0, Offset: 6}) {
		t.Fatal("the stale check resolved a delta whose bucket is not in the store")
	}
}

// A waiter is woken when its own position is reached, not by every advance of others.
func TestWaitersWokenByTheirPosition(t *testing.T) {
	p := newPositions((&guards{}).get)
	done := make(chan error, 1)
	go func() { done <- p.wait(context.Background(), []Position{{Partition: 1, Offset: 10}}) }()
	for off := int64(0); off < 10; off++ {
		p.noteRecord(1, &domain.Aggregate{Position: off})
		p.noteRecord(2, &domain.Aggregate{Position: off + 100})
	}
	select {
	case err := <-done:
		t.Fatalf("woken at offset 9: %v", err)
	case <-time.After(20 * time.Millisecond):
	}
	p.mu.Lock()
	n := len(p.waiters[1])
	p.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d waiters on partition 1, want 1", n)
	}
	p.noteRecord(1, &domain.Aggregate{Position: 10})
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("not woken at its position")
	}
	// A wait that gives up leaves no waiter behind.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := p.wait(ctx, []Position{{Partition: 3, Offset: 1}}); !errors.Is(err, ErrPositionNotReached) {
		t.Fatal(err)
	}
	if len(p.waiters[3]) != 0 {
		t.Fatal("a cancelled wait left its waiter")
	}
}
