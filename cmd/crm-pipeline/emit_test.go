package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"github.com/crm-pipeline/crm-pipeline/query"
	"github.com/crm-pipeline/crm-pipeline/topics"
)

// emitPartitions is the partition count of the topics the emit tests provision: more than one,
// so that a record on the wrong partition shows.
const emitPartitions = 4

// startEmitBroker starts an embedded broker with the service's topics, as `serve` provisions
// them, and returns its address.
func startEmitBroker(t *testing.T) string {
	t.Helper()
	b, err := topics.StartBroker(topics.BrokerOptions{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatalf("start broker: %v", err)
	}
	t.Cleanup(b.Close)
	provisionFor(t, b.Addr(), emitPartitions)
	return b.Addr()
}

// provisionFor creates the service's topics with partitions partitions on the broker at
// addr, as serve does, and checks the commands topic has them.
func provisionFor(t *testing.T, addr string, partitions int32) {
	t.Helper()
	c, err := topics.NewClient(topics.ClientOptions{Brokers: []string{addr}, ClientID: "emit-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	admin, err := sarama.NewClusterAdminFromClient(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := topics.Provision(admin, topics.Catalog(partitions), 1, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("provision: %v", err)
	}
	n, err := topics.Partitions(c, topics.Commands)
	if err != nil {
		t.Fatalf("provision: %v", err)
	}
	if n != partitions {
		t.Fatalf("commands topic has %d partitions, want %d", n, partitions)
	}
}

// runEmitT runs emit in process with stdin and returns what it printed.
func runEmitT(t *testing.T, args []string, stdin string) testkit.Output {
	t.Helper()
	return testkit.RunLogged(t, fmt.Sprintf("emit %q", args), func(ctx context.Context, stdout, stderr io.Writer) error {
		return runEmit(ctx, args, strings.NewReader(stdin), stdout, stderr)
	})
}

// sentReport is one "sent ..." line of emit's stdout.
type sentReport struct {
	typ, oppID, commandID string
	partition             int32
	offset                int64
}

var sentLine = regexp.MustCompile(`^sent (\S+) (\S+) commandId=(\S+) partition=(\d+) offset=(\d+)$`)

// parseSent returns the "sent ..." lines of stdout and checks that the last line is the summary.
func parseSent(t *testing.T, stdout string, wantSent, wantFailed int) []sentReport {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if want := fmt.Sprintf("%d sent, %d failed", wantSent, wantFailed); lines[len(lines)-1] != want {
		t.Fatalf("summary %q, want %q", lines[len(lines)-1], want)
	}
	var out []sentReport
	for _, l := range lines[:len(lines)-1] {
		m := sentLine.FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("stdout line %q is not a sent report", l)
		}
		p, _ := strconv.ParseInt(m[4], 10, 32)
		o, _ := strconv.ParseInt(m[5], 10, 64)
		out = append(out, sentReport{typ: m[1], oppID: m[2], commandID: m[3], partition: int32(p), offset: o})
	}
	if len(out) != wantSent {
		t.Fatalf("%d sent reports, want %d", len(out), wantSent)
	}
	return out
}

// readCommands reads the whole commands topic, by partition and offset.
func readCommands(t *testing.T, broker string) map[[2]int64]*sarama.ConsumerMessage {
	t.Helper()
	out := map[[2]int64]*sarama.ConsumerMessage{}
	for _, m := range testkit.ReadAll(t, broker, topics.Commands) {
		out[[2]int64{int64(m.Partition), m.Offset}] = m
	}
	return out
}

// checkRecords asserts that every sent report matches a record on the commands topic, keyed by
// the opportunity id on Kafka's default partition, that decodes to the command CommandFromJSON
// makes of lines[i]; and that the topic holds nothing else. The clock and id generator fed
// to CommandFromJSON return what the record carries, then those defaults are checked apart.
func checkRecords(t *testing.T, broker string, sent []sentReport, lines []string, start, end time.Time) {
	t.Helper()
	records := readCommands(t, broker)
	if len(records) != len(sent) {
		t.Fatalf("commands topic holds %d records, want %d", len(records), len(sent))
	}
	for i, s := range sent {
		m := records[[2]int64{int64(s.partition), s.offset}]
		if m == nil {
			t.Fatalf("no record at partition %d offset %d (%+v)", s.partition, s.offset, s)
		}
		if string(m.Key) != s.oppID {
			t.Errorf("record key %q, want %q", m.Key, s.oppID)
		}
		if want := topics.PartitionOf(s.oppID, emitPartitions); m.Partition != want {
			t.Errorf("%s on partition %d, want %d", s.oppID, m.Partition, want)
		}
		got, err := codecs.DecodeCommand(m.Value)
		if err != nil {
			t.Fatalf("decode record of line %d: %v", i, err)
		}
		want, err := query.CommandFromJSON([]byte(lines[i]),
			func() time.Time { return got.IssuedAt }, func() string { return got.CommandID })
		if err != nil {
			t.Fatalf("line %q: %v", lines[i], err)
		}
		if !got.IssuedAt.Equal(want.IssuedAt) {
			t.Errorf("issuedAt %v, want %v", got.IssuedAt, want.IssuedAt)
		}
		got.IssuedAt, want.IssuedAt = time.Time{}, time.Time{}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("record of line %q:\n got %s\nwant %s", lines[i], showCommand(got), showCommand(want))
		}
		if string(got.Type) != s.typ || got.OpportunityID != s.oppID || got.CommandID != s.commandID {
			t.Errorf("report %+v does not match record %s", s, showCommand(got))
		}
		if !strings.Contains(lines[i], `"issuedAt"`) {
			at, _ := codecs.DecodeCommand(m.Value)
			if at.IssuedAt.Before(start.Truncate(time.Microsecond)) || at.IssuedAt.After(end) {
				t.Errorf("default issuedAt %v not within the run [%v, %v]", at.IssuedAt, start, end)
			}
		}
		if !strings.Contains(lines[i], `"commandId"`) && len(got.CommandID) != 36 {
			t.Errorf("default commandId %q is not a UUID", got.CommandID)
		}
		if !strings.Contains(lines[i], `"actor"`) && got.Actor != "emit" {
			t.Errorf("default actor %q, want emit", got.Actor)
		}
	}
}

