package test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"secbuy/basic/testutil"
	"secbuy/test/load"
	"secbuy/test/suite"
)

var userBase atomic.Int64

// newSale starts the whole suite and returns a load config aimed at it. Recovery runs
// every second in tests so a crashed order-srv's pending orders are finished quickly.
func newSale(t *testing.T, buyers int, units int64, extraEnv ...string) (*suite.Suite, load.Config) {
	t.Helper()
	s := suite.New(t, append([]string{"SECBUY_RECOVER_AFTER=5s", "SECBUY_RECOVER_EVERY=1s",
		fmt.Sprintf("SECBUY_RATE_KEY_PREFIX=secbuy-test:%d:%s:", os.Getpid(), t.Name())}, extraEnv...))
	cfg := load.Config{
		StockURL: s.URL("stock-web"), OrderURL: s.URL("order-web"), PaymentURL: s.URL("payment-web"),
		AdminKey: suite.AdminKey, AuthSecret: suite.AuthSecret, NATSURL: s.NATSURL,
		Buyers: buyers, Units: units, UserBase: userBase.Add(1_000_000), Settle: 30 * time.Second,
	}
	waitReady(t, s, cfg)
	return s, cfg
}

// waitReady waits until a buy goes through the whole chain (the registry needs a moment
// to carry every registration), on a commodity of its own, as user 1 with cfg's token.
func waitReady(t *testing.T, s *suite.Suite, cfg load.Config) {
	t.Helper()
	c := load.Client(1)
	id, err := createCommodity(cfg, c, 1000)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := cfg.Token(1, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = suite.Eventually(30*time.Second, func() error {
		r := load.Buy(context.Background(), c, cfg, tok, 1, id, "ready")
		if r.Reason != "ok" {
			t.Logf("%v: not ready: %d %s %v", time.Since(start), r.Status, r.Reason, r.Err)
			return errors.Join(fmt.Errorf("buy through the suite: %d %s", r.Status, r.Reason), r.Err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func createCommodity(cfg load.Config, c *http.Client, units int64) (int64, error) {
	var id int64
	err := suite.Eventually(20*time.Second, func() error {
		var err error
		id, err = load.CreateCommodity(context.Background(), c, cfg, "flash", units)
		return err
	})
	return id, err
}

func burstAndCheck(t *testing.T, cfg load.Config) (load.Result, load.Audit) {
	t.Helper()
	c := load.Client(cfg.Conns)
	res, err := load.Burst(context.Background(), c, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(res.Summary())
	au, violations, err := load.Check(context.Background(), c, cfg, load.NewAuditor(cfg.NATSURL), res)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("audit:", au)
	for _, v := range violations {
		t.Error("invariant broken:", v)
	}
	return res, au
}

// TestOriginalScenario is the 2019 system's own test: 500 buyers at once for 10 units.
func TestOriginalScenario(t *testing.T) {
	_, cfg := newSale(t, 500, 10)
	cfg.Settle = 10 * time.Second // every payment within 10 s
	res, au := burstAndCheck(t, cfg)
	counts := res.Counts()
	if counts["ok"] != 10 || counts["sold out"] != 490 {
		t.Errorf("told: %v; want exactly 10 ok and 490 sold out", counts)
	}
	if au.Sale != 10 || au.Live != 10 || au.Payments != 10 {
		t.Errorf("audit %v; want 10 sold, 10 orders, 10 payments", au)
	}
}

// TestBigSale: 5,000 buyers for 1,000 units, 100 of them pressing twice at the same moment.
func TestBigSale(t *testing.T) {
	_, cfg := newSale(t, 5000, 1000)
	cfg.Twice = 100
	res, au := burstAndCheck(t, cfg)
	if au.Sale != 1000 || au.Live != 1000 {
		t.Errorf("audit %v; want all 1000 units sold as 1000 orders", au)
	}
	// A second press is refused either at the edge while the first is in flight, or by
	// order-srv once the first holds the user's live order.
	c := res.Counts()
	if n := c["already bought"] + c["already in progress"]; n == 0 || n > 100 {
		t.Errorf("%d double presses refused; want between 1 and 100 (%v)", n, c)
	}
}

// TestPaymentSrvDown: payment-srv is stopped while 200 orders are made; after it restarts
// every order has exactly one payment.
func TestPaymentSrvDown(t *testing.T) {
	s, cfg := newSale(t, 200, 200)
	s.Stop("payment-srv")
	res, err := load.Burst(context.Background(), load.Client(0), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := res.Counts()["ok"]; n != 200 {
		t.Fatalf("%d of 200 buyers served while payment-srv is down: %v", n, res.Counts())
	}
	a := load.NewAuditor(cfg.NATSURL)
	if au, err := a.Audit(context.Background(), res.Commodity); err == nil {
		t.Errorf("payment-srv answered its audit while stopped: %v", au)
	}
	s.Start("payment-srv")
	au, violations, err := load.Check(context.Background(), load.Client(0), cfg, a, res)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range violations {
		t.Error("invariant broken:", v)
	}
	if au.Payments != 200 || au.Live != 200 {
		t.Errorf("audit %v; want 200 orders with 200 payments", au)
	}
}

// TestOrderSrvKilled: order-srv is killed (SIGKILL) in the middle of a 2,000-buyer sale and
// restarted; once it has recovered, no stock is taken without an order and no order exists
// without its stock.
func TestOrderSrvKilled(t *testing.T) {
	s, cfg := newSale(t, 2000, 500)
	cfg.Conns = 64
	id, err := createCommodity(cfg, load.Client(1), cfg.Units)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Commodity = id
	done := make(chan load.Result)
	go func() {
		res, err := load.Burst(context.Background(), load.Client(cfg.Conns), cfg)
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	// Kill it while the sale is under way: once some units are sold, before all are.
	a := load.NewAuditor(cfg.NATSURL)
	var at load.Audit
	testutil.Eventually(t, 30*time.Second, "the sale to start", func() bool {
		var err error
		at, err = a.Audit(context.Background(), id)
		return err == nil && at.Sale > 0
	})
	s.Kill("order-srv")
	t.Logf("order-srv killed when %d of %d units were sold", at.Sale, cfg.Units)
	time.Sleep(500 * time.Millisecond)
	s.Start("order-srv")
	res := <-done
	t.Log(res.Summary())
	au, violations, err := load.Check(context.Background(), load.Client(0), cfg, load.NewAuditor(cfg.NATSURL), res)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("audit:", au)
	for _, v := range violations {
		t.Error("invariant broken:", v)
	}
}
