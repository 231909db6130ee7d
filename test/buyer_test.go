package test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"secbuy/basic/auth"
	"secbuy/test/load"
	"secbuy/test/suite"
)

// uuid returns a random version-4 UUID, the sub an identity provider gives.
func uuid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6], b[8] = b[6]&0x0f|0x40, b[8]&0x3f|0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// TestUUIDBuyers: buyers whose token's sub is a UUID buy in one concurrent sale beside
// buyers of numeric subs, a third of each pressing twice at once with two keys. The
// invariants hold (no oversell, one order and one payment per unit, one live order per
// buyer), a UUID winner's resend after the sell-out gets its order back, and it reads its
// order, its list and its payment as itself (userId 0), while a numeric winner's still
// show its number.
func TestUUIDBuyers(t *testing.T) {
	const buyers, units = 300, 60
	begin := time.Now()
	_, cfg := newSale(t, buyers, units)
	t.Logf("suite up in %v", time.Since(begin))
	c := load.Client(64)
	id, err := createCommodity(cfg, c, units)
	if err != nil {
		t.Fatal(err)
	}
	type buyer struct {
		sub, token string
		user       int64 // 0 for a UUID buyer
	}
	bs := make([]buyer, buyers)
	for i := range bs {
		b := buyer{sub: uuid()}
		if i%2 == 1 {
			b.user = cfg.UserBase + int64(i) + 1
			b.sub = fmt.Sprint(b.user)
		}
		if b.token, err = auth.MintSub(suite.AuthSecret, b.sub, time.Hour); err != nil {
			t.Fatal(err)
		}
		bs[i] = b
	}
	presses := make([]struct {
		b   buyer
		key string
	}, 0, buyers+buyers/3)
	for i, b := range bs {
		presses = append(presses, struct {
			b   buyer
			key string
		}{b, fmt.Sprintf("p%d-a", i)})
		if i%3 == 0 {
			presses = append(presses, struct {
				b   buyer
				key string
			}{b, fmt.Sprintf("p%d-b", i)})
		}
	}
	replies := make([]load.Reply, len(presses))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, p := range presses {
		wg.Go(func() {
			<-start
			replies[i] = load.Buy(context.Background(), c, cfg, p.b.token, p.b.user, id, p.key)
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	res := load.Result{Commodity: id, Replies: replies, Start: began, Elapsed: time.Since(began)}
	t.Log(res.Summary(), res.Counts())
	au, violations, err := load.Check(context.Background(), c, cfg, load.NewAuditor(cfg.NATSURL), res)
	if err != nil {
		t.Fatal(err)
	}
	t.Log("audit:", au, "after", time.Since(began))
	for _, v := range violations {
		t.Error("invariant broken:", v)
	}
	if au.Sale != units || au.Live != units || au.Payments != units {
		t.Errorf("audit %v; want %d sold, %d orders, %d payments", au, units, units, units)
	}

	// Who won, by kind of sub: both kinds must be among the winners for the test to say anything.
	won := map[string]int64{} // sub → order id
	for i, r := range replies {
		if r.Reason == "ok" {
			won[presses[i].b.sub] = r.OrderID
		}
	}
	var uuidWinner, numWinner *buyer
	for i := range bs {
		if _, ok := won[bs[i].sub]; ok {
			if bs[i].user == 0 && uuidWinner == nil {
				uuidWinner = &bs[i]
			}
			if bs[i].user != 0 && numWinner == nil {
				numWinner = &bs[i]
			}
		}
	}
	if uuidWinner == nil || numWinner == nil || len(won) != units {
		t.Fatalf("%d winners (a UUID one: %v, a numeric one: %v); want %d of both kinds", len(won), uuidWinner != nil, numWinner != nil, units)
	}
	for i, p := range presses {
		if p.b.sub == uuidWinner.sub && replies[i].Reason == "ok" {
			r := load.Buy(context.Background(), c, cfg, p.b.token, 0, id, p.key)
			if r.Reason != "ok" || r.OrderID != won[p.b.sub] {
				t.Errorf("UUID winner's resend after the sell-out: %d %s order %d; want ok, order %d", r.Status, r.Reason, r.OrderID, won[p.b.sub])
			}
		}
	}
	for _, w := range []*buyer{uuidWinner, numWinner} {
		order := won[w.sub]
		var got struct {
			Order struct {
				ID     int64  `json:"id"`
				UserID int64  `json:"userId"`
				Buyer  string `json:"buyer"`
				State  string `json:"state"`
			} `json:"order"`
		}
		if code, err := load.Do(c, "GET", fmt.Sprintf("%s/order/get?id=%d", cfg.OrderURL, order), w.token, nil, &got); err != nil || code != http.StatusOK ||
			got.Order.ID != order || got.Order.Buyer != w.sub || got.Order.UserID != w.user || got.Order.State != "created" {
			t.Errorf("GET order %d as %s = %d %+v, %v; want created, buyer %s, userId %d", order, w.sub, code, got, err, w.sub, w.user)
		}
		var list struct {
			Page struct {
				Orders []struct {
					ID    int64  `json:"id"`
					Buyer string `json:"buyer"`
				} `json:"orders"`
			} `json:"page"`
		}
		if code, err := load.Do(c, "GET", cfg.OrderURL+"/order/list", w.token, nil, &list); err != nil || code != http.StatusOK ||
			len(list.Page.Orders) != 1 || list.Page.Orders[0].ID != order || list.Page.Orders[0].Buyer != w.sub {
			t.Errorf("GET list as %s = %d %+v, %v; want its one order %d", w.sub, code, list, err, order)
		}
		var pay struct {
			Payment struct {
				Sid    int64  `json:"sid"`
				UserID int64  `json:"userId"`
				Buyer  string `json:"buyer"`
			} `json:"payment"`
		}
		if code, err := load.Do(c, "GET", fmt.Sprintf("%s/payment/get?id=%d", cfg.PaymentURL, order), w.token, nil, &pay); err != nil || code != http.StatusOK ||
			pay.Payment.Sid != order || pay.Payment.Buyer != w.sub || pay.Payment.UserID != w.user {
			t.Errorf("GET payment of %d as %s = %d %+v, %v; want its payment", order, w.sub, code, pay, err)
		}
	}
	// Another buyer may not read the UUID winner's order.
	if code, _ := load.Do(c, "GET", fmt.Sprintf("%s/order/get?id=%d", cfg.OrderURL, won[uuidWinner.sub]), numWinner.token, nil, nil); code != http.StatusForbidden {
		t.Errorf("GET the UUID winner's order as %s = %d; want 403", numWinner.sub, code)
	}
}
