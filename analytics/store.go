package analytics

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"sync"
	"unique"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Store is the query side's in-memory read model of every bucket; safe for concurrent use
// (RWMutex: queries share a read lock, Put takes the write lock briefly).
//
// Put parses a bucket once (key and value names) into a typed record and files it in an index
// per family and pipeline: a slice of days sorted by date, each holding its owners' records by
// value in one slice sorted by owner. A period query binary-searches the first day and walks
// the days in range, so its cost is the number of buckets in the period (or the number of
// days, with an owner filter), never a scan of the whole store or a re-parse of names; and
// since a record holds its figures inline (forecast money of its first currency included),
// summing a bucket walks memory in order instead of chasing pointers. Owner ids are interned
// so grouping by owner indexes a slice instead of hashing strings, and a record carries only
// the owner's index.
//
// The Store keeps no string of the bucket it is given: a decoded bucket's strings share one
// decoder arena with its guard map (codecs.DecodeBucket), and a single retained substring
// would pin all of it for as long as the bucket is unchanged. Currencies of forecast buckets
// are kept as curIDs, owners and pipelines as copies made once, and the free-text labels of
// the other families through intern (unique handles), so a bucket is garbage once Put returns.
type Store struct {
	mu         sync.RWMutex
	n          int // buckets held
	fc         family[fcData]
	wl         family[wlData]
	ev         family[evData]
	ownerIdx   map[string]int32 // interned owner ids (never shrinks: owners are few)
	ownerNames []string
}

// family is the index of one bucket family: per pipeline, its days in order.
type family[T any] struct {
	pipelines map[string]*dayIndex[T]
}

// dayIndex is one family and pipeline's buckets ordered by day.
type dayIndex[T any] struct {
	days []*dayNode[T]
}

// dayNode holds the buckets of one day (one per owner, sorted by owner index, so an owner's
// bucket is a binary search away without a map per day) and the day's group keys, computed
// once.
type dayNode[T any] struct {
	day            domain.Date
	month, quarter string
	recs           []rec[T]
}

// rec is one parsed bucket of a family.
type rec[T any] struct {
	ownerIdx int32
	d        T
}

// find returns the position of owner's record in n.recs, or where it belongs.
func (n *dayNode[T]) find(owner int32) (int, bool) {
	i := sort.Search(len(n.recs), func(i int) bool { return n.recs[i].ownerIdx >= owner })
	return i, i < len(n.recs) && n.recs[i].ownerIdx == owner
}

// curID is a currency code of three capital letters as a number: 1 + its base-26 value. 0 is
// no currency, and ids sort like their codes. Forecast money is filed by curID so that summing
// a bucket compares integers, not strings, and keeps no string of the bucket alive.
type curID uint16

// curIDOf reads a currency segment; ok is false for anything but three capital letters.
func curIDOf(s string) (curID, bool) {
	if !isCurrencySegment(s) {
		return 0, false
	}
	return 1 + (curID(s[0]-'A')*26+curID(s[1]-'A'))*26 + curID(s[2]-'A'), true
}

// String is the currency code.
func (c curID) String() string {
	if c == 0 {
		return ""
	}
	v := c - 1
	return string([]byte{byte('A' + v/676), byte('A' + v/26%26), byte('A' + v%26)})
}

// intern returns a canonical copy of s, shared by every bucket that names the same label,
// stage or currency, and independent of the memory s came from. Unused copies are collected.
func intern(s string) string { return unique.Make(s).Value() }

// fcData is a forecast bucket (and a forecast accumulator): counts per category, money per
// currency and category. The first currency (the only one, for most buckets) is stored
// inline; first.cur == 0 means no money yet.
//
// stages holds the open figures split by the deals' stage (groupBy stage), one entry per stage
// id in the order they came in: most buckets have one or two. A query accumulator leaves it
// empty (add ignores it); groupBy stage folds it into one accumulator per stage instead.
type fcData struct {
	count  [numCats]int64
	first  fcMoney
	more   []fcMoney
	stages []fcStage
}

// fcStage is the open deals of one stage in a forecast bucket: their count and, per currency,
// amount and weighted amount. The stage id is interned.
type fcStage struct {
	id    string
	count int64
	money []fcStageMoney
}

type fcStageMoney struct {
	cur curID
	v   [2]int64 // amount, weighted
}

