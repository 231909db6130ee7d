// Package expired cancels the orders whose payment expired and gives their units back. It
// is a durable JetStream consumer of payment.expired: for each event it cancels the order
// (created → cancelled, conditional), then asks stock-srv to release the order's unit by
// its request id, and acknowledges the event only after both, so a crash between them
// brings the event back. Both steps are idempotent (an order is cancelled once, a unit is
// released once per request id), so a redelivery changes nothing.
//
// Events are handled in batches, as payment-srv's consumer does: one UPDATE for the
// batch's orders and one StockService.ReleaseBatch call for their units.
package expired

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go-micro.dev/v6/client"
	"google.golang.org/protobuf/encoding/protojson"

	"secbuy/basic/events"
	"secbuy/order-srv/repo"
	paypb "secbuy/payment-srv/proto/payment"
	stockpb "secbuy/stock-srv/proto/stock"
)

// Durable is the consumer's name on the stream; every order-srv instance shares it, so
// each event goes to one of them.
const Durable = "order-srv-expired"

// Tuning.
const (
	// AckWait is how long a delivered event may stay unacknowledged before it is
	// redelivered.
	AckWait = 5 * time.Second
	// RetryDelay is how long an event that could not be finished waits to come back.
	RetryDelay = time.Second
	// BatchSize is the most events handled together.
	BatchSize = 256
	// Workers is how many batches are handled at once.
	Workers      = 2
	drainTimeout = 20 * time.Second
	ackTimeout   = 5 * time.Second
)

// Store is the storage the consumer needs; repo.Repo is the real one.
type Store interface {
	Cancel(ctx context.Context, ids []int64, reason string) (map[int64]repo.Order, error)
}

// Stock is the part of stock-srv's client the consumer uses.
type Stock interface {
	ReleaseBatch(ctx context.Context, in *stockpb.ReleaseBatchRequest, opts ...client.CallOption) (*stockpb.ReleaseBatchResponse, error)
}

// Consumer cancels orders and releases their units.
type Consumer struct {
	store   Store
	stock   Stock
	timeout time.Duration
}

// New returns a consumer on store and stock; timeout bounds each call to the database and
// to stock-srv.
func New(store Store, stock Stock, timeout time.Duration) *Consumer {
	return &Consumer{store: store, stock: stock, timeout: timeout}
}

