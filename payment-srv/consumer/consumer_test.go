package consumer

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	secconnect "secbuy/basic/connect"
	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/basic/events"
	"secbuy/basic/natstest"
	"secbuy/basic/testutil"
	"secbuy/payment-srv/migrations"
	"secbuy/payment-srv/repo"
	eventpb "secbuy/proto/events"
)

// connect is one side's connection: it creates the stream if it is missing.
func connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	nc, js, s, err := events.Connect(context.Background(), secconnect.NATS{URL: url}, 1, t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc, js, s
}

// setup gives a test a NATS server and a database of its own, and one side's connection
// to the stream (see connect).
func setup(t *testing.T) (string, *db.DB, jetstream.JetStream, jetstream.Stream) {
	t.Helper()
	url := natstest.Start(t)
	d := dbtest.New(t, "payment", migrations.FS)
	_, js, s := connect(t, url)
	return url, d, js, s
}

func event(order int64) *eventpb.PayEvent {
	return &eventpb.PayEvent{OrderId: order, CommodityId: 7, UserId: 1000 + order, Name: "goods", CreateTime: 1_700_000_000}
}

func publish(t *testing.T, js jetstream.JetStream, data []byte, msgID string) {
	t.Helper()
	if _, err := js.Publish(context.Background(), eventpb.PayTopic, data, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatalf("publish %s: %v", msgID, err)
	}
}

// publishEvents publishes the events of orders from..to at once and waits until the
// stream has stored them all.
func publishEvents(t testing.TB, js jetstream.JetStream, from, to int64) {
	t.Helper()
	for order := from; order <= to; order++ {
		data, err := eventpb.Marshal(event(order))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := js.PublishAsync(eventpb.PayTopic, []byte(data), jetstream.WithMsgID(fmt.Sprintf("order-%d", order))); err != nil {
			t.Fatalf("publish order %d: %v", order, err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(30 * time.Second):
		t.Fatalf("publishing orders %d..%d took longer than 30 s", from, to)
	}
}

// countingStore wraps the real store: it fails the first failFirst calls, waits delay
// before each batch insert, and counts calls, payments offered and created rows.
type countingStore struct {
	inner     Store
	failFirst int64
	delay     time.Duration
	calls     atomic.Int64
	payments  atomic.Int64
	created   atomic.Int64
}

func (s *countingStore) CreateBatch(ctx context.Context, ps []repo.Payment) (int64, error) {
	s.payments.Add(int64(len(ps)))
	if s.calls.Add(1) <= s.failFirst {
		return 0, errors.New("database unavailable")
	}
	time.Sleep(s.delay)
	n, err := s.inner.CreateBatch(ctx, ps)
	s.created.Add(n)
	return n, err
}

// running is a consumer started by startConsumer.
type running struct {
	cancel   context.CancelFunc
	done     chan error
	err      error
	finished bool
}

// startConsumer runs the consumer on stream in the background with a short ack wait.
func startConsumer(t *testing.T, stream jetstream.Stream, store Store) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	c := New(store)
	c.AckWait = time.Second
	go func() { r.done <- c.Run(ctx, stream) }()
	t.Cleanup(func() { _ = r.stop(t) })
	return r
}

// wait waits for run to return and gives its result.
func (r *running) wait(t *testing.T) error {
	t.Helper()
	if !r.finished {
		select {
		case r.err = <-r.done:
		case <-time.After(30 * time.Second):
			t.Fatal("consumer did not stop within 30 s")
		}
		r.finished = true
	}
	return r.err
}

// stop stops the consumer the way SIGTERM does and gives run's result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

type counts struct{ Rows, Orders, Sum int64 }

func tally(t *testing.T, d *db.DB) counts {
	t.Helper()
	var c counts
	if err := d.Raw(`SELECT count(*) AS rows, count(DISTINCT sid) AS orders, coalesce(sum(sid), 0)::bigint AS sum
		FROM payments`).Scan(&c).Error; err != nil {
		t.Fatal(err)
	}
	return c
}

// waitIdle waits until the durable consumer has every stream message delivered and
// acknowledged (or terminated).
func waitIdle(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, "the consumer to finish the stream", func() bool {
		return idle(t, js)
	})
}

