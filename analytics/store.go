package analytics

import (
	"cmp"
	"slices"
	"sort"
	"sync"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Store is the query side's in-memory read model of every bucket; safe for concurrent use
// (RWMutex: queries share a read lock, Put takes the write lock briefly).
//
// Put parses a bucket once (key and value names) into a typed record and files it in an index
// per family and pipeline: a slice of days sorted by date, each holding its owners' records.
// A period query binary-searches the first day and walks the days in range, so its cost is
// the number of buckets in the period (or the number of days, with an owner filter), never a
// scan of the whole store or a re-parse of names.
type Store struct {
	mu    sync.RWMutex
	byKey map[string]*record
	index map[indexKey]*dayIndex
}

type indexKey struct {
	fam      byte
	pipeline string
}

// dayIndex is one family and pipeline's buckets ordered by day.
type dayIndex struct {
	days []*dayNode
}

// dayNode holds the buckets of one day (one per owner) and the day's group keys, computed
// once.
type dayNode struct {
	day            domain.Date
	month, quarter string
	recs           []*record
	pos            map[string]int // owner -> index in recs
}

// record is one parsed bucket.
type record struct {
	key parsedKey
	fc  *fcData
	wl  *wlData
	ev  *evData
}

// fcData is a forecast bucket: counts per category, money per currency and category.
type fcData struct {
	count [numCats]int64
	money []fcMoney
}

type fcMoney struct {
	cur string
	v   [numCats][2]int64 // amount, weighted
}

// wlData is a win/loss bucket.
type wlData struct {
	won, lost, cycleMs int64
	money              []wlMoney
	reasons            []labelled
	competitors        []labelled
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
	return &Store{byKey: map[string]*record{}, index: map[indexKey]*dayIndex{}}
}

// Len is the number of buckets held (those with at least one value).
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byKey)
}

// Put replaces a bucket (a nil/empty bucket deletes it). Only Values matter to queries; Seen
// is the aggregator's business. A key that is not a bucket key of this package is ignored, as
// are value names it does not know (a newer writer's measures), so a rolling upgrade cannot
// break the read model. Put copies what it needs: the caller may reuse b.
func (s *Store) Put(key string, b Bucket) {
	pk, ok := parseKey(key)
	if !ok {
		return
	}
	var rec *record
	if len(b.Values) > 0 {
		rec = parseRecord(pk, b.Values)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.byKey[key]
	switch {
	case rec == nil && old == nil:
		return
	case rec == nil:
		delete(s.byKey, key)
		s.unindex(old)
	case old == nil:
		s.byKey[key] = rec
		s.insert(rec)
	default:
		s.byKey[key] = rec
		n := s.node(old.key, false)
		n.recs[n.pos[old.key.owner]] = rec
	}
}

// node finds (or, with create, makes) the day node of a key.
func (s *Store) node(k parsedKey, create bool) *dayNode {
	ik := indexKey{k.fam, k.pipeline}
	idx := s.index[ik]
	if idx == nil {
		if !create {
			return nil
		}
		idx = &dayIndex{}
		s.index[ik] = idx
	}
	i := sort.Search(len(idx.days), func(i int) bool { return idx.days[i].day >= k.day })
	if i < len(idx.days) && idx.days[i].day == k.day {
		return idx.days[i]
	}
	if !create {
		return nil
	}
	n := &dayNode{day: k.day, month: monthKey(k.day), quarter: quarterKey(k.day), pos: map[string]int{}}
	idx.days = slices.Insert(idx.days, i, n)
	return n
}

func (s *Store) insert(r *record) {
	n := s.node(r.key, true)
	n.pos[r.key.owner] = len(n.recs)
	n.recs = append(n.recs, r)
}

func (s *Store) unindex(r *record) {
	ik := indexKey{r.key.fam, r.key.pipeline}
	idx := s.index[ik]
	if idx == nil {
		return
	}
	i := sort.Search(len(idx.days), func(i int) bool { return idx.days[i].day >= r.key.day })
	if i == len(idx.days) || idx.days[i].day != r.key.day {
		return
	}
	n := idx.days[i]
	p, ok := n.pos[r.key.owner]
	if !ok {
		return
	}
	last := len(n.recs) - 1
	n.recs[p] = n.recs[last]
	n.pos[n.recs[p].key.owner] = p
	n.recs[last] = nil
	n.recs = n.recs[:last]
	delete(n.pos, r.key.owner)
	if len(n.recs) == 0 {
		idx.days = slices.Delete(idx.days, i, i+1)
		if len(idx.days) == 0 {
			delete(s.index, ik)
		}
	}
}

// scan calls fn for every bucket of family fam in [from, to], for one pipeline ("" = all) and
// one owner ("" = all), with the bucket's day node. The caller holds the read lock.
func (s *Store) scan(fam byte, pipeline, owner string, from, to domain.Date, fn func(n *dayNode, r *record)) {
	visit := func(idx *dayIndex) {
		i := sort.Search(len(idx.days), func(i int) bool { return idx.days[i].day >= from })
		for ; i < len(idx.days) && idx.days[i].day <= to; i++ {
			n := idx.days[i]
			if owner != "" {
				if p, ok := n.pos[owner]; ok {
					fn(n, n.recs[p])
				}
				continue
			}
			for _, r := range n.recs {
				fn(n, r)
			}
		}
	}
	if pipeline != "" {
		if idx := s.index[indexKey{fam, pipeline}]; idx != nil {
			visit(idx)
		}
		return
	}
	for k, idx := range s.index {
		if k.fam == fam {
			visit(idx)
		}
	}
}

// parseRecord turns a bucket's values into its family's typed record.
func parseRecord(k parsedKey, values map[string]int64) *record {
	r := &record{key: k}
	switch k.fam {
	case famForecast:
		r.fc = parseForecast(values)
	case famWinLoss:
		r.wl = parseWinLoss(values)
	case famEvents:
		r.ev = parseEvents(values)
	}
	return r
}

func parseForecast(values map[string]int64) *fcData {
	d := &fcData{}
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
		case n == 3 && isCurrencySegment(seg[0]):
			c, ok := catIndex(seg[1])
			if !ok {
				continue
			}
			m := metAmount
			switch seg[2] {
			case "amount":
			case "weighted":
				m = metWeighted
			default:
				continue
			}
			i := slices.IndexFunc(d.money, func(x fcMoney) bool { return x.cur == seg[0] })
			if i < 0 {
				d.money = append(d.money, fcMoney{cur: seg[0]})
				i = len(d.money) - 1
			}
			d.money[i].v[c][m] += v
		}
	}
	return d
}

