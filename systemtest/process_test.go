package systemtest

import (
	"bufio"
	"context"
	"fmt"
	"github.com/crm-pipeline/crm-pipeline/internal/testkit"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binPath is the crm-pipeline binary built once for the tests that run it as a separate
// process (signals, kill -9).
var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// TestMain removes the built binary when the tests end, so the suite leaves nothing in the
// temporary directory.
func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "crm-pipeline-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "crm-pipeline")
		args := []string{"build", "-o", binPath}
		if raceEnabled {
			args = append(args, "-race")
		}
		// The tests run in systemtest/; the command is its sibling ../cmd/crm-pipeline.
		out, err := exec.Command("go", append(args, "../cmd/crm-pipeline")...).CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// proc is a crm-pipeline process.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	http   string
	broker string
	logs   *lockedBuffer
	exited chan error
	done   chan struct{} // closed when the process has exited
	up     chan []string
}

var upLine = regexp.MustCompile(`HTTP on http://([0-9.:]+)/api/v1, Kafka at ([0-9.:]+)`)

// execCommand starts `crm-pipeline <args>` with its stderr captured.
func execCommand(t *testing.T, args ...string) *proc {
	t.Helper()
	return execCommandWith(t, nil, args...)
}

// execCommandWith is execCommand with a last change to the command before it starts (another
// user, another binary path).
func execCommandWith(t *testing.T, prepare func(*exec.Cmd), args ...string) *proc {
	t.Helper()
	cmd := exec.Command(buildBinary(t), args...)
	if prepare != nil {
		prepare(cmd)
	}
	p := &proc{t: t, cmd: cmd, logs: &lockedBuffer{}, exited: make(chan error, 1), done: make(chan struct{}), up: make(chan []string, 1)}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if m := upLine.FindStringSubmatch(sc.Text()); m != nil {
				p.up <- m
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() {
		err := cmd.Wait()
		close(p.done)
		p.exited <- err
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// startProc runs `crm-pipeline <args>` and waits for its "up" line and readiness.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	return startProcWith(t, nil, args...)
}

// startProcWith is startProc with execCommandWith's prepare.
func startProcWith(t *testing.T, prepare func(*exec.Cmd), args ...string) *proc {
	t.Helper()
	p := execCommandWith(t, prepare, args...)
	select {
	case m := <-p.up:
		p.http, p.broker = m[1], m[2]
	case err := <-p.exited:
		t.Fatalf("crm-pipeline %v exited: %v\n%s", args, err, p.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("crm-pipeline %v did not come up\n%s", args, p.logs.String())
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get("http://" + p.http + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("crm-pipeline not ready\n%s", p.logs.String())
	return nil
}

// kill sends SIGKILL (no clean-up of any kind) and waits for the process to go.
// It is safe to call from any goroutine, and again after the process has gone.
func (p *proc) kill() {
	if p.dead() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
	}
}

// stop sends SIGTERM and waits up to 30 s for the process to exit 0, failing the test with its
// log otherwise.
func (p *proc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case err := <-p.exited:
		if err != nil {
			p.t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs.String())
		}
	case <-time.After(30 * time.Second):
		p.t.Fatalf("no exit within 30s of SIGTERM\n%s", p.logs.String())
	}
}

// dead reports whether the process has exited.
func (p *proc) dead() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// metric reads the sample without labels of a metric family of the process's /metrics (0 when
// it has none).
func (p *proc) metric(name string) float64 {
	p.t.Helper()
	m, err := testkit.Metrics(p.http, name)
	if err != nil {
		p.t.Fatal(err)
	}
	return m[""]
}

// metricSum adds up every sample of a metric family (all label sets); -1 when /metrics does not
// answer.
func (p *proc) metricSum(name string) float64 {
	sum, _, err := testkit.MetricSum(p.http, name)
	if err != nil {
		return -1
	}
	return sum
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestGracefulShutdown sends SIGTERM: the process must exit 0 within the bound, and the next
// start must keep its local caches (clean-stop marker) and replay nothing it had committed.
func TestGracefulShutdown(t *testing.T) {
	data := t.TempDir()
	args := []string{"serve", "--data", data, "--http", "127.0.0.1:0", "--embedded-broker", "127.0.0.1:0", "--partitions", "4"}
	p := startProc(t, args...)
	s := testkit.Attach(t, "http://"+p.http+"/api/v1")
	for i := 0; i < 5; i++ {
		s.MustStatus(s.Do("POST", "/opportunities", testkit.CreateBody(fmt.Sprintf("opp-g%d", i)), testkit.Wait), 201)
	}
	// Let the offsets of the last records commit (sarama commits every second, and at the end
	// of the session on shutdown anyway).
	start := time.Now()
	p.stop()
	t.Logf("clean stop took %v", time.Since(start))
	if !strings.Contains(p.logs.String(), "stopped cleanly") {
		t.Fatalf("no clean-stop log line\n%s", p.logs.String())
	}

	p2 := startProc(t, args...)
	if strings.Contains(p2.logs.String(), "wiping local processor state") {
		t.Fatalf("restart after a clean stop wiped the processor caches\n%s", p2.logs.String())
	}
	s2 := testkit.Attach(t, "http://"+p2.http+"/api/v1")
	s2.MustStatus(s2.Do("PATCH", "/opportunities/opp-g0", map[string]any{"nextStep": "x"}, testkit.Wait), 200)
	if n := p2.metric("crm_records_redelivered_total"); n != 0 {
		t.Fatalf("%v records redelivered after a clean stop, want 0", n)
	}
}

// emitResult is what one `crm-pipeline emit` run printed and returned.
type emitResult struct {
	stdout, stderr string
	err            error
}

// runEmitT runs `crm-pipeline emit <args>` (the built binary) with stdin and waits for it.
func runEmitT(t *testing.T, args []string, stdin string) emitResult {
	t.Helper()
	var out, errOut lockedBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, buildBinary(t), append([]string{"emit"}, args...)...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(stdin), &out, &errOut
	err := cmd.Run()
	t.Logf("emit %q: err=%v\nstdout:\n%sstderr:\n%s", args, err, out.String(), errOut.String())
	return emitResult{stdout: out.String(), stderr: errOut.String(), err: err}
}

// runCLI runs `crm-pipeline <args>` (the built binary) to its end and returns its stdout and
// stderr together.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, buildBinary(t), args...).CombinedOutput()
	return string(out), err
}
