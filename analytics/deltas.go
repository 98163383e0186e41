package analytics

import (
	"cmp"
	"slices"
	"time"

	"github.com/crm-pipeline/crm-pipeline/domain"
)

// Deltas returns the net bucket deltas caused by one accepted command: the retraction of
// prev's contribution and the addition of next's, merged per bucket (at most one Delta per
// bucket, zero-valued entries dropped, Deltas with no values dropped), plus event-based counts
// from events (funnel, pipeline changes). prev is nil for a create. Deterministic output order
// (sorted by Bucket), so a re-emission after a crash sends the same records.
//
// Every Delta carries next.ID and next.Version, and at most one Delta per bucket is returned;
// the opportunity processor stamps them with the record's source position, by which the
// aggregator's guard (Bucket.Apply) drops redeliveries and re-emissions. A duplicate or a
// no-op command (no events, next equal to prev) yields no deltas.
//
// State contributions (forecast and win/loss, both by close date) depend only on the two
// states; event contributions are attributed to the pipeline of next, the owner of next (the
// owner after the change) and a day: the UTC day of the event, except that a closing event
// (won or lost) counts on the deal's close date after it. A closed deal has one date,
// closeDate (API.md, "Closing dates"), and every report places it there: the forecast's
// closedWon/closedLost, win/loss and velocity through the state, the funnel's move into the
// won or lost stage (and the stay it ends) and the changes' won/lost through the event. A
// closed deal's close date cannot change until it is reopened, so the closing event's day is
// the one its state is counted on for as long as it stays closed. Decide emits at most one
// event per command; the amount, close-date and currency changes are measured between prev
// and next and attributed once, to the last event's day.
//
// Times are compared in whole milliseconds of Unix time (UnixMilli), which is exact whether a
// state comes straight from Decide (nanoseconds) or was decoded from Avro (microseconds), so
// the first emission and a re-emission from replayed states agree.
//
// pipelines is accepted for the processor's convenience and may be nil: funnel moves are
// recorded per stage pair and classified against the pipeline at query time, so nothing here
// depends on the stage configuration.
func Deltas(prev *domain.Opportunity, next domain.Opportunity, events []domain.Event, pipelines func(id string) (*domain.Pipeline, bool)) []Delta {
	_ = pipelines
	var db deltaBuilder
	db.es = make([]deltaEntry, 0, 24)
	if prev != nil && prev.Version > 0 {
		db.state(prev, -1)
	}
	if next.Version > 0 {
		db.state(&next, +1)
	}
	db.events(prev, &next, events)
	return db.finish(next.ID, next.Version)
}

// deltaEntry is one signed value for one bucket before merging.
type deltaEntry struct {
	bucket, name string
	v            int64
}

type deltaBuilder struct{ es []deltaEntry }

func (db *deltaBuilder) add(bucket, name string, v int64) {
	if v != 0 {
		db.es = append(db.es, deltaEntry{bucket, name, v})
	}
}

// state adds sign × the contribution of o's current state: the forecast bucket of its close
// date (for an open deal also under its stage) and, for a closed deal, the win/loss bucket of the same date (the day it closed). The
// retraction of prev and the addition of next go through this one function, so a reopen, or
// a closing on another day after a reopen, takes back exactly what was added.
func (db *deltaBuilder) state(o *domain.Opportunity, sign int64) {
	n := namesFor(o.Currency)
	fk := bucketKey(famForecast, o.PipelineID, o.CloseDate, o.OwnerID)
	amount := sign * o.Amount
	weighted := sign * domain.WeightedAmount(o.Amount, o.Probability)
	fig := func(count, amountName, weightedName string) {
		db.add(fk, count, sign)
		db.add(fk, amountName, amount)
		db.add(fk, weightedName, weighted)
	}
	cat := func(c int) { fig(catCountNames[c], n.fc[c][metAmount], n.fc[c][metWeighted]) }
	switch o.Status {
	case domain.StatusOpen:
		cat(catOpen)
		if c, ok := openCategory(o.ForecastCategory); ok {
			cat(c)
		}
		// The open figures once more under the deal's stage (groupBy stage): a stage change
		// retracts them from the old stage and adds them to the new one, a close retracts them.
		s := escapePart(o.StageID)
		fig("stage/"+s+"/count", n.stageP+s+"/amount", n.stageP+s+"/weighted")
	case domain.StatusWon:
		cat(catClosedWon)
		wk := bucketKey(famWinLoss, o.PipelineID, o.CloseDate, o.OwnerID)
		db.add(wk, nameWonCount, sign)
		db.add(wk, n.wonAmt, amount)
		db.add(wk, nameWonCycleDays, sign*wonCycleDays(o))
	case domain.StatusLost:
		cat(catClosedLost)
		wk := bucketKey(famWinLoss, o.PipelineID, o.CloseDate, o.OwnerID)
		db.add(wk, nameLostCount, sign)
		db.add(wk, n.lostAmt, amount)
		r := escapePart(o.LossReason)
		db.add(wk, "reason/"+r+"/count", sign)
		db.add(wk, n.reasonP+r+"/amount", amount)
		if o.Competitor != "" {
			c := escapePart(o.Competitor)
			db.add(wk, "competitor/"+c+"/count", sign)
			db.add(wk, n.competeP+c+"/amount", amount)
		}
	}
}

