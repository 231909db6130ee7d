package repo_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"secbuy/basic/db"
	"secbuy/basic/outbox"
	"secbuy/payment-srv/repo"
	eventpb "secbuy/proto/events"
)

// backdate makes the payments of orders look created age ago.
func backdate(t *testing.T, d *db.DB, age time.Duration, orders ...int64) {
	t.Helper()
	if err := d.Exec(`UPDATE payments SET create_time = now() - make_interval(secs => ?) WHERE sid = ANY(?)`,
		age.Seconds(), db.Array(orders)).Error; err != nil {
		t.Fatal(err)
	}
}

type outboxRow struct {
	MsgID   string
	Payload string
}

func outboxRows(t *testing.T, d *db.DB) []outboxRow {
	t.Helper()
	var rows []outboxRow
	if err := d.Raw(`SELECT msg_id, payload::text AS payload FROM payment_outbox ORDER BY id`).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	return rows
}

func sids(ps []repo.Payment) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.Sid
	}
	slices.Sort(out)
	return out
}

func TestExpire(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	ctx := context.Background()
	for order := int64(1); order <= 5; order++ {
		create(t, r, order, 7, 100+order)
	}
	backdate(t, d, time.Hour, 1, 2, 3)
	if _, err := r.Pay(ctx, 2, "102"); err != nil {
		t.Fatal(err)
	}

	got, err := r.Expire(ctx, 30*time.Minute, 100)
	if err != nil || fmt.Sprint(sids(got)) != "[1 3]" {
		t.Fatalf("Expire = %v, %v; want the payments of orders 1 and 3", sids(got), err)
	}
	for _, p := range got {
		if p.State != repo.StateExpired || p.PaidTime != nil {
			t.Errorf("expired payment = %+v; want state expired, not paid", p)
		}
	}
	rows := outboxRows(t, d)
	var msgIDs []string
	for _, row := range rows {
		msgIDs = append(msgIDs, row.MsgID)
	}
	slices.Sort(msgIDs)
	if fmt.Sprint(msgIDs) != fmt.Sprint([]string{eventpb.ExpiredMsgID(1), eventpb.ExpiredMsgID(3)}) {
		t.Fatalf("outbox = %+v; want the events of orders 1 and 3", rows)
	}
	for _, row := range rows {
		var ev eventpb.ExpiredEvent
		if err := eventpb.Unmarshal([]byte(row.Payload), &ev); err != nil {
			t.Fatal(err)
		}
		if eventpb.ExpiredMsgID(ev.OrderId) != row.MsgID || ev.CommodityId != 7 || ev.UserId != 100+ev.OrderId || ev.PaymentId == 0 || ev.ExpireTime == 0 {
			t.Errorf("event %s = %v; want order, commodity 7, user, payment and time", row.MsgID, &ev)
		}
	}

	// Nothing more to expire: no new event.
	if got, err := r.Expire(ctx, 30*time.Minute, 100); err != nil || len(got) != 0 {
		t.Errorf("Expire again = %v, %v; want none", sids(got), err)
	}
	if n := len(outboxRows(t, d)); n != 2 {
		t.Errorf("outbox rows = %d; want still 2", n)
	}
	// Paying an expired payment is refused; a paid one stays paid; a young one can be paid.
	if _, err := r.Pay(ctx, 1, "101"); !errors.Is(err, repo.ErrExpired) {
		t.Errorf("Pay(expired) = %v; want ErrExpired", err)
	}
	if p, err := r.Pay(ctx, 2, "102"); err != nil || p.State != repo.StatePaid {
		t.Errorf("Pay(paid) = %+v, %v; want paid", p, err)
	}
	if p, err := r.Pay(ctx, 4, "104"); err != nil || p.State != repo.StatePaid {
		t.Errorf("Pay(young) = %+v, %v; want paid", p, err)
	}
	if p := row(t, d, 1); p.State != repo.StateExpired {
		t.Errorf("payment of order 1 = %+v; want expired", p)
	}

	// limit bounds one call.
	backdate(t, d, time.Hour, 5)
	create(t, r, 6, 7, 106)
	backdate(t, d, time.Hour, 6)
	if got, err := r.Expire(ctx, 30*time.Minute, 1); err != nil || len(got) != 1 {
		t.Errorf("Expire(limit 1) = %v, %v; want one", sids(got), err)
	}
	if got, err := r.Expire(ctx, 30*time.Minute, 1); err != nil || len(got) != 1 {
		t.Errorf("Expire(limit 1) again = %v, %v; want the other", sids(got), err)
	}
	a, err := r.Audit(ctx, 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := (repo.Audit{Payments: 6, Paid: 2, Expired: 4, OrderIDSum: 21, Live: 2, LiveOrderIDSum: 6}); a != want {
		t.Errorf("Audit = %+v; want %+v", a, want)
	}
}

func TestRelayExpiredOutbox(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	ctx := context.Background()
	for order := int64(1); order <= 3; order++ {
		create(t, r, order, 7, order)
	}
	backdate(t, d, time.Hour, 1, 2, 3)
	if _, err := r.Expire(ctx, time.Minute, 100); err != nil {
		t.Fatal(err)
	}
	var seen []string
	n, err := r.Relay(ctx, 10, func(evs []outbox.Event) ([]int64, error) {
		ids := make([]int64, 0, len(evs))
		for _, ev := range evs {
			seen = append(seen, ev.MsgID)
			if ev.MsgID != eventpb.ExpiredMsgID(2) { // one is not acknowledged
				ids = append(ids, ev.ID)
			}
		}
		return ids, nil
	})
	if err != nil || n != 2 || len(seen) != 3 {
		t.Fatalf("Relay = %d, %v (saw %v); want 2 marked sent of 3", n, err, seen)
	}
	if u, err := r.Unsent(ctx); err != nil || u != 1 {
		t.Errorf("Unsent = %d, %v; want 1", u, err)
	}
}

// The time to pay runs from the order's time when the payment has one (to the second,
// never later than now), else from the payment's own creation.
func TestExpireFromOrderTime(t *testing.T) {
	t.Parallel()
	r, d := newRepo(t)
	ctx := context.Background()
	now := time.Now()
	ps := []repo.Payment{
		{Sid: 1, CommodityID: 7, Buyer: "101", OrderTime: now.Add(-time.Hour)},        // past its time
		{Sid: 2, CommodityID: 7, Buyer: "102", OrderTime: now.Add(-time.Minute)},      // within it
		{Sid: 3, CommodityID: 7, Buyer: "103"},                                        // no order time
		{Sid: 4, CommodityID: 7, Buyer: "104", OrderTime: now.Add(48 * time.Hour)},    // a clock ahead
		{Sid: 5, CommodityID: 7, Buyer: "105", OrderTime: now.Add(-10 * time.Second)}, // recent, created long ago
	}
	if n, err := r.CreateBatch(ctx, ps); n != 5 || err != nil {
		t.Fatalf("CreateBatch = %d, %v; want 5", n, err)
	}
	backdate(t, d, time.Hour, 5) // its order time, not its row's, counts
	var ahead int64
	if err := d.Raw(`SELECT count(*) FROM payments WHERE sid = 4 AND order_time <= now()`).Scan(&ahead).Error; err != nil || ahead != 1 {
		t.Errorf("order 4's order_time from a clock ahead: %d rows not after now, %v; want it clamped to now", ahead, err)
	}
	got, err := r.Expire(ctx, 30*time.Minute, 100)
	if err != nil || fmt.Sprint(sids(got)) != "[1]" {
		t.Fatalf("Expire = %v, %v; want order 1's payment only", sids(got), err)
	}
	// An hour and a day later every one is past its time, the one from a clock ahead too.
	if err := d.Exec(`UPDATE payments SET order_time = order_time - interval '25 hours', create_time = create_time - interval '25 hours'`).Error; err != nil {
		t.Fatal(err)
	}
	got, err = r.Expire(ctx, 24*time.Hour, 100)
	if err != nil || fmt.Sprint(sids(got)) != "[2 3 4 5]" {
		t.Errorf("Expire a day later = %v, %v; want the other four", sids(got), err)
	}
}
