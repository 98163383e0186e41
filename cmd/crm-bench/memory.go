package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// --- scenario 5: memory and disk ----------------------------------------------------------

func (b *bench) memory(ctx context.Context) error {
	big, err := b.bigFixture(ctx)
	if err != nil {
		return err
	}
	defer func() { big.env.close(b.keep); b.big = nil }()
	env, fx := big.env, big.fx
	data := filepath.Join(env.dir, "service")
	_ = os.RemoveAll(data)
	var m memoryFigures
	if b.memoryInProcess {
		m, err = b.memoryHere(ctx, env, fx, data)
	} else {
		m, err = b.memoryChild(ctx, env, fx, data)
	}
	if err != nil {
		return err
	}
	disk := dirSize(filepath.Join(data, "state"))
	views := dirSize(filepath.Join(data, "state", "views"))
	logical := fx.aggBytes + fx.bucketBytes
	b.note("memory: %s on %d opportunities with local state deleted: views ready after %s, a command through every partition after %s",
		m.what, fx.opps, m.ready.Round(time.Millisecond), m.processed.Round(time.Millisecond))
	b.note("memory: RSS %.0f MiB once ready (%s %.0f MiB)%s; local state %.0f MiB on disk (views %.0f MiB, processors %.0f MiB); baseline = logical state (aggregates + buckets, keys + values) %.0f MiB",
		mib(m.rss), m.peakWhat, mib(m.peak), m.extra, mib(disk), mib(views), mib(disk-views), mib(logical))
	b.report("memory.rss", mib(m.rss), "MiB", mib(logical))
	b.report("memory.disk", mib(disk), "MiB", mib(logical))
	return nil
}

type memoryFigures struct {
	what, peakWhat   string
	ready, processed time.Duration
	rss, peak        int64
	extra            string
}

// memoryChild runs `crm-pipeline serve --brokers <the fixture's broker>` as its own process
// (this executable) and reads its VmRSS: the service alone, as deployed with a broker.
func (b *bench) memoryChild(ctx context.Context, env *benchEnv, fx *fixture, data string) (memoryFigures, error) {
	m := memoryFigures{what: "crm-pipeline serve (child process)", peakWhat: "peak while restoring"}
	if len(b.serveEnv) > 0 {
		m.what += " with " + strings.Join(b.serveEnv, " ")
	}
	t0 := time.Now()
	c, err := b.startChild(ctx, env, data)
	if err != nil {
		return m, err
	}
	defer c.stop()
	m.ready = time.Since(t0)
	if err := c.warm(ctx, fx, "memory"); err != nil {
		return m, err
	}
	m.processed = time.Since(t0)
	time.Sleep(2 * time.Second)
	m.rss, m.peak = procMemory(c.cmd.Process.Pid)
	if m.rss == 0 {
		return m, c.fail(errors.New("no VmRSS for the serve process (is /proc mounted?)"))
	}
	client := newHTTPClient()
	defer client.CloseIdleConnections()
	if g := goMemory(ctx, client, c.addr+"/metrics"); g != "" {
		m.extra = " (" + g + ")"
	}
	return m, nil
}

// childServe is `crm-pipeline serve --brokers <the scenario's broker>` run as a child process:
// what the memory scenario measures, and what the queries scenario loads from this process.
type childServe struct {
	cmd    *exec.Cmd
	exited chan error
	addr   string // http://host:port
	log    string
}

// crmPipeline is the crm-pipeline executable of the child serve: --serve-binary, else
// crm-pipeline beside this executable (make bench builds both into bin/), else on $PATH.
func (b *bench) crmPipeline() (string, error) {
	if b.serveBinary != "" {
		return b.serveBinary, nil
	}
	if exe, err := os.Executable(); err == nil {
		if p := filepath.Join(filepath.Dir(exe), "crm-pipeline"); fileExists(p) {
			return p, nil
		}
	}
	p, err := exec.LookPath("crm-pipeline")
	if err != nil {
		return "", fmt.Errorf("no crm-pipeline executable beside crm-bench nor on $PATH (build it, or give --serve-binary): %w", err)
	}
	return p, nil
}

// fileExists reports whether path names a regular file.
func fileExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular()
}