func showCommand(c domain.Command) string {
	s := fmt.Sprintf("%+v", c)
	for _, b := range []any{c.Create, c.Update, c.ChangeStage, c.CloseWon, c.CloseLost, c.Reopen} {
		if v := reflect.ValueOf(b); !v.IsNil() {
			s += fmt.Sprintf(" body=%+v", v.Elem().Interface())
		}
	}
	if c.ExpectedVersion != nil {
		s += fmt.Sprintf(" expectedVersion=%d", *c.ExpectedVersion)
	}
	return s
}

// emitGood are valid lines of every command type on several opportunities.
var emitGood = []string{
	`{"type":"CreateOpportunity","id":"emit-1","commandId":"c-1","actor":"importer","issuedAt":"2025-01-02T03:04:05.123456+01:00","name":"Acme","accountId":"acc-1","ownerId":"u-1","amount":"12500.00","currency":"USD","closeDate":"2025-06-30"}`,
	`{"type":"CreateOpportunity","commandId":"c-2","name":"Globex","accountId":"acc-2","ownerId":"u-2","amount":"99.50","currency":"EUR","closeDate":"2025-07-31","probability":40,"leadId":"lead-1"}`,
	`{"type":"UpdateOpportunity","opportunityId":"emit-1","commandId":"c-3","expectedVersion":1,"probability":null,"forecastCategory":"commit","nextStep":null}`,
	`{"type":"ChangeStage","opportunityId":"emit-1","stageId":"proposal"}`,
	`{"type":"CloseWon","opportunityId":"emit-3","commandId":"c-5","amount":"10.00"}`,
	`{"type":"CloseLost","opportunityId":"emit-4","reason":"price","competitor":"Initech"}`,
	`{"type":"Reopen","opportunityId":"emit-5","stageId":"discovery","actor":"Zoë"}`,
}

func TestEmitSendsEveryCommandType(t *testing.T) {
	t.Parallel()
	broker := startEmitBroker(t)
	input := "# commands for the emit test\n\n" + strings.Join(emitGood[:3], "\n") + "\r\n   \n  # indented comment\n" +
		"  " + strings.Join(emitGood[3:], "\n") + "  " // no final newline
	path := filepath.Join(t.TempDir(), "commands.jsonl")
	if err := os.WriteFile(path, []byte(input), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	res := runEmitT(t, []string{"--brokers", broker, "--file", path}, "stdin is not read")
	end := time.Now()
	if res.Err != nil {
		t.Fatalf("runEmit: %v", res.Err)
	}
	if res.Stderr != "" {
		t.Errorf("stderr: %s", res.Stderr)
	}
	sent := parseSent(t, res.Stdout, len(emitGood), 0)
	if want := query.DeriveOpportunityID("c-2"); sent[1].oppID != want {
		t.Errorf("create without id went to %s, want %s (derived from its commandId)", sent[1].oppID, want)
	}
	checkRecords(t, broker, sent, emitGood, start, end)
}

func TestEmitStopsAtFirstBadLine(t *testing.T) {
	t.Parallel()
	broker := startEmitBroker(t)
	input := emitGood[3] + "\n" +
		"# line 2 is a comment\n" +
		`{"type":"ChangeStage","opportunityId":"emit-2","stageId":"s","colour":"red"}` + "\n" +
		emitGood[5] + "\n"
	res := runEmitT(t, []string{"--brokers", broker}, input)
	if res.Err == nil {
		t.Fatal("runEmit succeeded despite a bad line")
	}
	for _, want := range []string{"line 3", "colour"} {
		if !strings.Contains(res.Err.Error(), want) {
			t.Errorf("error %q does not name %q", res.Err, want)
		}
	}
	sent := parseSent(t, res.Stdout, 1, 1)
	checkRecords(t, broker, sent, emitGood[3:4], time.Time{}, time.Now())
}

// Flags come from CRM_PIPELINE_* as API.md promises; bad lines are reported and skipped.
func TestEmitContinueOnErrorFromEnvironment(t *testing.T) {
	broker := startEmitBroker(t)
	t.Setenv("CRM_PIPELINE_BROKERS", " "+broker+" ,")
	t.Setenv("CRM_PIPELINE_CONTINUE_ON_ERROR", "true")
	input := strings.Join([]string{
		emitGood[0],
		`{"type":`,
		emitGood[4],
		`{"type":"CreateOpportunity","id":"emit-9","name":"A","accountId":"a","ownerId":"u","amount":12500,"currency":"USD","closeDate":"2025-06-30"}`,
		`{"type":"CloseLost","opportunityId":"emit-9"}`,
		`{"type":"Merge","opportunityId":"emit-9"}`,
		emitGood[6],
	}, "\n")
	start := time.Now()
	res := runEmitT(t, nil, input)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "4 of 7 commands failed") {
		t.Fatalf("error %v, want 4 of 7 commands failed", res.Err)
	}
	errLines := strings.Split(strings.TrimSpace(res.Stderr), "\n")
	wantErr := [][]string{
		{"line 2:", "not valid JSON"},
		{"line 4:", "amount", "never a JSON number"},
		{"line 5:", "reason is required"},
		{"line 6:", `"Merge" is not a command`},
	}
	if len(errLines) != len(wantErr) {
		t.Fatalf("stderr has %d lines, want %d:\n%s", len(errLines), len(wantErr), res.Stderr)
	}
	for i, want := range wantErr {
		for _, w := range want {
			if !strings.Contains(errLines[i], w) {
				t.Errorf("stderr line %q does not contain %q", errLines[i], w)
			}
		}
	}
	sent := parseSent(t, res.Stdout, 3, 4)
	checkRecords(t, broker, sent, []string{emitGood[0], emitGood[4], emitGood[6]}, start, time.Now())
}

