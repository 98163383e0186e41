package views

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"testing"
	"time"

	"github.com/lovoo/goka/storage"

	"github.com/crm-pipeline/crm-pipeline/analytics"
	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// discardStorage is a partition store that keeps nothing, so that a measurement sees only
// what the read model retains.
type discardStorage struct{ storage.Storage }

func (discardStorage) Set(string, []byte) error { return nil }
func (discardStorage) Delete(string) error      { return nil }

// fixtureBuckets folds n opportunities into analytics buckets the way the memory scenario of
// BENCHMARKS.md builds its fixture (cmd/crm-pipeline bench.go): 200 owners, USD amounts of
// 1,000 to 251,000, close dates from six months ago to a year ahead, created over the last
// year, then up to four more commands each (updates, stage moves, wins, losses, reopens), all
// through domain.Decide and analytics.Deltas.
func fixtureBuckets(tb testing.TB, n int) map[string]*analytics.Bucket {
	r := rand.New(rand.NewPCG(3, 5))
	now := time.Date(2025, 9, 1, 12, 0, 0, 0, time.UTC)
	p := domain.DefaultPipeline()
	pipelines := func(id string) (*domain.Pipeline, bool) { return &p, id == p.ID }
	dc := domain.DecideContext{Pipelines: pipelines}
	stages := []string{"qualification", "discovery", "proposal", "negotiation"}
	reasons := []string{"price", "timing", "no_decision", "competitor", "budget"}
	rivals := []string{"", "", "Globex", "Initech", "Umbrella"}
	amount := func() string { return domain.FormatAmount(100_000+r.Int64N(25_000_000), "USD") }
	closeDate := func() string { return (domain.DateOf(now) + domain.Date(r.IntN(545)-180)).String() }
	buckets := map[string]*analytics.Bucket{}
	for i := range n {
		id := fmt.Sprintf("opp-%07d", i)
		at := now.Add(-time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
		var cur *domain.Opportunity
		more := r.IntN(5)
		for k := 0; k <= more; k++ {
			cmd := domain.Command{CommandID: fmt.Sprintf("f-%d-%d", i, k), OpportunityID: id, IssuedAt: at, Actor: "bench"}
			if k == 0 {
				cmd.Type = domain.CmdCreate
				cmd.Create = &domain.CreateOpportunity{Name: "Deal " + id, AccountID: fmt.Sprintf("acc-%d", r.IntN(20000)),
					OwnerID: fmt.Sprintf("owner-%03d", r.IntN(200)+1), Amount: amount(), Currency: "USD", CloseDate: closeDate(), Source: "bench"}
			} else {
				at = at.Add(time.Hour + time.Duration(r.Int64N(int64(20*24*time.Hour))))
				if at.After(now.Add(-time.Hour)) {
					break
				}
				cmd.IssuedAt = at
				switch x := r.IntN(100); {
				case cur.Status != domain.StatusOpen:
					cmd.Type, cmd.Reopen = domain.CmdReopen, &domain.Reopen{StageID: stages[r.IntN(len(stages))]}
				case x < 55:
					a, d := amount(), closeDate()
					u := &domain.UpdateOpportunity{Amount: &a}
					if r.IntN(3) == 0 {
						u.CloseDate = &d
					}
					cmd.Type, cmd.Update = domain.CmdUpdate, u
				case x < 82:
					next := cur.StageID
					for next == cur.StageID {
						next = stages[r.IntN(len(stages))]
					}
					cmd.Type, cmd.ChangeStage = domain.CmdChangeStage, &domain.ChangeStage{StageID: next}
				case x < 91:
					cmd.Type, cmd.CloseWon = domain.CmdCloseWon, &domain.CloseWon{}
				default:
					cmd.Type, cmd.CloseLost = domain.CmdCloseLost, &domain.CloseLost{Reason: reasons[r.IntN(len(reasons))], Competitor: rivals[r.IntN(len(rivals))]}
				}
			}
			dc.Now = at
			d, err := domain.Decide(cur, cmd, dc)
			if err != nil {
				tb.Fatalf("fixture %s: %v", cmd.CommandID, err)
			}
			analytics.ApplyAll(buckets, analytics.Deltas(cur, d.Next, d.Events, pipelines))
			next := d.Next
			cur = &next
		}
	}
	return buckets
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkMirrorHeap loads a fixture's buckets into the analytics read model through the
// view's mirror (each bucket encoded as on the changelog, then Set on the decorated store),
// drops everything else and reports the heap the model keeps alive: with decoded strings
// retained, that includes the decoder arenas (and Seen maps) of the buckets. The fixture has
// CRM_MIRROR_OPPS opportunities (default 250,000; the memory scenario has 1,000,000). Run with
// -benchtime=1x; CRM_MIRROR_HEAPPROFILE=file writes a heap profile while the model is loaded.
func BenchmarkMirrorHeap(b *testing.B) {
	n := 250_000
	if v, err := strconv.Atoi(os.Getenv("CRM_MIRROR_OPPS")); err == nil && v > 0 {
		n = v
	}
	for b.Loop() {
		b.StopTimer()
		base := heapInUse()
		values := map[string][]byte{}
		var encoded int64
		nonEmpty := 0
		for k, bk := range fixtureBuckets(b, n) {
			if len(bk.Values) > 0 {
				nonEmpty++
			}
			v, err := codecs.EncodeBucket(*bk)
			if err != nil {
				b.Fatal(err)
			}
			values[k] = v
			encoded += int64(len(k) + len(v))
		}
		model := analytics.NewStore()
		st := &bucketStorage{Storage: discardStorage{}, model: model, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		b.StartTimer()
		for k, v := range values {
			if err := st.Set(k, v); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		buckets := nonEmpty
		values = nil
		held := heapInUse() - base
		if path := os.Getenv("CRM_MIRROR_HEAPPROFILE"); path != "" { // what the model keeps, by allocation site
			f, err := os.Create(path)
			if err != nil {
				b.Fatal(err)
			}
			if err := pprof.WriteHeapProfile(f); err != nil {
				b.Fatal(err)
			}
			f.Close()
		}
		runtime.KeepAlive(model)
		b.ReportMetric(float64(buckets), "buckets")
		b.ReportMetric(float64(encoded)/(1<<20), "encoded-MiB")
		b.ReportMetric(float64(held)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(held)/float64(buckets), "heap-B/bucket")
		if model.Len() != buckets {
			b.Fatalf("model holds %d buckets, want %d", model.Len(), buckets)
		}
		b.StartTimer()
	}
}
