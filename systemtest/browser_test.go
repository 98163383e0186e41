package systemtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// The dashboard in a real browser: headless Chromium (Debian's chromium package, which
// `make test` installs when missing) driven over the DevTools protocol against the service in
// process. Every tab fails its test on any console error, uncaught exception, failed request
// or HTTP status of 400 or more that the test did not announce (allow). Screenshots of every
// page go to bin/screenshots/ (the path is logged).

// chromiumPath is where Debian's chromium package puts the browser.
const chromiumPath = "/usr/bin/chromium"

// findChromium returns the browser, or skips the test when there is none, unless
// CRM_PIPELINE_BROWSER_TESTS=required (as `make test` sets it) makes that a failure.
func findChromium(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("CHROMIUM"), chromiumPath} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CRM_PIPELINE_BROWSER_TESTS") == "required" {
		t.Fatalf("no Chromium at %s (apt-get install chromium)", chromiumPath)
	}
	t.Skipf("no Chromium at %s: the browser tests are skipped (make test installs it)", chromiumPath)
	return ""
}

// screenshotDir is bin/screenshots of the repository (ignored by git), emptied at the start.
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "bin", "screenshots"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots: %s", dir)
	return dir
}

// browser is one headless Chromium for a test; each tab is a context of it.
type browser struct {
	ctx   context.Context
	shots string
}

func startBrowser(t *testing.T) *browser {
	t.Helper()
	exe := findChromium(t)
	profile := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.UserDataDir(profile),
		chromedp.WindowSize(1280, 800), chromedp.Flag("lang", "en-US"),
		// Chromium's own scratch files go to the test's directory, not /tmp.
		chromedp.Env("TMPDIR="+profile),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start chromium: %v", err)
	}
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return &browser{ctx: ctx, shots: screenshotDir(t)}
}

// allowance is a response the test expects to fail: URL containing part, with status.
type allowance struct {
	part   string
	status int64
}

// tab is one browser tab on the dashboard, with its failure watch.
type tab struct {
	t      *testing.T
	ctx    context.Context
	base   string
	mu     sync.Mutex
	allow  []allowance
	issues []string
	urls   []string // every URL the tab requested
	closed bool
	cancel context.CancelFunc
}

// open opens url (relative to the service's root) in a new tab and waits for the page.
func (b *browser) open(t *testing.T, root, path string, allow ...allowance) *tab {
	t.Helper()
	tb := b.newTab(t, root, allow...)
	tb.navigate(path)
	return tb
}

