package expiry_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"secbuy/basic/db"
	"secbuy/basic/dbtest"
	"secbuy/payment-srv/expiry"
	"secbuy/payment-srv/handler"
	"secbuy/payment-srv/migrations"
	pb "secbuy/payment-srv/proto/payment"
	"secbuy/payment-srv/repo"
	eventpb "secbuy/proto/events"
)

func setup(t *testing.T, n int64) (*repo.Repo, *db.DB) {
	t.Helper()
	d := dbtest.New(t, "payment", migrations.FS)
	r := repo.New(d)
	ps := make([]repo.Payment, n)
	for i := range ps {
		o := int64(i) + 1
		ps[i] = repo.Payment{Sid: o, CommodityID: 7, Buyer: fmt.Sprint(1000 + o), Name: "goods"}
	}
	if _, err := r.CreateBatch(context.Background(), ps); err != nil {
		t.Fatal(err)
	}
	return r, d
}

func TestOnceExpiresOnlyOldPayments(t *testing.T) {
	t.Parallel()
	r, d := setup(t, 3)
	ctx := context.Background()
	var pokes atomic.Int64
	poke := func() { pokes.Add(1) }
	if n, err := expiry.Once(ctx, r, time.Hour, poke); n != 0 || err != nil || pokes.Load() != 0 {
		t.Fatalf("Once on young payments = %d, %v, %d pokes; want 0, nil, no poke", n, err, pokes.Load())
	}
	// Payments older than the timeout expire.
	if err := d.Exec(`UPDATE payments SET create_time = now() - interval '2 hours'`).Error; err != nil {
		t.Fatal(err)
	}
	if n, err := expiry.Once(ctx, r, time.Hour, poke); n != 3 || err != nil || pokes.Load() != 1 {
		t.Fatalf("Once = %d, %v, %d pokes; want 3, nil, 1 poke", n, err, pokes.Load())
	}
	var unsent int64
	if err := d.Raw(`SELECT count(*) FROM payment_outbox WHERE sent_time IS NULL`).Scan(&unsent).Error; err != nil || unsent != 3 {
		t.Errorf("unsent events = %d, %v; want 3", unsent, err)
	}
}

// 100 payments, all past their time, paid by 100 concurrent PayOrder calls while two
// expiry loops run: each payment ends paid or expired, never both; a PayOrder call succeeds
// exactly for the paid ones and gets 409 exactly for the expired ones; each expired one has
// exactly one payment.expired event.
func TestExpiryRacesWithPayOrder(t *testing.T) {
	t.Parallel()
	const n = 100
	r, d := setup(t, n)
	if err := d.Exec(`UPDATE payments SET create_time = now() - interval '1 hour'`).Error; err != nil {
		t.Fatal(err)
	}
	h := handler.New(r)
	ctx := context.Background()
	start := make(chan struct{})
	var pays, expiries sync.WaitGroup
	answers := make([]*pb.Response, n+1)
	for o := int64(1); o <= n; o++ {
		pays.Go(func() {
			<-start
			if o%2 == 0 {
				time.Sleep(time.Duration(o%10) * time.Millisecond) // spread over the expiry rounds
			}
			var out pb.Response
			if err := h.PayOrder(ctx, &pb.PayRequest{Id: o, UserId: 1000 + o}, &out); err != nil {
				t.Errorf("PayOrder(%d): %v", o, err)
			}
			answers[o] = &out
		})
	}
	var mu sync.Mutex
	var expired []int64
	done := make(chan struct{})
	for _, limit := range []int{3, 7} { // small batches, so that rounds and payments interleave
		expiries.Go(func() {
			<-start
			for {
				ps, err := r.Expire(ctx, time.Minute, limit)
				if err != nil {
					t.Errorf("Expire: %v", err)
					return
				}
				mu.Lock()
				for _, p := range ps {
					expired = append(expired, p.Sid)
				}
				mu.Unlock()
				select {
				case <-done:
					if len(ps) == 0 {
						return
					}
				default:
				}
			}
		})
	}
	close(start)
	pays.Wait()
	close(done)
	expiries.Wait()

	// Once more through Once: nothing is left to expire.
	if m, err := expiry.Once(ctx, r, time.Minute, nil); m != 0 || err != nil {
		t.Errorf("Once after the race = %d, %v; want 0", m, err)
	}
	slices.Sort(expired)
	if len(slices.Compact(slices.Clone(expired))) != len(expired) {
		t.Errorf("a payment was expired twice: %v", expired)
	}
	isExpired := map[int64]bool{}
	for _, o := range expired {
		isExpired[o] = true
	}
	paid := 0
	for o := int64(1); o <= n; o++ {
		p, err := r.Get(ctx, o, fmt.Sprint(1000+o))
		if err != nil {
			t.Fatal(err)
		}
		a := answers[o]
		switch p.State {
		case repo.StatePaid:
			paid++
			if !a.Success || isExpired[o] || p.PaidTime == nil {
				t.Errorf("order %d paid, but PayOrder = %v, expired by the loop %v", o, a, isExpired[o])
			}
		case repo.StateExpired:
			if a.Success || a.Error.GetCode() != 409 || !isExpired[o] || p.PaidTime != nil {
				t.Errorf("order %d expired, but PayOrder = %v, expired by the loop %v", o, a, isExpired[o])
			}
		default:
			t.Errorf("order %d ended in state %d; want paid or expired", o, p.State)
		}
	}
	var events []string
	if err := d.Raw(`SELECT msg_id FROM payment_outbox ORDER BY msg_id`).Scan(&events).Error; err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, o := range expired {
		want = append(want, eventpb.ExpiredMsgID(o))
	}
	slices.Sort(want)
	if !slices.Equal(events, want) {
		t.Errorf("outbox holds %d events; want one for each of the %d expired payments", len(events), len(expired))
	}
	t.Logf("%d paid, %d expired", paid, len(expired))
}