// stage finds or adds the entry of one stage id.
func (d *fcData) stage(id string) *fcStage {
	for i := range d.stages {
		if d.stages[i].id == id {
			return &d.stages[i]
		}
	}
	d.stages = append(d.stages, fcStage{id: intern(id)})
	return &d.stages[len(d.stages)-1]
}

// slot finds or adds the money of one currency.
func (st *fcStage) slot(cur curID) *fcStageMoney {
	for i := range st.money {
		if st.money[i].cur == cur {
			return &st.money[i]
		}
	}
	st.money = append(st.money, fcStageMoney{cur: cur})
	return &st.money[len(st.money)-1]
}

type fcMoney struct {
	cur curID
	v   [numCats][2]int64 // amount, weighted
}

// slot finds or adds the money of one currency; currencies keep the order they came in.
func (d *fcData) slot(cur curID) *fcMoney {
	if d.first.cur == cur {
		return &d.first
	}
	if d.first.cur == 0 {
		d.first.cur = cur
		return &d.first
	}
	for i := range d.more {
		if d.more[i].cur == cur {
			return &d.more[i]
		}
	}
	d.more = append(d.more, fcMoney{cur: cur})
	return &d.more[len(d.more)-1]
}

// each calls fn for the money of every currency, in slot order.
func (d *fcData) each(fn func(m *fcMoney)) {
	if d.first.cur == 0 {
		return
	}
	fn(&d.first)
	for i := range d.more {
		fn(&d.more[i])
	}
}

// wlData is a win/loss bucket.
type wlData struct {
	won, lost, cycleDays int64
	money                []wlMoney
	reasons              []labelled
	competitors          []labelled
}

type wlMoney struct {
	cur       string
	won, lost int64
}

// labelled is a count and a per-currency amount under a free-text label (reason, competitor).
type labelled struct {
	label string
	count int64
	money moneySum
}

// evData is an event bucket: funnel moves and stays, pipeline changes.
type evData struct {
	moves           []move
	stays           []stay
	chg             [numChg]int64
	chgMoney        []chgMoney
	currencyChanged int64
}

type move struct {
	from, to string
	n        int64
}

type stay struct {
	stage     string
	count, ms int64
}

type chgMoney struct {
	cur string
	v   [numChg]int64
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{
		fc:       family[fcData]{pipelines: map[string]*dayIndex[fcData]{}},
		wl:       family[wlData]{pipelines: map[string]*dayIndex[wlData]{}},
		ev:       family[evData]{pipelines: map[string]*dayIndex[evData]{}},
		ownerIdx: map[string]int32{},
	}
}

// Len is the number of buckets held (those with at least one value).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.n
}

