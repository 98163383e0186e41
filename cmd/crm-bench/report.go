package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// --- output -------------------------------------------------------------------------------

func (b *bench) note(format string, args ...any) {
	fmt.Fprintf(b.out, "# "+format+"\n", args...)
}

// report prints one BENCH line.
func (b *bench) report(name string, value float64, unit string, baseline float64) {
	ratio := math.NaN()
	if baseline > 0 {
		ratio = value / baseline
	}
	fmt.Fprintf(b.out, "BENCH %s value=%s unit=%s baseline=%s ratio=%s\n",
		name, fmtNum(value), unit, fmtNum(baseline), strconv.FormatFloat(ratio, 'f', 3, 64))
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'f', 4, 64)
	}
}

// factor is the scale of a scenario: --scale, or in the default run the scenario's budget.
func (b *bench) factor(scenario string) float64 {
	if b.scaleSet {
		return b.scale
	}
	if f, ok := benchBudget[scenario]; ok {
		return b.scale * f
	}
	return b.scale
}

func (b *bench) size(scenario string, full, floor int) int {
	return max(floor, int(math.Round(float64(full)*b.factor(scenario))))
}

func (b *bench) duration(full, floor time.Duration) time.Duration {
	return max(floor, time.Duration(float64(full)*b.scale))
}

// warmup is the unmeasured run before a measured load: connections, fetch sessions and
// caches are set up, and the previous step's garbage is collected.
func (b *bench) warmup(measured time.Duration) time.Duration {
	return min(5*time.Second, max(500*time.Millisecond, measured/6)).Round(100 * time.Millisecond)
}

func (b *bench) rate(full, floor float64) float64 {
	return max(floor, full*b.scale)
}

func (b *bench) dir(name string) (string, error) {
	dir := filepath.Join(b.root, name)
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o755)
}
