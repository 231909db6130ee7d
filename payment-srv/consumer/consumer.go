// Package consumer turns payment.payevent messages into unpaid payments. It is a durable
// JetStream pull consumer that acknowledges a message only after its payment is committed,
// so an event outlives a payment-srv that is down, slow or killed halfway; creation is
// idempotent (one payment per order), so a redelivery changes nothing.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"secbuy/basic/events"
	pb "secbuy/payment-srv/proto/payment"
	"secbuy/payment-srv/repo"
)

// Durable is the consumer's name on the stream; every payment-srv instance shares it, so
// each event goes to one of them.
const Durable = "payment-srv"

// Tuning.
const (
	// AckWait is how long a delivered event may stay unacknowledged before it is
	// redelivered (to this or another instance).
	AckWait = 30 * time.Second
	// RetryDelay is how long an event whose payment could not be stored waits to come back.
	RetryDelay = time.Second
	// Workers is how many events are stored at once.
	Workers = 8
	// drainTimeout bounds the wait for events in hand at shutdown.
	drainTimeout = 20 * time.Second
	ackTimeout   = 5 * time.Second
)

// ErrStopped means the consumer stopped by itself (connection closed, consumer deleted).
var ErrStopped = errors.New("payment event consumer stopped")

// Store is the storage the consumer needs; repo.Repo is the real one.
type Store interface {
	Create(ctx context.Context, p repo.Payment) (bool, error)
}

// Config is the durable consumer: every event of events.Topic from the start of the stream,
// acknowledged one by one, redelivered without limit until stored.
func Config(ackWait time.Duration) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       ackWait,
		MaxDeliver:    -1,
		FilterSubject: events.Topic,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// Run creates (or updates) the durable consumer on stream and stores a payment for every
// event until ctx is done. Then it stops taking events, finishes (stores and acknowledges)
// those in hand, and returns nil. It returns ErrStopped if consuming ends by itself.
func Run(ctx context.Context, stream jetstream.Stream, store Store) error {
	return run(ctx, stream, store, Config(AckWait))
}

func run(ctx context.Context, stream jetstream.Stream, store Store, cfg jetstream.ConsumerConfig) error {
	cons, err := stream.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
	}
	// The callback runs on one goroutine; it hands each event to one of Workers goroutines
	// and blocks while all are busy, so at most Workers events are in hand beyond the buffer.
	slots := make(chan struct{}, Workers)
	var wg sync.WaitGroup
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-slots; wg.Done() }()
			handle(store, msg)
		}()
	},
		jetstream.PullMaxMessages(4*Workers),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			slog.Warn("payment events", "consumer", cfg.Durable, "err", err)
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	// Closed only closes once every callback has returned, so no wg.Add can follow Wait.
	select {
	case <-cc.Closed():
		wg.Wait()
		return ErrStopped
	case <-ctx.Done():
	}
	cc.Drain()
	select {
	case <-cc.Closed():
		wg.Wait()
		return nil
	case <-time.After(drainTimeout):
		cc.Stop()
		return fmt.Errorf("payment events: drain took longer than %s; unacknowledged events will be redelivered", drainTimeout)
	}
}

// handle stores the payment of one event, then acknowledges it. It does not use the
// consumer's context: an event in hand is finished even while shutting down.
func handle(store Store, msg jetstream.Msg) {
	msgID := msg.Headers().Get(jetstream.MsgIDHeader)
	var seq, delivered uint64
	if meta, err := msg.Metadata(); err == nil {
		seq, delivered = meta.Sequence.Stream, meta.NumDelivered
	}
	p, err := decode(msg.Data())
	if err != nil {
		// Poison: no redelivery can make it valid, and it must not hold up the rest.
		slog.Error("payment event terminated", "msgId", msgID, "seq", seq, "err", err)
		if err := msg.Term(); err != nil {
			slog.Warn("terminate payment event", "msgId", msgID, "seq", seq, "err", err)
		}
		return
	}
	if _, err := store.Create(context.Background(), p); err != nil {
		// Logged on the first failure and then now and again, not once a second per event.
		if delivered <= 1 || delivered%30 == 0 {
			slog.Error("store payment, will retry", "msgId", msgID, "seq", seq, "orderId", p.Sid, "deliveries", delivered, "err", err)
		}
		_ = msg.NakWithDelay(RetryDelay)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if err := msg.DoubleAck(ctx); err != nil {
		// The payment is stored; a redelivery will change nothing.
		slog.Warn("ack payment event", "msgId", msgID, "seq", seq, "orderId", p.Sid, "err", err)
	}
}

// decode reads a PayEvent (protojson; fields it does not know are ignored, so order-srv
// can add some) and checks it.
func decode(data []byte) (repo.Payment, error) {
	var ev pb.PayEvent
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, &ev); err != nil {
		return repo.Payment{}, fmt.Errorf("decode PayEvent: %w", err)
	}
	switch {
	case ev.OrderId <= 0:
		return repo.Payment{}, errors.New("orderId must be a positive integer")
	case ev.CommodityId <= 0:
		return repo.Payment{}, errors.New("commodityId must be a positive integer")
	case ev.UserId <= 0:
		return repo.Payment{}, errors.New("userId must be a positive integer")
	case !utf8.ValidString(ev.Name) || strings.ContainsRune(ev.Name, 0):
		// Postgres refuses NUL in text: it would fail on every redelivery.
		return repo.Payment{}, errors.New("name must be UTF-8 text without NUL")
	}
	return repo.Payment{Sid: ev.OrderId, CommodityID: ev.CommodityId, UserID: ev.UserId, Name: ev.Name}, nil
}
