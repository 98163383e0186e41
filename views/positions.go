package views

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Position is a command record's place in the commands topic: the partition and the offset.
// It is what read-your-writes is measured in (the Crm-Position and Crm-Min-Position headers),
// in the spirit of Kafka Streams' Position and PositionBound for interactive queries: a
// position names the input, so it means the same on every instance of the consumer group,
// and a producer that wrote a command straight to Kafka knows it from its acknowledgement.
type Position struct {
	Partition int32
	Offset    int64
}

// String is the token form, "<partition>:<offset>" (for example "3:1042").
func (p Position) String() string {
	return strconv.FormatInt(int64(p.Partition), 10) + ":" + strconv.FormatInt(p.Offset, 10)
}

// ErrBadPosition is what ParsePositions wraps for a token it cannot read, so the HTTP layer
// answers 400 naming the header.
var ErrBadPosition = errors.New("invalid position token")

// maxPositionTokens bounds one header's list: a dashboard names at most one token per
// partition it waits for, and a bound keeps a hostile header from costing more than a parse.
const maxPositionTokens = 1024

// ParsePositions reads a comma-separated list of position tokens, the Crm-Min-Position header
// and the position of an analytics change on the stream. Blank items are skipped.
func ParsePositions(s string) ([]Position, error) {
	var out []Position
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if len(out) == maxPositionTokens {
			return nil, fmt.Errorf("%w: more than %d tokens", ErrBadPosition, maxPositionTokens)
		}
		ps, os, ok := strings.Cut(item, ":")
		part, err1 := strconv.ParseInt(ps, 10, 32)
		off, err2 := strconv.ParseInt(os, 10, 64)
		if !ok || err1 != nil || err2 != nil || part < 0 || off < 0 {
			return nil, fmt.Errorf("%w: %q is not <partition>:<offset>", ErrBadPosition, item)
		}
		out = append(out, Position{Partition: int32(part), Offset: off})
	}
	return out, nil
}

