// Command crm-bench runs the performance scenarios of BENCHMARKS.md against the real
// service, in process, on loopback: an embedded broker per scenario, app.Run with --brokers
// pointing at it and a fresh data directory (the memory and queries scenarios run a child
// `crm-pipeline serve`, the production binary, see --serve-binary). Each measured figure is
// printed as
//
//	BENCH <name> value=<v> unit=<u> baseline=<b> ratio=<v/b>
//
// and everything else (sizes, notes, targets) as lines starting with '#'. It is support code,
// not part of the product: the crm-pipeline binary does not contain it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/crm-pipeline/crm-pipeline/app"
)

// benchScenarios are the scenarios in the order they run. Scenario 6 of BENCHMARKS.md (cost
// per command) is the Go benchmarks, run by `make bench-go`.
var benchScenarios = []string{"throughput", "latency", "consistency", "queries", "restore", "memory"}

// benchBudget scales a scenario down in the default run (no --scale) so that the whole run
// fits in 10 minutes on 2 cores; 1 means the full size. See BENCHMARKS.md.
var benchBudget = map[string]float64{
	"throughput": 0.4,
}

// benchPartitions is the partition count of every scenario (serve's default).
const benchPartitions = 8

type bench struct {
	scale    float64
	scaleSet bool
	root     string
	keep     bool
	profile  string // directory of --profile, "" when not profiling
	// memoryInProcess runs the memory scenario's service in this process instead of as a
	// child `crm-pipeline serve` (tests, which have no crm-pipeline binary at hand).
	memoryInProcess bool
	// serveBinary is the crm-pipeline executable of the child serve (--serve-binary).
	serveBinary string
	// serveEnv is added to the environment of the memory scenario's child serve.
	serveEnv []string
	// noSync starts the scenarios' brokers without fsync (--broker-sync=false).
	noSync bool
	// cacheMiB is the service's --cache-mib in every scenario (serve's default unless given).
	cacheMiB int
	out      io.Writer
	log      *slog.Logger
	// big is the broker holding the 1M-opportunity changelog, built by restore and reused by
	// memory within one run.
	big *fixtureEnv
}

type fixtureEnv struct {
	env *benchEnv
	fx  *fixture
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := runBench(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "crm-bench:", err)
		os.Exit(1)
	}
}

