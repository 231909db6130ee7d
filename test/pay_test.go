package test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

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
		code, err := suite.Do(c, "POST", s.URL("payment-web")+"/payment/payorder", s.Token(user), []byte(fmt.Sprintf(`{"id":%d}`, order)), &rep)
		if err != nil {
			t.Fatal(err)
		}
		return code, rep
	}
	// The payment record arrives through JetStream; wait for it.
	err = suite.Eventually(10*time.Second, func() error {
		var rep paymentReply
		code, err := suite.Do(c, "GET", fmt.Sprintf("%s/payment/get?id=%d", s.URL("payment-web"), r.OrderID), s.Token(owner), nil, &rep)
		if err != nil || code != 200 {
			return fmt.Errorf("payment of order %d: %d %v %+v", r.OrderID, code, err, rep.Error)
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
	time.Sleep(1100 * time.Millisecond) // a second pay must not move paid_time
	code, again := pay(owner, r.OrderID)
	if code != 200 || !again.Success || again.Payment.State != 1 || again.Payment.PaidTime != first.Payment.PaidTime {
		t.Errorf("pay again: %d %+v, want success with the first paid time %d", code, again, first.Payment.PaidTime)
	}
	if code, rep := pay(owner, r.OrderID+1_000_000); code != 404 || rep.Success {
		t.Errorf("unknown order: %d %+v, want 404", code, rep)
	}
	if code, rep := pay(other, r.OrderID); code != 403 {
		t.Errorf("someone else pays a paid order: %d %+v, want 403", code, rep)
	}
	var got paymentReply
	if code, err := suite.Do(c, "GET", fmt.Sprintf("%s/payment/get?id=%d", s.URL("payment-web"), r.OrderID), s.Token(other), nil, &got); err != nil || code != 403 {
		t.Errorf("someone else reads the payment: %d %v", code, err)
	}
	if code, _ := suite.Do(http.DefaultClient, "GET", fmt.Sprintf("%s/order/get?id=%d", s.URL("order-web"), r.OrderID), s.Token(other), nil, nil); code != 403 {
		t.Errorf("someone else reads the order: %d, want 403", code)
	}
}
