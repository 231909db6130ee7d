package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"secbuy/basic/batch"
	"secbuy/basic/metrics"
	"secbuy/basic/tracing"
)

// ErrStopped means a consumer stopped by itself (connection closed, consumer deleted).
var ErrStopped = errors.New("event consumer stopped")

// ErrPermanent marks an event's error that no redelivery can change (a poison payload, an
// order that does not exist): the event is terminated, and logged, instead of retried.
var ErrPermanent = errors.New("permanent")

// Permanent wraps err as an ErrPermanent error.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// Each returns err for each of n events: the verdict on a batch that failed as a whole.
func Each(n int, err error) []error {
	errs := make([]error, n)
	for i := range errs {
		errs[i] = err
	}
	return errs
}

// Consumer is a durable JetStream pull consumer of one subject, in batches: it decodes each
// message, hands the batch to Apply, and settles each message by Apply's verdict, so an
// event is acknowledged only after what it caused is committed. Every instance of a service
// shares the durable name, so each event goes to one of them; a killed instance's events
// come back to the others after AckWait.
type Consumer[E any] struct {
	Durable string
	Subject string
	// Decode reads one payload. An error makes the message poison: it is terminated
	// (never redelivered) and logged.
	Decode func(data []byte) (E, error)
	// Apply does the work of a batch of events and returns nil if all are done, or one
	// error per event: nil, done (acknowledged); a Permanent one (terminated and logged);
	// any other (redelivered after RetryDelay). Its context carries the batch's trace
	// (see tracing.StartBatch), never the consumer's cancellation: the events in hand are
	// finished even while shutting down.
	Apply func(ctx context.Context, events []E) []error

	// Size is the most events in a batch, Workers how many batches are applied at once.
	Size, Workers int
	// AckWait is how long a delivered event may go unacknowledged before it is delivered
	// again (to this or another instance); RetryDelay how long a failed event waits to
	// come back; Drain bounds the wait for the events in hand when stopping.
	AckWait, RetryDelay, Drain time.Duration
}

// NewConsumer returns a Consumer with secbuy's tuning: batches of 256, two at a time;
// redelivery 5 s after a delivery nobody acknowledged, 1 s after a failure; 20 s to drain.
func NewConsumer[E any](durable, subject string, decode func([]byte) (E, error), apply func(context.Context, []E) []error) *Consumer[E] {
	return &Consumer[E]{Durable: durable, Subject: subject, Decode: decode, Apply: apply,
		Size: 256, Workers: 2, AckWait: 5 * time.Second, RetryDelay: time.Second, Drain: 20 * time.Second}
}

// ackTimeout bounds the wait for the server to confirm a batch's acknowledgements.
const ackTimeout = 5 * time.Second

// Config is the durable consumer: every event of the subject from the start of the
// stream, acknowledged one by one, redelivered without limit until handled.
func (c *Consumer[E]) Config() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       c.Durable,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		FilterSubject: c.Subject,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// create creates (or updates) the durable consumer, trying again (see retry) until ctx is
// done.
func (c *Consumer[E]) create(ctx context.Context, stream jetstream.Stream) (jetstream.Consumer, error) {
	var cons jetstream.Consumer
	err := retry(ctx, "create consumer "+c.Durable, func(ctx context.Context) error {
		var err error
		cons, err = stream.CreateOrUpdateConsumer(ctx, c.Config())
		return err
	})
	return cons, err
}

// Run creates (or updates) the durable consumer on stream and handles its events until
// ctx is done; then it stops taking events, finishes those in hand, and returns nil. It
// returns ErrStopped if consuming ends by itself.
func (c *Consumer[E]) Run(ctx context.Context, stream jetstream.Stream) error {
	cons, err := c.create(ctx, stream)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("create consumer %s: %w", c.Durable, err)
	}
	c.watch(cons)
	// The callback runs on one goroutine and only queues the event; it blocks while the
	// queue is full, so at most the pull buffer, the queue and the batches in hand are
	// delivered but not yet acknowledged.
	queue := make(chan jetstream.Msg, c.Size)
	cc, err := cons.Consume(func(msg jetstream.Msg) { queue <- msg },
		jetstream.PullMaxMessages(2*c.Size),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			slog.Warn("events", "consumer", c.Durable, "err", err)
		}))
	if err != nil {
		return fmt.Errorf("consume %s: %w", c.Durable, err)
	}
	// Closed only closes once the callback has returned for good, so a worker that sees it
	// and then finds the queue empty has finished every event in hand.
	closed := cc.Closed()
	var wg sync.WaitGroup
	for range c.Workers {
		wg.Go(func() { batch.Drain(queue, closed, c.Size, c.Handle) })
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-closed:
		<-finished
		return ErrStopped
	case <-ctx.Done():
	}
	cc.Drain()
	select {
	case <-finished:
		return nil
	case <-time.After(c.Drain):
		cc.Stop()
		return fmt.Errorf("consumer %s: drain took longer than %s; unacknowledged events will be redelivered", c.Durable, c.Drain)
	}
}

