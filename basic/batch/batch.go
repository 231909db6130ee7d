// Package batch groups concurrent calls into batches without a timer: a few workers each
// take the first waiting call, then every call already queued behind it (up to a maximum),
// and run them as one. A lone caller runs at once, alone; under a crowd the queue fills
// while the workers are busy, and batches grow by themselves.
package batch

import (
	"context"
	"errors"
	"time"
)

// ErrClosed is returned by Do after Close.
var ErrClosed = errors.New("batcher closed")

// Func runs one batch and returns one result per item, in order, or an error for all.
type Func[T, R any] func(ctx context.Context, items []T) ([]R, error)

type call[T, R any] struct {
	item T
	done chan result[R]
}

type result[R any] struct {
	r   R
	err error
}

// Batcher runs Func over batches of the items given to Do.
type Batcher[T, R any] struct {
	queue   chan call[T, R]
	max     int
	timeout time.Duration
	run     Func[T, R]
	stop    chan struct{}
	stopped chan struct{}
}

// New starts workers goroutines running batches of at most max items through run, each
// batch with its own context of the given timeout (a batch outlives any one caller).
func New[T, R any](workers, max int, timeout time.Duration, run Func[T, R]) *Batcher[T, R] {
	b := &Batcher[T, R]{
		queue: make(chan call[T, R], 4*max), max: max, timeout: timeout, run: run,
		stop: make(chan struct{}), stopped: make(chan struct{}, workers),
	}
	for i := 0; i < workers; i++ {
		go b.work()
	}
	return b
}

// Do queues item and waits for its result. If ctx ends first, Do returns ctx's error; the
// item may still be run.
func (b *Batcher[T, R]) Do(ctx context.Context, item T) (R, error) {
	c := call[T, R]{item: item, done: make(chan result[R], 1)}
	var zero R
	select {
	case <-b.stop:
		return zero, ErrClosed
	default:
	}
	select {
	case b.queue <- c:
	case <-b.stop:
		return zero, ErrClosed
	case <-ctx.Done():
		return zero, ctx.Err()
	}
	select {
	case res := <-c.done:
		return res.r, res.err
	case <-ctx.Done():
		return zero, ctx.Err()
	}
}

// Close stops the workers once the calls already queued have run.
func (b *Batcher[T, R]) Close() {
	close(b.stop)
	for i := 0; i < cap(b.stopped); i++ {
		<-b.stopped
	}
}

func (b *Batcher[T, R]) work() {
	defer func() { b.stopped <- struct{}{} }()
	Drain(b.queue, b.stop, b.max, b.runBatch)
}

// Drain hands batches of the items on queue to handle, one batch at a time, until done is
// closed and queue is empty: it waits for the first item, then takes every item already
// queued behind it, up to max, without waiting for more. Several goroutines may drain one
// queue; each batch goes to one of them.
func Drain[T any](queue <-chan T, done <-chan struct{}, max int, handle func([]T)) {
	batch := make([]T, 0, max)
	for {
		var first T
		select {
		case first = <-queue:
		case <-done:
			select {
			case first = <-queue:
			default:
				return
			}
		}
		batch = append(batch[:0], first)
	more:
		for len(batch) < max {
			select {
			case it := <-queue:
				batch = append(batch, it)
			default:
				break more
			}
		}
		handle(batch)
	}
}

func (b *Batcher[T, R]) runBatch(calls []call[T, R]) {
	items := make([]T, len(calls))
	for i, c := range calls {
		items[i] = c.item
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
	rs, err := b.run(ctx, items)
	cancel()
	if err == nil && len(rs) != len(items) {
		err = errors.New("batch: wrong number of results")
	}
	for i, c := range calls {
		if err != nil {
			c.done <- result[R]{err: err}
		} else {
			c.done <- result[R]{r: rs[i]}
		}
	}
}
