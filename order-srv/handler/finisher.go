package handler

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"secbuy/basic/batch"
	"secbuy/basic/tracing"
	"secbuy/order-srv/repo"
)

// Tuning of the finisher.
const (
	finishQueue   = 8192
	finishBatch   = 1024
	finishWorkers = 2
)

// finishItem is stock-srv's answer for one pending order: granted (with the commodity's
// name) or refused (with the reason); traceparent is the press's (its payment event
// carries it on).
type finishItem struct {
	id          int64
	granted     bool
	name        string
	reason      string
	traceparent string
}

// finisher records stock-srv's answers in the background, in batches that span calls: the
// orders become created (with their payment events) or failed, one transaction per batch
// (repo.Finish). A buy is answered as soon as its unit is granted (durable in stock-srv)
// and its order is pending (durable here), so this commit is off the buy's path. Until it
// runs, the order reads pending; if the process dies first, recovery asks stock-srv again,
// which answers the same, and finishes it.
type finisher struct {
	store   Store
	poke    func()
	timeout time.Duration
	queue   chan finishItem
	stop    chan struct{}
	wg      sync.WaitGroup
	// unrecorded counts the items added and not yet recorded (or given up on).
	unrecorded atomic.Int64
}

func newFinisher(store Store, poke func(), timeout time.Duration) *finisher {
	f := &finisher{store: store, poke: poke, timeout: timeout, queue: make(chan finishItem, finishQueue), stop: make(chan struct{})}
	for range finishWorkers {
		f.wg.Go(func() { batch.Drain(f.queue, f.stop, finishBatch, f.flush) })
	}
	return f
}

// add queues items; it waits while the queue is full (the database is behind), which
// slows the buys down instead of growing memory.
func (f *finisher) add(items []finishItem) {
	f.unrecorded.Add(int64(len(items)))
	for _, it := range items {
		f.queue <- it
	}
}

// idle says whether everything added has been recorded (or given up on).
func (f *finisher) idle() bool { return f.unrecorded.Load() == 0 }

// close finishes what is queued and stops.
func (f *finisher) close() {
	close(f.stop)
	f.wg.Wait()
}

func (f *finisher) flush(items []finishItem) {
	defer f.unrecorded.Add(-int64(len(items)))
	ctx, span := tracing.StartBatch(context.Background(), "order-srv record orders", len(items), func(i int) string { return items[i].traceparent })
	defer span.End()
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if _, err := f.record(ctx, items); err != nil {
		slog.ErrorContext(ctx, "finish orders (they stay pending; recovery finishes them)", "orders", len(items), "err", err)
	}
}

// record records items now, in one transaction, and returns the orders they name as they
// are afterwards (see repo.Finish); it wakes the relay if some were granted.
func (f *finisher) record(ctx context.Context, items []finishItem) (map[int64]repo.Order, error) {
	var grants []repo.Grant
	var refusals []repo.Refusal
	for _, it := range items {
		if it.granted {
			grants = append(grants, repo.Grant{ID: it.id, Name: it.name, Traceparent: it.traceparent})
		} else {
			refusals = append(refusals, repo.Refusal{ID: it.id, Reason: it.reason})
		}
	}
	done, err := f.store.Finish(ctx, grants, refusals)
	if err == nil && len(grants) > 0 {
		f.poke()
	}
	return done, err
}