// Put replaces a bucket (a nil/empty bucket deletes it). Only Values matter to queries; the
// Applied guard is the aggregator's business. A key that is not a bucket key of this package is ignored, as
// are value names it does not know (a newer writer's measures), so a rolling upgrade cannot
// break the read model. Put copies what it needs: the caller may reuse b.
func (s *Store) Put(key string, b Bucket) {
	pk, ok := parseKey(key)
	if !ok {
		return
	}
	if len(b.Values) == 0 {
		s.mu.Lock()
		defer s.mu.Unlock()
		owner, ok := s.ownerIdx[pk.owner]
		if !ok {
			return
		}
		var removed bool
		switch pk.fam {
		case famForecast:
			removed = s.fc.remove(pk, owner)
		case famWinLoss:
			removed = s.wl.remove(pk, owner)
		case famEvents:
			removed = s.ev.remove(pk, owner)
		}
		if removed {
			s.n--
		}
		return
	}
	// Parse outside the lock: queries keep running meanwhile.
	var fc fcData
	var wl wlData
	var ev evData
	switch pk.fam {
	case famForecast:
		parseForecast(&fc, b.Values)
	case famWinLoss:
		parseWinLoss(&wl, b.Values)
	case famEvents:
		parseEvents(&ev, b.Values)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	idx, ok := s.ownerIdx[pk.owner]
	if !ok {
		name := strings.Clone(pk.owner) // pk.owner is a substring of the caller's key
		idx = int32(len(s.ownerNames))
		s.ownerIdx[name] = idx
		s.ownerNames = append(s.ownerNames, name)
	}
	var added bool
	switch pk.fam {
	case famForecast:
		added = s.fc.put(pk, idx, fc)
	case famWinLoss:
		added = s.wl.put(pk, idx, wl)
	case famEvents:
		added = s.ev.put(pk, idx, ev)
	}
	if added {
		s.n++
	}
}

// ownerSel turns an owner filter into what scan takes: -1 for all owners, the owner's index,
// or -2 (matching nothing) for an owner the Store has never seen. The caller holds the lock.
func (s *Store) ownerSel(owner string) int32 {
	if owner == "" {
		return -1
	}
	if i, ok := s.ownerIdx[owner]; ok {
		return i
	}
	return -2
}

// ownerName is the id of an interned owner.
func (s *Store) ownerName(i int32) string { return s.ownerNames[i] }

// put stores or replaces one bucket and reports whether it is new.
func (f *family[T]) put(k parsedKey, ownerIdx int32, d T) bool {
	idx := f.pipelines[k.pipeline]
	if idx == nil {
		idx = &dayIndex[T]{}
		f.pipelines[strings.Clone(k.pipeline)] = idx // the key is a substring of the caller's
	}
	i := sort.Search(len(idx.days), func(i int) bool { return idx.days[i].day >= k.day })
	if i == len(idx.days) || idx.days[i].day != k.day {
		n := &dayNode[T]{day: k.day, month: monthKey(k.day), quarter: quarterKey(k.day)}
		idx.days = slices.Insert(idx.days, i, n)
	}
	n := idx.days[i]
	r := rec[T]{ownerIdx: ownerIdx, d: d}
	p, found := n.find(ownerIdx)
	if found {
		n.recs[p] = r
		return false
	}
	n.recs = slices.Insert(n.recs, p, r)
	return true
}

// remove deletes one bucket, and its day and pipeline when they become empty; it reports
// whether the bucket was there.
func (f *family[T]) remove(k parsedKey, ownerIdx int32) bool {
	idx := f.pipelines[k.pipeline]
	if idx == nil {
		return false
	}
	i := sort.Search(len(idx.days), func(i int) bool { return idx.days[i].day >= k.day })
	if i == len(idx.days) || idx.days[i].day != k.day {
		return false
	}
	n := idx.days[i]
	p, ok := n.find(ownerIdx)
	if !ok {
		return false
	}
	n.recs = slices.Delete(n.recs, p, p+1)
	if len(n.recs) == 0 {
		idx.days = slices.Delete(idx.days, i, i+1)
		if len(idx.days) == 0 {
			delete(f.pipelines, k.pipeline)
		}
	} else if cap(n.recs) > 2*len(n.recs)+4 {
		n.recs = slices.Clip(slices.Clone(n.recs)) // give back what many removals freed
	}
	return true
}

// scan calls fn for every bucket in [from, to], for one pipeline ("" = all) and one owner (an
// ownerSel result: -1 = all), with the bucket's day node; days come in order within a
// pipeline, owners in index order within a day. The caller holds the read lock.
func (f *family[T]) scan(pipeline string, owner int32, from, to domain.Date, fn func(n *dayNode[T], r *rec[T])) {
	if owner < -1 {
		return
	}
	visit := func(idx *dayIndex[T]) {
		i := sort.Search(len(idx.days), func(i int) bool { return idx.days[i].day >= from })
		for ; i < len(idx.days) && idx.days[i].day <= to; i++ {
			n := idx.days[i]
			if owner >= 0 {
				if p, ok := n.find(owner); ok {
					fn(n, &n.recs[p])
				}
				continue
			}
			for j := range n.recs {
				fn(n, &n.recs[j])
			}
		}
	}
	if pipeline != "" {
		if idx := f.pipelines[pipeline]; idx != nil {
			visit(idx)
		}
		return
	}
	for _, idx := range f.pipelines {
		visit(idx)
	}
}

func parseForecast(d *fcData, values map[string]int64) {
	for name, v := range values {
		seg, n, ok := splitName(name)
		if !ok {
			continue
		}
		switch {
		case n == 2 && seg[1] == "count":
			if c, ok := catIndex(seg[0]); ok {
				d.count[c] += v
			}
		case n == 3 && seg[0] == "stage" && seg[2] == "count":
			d.stage(seg[1]).count += v
		case n == 3 && isCurrencySegment(seg[0]):
			c, ok := catIndex(seg[1])
			m, okm := metricIndex(seg[2])
			if !ok || !okm {
				continue
			}
			cur, _ := curIDOf(seg[0])
			d.slot(cur).v[c][m] += v
		case n == 4 && isCurrencySegment(seg[0]) && seg[1] == "stage":
			if m, ok := metricIndex(seg[3]); ok {
				cur, _ := curIDOf(seg[0])
				d.stage(seg[2]).slot(cur).v[m] += v
			}
		}
	}
}

// metricIndex reads the last segment of a forecast money name: amount or weighted.
func metricIndex(s string) (int, bool) {
	switch s {
	case "amount":
		return metAmount, true
	case "weighted":
		return metWeighted, true
	}
	return 0, false
}

func parseWinLoss(d *wlData, values map[string]int64) {
	money := func(cur string) *wlMoney {
		i := slices.IndexFunc(d.money, func(x wlMoney) bool { return x.cur == cur })
		if i < 0 {
			d.money = append(d.money, wlMoney{cur: intern(cur)})
			i = len(d.money) - 1
		}
		return &d.money[i]
	}
	label := func(list *[]labelled, l string) *labelled {
		i := slices.IndexFunc(*list, func(x labelled) bool { return x.label == l })
		if i < 0 {
			*list = append(*list, labelled{label: intern(l)})
			i = len(*list) - 1
		}
		return &(*list)[i]
	}
	for name, v := range values {
		seg, n, ok := splitName(name)
		if !ok {
			continue
		}
		switch {
		case n == 2 && name == nameWonCount:
			d.won += v
		case n == 2 && name == nameLostCount:
			d.lost += v
		case n == 2 && name == nameWonCycleDays:
			d.cycleDays += v
		case n == 3 && isCurrencySegment(seg[0]) && seg[2] == "amount" && seg[1] == "won":
			money(seg[0]).won += v
		case n == 3 && isCurrencySegment(seg[0]) && seg[2] == "amount" && seg[1] == "lost":
			money(seg[0]).lost += v
		case n == 3 && seg[0] == "reason" && seg[2] == "count":
			label(&d.reasons, seg[1]).count += v
		case n == 3 && seg[0] == "competitor" && seg[2] == "count":
			label(&d.competitors, seg[1]).count += v
		case n == 4 && isCurrencySegment(seg[0]) && seg[1] == "reason" && seg[3] == "amount":
			label(&d.reasons, seg[2]).money.add(intern(seg[0]), v)
		case n == 4 && isCurrencySegment(seg[0]) && seg[1] == "competitor" && seg[3] == "amount":
			label(&d.competitors, seg[2]).money.add(intern(seg[0]), v)
		}
	}
	byLabel := func(a, b labelled) int { return cmp.Compare(a.label, b.label) }
	slices.SortFunc(d.reasons, byLabel)
	slices.SortFunc(d.competitors, byLabel)
}

func parseEvents(d *evData, values map[string]int64) {
	stayOf := func(s string) *stay {
		i := slices.IndexFunc(d.stays, func(x stay) bool { return x.stage == s })
		if i < 0 {
			d.stays = append(d.stays, stay{stage: intern(s)})
			i = len(d.stays) - 1
		}
		return &d.stays[i]
	}
	for name, v := range values {
		seg, n, ok := splitName(name)
		if !ok {
			continue
		}
		switch {
		case n == 3 && seg[0] == "move":
			d.moves = append(d.moves, move{from: intern(seg[1]), to: intern(seg[2]), n: v})
		case n == 3 && seg[0] == "stay" && seg[2] == "count":
			stayOf(seg[1]).count += v
		case n == 3 && seg[0] == "stay" && seg[2] == "ms":
			stayOf(seg[1]).ms += v
		case n == 2 && name == nameCurrencyChanged:
			d.currencyChanged += v
		case n == 2 && seg[1] == "count":
			if c, ok := chgIndex(seg[0]); ok {
				d.chg[c] += v
			}
		case n == 3 && isCurrencySegment(seg[0]) && seg[2] == "amount":
			c, ok := chgIndex(seg[1])
			if !ok {
				continue
			}
			i := slices.IndexFunc(d.chgMoney, func(x chgMoney) bool { return x.cur == seg[0] })
			if i < 0 {
				d.chgMoney = append(d.chgMoney, chgMoney{cur: intern(seg[0])})
				i = len(d.chgMoney) - 1
			}
			d.chgMoney[i].v[c] += v
		}
	}
}
