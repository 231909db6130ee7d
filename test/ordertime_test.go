package test

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"secbuy/test/load"
	"secbuy/test/suite"
)

// TestPaymentSrvDownKeepsDeadline: payment-srv is down when a unit is bought and stays down
// past the pay timeout; once it is back the unpaid order expires at once (the deadline runs
// from the order's creation, as the buyer was told) and the unit is on sale again, well
// before a full timeout after the restart (when it would be if the time ran from the
// payment's creation).
func TestPaymentSrvDownKeepsDeadline(t *testing.T) {
	const timeout = 10 * time.Second
	s, cfg := newSale(t, 1, 1, "SECBUY_PAY_TIMEOUT="+timeout.String(), "SECBUY_EXPIRE_EVERY=250ms")
	c := load.Client(1)
	id, err := createCommodity(cfg, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	s.Stop("payment-srv")
	user := userBase.Add(1_000_000)
	ordered := time.Now()
	r := load.Buy(context.Background(), c, cfg, s.Token(user), user, id, "deadline")
	if r.Reason != "ok" || r.OrderID == 0 {
		t.Fatalf("buy while payment-srv is down: %d %s %v; want an order", r.Status, r.Reason, r.Err)
	}
	if left := unitsLeft(t, c, s, id); left != 0 {
		t.Fatalf("%d units left after the sale; want 0", left)
	}
	// The condition waited for is the deadline itself: the pay timeout past the order.
	time.Sleep(time.Until(ordered.Add(timeout + time.Second)))
	restarted := time.Now()
	s.Start("payment-srv")
	err = suite.Eventually(timeout, func() error {
		if left := unitsLeft(t, c, s, id); left != 1 {
			return fmt.Errorf("%d units left", left)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the unpaid order's unit not on sale again within %v of payment-srv's restart (the deadline passed before it): %v", timeout, err)
	}
	t.Logf("unit back on sale %v after payment-srv restarted, %v after the order", time.Since(restarted).Round(time.Millisecond), time.Since(ordered).Round(time.Millisecond))
	var p struct {
		Payment struct {
			State int `json:"state"`
		} `json:"payment"`
	}
	code, err := load.Do(c, http.MethodGet, cfg.PaymentURL+"/payment/get?id="+strconv.FormatInt(r.OrderID, 10), s.Token(user), nil, &p)
	if err != nil || code != http.StatusOK || p.Payment.State != 2 {
		t.Errorf("payment of order %d: %d %+v %v; want it expired (state 2)", r.OrderID, code, p, err)
	}
}

// unitsLeft reads commodity id's units on sale from stock-web.
func unitsLeft(t *testing.T, c *http.Client, s *suite.Suite, id int64) int64 {
	t.Helper()
	var rep struct {
		Commodity struct {
			Left int64 `json:"left"`
		} `json:"commodity"`
	}
	code, err := load.Do(c, http.MethodGet, s.URL("stock-web")+"/stock/get?id="+strconv.FormatInt(id, 10), "", nil, &rep)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /stock/get?id=%d: %d %v", id, code, err)
	}
	return rep.Commodity.Left
}
