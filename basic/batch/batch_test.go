package batch

import (
	"context"
	"errors"
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

func TestLoneCallerIsNotDelayed(t *testing.T) {
	t.Parallel()
	b := New(1, 64, time.Second, func(_ context.Context, items []int) ([]int, error) { return items, nil })
	defer b.Close()
	start := time.Now()
	if _, err := b.Do(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 50*time.Millisecond {
		t.Errorf("a lone call took %v", d)
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
