package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"secbuy/basic/tracing"
)

// Tuning of the relay.
const (
	// Batch is the most events published before waiting for their acks.
	Batch = 256
	// AckTimeout is how long a batch waits for its acks; pass it to jetstream.New with
	// jetstream.WithPublishAsyncTimeout so unanswered publishes are dropped too.
	AckTimeout = 3 * time.Second
	// Tick is how often the relay looks without being poked.
	Tick = 100 * time.Millisecond
	// MaxBackoff is the longest pause after a failed step.
	MaxBackoff = 5 * time.Second
)

// Store is the outbox; a Table, or a service's repo that wraps one.
type Store interface {
	Relay(ctx context.Context, limit int, publish func([]Event) ([]int64, error)) (int, error)
}

// Publisher is the part of jetstream.JetStream the relay uses.
type Publisher interface {
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Relay moves an outbox to the stream, every event on one subject. One Relay runs per
// process and outbox; the store's lock lets only one of them, across instances, publish at
// a time.
type Relay struct {
	store   Store
	js      Publisher
	subject string
	wake    chan struct{}
}

// NewRelay returns a relay from store to js that publishes on subject.
func NewRelay(store Store, js Publisher, subject string) *Relay {
	return &Relay{store: store, js: js, subject: subject, wake: make(chan struct{}, 1)}
}

// Poke wakes the relay now; it never blocks.
func (r *Relay) Poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run relays until ctx is done, then publishes what is still unsent (up to 16 batches),
// so that what was committed while the service drained goes out before it stops. It wakes on Poke and every
// Tick, and backs off after a failure.
func (r *Relay) Run(ctx context.Context) {
	defer r.flush(ctx)
	tick := time.NewTicker(Tick)
	defer tick.Stop()
	var backoff time.Duration
	for ctx.Err() == nil {
		n, err := r.Step(ctx)
		if err != nil {
			backoff = min(max(2*backoff, Tick), MaxBackoff)
			slog.Error("relay outbox", "subject", r.subject, "err", err, "retry_in", backoff)
			sleep(ctx, backoff)
			continue
		}
		backoff = 0
		if n == Batch {
			continue
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		case <-r.wake:
		}
	}
}

// flush publishes what is unsent, a bounded number of batches; what is left (or fails) is
// sent by the next relay to run, of this instance or another.
func (r *Relay) flush(ctx context.Context) {
	for range 16 {
		n, err := r.Step(ctx)
		if err != nil {
			slog.Warn("relay outbox: last steps before stopping (the rest is sent by the next relay)", "subject", r.subject, "err", err)
			return
		}
		if n < Batch {
			return
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Step publishes one batch and returns how many events it marked sent. It is not cut short
// by ctx being cancelled, only bounded in time.
func (r *Relay) Step(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*AckTimeout)
	defer cancel()
	return r.store.Relay(ctx, Batch, r.publish)
}

// publish sends evs in order without waiting, then collects the acks and returns the ids of
// the acknowledged events, with the first failure.
func (r *Relay) publish(evs []Event) ([]int64, error) {
	var errs []error
	futures := make([]jetstream.PubAckFuture, 0, len(evs))
	// Each event's publish is a span, from the send to the ack: in its change's trace if the
	// row carries one, else a trace of its own. The consumer's span is its child, through
	// the message's header.
	spans := make([]trace.Span, 0, len(evs))
	for _, ev := range evs {
		msg := &nats.Msg{Subject: r.subject, Data: ev.Payload}
		ctx, span := tracing.Start(context.Background(), "publish "+r.subject, ev.Traceparent)
		if tp := tracing.Traceparent(ctx); tp != "" {
			msg.Header = nats.Header{tracing.Header: []string{tp}}
		}
		f, err := r.js.PublishMsgAsync(msg, jetstream.WithMsgID(ev.MsgID))
		if err != nil {
			tracing.End(span, err)
			// Later events would overtake this one; leave them for the next step.
			errs = append(errs, fmt.Errorf("publish %s: %w", ev.MsgID, err))
			break
		}
		futures, spans = append(futures, f), append(spans, span)
	}
	timeout := time.NewTimer(AckTimeout)
	defer timeout.Stop()
	expired := false
	acked := make([]int64, 0, len(futures))
	for i, f := range futures {
		var err error
		if !expired {
			select {
			case <-f.Ok():
			case err = <-f.Err():
			case <-timeout.C:
				expired = true
			}
		}
		if expired {
			select {
			case <-f.Ok():
			case err = <-f.Err():
			default:
				err = errors.New("no ack in time")
			}
		}
		tracing.End(spans[i], err)
		if err != nil {
			errs = append(errs, fmt.Errorf("publish %s: %w", evs[i].MsgID, err))
			continue
		}
		acked = append(acked, evs[i].ID)
	}
	switch len(errs) {
	case 0:
		return acked, nil
	case 1:
		return acked, errs[0]
	default:
		return acked, fmt.Errorf("%w (and %d more)", errs[0], len(errs)-1)
	}
}

// PurgeEvery is how often RunPurge looks for sent events past their retention.
const PurgeEvery = time.Minute

// Purger is the part of a Table that RunPurge uses.
type Purger interface {
	Purge(ctx context.Context, olderThan time.Duration, limit int) (int64, error)
}

// RunPurge deletes the events sent more than retention ago, at once and then every
// PurgeEvery, until ctx is done, so that an outbox does not grow forever.
func RunPurge(ctx context.Context, p Purger, retention time.Duration) {
	tick := time.NewTicker(PurgeEvery)
	defer tick.Stop()
	for {
		for ctx.Err() == nil {
			n, err := p.Purge(ctx, retention, 10_000)
			if err != nil && ctx.Err() == nil {
				slog.Warn("purge sent outbox rows", "err", err)
			}
			if err != nil || n < 10_000 {
				break
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
