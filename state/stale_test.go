package state_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/state"
)

// broker is what a Validator reports in these tests.
type broker struct {
	expect state.Expect
	calls  []string
}

func (b *broker) validate(topic string, partition int32) (state.Expect, error) {
	b.calls = append(b.calls, topic)
	return b.expect, nil
}

type staleEnv struct {
	root   string
	broker *broker
	logs   *bytes.Buffer
	wipes  []string // from Options.OnWipe
}

func newStaleEnv(t *testing.T) *staleEnv {
	return &staleEnv{root: t.TempDir(), broker: &broker{}, logs: &bytes.Buffer{}}
}

func (e *staleEnv) open(t *testing.T, expect state.Expect) *state.Store {
	t.Helper()
	e.broker.expect = expect
	build := state.NewBuilder(e.root, state.Options{
		Validate: e.broker.validate,
		Logger:   slog.New(slog.NewTextHandler(e.logs, nil)),
		OnWipe: func(topic string, partition int32, reason state.WipeReason) {
			e.wipes = append(e.wipes, fmt.Sprintf("%s/%d:%s", topic, partition, reason))
		},
	})
	st, err := build("crm-table", 3)
	must(t, err)
	must(t, st.Open())
	s := st.(*state.Store)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// openKept is open for a cache that must survive the validation: what names
// it in the failure.
func (e *staleEnv) openKept(t *testing.T, expect state.Expect, what string) *state.Store {
	t.Helper()
	s := e.open(t, expect)
	if s.Wiped() {
		t.Fatalf("%s wiped", what)
	}
	return s
}

// fill writes a table partition that applied offsets up to 9.
func fill(t *testing.T, s *state.Store) {
	t.Helper()
	must(t, s.Set("acct-1", []byte("v1")))
	must(t, s.SetOffset(9))
	must(t, s.MarkRecovered())
	must(t, s.Close())
}

func TestStaleTopicIDMismatchWipes(t *testing.T) {
	e := newStaleEnv(t)
	fill(t, e.open(t, state.Expect{TopicID: "id-A", HighWaterMark: -1}))

	s := e.open(t, state.Expect{TopicID: "id-B", HighWaterMark: 100})
	if !s.Wiped() {
		t.Fatal("topic id changed but the cache was kept")
	}
	expectValue(t, s, "acct-1", nil)
	expectOffset(t, s, -3, -3)
	if !strings.Contains(e.logs.String(), "level=WARN") || !strings.Contains(e.logs.String(), "reason=topic-id-changed") {
		t.Fatalf("wipe not logged at Warn with its reason:\n%s", e.logs)
	}
	expectSeq(t, "OnWipe calls", e.wipes, "crm-table/3:topic-id-changed")
	if len(e.broker.calls) != 2 || e.broker.calls[0] != "crm-table" {
		t.Fatalf("validator calls = %v", e.broker.calls)
	}
	// The new id is recorded: reopening against it keeps new data.
	must(t, s.Set("acct-2", []byte("v2")))
	must(t, s.SetOffset(0))
	must(t, s.Close())
	s = e.openKept(t, state.Expect{TopicID: "id-B", HighWaterMark: 1}, "matching cache")
	expectValue(t, s, "acct-2", []byte("v2"))
}

func TestStaleOffsetAtOrPastHighWaterMarkWipes(t *testing.T) {
	for _, hwm := range []int64{0, 9, 5} {
		e := newStaleEnv(t)
		fill(t, e.open(t, state.Expect{TopicID: "id-A", HighWaterMark: -1}))
		s := e.open(t, state.Expect{TopicID: "id-A", HighWaterMark: hwm})
		if !s.Wiped() {
			t.Fatalf("hwm %d: stored offset 9 kept", hwm)
		}
		expectValue(t, s, "acct-1", nil)
		expectOffset(t, s, -3, -3)
		if !strings.Contains(e.logs.String(), "reason=offset-past-hwm") {
			t.Fatalf("hwm %d: reason not logged:\n%s", hwm, e.logs)
		}
		expectSeq(t, "OnWipe calls", e.wipes, "crm-table/3:offset-past-hwm")
	}
}

func TestMatchingCacheKept(t *testing.T) {
	for _, expect := range []state.Expect{
		{TopicID: "id-A", HighWaterMark: 10}, // offset 9 is the last record
		{TopicID: "id-A", HighWaterMark: 500},
		{TopicID: "", HighWaterMark: 10},     // id unknown
		{TopicID: "id-A", HighWaterMark: -1}, // hwm unknown
	} {
		e := newStaleEnv(t)
		fill(t, e.open(t, state.Expect{TopicID: "id-A", HighWaterMark: -1}))
		s := e.open(t, expect)
		if s.Wiped() || len(e.wipes) != 0 {
			t.Fatalf("%+v: matching cache wiped", expect)
		}
		expectValue(t, s, "acct-1", []byte("v1"))
		expectOffset(t, s, -3, 9)
	}
}

// A cache written without a topic id (no validator, or an id the broker
// did not report) adopts the first id it sees, and a later change wipes it.
func TestTopicIDAdoptedWhenMissing(t *testing.T) {
	e := newStaleEnv(t)
	fill(t, e.open(t, state.Expect{HighWaterMark: -1}))
	s := e.openKept(t, state.Expect{TopicID: "id-A", HighWaterMark: 10}, "cache without a stored id")
	expectValue(t, s, "acct-1", []byte("v1"))
	must(t, s.Close())
	s = e.open(t, state.Expect{TopicID: "id-B", HighWaterMark: 10})
	if !s.Wiped() {
		t.Fatal("adopted id not enforced")
	}
}

// Without a stored offset there is nothing to compare with the hwm.
func TestNoStoredOffsetNotWipedByHighWaterMark(t *testing.T) {
	e := newStaleEnv(t)
	s := e.open(t, state.Expect{TopicID: "id-A", HighWaterMark: -1})
	must(t, s.Set("k", []byte("v")))
	must(t, s.Close())
	s = e.openKept(t, state.Expect{TopicID: "id-A", HighWaterMark: 0}, "cache without an offset")
	expectValue(t, s, "k", []byte("v"))
}

// A leftover from a wipe interrupted by a crash is cleaned up on Open.
func TestInterruptedWipeCleanedUp(t *testing.T) {
	e := newStaleEnv(t)
	fill(t, e.open(t, state.Expect{HighWaterMark: -1}))
	leftover := filepath.Join(e.root, state.PartitionDir("crm-table", 3)+".wiping")
	must(t, os.MkdirAll(filepath.Join(leftover, "junk"), 0o755))
	s := e.open(t, state.Expect{HighWaterMark: -1})
	expectValue(t, s, "acct-1", []byte("v1"))
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Fatalf("leftover of an interrupted wipe still there: %v", err)
	}
}

// A DB that pebble reports as corrupt is rebuilt rather than failing the
// processor forever.
func TestCorruptCacheWiped(t *testing.T) {
	e := newStaleEnv(t)
	fill(t, e.open(t, state.Expect{HighWaterMark: -1}))
	dir := filepath.Join(e.root, state.PartitionDir("crm-table", 3))
	manifests, err := filepath.Glob(filepath.Join(dir, "MANIFEST-*"))
	must(t, err)
	if len(manifests) == 0 {
		t.Fatal("no MANIFEST to corrupt")
	}
	for _, m := range manifests {
		must(t, os.WriteFile(m, bytes.Repeat([]byte{0xde, 0xad}, 512), 0o644))
	}
	s := e.open(t, state.Expect{HighWaterMark: -1})
	if !s.Wiped() {
		t.Fatal("corrupt cache not reported as wiped")
	}
	expectSeq(t, "OnWipe calls", e.wipes, "crm-table/3:corrupt")
	expectValue(t, s, "acct-1", nil)
	must(t, s.Set("k", []byte("v")))
	expectValue(t, s, "k", []byte("v"))
}