// A line of exactly 1 MiB is read; a longer one that still fits the scanner is a bad line; one
// far longer stops the run, since the reader cannot find the next line.
func TestEmitLongLines(t *testing.T) {
	t.Parallel()
	broker := startEmitBroker(t)
	pad := func(line string, n int) string { return line + strings.Repeat(" ", n-len(line)) }
	exact := pad(emitGood[3], maxEmitLine)
	over := pad(emitGood[4], maxEmitLine+1)
	huge := pad(emitGood[5], 2*maxEmitLine)
	// exact ends with "\r\n", which the reader's buffer must hold as well.
	input := exact + "\r\n" + strings.Join([]string{over, emitGood[6], huge, emitGood[0]}, "\n")
	res := runEmitT(t, []string{"--brokers", broker, "--continue-on-error"}, input)
	if res.Err == nil || !strings.Contains(res.Err.Error(), "line 4: longer than") {
		t.Fatalf("error %v, want line 4 too long", res.Err)
	}
	if !strings.Contains(res.Stderr, "line 2: longer than") {
		t.Errorf("stderr %q does not report line 2", res.Stderr)
	}
	sent := parseSent(t, res.Stdout, 2, 2)
	checkRecords(t, broker, sent, []string{emitGood[3], emitGood[6]}, time.Time{}, time.Now())
}

// Usage errors and input that is all bad need no broker: the producer connects on the first
// valid command only.
func TestEmitWithoutBroker(t *testing.T) {
	t.Parallel()
	const nowhere = "127.0.0.1:1"
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{}\n"+`{"type":"Reopen"}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"unknown flag", []string{"--broker", nowhere}, "", "flag provided but not defined"},
		{"positional argument", []string{"--brokers", nowhere, "commands.jsonl"}, "", "unexpected arguments"},
		{"no brokers", []string{"--brokers", " , "}, "", "--brokers is empty"},
		{"missing file", []string{"--brokers", nowhere, "--file", filepath.Join(t.TempDir(), "nope")}, "", "open input"},
		{"first line bad", []string{"--brokers", nowhere, "--file", bad}, "", "line 1: no command type"},
		{"all lines bad", []string{"--brokers", nowhere, "--file", bad, "--continue-on-error"}, "", "2 of 2 commands failed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := runEmitT(t, tc.args, tc.stdin)
			if res.Err == nil || !strings.Contains(res.Err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", res.Err, tc.want)
			}
		})
	}
	t.Run("empty input", func(t *testing.T) {
		res := runEmitT(t, []string{"--brokers", nowhere}, "\n# nothing to send\n")
		if res.Err != nil || res.Stdout != "0 sent, 0 failed\n" {
			t.Fatalf("err %v, stdout %q", res.Err, res.Stdout)
		}
	})
}

// An interrupt stops emit even while it waits for input that does not come.
func TestEmitInterruptedWhileReading(t *testing.T) {
	t.Parallel()
	r, w := io.Pipe()
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var out bytes.Buffer
	go func() { done <- runEmit(ctx, []string{"--brokers", "127.0.0.1:1"}, r, &out, io.Discard) }()
	time.Sleep(50 * time.Millisecond)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("error %v, want context.Canceled", err)
		}
		if out.String() != "0 sent, 0 failed\n" {
			t.Errorf("stdout %q", out.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("runEmit did not stop on cancel")
	}
}
