// Package expired cancels the orders whose payment expired and gives their units back. It
// is a durable consumer of payment.expired (events.Consumer): for a batch of events it
// cancels the orders (created → cancelled, conditional) with one UPDATE, then asks
// stock-srv to release their units by request id with one ReleaseBatch call, and an event
// is acknowledged only after both, so a crash between them brings it back. Both steps are
// idempotent (an order is cancelled once, a unit is released once per request id), so a
// redelivery changes nothing.
package expired

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go-micro.dev/v6/client"

	"secbuy/basic/events"
	"secbuy/order-srv/repo"
	eventpb "secbuy/proto/events"
	"secbuy/proto/outcome"
	stockpb "secbuy/stock-srv/proto/stock"
)

// Durable is the consumer's name on the stream; every order-srv instance shares it, so
// each event goes to one of them.
const Durable = "order-srv-expired"

// Store is the storage the consumer needs; repo.Repo is the real one.
type Store interface {
	Cancel(ctx context.Context, ids []int64, reason string) (map[int64]repo.Order, error)
}

// Stock is the part of stock-srv's client the consumer uses.
type Stock interface {
	ReleaseBatch(ctx context.Context, in *stockpb.ReleaseBatchRequest, opts ...client.CallOption) (*stockpb.ReleaseBatchResponse, error)
}

// New returns the consumer of payment.expired on store and stock; timeout bounds each call
// to the database and to stock-srv.
func New(store Store, stock Stock, timeout time.Duration) *events.Consumer[int64] {
	c := &canceller{store: store, stock: stock, timeout: timeout}
	return events.NewConsumer(Durable, eventpb.ExpiredTopic, decode, c.apply)
}

type canceller struct {
	store   Store
	stock   Stock
	timeout time.Duration
}

// apply cancels the orders of a batch of events, then releases their units; it returns
// each event's verdict.
func (c *canceller) apply(ctx context.Context, orders []int64) []error {
	rids, errs, err := c.cancel(ctx, orders)
	if err != nil {
		return events.Each(len(orders), fmt.Errorf("cancel orders of expired payments: %w", err))
	}
	c.release(ctx, rids, errs)
	return errs
}

// cancel cancels the orders and returns each one's request id, to release its unit by; an
// order that is unknown, or that was never created, gets a permanent error instead.
func (c *canceller) cancel(ctx context.Context, orders []int64) (rids []string, errs []error, err error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	found, err := c.store.Cancel(ctx, orders, repo.ExpiredReason)
	if err != nil {
		return nil, nil, err
	}
	rids, errs = make([]string, len(orders)), make([]error, len(orders))
	for i, id := range orders {
		o, ok := found[id]
		switch {
		case !ok:
			errs[i] = events.Permanent(fmt.Errorf("payment expired for an unknown order %d", id))
		case o.State != repo.Cancelled:
			// Only a created order has a payment; this one was never created.
			errs[i] = events.Permanent(fmt.Errorf("payment expired for order %d, which is %s and cannot be cancelled", id, o.State))
		default:
			rids[i] = o.RequestID
		}
	}
	return rids, errs, nil
}

// release gives back the units of the cancelled orders (those with a request id) in one
// call, and records each one's verdict in errs. A request id named twice (the same event
// delivered twice in one batch) is released once and answers both.
func (c *canceller) release(ctx context.Context, rids []string, errs []error) {
	req := &stockpb.ReleaseBatchRequest{}
	at := map[string]int{}
	for _, rid := range rids {
		if _, ok := at[rid]; rid != "" && !ok {
			at[rid] = len(req.Items)
			req.Items = append(req.Items, &stockpb.ReleaseRequest{RequestId: rid})
		}
	}
	if len(req.Items) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	rsp, err := c.stock.ReleaseBatch(ctx, req)
	cancel()
	if err == nil && len(rsp.Items) != len(req.Items) {
		err = fmt.Errorf("stock-srv answered %d of %d", len(rsp.Items), len(req.Items))
	}
	for i, rid := range rids {
		if rid == "" {
			continue
		}
		if err != nil {
			errs[i] = fmt.Errorf("release units of cancelled orders: %w", err)
			continue
		}
		switch r := rsp.Items[at[rid]]; r.GetError().GetReason() {
		case outcome.Reason_REASON_UNSPECIFIED:
			if !r.GetSuccess() {
				errs[i] = errors.New(rid + ": not released")
			}
		case outcome.Reason_NO_SALE, outcome.Reason_NOT_GRANTED, outcome.Reason_INVALID_INPUT:
			// Nothing to give back, and no retry can change that: say so loudly.
			errs[i] = events.Permanent(fmt.Errorf("release unit of cancelled order, request %s: %s", rid, r.GetError().GetReason()))
		default:
			errs[i] = fmt.Errorf("release unit of request %s: %s", rid, r.GetError().GetReason())
		}
	}
}

// decode reads an ExpiredEvent and returns its order id.
func decode(data []byte) (int64, error) {
	var ev eventpb.ExpiredEvent
	if err := eventpb.Unmarshal(data, &ev); err != nil {
		return 0, fmt.Errorf("decode ExpiredEvent: %w", err)
	}
	if ev.OrderId <= 0 {
		return 0, errors.New("orderId must be a positive integer")
	}
	return ev.OrderId, nil
}