// newTab opens a blank tab with its failure watch.
func (b *browser) newTab(t *testing.T, root string, allow ...allowance) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("new tab: %v", err)
	}
	// The board asks for the forecast grouped by stage (its columns' totals); a service
	// without that grouping answers 400, and the board does without.
	allow = append(allow, allowance{"groupBy=stage", 400})
	tb := &tab{t: t, ctx: ctx, base: root, allow: allow}
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// A failed request shows as a console entry of the network source too: the
			// response check below decides about those.
			if (m.Type == chromedp.ConsoleError || m.IsException()) && m.Source != "network" {
				tb.issue("console %s: %s (%s:%d)", m.Type, m.String(), m.URL, m.Line+1)
			}
		}
	}()
	if err := chromedp.Listen(ctx, func(ev any) {
		switch e := ev.(type) {
		case *network.EventRequestWillBeSent:
			tb.mu.Lock()
			tb.urls = append(tb.urls, e.Request.URL)
			tb.mu.Unlock()
		case *network.EventResponseReceived:
			if e.Response.Status >= 400 && !tb.allowed(e.Response.URL, e.Response.Status) {
				tb.issue("HTTP %d for %s", e.Response.Status, e.Response.URL)
			}
		case *network.EventLoadingFailed:
			if !e.Canceled {
				tb.issue("request failed: %s (%s)", e.ErrorText, e.Type)
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	tb.cancel = cancel
	t.Cleanup(tb.close)
	return tb
}

// close closes the tab and reports what went wrong in it (once).
func (tb *tab) close() {
	tb.mu.Lock()
	if tb.closed {
		tb.mu.Unlock()
		return
	}
	tb.closed = true
	issues := tb.issues
	tb.mu.Unlock()
	tb.cancel()
	for _, is := range issues {
		tb.t.Errorf("browser: %s", is)
	}
}

func (tb *tab) issue(format string, args ...any) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	if !tb.closed {
		tb.issues = append(tb.issues, fmt.Sprintf(format, args...))
	}
}

func (tb *tab) allowed(url string, status int64) bool {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, a := range tb.allow {
		if a.status == status && strings.Contains(url, a.part) {
			return true
		}
	}
	return false
}

// expect announces a refusal the test provokes.
func (tb *tab) expect(part string, status int64) {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	tb.allow = append(tb.allow, allowance{part, status})
}

func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// navigate loads path and waits until the page says it is ready.
func (tb *tab) navigate(path string) {
	tb.t.Helper()
	// Through about:blank, so that a change of the fragment only is a whole new load too.
	tb.do("open "+path, chromedp.Navigate("about:blank"), chromedp.Navigate(tb.base+path),
		chromedp.WaitVisible(chromedp.CSS(`#main[data-ready]`)))
}

// helpers are defined in every evaluation: small finders by what the user sees.
const helpers = `const card = (name) => [...document.querySelectorAll('.card')].find((c) => c.querySelector('.card-name a')?.textContent === name);
const columnOf = (name) => card(name)?.closest('.column')?.dataset.stage || '';
const text = (sel) => document.querySelector(sel)?.textContent || '';
`

// js evaluates an expression (with the helpers) and decodes its value into T.
func js[T any](tb *tab, expr string) T {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 20*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](`(async () => { `+helpers+` return (`+expr+`); })()`, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript condition (with the helpers) until it is true.
func (tb *tab) waitFor(what, cond string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, 15*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.PollFunction[bool](`() => { `+helpers+` return Boolean(`+cond+`); }`,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(12*time.Second)))
	if err != nil {
		tb.shot("timeout-" + strings.ReplaceAll(what, " ", "-"))
		tb.t.Fatalf("waiting for %s: %v", what, err)
	}
}

// shot saves a screenshot of the viewport as <name>.png in the screenshot directory.
func (tb *tab) shot(name string) {
	name = strings.Map(func(r rune) rune {
		if r == '/' || r == '?' || r == '#' || r == '&' || r == '=' || r == ' ' {
			return '-'
		}
		return r
	}, name)
	dir, _ := filepath.Abs(filepath.Join("..", "bin", "screenshots"))
	ctx, cancel := context.WithTimeout(tb.ctx, 10*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(dir, name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
	}
}

// mark puts a value on window that only a reload can take away.
func (tb *tab) mark() string {
	m := fmt.Sprintf("m%d", time.Now().UnixNano())
	js[bool](tb, `(window.__mark = '`+m+`', true)`)
	return m
}

func (tb *tab) notReloaded(m string) {
	tb.t.Helper()
	if got := js[string](tb, `window.__mark || ''`); got != m {
		tb.t.Fatal("the page reloaded; live updates must not need one")
	}
}

// hasStream reports whether the service serves the live stream (GET /api/v1/stream).
func hasStream(t *testing.T, s *testkit.Service) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.Base+"/stream?types=opportunity", nil)
	req.Header.Set("Accept", "text/event-stream")
	if s.Token != "" {
		req.Header.Set("Authorization", "Bearer "+s.Token)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == 200
}

// metricValue is the value of an unlabelled metric on /metrics, "" when absent.
func metricValue(t *testing.T, s *testkit.Service, name string) string {
	t.Helper()
	resp, err := s.HTTPClient().Get(s.Root + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var sb strings.Builder
	_, _ = io.Copy(&sb, resp.Body)
	for _, line := range strings.Split(sb.String(), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// streamAllowance lets a service without the stream answer the page's stream request 404.
func streamAllowance(live bool) []allowance {
	if live {
		return nil
	}
	return []allowance{{"/api/v1/stream", 404}}
}

func decimal(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("not a decimal: %q", s)
	}
	return r
}

// must fails the (sub)test unless r has status want.
func must(t *testing.T, r testkit.Response, want int) {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d: %s", r.Status, want, r.Body)
	}
}

func mustJSON(t *testing.T, r testkit.Response) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("%v: %s", err, r.Body)
	}
	return m
}

// TestBrowser drives the dashboard through a deal's life and the cases where the service
// refuses, in one service and one browser (each subtest with tabs of its own).
func TestBrowser(t *testing.T) {
	b := startBrowser(t)
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	live := hasStream(t, s)
	if !live {
		t.Log("the service has no live stream (GET /api/v1/stream is 404): the live checks are skipped")
	}
	start := time.Now()
	defer func() { t.Logf("browser tests took %v", time.Since(start).Round(100*time.Millisecond)) }()

	t.Run("DealThroughFormBoardWonAndForecast", func(t *testing.T) {
		forecast := b.open(t, s.Root, "/#/forecast?groupBy=owner", streamAllowance(live)...)
		wonCell := `#forecast-table tfoot [data-col=closedWon]`
		forecast.waitFor("forecast table", `document.querySelector('`+wonCell+`')`)
		before := decimal(t, js[string](forecast, `document.querySelector('`+wonCell+`').dataset.amount`))
		fmark := forecast.mark()

		board := b.open(t, s.Root, "/", streamAllowance(live)...)
		name := "Browser deal " + time.Now().Format("150405.000")
		board.do("open the new deal form", chromedp.Click(chromedp.CSS(`#new-deal`)), chromedp.WaitVisible(chromedp.CSS(`dialog input[name=name]`)))
		board.do("fill the form",
			chromedp.SendKeys(chromedp.CSS(`dialog input[name=name]`), name),
			chromedp.SendKeys(chromedp.CSS(`dialog input[name=accountId]`), "acc-browser"),
			chromedp.SendKeys(chromedp.CSS(`dialog input[name=ownerId]`), "owner-browser"),
			chromedp.SendKeys(chromedp.CSS(`dialog input[name=amount]`), "4321.00"),
			chromedp.SetValue(chromedp.CSS(`dialog input[name=closeDate]`), testkit.CloseDate(20)),
			chromedp.Click(chromedp.CSS(`dialog button[type=submit]`)))
		// The card may come with the stream before the form's own answer: wait for both.
		board.waitFor("the new card in Qualification", `columnOf('`+name+`') === 'qualification' && !document.querySelector('dialog')`)
		id := js[string](board, `card('`+name+`').dataset.id`)
		board.shot("board-created")

		// The keyboard way: Space picks the card up, Right Right chooses Proposal, Space drops.
		sel := chromedp.CSS(`.card[data-id="` + id + `"]`)
		board.do("move by keyboard", chromedp.Focus(sel), chromedp.KeyEvent(" "), chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(" "))
		board.waitFor("the card in Proposal", `columnOf('`+name+`') === 'proposal' && !card('`+name+`').classList.contains('pending')`)
		if o := mustJSON(t, s.Do("GET", "/opportunities/"+id, nil, nil)); o["stageId"] != "proposal" || o["version"] != 2.0 {
			t.Fatalf("after the keyboard move: %v", o)
		}

		// Drag and drop onto Negotiation.
		board.do("drag to Negotiation", chromedp.DragAndDrop(sel, chromedp.CSS(`.column[data-stage=negotiation]`)))
		board.waitFor("the card in Negotiation", `columnOf('`+name+`') === 'negotiation' && !card('`+name+`').classList.contains('pending')`)
		if o := mustJSON(t, s.Do("GET", "/opportunities/"+id, nil, nil)); o["stageId"] != "negotiation" || o["version"] != 3.0 {
			t.Fatalf("after the drag: %v", o)
		}

		// Closed won through the card's actions.
		board.do("close won", chromedp.Click(chromedp.CSS(`.card[data-id="`+id+`"] .card-menu`)),
			chromedp.Click(chromedp.CSS(`dialog .btn-won`)),
			chromedp.WaitVisible(chromedp.CSS(`dialog input[name=closeDate]`)),
			chromedp.Click(chromedp.CSS(`dialog button[type=submit]`)))
		board.waitFor("the card in Closed Won", `columnOf('`+name+`') === 'closed_won' && !document.querySelector('dialog')`)
		if o := mustJSON(t, s.Do("GET", "/opportunities/"+id, nil, nil)); o["status"] != "won" {
			t.Fatalf("after close won: %v", o)
		}

		// The forecast's closed-won figure moved by the deal's amount: live, or after a reload
		// where the service has no stream.
		want := new(big.Rat).Add(before, decimal(t, "4321.00")).FloatString(2)
		if !live {
			forecast.navigate("/#/forecast?groupBy=owner&reload=1")
		}
		forecast.waitFor("closed won "+want, `document.querySelector('`+wonCell+`')?.dataset.amount === '`+want+`'`)
		if live {
			forecast.notReloaded(fmark)
		}
		forecast.shot("forecast")

		// The deal's page: every field and the audit trail of its four changes.
		board.navigate("/#/opportunity/" + id)
		board.waitFor("four events in the timeline", `document.querySelectorAll('#timeline > li').length === 4`)
		if got := js[string](board, `text('#timeline > li:first-child .ev-title')`); !strings.HasPrefix(got, "Closed won") {
			t.Errorf("newest event: %q", got)
		}
		board.shot("opportunity")
	})

	t.Run("KafkaCommandAppearsLive", func(t *testing.T) {
		if !live {
			t.Skip("needs the live stream")
		}
		produce := func(id, name string) time.Time {
			cmd := domain.Command{Type: domain.CmdCreate, CommandID: id, OpportunityID: id, IssuedAt: time.Now().UTC(), Actor: "lead-service",
				Create: &domain.CreateOpportunity{Name: name, AccountID: "acc-k", OwnerID: "owner-k", Amount: "777.00", Currency: "USD", CloseDate: testkit.CloseDate(15)}}
			val, err := codecs.EncodeCommand(cmd)
			if err != nil {
				t.Fatal(err)
			}
			sent := time.Now()
			testkit.Produce(t, s.Run.BrokerAddr, topics.Commands, &sarama.ProducerMessage{Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(val)})
			return sent
		}
		onBoard := func(id string) string {
			return `document.querySelector('.column[data-stage=qualification] .card[data-id="` + id + `"]')`
		}
		first := b.open(t, s.Root, "/")
		second := b.open(t, s.Root, "/")
		m1, m2 := first.mark(), second.mark()
		second.waitFor("live", `document.querySelector('#live').dataset.state === 'live'`)

		id := fmt.Sprintf("kafka-live-%d", time.Now().UnixNano())
		sent := produce(id, "Straight from Kafka")
		first.waitFor("the Kafka deal on the board", onBoard(id))
		t.Logf("a command produced to Kafka showed on the open board after %v", time.Since(sent).Round(time.Millisecond))
		second.waitFor("the Kafka deal on the other tab", onBoard(id))
		first.notReloaded(m1)
		second.notReloaded(m2)
		// The two tabs share one stream (a browser has few connections per host).
		if open := metricValue(t, s, "crm_streams_open"); open != "" && open != "1" {
			t.Errorf("two tabs hold %s streams, want 1", open)
		}

		t.Logf("streams open with two tabs: %q", metricValue(t, s, "crm_streams_open"))
		// The tab that read the stream closes: the other takes over where it left off.
		first.close()
		id2 := fmt.Sprintf("kafka-live-%d", time.Now().UnixNano())
		produce(id2, "After the handover")
		second.waitFor("the second Kafka deal", onBoard(id2))
		second.notReloaded(m2)
	})

	t.Run("RefusedMoveShowsFieldErrorAndPutsCardBack", func(t *testing.T) {
		strict := map[string]any{"name": "Strict", "stages": []map[string]any{
			{"id": "lead", "name": "Lead", "probability": 10, "forecastCategory": "pipeline", "status": "open"},
			{"id": "offer", "name": "Offer", "probability": 60, "forecastCategory": "best_case", "status": "open", "requiredFields": []string{"nextStep"}},
			{"id": "won", "name": "Won", "probability": 100, "forecastCategory": "closed", "status": "won"},
			{"id": "lost", "name": "Lost", "probability": 0, "forecastCategory": "omitted", "status": "lost"},
		}}
		must(t, s.Do("PUT", "/pipelines/strict", strict, nil), 200)
		body := testkit.CreateBody("strict-1")
		body["pipelineId"] = "strict"
		must(t, s.Do("POST", "/opportunities", body, testkit.Wait), 201)

		board := b.open(t, s.Root, "/#/board?pipeline=strict", streamAllowance(live)...)
		board.expect("/opportunities/strict-1/stage", 422)
		board.waitFor("the card in Lead", `columnOf('Deal strict-1') === 'lead'`)
		board.do("move to Offer", chromedp.Focus(chromedp.CSS(`.card[data-id="strict-1"]`)), chromedp.KeyEvent(" "), chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(" "))
		board.waitFor("the refusal on the card", `card('Deal strict-1')?.querySelector('.card-error')`)
		if col := js[string](board, `columnOf('Deal strict-1')`); col != "lead" {
			t.Fatalf("the refused card is in %q, want it back in lead", col)
		}
		if msg := js[string](board, `card('Deal strict-1').querySelector('.card-error').textContent`); !strings.Contains(msg, "Next step") {
			t.Fatalf("the card's error does not name the field: %q", msg)
		}
		board.shot("board-refused-move")
		if o := mustJSON(t, s.Do("GET", "/opportunities/strict-1", nil, nil)); o["stageId"] != "lead" {
			t.Fatalf("refused move applied: %v", o)
		}
	})

	t.Run("VersionConflictBetweenTabsIsShown", func(t *testing.T) {
		must(t, s.Do("POST", "/opportunities", testkit.CreateBody("conflict-1"), testkit.Wait), 201)
		a := b.open(t, s.Root, "/#/opportunity/conflict-1?edit=1", streamAllowance(live)...)
		a.expect("/opportunities/conflict-1", 409)
		other := b.open(t, s.Root, "/#/opportunity/conflict-1?edit=1", streamAllowance(live)...)
		a.waitFor("the form", `document.querySelector('#deal-form input[name=name]')`)
		other.waitFor("the form", `document.querySelector('#deal-form input[name=amount]')`)

		// This tab starts editing; meanwhile the other tab saves a new amount.
		a.do("rename", chromedp.SetValue(chromedp.CSS(`#deal-form input[name=name]`), "Renamed in tab A"))
		other.do("change the amount", chromedp.SetValue(chromedp.CSS(`#deal-form input[name=amount]`), "9999.00"), chromedp.Click(chromedp.CSS(`#save-deal`)))
		other.waitFor("saved", `!document.querySelector('#deal-form') && text('[data-prop="Amount"]').includes('9,999.00')`)

		// This tab, still on version 1, saves its new name: the conflict is shown, not lost.
		if live {
			a.waitFor("the note that the deal changed", `text('#main').includes('changed while you were editing')`)
		}
		a.do("save", chromedp.Click(chromedp.CSS(`#save-deal`)))
		a.waitFor("the conflict banner", `document.querySelector('#conflict')`)
		if msg := js[string](a, `text('#conflict')`); !strings.Contains(msg, "Amount") || !strings.Contains(msg, "9999.00") {
			t.Fatalf("the conflict does not say what the other tab changed: %q", msg)
		}
		if v := js[string](a, `document.querySelector('#deal-form input[name=name]').value`); v != "Renamed in tab A" {
			t.Fatalf("the user's edit was lost: %q", v)
		}
		a.shot("opportunity-conflict")
		if o := mustJSON(t, s.Do("GET", "/opportunities/conflict-1", nil, nil)); o["name"] != "Deal conflict-1" || o["amount"] != "9999.00" {
			t.Fatalf("the stale save went through: %v", o)
		}
		// Saving on top of the other change keeps both.
		a.do("save on top", chromedp.Click(chromedp.CSS(`#save-anyway`)))
		a.waitFor("saved", `!document.querySelector('#deal-form')`)
		if o := mustJSON(t, s.Do("GET", "/opportunities/conflict-1", nil, nil)); o["name"] != "Renamed in tab A" || o["amount"] != "9999.00" {
			t.Fatalf("after saving on top: %v", o)
		}
	})

	t.Run("EditFormErrorsBesideFieldsAndOverrides", func(t *testing.T) {
		must(t, s.Do("POST", "/opportunities", testkit.CreateBody("edit-1"), testkit.Wait), 201)
		tb := b.open(t, s.Root, "/#/opportunity/edit-1?edit=1", streamAllowance(live)...)
		tb.expect("/opportunities/edit-1", 422)
		tb.do("a bad amount", chromedp.SetValue(chromedp.CSS(`#deal-form input[name=amount]`), "12.3.4"), chromedp.Click(chromedp.CSS(`#save-deal`)))
		tb.waitFor("the error beside the amount", `document.querySelector('[data-field-wrap=amount] .field-error')`)
		if inv := js[string](tb, `document.querySelector('#deal-form input[name=amount]').getAttribute('aria-invalid') || ''`); inv != "true" {
			t.Errorf("the amount is not marked invalid: %q", inv)
		}
		tb.shot("opportunity-field-error")
		// A probability override, then back to the stage default.
		tb.do("override the probability", chromedp.SetValue(chromedp.CSS(`#deal-form input[name=amount]`), "12500.00"),
			chromedp.SetValue(chromedp.CSS(`#deal-form input[name=probability]`), "35"), chromedp.Click(chromedp.CSS(`#save-deal`)))
		tb.waitFor("the override shown", `text('[data-prop="Probability"]').includes('35%') && document.querySelector('[data-reset=probability]')`)
		if o := mustJSON(t, s.Do("GET", "/opportunities/edit-1", nil, nil)); o["probability"] != 35.0 || o["probabilityOverride"] == nil {
			t.Fatalf("after the override: %v", o)
		}
		tb.do("back to the stage default", chromedp.Click(chromedp.CSS(`[data-reset=probability]`)))
		tb.waitFor("the stage default", `text('[data-prop="Probability"]').includes('10%') && !document.querySelector('[data-reset=probability]')`)
		if o := mustJSON(t, s.Do("GET", "/opportunities/edit-1", nil, nil)); o["probability"] != 10.0 || o["probabilityOverride"] != nil {
			t.Fatalf("after back to the default: %v", o)
		}
	})

	t.Run("SettingsValidationInline", func(t *testing.T) {
		tb := b.open(t, s.Root, "/#/settings?pipeline=default", streamAllowance(live)...)
		tb.expect("/api/v1/pipelines/default", 422)
		tb.do("a probability of 150", chromedp.SetValue(chromedp.CSS(`[data-field="stages[1].probability"]`), "150"),
			chromedp.Evaluate[chromedp.Void](`document.querySelector('[data-field="stages[1].probability"]').dispatchEvent(new Event('input'))`),
			chromedp.Click(chromedp.CSS(`#save-pipeline`)))
		tb.waitFor("the error in the cell", `document.querySelector('tr[data-row="1"] .field-error')`)
		if msg := js[string](tb, `text('tr[data-row="1"] .field-error')`); !strings.Contains(msg, "0..100") {
			t.Errorf("cell error: %q", msg)
		}
		tb.shot("settings-validation")
		if o := mustJSON(t, s.Do("GET", "/pipelines/default", nil, nil)); o["stages"].([]any)[1].(map[string]any)["probability"] != 20.0 {
			t.Fatalf("the bad pipeline was stored: %v", o)
		}
	})

	t.Run("MissingFXRateShowsTheProblem", func(t *testing.T) {
		must(t, s.Do("POST", "/opportunities", map[string]any{"id": "eur-1", "name": "Euro deal", "accountId": "acc-e", "ownerId": "owner-e",
			"amount": "1000.00", "currency": "EUR", "closeDate": testkit.CloseDate(5)}, testkit.Wait), 201)
		fc := b.open(t, s.Root, "/#/forecast", append(streamAllowance(live), allowance{"/api/v1/forecast", 422})...)
		fc.waitFor("the missing rate problem", `document.querySelector('#forecast-error')`)
		if js[bool](fc, `Boolean(document.querySelector('#forecast-table'))`) {
			t.Fatal("figures shown without the rate")
		}
		if msg := js[string](fc, `text('#forecast-error')`); !strings.Contains(msg, "EUR") {
			t.Fatalf("problem does not name the currency: %q", msg)
		}
		fc.shot("forecast-missing-rate")
		must(t, s.Do("PUT", "/fx-rates/EUR", map[string]any{"rate": "1.10"}, nil), 200)
		fc.navigate("/#/forecast?groupBy=category")
		fc.waitFor("the table", `document.querySelector('#forecast-table')`)
	})

	t.Run("EveryPageAtDesktopAndPhoneWidth", func(t *testing.T) {
		must(t, s.Do("POST", "/opportunities", testkit.CreateBody("pages-1"), testkit.Wait), 201)
		pages := map[string]string{"board": "/", "forecast-by-month": "/#/forecast?groupBy=month", "analytics": "/#/analytics", "settings": "/#/settings", "opportunity-edit": "/#/opportunity/pages-1?edit=1"}
		tb := b.open(t, s.Root, "/", streamAllowance(live)...)
		for name, path := range pages {
			tb.navigate(path)
			tb.shot(name)
			// Every control is labelled for screen readers, every button has a name.
			unlabelled := js[[]string](tb, `[...document.querySelectorAll('input, select, textarea, button')]
				.filter((el) => el.type !== 'hidden' && !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby')
					&& !(el.tagName === 'BUTTON' && el.textContent.trim()))
				.map((el) => el.outerHTML.slice(0, 120))`)
			for _, u := range unlabelled {
				t.Errorf("%s: a control without a label: %s", name, u)
			}
		}
		tb.do("phone width", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
		for _, name := range []string{"board", "forecast-by-month"} {
			tb.navigate(pages[name] + map[bool]string{true: "?", false: "&"}[!strings.Contains(pages[name], "?")] + "w=phone")
			if w := js[float64](tb, `document.documentElement.scrollWidth`); w > 400 {
				t.Errorf("%s at phone width scrolls sideways: %v px wide", name, w)
			}
			tb.shot(name + "-phone")
		}
	})
}

// TestBrowserTokens: with tokens configured the page asks for one, sends it as a bearer
// token (never in a URL), and works with it; a read-only token cannot write.
func TestBrowserTokens(t *testing.T) {
	b := startBrowser(t)
	const admin, reader = "admin-token-0123456789abcdef", "read-token-0123456789abcdef"
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir(), Tokens: "admin:" + admin + ":ann,read:" + reader + ":viewer"})
	live := hasStream(t, s)
	tb := b.newTab(t, s.Root, append(streamAllowance(live), allowance{"/api/v1/", 401})...)
	tb.do("open", chromedp.Navigate(s.Root+"/"), chromedp.WaitVisible(chromedp.CSS(`dialog input[name=token]`)))
	tb.shot("token-prompt")
	tb.do("give the token", chromedp.SendKeys(chromedp.CSS(`dialog input[name=token]`), admin), chromedp.Click(chromedp.CSS(`dialog button[type=submit]`)))
	tb.waitFor("the board", `document.querySelector('#main[data-ready] #board')`)
	tb.do("create a deal", chromedp.Click(chromedp.CSS(`#new-deal`)), chromedp.WaitVisible(chromedp.CSS(`dialog input[name=name]`)),
		chromedp.SendKeys(chromedp.CSS(`dialog input[name=name]`), "Token deal"),
		chromedp.SendKeys(chromedp.CSS(`dialog input[name=accountId]`), "acc-t"),
		chromedp.SendKeys(chromedp.CSS(`dialog input[name=ownerId]`), "owner-t"),
		chromedp.SendKeys(chromedp.CSS(`dialog input[name=amount]`), "10.00"),
		chromedp.SetValue(chromedp.CSS(`dialog input[name=closeDate]`), testkit.CloseDate(3)),
		chromedp.Click(chromedp.CSS(`dialog button[type=submit]`)))
	tb.waitFor("the new card", `columnOf('Token deal') === 'qualification' && !document.querySelector('dialog')`)
	id := js[string](tb, `card('Token deal').dataset.id`)
	if o := mustJSON(t, s.Do("GET", "/opportunities/"+id+"/history", nil, nil)); fmt.Sprint(o["items"].([]any)[0].(map[string]any)["actor"]) != "ann" {
		t.Fatalf("the command's actor is not the token's name: %v", o)
	}
	// Signed out, a read token: reads work, a write is refused with the problem shown.
	tb.do("sign out", chromedp.Click(chromedp.CSS(`#signout`)), chromedp.WaitVisible(chromedp.CSS(`dialog input[name=token]`)))
	tb.do("read token", chromedp.SendKeys(chromedp.CSS(`dialog input[name=token]`), reader), chromedp.Click(chromedp.CSS(`dialog button[type=submit]`)))
	tb.waitFor("the board again", `columnOf('Token deal') === 'qualification'`)
	tb.expect("/api/v1/opportunities/"+id+"/stage", 403)
	tb.do("move with a read token", chromedp.Focus(chromedp.CSS(`.card[data-id="`+id+`"]`)), chromedp.KeyEvent(" "), chromedp.KeyEvent(kb.ArrowRight), chromedp.KeyEvent(" "))
	tb.waitFor("the refusal", `card('Token deal')?.querySelector('.card-error') && columnOf('Token deal') === 'qualification'`)
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, u := range tb.urls {
		if strings.Contains(u, admin) || strings.Contains(u, reader) {
			t.Errorf("a token in a URL: %s", u)
		}
	}
	if len(tb.urls) == 0 {
		t.Error("no requests seen")
	}
}