func parseWinLoss(values map[string]int64) *wlData {
	d := &wlData{}
	money := func(cur string) *wlMoney {
		i := slices.IndexFunc(d.money, func(x wlMoney) bool { return x.cur == cur })
		if i < 0 {
			d.money = append(d.money, wlMoney{cur: cur})
			i = len(d.money) - 1
		}
		return &d.money[i]
	}
	label := func(list *[]labelled, l string) *labelled {
		i := slices.IndexFunc(*list, func(x labelled) bool { return x.label == l })
		if i < 0 {
			*list = append(*list, labelled{label: l})
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
		case n == 2 && name == nameWonCycleMs:
			d.cycleMs += v
		case n == 3 && isCurrencySegment(seg[0]) && seg[2] == "amount" && seg[1] == "won":
			money(seg[0]).won += v
		case n == 3 && isCurrencySegment(seg[0]) && seg[2] == "amount" && seg[1] == "lost":
			money(seg[0]).lost += v
		case n == 3 && seg[0] == "reason" && seg[2] == "count":
			label(&d.reasons, seg[1]).count += v
		case n == 3 && seg[0] == "competitor" && seg[2] == "count":
			label(&d.competitors, seg[1]).count += v
		case n == 4 && isCurrencySegment(seg[0]) && seg[1] == "reason" && seg[3] == "amount":
			label(&d.reasons, seg[2]).money.add(seg[0], v)
		case n == 4 && isCurrencySegment(seg[0]) && seg[1] == "competitor" && seg[3] == "amount":
			label(&d.competitors, seg[2]).money.add(seg[0], v)
		}
	}
	byLabel := func(a, b labelled) int { return cmp.Compare(a.label, b.label) }
	slices.SortFunc(d.reasons, byLabel)
	slices.SortFunc(d.competitors, byLabel)
	return d
}

func parseEvents(values map[string]int64) *evData {
	d := &evData{}
	stayOf := func(s string) *stay {
		i := slices.IndexFunc(d.stays, func(x stay) bool { return x.stage == s })
		if i < 0 {
			d.stays = append(d.stays, stay{stage: s})
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
			d.moves = append(d.moves, move{from: seg[1], to: seg[2], n: v})
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
				d.chgMoney = append(d.chgMoney, chgMoney{cur: seg[0]})
				i = len(d.chgMoney) - 1
			}
			d.chgMoney[i].v[c] += v
		}
	}
	return d
}