// Handle decodes, applies and settles one batch of delivered messages.
func (c *Consumer[E]) Handle(msgs []jetstream.Msg) {
	evs := make([]E, 0, len(msgs))
	valid := make([]jetstream.Msg, 0, len(msgs))
	for _, msg := range msgs {
		ev, err := c.Decode(msg.Data())
		if err != nil {
			c.term(msg, err)
			continue
		}
		evs, valid = append(evs, ev), append(valid, msg)
	}
	if len(evs) == 0 {
		return
	}
	ctx, span := tracing.StartBatch(context.Background(), "consume "+c.Subject, len(valid), func(i int) string {
		return valid[i].Headers().Get(tracing.Header) // nil headers: ""
	})
	defer span.End()
	errs := c.Apply(ctx, evs)
	if errs != nil && len(errs) != len(evs) {
		errs = Each(len(evs), fmt.Errorf("consumer %s: %d verdicts for %d events", c.Durable, len(errs), len(evs)))
	}
	var done, again []jetstream.Msg
	var againErr error
	for i, msg := range valid {
		switch err := verdict(errs, i); {
		case err == nil:
			done = append(done, msg)
		case errors.Is(err, ErrPermanent):
			c.term(msg, err)
		default:
			again, againErr = append(again, msg), err
		}
	}
	c.retry(again, againErr)
	c.ack(done)
}

func verdict(errs []error, i int) error {
	if errs == nil {
		return nil
	}
	return errs[i]
}

// ack acknowledges msgs. The last one waits for the server's answer, which comes after the
// acknowledgements sent before it on this connection, so the batch is acknowledged at the
// server when ack returns. A lost acknowledgement only brings an event back, and handling
// one again changes nothing.
func (c *Consumer[E]) ack(msgs []jetstream.Msg) {
	if len(msgs) == 0 {
		return
	}
	var ackErr error
	last := len(msgs) - 1
	for _, msg := range msgs[:last] {
		if err := msg.Ack(); err != nil {
			ackErr = err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ackTimeout)
	defer cancel()
	if err := msgs[last].DoubleAck(ctx); err != nil {
		ackErr = err
	}
	if ackErr != nil {
		msgID, seq, _ := describe(msgs[last])
		slog.Warn("ack events (handled; they may come back and change nothing)", "consumer", c.Durable,
			"events", len(msgs), "lastMsgId", msgID, "lastSeq", seq, "err", ackErr)
	}
}

// term logs why msg can never be handled and terminates it, so it does not come back.
func (c *Consumer[E]) term(msg jetstream.Msg, err error) {
	msgID, seq, _ := describe(msg)
	slog.Error("event terminated", "consumer", c.Durable, "msgId", msgID, "seq", seq, "err", err)
	if err := msg.Term(); err != nil {
		slog.Warn("terminate event", "consumer", c.Durable, "msgId", msgID, "seq", seq, "err", err)
	}
}

// retry sends msgs back to come again after RetryDelay, logging on the first delivery of
// the batch's first event and every 30th after it, not once a second per batch.
func (c *Consumer[E]) retry(msgs []jetstream.Msg, err error) {
	if len(msgs) == 0 {
		return
	}
	msgID, seq, delivered := describe(msgs[0])
	if delivered <= 1 || delivered%30 == 0 {
		slog.Error("events not handled, will retry", "consumer", c.Durable, "events", len(msgs),
			"firstMsgId", msgID, "firstSeq", seq, "deliveries", delivered, "err", err)
	}
	for _, msg := range msgs {
		_ = msg.NakWithDelay(c.RetryDelay)
	}
}

// describe names msg for the log: its msg id, stream sequence and delivery count.
func describe(msg jetstream.Msg) (msgID string, seq, delivered uint64) {
	if h := msg.Headers(); h != nil {
		msgID = h.Get(jetstream.MsgIDHeader)
	}
	if meta, err := msg.Metadata(); err == nil {
		seq, delivered = meta.Sequence.Stream, meta.NumDelivered
	}
	return msgID, seq, delivered
}

// watch exports cons's figures at each scrape: the events not yet delivered, those
// delivered and not acknowledged, and those delivered more than once.
func (c *Consumer[E]) watch(cons jetstream.Consumer) {
	metrics.Register(metrics.NewProbe(func(ctx context.Context, emit func(int, float64, ...string)) error {
		info, err := cons.Info(ctx)
		if err != nil {
			return err
		}
		emit(0, float64(info.NumPending), c.Durable)
		emit(1, float64(info.NumAckPending), c.Durable)
		emit(2, float64(info.NumRedelivered), c.Durable)
		return nil
	},
		metrics.Gauge{Name: "secbuy_jetstream_consumer_pending", Help: "Events on the stream not yet delivered to the consumer.", Labels: []string{"consumer"}},
		metrics.Gauge{Name: "secbuy_jetstream_consumer_ack_pending", Help: "Events delivered to the consumer and not yet acknowledged.", Labels: []string{"consumer"}},
		metrics.Gauge{Name: "secbuy_jetstream_consumer_redelivered", Help: "Events delivered more than once and not yet acknowledged.", Labels: []string{"consumer"}},
	))
}
