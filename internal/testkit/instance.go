package testkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/crm-pipeline/crm-pipeline/app"
)

// Instance is app.Run in a goroutine of this process, for callers without a testing.TB (the
// benchmark); StartService wraps one with the tests' settings.
type Instance struct {
	// Run is what the started service exposes: its addresses, embedded broker and views.
	Run      *app.Running
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
	stopErr  error
}

// ErrStopTimeout is Stop's error when the service did not return within the timeout.
var ErrStopTimeout = errors.New("serve did not stop in time")

// StartInstance runs app.Run(ctx, cfg, log, io.Discard) and waits at most timeout for its
// HTTP listener (cfg.Started is the harness's own). Stop it with Stop, or by ending ctx.
func StartInstance(ctx context.Context, cfg app.Config, log *slog.Logger, timeout time.Duration) (*Instance, error) {
	sctx, cancel := context.WithCancel(ctx)
	started := make(chan *app.Running, 1)
	cfg.Started = func(r *app.Running) { started <- r }
	in := &Instance{cancel: cancel, done: make(chan error, 1)}
	go func() { in.done <- app.Run(sctx, cfg, log, io.Discard) }()
	select {
	case in.Run = <-started:
		return in, nil
	case err := <-in.done:
		cancel()
		return nil, fmt.Errorf("serve exited before starting: %v", err)
	case <-time.After(timeout):
		cancel()
		return nil, fmt.Errorf("serve did not start within %v", timeout)
	}
}

// Stop stops the service cleanly and waits at most timeout for app.Run to return (an error
// wrapping ErrStopTimeout after that); later calls return the first result.
func (in *Instance) Stop(timeout time.Duration) error {
	in.stopOnce.Do(func() {
		in.cancel()
		select {
		case in.stopErr = <-in.done:
		case <-time.After(timeout):
			in.stopErr = fmt.Errorf("%w: not within %v", ErrStopTimeout, timeout)
		}
	})
	return in.stopErr
}