func idle(t *testing.T, js jetstream.JetStream) bool {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, eventpb.Stream)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Consumer(ctx, Durable)
	if err != nil {
		return false
	}
	info, err := c.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return info.NumPending == 0 && info.NumAckPending == 0 && info.Delivered.Stream == s.CachedInfo().State.LastSeq
}

// wantPayments fails t unless the payments table holds want; when says at what point.
func wantPayments(t *testing.T, d *db.DB, when string, want counts) {
	t.Helper()
	if got := tally(t, d); got != want {
		t.Errorf("%s payments = %+v; want %+v", when, got, want)
	}
}

func sumTo(n int64) int64 { return n * (n + 1) / 2 }

func TestEventsPublishedBeforeTheConsumerExisted(t *testing.T) {
	t.Parallel()
	url, d, pubJS, _ := setup(t) // the publisher creates the stream; no consumer exists yet
	publishEvents(t, pubJS, 1, 50)

	_, _, stream := connect(t, url)
	startConsumer(t, stream, repo.New(d))
	testutil.Eventually(t, 20*time.Second, "50 payments", func() bool { return tally(t, d).Rows == 50 })
	waitIdle(t, pubJS)
	wantPayments(t, d, "", counts{50, 50, sumTo(50)})
	p, err := repo.New(d).Get(context.Background(), 17, "1017")
	if err != nil {
		t.Fatal(err)
	}
	if p.CommodityID != 7 || p.Name != "goods" || p.State != repo.StateUnpaid || p.PaidTime != nil {
		t.Errorf("payment of order 17 = %+v; want unpaid, commodity 7, name goods", p)
	}
}

func TestSameEventThreeTimesMakesOnePayment(t *testing.T) {
	t.Parallel()
	_, d, js, stream := setup(t)
	data, err := eventpb.Marshal(event(5))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"order-5", "order-5-again", "order-5-relay-restarted"} {
		publish(t, js, []byte(data), id)
	}
	store := &countingStore{inner: repo.New(d)}
	startConsumer(t, stream, store)
	waitIdle(t, js)
	wantPayments(t, d, "", counts{1, 1, 5})
	if payments, created := store.payments.Load(), store.created.Load(); payments != 3 || created != 1 {
		t.Errorf("payments offered to the store = %d, created = %d; want 3, 1", payments, created)
	}
}

func TestStopMidwayAndRestart(t *testing.T) {
	t.Parallel()
	// More events than one consumer has in hand (pull buffer, queue and batches) when it
	// is stopped, and slow batches, so the first consumer is stopped well before the end.
	const n = 5000
	tests := []struct {
		name string
		// kill stops the first consumer: like SIGTERM, or like a crash.
		kill     func(t *testing.T, c *running, nc *nats.Conn) error
		wantStop error
	}{
		{"graceful stop", func(t *testing.T, c *running, _ *nats.Conn) error { return c.stop(t) }, nil},
		{"connection lost", func(t *testing.T, c *running, nc *nats.Conn) error { nc.Close(); return c.wait(t) }, events.ErrStopped},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			url, d, pubJS, _ := setup(t)
			publishEvents(t, pubJS, 1, n)

			first := &countingStore{inner: repo.New(d), delay: 50 * time.Millisecond}
			nc1, _, stream1 := connect(t, url)
			c := startConsumer(t, stream1, first)
			testutil.Eventually(t, 20*time.Second, "some payments", func() bool { return tally(t, d).Rows >= 50 })
			if err := tc.kill(t, c, nc1); !errors.Is(err, tc.wantStop) {
				t.Fatalf("first consumer returned %v; want %v", err, tc.wantStop)
			}
			stored := tally(t, d).Rows
			if stored >= n {
				t.Fatalf("first consumer stored all %d payments before it was stopped; the test proves nothing", n)
			}
			if acked, handled := ackedCount(t, pubJS), first.payments.Load(); tc.wantStop == nil && acked < handled {
				t.Errorf("after a graceful stop %d events are acknowledged, but %d were handled", acked, handled)
			}
			t.Logf("first consumer stored %d of %d", stored, n)

			second := &countingStore{inner: repo.New(d)}
			_, _, stream2 := connect(t, url)
			startConsumer(t, stream2, second)
			waitIdle(t, pubJS)
			wantPayments(t, d, "", counts{n, n, sumTo(n)})
			if created := first.created.Load() + second.created.Load(); created != n {
				t.Errorf("rows created = %d; want %d", created, n)
			}
		})
	}
}

