package state_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/state"
)

// goka drives a table partition from several goroutines: Set/Delete from the
// partition goroutine, SetOffset from the producer's ack goroutine, reads and
// iterators from request handlers, Close from Stop. Run with -race.
func TestConcurrentUse(t *testing.T) {
	dir := t.TempDir()
	s, err := state.Open(dir, state.Options{Logger: quietLogger()})
	must(t, err)

	const n = 3000
	var wg sync.WaitGroup
	var lastOffset atomic.Int64
	stopReaders := make(chan struct{})

	wg.Add(1)
	go func() { // partition goroutine
		defer wg.Done()
		for i := range n {
			k := fmt.Sprintf("k%04d", i%500)
			if i%7 == 0 {
				noErr(t, s.Delete(k))
			} else {
				noErr(t, s.Set(k, fmt.Appendf(nil, "v%d", i)))
			}
			if i == n/2 {
				noErr(t, s.MarkRecovered())
			}
		}
	}()
	wg.Add(1)
	go func() { // producer ack goroutine
		defer wg.Done()
		for i := range int64(n) {
			noErr(t, s.SetOffset(i))
			lastOffset.Store(i)
		}
	}()
	var readers sync.WaitGroup
	for range 2 {
		readers.Add(1)
		go func() { // request handlers
			defer readers.Done()
			for {
				select {
				case <-stopReaders:
					return
				default:
				}
				_, err := s.Get("k0001")
				noErr(t, err)
				_, err = s.Has("k0002")
				noErr(t, err)
				_, err = s.GetOffset(-1)
				noErr(t, err)
				it, err := s.IteratorWithRange([]byte("k01"), nil)
				if err != nil {
					t.Error(err)
					return
				}
				it.Seek([]byte("k015"))
				for it.Next() {
					_ = it.Key()
					_, err := it.Value()
					noErr(t, err)
				}
				noErr(t, it.Err())
				it.Release()
			}
		}()
	}
	wg.Wait()
	close(stopReaders)
	readers.Wait()
	must(t, s.Close())

	s, err = state.Open(dir, state.Options{Logger: quietLogger()})
	must(t, err)
	defer s.Close()
	expectOffset(t, s, -1, lastOffset.Load())
}

// Close racing with every kind of operation: nothing panics, and the only
// errors are ErrClosed.
func TestCloseWhileInUse(t *testing.T) {
	s, err := state.Open(t.TempDir(), state.Options{Logger: quietLogger()})
	must(t, err)
	for i := range 100 {
		must(t, s.Set(fmt.Sprintf("k%03d", i), []byte("v")))
	}
	check := func(err error) {
		if err != nil && !errors.Is(err, state.ErrClosed) {
			t.Errorf("unexpected error: %v", err)
		}
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := 0; ; i++ {
				var err error
				switch g {
				case 0:
					err = s.Set(fmt.Sprintf("k%03d", i%100), []byte("w"))
				case 1:
					err = s.SetOffset(int64(i))
					// While recovering SetOffset only touches memory and
					// cannot notice Close; MarkRecovered can.
					if err == nil && i%50 == 0 {
						err = s.MarkRecovered()
					}
				case 2:
					_, err = s.Get(fmt.Sprintf("k%03d", i%100))
				case 3:
					var it interface {
						Next() bool
						Err() error
						Release()
					}
					it, err = s.Iterator()
					if err == nil {
						for it.Next() {
						}
						err = it.Err()
						it.Release()
					}
				}
				check(err)
				if errors.Is(err, state.ErrClosed) {
					return
				}
			}
		}()
	}
	close(start)
	// Let the goroutines get going, then close under them.
	for i := range 200 {
		_, _ = s.Get(fmt.Sprintf("k%03d", i%100))
	}
	must(t, s.Close())
	wg.Wait()
}