// startChild starts serve on an empty data directory and waits until it answers /readyz and
// reads the default pipeline.
func (b *bench) startChild(ctx context.Context, env *benchEnv, data string) (*childServe, error) {
	exe, err := b.crmPipeline()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(env.dir, "serve.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(exe, "serve", "--brokers", strings.Join(env.brokers, ","), "--data", data, "--http", addr,
		"--partitions", strconv.Itoa(benchPartitions), "--cache-mib", strconv.Itoa(b.cacheMiB), "--instance-id", "none")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), b.serveEnv...)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start serve: %w", err)
	}
	c := &childServe{cmd: cmd, exited: make(chan error, 1), addr: "http://" + addr, log: logf.Name()}
	go func() { c.exited <- cmd.Wait() }()
	client := newHTTPClient()
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Minute)
	for httpDo(ctx, client, http.MethodGet, c.addr+"/readyz", "", nil, http.StatusOK) != nil ||
		httpDo(ctx, client, http.MethodGet, c.addr+"/api/v1/pipelines/default", "", nil, http.StatusOK) != nil {
		var err error
		select {
		case e := <-c.exited:
			c.exited <- e
			err = fmt.Errorf("serve exited: %v", e)
		case <-ctx.Done():
			err = ctx.Err()
		case <-time.After(50 * time.Millisecond):
			if time.Now().After(deadline) {
				err = errors.New("serve not ready within 20 minutes")
			}
		}
		if err != nil {
			c.stop()
			return nil, c.fail(err)
		}
	}
	return c, nil
}

// warm applies one update per partition (PATCH, answered once applied), so the processor has
// restored its table and joined its group before anything is measured.
func (c *childServe) warm(ctx context.Context, fx *fixture, tag string) error {
	client := newHTTPClient()
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(20 * time.Minute)
	for p, ids := range fx.open {
		for {
			err := httpDo(ctx, client, http.MethodPatch, c.addr+"/api/v1/opportunities/"+ids[0], `{"nextStep":"warm-up"}`,
				map[string]string{"Prefer": "wait=30", "Idempotency-Key": fmt.Sprintf("%s-warm-%d", tag, p)}, http.StatusOK)
			if err == nil {
				break
			}
			if !errors.Is(err, errTimeout) || time.Now().After(deadline) {
				return c.fail(fmt.Errorf("warm-up update on partition %d: %w", p, err))
			}
		}
	}
	return nil
}

func (c *childServe) fail(err error) error { return fmt.Errorf("%w (serve log: %s)", err, c.log) }

// stop ends serve cleanly (SIGTERM), or kills it after a minute.
func (c *childServe) stop() {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.exited:
	case <-time.After(60 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.exited
	}
}

// goMemory reads the Go runtime's view of the service's memory from its /metrics.
func goMemory(ctx context.Context, c *http.Client, url string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ""
	}
	resp, err := c.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	want := map[string]string{
		"go_memstats_heap_inuse_bytes": "Go heap in use", "go_memstats_heap_idle_bytes": "heap idle",
		"go_memstats_heap_released_bytes": "released to the OS", "go_memstats_sys_bytes": "Go sys",
	}
	got := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && want[f[0]] != "" {
			got[f[0]], _ = strconv.ParseFloat(f[1], 64)
		}
	}
	var parts []string
	for _, k := range []string{"go_memstats_heap_inuse_bytes", "go_memstats_heap_idle_bytes", "go_memstats_heap_released_bytes", "go_memstats_sys_bytes"} {
		if v, ok := got[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.0f MiB", want[k], v/(1<<20)))
		}
	}
	return strings.Join(parts, ", ")
}

// memoryHere runs serve in this process (for tests, where this executable is not
// crm-pipeline): its RSS includes the embedded broker and the bench harness.
func (b *bench) memoryHere(ctx context.Context, env *benchEnv, fx *fixture, data string) (memoryFigures, error) {
	m := memoryFigures{what: "serve in the bench process (RSS includes the broker and harness)", peakWhat: "process lifetime peak"}
	runtime.GC()
	debug.FreeOSMemory()
	before, _ := procMemory(os.Getpid())
	t0 := time.Now()
	svc, err := b.startService(ctx, env, data)
	if err != nil {
		return m, err
	}
	defer svc.stop()
	if err := svc.waitReady(ctx, 20*time.Minute); err != nil {
		return m, err
	}
	m.ready = time.Since(t0)
	if err := warmUp(ctx, env, svc, fx); err != nil {
		return m, err
	}
	m.processed = time.Since(t0)
	runtime.GC()
	debug.FreeOSMemory()
	time.Sleep(time.Second)
	m.rss, m.peak = procMemory(os.Getpid())
	if b.profile != "" {
		if f, err := os.Create(filepath.Join(b.profile, "memory-heap.pprof")); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			f.Close()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m.extra = fmt.Sprintf(" (%.0f MiB before serve started; Go heap in use %.0f MiB)", mib(before), mib(int64(ms.HeapInuse)))
	return m, svc.stop()
}

// loadAvg is the 1, 5 and 15 minute load averages (Linux), "?" elsewhere.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// procMemory is VmRSS and VmHWM (peak RSS) of process pid (Linux), zeros where /proc is
// missing.
func procMemory(pid int) (rss, peak int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	kib := func(rest string) int64 {
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return 0
		}
		kb, _ := strconv.ParseInt(fields[0], 10, 64)
		return kb << 10
	}
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			rss = kib(rest)
		} else if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			peak = kib(rest)
		}
	}
	return rss, peak
}

// dirSize is the total size of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