// FormatPositions is the comma list ParsePositions reads.
func FormatPositions(ps []Position) string {
	var b strings.Builder
	for i, p := range ps {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// ErrPositionNotReached is what WaitPositions returns when its context ends first.
var ErrPositionNotReached = errors.New("position not reached")

// positions knows, per commands partition, up to which offset this instance reflects the
// commands: in the opportunity view (the table record of a command carries its offset, and
// one partition's records arrive in order) and in the analytics read model (the command's
// deltas, which the table record lists, have been folded into their buckets as this
// instance's bucket view shows). A position is reached when both are true for it.
//
// The two views run on their own goroutines and either may be first: a delta can be folded
// before the opportunity view shows its command, or after. Both sides take mu, and a bucket
// write is visible in the bucket store before it is reported here, so each pending delta is
// either found applied when its command is noted or resolved by the bucket write that
// applies it. The pending set holds only deltas not yet folded (the aggregator's lag), so it
// stays small; nothing is kept per bucket.
type positions struct {
	// applied reads a bucket's per-source guard from the local bucket store; ok is false
	// while the store of the bucket's partition is not open (it is then resolved by the
	// store's load). It costs a pebble read and a bucket decode, so it is asked only while
	// the views recover and for the few deltas that stay pending past staleAfter; otherwise
	// the guards of recent bucket writes (recent) answer.
	applied func(bucket string) (map[string]int64, bool)
	// live reports whether the views have recovered (nil: always).
	live func() bool

	mu       sync.Mutex
	opp      map[int32]int64 // highest command offset the opportunity view shows, per partition
	queue    map[int32][]*pendingCommand
	byBucket map[string][]*pendingCommand
	waiters  map[int32][]*posWaiter // per partition, by offset
	recent   recentGuards
	touched  touchedScope // what the reflected commands changed since the last drain
}

// posWaiter is one wait for a position, woken (ch closed) only once it is reached: waking
// every waiter on every advance cost thousands of wake-ups per command at 2,000 commands/s.
type posWaiter struct {
	offset int64
	ch     chan struct{}
}

// recentGuards keeps the guards of the last maxRecentGuards bucket writes, for a command whose
// table record the opportunity view shows after its deltas were folded (the aggregator ahead
// of the view). A guard that left it is found by the stale check instead.
type recentGuards struct {
	m     map[string]map[string]int64
	order []string
	next  int
}

const maxRecentGuards = 1 << 16

func (r *recentGuards) put(key string, guard map[string]int64) {
	if r.m == nil {
		r.m = make(map[string]map[string]int64, maxRecentGuards)
		r.order = make([]string, maxRecentGuards)
	}
	if _, ok := r.m[key]; !ok {
		if old := r.order[r.next]; old != "" {
			delete(r.m, old)
		}
		r.order[r.next] = key
		r.next = (r.next + 1) % maxRecentGuards
	}
	r.m[key] = guard
}

// staleAfter is how long a delta may stay pending before the bucket store itself is asked.
const staleAfter = 200 * time.Millisecond

// pendingCommand is one command whose deltas are not all in the bucket view yet.
type pendingCommand struct {
	pos     Position
	source  string // pos.Partition as the deltas' Source
	buckets map[string]struct{}
	scope   touchedScope
	noted   time.Time
}

func newPositions(applied func(string) (map[string]int64, bool)) *positions {
	return &positions{
		applied:  applied,
		opp:      map[int32]int64{},
		queue:    map[int32][]*pendingCommand{},
		byBucket: map[string][]*pendingCommand{},
		waiters:  map[int32][]*posWaiter{},
	}
}

// seed raises a partition's opportunity offset to a record's that a store already held when
// it opened (a restart that kept the local cache replays no old record to say so).
func (p *positions) seed(partition int32, offset int64) {
	if offset < 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.opp[partition]; !ok || offset > cur {
		p.opp[partition] = offset
		p.release(partition)
	}
}

// noteRecord takes a table record of partition as the opportunity view stores it: its
// command's offset and the deltas that command sent (those of RecentDeltas at that offset).
func (p *positions) noteRecord(partition int32, agg *domain.Aggregate) {
	offset := agg.Position
	var buckets []string
	for _, sd := range agg.RecentDeltas {
		if sd.Position != offset {
			continue
		}
		d, err := codecs.DecodeDelta(sd.Record)
		if err != nil {
			continue // the aggregator parks it in the DLQ; it will never be folded
		}
		buckets = append(buckets, d.Bucket)
	}
	source := strconv.FormatInt(int64(partition), 10)
	// A replay of the table at start: most deltas were folded long ago, so the bucket store
	// is asked, before mu is taken (a bucket write holds its store's lock while it reports
	// here: the other order would deadlock). A fold between this read and the check below
	// is in recent by then.
	var stored []map[string]int64
	var storedOK []bool
	if p.live != nil && !p.live() {
		stored, storedOK = make([]map[string]int64, len(buckets)), make([]bool, len(buckets))
		for i, b := range buckets {
			stored[i], storedOK[i] = p.applied(b)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur, ok := p.opp[partition]; !ok || offset > cur {
		p.opp[partition] = offset
	}
	pc := &pendingCommand{pos: Position{Partition: partition, Offset: offset}, source: source, noted: time.Now()}
	for i, b := range buckets {
		pc.scope.add(b)
		g, ok := p.recent.m[b]
		if !ok && stored != nil {
			g, ok = stored[i], storedOK[i]
		}
		if ok {
			if last, folded := g[source]; folded && last >= offset {
				continue
			}
		}
		if pc.buckets == nil {
			pc.buckets = map[string]struct{}{}
		}
		pc.buckets[b] = struct{}{}
	}
	if len(pc.buckets) == 0 {
		p.touched.merge(&pc.scope, pc.pos)
	} else {
		p.queue[partition] = append(p.queue[partition], pc)
		for b := range pc.buckets {
			p.byBucket[b] = append(p.byBucket[b], pc)
		}
	}
	p.release(partition)
}

// bucketWritten takes a bucket as the bucket view just stored it (or loaded it at open) and
// resolves the pending deltas its guard shows folded; a nil guard (a deletion) resolves all.
func (p *positions) bucketWritten(key string, guard map[string]int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.recent.put(key, guard)
	p.resolveLocked(key, guard)
}

// resolveLocked resolves the pending deltas of key that guard shows folded; mu is held.
func (p *positions) resolveLocked(key string, guard map[string]int64) {
	waiting := p.byBucket[key]
	if len(waiting) == 0 {
		return
	}
	kept := waiting[:0]
	resolved := false
	for _, pc := range waiting {
		// A bucket without a guard is a deleted one (or one only unguarded deltas of a
		// writer before schema v2 built): nothing later will say more, so it resolves.
		if last, ok := guard[pc.source]; guard == nil || ok && last >= pc.pos.Offset {
			delete(pc.buckets, key)
			if len(pc.buckets) == 0 {
				resolved = true
			}
			continue
		}
		kept = append(kept, pc)
	}
	if len(kept) == 0 {
		delete(p.byBucket, key)
	} else {
		p.byBucket[key] = kept
	}
	if !resolved {
		return
	}
	// Pop the partitions' resolved heads: a position is reached only when every command at
	// or below it is, so the queue drains in offset order.
	for part, q := range p.queue {
		i := 0
		for i < len(q) && len(q[i].buckets) == 0 {
			p.touched.merge(&q[i].scope, q[i].pos)
			i++
		}
		if i == 0 {
			continue
		}
		if i == len(q) {
			delete(p.queue, part)
		} else {
			p.queue[part] = append(q[:0:0], q[i:]...)
		}
		p.release(part)
	}
}

// checkStale asks the bucket store about the deltas pending for longer than staleAfter (at
// most a batch a call, without holding mu while it reads): a delta whose fold the view
// learned of before its command, with the guard gone from recent, is resolved this way.
func (p *positions) checkStale(now time.Time) {
	p.mu.Lock()
	var keys []string
	seen := map[string]bool{}
	for _, q := range p.queue {
		for _, pc := range q {
			if now.Sub(pc.noted) < staleAfter {
				break // queues are in the order the records came
			}
			for b := range pc.buckets {
				if !seen[b] && len(keys) < 4096 {
					seen[b] = true
					keys = append(keys, b)
				}
			}
		}
	}
	p.mu.Unlock()
	for _, k := range keys {
		// An absent bucket (nil guard) is one not folded yet, not a deletion: only a
		// bucket the store holds can resolve here.
		if g, ok := p.applied(k); ok && g != nil {
			p.mu.Lock()
			p.resolveLocked(k, g)
			p.mu.Unlock()
		}
	}
}

// reachedNow reports whether pos is reflected now.
func (p *positions) reachedNow(pos Position) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reachedLocked(pos)
}

// reachedLocked reports whether pos is reflected by the opportunity view and the analytics.
func (p *positions) reachedLocked(pos Position) bool {
	cur, ok := p.opp[pos.Partition]
	if !ok || cur < pos.Offset {
		return false
	}
	q := p.queue[pos.Partition]
	return len(q) == 0 || q[0].pos.Offset > pos.Offset
}

// frontierLocked is the highest offset of partition reached: the opportunity view's, below
// the first command still pending (-1: nothing).
func (p *positions) frontierLocked(partition int32) int64 {
	cur, ok := p.opp[partition]
	if !ok {
		return -1
	}
	if q := p.queue[partition]; len(q) > 0 {
		cur = min(cur, q[0].pos.Offset-1)
	}
	return cur
}

// release wakes the waiters of partition whose position is now reached; mu is held.
func (p *positions) release(partition int32) {
	ws := p.waiters[partition]
	if len(ws) == 0 {
		return
	}
	f := p.frontierLocked(partition)
	i := 0
	for i < len(ws) && ws[i].offset <= f {
		close(ws[i].ch)
		i++
	}
	if i > 0 {
		p.waiters[partition] = append(ws[:0:0], ws[i:]...)
	}
}

// wait blocks until every position in ps is reached, or ctx ends (then an error wrapping
// ErrPositionNotReached names the first one missing).
func (p *positions) wait(ctx context.Context, ps []Position) error {
	for _, pos := range ps {
		p.mu.Lock()
		if p.reachedLocked(pos) {
			p.mu.Unlock()
			continue
		}
		w := &posWaiter{offset: pos.Offset, ch: make(chan struct{})}
		ws := p.waiters[pos.Partition]
		i, _ := slices.BinarySearchFunc(ws, pos.Offset, func(a *posWaiter, off int64) int { return cmp.Compare(a.offset, off+1) })
		p.waiters[pos.Partition] = slices.Insert(ws, i, w)
		p.mu.Unlock()
		select {
		case <-w.ch:
		case <-ctx.Done():
			p.mu.Lock()
			if i := slices.Index(p.waiters[pos.Partition], w); i >= 0 {
				p.waiters[pos.Partition] = slices.Delete(p.waiters[pos.Partition], i, i+1)
			}
			p.mu.Unlock()
			return fmt.Errorf("%w: %s (%w)", ErrPositionNotReached, pos, ctx.Err())
		}
	}
	return nil
}

// drainTouched takes what the commands reflected since the last call changed, for the
// stream's analytics events; false when nothing did.
func (p *positions) drainTouched() (touchedScope, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.touched.empty() {
		return touchedScope{}, false
	}
	t := p.touched
	p.touched = touchedScope{}
	return t, true
}

// analyticsChangeEvery is how often the live stream says which analytics changed: every
// command's reflection would be thousands of events a second for every dashboard; one event
// per interval names the union of what changed (pipelines, owners, the span of close dates)
// and the positions that reflect it.
const analyticsChangeEvery = 50 * time.Millisecond

// publishAnalyticsChanges puts what the reflected commands changed on the feed, one event
// per analyticsChangeEvery at most, until ctx ends; each tick also has the bucket store
// checked for deltas pending too long (checkStale).
func (s *Service) publishAnalyticsChanges(ctx context.Context) {
	t := time.NewTicker(analyticsChangeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.pos.checkStale(time.Now())
		if sc, ok := s.pos.drainTouched(); ok && s.feed != nil && s.feed.Live() {
			s.feed.PublishAnalytics(sc.change())
		}
	}
}

// change is the scope as the stream's analytics event.
func (t *touchedScope) change() AnalyticsChange {
	parts := make([]int32, 0, len(t.reached))
	for p := range t.reached {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	ps := make([]Position, len(parts))
	for i, p := range parts {
		ps[i] = Position{Partition: p, Offset: t.reached[p]}
	}
	return AnalyticsChange{PipelineIDs: setKeys(t.pipelines), OwnerIDs: setKeys(t.owners), From: t.from, To: t.to,
		Position: FormatPositions(ps)}
}

// touchedScope accumulates what reflected commands changed in the analytics: pipelines,
// owners, the span of days, and the highest reflected position per partition.
type touchedScope struct {
	pipelines map[string]struct{}
	owners    map[string]struct{}
	from, to  domain.Date // meaningful when pipelines is not empty
	reached   map[int32]int64
}

func (t *touchedScope) empty() bool { return len(t.pipelines) == 0 }

// add takes one bucket key's scope.
func (t *touchedScope) add(bucket string) {
	sc, ok := analytics.ScopeOf(bucket)
	if !ok {
		return
	}
	t.addScope([]string{sc.PipelineID}, []string{sc.OwnerID}, sc.Day, sc.Day)
}

func (t *touchedScope) addScope(pipelines, owners []string, from, to domain.Date) {
	if t.pipelines == nil {
		t.pipelines, t.owners = map[string]struct{}{}, map[string]struct{}{}
		t.from, t.to = from, to
	}
	for _, p := range pipelines {
		t.pipelines[p] = struct{}{}
	}
	for _, o := range owners {
		t.owners[o] = struct{}{}
	}
	t.from, t.to = min(t.from, from), max(t.to, to)
}

// merge adds o, one reflected command's scope, at pos.
func (t *touchedScope) merge(o *touchedScope, pos Position) {
	if o.empty() {
		return
	}
	t.addScope(setKeys(o.pipelines), setKeys(o.owners), o.from, o.to)
	if t.reached == nil {
		t.reached = map[int32]int64{}
	}
	if cur, ok := t.reached[pos.Partition]; !ok || pos.Offset > cur {
		t.reached[pos.Partition] = pos.Offset
	}
}

// setKeys lists a set's members, sorted.
func setKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
