// Package relay publishes order-srv's outbox to JetStream on payment.payevent: the shared
// basic/outbox relay, in id order, each event with its msg id so the stream drops a
// republished one, and marked sent only once acknowledged.
package relay

import (
	"secbuy/basic/events"
	"secbuy/basic/outbox"
)

// Tuning of the relay (see basic/outbox).
const (
	Batch      = outbox.Batch
	AckTimeout = outbox.AckTimeout
	Tick       = outbox.Tick
	MaxBackoff = outbox.MaxBackoff
)

// Relay moves the outbox to the stream.
type Relay = outbox.Relay

// New returns a relay from store (repo.Repo) to js, on events.Topic.
func New(store outbox.Store, js outbox.Publisher) *Relay {
	return outbox.NewRelay(store, js, events.Topic)
}
