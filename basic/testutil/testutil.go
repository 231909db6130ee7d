// Package testutil holds the helpers that tests of several packages share: waiting on a
// condition with a deadline, releasing goroutines at once, a delivered JetStream message
// that records how it was settled, a server address that is down, and bearer tokens.
package testutil

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"secbuy/basic/auth"
)

// Eventually polls cond until it holds, and fails t, naming what it waited for, if it
// still does not after timeout.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Race runs f(0) … f(n-1) in n goroutines released together by closing one channel, and
// returns once all have returned.
func Race(n int, f func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// Msg is a delivered JetStream message of Payload; it records what was done with it
// ("ack", "nak", "term", in order).
type Msg struct {
	jetstream.Msg // the methods a consumer does not use are left nil
	Payload       []byte
	mu            sync.Mutex
	done          []string
}

// NewMsg returns a delivered message of data.
func NewMsg(data []byte) *Msg { return &Msg{Payload: data} }

func (m *Msg) record(s string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = append(m.done, s)
	return nil
}

// Data returns the payload.
func (m *Msg) Data() []byte { return m.Payload }

// Headers returns none.
func (m *Msg) Headers() nats.Header { return nil }

// Metadata is not known for a message that never was on a stream.
func (m *Msg) Metadata() (*jetstream.MsgMetadata, error) { return nil, errors.New("no metadata") }

// Ack records "ack".
func (m *Msg) Ack() error { return m.record("ack") }

// DoubleAck records "ack".
func (m *Msg) DoubleAck(context.Context) error { return m.record("ack") }

// NakWithDelay records "nak".
func (m *Msg) NakWithDelay(time.Duration) error { return m.record("nak") }

// Term records "term".
func (m *Msg) Term() error { return m.record("term") }

// Settled returns what was done with m since the last call, and forgets it (for a
// redelivery).
func (m *Msg) Settled() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := strings.Join(m.done, "+")
	m.done = nil
	return s
}

// Msgs returns ms as the messages a consumer is handed.
func Msgs(ms ...*Msg) []jetstream.Msg {
	out := make([]jetstream.Msg, len(ms))
	for i, m := range ms {
		out[i] = m
	}
	return out
}

// Settled returns what was done with each of ms, space-separated, and forgets it.
func Settled(ms ...*Msg) string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.Settled()
	}
	return strings.Join(out, " ")
}

// ClosedAddr returns a loopback address that nothing listens on: a server that is down.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// Bearer returns an Authorization header value: a token of user, signed with secret, that
// expires after ttl (a negative ttl: one that has expired).
func Bearer(t testing.TB, secret string, user int64, ttl time.Duration) string {
	t.Helper()
	tok, err := auth.Mint(secret, user, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return "Bearer " + tok
}