// Config is the durable consumer: every payment.expired event from the start of the
// stream, acknowledged one by one, redelivered without limit until handled.
func Config(ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		FilterSubject: events.ExpiredTopic,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// Run consumes payment.expired on stream until ctx is done, then finishes the events in
// hand and returns nil. It returns events.ErrStopped if consuming ends by itself.
func (c *Consumer) Run(ctx context.Context, stream jetstream.Stream) error {
	return c.run(ctx, stream, Config(AckWait))
}

func (c *Consumer) run(ctx context.Context, stream jetstream.Stream, cfg jetstream.ConsumerConfig) error {
	b := events.Batching{Size: BatchSize, Workers: Workers, Drain: drainTimeout}
	return events.Consume(ctx, stream, cfg, b, c.handle)
}

// event is a decoded message and what became of it.
type event struct {
	msg   jetstream.Msg
	order int64
	rid   string // the order's request id, once cancelled
}

// handle cancels the orders of a batch, releases their units, and then acknowledges the
// events; an event whose order or unit could not be handled now comes back after
// RetryDelay. It does not use the consumer's context: events in hand are finished even
// while shutting down.
func (c *Consumer) handle(batch []jetstream.Msg) {
	evs := make([]*event, 0, len(batch))
	ids := make([]int64, 0, len(batch))
	for _, msg := range batch {
		id, err := decode(msg.Data())
		if err != nil {
			term(msg, "payment.expired event terminated", err)
			continue
		}
		evs = append(evs, &event{msg: msg, order: id})
		ids = append(ids, id)
	}
	if len(evs) == 0 {
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	orders, err := c.store.Cancel(ctx, ids, repo.ExpiredReason)
	cancel()
	if err != nil {
		retry(evs, "cancel orders of expired payments, will retry", err)
		return
	}
	var live []*event
	for _, ev := range evs {
		o, ok := orders[ev.order]
		switch {
		case !ok:
			term(ev.msg, "payment expired for an unknown order", fmt.Errorf("order %d", ev.order))
		case o.State != repo.Cancelled:
			// Only a created order has a payment; this one was never created.
			term(ev.msg, "payment expired for an order that cannot be cancelled", fmt.Errorf("order %d is %s", o.ID, o.State))
		default:
			ev.rid = o.RequestID
			live = append(live, ev)
		}
	}
	if len(live) == 0 {
		return
	}

	// The orders are cancelled; now their units go back. A request id named twice (the
	// same event delivered twice in one batch) is released once and answers both.
	req := &stockpb.ReleaseBatchRequest{}
	at := map[string]int{}
	for _, ev := range live {
		if _, ok := at[ev.rid]; !ok {
			at[ev.rid] = len(req.Items)
			req.Items = append(req.Items, &stockpb.ReleaseRequest{RequestId: ev.rid})
		}
	}
	ctx, cancel = context.WithTimeout(context.Background(), c.timeout)
	rsp, err := c.stock.ReleaseBatch(ctx, req)
	cancel()
	if err == nil && len(rsp.Items) != len(req.Items) {
		err = fmt.Errorf("stock-srv answered %d of %d", len(rsp.Items), len(req.Items))
	}
	if err != nil {
		retry(live, "release units of cancelled orders, will retry", err)
		return
	}
	var done, again []*event
	for _, ev := range live {
		r := rsp.Items[at[ev.rid]]
		switch code := r.GetError().GetCode(); {
		case r.GetSuccess():
			done = append(done, ev)
		case code == 404 || code == 409 || code == 400:
			// Nothing to give back, and no retry can change that: say so loudly.
			term(ev.msg, "release unit of cancelled order refused", fmt.Errorf("order %d, request %s: %d %s",
				ev.order, ev.rid, code, r.GetError().GetDetail()))
		default:
			again = append(again, ev)
		}
	}
	if len(again) > 0 {
		retry(again, "release units of cancelled orders, will retry", errors.New(again[0].rid+": not released"))
	}
	if len(done) == 0 {
		return
	}
	msgs := make([]jetstream.Msg, len(done))
	for i, ev := range done {
		msgs[i] = ev.msg
	}
	// Cancelled and released: a lost acknowledgement only brings an event back, and a
	// redelivery changes nothing.
	if err := events.AckAll(msgs, ackTimeout); err != nil {
		msgID, seq, _ := events.Describe(msgs[len(msgs)-1])
		slog.Warn("ack payment.expired events (handled; they may come back and change nothing)",
			"events", len(msgs), "lastMsgId", msgID, "lastSeq", seq, "err", err)
	}
}

// term logs why msg can never be handled and terminates it, so it does not come back.
func term(msg jetstream.Msg, what string, err error) {
	msgID, seq, _ := events.Describe(msg)
	slog.Error(what, "msgId", msgID, "seq", seq, "err", err)
	if err := msg.Term(); err != nil {
		slog.Warn("terminate payment.expired event", "msgId", msgID, "seq", seq, "err", err)
	}
}

// retry sends evs back to come again after RetryDelay, logging the first failure and then
// now and again.
func retry(evs []*event, what string, err error) {
	msgID, seq, delivered := events.Describe(evs[0].msg)
	if delivered <= 1 || delivered%30 == 0 {
		slog.Error(what, "events", len(evs), "firstMsgId", msgID, "firstSeq", seq, "deliveries", delivered, "err", err)
	}
	for _, ev := range evs {
		_ = ev.msg.NakWithDelay(RetryDelay)
	}
}

// decode reads an ExpiredEvent (protojson; fields it does not know are ignored) and
// returns its order id.
func decode(data []byte) (int64, error) {
	var ev paypb.ExpiredEvent
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &ev); err != nil {
		return 0, fmt.Errorf("decode ExpiredEvent: %w", err)
	}
	if ev.OrderId <= 0 {
		return 0, errors.New("orderId must be a positive integer")
	}
	return ev.OrderId, nil
}