// runBench parses the flags and runs the chosen scenarios; it is main without the process
// exit, for tests.
func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := flag.NewFlagSet("bench", flag.ContinueOnError)
	scale := fset.Float64("scale", 1, "multiplies every size, rate and duration (1 = the sizes of BENCHMARKS.md)")
	list := fset.String("scenarios", strings.Join(benchScenarios, ","), "comma list of scenarios to run: "+strings.Join(benchScenarios, ", "))
	data := fset.String("data", "", "directory for the scenarios' brokers and local state (default: a temporary directory)")
	keep := fset.Bool("keep", false, "keep the scenarios' data directories")
	verbose := fset.Bool("v", false, "log the service's info messages to stderr")
	memHere := fset.Bool("memory-in-process", false, "run the memory scenario's service in this process (its RSS then includes the broker and harness) instead of as a child crm-pipeline serve")
	serveEnv := fset.String("serve-env", "", "comma list of KEY=VALUE added to the environment of the memory scenario's child serve (e.g. GOMEMLIMIT=768MiB)")
	brokerSync := fset.Bool("broker-sync", true, "the scenarios' embedded brokers fsync every produced batch before acknowledging it, as serve's default --embedded-sync does; false measures the service without the broker's fsyncs")
	cacheMiB := fset.Int("cache-mib", app.DefaultCacheMiB, "the service's --cache-mib (pebble block cache), for every scenario's serve and the restore scenario's views")
	serveBinary := fset.String("serve-binary", "", "the crm-pipeline executable the memory and queries scenarios run as a child serve (default: crm-pipeline beside this executable, else on $PATH)")
	profile := fset.String("profile", "", "write CPU, block, mutex and heap profiles of the whole run (service and load) to this directory")
	// Unlike serve, bench reads no CRM_PIPELINE_* variables: a --data meant for serve must
	// not become the bench's scratch directory.
	fset.SetOutput(stderr)
	if err := fset.Parse(args); err != nil {
		return err
	}
	if fset.NArg() > 0 {
		return fmt.Errorf("bench: unexpected arguments %q", fset.Args())
	}
	if !(*scale > 0) || *scale > 10 {
		return fmt.Errorf("bench: --scale %v: want a number in (0, 10]", *scale)
	}
	if *cacheMiB < 1 {
		return fmt.Errorf("bench: --cache-mib %d: want at least 1", *cacheMiB)
	}
	b := &bench{noSync: !*brokerSync, scale: *scale, out: stdout, keep: *keep, profile: *profile, memoryInProcess: *memHere, serveBinary: *serveBinary, serveEnv: splitList(*serveEnv), cacheMiB: *cacheMiB}
	for _, kv := range b.serveEnv {
		if !strings.Contains(kv, "=") {
			return fmt.Errorf("bench: --serve-env %q: want KEY=VALUE", kv)
		}
	}
	fset.Visit(func(f *flag.Flag) {
		if f.Name == "scale" {
			b.scaleSet = true
		}
	})
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	b.log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	var chosen []string
	for _, s := range splitList(*list) {
		if !slices.Contains(benchScenarios, s) {
			return fmt.Errorf("bench: unknown scenario %q (have %s)", s, strings.Join(benchScenarios, ", "))
		}
		if !slices.Contains(chosen, s) {
			chosen = append(chosen, s)
		}
	}
	if len(chosen) == 0 {
		return errors.New("bench: no scenario given")
	}
	b.root = *data
	if b.root == "" {
		dir, err := os.MkdirTemp("", "crm-bench-")
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		b.root = dir
		if !b.keep {
			defer os.RemoveAll(dir)
		}
	} else if err := os.MkdirAll(b.root, 0o755); err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	defer func() {
		if b.big != nil {
			b.big.env.close(b.keep)
		}
	}()

	if *profile != "" {
		stop, err := startProfiles(*profile)
		if err != nil {
			return fmt.Errorf("bench: %w", err)
		}
		defer stop()
	}
	host, _ := os.Hostname()
	b.note("crm-pipeline bench: %s, %d CPUs (GOMAXPROCS %d), %s/%s, scale %g%s, data %s",
		host, runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, b.scale,
		map[bool]string{true: "", false: " (default: budgeted scenarios scaled down)"}[b.scaleSet], b.root)
	b.note("load average at start %s (other processes on this machine compete with the measurement)", loadAvg())
	started := time.Now()
	var errs []error
	for _, s := range chosen {
		if ctx.Err() != nil {
			errs = append(errs, ctx.Err())
			break
		}
		t0 := time.Now()
		var err error
		switch s {
		case "throughput":
			err = b.throughput(ctx)
		case "latency":
			err = b.latency(ctx)
		case "consistency":
			err = b.consistency(ctx)
		case "queries":
			err = b.queries(ctx)
		case "restore":
			err = b.restore(ctx, slices.Contains(chosen, "memory"))
		case "memory":
			err = b.memory(ctx)
		}
		if err != nil {
			b.note("%s FAILED after %s: %v", s, time.Since(t0).Round(time.Millisecond), err)
			errs = append(errs, fmt.Errorf("%s: %w", s, err))
			continue
		}
		b.note("%s done in %s (load average %s)", s, time.Since(t0).Round(time.Millisecond), loadAvg())
	}
	b.note("bench finished in %s", time.Since(started).Round(time.Millisecond))
	if len(errs) > 0 {
		return fmt.Errorf("bench: %w", errors.Join(errs...))
	}
	return nil
}

// startProfiles starts the CPU profile and block and mutex sampling; stop writes them all.
func startProfiles(dir string) (stop func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	cpu, err := os.Create(filepath.Join(dir, "cpu.pprof"))
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		cpu.Close()
		return nil, err
	}
	runtime.SetBlockProfileRate(int(100 * time.Microsecond))
	runtime.SetMutexProfileFraction(20)
	return func() {
		pprof.StopCPUProfile()
		cpu.Close()
		for _, name := range []string{"block", "mutex", "heap", "goroutine"} {
			if f, err := os.Create(filepath.Join(dir, name+".pprof")); err == nil {
				_ = pprof.Lookup(name).WriteTo(f, 0)
				f.Close()
			}
		}
		runtime.SetBlockProfileRate(0)
		runtime.SetMutexProfileFraction(0)
	}, nil
}

// splitList splits a comma list, dropping blanks (as crm-pipeline's flags do).
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
