package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ErrStopped means a consumer stopped by itself (connection closed, consumer deleted).
var ErrStopped = errors.New("event consumer stopped")

// Batching of a Consume call.
type Batching struct {
	// Size is the most events handed to handle at once.
	Size int
	// Workers is how many batches are handled at once.
	Workers int
	// Drain bounds the wait for the events in hand when ctx is done.
	Drain time.Duration
}

// Consume creates (or updates) the durable consumer cfg on stream and hands its events to
// handle in batches until ctx is done; then it stops taking events, lets handle finish
// those in hand, and returns nil. It returns ErrStopped if consuming ends by itself.
//
// Batches form without a timer: a worker takes the first event waiting, then every event
// already queued behind it (up to b.Size). handle must settle every message it is given
// (Ack, Nak or Term); it should not use ctx, so that events in hand are finished even while
// shutting down.
func Consume(ctx context.Context, stream jetstream.Stream, cfg jetstream.ConsumerConfig, b Batching, handle func([]jetstream.Msg)) error {
	cons, err := stream.CreateOrUpdateConsumer(ctx, cfg)
	if err != nil {
		return fmt.Errorf("create consumer %s: %w", cfg.Durable, err)
	}
	// The callback runs on one goroutine and only queues the event; it blocks while the
	// queue is full, so at most the pull buffer, the queue and the batches in hand are
	// delivered but not yet acknowledged.
	queue := make(chan jetstream.Msg, b.Size)
	cc, err := cons.Consume(func(msg jetstream.Msg) { queue <- msg },
		jetstream.PullMaxMessages(2*b.Size),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			slog.Warn("events", "consumer", cfg.Durable, "err", err)
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", cfg.Durable, err)
	}
	// Closed only closes once the callback has returned for good, so a worker that sees it
	// and then finds the queue empty has finished every event in hand.
	closed := cc.Closed()
	var wg sync.WaitGroup
	for range b.Workers {
		wg.Go(func() { work(b.Size, queue, closed, handle) })
	}
	select {
	case <-closed:
		wg.Wait()
		return ErrStopped
	case <-ctx.Done():
	}
	cc.Drain()
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
		return nil
	case <-time.After(b.Drain):
		cc.Stop()
		return fmt.Errorf("consumer %s: drain took longer than %s; unacknowledged events will be redelivered", cfg.Durable, b.Drain)
	}
}

// work hands batches of queued events to handle until closed is closed and the queue is
// empty.
func work(size int, queue <-chan jetstream.Msg, closed <-chan struct{}, handle func([]jetstream.Msg)) {
	batch := make([]jetstream.Msg, 0, size)
	for {
		var first jetstream.Msg
		select {
		case first = <-queue:
		case <-closed:
			select {
			case first = <-queue:
			default:
				return
			}
		}
		batch = append(batch[:0], first)
	more:
		for len(batch) < size {
			select {
			case msg := <-queue:
				batch = append(batch, msg)
			default:
				break more
			}
		}
		handle(batch)
	}
}

// AckAll acknowledges msgs. The last one waits (up to timeout) for the server's answer,
// which comes after the acknowledgements sent before it on this connection, so the batch is
// acknowledged at the server when AckAll returns nil. It returns the last error.
func AckAll(msgs []jetstream.Msg, timeout time.Duration) error {
	if len(msgs) == 0 {
		return nil
	}
	var ackErr error
	last := len(msgs) - 1
	for _, msg := range msgs[:last] {
		if err := msg.Ack(); err != nil {
			ackErr = err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := msgs[last].DoubleAck(ctx); err != nil {
		ackErr = err
	}
	return ackErr
}

// Describe names msg for the log: its msg id, stream sequence and delivery count.
func Describe(msg jetstream.Msg) (msgID string, seq, delivered uint64) {
	msgID = msg.Headers().Get(jetstream.MsgIDHeader)
	if meta, err := msg.Metadata(); err == nil {
		seq, delivered = meta.Sequence.Stream, meta.NumDelivered
	}
	return msgID, seq, delivered
}
