// Package events wires the durable event stream: the public topics of proto/events on a
// NATS JetStream stream that every publisher and consumer creates if it is missing, so no
// event is lost because one side started first; and Consumer, the one durable consumer
// that every subscriber of secbuy's events is.
package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"secbuy/basic/outbox"
	eventpb "secbuy/proto/events"
)

// Subjects are the subjects of the stream: every topic, whichever side declares it.
var Subjects = []string{eventpb.PayTopic, eventpb.ExpiredTopic}

// Connect connects to NATS at url and makes sure the stream exists with every subject. The
// connection keeps reconnecting forever, so a NATS restart is ridden out. The JetStream
// handle drops publishes left unanswered for outbox.AckTimeout, as the relay expects.
func Connect(ctx context.Context, url, name string) (*nats.Conn, jetstream.JetStream, jetstream.Stream, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to nats at %s: %w", url, err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(outbox.AckTimeout))
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       eventpb.Stream,
		Subjects:   Subjects,
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     7 * 24 * time.Hour,
		Duplicates: 10 * time.Minute,
	})
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("create stream %s (is JetStream enabled? nats-server -js): %w", eventpb.Stream, err)
	}
	return nc, js, s, nil
}
