package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBatchesUnderACrowd: 500 concurrent callers each get their own result, in batches of
// at most max, and fewer batches than callers.
func TestBatchesUnderACrowd(t *testing.T) {
	t.Parallel()
	var batches, biggest atomic.Int64
	b := New(2, 64, time.Second, func(_ context.Context, items []int) ([]int, error) {
		batches.Add(1)
		if n := int64(len(items)); n > biggest.Load() {
			biggest.Store(n)
		}
		time.Sleep(2 * time.Millisecond) // a database round trip
		out := make([]int, len(items))
		for i, v := range items {
			out[i] = v * 2
		}
		return out, nil
	})
	defer b.Close()
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 500; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			got, err := b.Do(context.Background(), i)
			if err != nil || got != 2*i {
				t.Errorf("Do(%d) = %d, %v", i, got, err)
			}
		}()
	}
	close(start)
	wg.Wait()
	if batches.Load() >= 500 || biggest.Load() > 64 || biggest.Load() < 2 {
		t.Errorf("%d batches, biggest %d; want batching, at most 64 per batch", batches.Load(), biggest.Load())
	}
}

// A lone caller's item is a batch of its own: a worker takes what is queued and runs it,
// without waiting for more, so each of a series of calls is a batch of one.
func TestLoneCallerRunsAlone(t *testing.T) {
	t.Parallel()
	var sizes []int
	b := New(1, 64, time.Second, func(_ context.Context, items []int) ([]int, error) {
		sizes = append(sizes, len(items))
		return items, nil
	})
	defer b.Close()
	for i := range 5 {
		start := time.Now()
		if got, err := b.Do(context.Background(), i); err != nil || got != i {
			t.Fatalf("Do(%d) = %d, %v", i, got, err)
		}
		// The window is a second; a lone caller must not sit it out. The bound is
		// generous, for a loaded machine, and still far under the window.
		if d := time.Since(start); d > 500*time.Millisecond {
			t.Errorf("Do(%d) took %v: a lone caller waited for the batch window", i, d)
		}
	}
	if fmt.Sprint(sizes) != "[1 1 1 1 1]" {
		t.Errorf("batch sizes %v; want five batches of one", sizes)
	}
}

func TestErrorsAndClose(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	b := New(1, 8, time.Second, func(_ context.Context, items []int) ([]int, error) { return nil, boom })
	if _, err := b.Do(context.Background(), 1); !errors.Is(err, boom) {
		t.Errorf("Do = %v, want the batch's error", err)
	}
	short := New(1, 8, time.Second, func(_ context.Context, items []int) ([]int, error) { return items[:0], nil })
	if _, err := short.Do(context.Background(), 1); err == nil {
		t.Error("a batch that returned too few results did not fail its callers")
	}
	short.Close()
	b.Close()
	if _, err := b.Do(context.Background(), 1); !errors.Is(err, ErrClosed) {
		t.Errorf("Do after Close = %v, want ErrClosed", err)
	}
}
