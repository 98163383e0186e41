package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// --- load generation ----------------------------------------------------------------------

type loadResult struct {
	lat      []time.Duration
	errs     int64 // failed requests, timeouts included
	timeouts int64 // requests whose effect was not visible in time (errTimeout)
	elapsed  time.Duration
	firstEr  error
}

func (l *loadResult) rps() float64 { return float64(len(l.lat)) / l.elapsed.Seconds() }

func (l *loadResult) pct(q float64) float64 {
	if len(l.lat) == 0 {
		return 0
	}
	if !slices.IsSorted(l.lat) {
		slices.Sort(l.lat)
	}
	i := int(math.Ceil(q*float64(len(l.lat)))) - 1
	i = min(max(i, 0), len(l.lat)-1)
	return float64(l.lat[i]) / float64(time.Millisecond)
}

// check fails when no request completed or more than 1% failed for another reason than a
// timeout; timeouts are reported by the caller.
func (l *loadResult) check(what string) error {
	total := int64(len(l.lat)) + l.errs
	if len(l.lat) == 0 {
		return fmt.Errorf("%s: no request completed (%d failed, first: %v)", what, l.errs, l.firstEr)
	}
	if failed := l.errs - l.timeouts; failed*100 > total {
		return fmt.Errorf("%s: %d of %d requests failed, first: %v", what, failed, total, l.firstEr)
	}
	return nil
}

// openLoop issues rate requests per second for dur, each on its own goroutine at its
// scheduled time, and measures each from that scheduled time (so a stall is not hidden by
// the sender waiting for it: no coordinated omission).
func openLoop(ctx context.Context, rate float64, dur time.Duration, do func(ctx context.Context, i int) error) *loadResult {
	n := int(rate * dur.Seconds())
	lat := make([]time.Duration, n)
	ok := make([]bool, n)
	var errs, timeouts atomic.Int64
	var first firstError
	var wg sync.WaitGroup
	start := time.Now()
	interval := float64(time.Second) / rate
	for i := 0; i < n && ctx.Err() == nil; i++ {
		at := start.Add(time.Duration(float64(i) * interval))
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := do(ctx, i); err != nil {
				errs.Add(1)
				if errors.Is(err, errTimeout) {
					timeouts.Add(1)
				}
				first.set(err)
				return
			}
			lat[i], ok[i] = time.Since(at), true
		}()
	}
	wg.Wait()
	res := &loadResult{elapsed: time.Since(start), errs: errs.Load(), timeouts: timeouts.Load(), firstEr: first.get()}
	for i := range lat {
		if ok[i] {
			res.lat = append(res.lat, lat[i])
		}
	}
	return res
}

// firstError keeps the first error set from any goroutine.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.mu.Unlock()
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// closedLoop runs workers clients back to back for dur.
func closedLoop(ctx context.Context, workers int, dur time.Duration, do func(ctx context.Context, w, i int) error) *loadResult {
	var mu sync.Mutex
	res := &loadResult{}
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(dur)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var lat []time.Duration
			var errs int64
			var firstErr error
			for i := 0; time.Now().Before(end) && ctx.Err() == nil; i++ {
				t := time.Now()
				if err := do(ctx, w, i); err != nil {
					errs++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				lat = append(lat, time.Since(t))
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errs += errs
			if res.firstEr == nil {
				res.firstEr = firstErr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// newHTTPClient is a load client with at most 512 connections: beyond that requests queue
// in the client (and an open loop counts the queueing), instead of the load exhausting the
// process's file descriptors when the service falls behind.
func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: 512, MaxIdleConnsPerHost: 512, MaxConnsPerHost: 512, IdleConnTimeout: time.Minute,
			DisableCompression: true,
		},
	}
}

// errTimeout marks a request whose effect was not visible in time (a 202 after Prefer: wait,
// an Await past its deadline): the service fell behind, which is a measurement, not a harness
// failure.
var errTimeout = errors.New("not visible in time")

// httpDo sends one request and reads the whole answer; any status but want is an error.
func httpDo(ctx context.Context, c *http.Client, method, url string, body string, hdr map[string]string, want int) error {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if method != http.MethodGet {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != want {
		if resp.StatusCode == http.StatusAccepted && hdr["Prefer"] != "" {
			return fmt.Errorf("%s %s: 202 after Prefer: %s: %w", method, url, hdr["Prefer"], errTimeout)
		}
		return fmt.Errorf("%s %s: status %d, want %d: %.200s", method, url, resp.StatusCode, want, b)
	}
	return nil
}