// wonCycleDays is the sales cycle of a closed deal in whole calendar days, counted inclusively
// from the UTC day it was created to its close date: a deal closed on the day it was created
// took 1 day, one created on 2027-01-01 and closed on 2027-01-03 took 3. Counting days, not
// milliseconds, matches the close date (a day, not an instant), and the inclusive count keeps
// every cycle at least 1 day, so average cycle and velocity stay finite and meaningful for
// deals won the day they were entered. A close date before the creation day, which the domain
// refuses but a state written under the previous rule may hold, counts as 1 day too.
func wonCycleDays(o *domain.Opportunity) int64 {
	return max(1, int64(o.CloseDate)-int64(domain.DateOf(o.CreatedAt))+1)
}

// events adds the event-based counts: funnel moves and stays, and pipeline changes.
func (db *deltaBuilder) events(prev, next *domain.Opportunity, events []domain.Event) {
	if len(events) == 0 {
		return
	}
	n := namesFor(next.Currency)
	var enteredAt time.Time // start of the stay in the stage the next move leaves
	if prev != nil {
		enteredAt = prev.StageEnteredAt
	}
	var last string
	for i := range events {
		e := &events[i]
		day := domain.DateOf(e.At)
		if e.Type == domain.EvtClosedWon || e.Type == domain.EvtClosedLost {
			day = closeDateAfter(events, i, next)
		}
		k := bucketKey(famEvents, next.PipelineID, day, next.OwnerID)
		last = k
		switch {
		case e.Type == domain.EvtCreated:
			db.add(k, "move//"+escapePart(e.ToStageID), 1)
			db.add(k, chgCountNames[chgCreated], 1)
			db.add(k, n.chgAmt[chgCreated], next.Amount)
			enteredAt = e.At
		case e.FromStageID != "" && e.ToStageID != "" && e.FromStageID != e.ToStageID:
			from := escapePart(e.FromStageID)
			db.add(k, "move/"+from+"/"+escapePart(e.ToStageID), 1)
			if !enteredAt.IsZero() {
				db.add(k, "stay/"+from+"/count", 1)
				db.add(k, "stay/"+from+"/ms", e.At.UnixMilli()-enteredAt.UnixMilli())
			}
			enteredAt = e.At
		}
		switch e.Type {
		case domain.EvtClosedWon:
			db.add(k, chgCountNames[chgWon], 1)
			db.add(k, n.chgAmt[chgWon], next.Amount)
		case domain.EvtClosedLost:
			db.add(k, chgCountNames[chgLost], 1)
			db.add(k, n.chgAmt[chgLost], next.Amount)
		case domain.EvtReopened:
			db.add(k, chgCountNames[chgReopened], 1)
			db.add(k, n.chgAmt[chgReopened], next.Amount)
		}
	}
	if prev == nil || prev.Version == 0 {
		return // a creation is "created", not a change of close date or amount
	}
	switch {
	case next.CloseDate > prev.CloseDate:
		db.add(last, chgCountNames[chgPushed], 1)
		db.add(last, n.chgAmt[chgPushed], next.Amount)
	case next.CloseDate < prev.CloseDate:
		db.add(last, chgCountNames[chgPulled], 1)
		db.add(last, n.chgAmt[chgPulled], next.Amount)
	}
	switch {
	case next.Currency != prev.Currency:
		db.add(last, nameCurrencyChanged, 1)
	case next.Amount > prev.Amount:
		db.add(last, chgCountNames[chgIncreased], 1)
		db.add(last, n.chgAmt[chgIncreased], next.Amount-prev.Amount)
	case next.Amount < prev.Amount:
		db.add(last, chgCountNames[chgDecreased], 1)
		db.add(last, n.chgAmt[chgDecreased], prev.Amount-next.Amount)
	}
}

// closeDateAfter is the close date of the deal right after events[i]: next's, unless a later
// event of the same list changed it, whose before-value it then is. (Decide emits one event
// per command, so this is next.CloseDate without parsing anything.)
func closeDateAfter(events []domain.Event, i int, next *domain.Opportunity) domain.Date {
	for _, e := range events[i+1:] {
		for _, c := range e.Changes {
			if c.Field == "closeDate" && c.BeforeSet {
				if d, err := domain.ParseDate(c.Before); err == nil {
					return d
				}
			}
		}
	}
	return next.CloseDate
}

// finish merges the entries per bucket and name, drops zeros and builds the sorted Deltas.
func (db *deltaBuilder) finish(id string, version int64) []Delta {
	es := db.es
	if len(es) == 0 {
		return nil
	}
	slices.SortFunc(es, func(a, b deltaEntry) int {
		if c := cmp.Compare(a.bucket, b.bucket); c != 0 {
			return c
		}
		return cmp.Compare(a.name, b.name)
	})
	var out []Delta
	for i := 0; i < len(es); {
		j := i
		for j < len(es) && es[j].bucket == es[i].bucket {
			j++
		}
		var vals map[string]int64
		for k := i; k < j; {
			sum, m := int64(0), k
			for m < j && es[m].name == es[k].name {
				sum += es[m].v
				m++
			}
			if sum != 0 {
				if vals == nil {
					vals = make(map[string]int64, j-k)
				}
				vals[es[k].name] = sum
			}
			k = m
		}
		if vals != nil {
			out = append(out, Delta{Bucket: es[i].bucket, OpportunityID: id, Version: version, Values: vals})
		}
		i = j
	}
	return out
}
