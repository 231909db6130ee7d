package expired

import (
	"context"
	"fmt"
	"testing"
	"time"

	"secbuy/basic/testutil"
	"secbuy/order-srv/repo"
	stockrepo "secbuy/stock-srv/repo"
)

type fixture struct {
	orders *repo.Repo
	stock  *localStock
	sid    int64
	ids    map[int64]int64 // user → order id
}

// newFixture makes a commodity of 10 units and orders of users 1..5: users 1, 2 and 3 hold
// created orders with their unit granted; user 4 a created order whose unit stock-srv never
// granted (an inconsistency); user 5 a failed order.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	orders, _ := newOrders(t)
	f := &fixture{orders: orders, stock: newLocalStock(t), ids: map[int64]int64{}}
	c, err := f.stock.repo.Create(ctx, stockrepo.Commodity{Name: "phone", Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	f.sid = c.ID
	for u := int64(1); u <= 5; u++ {
		rid := fmt.Sprintf("%d:a", u)
		o, _, err := orders.Insert(ctx, f.sid, fmt.Sprint(u), rid)
		if err != nil {
			t.Fatal(err)
		}
		f.ids[u] = o.ID
		switch {
		case u <= 3:
			if _, err := f.stock.repo.Sell(ctx, f.sid, rid, fmt.Sprint(u)); err != nil {
				t.Fatal(err)
			}
			fallthrough
		case u == 4:
			_, err = orders.MarkCreated(ctx, o.ID, "phone")
		default:
			_, err = orders.MarkFailed(ctx, o.ID, "SOLD_OUT")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) state(t *testing.T, user int64) string {
	t.Helper()
	o, err := f.orders.Get(context.Background(), f.ids[user])
	if err != nil {
		t.Fatal(err)
	}
	return o.State
}

func (f *fixture) sale(t *testing.T) stockrepo.Audit {
	t.Helper()
	a, err := f.stock.repo.Audit(context.Background(), f.sid)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestHandleCancelsAndReleases(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := New(f.orders, f.stock, 5*time.Second)
	one, two, again := expiredMsg(t, f.ids[1]), expiredMsg(t, f.ids[2]), expiredMsg(t, f.ids[1])
	unknown, failed, never := expiredMsg(t, 999), expiredMsg(t, f.ids[5]), expiredMsg(t, f.ids[4])
	poison := testutil.NewMsg([]byte(`{"orderId":0}`))
	batch := []*testutil.Msg{one, poison, two, unknown, again, failed, never}
	c.Handle(testutil.Msgs(batch...))
	if got, want := testutil.Settled(batch...), "ack term ack term ack term term"; got != want {
		t.Errorf("outcomes = %q; want %q", got, want)
	}
	if s1, s2, s3, s4, s5 := f.state(t, 1), f.state(t, 2), f.state(t, 3), f.state(t, 4), f.state(t, 5); s1 != repo.Cancelled ||
		s2 != repo.Cancelled || s3 != repo.Created || s4 != repo.Cancelled || s5 != repo.Failed {
		t.Errorf("orders = %s %s %s %s %s; want cancelled cancelled created cancelled failed", s1, s2, s3, s4, s5)
	}
	if a := f.sale(t); a.Sale != 1 || a.Granted != 1 || a.Released != 2 {
		t.Errorf("stock = %+v; want sale 1 == granted 1, released 2", a)
	}
	if n := f.stock.releases.Load(); n != 1 {
		t.Errorf("ReleaseBatch calls = %d; want 1 for the batch", n)
	}

	// A redelivery changes nothing and is acknowledged.
	c.Handle(testutil.Msgs(one, two))
	if got := testutil.Settled(one, two); got != "ack ack" {
		t.Errorf("redelivery outcomes = %q; want acks", got)
	}
	if a := f.sale(t); a.Sale != 1 || a.Released != 2 {
		t.Errorf("stock after redelivery = %+v; want unchanged", a)
	}
}

// A crash, or stock-srv down, between the cancel and the release: the event is not
// acknowledged, comes back, and the unit is released once.
func TestHandleReleaseFailsThenRedelivered(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	c := New(f.orders, f.stock, 5*time.Second)
	one := expiredMsg(t, f.ids[1])
	f.stock.down.Store(true)
	c.Handle(testutil.Msgs(one))
	if got := testutil.Settled(one); got != "nak" {
		t.Errorf("outcome with stock-srv down = %q; want nak", got)
	}
	if s := f.state(t, 1); s != repo.Cancelled {
		t.Errorf("order = %s; want cancelled (the release comes later)", s)
	}
	if a := f.sale(t); a.Sale != 3 || a.Granted != 3 {
		t.Errorf("stock = %+v; want unchanged while stock-srv is down", a)
	}
	f.stock.down.Store(false)
	c.Handle(testutil.Msgs(one))
	c.Handle(testutil.Msgs(one))
	if got := testutil.Settled(one); got != "ack+ack" {
		t.Errorf("outcomes of the redeliveries = %q; want two acks", got)
	}
	if a := f.sale(t); a.Sale != 2 || a.Granted != 2 || a.Released != 1 {
		t.Errorf("stock = %+v; want sale 2 == granted 2, released 1", a)
	}
}

func TestHandleDatabaseDown(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	store := &failingStore{Store: f.orders}
	store.fail.Store(true)
	c := New(store, f.stock, 5*time.Second)
	one, poison := expiredMsg(t, f.ids[1]), testutil.NewMsg([]byte(`nope`))
	c.Handle(testutil.Msgs(one, poison))
	if got := testutil.Settled(one, poison); got != "nak term" {
		t.Errorf("outcomes = %q; want nak term", got)
	}
	if s, n := f.state(t, 1), f.stock.releases.Load(); s != repo.Created || n != 0 {
		t.Errorf("order %s, %d releases; want created and none", s, n)
	}
	store.fail.Store(false)
	c.Handle(testutil.Msgs(one))
	if got := testutil.Settled(one); got != "ack" {
		t.Errorf("outcome after recovery = %q; want ack", got)
	}
	if s, a := f.state(t, 1), f.sale(t); s != repo.Cancelled || a.Sale != 2 {
		t.Errorf("order %s, stock %+v; want cancelled and sale 2", s, a)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		data string
		want int64
	}{
		{`{"orderId":5,"commodityId":7}`, 5},
		{`{"orderId":"5","extra":1}`, 5},
		{`{"orderId":0}`, 0},
		{`{"orderId":-1}`, 0},
		{`{}`, 0},
		{`[`, 0},
		{`{"orderId":1.5}`, 0},
	} {
		got, err := decode([]byte(tc.data))
		if got != tc.want || (err != nil) != (tc.want == 0) {
			t.Errorf("decode(%s) = %d, %v; want %d", tc.data, got, err, tc.want)
		}
	}
}
