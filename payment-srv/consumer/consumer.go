// Package consumer turns payment.payevent messages into unpaid payments. It is a durable
// consumer (events.Consumer) that acknowledges an event only after its payment is
// committed, so an event outlives a payment-srv that is down, slow or killed halfway;
// creation is idempotent (one payment per order), so a redelivery changes nothing. The
// payments of a batch of events are stored with one INSERT.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"secbuy/basic/buyer"
	"secbuy/basic/events"
	"secbuy/basic/metrics"
	"secbuy/payment-srv/repo"
	eventpb "secbuy/proto/events"
)

// Durable is the consumer's name on the stream; every payment-srv instance shares it, so
// each event goes to one of them.
const Durable = "payment-srv"

// Store is the storage the consumer needs; repo.Repo is the real one.
type Store interface {
	CreateBatch(ctx context.Context, ps []repo.Payment) (int64, error)
}

// New returns the consumer of payment.payevent that stores the payments in store.
func New(store Store) *events.Consumer[repo.Payment] {
	return events.NewConsumer(Durable, eventpb.PayTopic, decode, func(ctx context.Context, ps []repo.Payment) []error {
		metrics.BatchSize.WithLabelValues("payments").Observe(float64(len(ps)))
		if _, err := store.CreateBatch(ctx, ps); err != nil {
			return events.Each(len(ps), fmt.Errorf("store payments: %w", err))
		}
		return nil
	})
}

// decode reads a PayEvent and checks it.
func decode(data []byte) (repo.Payment, error) {
	var ev eventpb.PayEvent
	if err := eventpb.Unmarshal(data, &ev); err != nil {
		return repo.Payment{}, fmt.Errorf("decode PayEvent: %w", err)
	}
	switch {
	case ev.OrderId <= 0:
		return repo.Payment{}, errors.New("orderId must be a positive integer")
	case ev.CommodityId <= 0:
		return repo.Payment{}, errors.New("commodityId must be a positive integer")
	case !utf8.ValidString(ev.Name) || strings.ContainsRune(ev.Name, 0):
		// Postgres refuses NUL in text: it would fail on every redelivery.
		return repo.Payment{}, errors.New("name must be UTF-8 text without NUL")
	}
	// An order-srv from before buyers were strings sends userId alone.
	who, err := buyer.Of(ev.Buyer, ev.UserId)
	if err != nil {
		return repo.Payment{}, err
	}
	p := repo.Payment{Sid: ev.OrderId, CommodityID: ev.CommodityId, Buyer: who, Name: ev.Name}
	if ev.CreateTime > 0 { // the time to pay runs from it; an older producer's event has none
		p.OrderTime = time.Unix(ev.CreateTime, 0)
	}
	return p, nil
}
