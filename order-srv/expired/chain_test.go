package expired

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go-micro.dev/v6/server"

	"secbuy/basic/config"
	"secbuy/basic/connect"
	"secbuy/basic/dbtest"
	"secbuy/basic/events"
	"secbuy/basic/natstest"
	"secbuy/basic/outbox"
	"secbuy/basic/svc"
	"secbuy/basic/testutil"
	orderhandler "secbuy/order-srv/handler"
	orderpb "secbuy/order-srv/proto/order"
	"secbuy/order-srv/repo"
	"secbuy/payment-srv/consumer"
	"secbuy/payment-srv/expiry"
	payhandler "secbuy/payment-srv/handler"
	paymig "secbuy/payment-srv/migrations"
	paypb "secbuy/payment-srv/proto/payment"
	payrepo "secbuy/payment-srv/repo"
	eventpb "secbuy/proto/events"
	"secbuy/proto/outcome"
	stockhandler "secbuy/stock-srv/handler"
	stockpb "secbuy/stock-srv/proto/stock"
	stockrepo "secbuy/stock-srv/repo"
)

// payTimeout is the chain's pay timeout: seconds in tests.
const payTimeout = 3 * time.Second

// chain is the three services wired as in production, each on its own database, on a
// private NATS: stock-srv serves over go-micro gRPC; order-srv's relay and payment-srv's
// consumer carry payment.payevent; payment-srv's expiry and relay, and this package's
// consumer, carry payment.expired.
type chain struct {
	stock  *stockrepo.Repo
	orders *repo.Repo
	pays   *payrepo.Repo
	order  *orderhandler.Order
	pay    *payhandler.Payment
	js     jetstream.JetStream
	sid    int64
	// stopExpiry stops payment-srv's expiry loop (and only it).
	stopExpiry func()
}

