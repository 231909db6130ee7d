// Package expiry expires unpaid payments: every so often it turns the payments left unpaid
// longer than the pay timeout into expired ones, each with a payment.expired event in the
// outbox (written in the same transaction), which order-srv turns into a cancelled order
// and a unit back on sale.
package expiry

import (
	"context"
	"log/slog"
	"time"

	"secbuy/payment-srv/repo"
)

// Batch is the most payments expired in one transaction.
const Batch = 1000

// Store is the storage expiry needs; repo.Repo is the real one.
type Store interface {
	Expire(ctx context.Context, olderThan time.Duration, limit int) ([]repo.Payment, error)
}

// Once expires every payment unpaid for longer than timeout, Batch at a time, and returns
// how many it expired. poke, if not nil, is called after each batch that expired some, to
// wake the outbox relay.
func Once(ctx context.Context, store Store, timeout time.Duration, poke func()) (int, error) {
	n := 0
	for ctx.Err() == nil {
		ps, err := store.Expire(ctx, timeout, Batch)
		n += len(ps)
		if len(ps) > 0 && poke != nil {
			poke()
		}
		if err != nil || len(ps) < Batch {
			return n, err
		}
	}
	return n, ctx.Err()
}

// Run calls Once at once and then every period until ctx is done.
func Run(ctx context.Context, store Store, every, timeout time.Duration, poke func()) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		n, err := Once(ctx, store, timeout, poke)
		if n > 0 {
			slog.Info("expired unpaid payments", "count", n, "pay_timeout", timeout)
		}
		if err != nil && ctx.Err() == nil {
			slog.Error("expire unpaid payments", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
