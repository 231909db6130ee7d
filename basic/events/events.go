// Package events wires the durable event stream: the public topics payment.payevent and
// payment.expired on a NATS JetStream stream that every publisher and consumer creates if
// it is missing, so no event is lost because one side started first.
package events

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Topic is the public subject of "an order was created; make its payment".
const Topic = "payment.payevent"

// ExpiredTopic is the public subject of "a payment expired unpaid; cancel its order and
// return its unit".
const ExpiredTopic = "payment.expired"

// Stream is the JetStream stream that stores Topic and ExpiredTopic.
const Stream = "SECBUY_PAYMENT"

// Connect connects to NATS at url and makes sure the stream exists with both subjects. The
// connection keeps reconnecting forever, so a NATS restart is ridden out.
func Connect(ctx context.Context, url, name string) (*nats.Conn, jetstream.JetStream, jetstream.Stream, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("connect to nats at %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	s, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       Stream,
		Subjects:   []string{Topic, ExpiredTopic},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		MaxAge:     7 * 24 * time.Hour,
		Duplicates: 10 * time.Minute,
	})
	if err != nil {
		nc.Close()
		return nil, nil, nil, fmt.Errorf("create stream %s (is JetStream enabled? nats-server -js): %w", Stream, err)
	}
	return nc, js, s, nil
}
