package handler

import (
	"context"
	"log/slog"
	"time"

	"secbuy/order-srv/repo"
)

// RecoverBatch is how many pending orders recovery reads, and sells, at a time.
const RecoverBatch = 256

// Recover drives every pending order created more than olderThan ago to its end by asking
// stock-srv again with the orders' request ids, a page at a time. It returns how many it
// finished; orders that stock-srv could not answer stay pending for the next round.
// Running it beside live requests, or in several instances at once, is safe for the
// reasons given on finish.
func (h *Order) Recover(ctx context.Context, olderThan time.Duration) (int, error) {
	done := 0
	var after int64
	for ctx.Err() == nil {
		orders, err := h.store.Pending(ctx, olderThan, after, RecoverBatch)
		if err != nil || len(orders) == 0 {
			return done, err
		}
		finished, err := h.finish(ctx, orders, true)
		if err != nil {
			return done, err
		}
		for _, o := range finished {
			if o.State != repo.Pending {
				done++
			}
		}
		if len(orders) < RecoverBatch {
			return done, nil
		}
		after = orders[len(orders)-1].ID
	}
	return done, ctx.Err()
}

// Exclusive runs f unless another instance is running it; db.DB.Exclusive is one.
type Exclusive func(ctx context.Context, f func(context.Context) error) (bool, error)

// RunRecovery calls Recover at once and then every period until ctx is done, each round
// inside exclusive, so that of several instances one at a time recovers; if it dies, its
// lease lapses with its database session and the next round of another takes over.
func (h *Order) RunRecovery(ctx context.Context, every, olderThan time.Duration, exclusive Exclusive) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		var n int
		_, err := exclusive(ctx, func(ctx context.Context) error {
			var err error
			n, err = h.Recover(ctx, olderThan)
			return err
		})
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
