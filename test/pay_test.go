package test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"secbuy/test/load"
	"secbuy/test/suite"
)

type paymentReply struct {
	Success bool `json:"success"`
	Error   *struct {
		Code   int    `json:"code"`
		Detail string `json:"detail"`
	} `json:"error"`
	Payment *struct {
		Sid      int64 `json:"sid"`
		State    int   `json:"state"`
		PaidTime int64 `json:"paidTime"`
		UserID   int64 `json:"userId"`
	} `json:"payment"`
}

// TestPay: own order → paid; again → success, unchanged; someone else's → 403; unknown → 404.
func TestPay(t *testing.T) {
	s, cfg := newSale(t, 1, 10)
	c := load.Client(1)
	id, err := createCommodity(cfg, c, 10)
	if err != nil {
		t.Fatal(err)
	}
	owner, other := cfg.UserBase+1, cfg.UserBase+2
	r := load.Buy(context.Background(), c, cfg, s.Token(owner), owner, id, "")
	if r.Reason != "ok" {
		t.Fatalf("buy: %+v", r)
	}
	pay := func(user, order int64) (int, paymentReply) {
		var rep paymentReply
		code, err := load.Do(c, "POST", s.URL("payment-web")+"/payment/payorder", s.Token(user), []byte(fmt.Sprintf(`{"id":%d}`, order)), &rep)
		if err != nil {
			t.Fatal(err)
		}
		return code, rep
	}
	// The payment record arrives through JetStream; wait for it.
	err = suite.Eventually(10*time.Second, func() error {
		var rep paymentReply
		code, err := load.Do(c, "GET", fmt.Sprintf("%s/payment/get?id=%d", s.URL("payment-web"), r.OrderID), s.Token(owner), nil, &rep)
		if err != nil {
			return err
		}
		if code != 200 {
			return fmt.Errorf("payment of order %d: %d %+v", r.OrderID, code, rep.Error)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, rep := pay(other, r.OrderID); code != 403 || rep.Success {
		t.Errorf("someone else pays: %d %+v, want 403", code, rep)
	}
	code, first := pay(owner, r.OrderID)
	if code != 200 || !first.Success || first.Payment.State != 1 || first.Payment.PaidTime == 0 {
		t.Fatalf("owner pays: %d %+v", code, first)
	}
	// A second pay must not move paid_time: the database keeps it to the microsecond.
	paidTime := func() time.Time {
		t.Helper()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, s.DBURL)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var at time.Time
		if err := conn.QueryRow(ctx, `SELECT paid_time FROM payments WHERE sid = $1`, r.OrderID).Scan(&at); err != nil {
			t.Fatal(err)
		}
		return at
	}
	before := paidTime()
	code, again := pay(owner, r.OrderID)
	if code != 200 || !again.Success || again.Payment.State != 1 || again.Payment.PaidTime != first.Payment.PaidTime {
		t.Errorf("pay again: %d %+v, want success with the first paid time %d", code, again, first.Payment.PaidTime)
	}
	if after := paidTime(); !after.Equal(before) {
		t.Errorf("paying again moved paid_time from %v to %v", before, after)
	}
	if code, rep := pay(owner, r.OrderID+1_000_000); code != 404 || rep.Success {
		t.Errorf("unknown order: %d %+v, want 404", code, rep)
	}
	if code, rep := pay(other, r.OrderID); code != 403 {
		t.Errorf("someone else pays a paid order: %d %+v, want 403", code, rep)
	}
	var got paymentReply
	if code, err := load.Do(c, "GET", fmt.Sprintf("%s/payment/get?id=%d", s.URL("payment-web"), r.OrderID), s.Token(other), nil, &got); err != nil || code != 403 {
		t.Errorf("someone else reads the payment: %d %v", code, err)
	}
	if code, _ := load.Do(http.DefaultClient, "GET", fmt.Sprintf("%s/order/get?id=%d", s.URL("order-web"), r.OrderID), s.Token(other), nil, nil); code != 403 {
		t.Errorf("someone else reads the order: %d, want 403", code)
	}
}
