// Package consumer turns payment.payevent messages into unpaid payments. It is a durable
// JetStream pull consumer that acknowledges a message only after its payment is committed,
// so an event outlives a payment-srv that is down, slow or killed halfway; creation is
// idempotent (one payment per order), so a redelivery changes nothing.
//
// Events are stored in batches without a timer: the worker takes the first event waiting,
// then every event already queued behind it (up to BatchSize), and stores their payments
// with one INSERT. A lone event is stored at once; under load the queue fills while the
// worker is busy and batches grow by themselves.
package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
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
	// redelivered (to this or another instance). Short, so the events a killed instance
	// held come back within seconds; a batch is stored in milliseconds, and a redelivery
	// changes nothing.
	AckWait = 5 * time.Second
	// RetryDelay is how long an event whose payment could not be stored waits to come back.
	RetryDelay = time.Second
	// BatchSize is the most events stored with one INSERT.
	BatchSize = 256
	// Workers is how many batches are stored at once.
	Workers = 2
	// drainTimeout bounds the wait for events in hand at shutdown.
	drainTimeout = 20 * time.Second
	ackTimeout   = 5 * time.Second
)

// ErrStopped means the consumer stopped by itself (connection closed, consumer deleted).
var ErrStopped = events.ErrStopped

// Store is the storage the consumer needs; repo.Repo is the real one.
type Store interface {
	CreateBatch(ctx context.Context, ps []repo.Payment) (int64, error)
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
	b := events.Batching{Size: BatchSize, Workers: Workers, Drain: drainTimeout}
	return events.Consume(ctx, stream, cfg, b, func(batch []jetstream.Msg) { handle(store, batch) })
}

// handle stores the payments of a batch of events with one INSERT, then acknowledges
// them; if the INSERT fails, every event of the batch comes back after RetryDelay. It does
// not use the consumer's context: events in hand are finished even while shutting down.
func handle(store Store, batch []jetstream.Msg) {
	valid := make([]jetstream.Msg, 0, len(batch))
	ps := make([]repo.Payment, 0, len(batch))
	for _, msg := range batch {
		p, err := decode(msg.Data())
		if err != nil {
			// Poison: no redelivery can make it valid, and it must not hold up the rest.
			msgID, seq, _ := events.Describe(msg)
			slog.Error("payment event terminated", "msgId", msgID, "seq", seq, "err", err)
			if err := msg.Term(); err != nil {
				slog.Warn("terminate payment event", "msgId", msgID, "seq", seq, "err", err)
			}
			continue
		}
		valid = append(valid, msg)
		ps = append(ps, p)
	}
	if len(ps) == 0 {
		return
	}
	if _, err := store.CreateBatch(context.Background(), ps); err != nil {
		// Logged on the first failure and then now and again, not once a second per batch.
		msgID, seq, delivered := events.Describe(valid[0])
		if delivered <= 1 || delivered%30 == 0 {
			slog.Error("store payments, will retry", "events", len(valid), "firstMsgId", msgID, "firstSeq", seq, "deliveries", delivered, "err", err)
		}
		for _, msg := range valid {
			_ = msg.NakWithDelay(RetryDelay)
		}
		return
	}
	// The payments are committed: a lost acknowledgement only brings an event back, and a
	// redelivery changes nothing. The batch is acknowledged at the server before the next
	// one starts (or Run returns).
	if err := events.AckAll(valid, ackTimeout); err != nil {
		msgID, seq, _ := events.Describe(valid[len(valid)-1])
		slog.Warn("ack payment events (stored; they may come back and change nothing)", "events", len(valid), "lastMsgId", msgID, "lastSeq", seq, "err", err)
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