// TestBrowserFirstLoad10k: with 10,000 opportunities the board's first load (modules,
// pipelines, a page of every column, the server's totals) is ready in under a second. The
// board never reads every card: a page per column, totals from GET /forecast. It measures,
// so it runs without the race detector (make test runs it so after the -race pass, which
// skips it: there the service is several times slower and the figure says nothing).
func TestBrowserFirstLoad10k(t *testing.T) {
	if raceEnabled {
		t.Skip("a timing test: run without -race (make test does)")
	}
	b := startBrowser(t)
	s := testkit.StartService(t, testkit.ServiceOpts{Data: t.TempDir()})
	must(t, s.Do("PUT", "/fx-rates/EUR", map[string]any{"rate": "1.08"}, nil), 200)
	const n = 10000
	stages := []string{"qualification", "discovery", "proposal", "negotiation"}
	now := time.Now().UTC()
	msgs := make([]*sarama.ProducerMessage, 0, n)
	for i := range n {
		id := fmt.Sprintf("load-%05d", i)
		cur := "USD"
		if i%5 == 0 {
			cur = "EUR"
		}
		cmd := domain.Command{Type: domain.CmdCreate, CommandID: id, OpportunityID: id, IssuedAt: now, Actor: "loader",
			Create: &domain.CreateOpportunity{Name: "Deal " + id, AccountID: fmt.Sprintf("acc-%d", i%300), OwnerID: fmt.Sprintf("owner-%02d", i%40),
				StageID: stages[i%len(stages)], Amount: fmt.Sprintf("%d.00", 1000+i%9000), Currency: cur, CloseDate: testkit.CloseDate(i%120 - 20)}}
		val, err := codecs.EncodeCommand(cmd)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, &sarama.ProducerMessage{Key: sarama.StringEncoder(id), Value: sarama.ByteEncoder(val)})
	}
	seeded := time.Now()
	p, err := topics.NewSyncProducer(topics.ClientOptions{Brokers: []string{s.Run.BrokerAddr}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(msgs); i += 500 {
		batch := msgs[i:min(i+500, len(msgs))]
		for _, m := range batch {
			m.Topic = topics.Commands
		}
		if err := p.SendMessages(batch); err != nil {
			t.Fatal(err)
		}
	}
	p.Close()
	testkit.Eventually(t, "10,000 open deals in the forecast", func() bool {
		r := s.Do("GET", "/forecast?from=1900-01-01&to=2999-12-31", nil, nil)
		if r.Status != 200 {
			return false
		}
		var f struct {
			Total struct {
				Open struct {
					Count int `json:"count"`
				} `json:"open"`
			} `json:"total"`
		}
		return json.Unmarshal(r.Body, &f) == nil && f.Total.Open.Count == n
	})
	t.Logf("seeded %d opportunities through Kafka in %v", n, time.Since(seeded).Round(100*time.Millisecond))

	tb := b.newTab(t, s.Root, streamAllowance(hasStream(t, s))...)
	var loads []float64
	for range 3 {
		tb.navigate("/")
		tb.waitFor("the board ready", `document.body.dataset.boardReady`)
		loads = append(loads, js[float64](tb, `Number(document.body.dataset.boardReady)`))
	}
	cards := js[float64](tb, `document.querySelectorAll('.card').length`)
	t.Logf("board with %d opportunities ready %.0f ms after navigation (first load), then %.0f and %.0f ms; %v cards in the page",
		n, loads[0], loads[1], loads[2], cards)
	tb.shot("board-10k")
	if cards > 200 {
		t.Errorf("the board holds %v cards: it must page, not load everything", cards)
	}
	if loads[0] > 1000 {
		t.Errorf("first load took %.0f ms, want under 1 s", loads[0])
	}
}
