package repo_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"secbuy/basic/connect"
	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/basic/events"
	"secbuy/basic/natstest"
	"secbuy/basic/outbox"
	"secbuy/basic/testutil"
	"secbuy/order-srv/migrations"
	"secbuy/order-srv/repo"
	eventpb "secbuy/proto/events"
)

// created makes n created orders and returns their event msg ids in id order.
func created(t *testing.T, r *repo.Repo, firstUser int64, n int) []string {
	t.Helper()
	var ids []string
	for _, o := range createOrders(t, r, firstUser, n) {
		ids = append(ids, eventpb.PayMsgID(o.ID))
	}
	return ids
}

func unsent(t *testing.T, d *db.DB) int64 {
	t.Helper()
	var n int64
	if err := d.Raw("SELECT count(*) FROM outbox WHERE sent_time IS NULL").Scan(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// streamIDs returns the msg ids stored in the stream, in stream order.
func streamIDs(t *testing.T, s jetstream.Stream) []string {
	t.Helper()
	ctx := context.Background()
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.Header.Get(jetstream.MsgIDHeader))
	}
	return ids
}

func TestRelay(t *testing.T) {
	t.Parallel()
	url := natstest.Start(t)
	d := dbtest.New(t, "order", migrations.FS)
	r := repo.New(d)
	ctx := context.Background()
	want := created(t, r, 1, 5)

	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(outbox.AckTimeout))
	if err != nil {
		t.Fatal(err)
	}
	rl := outbox.NewRelay(r, js, eventpb.PayTopic)

	// No stream yet: nothing acknowledges, nothing is marked sent.
	if n, err := rl.Step(ctx); n != 0 || err == nil {
		t.Errorf("Step without a stream = %d, %v; want 0 and an error", n, err)
	}
	if n := unsent(t, d); n != 5 {
		t.Fatalf("unsent after failed step = %d; want 5", n)
	}

	enc, _, s, err := events.Connect(ctx, connect.NATS{URL: url}, 1, "relay-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(enc.Close)
	if n, err := rl.Step(ctx); n != 5 || err != nil {
		t.Fatalf("Step = %d, %v; want 5, nil", n, err)
	}
	if n := unsent(t, d); n != 0 {
		t.Errorf("unsent after step = %d; want 0", n)
	}
	if got := streamIDs(t, s); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("stream holds %v; want %v in that order", got, want)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var ev eventpb.PayEvent
	if err := eventpb.Unmarshal(m.Data, &ev); err != nil || m.Subject != eventpb.PayTopic ||
		eventpb.PayMsgID(ev.OrderId) != want[0] || ev.UserId != 1 || ev.CommodityId != 7 || ev.Name != "phone" {
		t.Errorf("first message on %s = %s (%v); want the PayEvent of %s on %s", m.Subject, m.Data, err, want[0], eventpb.PayTopic)
	}

	// Republished events (say the mark was lost) are dropped by the stream.
	if err := d.Exec("UPDATE outbox SET sent_time = NULL").Error; err != nil {
		t.Fatal(err)
	}
	if n, err := rl.Step(ctx); n != 5 || err != nil {
		t.Fatalf("Step again = %d, %v; want 5, nil", n, err)
	}
	if got := streamIDs(t, s); len(got) != 5 {
		t.Errorf("stream holds %d messages after republishing; want 5", len(got))
	}

	// Run sends what is poked, and returns once cancelled.
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { rl.Run(rctx); close(done) }()
	more := created(t, r, 100, 300) // more than one batch
	rl.Poke()
	testutil.Eventually(t, 10*time.Second, "the relay to send what was poked", func() bool { return unsent(t, d) == 0 })
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if n := unsent(t, d); n != 0 {
		t.Errorf("unsent after Run = %d; want 0", n)
	}
	if got := streamIDs(t, s); fmt.Sprint(got) != fmt.Sprint(append(want, more...)) {
		t.Errorf("stream holds %d messages, not the %d events in id order", len(got), len(want)+len(more))
	}
}

// Purge deletes exactly the events sent longer ago than the retention: unsent events and
// recently sent ones stay.
func TestOutboxPurge(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	created(t, r, 500, 6)
	ctx := context.Background()
	// Four sent (two of them two days ago), two unsent.
	if err := d.Exec(`UPDATE outbox SET sent_time = now() WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT 4)`).Error; err != nil {
		t.Fatal(err)
	}
	if err := d.Exec(`UPDATE outbox SET sent_time = now() - interval '2 days' WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT 2)`).Error; err != nil {
		t.Fatal(err)
	}
	n, err := r.Purge(ctx, 24*time.Hour, 1000)
	if err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want the 2 sent two days ago", n, err)
	}
	var left int64
	if err := d.Raw(`SELECT count(*) FROM outbox`).Scan(&left).Error; err != nil || left != 4 {
		t.Errorf("%d rows left (%v); want 4", left, err)
	}
	if got := unsent(t, d); got != 2 {
		t.Errorf("%d unsent left; want 2", got)
	}
}

// Of two callers of Exclusive with one key at the same time, one runs; once it is done
// (or its session gone), the next runs.
func TestExclusive(t *testing.T) {
	t.Parallel()
	_, d := newRepo(t)
	ctx := context.Background()
	inside, leave := make(chan struct{}), make(chan struct{})
	go func() {
		_, _ = d.Exclusive(ctx, 42, func(context.Context) error { close(inside); <-leave; return nil })
	}()
	<-inside
	ran, err := d.Exclusive(ctx, 42, func(context.Context) error { return nil })
	if err != nil || ran {
		t.Fatalf("second caller while the first holds the lock: ran %v, %v", ran, err)
	}
	close(leave)
	err = suiteEventually(func() bool {
		ran, err := d.Exclusive(ctx, 42, func(context.Context) error { return nil })
		return err == nil && ran
	})
	if err != nil {
		t.Fatal("the lock was not free after its holder finished")
	}
}

func suiteEventually(ok func() bool) error {
	for range 100 {
		if ok() {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("not within 2 s")
}