// ackedCount is how many delivered events the server has seen acknowledged. (Events the
// server sent that the client had not yet handed on when it stopped stay unacknowledged,
// and are redelivered: only the ones handled must be acknowledged.)
func ackedCount(t *testing.T, js jetstream.JetStream) int64 {
	t.Helper()
	c, err := js.Consumer(context.Background(), eventpb.Stream, Durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return int64(info.Delivered.Consumer) - int64(info.NumAckPending)
}

func TestPoisonIsTerminatedAndDoesNotBlock(t *testing.T) {
	t.Parallel()
	_, d, js, stream := setup(t)
	poison := []string{
		`{not json`,
		``,
		`{"orderId":"x","commodityId":7,"userId":1}`,
		`{"orderId":0,"commodityId":7,"userId":1}`,
		`{"orderId":1,"commodityId":-7,"userId":1}`,
		`{"orderId":1,"commodityId":7}`,
		`{"orderId":1,"commodityId":7,"userId":1,"name":"a\u0000b"}`,
		`[1,2,3]`,
	}
	for i, data := range poison {
		publish(t, js, []byte(data), fmt.Sprintf("poison-%d", i))
	}
	// Valid: int64 as a JSON string (protojson's own form) and a field added later.
	publish(t, js, []byte(`{"orderId":"1","commodityId":"7","userId":"1001","name":"goods"}`), "order-1")
	publish(t, js, []byte(`{"orderId":2,"commodityId":7,"userId":1002,"name":"goods","coupon":"x"}`), "order-2")
	publishEvents(t, js, 3, 10)

	store := &countingStore{inner: repo.New(d)}
	startConsumer(t, stream, store)
	waitIdle(t, js)
	wantPayments(t, d, "", counts{10, 10, sumTo(10)})
	// Terminated events never come back: the server's acknowledgement floor is past every
	// message of the stream, so none of them is waiting for an acknowledgement any more.
	c, err := js.Consumer(context.Background(), eventpb.Stream, Durable)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if last := c.CachedInfo().Delivered.Stream; info.AckFloor.Stream != last || info.NumAckPending != 0 {
		t.Errorf("ack floor %d, %d waiting for an ack; want the floor at the last message %d", info.AckFloor.Stream, info.NumAckPending, last)
	}
	if payments := store.payments.Load(); payments != 10 {
		t.Errorf("payments offered to the store = %d; want 10 (poison never reaches the store)", payments)
	}
}

func TestDatabaseFailureIsRetried(t *testing.T) {
	t.Parallel()
	_, d, js, stream := setup(t)
	publishEvents(t, js, 1, 1)
	store := &countingStore{inner: repo.New(d), failFirst: 3}
	startConsumer(t, stream, store)
	testutil.Eventually(t, 20*time.Second, "the payment after 3 failed inserts", func() bool { return tally(t, d).Rows == 1 })
	waitIdle(t, js)
	wantPayments(t, d, "", counts{1, 1, 1})
	if calls, created := store.calls.Load(), store.created.Load(); calls != 4 || created != 1 {
		t.Errorf("store calls = %d, created = %d; want 4, 1", calls, created)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		data    string
		want    repo.Payment
		wantErr bool
	}{
		{"numbers", `{"orderId":5,"commodityId":7,"userId":9,"name":"goods","createTime":1}`, repo.Payment{Sid: 5, CommodityID: 7, Buyer: "9", Name: "goods", OrderTime: time.Unix(1, 0)}, false},
		{"no order time", `{"orderId":5,"commodityId":7,"userId":9,"name":"goods"}`, repo.Payment{Sid: 5, CommodityID: 7, Buyer: "9", Name: "goods"}, false},
		{"negative order time", `{"orderId":5,"commodityId":7,"userId":9,"createTime":-5}`, repo.Payment{Sid: 5, CommodityID: 7, Buyer: "9"}, false},
		{"int64 strings", `{"orderId":"5","commodityId":"7","userId":"9"}`, repo.Payment{Sid: 5, CommodityID: 7, Buyer: "9"}, false},
		{"unknown field", `{"orderId":5,"commodityId":7,"userId":9,"extra":true}`, repo.Payment{Sid: 5, CommodityID: 7, Buyer: "9"}, false},
		{"malformed", `{"orderId":`, repo.Payment{}, true},
		{"wrong type", `{"orderId":true,"commodityId":7,"userId":9}`, repo.Payment{}, true},
		{"fraction", `{"orderId":1.5,"commodityId":7,"userId":9}`, repo.Payment{}, true},
		{"too big", `{"orderId":99999999999999999999,"commodityId":7,"userId":9}`, repo.Payment{}, true},
		{"missing order", `{"commodityId":7,"userId":9}`, repo.Payment{}, true},
		{"negative user", `{"orderId":5,"commodityId":7,"userId":-9}`, repo.Payment{}, true},
		{"zero commodity", `{"orderId":5,"commodityId":0,"userId":9}`, repo.Payment{}, true},
		{"NUL in name", `{"orderId":5,"commodityId":7,"userId":9,"name":"\u0000"}`, repo.Payment{}, true},
		{"not an object", `"x"`, repo.Payment{}, true},
		{"buyer", `{"orderId":5,"commodityId":7,"buyer":"6f1c2a9e-3b7d","userId":0}`, repo.Payment{Sid: 5, CommodityID: 7, Buyer: "6f1c2a9e-3b7d"}, false},
		{"buyer and userId", `{"orderId":5,"commodityId":7,"buyer":"9","userId":9}`, repo.Payment{Sid: 5, CommodityID: 7, Buyer: "9"}, false},
		{"buyer and userId disagree", `{"orderId":5,"commodityId":7,"buyer":"9","userId":8}`, repo.Payment{}, true},
		{"bad buyer", `{"orderId":5,"commodityId":7,"buyer":"a\u0000b"}`, repo.Payment{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decode([]byte(tc.data))
			if (err != nil) != tc.wantErr {
				t.Fatalf("decode(%s) error = %v; want error %v", tc.data, err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("decode(%s) = %+v; want %+v", tc.data, got, tc.want)
			}
		})
	}
}

// Many events at once, two instances: every payment exists once, in batches.
func TestManyEventsAtOnce(t *testing.T) {
	t.Parallel()
	const n = 5000
	url, d, js, stream := setup(t)
	store := &countingStore{inner: repo.New(d)}
	startConsumer(t, stream, store)
	_, _, other := connect(t, url) // a second instance shares the durable consumer
	startConsumer(t, other, store)
	start := time.Now()
	publishEvents(t, js, 1, n)
	testutil.Eventually(t, 30*time.Second, "5000 payments", func() bool { return tally(t, d).Rows >= n })
	elapsed := time.Since(start)
	waitIdle(t, js)
	wantPayments(t, d, "", counts{n, n, sumTo(n)})
	if created := store.created.Load(); created != n {
		t.Errorf("rows created = %d; want %d", created, n)
	}
	calls := store.calls.Load()
	if calls >= n/4 {
		t.Errorf("%d events took %d inserts; want them batched", n, calls)
	}
	t.Logf("%d events in %s (publishing included) with %d inserts", n, elapsed.Round(time.Millisecond), calls)
}

func fakeEvent(t *testing.T, order, user int64) *testutil.Msg {
	t.Helper()
	ev := event(order)
	ev.UserId = user
	data, err := eventpb.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.NewMsg([]byte(data))
}

func TestBatchWithTheSameOrderTwice(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t, "payment", migrations.FS)
	store := &countingStore{inner: repo.New(d)}
	first, other, again := fakeEvent(t, 5, 1005), fakeEvent(t, 6, 1006), fakeEvent(t, 5, 1005)
	relabelled := fakeEvent(t, 5, 9999) // the same order with different content: the first wins
	poison := testutil.NewMsg([]byte(`{not json`))
	New(store).Handle(testutil.Msgs(first, other, poison, again, relabelled))
	wantPayments(t, d, "", counts{2, 2, 11})
	if calls, created := store.calls.Load(), store.created.Load(); calls != 1 || created != 2 {
		t.Errorf("store calls = %d, created = %d; want 1, 2", calls, created)
	}
	if got, want := testutil.Settled(first, other, poison, again, relabelled), "ack ack term ack ack"; got != want {
		t.Errorf("settled %q; want %q", got, want)
	}
	if p, err := repo.New(d).Get(context.Background(), 5, "1005"); err != nil {
		t.Errorf("payment of order 5 for user 1005: %v", err)
	} else if p.State != repo.StateUnpaid {
		t.Errorf("payment of order 5 = %+v; want unpaid", p)
	}

	// The same batch again, as a redelivery: nothing changes, everything is acknowledged.
	New(store).Handle(testutil.Msgs(first, other, again, relabelled))
	wantPayments(t, d, "after redelivery", counts{2, 2, 11})
	if got, want := testutil.Settled(first, other, again, relabelled), "ack ack ack ack"; got != want {
		t.Errorf("redelivery settled %q; want %q", got, want)
	}
}

func TestBatchWhoseInsertFails(t *testing.T) {
	t.Parallel()
	d := dbtest.New(t, "payment", migrations.FS)
	store := &countingStore{inner: repo.New(d), failFirst: 1}
	a, b, poison := fakeEvent(t, 1, 1001), fakeEvent(t, 2, 1002), testutil.NewMsg([]byte(`[]`))
	New(store).Handle(testutil.Msgs(a, poison, b))
	if got, want := testutil.Settled(a, poison, b), "nak term nak"; got != want {
		t.Errorf("settled %q; want %q", got, want)
	}
	if got := tally(t, d); got.Rows != 0 {
		t.Errorf("payments = %+v; want none", got)
	}
	// The redelivery succeeds.
	New(store).Handle(testutil.Msgs(b, a))
	if got, want := testutil.Settled(a, b), "ack ack"; got != want {
		t.Errorf("redelivery settled %q; want %q", got, want)
	}
	wantPayments(t, d, "", counts{2, 2, 3})
}

// BenchmarkConsume measures stored events per second: b.N events are published first, then
// the consumer is timed until every payment exists.
func BenchmarkConsume(b *testing.B) {
	url := natstest.Start(b)
	d := dbtest.New(b, "payment", migrations.FS)
	_, js, stream := connect(b, url)
	publishEvents(b, js, 1, int64(b.N))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var rows int64
	b.ResetTimer()
	go func() { done <- New(repo.New(d)).Run(ctx, stream) }()
	for rows < int64(b.N) {
		time.Sleep(5 * time.Millisecond)
		if err := d.Raw(`SELECT count(*) FROM payments`).Scan(&rows).Error; err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
}
