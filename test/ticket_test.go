package test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"secbuy/test/load"
)

// TestTicketSale: a commodity that requires a ticket, with a proof of work. Before its
// start no ticket is issued; once it opens, buyers who get one (and do its work) buy it
// out, while a script pressing the buy route without tickets, at the same moment, is
// refused 403 every time and gets nothing. The invariants hold, every unit is sold, and
// no order is a script's.
func TestTicketSale(t *testing.T) {
	const buyers, units, scripts = 300, 80, 200
	_, cfg := newSale(t, buyers, units, "SECBUY_TICKET_POW_BITS=6")
	c := load.Client(64)

	// Not started: no ticket, and a press without one is still refused for the ticket.
	later := cfg
	later.Ticket, later.StartTime = true, time.Now().Add(time.Hour).Unix()
	early, err := load.CreateCommodity(context.Background(), c, later, "later", 5)
	if err != nil {
		t.Fatal(err)
	}
	if r := load.Buy(context.Background(), c, later, mustToken(t, cfg, 1), 1, early, "early"); r.Status != 409 || r.Reason != "not started" {
		t.Errorf("a ticket before the start: %d %s; want 409 not started", r.Status, r.Reason)
	}
	later.Ticket = false
	if r := load.Buy(context.Background(), c, later, mustToken(t, cfg, 1), 1, early, "early"); r.Status != 403 {
		t.Errorf("a press without a ticket before the start: %d %s; want 403", r.Status, r.Reason)
	}

	cfg.Ticket = true
	id, err := createCommodity(cfg, c, units)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Commodity = id
	scriptCfg := cfg
	scriptCfg.Ticket = false // presses the route directly
	scriptReplies := make([]load.Reply, scripts)
	var wg sync.WaitGroup
	release := make(chan struct{})
	for i := range scripts {
		user := cfg.UserBase + buyers + int64(i) + 1
		tok := mustToken(t, cfg, user)
		wg.Go(func() {
			<-release
			scriptReplies[i] = load.Buy(context.Background(), c, scriptCfg, tok, user, id, fmt.Sprintf("script-%d", i))
		})
	}
	var res load.Result
	wg.Go(func() {
		<-release
		res, err = load.Burst(context.Background(), load.Client(64), cfg)
	})
	close(release)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Log("buyers:", res.Summary())
	for _, r := range scriptReplies {
		if r.Status != 403 || r.Reason != "ticket required: no ticket; get one from GET /order/ticket?id="+fmt.Sprint(id) {
			t.Errorf("a press without a ticket: %d %q; want 403 ticket required", r.Status, r.Reason)
			break
		}
	}
	au, violations, err := load.Check(context.Background(), c, cfg, load.NewAuditor(cfg.NATSURL), res)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("audit:", au)
	for _, v := range violations {
		t.Error("invariant broken:", v)
	}
	if au.Sale != units || au.Live != units || au.Payments != units || au.TwoLive != 0 {
		t.Errorf("audit %v; want %d sold, %d orders, %d payments, none two to a buyer", au, units, units, units)
	}
	if n := res.Counts()["ok"]; n != units {
		t.Errorf("%d buyers with a ticket got an order; want %d (%v)", n, units, res.Counts())
	}
}

func mustToken(t *testing.T, cfg load.Config, user int64) string {
	t.Helper()
	tok, err := cfg.Token(user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
