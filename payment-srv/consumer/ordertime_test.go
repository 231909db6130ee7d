package consumer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"secbuy/basic/testutil"
	"secbuy/payment-srv/expiry"
	"secbuy/payment-srv/repo"
	eventpb "secbuy/proto/events"
)

// The time to pay runs from the order's creation, carried in payment.payevent: an event
// whose order is older than the pay timeout (payment-srv was down while the buyer waited)
// makes a payment that expires at the expiry loop's next look, with its payment.expired
// event; a recent order's and an older producer's event (no createTime) stay unpaid.
func TestOrderTimeCountsForExpiry(t *testing.T) {
	t.Parallel()
	_, d, js, stream := setup(t)
	store := repo.New(d)
	const timeout = 15 * time.Minute
	now := time.Now()
	events := map[int64]*eventpb.PayEvent{
		1: {OrderId: 1, CommodityId: 7, UserId: 1001, Name: "goods", CreateTime: now.Add(-timeout - time.Minute).Unix()},
		2: {OrderId: 2, CommodityId: 7, UserId: 1002, Name: "goods", CreateTime: now.Add(-time.Minute).Unix()},
		3: {OrderId: 3, CommodityId: 7, UserId: 1003, Name: "goods"}, // an older producer's
	}
	for order, ev := range events {
		data, err := eventpb.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		publish(t, js, []byte(data), fmt.Sprintf("order-%d", order))
	}
	startConsumer(t, stream, store)
	testutil.Eventually(t, 20*time.Second, "the three payments", func() bool { return tally(t, d).Rows == 3 })

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go expiry.Run(ctx, store, 100*time.Millisecond, timeout, func() {})
	testutil.Eventually(t, 10*time.Second, "order 1's payment to expire", func() bool {
		var state int16
		if err := d.Raw(`SELECT state FROM payments WHERE sid = 1`).Scan(&state).Error; err != nil {
			t.Fatal(err)
		}
		return state == repo.StateExpired
	})
	cancel()
	var rows []struct {
		Sid   int64
		State int16
	}
	if err := d.Raw(`SELECT sid, state FROM payments ORDER BY sid`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rows) != fmt.Sprint([]struct {
		Sid   int64
		State int16
	}{{1, repo.StateExpired}, {2, repo.StateUnpaid}, {3, repo.StateUnpaid}}) {
		t.Errorf("payments (order, state) = %v; want order 1 expired, 2 and 3 unpaid", rows)
	}
	var expired []string
	if err := d.Raw(`SELECT msg_id FROM payment_outbox`).Scan(&expired).Error; err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(expired) != fmt.Sprint([]string{eventpb.ExpiredMsgID(1)}) {
		t.Errorf("payment.expired events %v; want order 1's alone", expired)
	}
}
