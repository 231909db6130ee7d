// Package events wires the durable event stream: the public topics of proto/events on a
// NATS JetStream stream that every publisher and consumer creates if it is missing, so no
// event is lost because one side started first; and Consumer, the one durable consumer
// that every subscriber of secbuy's events is.
package events

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"secbuy/basic/connect"
	"secbuy/basic/outbox"
	eventpb "secbuy/proto/events"
)

// Subjects are the subjects of the stream: every topic, whichever side declares it.
var Subjects = []string{eventpb.PayTopic, eventpb.ExpiredTopic}

// Connect connects to NATS as n says (its servers, credentials and TLS) and makes sure
// the stream exists with every subject, each event kept on replicas nodes. The
// connection keeps reconnecting forever, so a NATS restart is ridden out. The JetStream
// handle drops publishes left unanswered for outbox.AckTimeout, as the relay expects.
func Connect(ctx context.Context, n connect.NATS, replicas int, name string) (*nats.Conn, jetstream.JetStream, jetstream.Stream, error) {
	nc, err := n.Connect(name, nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, nil, nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(outbox.AckTimeout))
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var s jetstream.Stream
	err = retry(ctx, "declare the stream", func(ctx context.Context) error {
		var err error
		s, err = declare(ctx, js, replicas)
		return err
	})
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("create stream %s (is JetStream enabled? nats-server -js): %w", eventpb.Stream, err)
	}
	return nc, js, s, nil
}

// retry calls f, each call bounded by 5 s, until it succeeds or ctx is done, waiting
// 250 ms, then twice as long each time up to 5 s: a JetStream cluster answers nothing while
// it elects a leader. It returns f's last error.
func retry(ctx context.Context, what string, f func(context.Context) error) error {
	for delay := 250 * time.Millisecond; ; delay = min(2*delay, 5*time.Second) {
		tctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := f(tctx)
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		slog.Warn("events: "+what+", trying again", "err", err, "in", delay)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// declare creates the stream, or updates it with the subjects it lacks. The subjects only
// ever grow: an instance of an older binary, started during a rolling upgrade, must not
// take away a subject that the newer ones publish on.
func declare(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.Stream, error) {
	cfg := jetstream.StreamConfig{
		Name:       eventpb.Stream,
		Subjects:   Subjects,
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     7 * 24 * time.Hour,
		Duplicates: 10 * time.Minute,
		Replicas:   replicas,
	}
	s, err := js.Stream(ctx, eventpb.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, cfg)
		if !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return s, err
		}
		s, err = js.Stream(ctx, eventpb.Stream) // another instance created it first
	}
	if err != nil {
		return nil, err
	}
	have := s.CachedInfo().Config.Subjects
	if len(Union(have, Subjects)) == len(have) && s.CachedInfo().Config.Replicas == replicas {
		return s, nil
	}
	cfg.Subjects = Union(have, Subjects)
	return js.UpdateStream(ctx, cfg)
}

// Union returns a's subjects followed by those of b that a lacks.
func Union(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}
