package handler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"secbuy/order-srv/repo"
)

// Recovery limits: orders read per query, and Sell calls in flight at once.
const (
	RecoverBatch   = 256
	RecoverWorkers = 8
)

// Recover drives every pending order created more than olderThan ago to its end by asking
// stock-srv again with the order's request id. It returns how many it finished; orders
// that stock-srv could not answer stay pending for the next round. Running it beside live
// requests, or in several instances at once, is safe for the reasons given on finish.
func (h *Order) Recover(ctx context.Context, olderThan time.Duration) (int, error) {
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		done     int
		firstErr error
		sem      = make(chan struct{}, RecoverWorkers)
		after    int64
	)
	record := func(err error, finished bool) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil && firstErr == nil {
			firstErr = err
		}
		if finished {
			done++
		}
	}
walk:
	for ctx.Err() == nil {
		orders, err := h.store.Pending(ctx, olderThan, after, RecoverBatch)
		if err != nil {
			record(err, false)
			break
		}
		for _, o := range orders {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				break walk
			}
			wg.Add(1)
			go func(o repo.Order) {
				defer func() { <-sem; wg.Done() }()
				o, err := h.finish(ctx, o)
				record(err, err == nil && o.State != repo.Pending)
			}(o)
		}
		if len(orders) < RecoverBatch {
			break
		}
		after = orders[len(orders)-1].ID
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	return done, firstErr
}

// RunRecovery calls Recover at once and then every period until ctx is done.
func (h *Order) RunRecovery(ctx context.Context, every, olderThan time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := h.Recover(ctx, olderThan)
		if n > 0 {
			slog.Info("recovered pending orders", "count", n)
		}
		if err != nil && ctx.Err() == nil {
			slog.Error("recover pending orders", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
