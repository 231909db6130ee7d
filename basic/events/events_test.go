package events

import (
	"context"
	"slices"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"secbuy/basic/connect"
	"secbuy/basic/natstest"
	eventpb "secbuy/proto/events"
)

// The stream's subjects only grow: a binary that knows fewer subjects (an older one,
// during a rolling upgrade) keeps those another declared, and a newer one adds its own.
func TestConnectNeverShrinksSubjects(t *testing.T) {
	t.Parallel()
	url := natstest.Start(t)
	ctx := context.Background()
	nc, js, _, err := Connect(ctx, connect.NATS{URL: url}, 1, "first")
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	// A newer binary added a subject.
	cfg := jetstream.StreamConfig{Name: eventpb.Stream, Subjects: append(slices.Clone(Subjects), "payment.refunded"),
		Storage: jetstream.FileStorage}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	// This binary starts again, knowing only Subjects.
	nc2, _, s, err := Connect(ctx, connect.NATS{URL: url}, 1, "second")
	if err != nil {
		t.Fatal(err)
	}
	defer nc2.Close()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range append(slices.Clone(Subjects), "payment.refunded") {
		if !slices.Contains(info.Config.Subjects, want) {
			t.Errorf("subjects %v lack %s", info.Config.Subjects, want)
		}
	}
}

func TestUnion(t *testing.T) {
	t.Parallel()
	if got := Union([]string{"a", "b"}, []string{"b", "c"}); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("Union = %v", got)
	}
}