func startChain(t *testing.T, count int64) *chain {
	t.Helper()
	url := natstest.Start(t)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	c := &chain{stock: newLocalStock(t).repo, pays: payrepo.New(dbtest.New(t, "payment", paymig.FS))}
	c.orders, _ = newOrders(t)
	c.pay = payhandler.New(c.pays)
	t.Cleanup(func() { cancel(); wg.Wait() }) // before the databases are dropped

	// stock-srv, over the registry.
	reg, err := connect.NATS{URL: url}.Registry()
	if err != nil {
		t.Fatal(err)
	}
	srv, err := svc.NewServer(stockpb.Name, "127.0.0.1:0", reg, config.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sh := stockhandler.New(c.stock)
	t.Cleanup(sh.Close)
	if err := srv.Handle(func(s server.Server) error { return stockpb.RegisterStockServiceHandler(s, sh) }); err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		if err := srv.Run(ctx); err != nil {
			t.Errorf("stock-srv: %v", err)
		}
	})
	stock := stockpb.NewStockService(svc.Internal(stockpb.Name), svc.Client(reg, 5*time.Second, 0))
	cm, err := c.stock.Create(ctx, stockrepo.Commodity{Name: "phone", Count: count})
	if err != nil {
		t.Fatal(err)
	}
	c.sid = cm.ID
	testutil.Eventually(t, 20*time.Second, "stock-srv in the registry", func() bool {
		rsp, err := stock.GetCommodity(ctx, &stockpb.Request{Id: c.sid})
		return err == nil && rsp.Success
	})

	// order-srv: orders, the payment.payevent relay, and the payment.expired consumer.
	onc, ojs, ostream, err := events.Connect(ctx, connect.NATS{URL: url}, 1, "order-srv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(onc.Close)
	c.js = ojs
	orl := outbox.NewRelay(c.orders, ojs, eventpb.PayTopic)
	c.order = orderhandler.New(c.orders, stock, orl.Poke, 5*time.Second)
	t.Cleanup(c.order.Close)
	wg.Go(func() { orl.Run(ctx) })
	wg.Go(func() {
		if err := New(c.orders, stock, 5*time.Second).Run(ctx, ostream); err != nil {
			t.Errorf("payment.expired consumer: %v", err)
		}
	})

	// payment-srv: the payment.payevent consumer, expiry, and the payment.expired relay.
	pnc, pjs, pstream, err := events.Connect(ctx, connect.NATS{URL: url}, 1, "payment-srv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pnc.Close)
	prl := outbox.NewRelay(c.pays, pjs, eventpb.ExpiredTopic)
	wg.Go(func() { prl.Run(ctx) })
	ectx, stopExpiry := context.WithCancel(ctx)
	c.stopExpiry = stopExpiry
	wg.Go(func() { expiry.Run(ectx, c.pays, 100*time.Millisecond, payTimeout, prl.Poke) })
	wg.Go(func() {
		if err := consumer.New(c.pays).Run(ctx, pstream); err != nil {
			t.Errorf("payment.payevent consumer: %v", err)
		}
	})
	// Stop the loops before the NATS connections close (cleanups run last first).
	t.Cleanup(func() { cancel(); wg.Wait() })
	return c
}

// audit is what the three services say about the commodity.
type audit struct {
	stock stockrepo.Audit
	order repo.Audit
	pay   payrepo.Audit
}

func (c *chain) audit(t *testing.T) audit {
	t.Helper()
	ctx := context.Background()
	var a audit
	var err error
	if a.stock, err = c.stock.Audit(ctx, c.sid); err != nil {
		t.Fatal(err)
	}
	if a.order, err = c.orders.Audit(ctx, c.sid); err != nil {
		t.Fatal(err)
	}
	if a.pay, err = c.pays.Audit(ctx, c.sid); err != nil {
		t.Fatal(err)
	}
	return a
}

// settled says whether every event has been carried through: no order pending, every
// created order has its payment, no payment unpaid past its time, every expired payment's
// order cancelled and its unit released.
func (a audit) settled() bool {
	return a.order.Pending == 0 && a.pay.Live == a.order.Live && a.order.Cancelled == a.pay.Expired &&
		a.stock.Released == a.pay.Expired && a.order.Unsent == 0
}

// check reports every broken invariant: sale <= count; sale == live granted stock_sale rows
// == created orders == payments not expired (the same orders); cancelled orders == expired
// payments == released units; no user with two live orders.
func (a audit) check(t *testing.T) {
	t.Helper()
	s, o, p := a.stock, a.order, a.pay
	if s.Sale > s.Count || s.Sale != s.Granted || s.Sale != o.Live || o.Live != p.Live || o.LiveIDSum != p.LiveOrderIDSum {
		t.Errorf("count %d, sale %d, live granted %d, created orders %d (id sum %d), live payments %d (order id sum %d)",
			s.Count, s.Sale, s.Granted, o.Live, o.LiveIDSum, p.Live, p.LiveOrderIDSum)
	}
	if o.Cancelled != p.Expired || s.Released != p.Expired || o.Pending != 0 || o.UsersWithTwoLive != 0 {
		t.Errorf("cancelled orders %d, expired payments %d, released units %d, pending %d, users with two live orders %d",
			o.Cancelled, p.Expired, s.Released, o.Pending, o.UsersWithTwoLive)
	}
}

// buy has users buy at once with request ids "user:key" and returns the order ids of those
// who got one, by user; the others must be told sold out.
func (c *chain) buy(t *testing.T, users []int64, key string) map[int64]int64 {
	t.Helper()
	var mu sync.Mutex
	got := map[int64]int64{}
	var wg sync.WaitGroup
	for _, u := range users {
		wg.Go(func() {
			var out orderpb.Response
			err := c.order.CreateOrder(context.Background(), &orderpb.CreateRequest{Sid: c.sid, UserId: u, RequestId: fmt.Sprintf("%d:%s", u, key)}, &out)
			switch {
			case err != nil:
				t.Errorf("user %d: %v", u, err)
			case out.Success:
				mu.Lock()
				got[u] = out.Order.Id
				mu.Unlock()
			case out.Error.GetReason() != outcome.Reason_SOLD_OUT:
				t.Errorf("user %d: %v; want an order or sold out", u, &out)
			}
		})
	}
	wg.Wait()
	return got
}

func users(from, to int64) []int64 {
	var us []int64
	for u := from; u <= to; u++ {
		us = append(us, u)
	}
	return us
}

// The whole chain: 45 buyers for 30 units; 10 pay at once, 10 pay around the moment their
// payment expires (racing the expiry), 10 never pay. Every expired payment's order is
// cancelled and its unit released once; the released units are then sold again, to buyers
// whose order was cancelled and to new ones, and not one more.
func TestExpiryChain(t *testing.T) {
	t.Parallel()
	const count = 30
	c := startChain(t, count)
	ctx := context.Background()

	first := c.buy(t, users(1, 45), "1")
	if len(first) != count {
		t.Fatalf("%d buyers got an order; want %d", len(first), count)
	}
	testutil.Eventually(t, 20*time.Second, "a payment for every order", func() bool { return c.audit(t).pay.Live == count })
	created := time.Now()

	var buyers []int64
	for u := range first {
		buyers = append(buyers, u)
	}
	type payAnswer struct {
		user int64
		rsp  *paypb.Response
	}
	answers := make(chan payAnswer, count)
	var wg sync.WaitGroup
	for i, u := range buyers[:20] {
		wg.Go(func() {
			if i >= 10 { // around the expiry: from 0.5 s before to 0.5 s after
				time.Sleep(time.Until(created.Add(payTimeout - 500*time.Millisecond + rand.N(time.Second))))
			}
			var out paypb.Response
			if err := c.pay.PayOrder(ctx, &paypb.PayRequest{Id: first[u], UserId: u}, &out); err != nil {
				t.Errorf("PayOrder of user %d: %v", u, err)
			}
			answers <- payAnswer{u, &out}
		})
	}
	wg.Wait()
	close(answers)
	paid := 0
	for a := range answers {
		switch {
		case a.rsp.Success:
			paid++
		case a.rsp.Error.GetReason() != outcome.Reason_PAYMENT_EXPIRED:
			t.Errorf("PayOrder of user %d = %v; want paid or 409 expired", a.user, a.rsp)
		}
	}
	if paid < 10 {
		t.Fatalf("%d payments succeeded; want at least the 10 made at once", paid)
	}

	var a audit
	testutil.Eventually(t, 30*time.Second, "the expiries to be carried through", func() bool {
		a = c.audit(t)
		return a.pay.Unpaid == 0 && a.settled()
	})
	a.check(t)
	if a.pay.Paid != int64(paid) || a.pay.Expired != int64(count-paid) || a.stock.Sale != int64(paid) {
		t.Errorf("paid %d, expired %d, sale %d; want %d paid (as answered), %d expired, sale %d",
			a.pay.Paid, a.pay.Expired, a.stock.Sale, paid, count-paid, paid)
	}
	// Each order's end agrees with its payment: paid → created, expired → cancelled.
	for u, id := range first {
		o, err := c.orders.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.pays.Get(ctx, id, fmt.Sprint(u))
		if err != nil {
			t.Fatal(err)
		}
		if (p.State == payrepo.StatePaid) != (o.State == repo.Created) || (p.State == payrepo.StateExpired) != (o.State == repo.Cancelled) {
			t.Errorf("order %d is %s but its payment is in state %d", id, o.State, p.State)
		}
	}
	idle(t, c.js)
	t.Logf("first wave: %d paid, %d expired and released", paid, count-paid)

	// The released units are on sale again (once their return delay is over): the buyers
	// whose order was cancelled (with a new request id) and 10 new buyers compete for them;
	// exactly the released units are sold. (Expiry stops first, so that the new payments
	// cannot expire before the check.)
	c.stopExpiry()
	testutil.Eventually(t, 10*time.Second, "the released units on sale again", func() bool {
		cm, err := c.stock.Get(ctx, c.sid)
		return err == nil && cm.Left(time.Now()) == int64(count-paid)
	})
	var again []int64
	for u, id := range first {
		if o, _ := c.orders.Get(ctx, id); o.State == repo.Cancelled {
			again = append(again, u)
		}
	}
	second := c.buy(t, append(again, users(46, 55)...), "2")
	if len(second) != count-paid {
		t.Errorf("%d orders in the second wave; want the %d released units", len(second), count-paid)
	}
	testutil.Eventually(t, 20*time.Second, "payments of the second wave", func() bool {
		a = c.audit(t)
		return a.settled() && a.pay.Live == count
	})
	a.check(t)
	if a.stock.Sale != count {
		t.Errorf("sale %d after the second wave; want %d (sold out again)", a.stock.Sale, count)
	}
	t.Logf("second wave: %d more sold; audit %+v", len(second), a)
}

// idle waits until the payment.expired consumer has acknowledged every event.
func idle(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, "the payment.expired consumer to acknowledge everything", func() bool {
		cons, err := js.Consumer(context.Background(), eventpb.Stream, Durable)
		if err != nil {
			return false
		}
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}
